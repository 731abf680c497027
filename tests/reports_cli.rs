//! `deliverability_exporter parse-report`: the JSON lines, the table, and the exit status.

use std::path::PathBuf;
use std::process::Command;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dx-parse-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const XML: &str = r#"<?xml version="1.0"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0"><version>1.0</version>
<report_metadata><org_name>example.net</org_name><email>postmaster@example.net</email>
<report_id>rid-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>example.com</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.1</source_ip><count>5</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>
<record><row><source_ip>203.0.113.10</source_ip><count>2</count><policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain>spoofed.example</domain><result>fail</result></spf></auth_results></record>
</feedback>"#;

const TLS: &str = r#"{"organization-name":"Company-X","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-01T23:59:59Z"},"contact-info":"sts-reporting@company-x.example","report-id":"5065427c","policies":[{"policy":{"policy-type":"sts","policy-domain":"company-y.example","mx-host":"*.mail.company-y.example"},"summary":{"total-successful-session-count":5326,"total-failure-session-count":303}}]}"#;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deliverability_exporter"))
        .arg("parse-report")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_lines_per_report_and_per_unreadable_file() {
    let d = dir("json");
    let xml = d.join("r.xml");
    let tls = d.join("t.json");
    let bad = d.join("bad.xml");
    std::fs::write(&xml, XML).unwrap();
    std::fs::write(&tls, TLS).unwrap();
    std::fs::write(&bad, &XML[..200]).unwrap();
    let (code, out, _) = run(&["--json", xml.to_str().unwrap(), tls.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            r#"{{"file":"{}","kind":"dmarc-aggregate","reporter":"example.net","org_name":"example.net","report_id":"rid-1","domain":"example.com","begin":1700000000,"end":1700086399,"records":2,"messages":7}}"#,
            xml.display()
        )
    );
    assert_eq!(
        lines[1],
        format!(
            r#"{{"file":"{}","kind":"tls-rpt","reporter":"company-x.example","org_name":"Company-X","report_id":"5065427c","domain":"company-y.example","begin":1459468800,"end":1459555199,"policies":1,"successful":5326,"failed":303}}"#,
            tls.display()
        )
    );
    let (code, out, _) = run(&["--json", xml.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 1, "one file gave no report");
    let last: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(last["file"], bad.display().to_string());
    let error = last["error"].as_str().unwrap();
    assert!(
        error.contains("XML error at line 4, byte ") && error.contains("not closed"),
        "{error}"
    );
    let missing = d.join("missing.xml");
    let (code, out, _) = run(&["--json", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("cannot read"), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_table_without_json() {
    let d = dir("table");
    let xml = d.join("r.xml");
    std::fs::write(&xml, XML).unwrap();
    let (code, out, _) = run(&[xml.to_str().unwrap()]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("FILE"), "{out}");
    let row = lines.next().unwrap();
    for cell in [
        "dmarc-aggregate",
        "example.net",
        "example.com",
        "2023-11-14T22:13:20Z",
        "2 records, 7 messages",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert!(
        out.ends_with("1 reports; 0 files without a report\n"),
        "{out}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
