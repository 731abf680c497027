//! Signals from outside the canaries, through the running exporter (issue 13):
//!
//! - TLS-RPT reports POSTed over HTTPS (RFC 8460 §3) to a `kind = "https"` report source, by a
//!   real client: curl, with the exact upload command of the `tlsrpt-reporter` package (PyPI,
//!   0.6.0: `curl --silent --header 'Content-Type: application/tlsrpt+gzip' --data-binary @-`).
//!   Counted through the same ledger as a report read from a directory: once, across sources
//!   and restarts.
//!
//! The TLS certificate is made for the test by openssl (a CA and a leaf for 127.0.0.1, as
//! `scripts/stack` makes the stack's). Nothing leaves 127.0.0.1.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::config::NO_DNS;
use common::{Exporter, TempDir};

/// A CA and a server certificate for 127.0.0.1 and localhost under `dir`: (ca, chain, key).
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-new"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=dx test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req", "-new"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "7",
        "-days",
        "30",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    let chain = std::fs::read_to_string(dir.join("server.pem")).unwrap()
        + &std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("server-chain.pem"), chain).unwrap();
    (
        dir.join("ca.pem"),
        dir.join("server-chain.pem"),
        dir.join("server.key"),
    )
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tlsrpt(id: &str) -> String {
    format!(
        r#"{{"organization-name":"receiver.example","date-range":{{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T23:59:59Z"}},"contact-info":"tlsrpt@receiver.example","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"dx.test","mx-host":"mx.dx.test"}},"summary":{{"total-successful-session-count":40,"total-failure-session-count":2}},"failure-details":[{{"result-type":"certificate-expired","sending-mta-ip":"203.0.113.1","failed-session-count":2}}]}}]}}"#
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// POSTs `body` with curl; returns (status, body). `extra` are more curl arguments.
fn curl(url: &str, ca: &Path, content_type: &str, body: &[u8], extra: &[&str]) -> (u16, String) {
    let mut child = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["--header", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", "@-", "--write-out", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr))),
        body.to_string(),
    )
}

fn sessions(e: &Exporter, result: &str) -> f64 {
    e.scrape().sum(
        "deliverability_tlsrpt_sessions_total",
        &[("domain", "dx.test"), ("result", result)],
    )
}

fn answered(e: &Exporter, code: &str) -> f64 {
    e.scrape().sum(
        "deliverability_report_http_requests_total",
        &[("source", "tlsrpt-https"), ("code", code)],
    )
}

#[test]
fn tls_reports_posted_over_https_are_counted_once_with_the_mailed_ones() {
    let dir = TempDir::new("tlsrpt-https");
    let (ca, chain, key) = tls_files(dir.path());
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let port = free_port();
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{state}\"\n\n{NO_DNS}[[domains]]\nname = \"dx.test\"\nmta_sts = false\n\n\
             [reports]\ninterval = \"1s\"\nmax_decompressed_bytes = 200000\n\n\
             [[reports.sources]]\nname = \"dir\"\nkind = \"dir\"\npath = \"{inbox}\"\n\n\
             [[reports.sources]]\nname = \"tlsrpt-https\"\nkind = \"https\"\nlisten_address = \"127.0.0.1:{port}\"\n\
             url_path = \"/tlsrpt\"\ntls_cert_file = \"{chain}\"\ntls_key_file = \"{key}\"\nmax_body_bytes = 4096\n",
            state = dir.path().join("state").display(),
            inbox = inbox.display(),
            chain = chain.display(),
            key = key.display(),
        ),
    )
    .unwrap();
    let e = Exporter::start(&cfg, &[]);
    e.wait_for("the endpoint listening", Duration::from_secs(20), |s| {
        s.value(
            "deliverability_report_http_listening",
            &[("source", "tlsrpt-https")],
        ) == Some(1.0)
    });
    let url = format!("https://127.0.0.1:{port}/tlsrpt");

    // tlsrpt-reporter's own upload command (it passes the URL last), then the JSON form.
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+gzip",
        &gzip(tlsrpt("posted-1").as_bytes()),
        &[],
    );
    assert_eq!((code, body.trim()), (200, "counted"));
    assert_eq!(sessions(&e, "successful"), 40.0);
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+gzip",
        &gzip(tlsrpt("posted-1").as_bytes()),
        &[],
    );
    assert_eq!(
        (code, body.trim()),
        (200, "already counted"),
        "a retried POST"
    );
    assert_eq!(sessions(&e, "successful"), 40.0, "not counted twice");
    let (code, _) = curl(
        &url,
        &ca,
        "application/tlsrpt+json; charset=utf-8",
        tlsrpt("posted-2").as_bytes(),
        &[],
    );
    assert_eq!(code, 200);
    assert_eq!(sessions(&e, "successful"), 80.0);
    assert_eq!(sessions(&e, "failed"), 4.0);

    // A report read from the directory source first, then POSTed: counted once.
    std::fs::write(
        inbox.join("mailed.json.gz"),
        gzip(tlsrpt("mailed-3").as_bytes()),
    )
    .unwrap();
    e.wait_for(
        "the directory's report counted",
        Duration::from_secs(20),
        |s| {
            s.sum(
                "deliverability_tlsrpt_sessions_total",
                &[("domain", "dx.test"), ("result", "successful")],
            ) == 120.0
        },
    );
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+gzip",
        &gzip(tlsrpt("mailed-3").as_bytes()),
        &[],
    );
    assert_eq!((code, body.trim()), (200, "already counted"));

    // What is refused, and how.
    let (code, body) = curl(&url, &ca, "application/json", tlsrpt("x").as_bytes(), &[]);
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("application/tlsrpt+gzip"), "{body}");
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+gzip",
        tlsrpt("x").as_bytes(),
        &[],
    );
    assert_eq!(code, 400);
    assert!(body.contains("gzip-compressed body"), "{body}");
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+json",
        b"{\"organization-name\": 7",
        &[],
    );
    assert_eq!(code, 400, "{body}");
    let (code, _) = curl(&url, &ca, "application/tlsrpt+json", &[b' '; 5000], &[]);
    assert_eq!(code, 413, "over max_body_bytes");
    // A body that swells past the decompression budget is not a bomb here either.
    let mut swell = b"{\"organization-name\":\"".to_vec();
    swell.resize(2 << 20, b'a');
    let bomb = gzip(&swell);
    assert!(bomb.len() < 4096);
    let (code, body) = curl(&url, &ca, "application/tlsrpt+gzip", &bomb, &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("200000"), "the limit is named: {body}");
    let (code, _) = curl(
        &format!("https://127.0.0.1:{port}/elsewhere"),
        &ca,
        "application/tlsrpt+gzip",
        b"x",
        &[],
    );
    assert_eq!(code, 404);
    let (code, _) = curl(
        &url,
        &ca,
        "application/tlsrpt+json",
        b"",
        &["--request", "GET"],
    );
    assert_eq!(code, 405);
    assert_eq!(answered(&e, "200"), 4.0);
    assert_eq!(answered(&e, "400"), 3.0);
    assert_eq!((answered(&e, "413"), answered(&e, "415")), (1.0, 1.0));
    assert_eq!((answered(&e, "404"), answered(&e, "405")), (1.0, 1.0));
    assert!(
        e.scrape().sum(
            "deliverability_dmarc_report_errors_total",
            &[("source", "tlsrpt-https")]
        ) >= 1.0,
        "the unreadable report is counted as a report error of its source"
    );
    // A client that does not trust the certificate gets nothing.
    let out = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--data-binary", "x", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(60), "curl: certificate not trusted");

    // After a restart the ledger still knows the reports.
    drop(e);
    let e = Exporter::start(&cfg, &[]);
    e.wait_for(
        "the endpoint listening again",
        Duration::from_secs(20),
        |s| {
            s.value(
                "deliverability_report_http_listening",
                &[("source", "tlsrpt-https")],
            ) == Some(1.0)
        },
    );
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+gzip",
        &gzip(tlsrpt("posted-1").as_bytes()),
        &[],
    );
    assert_eq!((code, body.trim()), (200, "already counted"));
    assert_eq!(
        sessions(&e, "successful"),
        0.0,
        "nothing counted after the restart"
    );
}
