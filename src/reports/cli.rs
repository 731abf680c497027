//! `deliverability_exporter parse-report [--json] FILE...`: reads report files of any
//! container and prints what they hold, without configuration, ledger or metrics.
//!
//! With `--json`, one line per report found:
//! `{"file","kind":"dmarc-aggregate","reporter","org_name","report_id","domain","begin","end","records","messages"}`
//! or, for TLS-RPT, `"kind":"tls-rpt"` with `"policies"`, `"successful"` and `"failed"`; a
//! file that holds no readable report prints `{"file","error"}`. Without it, a table. Repairs
//! and errors of single parts of a file that did give a report go to stderr. The exit status
//! is 0 when every file gave at least one report.
//!
//! `reporter` is what the metrics' `reporter` label says of the same report
//! ([`Report::reporter`]: the organizational domain of its contact address, lower case);
//! `org_name` is the organization's name as the report writes it.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::model::Report;
use super::names::SourceNames;
use super::unpack::{Limits, Outcome, read_path};

#[derive(Serialize)]
struct DmarcLine<'a> {
    file: &'a str,
    kind: &'static str,
    reporter: String,
    org_name: &'a str,
    report_id: &'a str,
    domain: &'a str,
    begin: u64,
    end: u64,
    records: u64,
    messages: u64,
}

#[derive(Serialize)]
struct TlsLine<'a> {
    file: &'a str,
    kind: &'static str,
    reporter: String,
    org_name: &'a str,
    report_id: &'a str,
    domain: &'a str,
    begin: u64,
    end: u64,
    policies: usize,
    successful: u64,
    failed: u64,
}

#[derive(Serialize)]
struct DsnLine<'a> {
    file: &'a str,
    kind: &'static str,
    reporting_mta: &'a str,
    envid: Option<&'a str>,
    tokens: &'a [String],
    recipients: Vec<DsnRecipientLine<'a>>,
}

#[derive(Serialize)]
struct DsnRecipientLine<'a> {
    action: &'a str,
    status: &'a str,
    class: &'static str,
    reason: &'static str,
    diagnostic: &'a str,
}

#[derive(Serialize)]
struct FeedbackLine<'a> {
    file: &'a str,
    kind: &'static str,
    reporter: &'a str,
    domain: &'a str,
    feedback_type: &'static str,
    auth_failure: &'static str,
    incidents: u32,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    error: &'a str,
}

/// Reads `files` and prints to `out` (reports) and `err` (warnings). `true` when every file
/// gave at least one report.
pub fn run(files: &[PathBuf], json: bool, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let limits = Limits::default();
    let sources = SourceNames::default();
    let mut all_ok = true;
    let mut rows: Vec<[String; 8]> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let outcome = read_path(path, &file, &limits, &sources);
        for w in &outcome.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
        if outcome.reports.is_empty() {
            all_ok = false;
            let error = file_error(&outcome);
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    to_json(&ErrorLine {
                        file: &file,
                        error: &error
                    })
                );
            } else {
                failures.push((file.clone(), error));
            }
            continue;
        }
        for e in &outcome.errors {
            let _ = writeln!(err, "error: {e}");
        }
        for found in &outcome.reports {
            if json {
                let _ = writeln!(out, "{}", json_line(&file, &found.report));
            } else {
                rows.push(table_row(&file, &found.report));
            }
        }
    }
    if !json {
        print_table(out, &rows, &failures);
    }
    all_ok
}

fn file_error(o: &Outcome) -> String {
    match o.errors.as_slice() {
        [] => "no report found".into(),
        [one] => one.to_string(),
        many => many
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The JSON line of one report.
pub fn json_line(file: &str, report: &Report) -> String {
    match report {
        Report::Dmarc(r) => to_json(&DmarcLine {
            file,
            kind: report.kind(),
            reporter: report.reporter(),
            org_name: &r.org_name,
            report_id: &r.report_id,
            domain: &r.policy.domain,
            begin: r.begin,
            end: r.end,
            records: r.records,
            messages: r.messages,
        }),
        Report::Bounce(d) => to_json(&DsnLine {
            file,
            kind: report.kind(),
            reporting_mta: &d.reporting_mta,
            envid: d.envid.as_deref(),
            tokens: &d.tokens,
            recipients: d
                .recipients
                .iter()
                .map(|r| DsnRecipientLine {
                    action: &r.action,
                    status: &r.status,
                    class: r.class.as_str(),
                    reason: r.reason.as_str(),
                    diagnostic: &r.diagnostic,
                })
                .collect(),
        }),
        Report::Feedback(f) => to_json(&FeedbackLine {
            file,
            kind: report.kind(),
            reporter: &f.reporter,
            domain: &f.domain,
            feedback_type: f.kind.as_str(),
            auth_failure: f.auth_failure.as_str(),
            incidents: f.incidents,
        }),
        Report::Tls(r) => to_json(&TlsLine {
            file,
            kind: report.kind(),
            reporter: report.reporter(),
            org_name: &r.organization_name,
            report_id: &r.report_id,
            domain: r.domain(),
            begin: r.begin,
            end: r.end,
            policies: r.policies.len(),
            successful: r.successful(),
            failed: r.failed(),
        }),
    }
}

fn date(t: u64) -> String {
    let s = crate::clock::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
    // Whole seconds are enough here.
    s.replacen(".000Z", "Z", 1)
}

fn table_row(file: &str, report: &Report) -> [String; 8] {
    match report {
        Report::Dmarc(r) => [
            file.to_string(),
            report.kind().into(),
            report.reporter(),
            r.policy.domain.clone(),
            date(r.begin),
            date(r.end),
            r.report_id.clone(),
            format!("{} records, {} messages", r.records, r.messages),
        ],
        Report::Bounce(d) => [
            file.to_string(),
            report.kind().into(),
            d.reporting_mta.clone(),
            String::new(),
            d.arrival.map(|t| date(t.max(0) as u64)).unwrap_or_default(),
            String::new(),
            d.envid.clone().unwrap_or_default(),
            d.recipients
                .iter()
                .map(|r| format!("{} {} ({})", r.action, r.status, r.reason.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        ],
        Report::Feedback(f) => [
            file.to_string(),
            report.kind().into(),
            f.reporter.clone(),
            f.domain.clone(),
            String::new(),
            String::new(),
            f.id.clone(),
            match f.kind {
                super::feedback::FeedbackKind::AuthFailure => format!(
                    "auth-failure ({}), {} incidents",
                    f.auth_failure.as_str(),
                    f.incidents
                ),
                k => format!("{}, {} incidents", k.as_str(), f.incidents),
            },
        ],
        Report::Tls(r) => [
            file.to_string(),
            report.kind().into(),
            report.reporter(),
            r.domain().to_string(),
            date(r.begin),
            date(r.end),
            r.report_id.clone(),
            format!(
                "{} policies, {} successful, {} failed sessions",
                r.policies.len(),
                r.successful(),
                r.failed()
            ),
        ],
    }
}

fn print_table(out: &mut dyn Write, rows: &[[String; 8]], failures: &[(String, String)]) {
    let header = [
        "FILE",
        "KIND",
        "REPORTER",
        "DOMAIN",
        "BEGIN",
        "END",
        "REPORT ID",
        "CONTENT",
    ];
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count().min(60));
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c: String = c.chars().take(60).collect();
            if i + 1 == cells.len() {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    if !rows.is_empty() {
        let _ = writeln!(out, "{}", line(&header));
        for r in rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
    }
    for (file, error) in failures {
        let _ = writeln!(out, "{file}: no report: {error}");
    }
    let _ = writeln!(
        out,
        "{} reports; {} files without a report",
        rows.len(),
        failures.len()
    );
}
