//! Conformance: reads every file under `../shared/samples/` (real reports from parsedmarc and
//! dmarc-report-viewer, read in place, never copied) and checks what the samples' README and
//! the issue say a correct reader finds. Skipped, with a note, when the folder is absent.

use std::path::{Path, PathBuf};

use deliverability_exporter::reports::feedback::FeedbackKind;
use deliverability_exporter::reports::names::SourceNames;
use deliverability_exporter::reports::{Limits, Report, read_path};

fn samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    dir.is_dir().then_some(dir)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_sample_reads_as_the_reference_says() {
    let Some(root) = samples() else {
        println!("skipped: ../shared/samples is not there");
        return;
    };
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    assert!(files.len() > 30, "{} files", files.len());
    let limits = Limits::default();
    let sources = SourceNames::default();
    let (mut dmarc_files, mut tls_files, mut failure_files) = (0, 0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let folder = rel.split('/').next().unwrap_or("");
        let o = read_path(path, &rel, &limits, &sources);
        let dmarc: Vec<_> = o
            .reports
            .iter()
            .filter_map(|f| match &f.report {
                Report::Dmarc(r) => Some(r),
                _ => None,
            })
            .collect();
        let feedback: Vec<_> = o
            .reports
            .iter()
            .filter_map(|f| match &f.report {
                Report::Feedback(r) => Some(r),
                _ => None,
            })
            .collect();
        let tls = o.reports.len() - dmarc.len() - feedback.len();
        match folder {
            "aggregate" | "extract_report" | "aggregate_invalid" | "aggregate-viewer" => {
                assert_eq!(dmarc.len(), 1, "{rel}: exactly one aggregate report: {o:?}");
                assert_eq!(tls, 0, "{rel}");
                let r = dmarc[0];
                assert!(
                    !r.policy.domain.is_empty() && !r.report_id.is_empty(),
                    "{rel}: {r:?}"
                );
                assert!(r.records >= 1 && r.messages >= r.records, "{rel}: {r:?}");
                dmarc_files += 1;
                let name = path.file_name().unwrap().to_string_lossy();
                if name.starts_with("!large-example.com!") {
                    assert_eq!((r.records, r.messages), (2_286, 2_286), "{rel}");
                }
                if name.starts_with("nice-input.xml") {
                    assert_eq!((r.records, r.messages), (20, 3_047), "{rel}");
                }
                if name.starts_with("rfc9990-example.net!") {
                    assert_eq!((r.records, r.messages), (2, 7), "{rel}");
                    assert_eq!(r.policy.testing, Some(true));
                    assert_eq!(r.policy.discovery_method.as_deref(), Some("treewalk"));
                }
            }
            "smtp_tls" | "smtp_tls-viewer" => {
                assert_eq!(
                    (dmarc.len(), tls),
                    (0, 1),
                    "{rel}: exactly one TLS report: {o:?}"
                );
                tls_files += 1;
            }
            "failure" if rel.contains("no_arf_part") => {
                // Exim's plain-text failure report: no ARF part, so no report, and why.
                assert!(o.reports.is_empty(), "{rel}: {o:?}");
                assert!(!o.errors.is_empty(), "{rel}: no report and no error");
            }
            "failure" => {
                // DMARC failure reports (ruf, RFC 6591): one feedback report each, kept as
                // counts only (no recipient, subject or message).
                assert_eq!(
                    (dmarc.len(), tls, feedback.len()),
                    (0, 0, 1),
                    "{rel}: one feedback report: {o:?}"
                );
                let f = feedback[0];
                assert_eq!(f.kind, FeedbackKind::AuthFailure, "{rel}: {f:?}");
                assert!(
                    !f.domain.is_empty() && f.reporter != "unknown",
                    "{rel}: {f:?}"
                );
                println!("{rel}: {f:?}");
                failure_files += 1;
            }
            _ => {
                // empty.xml, header samples, the README: no aggregate or TLS report, and an
                // error saying why.
                assert!(o.reports.is_empty(), "{rel}: {o:?}");
                assert!(!o.errors.is_empty(), "{rel}: no report and no error");
            }
        }
    }
    assert!(failure_files >= 3, "{failure_files} failure reports read");
    assert!(
        dmarc_files >= 30 && tls_files >= 10,
        "{dmarc_files} {tls_files}"
    );
}

#[test]
fn sample_details_match_the_reports() {
    let Some(root) = samples() else {
        println!("skipped: ../shared/samples is not there");
        return;
    };
    let read = |rel: &str| {
        let o = read_path(
            &root.join(rel),
            rel,
            &Limits::default(),
            &SourceNames::default(),
        );
        assert_eq!(o.reports.len(), 1, "{rel}: {o:?}");
        (o.reports[0].report.clone(), o.warnings)
    };
    // Upper-case values read as their lower-case meaning.
    let (Report::Dmarc(r), _) = read("aggregate_invalid/report_with_upper_cased_pass.xml") else {
        panic!()
    };
    assert_eq!(r.org_name, "example.com");
    assert_eq!(
        r.tallies.keys().map(|k| k.dmarc_pass).collect::<Vec<_>>(),
        vec![true]
    );
    // The broken samples are recovered with warnings that say where.
    let (_, w) = read("aggregate/invalid_utf_8.xml");
    assert!(
        w[0].contains("byte 706") && w[0].contains("not UTF-8"),
        "{w:?}"
    );
    let (_, w) = read("aggregate/invalid_xml.xml");
    assert!(
        w[0].starts_with("aggregate/invalid_xml.xml: line 5:"),
        "{w:?}"
    );
    // hardfail is kept as other, so SPF is not aligned and the record fails DMARC.
    let (Report::Dmarc(r), _) = read("aggregate-viewer/hardfail.xml") else {
        panic!()
    };
    let k = r.tallies.keys().next().unwrap();
    assert!(!k.dmarc_pass && !k.spf_aligned && !k.dkim_aligned);
    // TLS-RPT counts.
    let (Report::Tls(t), _) = read("smtp_tls/rfc8460.json") else {
        panic!()
    };
    assert_eq!((t.successful(), t.failed()), (5_326, 303));
    assert_eq!(
        t.policies[0].mx_hosts,
        vec!["*.mail.company-y.example".to_string()]
    );
    let (Report::Tls(t), _) = read("smtp_tls/google.com_smtp_tls_report.eml") else {
        panic!()
    };
    assert_eq!(t.domain(), "cardinalhealth.ca");
}
