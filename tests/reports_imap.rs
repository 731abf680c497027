//! Reports end to end on the real stack: report e-mails submitted through Postfix into the
//! `reports@seed.test` Dovecot mailbox, read by the running exporter over IMAP, counted, and
//! filed into `Reports/processed` (or `Reports/failed`). Then the exporter is restarted and the
//! same messages are put back into the inbox: they are filed again and nothing is counted twice.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Exporter, Stack, TempDir};

fn dmarc_xml(domain: &str, id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata><org_name>receiver.example</org_name><email>noreply-dmarc@receiver.example</email>
    <report_id>{id}</report_id><date_range><begin>1795900000</begin><end>1795986399</end></date_range></report_metadata>
  <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><pct>100</pct></policy_published>
  <record><row><source_ip>127.0.0.1</source_ip><count>7</count>
    <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><dkim><domain>{domain}</domain><selector>dx</selector><result>pass</result></dkim>
      <spf><domain>{domain}</domain><result>pass</result></spf></auth_results></record>
  <record><row><source_ip>203.0.113.9</source_ip><count>3</count>
    <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results></record>
</feedback>
"#
    )
}

const TLSRPT: &str = r#"{"organization-name":"receiver.example","date-range":{"start-datetime":"2026-11-28T00:00:00Z","end-datetime":"2026-11-28T23:59:59Z"},"contact-info":"tlsrpt@receiver.example","report-id":"tls-2026-11-28","policies":[{"policy":{"policy-type":"sts","policy-domain":"dx.test","mx-host":"mx.seed.test"},"summary":{"total-successful-session-count":40,"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"203.0.113.1","failed-session-count":2}]}]}"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A report e-mail with one attachment, as reporters send them.
fn report_mail(subject: &str, filename: &str, content_type: &str, attachment: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "From: noreply-dmarc@receiver.example\r\nTo: reports@seed.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA report.\r\n--b1\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n\r\n{}\r\n--b1--\r\n",
        wrapped.join("\r\n")
    )
    .into_bytes()
}

fn deliver(st: &Stack, msg: &[u8]) {
    common::smtp_deliver(
        st.port("DX_SMTP_MX_PORT"),
        "noreply-dmarc@receiver.example",
        "reports@seed.test",
        msg,
    );
}

fn maildir(st: &Stack, folder: &str) -> PathBuf {
    let base = Path::new(st.get("DX_MAILDIR_ROOT")).join("seed.test/reports/Maildir");
    if folder.is_empty() {
        base
    } else {
        base.join(format!(".{folder}"))
    }
}

fn count(dir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|s| {
            std::fs::read_dir(dir.join(s))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

fn wait_files(dir: &Path, n: usize) {
    let start = std::time::Instant::now();
    while count(dir) != n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} holds {} messages, expected {n}",
            dir.display(),
            count(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exporter reading `reports@seed.test` over IMAPS every second, filing reports into
/// `Reports/processed` and what holds none into `Reports/failed`.
fn mailbox_config(st: &Stack, dir: &TempDir) -> PathBuf {
    let cfg_path = dir.path().join("dx.toml");
    let cfg = format!(
        r#"[exporter]
state_dir = "{state}"

[[domains]]
name = "dx.test"

[reports]
interval = "1s"

[[reports.sources]]
name = "mailbox"
kind = "imap"
host = "127.0.0.1"
port = {port}
tls = "implicit"
username = "reports@seed.test"
password = "pw-reports"
ca_file = "{ca}"
folder = "INBOX"
processed_folder = "Reports/processed"
error_folder = "Reports/failed"
"#,
        state = dir.path().join("state").display(),
        port = st.port("DX_IMAPS_PORT"),
        ca = st.get("DX_CA_FILE"),
    );
    std::fs::write(&cfg_path, cfg).unwrap();
    cfg_path
}

#[test]
fn reports_mailed_into_a_mailbox_are_counted_once_and_filed() {
    let st = Stack::start("reports-imap", &[]);
    let dir = TempDir::new("reports-imap");
    let cfg_path = mailbox_config(&st, &dir);

    // A gzip'd DMARC report, the same report delivered twice, a TLS report labelled with
    // its own content type, and a message that holds no report.
    let xml = dmarc_xml("dx.test", "r-2026-11-28");
    deliver(
        &st,
        &report_mail(
            "Report domain: dx.test",
            "receiver.example!dx.test!1795900000!1795986399.xml.gz",
            "application/gzip",
            &gzip(xml.as_bytes()),
        ),
    );
    deliver(
        &st,
        &report_mail(
            "Report domain: dx.test (again)",
            "receiver.example!dx.test!1795900000!1795986399.xml.gz",
            "application/gzip",
            &gzip(xml.as_bytes()),
        ),
    );
    deliver(
        &st,
        &report_mail(
            "TLS report",
            "receiver.example!dx.test!1795900000.json.gz",
            "application/tlsrpt+gzip",
            &gzip(TLSRPT.as_bytes()),
        ),
    );
    deliver(&st, b"From: someone@receiver.example\r\nTo: reports@seed.test\r\nSubject: hello\r\n\r\nNot a report.\r\n");
    let inbox = maildir(&st, "");
    wait_files(&inbox, 4);

    let e = Exporter::start(&cfg_path, &[]);
    let dmarc = [("domain", "dx.test"), ("reporter", "receiver.example")];
    let s = e.wait_for("the reports to be counted", Duration::from_secs(30), |s| {
        s.value("deliverability_dmarc_reports_total", &dmarc) == Some(1.0)
            && s.sum(
                "deliverability_tlsrpt_sessions_total",
                &[("domain", "dx.test")],
            ) > 0.0
    });
    assert_eq!(
        s.sum(
            "deliverability_dmarc_messages_total",
            &[("domain", "dx.test")]
        ),
        10.0,
        "7 + 3 messages, the duplicate not counted"
    );
    assert_eq!(
        s.sum(
            "deliverability_dmarc_messages_total",
            &[("domain", "dx.test"), ("dmarc", "fail")]
        ),
        3.0
    );
    assert_eq!(
        s.sum(
            "deliverability_dmarc_messages_total",
            &[("domain", "dx.test"), ("disposition", "reject")]
        ),
        3.0
    );
    assert_eq!(
        s.value(
            "deliverability_tlsrpt_sessions_total",
            &[("domain", "dx.test"), ("result", "successful")]
        ),
        Some(40.0)
    );
    assert_eq!(
        s.value(
            "deliverability_tlsrpt_sessions_total",
            &[("domain", "dx.test"), ("result", "failed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "deliverability_dmarc_report_errors_total",
            &[("source", "mailbox"), ("reason", "not_a_report")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    wait_files(&maildir(&st, "Reports.processed"), 3);
    wait_files(&maildir(&st, "Reports.failed"), 1);
    wait_files(&inbox, 0);
    assert!(
        e.log_text().contains("report already counted"),
        "{}",
        e.log_text()
    );
    e.stop();

    // Put the processed messages back in the inbox and start again: filed again, not counted.
    let processed = maildir(&st, "Reports.processed");
    for sub in ["new", "cur"] {
        for f in std::fs::read_dir(processed.join(sub)).unwrap() {
            let f = f.unwrap();
            let name = f
                .file_name()
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap()
                .to_string();
            std::fs::rename(f.path(), inbox.join("new").join(name)).unwrap();
        }
    }
    wait_files(&inbox, 3);
    let e = Exporter::start(&cfg_path, &[]);
    wait_files(&maildir(&st, "Reports.processed"), 3);
    wait_files(&inbox, 0);
    let s = e.wait_for("a finished report run", Duration::from_secs(10), |s| {
        s.value(
            "deliverability_check_runs_total",
            &[("check", "reports"), ("result", "success")],
        ) >= Some(1.0)
    });
    assert_eq!(
        s.sum("deliverability_dmarc_reports_total", &[]),
        0.0,
        "nothing counted twice:\n{}",
        s.0
    );
    assert_eq!(s.sum("deliverability_dmarc_messages_total", &[]), 0.0);
    assert_eq!(s.sum("deliverability_tlsrpt_sessions_total", &[]), 0.0);
}

fn dmarc_from(org_name: &str, email: &str, id: &str) -> String {
    dmarc_xml("dx.test", id).replace(
        "<org_name>receiver.example</org_name><email>noreply-dmarc@receiver.example</email>",
        &format!("<org_name>{org_name}</org_name><email>{email}</email>"),
    )
}

/// One definition of "reporter" (issue 11): the same receiver, however its reports spell
/// `<org_name>`, is one `reporter` label value and the same `parse-report --json` value.
#[test]
fn one_receiver_is_one_reporter_in_metrics_and_in_parse_report() {
    let st = Stack::start("reports-reporter", &[]);
    let dir = TempDir::new("reports-reporter");
    let cfg_path = mailbox_config(&st, &dir);
    let reports = [
        (
            "Outlook.com",
            "dmarcrep@microsoft.com",
            "ms-1",
            "microsoft.com",
        ),
        (
            "Microsoft Corporation",
            "noreply@DMARC.Microsoft.COM",
            "ms-2",
            "microsoft.com",
        ),
        ("WEB.DE", "", "webde-1", "web.de"),
    ];
    let mut files = Vec::new();
    for (org, email, id, _) in reports {
        let xml = dmarc_from(org, email, id);
        let f = dir.path().join(format!("{id}.xml"));
        std::fs::write(&f, &xml).unwrap();
        files.push(f);
        deliver(
            &st,
            &report_mail(
                &format!("Report {id}"),
                &format!("{id}.xml"),
                "text/xml",
                xml.as_bytes(),
            ),
        );
    }
    wait_files(&maildir(&st, ""), 3);

    let e = Exporter::start(&cfg_path, &[]);
    let s = e.wait_for("the reports to be counted", Duration::from_secs(30), |s| {
        s.sum("deliverability_dmarc_reports_total", &[]) == 3.0
    });
    let reporters: std::collections::BTreeMap<String, f64> = s
        .samples("deliverability_dmarc_reports_total")
        .into_iter()
        .map(|(l, v)| (l["reporter"].clone(), v))
        .collect();
    assert_eq!(
        reporters,
        [
            ("microsoft.com".to_string(), 2.0),
            ("web.de".to_string(), 1.0)
        ]
        .into_iter()
        .collect(),
        "{}",
        s.0
    );
    e.stop();

    let out = std::process::Command::new(common::bin())
        .arg("parse-report")
        .arg("--json")
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, (org, _, id, reporter)) in lines.iter().zip(reports) {
        assert_eq!(line["report_id"], id);
        assert_eq!(line["reporter"], reporter, "{line}");
        assert_eq!(line["org_name"], org, "the name as written stays available");
    }
}
