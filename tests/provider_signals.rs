//! Signals from outside the canaries, through the running exporter (issue 13):
//!
//! - TLS-RPT reports POSTed over HTTPS (RFC 8460 §3) to a `kind = "https"` report source, by a
//!   real client: curl, with the exact upload command of the `tlsrpt-reporter` package (PyPI,
//!   0.6.0: `curl --silent --header 'Content-Type: application/tlsrpt+gzip' --data-binary @-`).
//!   Counted through the same ledger as a report read from a directory: once, across sources
//!   and restarts.
//!
//! - Microsoft SNDS and Google Postmaster Tools v2: a SaaS API cannot be reached from a test,
//!   so each is tested against a local HTTPS server replaying its documented responses
//!   (tests/replay/replay.py, with fixtures written from the documentation: tests/fixtures/snds,
//!   tests/fixtures/postmaster). The replay server logs every request, so the tests also check
//!   what the exporter sent (the key, the token exchange, the queries).
//!
//! The TLS certificate is made for the test by openssl (a CA and a leaf for 127.0.0.1, as
//! `scripts/stack` makes the stack's). Nothing leaves 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    let (port, plain) = (free_port(), free_port());
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{state}\"\n\n{NO_DNS}[[domains]]\nname = \"dx.test\"\nmta_sts = false\n\n\
             [reports]\ninterval = \"1s\"\nmax_decompressed_bytes = 200000\nunknown_domains = \"ignore\"\n\n\
             [[reports.sources]]\nname = \"tlsrpt-plain\"\nkind = \"https\"\nlisten_address = \"127.0.0.1:{plain}\"\n\n\
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
    // A report for a domain that is not configured (unknown_domains = "ignore"): not recorded.
    let (code, body) = curl(
        &url,
        &ca,
        "application/tlsrpt+json",
        tlsrpt("elsewhere-1")
            .replace("dx.test", "elsewhere.example")
            .as_bytes(),
        &[],
    );
    assert_eq!(
        (code, body.trim()),
        (200, "ignored: not a configured domain")
    );
    assert_eq!(sessions(&e, "successful"), 120.0);

    // Faults a real client does not make (a hand-written peer, on the plain source): a body
    // that never comes is answered 408 after 10 s; a 17th connection from one address is
    // closed at once while 16 are open.
    let raw = |head: &str| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", plain)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(head.as_bytes()).unwrap();
        c
    };
    let answer = |mut c: std::net::TcpStream| {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut c, &mut text);
        text
    };
    let slow = raw(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: 100\r\n\r\n{",
    );
    let idle: Vec<_> = (0..15).map(|_| raw("")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let seventeenth = raw(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: 1\r\n\r\n{",
    );
    assert_eq!(answer(seventeenth), "", "closed without an answer");
    assert!(
        answer(slow).starts_with("HTTP/1.1 408"),
        "a body that never came"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let ok = raw(&format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        tlsrpt("plain-4").len(),
        tlsrpt("plain-4")
    ));
    let text = answer(ok);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("counted\n"),
        "{text}"
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

    // A reload that removes the https sources leaves no listener series behind.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let without = text
        .split("[[reports.sources]]")
        .filter(|part| !part.contains("kind = \"https\""))
        .collect::<Vec<_>>()
        .join("[[reports.sources]]");
    std::fs::write(&cfg, without).unwrap();
    e.signal("HUP");
    e.wait_for("no listener series", Duration::from_secs(30), |s| {
        s.samples("deliverability_report_http_listening").is_empty()
    });
}

/// The replay server (tests/replay/replay.py): answers from a routes file the test rewrites.
struct Replay {
    child: Child,
    port: u16,
    routes: PathBuf,
    log: PathBuf,
}

impl Replay {
    fn start(dir: &Path, chain: &Path, key: &Path) -> Replay {
        let routes = dir.join("routes.json");
        let log = dir.join("requests.jsonl");
        std::fs::write(&routes, "{}").unwrap();
        let mut child = Command::new("python3")
            .arg(common::repo().join("tests/replay/replay.py"))
            .args([&routes, &chain.to_path_buf(), &key.to_path_buf(), &log])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("replay.py: {line:?}"));
        Replay {
            child,
            port,
            routes,
            log,
        }
    }

    /// Answers each key ("GET /path") as the JSON map gives (tests/replay/replay.py).
    fn set(&self, routes: serde_json::Value) {
        let tmp = self.routes.with_extension("tmp");
        std::fs::write(&tmp, routes.to_string()).unwrap();
        std::fs::rename(tmp, &self.routes).unwrap();
    }

    /// Answers `key` ("GET /path") with the fixture `file` (under tests/fixtures).
    fn routes(&self, routes: &[(&str, u16, &str, &str)]) {
        let mut map = serde_json::Map::new();
        for (key, status, file, ctype) in routes {
            map.insert(
                key.to_string(),
                serde_json::json!({
                    "status": status,
                    "file": common::repo().join("tests/fixtures").join(file),
                    "type": ctype,
                }),
            );
        }
        let tmp = self.routes.with_extension("tmp");
        std::fs::write(&tmp, serde_json::Value::Object(map).to_string()).unwrap();
        std::fs::rename(tmp, &self.routes).unwrap();
    }

    /// The requests received so far.
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn one_hot(e: &Exporter, name: &str, labels: &[(&str, &str)], state: &str) -> bool {
    let s = e.scrape();
    let mut l = labels.to_vec();
    l.push(("state", state));
    s.value(name, &l) == Some(1.0)
}

const SNDS_KEY: &str = "dx-test-key-0123456789";

#[test]
fn snds_verdicts_per_ip_and_failures_as_states() {
    let dir = TempDir::new("snds");
    let (ca, chain, key) = tls_files(dir.path());
    let replay = Replay::start(dir.path(), &chain, &key);
    let csv = "text/csv; charset=utf-8";
    replay.routes(&[
        ("GET /snds/data.aspx", 200, "snds/data-2026-12-01.csv", csv),
        ("GET /snds/ipStatus.aspx", 200, "snds/ipstatus.csv", csv),
    ]);
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{state}\"\n\n{NO_DNS}[snds]\ninterval = \"1s\"\nbase_url = \"https://127.0.0.1:{port}/snds\"\nkey = \"{SNDS_KEY}\"\nca_file = \"{ca}\"\nmax_ips = 50\n",
            state = dir.path().join("state").display(),
            port = replay.port,
            ca = ca.display(),
        ),
    )
    .unwrap();
    let e = Exporter::start(&cfg, &[]);
    e.wait_for("SNDS read", Duration::from_secs(30), |s| {
        s.value("deliverability_snds_state", &[("state", "ok")]) == Some(1.0)
    });
    let s = e.scrape();
    let v = |name: &str, labels: &[(&str, &str)]| s.value(name, labels);
    let red = [("ip", "198.51.100.7"), ("result", "red")];
    assert_eq!(v("deliverability_snds_filter_result", &red), Some(1.0));
    assert_eq!(
        v(
            "deliverability_snds_filter_result",
            &[("ip", "198.51.100.7"), ("result", "green")]
        ),
        Some(0.0)
    );
    assert_eq!(
        v(
            "deliverability_snds_filter_result",
            &[("ip", "192.0.2.11"), ("result", "yellow")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "deliverability_snds_complaint_rate",
            &[("ip", "192.0.2.11")]
        ),
        Some(0.003)
    );
    assert_eq!(
        v(
            "deliverability_snds_complaint_rate",
            &[("ip", "192.0.2.10")]
        ),
        Some(0.001)
    );
    assert_eq!(
        v("deliverability_snds_trap_hits", &[("ip", "198.51.100.7")]),
        Some(57.0)
    );
    assert_eq!(
        v(
            "deliverability_snds_rcpt_commands",
            &[("ip", "198.51.100.7")]
        ),
        Some(40000.0)
    );
    assert_eq!(
        v(
            "deliverability_snds_message_recipients",
            &[("ip", "198.51.100.7")]
        ),
        Some(41000.0)
    );
    // 2026-12-01 23:58 (read as UTC).
    assert_eq!(
        v(
            "deliverability_snds_data_day_timestamp_seconds",
            &[("ip", "192.0.2.10")]
        ),
        Some(1_796_169_480.0)
    );
    assert_eq!(
        v("deliverability_snds_trap_hits", &[("ip", "203.0.113.5")]),
        None,
        "its row is unreadable"
    );
    let blocked = "blocked_due_to_user_complaints_or_other_evidence";
    assert_eq!(
        v(
            "deliverability_snds_ip_blocked",
            &[("ip", "192.0.2.3"), ("reason", blocked)]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "deliverability_snds_ip_blocked",
            &[
                ("ip", "198.51.100.7"),
                ("reason", "junked_due_to_user_complaints_or_other_evidence")
            ]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.samples("deliverability_snds_ip_blocked").len(),
        50,
        "81 listed IPs, capped at max_ips"
    );
    // The key went to SNDS in the query, and nowhere else.
    let reqs = replay.requests();
    assert!(
        reqs.iter()
            .any(|r| r["path"] == "/snds/data.aspx" && r["query"] == format!("key={SNDS_KEY}")),
        "{reqs:?}"
    );
    assert!(!s.0.contains(SNDS_KEY));

    // A refused key (SNDS answers an HTML page), a 429, a day without data: states; the
    // last values stay.
    for (file, status, ctype, state) in [
        ("snds/error-page.html", 200, "text/html", "denied"),
        ("snds/empty.csv", 429, csv, "rate_limited"),
        ("snds/empty.csv", 200, csv, "no_data"),
    ] {
        replay.routes(&[
            ("GET /snds/data.aspx", status, file, ctype),
            ("GET /snds/ipStatus.aspx", 200, "snds/ipstatus.csv", csv),
        ]);
        e.wait_for(state, Duration::from_secs(30), |s| {
            s.value("deliverability_snds_state", &[("state", state)]) == Some(1.0)
        });
        assert_eq!(
            e.scrape().value("deliverability_snds_filter_result", &red),
            Some(1.0),
            "{state}: kept"
        );
        assert!(one_hot(&e, "deliverability_snds_state", &[], state));
    }
    assert_eq!(
        e.scrape()
            .value("deliverability_check_success", &[("check", "snds")]),
        Some(1.0),
        "a day without data is no failure"
    );
    let log = e.log_text();
    assert!(!log.contains(SNDS_KEY), "the key is never logged");
    assert!(
        log.contains("an HTML page, not SNDS CSV"),
        "the refusal is explained"
    );
}

/// A stats answer (QueryDomainStatsResponse) with `rows` of (metric index, day, value):
/// `Metric::daily()` names its definitions m0.. in this order: spam rate, auth spf/dkim/dmarc,
/// TLS inbound/outbound, delivery error rate (all), count (all), rate by type (reject,
/// temp_fail), rate by reason (10: bad_attachment, bad_or_missing_ptr_record, ip_in_rbls, ...),
/// feedback-loop ids.
fn stats_body(rows: &[(usize, (i64, u32, u32), serde_json::Value)]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (m, (y, mo, d), v))| {
            serde_json::json!({
                "name": format!("domains/example.com/domainStats/r{i}"),
                "metric": format!("m{m}"),
                "date": {"year": y, "month": mo, "day": d},
                "value": v,
            })
        })
        .collect();
    serde_json::json!({ "domainStats": rows }).to_string()
}

/// The civil date `days_ago` days before `now` (Unix seconds, UTC).
fn day(now: i64, days_ago: i64) -> (i64, u32, u32) {
    deliverability_exporter::clock::civil_from_days(now / 86_400 - days_ago)
}

fn b64url_json(part: &str) -> serde_json::Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn postmaster_tools_per_domain_with_a_service_account() {
    let dir = TempDir::new("postmaster");
    let (ca, chain, key) = tls_files(dir.path());
    let replay = Replay::start(dir.path(), &chain, &key);
    let fx = |f: &str| common::repo().join("tests/fixtures/postmaster").join(f);
    let file = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let d = |v: f64| serde_json::json!({ "doubleValue": v });
    // One clock reading for every date of the test (one that crosses 00:00 UTC fails, rarely).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (yesterday, older) = (day(now, 1), day(now, 3));
    let stats = file(
        "stats.json",
        stats_body(&[
            (0, older, d(0.0009)),
            (0, yesterday, d(0.0042)),
            (1, yesterday, d(0.99)),
            (2, yesterday, d(0.98)),
            (3, yesterday, d(0.97)),
            (4, yesterday, d(1.0)),
            (6, yesterday, d(0.02)),
            (8, yesterday, d(0.015)),
            (9, yesterday, d(0.005)),
            (12, yesterday, d(0.011)),
            (
                20,
                yesterday,
                serde_json::json!({"stringList": {"values": ["campaign-42", "newsletter"]}}),
            ),
        ]),
    );
    let loops = file(
        "loops.json",
        stats_body(&[(0, yesterday, d(0.004)), (1, yesterday, d(0.0007))]),
    );
    let token = file(
        "token.json",
        r#"{"access_token":"pm-access-1","expires_in":3600,"token_type":"Bearer"}"#.into(),
    );
    let empty = file("empty.json", "{}".into());
    let answer = |status: u16, f: &Path| serde_json::json!({"status": status, "file": f});
    let routes = |example_stats: serde_json::Value| {
        serde_json::json!({
            "POST /token": answer(200, &token),
            "GET /v2/domains?pageSize=200": answer(200, &fx("domains-list-page1.json")),
            "GET /v2/domains?pageSize=200&pageToken=ChFkb21haW5zL2V4YW1wbGUub3Jn": answer(200, &fx("domains-list-page2.json")),
            "POST /v2/domains/example.com/domainStats:query": example_stats,
            "GET /v2/domains/example.com/complianceStatus": answer(200, &fx("compliance-example.com.json")),
            "POST /v2/domains/mail.example.com/domainStats:query": answer(200, &empty),
            "GET /v2/domains/mail.example.com/complianceStatus": answer(200, &fx("compliance-example.com.json")),
            "POST /v2/domains/example.net/domainStats:query": answer(403, &fx("error-403.json")),
        })
    };
    replay.set(routes(serde_json::json!([
        {"when": "FEEDBACK_LOOP_SPAM_RATE", "status": 200, "file": loops},
        {"status": 200, "file": stats},
    ])));
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{state}\"\n\n{NO_DNS}[postmaster]\ninterval = \"1s\"\nbase_url = \"https://127.0.0.1:{port}\"\ncredentials_file = \"{key}\"\ntoken_url = \"https://127.0.0.1:{port}/token\"\nca_file = \"{ca}\"\ndays = 5\n",
            state = dir.path().join("state").display(),
            port = replay.port,
            key = fx("service-account.json").display(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let e = Exporter::start(&cfg, &[]);
    let pm = "deliverability_postmaster_state";
    e.wait_for("every domain polled", Duration::from_secs(30), |s| {
        s.value(pm, &[("domain", "example.com"), ("state", "ok")]) == Some(1.0)
            && s.value(pm, &[("domain", "example.net"), ("state", "denied")]) == Some(1.0)
            && s.value(pm, &[("domain", "mail.example.com"), ("state", "no_data")]) == Some(1.0)
    });
    assert!(
        one_hot(&e, pm, &[("domain", "mail.example.com")], "no_data"),
        "no day with data: low volume"
    );
    let s = e.scrape();
    let ex = [("domain", "example.com")];
    let v = |name: &str, labels: &[(&str, &str)]| s.value(name, labels);
    assert_eq!(
        v("deliverability_postmaster_spam_rate", &ex),
        Some(0.0042),
        "the newest day"
    );
    assert_eq!(
        v(
            "deliverability_postmaster_auth_success_rate",
            &[("domain", "example.com"), ("method", "dkim")]
        ),
        Some(0.98)
    );
    assert_eq!(
        v("deliverability_postmaster_tls_encryption_rate", &ex),
        Some(1.0)
    );
    assert_eq!(
        v(
            "deliverability_postmaster_delivery_error_rate",
            &[("domain", "example.com"), ("class", "all"), ("type", "all")]
        ),
        Some(0.02)
    );
    assert_eq!(
        v(
            "deliverability_postmaster_delivery_error_rate",
            &[
                ("domain", "example.com"),
                ("class", "temporary"),
                ("type", "all")
            ]
        ),
        Some(0.005)
    );
    assert_eq!(
        v(
            "deliverability_postmaster_delivery_error_rate",
            &[
                ("domain", "example.com"),
                ("class", "permanent"),
                ("type", "ip_in_rbls")
            ]
        ),
        Some(0.011)
    );
    assert_eq!(
        v("deliverability_postmaster_feedback_loop_spam_rate", &ex),
        Some(0.004),
        "the highest identifier's"
    );
    let (y, m, dd) = yesterday;
    let midnight = ((now / 86_400 - 1) * 86_400) as f64;
    assert_eq!(
        v("deliverability_postmaster_data_day_timestamp_seconds", &ex),
        Some(midnight),
        "{y}-{m}-{dd}"
    );
    let req = |r: &str| {
        v(
            "deliverability_postmaster_requirement_met",
            &[("domain", "example.com"), ("requirement", r)],
        )
    };
    assert_eq!(
        (
            req("spf"),
            req("dmarc_alignment"),
            req("one_click_unsubscribe")
        ),
        (Some(1.0), Some(0.0), Some(0.0))
    );
    assert_eq!(
        req("user_reported_spam_rate"),
        Some(0.0),
        "Google's own name where the exporter has none"
    );
    assert_eq!(req("honor_unsubscribe"), None, "no verdict: no series");
    assert_eq!(
        v(pm, &[("domain", "example.org"), ("state", "ok")]),
        None,
        "listed with permission NONE: not asked"
    );

    // What was sent: a signed assertion for the read-only scopes, then the bearer token.
    let reqs = replay.requests();
    let tok = reqs
        .iter()
        .find(|r| r["path"] == "/token")
        .expect("token exchange");
    let form: std::collections::HashMap<String, String> =
        form_urlencoded_pairs(tok["body"].as_str().unwrap());
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let parts: Vec<&str> = form["assertion"].split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(b64url_json(parts[0])["alg"], "RS256");
    let claims = b64url_json(parts[1]);
    assert_eq!(claims["iss"], "dx-test@dx-test.iam.gserviceaccount.com");
    assert_eq!(
        claims["aud"], "https://127.0.0.1/token",
        "the key file's token_uri"
    );
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .contains("postmaster.traffic.readonly")
    );
    let api: Vec<_> = reqs.iter().filter(|r| r["path"] != "/token").collect();
    assert!(
        api.iter()
            .all(|r| r["headers"]["authorization"] == "Bearer pm-access-1"),
        "{api:?}"
    );
    let query = api
        .iter()
        .find(|r| r["path"] == "/v2/domains/example.com/domainStats:query")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(query["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["aggregationGranularity"], "DAILY");
    assert_eq!(
        body["metricDefinitions"][0]["baseMetric"]["standardMetric"],
        "SPAM_RATE"
    );
    assert_eq!(
        body["timeQuery"]["dateRanges"]["dateRanges"][0]["end"],
        serde_json::json!({"year": y, "month": m, "day": dd})
    );
    let tokens = reqs.iter().filter(|r| r["path"] == "/token").count();

    // A 429 and a 401 are states; the values stay. After the 401 a new token is fetched.
    replay.set(routes(answer(429, &fx("error-429.json"))));
    e.wait_for("rate limited", Duration::from_secs(30), |s| {
        s.value(pm, &[("domain", "example.com"), ("state", "rate_limited")]) == Some(1.0)
    });
    assert_eq!(
        e.scrape().value("deliverability_postmaster_spam_rate", &ex),
        Some(0.0042)
    );
    replay.set(routes(answer(401, &empty)));
    e.wait_for("unauthenticated", Duration::from_secs(30), |s| {
        s.value(
            pm,
            &[("domain", "example.com"), ("state", "unauthenticated")],
        ) == Some(1.0)
    });
    e.wait_for("a new token", Duration::from_secs(30), |_| {
        replay
            .requests()
            .iter()
            .filter(|r| r["path"] == "/token")
            .count()
            > tokens
    });
    assert_eq!(
        e.scrape().value("deliverability_postmaster_spam_rate", &ex),
        Some(0.0042)
    );
    // No credential in the log or the metrics: not the access token, not the signed assertion
    // (a bearer credential for an hour), not a line of the private key.
    let log = e.log_text();
    let scrape = e.scrape().0;
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx("service-account.json")).unwrap())
            .unwrap();
    let key_line = key["private_key"].as_str().unwrap().lines().nth(5).unwrap();
    assert!(key_line.len() > 40, "{key_line}");
    let assertion = form["assertion"].as_str();
    for secret in [
        "pm-access-1",
        key_line,
        assertion,
        &assertion[assertion.len() - 60..],
    ] {
        assert!(!log.contains(secret), "a credential in the log: {secret}");
        assert!(
            !scrape.contains(secret),
            "a credential in the metrics: {secret}"
        );
    }
}

fn form_urlencoded_pairs(body: &str) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}
