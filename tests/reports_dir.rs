//! The `reports` check on a real directory: counting into metrics, moving files, refusing
//! duplicates, surviving a restart, finishing an interrupted move without counting again, and
//! leaving files in place when asked.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deliverability_exporter::clock::Clock;
use deliverability_exporter::config::Config;
use deliverability_exporter::metrics::Metrics;
use deliverability_exporter::reports::ReportsCheck;
use deliverability_exporter::schedule::{Check, Context};
use deliverability_exporter::state::StateDir;
use tokio_util::sync::CancellationToken;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dx-reports-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(d.join("inbox")).unwrap();
    d
}

fn config(root: &Path, move_files: bool) -> Config {
    let text = format!(
        r#"
[exporter]
state_dir = "{root}/state"

[[domains]]
name = "example.com"

[reports]
interval = "60s"

[[reports.sources]]
name = "inbox"
kind = "dir"
path = "inbox"
move_files = {move_files}

[[reports.source_map]]
name = "brevo"
cidrs = ["192.0.2.0/24"]
"#,
        root = root.display()
    );
    Config::from_str(&root.join("exporter.toml"), &text).unwrap()
}

fn context(root: &Path, metrics: &Arc<Metrics>) -> Context {
    Context {
        metrics: metrics.clone(),
        clock: Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        shutdown: CancellationToken::new(),
        state: StateDir::open(&root.join("state")).unwrap(),
        observed: Default::default(),
    }
}

fn dmarc(domain: &str, id: &str, ip: &str, count: u32) -> String {
    format!(
        r#"<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>Example Net</org_name><email>dmarc@mail.example.net</email>
    <report_id>{id}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>{domain}</domain><p>quarantine</p></policy_published>
  <record><row><source_ip>{ip}</source_ip><count>{count}</count>
    <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><dkim><domain>{domain}</domain><result>pass</result></dkim>
      <spf><domain>bounces.esp.example</domain><result>pass</result></spf></auth_results></record>
</feedback>
"#
    )
}

const TLS: &str = r#"{"organization-name":"Google Inc.","date-range":{"start-datetime":"2024-01-09T00:00:00Z","end-datetime":"2024-01-09T23:59:59Z"},"contact-info":"smtp-tls-reporting@google.com","report-id":"tls-1","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":{"total-successful-session-count":10,"total-failure-session-count":3},"failure-details":[{"result-type":"certificate-expired","failed-session-count":2},{"result-type":"bogus-type","failed-session-count":1}]}]}"#;

fn metrics_text(m: &Metrics) -> String {
    String::from_utf8(m.encode()).unwrap()
}

fn has(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn counts_once_moves_files_and_survives_a_restart() {
    let root = tempdir("once");
    let inbox = root.join("inbox");
    fs::write(
        inbox.join("a.xml"),
        dmarc("example.com", "r1", "192.0.2.7", 5),
    )
    .unwrap();
    fs::write(
        inbox.join("b-duplicate.xml"),
        dmarc("example.com", "r1", "192.0.2.7", 5),
    )
    .unwrap();
    fs::write(inbox.join("c.json"), TLS).unwrap();
    fs::write(
        inbox.join("d-stranger.xml"),
        dmarc("stranger.example", "r9", "198.51.100.1", 2),
    )
    .unwrap();
    fs::write(inbox.join("e.bin"), b"\x00\x01\x02 not a report").unwrap();
    fs::write(inbox.join(".f.tmp"), b"being written").unwrap();
    fs::write(inbox.join("g-empty-just-created.xml"), b"").unwrap();

    let config = Arc::new(config(&root, true));
    let metrics = Arc::new(Metrics::bare());
    let ctx = context(&root, &metrics);
    // Only the reports check: [[domains]] also schedules the DNS record check.
    let checks = deliverability_exporter::checks::build(
        &config,
        Some(deliverability_exporter::checks::Kind::Reports),
        deliverability_exporter::checks::Mode::Serve,
        &deliverability_exporter::checks::Boards::new(&ctx.state),
    );
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].name(), "reports");
    let summary = checks[0].run(&ctx).await.unwrap();
    assert_eq!(
        summary,
        "5 files read: 3 reports counted, 1 duplicates, 1 files without a report"
    );
    let t = metrics_text(&metrics);
    has(
        &t,
        r#"deliverability_dmarc_messages_total{disposition="none",dkim_aligned="true",dmarc="pass",domain="example.com",reporter="example.net",source="brevo",spf_aligned="false"} 5"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_reports_total{domain="example.com",reporter="example.net"} 1"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_reports_total{domain="other",reporter="example.net"} 1"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_messages_total{disposition="none",dkim_aligned="true",dmarc="pass",domain="other",reporter="example.net",source="unknown",spf_aligned="false"} 2"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_report_window_end_timestamp_seconds{domain="example.com",reporter="example.net"} 1700086399"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_policy_published{domain="example.com",policy="quarantine",reporter="example.net"} 1"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_policy_published{domain="example.com",policy="reject",reporter="example.net"} 0"#,
    );
    has(
        &t,
        r#"deliverability_tlsrpt_sessions_total{domain="example.com",reporter="google.com",result="successful"} 10"#,
    );
    has(
        &t,
        r#"deliverability_tlsrpt_sessions_total{domain="example.com",reporter="google.com",result="failed"} 3"#,
    );
    has(
        &t,
        r#"deliverability_tlsrpt_failures_total{domain="example.com",reporter="google.com",type="certificate-expired"} 2"#,
    );
    has(
        &t,
        r#"deliverability_tlsrpt_failures_total{domain="example.com",reporter="google.com",type="other"} 1"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_report_errors_total{reason="not_a_report",source="inbox"} 1"#,
    );
    has(
        &t,
        r#"deliverability_dmarc_report_errors_total{reason="entities",source="inbox"} 0"#,
    );
    has(&t, "deliverability_dmarc_label_overflow_total 0");
    assert_eq!(files_in(&inbox), vec![".f.tmp", "g-empty-just-created.xml"]);
    assert_eq!(
        files_in(&inbox.join("processed")),
        vec!["a.xml", "b-duplicate.xml", "c.json", "d-stranger.xml"]
    );
    assert_eq!(files_in(&inbox.join("failed")), vec!["e.bin"]);

    // Restart: new process state, and the same reports delivered again.
    for f in files_in(&inbox.join("processed")) {
        fs::rename(inbox.join("processed").join(&f), inbox.join(&f)).unwrap();
    }
    let metrics2 = Arc::new(Metrics::bare());
    let ctx2 = context(&root, &metrics2);
    let check2 = ReportsCheck::from_config(&config).unwrap();
    let summary = check2.run(&ctx2).await.unwrap();
    assert_eq!(
        summary,
        "4 files read: 0 reports counted, 4 duplicates, 0 files without a report"
    );
    let t = metrics_text(&metrics2);
    assert!(!t.contains("deliverability_dmarc_reports_total{"), "{t}");
    assert!(!t.contains("deliverability_dmarc_messages_total{"), "{t}");
    assert_eq!(files_in(&inbox.join("processed")).len(), 4);
    fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn an_interrupted_move_is_finished_without_counting_again() {
    let root = tempdir("move");
    let inbox = root.join("inbox");
    fs::write(
        inbox.join("a.xml"),
        dmarc("example.com", "m1", "192.0.2.7", 4),
    )
    .unwrap();
    // A dangling symlink where processed/ should be: the move fails as if the process died
    // there (a permission trick would not stop root).
    std::os::unix::fs::symlink(root.join("nowhere"), inbox.join("processed")).unwrap();
    let config = Arc::new(config(&root, true));
    let metrics = Arc::new(Metrics::bare());
    let ctx = context(&root, &metrics);
    let check = ReportsCheck::from_config(&config).unwrap();
    let summary = check.run(&ctx).await.unwrap();
    assert!(
        summary.contains("1 reports counted") && summary.contains("1 files could not be moved"),
        "{summary}"
    );
    assert_eq!(files_in(&inbox), vec!["a.xml"]);

    fs::remove_file(inbox.join("processed")).unwrap();
    let metrics2 = Arc::new(Metrics::bare());
    let ctx2 = context(&root, &metrics2);
    let summary = check.run(&ctx2).await.unwrap();
    assert_eq!(
        summary,
        "0 files read: 0 reports counted, 0 duplicates, 0 files without a report"
    );
    assert_eq!(files_in(&inbox.join("processed")), vec!["a.xml"]);
    assert!(!metrics_text(&metrics2).contains("deliverability_dmarc_reports_total{"));
    fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn files_left_in_place_are_read_once() {
    let root = tempdir("inplace");
    let inbox = root.join("inbox");
    fs::write(
        inbox.join("a.xml"),
        dmarc("example.com", "p1", "203.0.113.1", 3),
    )
    .unwrap();
    let config = Arc::new(config(&root, false));
    let metrics = Arc::new(Metrics::bare());
    let ctx = context(&root, &metrics);
    let check = ReportsCheck::from_config(&config).unwrap();
    let first = check.run(&ctx).await.unwrap();
    assert!(
        first.starts_with("1 files read: 1 reports counted"),
        "{first}"
    );
    let second = check.run(&ctx).await.unwrap();
    assert!(
        second.starts_with("0 files read: 0 reports counted"),
        "{second}"
    );
    assert_eq!(files_in(&inbox), vec!["a.xml"]);
    has(
        &metrics_text(&metrics),
        r#"deliverability_dmarc_reports_total{domain="example.com",reporter="example.net"} 1"#,
    );
    // A new file is still read.
    fs::write(
        inbox.join("b.xml"),
        dmarc("example.com", "p2", "203.0.113.1", 1),
    )
    .unwrap();
    let third = check.run(&ctx).await.unwrap();
    assert!(
        third.starts_with("1 files read: 1 reports counted"),
        "{third}"
    );
    fs::remove_dir_all(&root).unwrap();
}
