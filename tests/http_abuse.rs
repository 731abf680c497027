//! Slow and abusive HTTP clients are bounded: silent and slow-header connections are closed
//! after `--web.header-timeout`, a flood of them holds up no scrape (past
//! `--web.max-open-connections` the oldest is shed), probes beyond `--web.max-probes` are
//! answered 503 at once, oversized requests are refused, and error answers are short. Through
//! all of it the exporter keeps answering scrapes. (TLS handshakes and password guessing:
//! tests/web_config.rs.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Exporter, TempDir};

fn exporter(dir: &TempDir, flags: &[&str]) -> Exporter {
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    Exporter::start(&cfg, flags)
}

/// Reads until the server closes; returns what it sent and how long that took.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    s.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    (all, start.elapsed())
}

#[test]
fn silent_and_slow_clients_are_cut_off_after_the_header_timeout() {
    let dir = TempDir::new("abuse-slow");
    let e = exporter(&dir, &["--web.header-timeout", "1s"]);
    // Says nothing at all.
    let mut silent = TcpStream::connect(&e.addr).unwrap();
    // Starts a request and trickles the headers.
    let mut slow = TcpStream::connect(&e.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            if slow.write_all(b"X-A: b\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        read_until_closed(&mut slow, Duration::from_secs(10)).1
    });
    let (_, silent_took) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(
        silent_took < Duration::from_secs(3),
        "a silent connection was held {silent_took:?}"
    );
    let slow_took = trickle.join().unwrap();
    assert!(
        slow_took < Duration::from_secs(5),
        "a slow-header connection was held {slow_took:?}"
    );
    assert_eq!(e.get("/-/healthy").0, 200);
}

/// `n` connections that each sent half a request head and wait, as a slowloris does.
fn slow_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
                .unwrap();
            s
        })
        .collect()
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_flood_of_slow_connections_does_not_hold_up_a_scrape() {
    let dir = TempDir::new("abuse-flood");
    // Fewer request slots than slow clients, and a header timeout longer than the test: the
    // flood stays open throughout.
    let e = exporter(
        &dir,
        &["--web.max-connections", "4", "--web.header-timeout", "60s"],
    );
    let flood = slow_connections(&e.addr, 300);
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&e.addr).unwrap())
        .collect();
    for _ in 0..3 {
        let s = e.scrape();
        assert!(s.0.contains("deliverability_build_info"), "{}", s.0);
        // The scrape was served while the flood was open: the exporter counts it.
        let open = s
            .value("deliverability_http_connections_open", &[])
            .unwrap();
        assert!(open >= 321.0, "connections open during the scrape: {open}");
    }
    assert!(!closed_by_server(&mut silent[0], Duration::from_millis(50)));
    drop(flood);
    drop(silent);
}

#[test]
fn past_the_open_connection_bound_the_oldest_unfinished_connection_is_shed() {
    let dir = TempDir::new("abuse-shed");
    let e = exporter(
        &dir,
        &[
            "--web.max-open-connections",
            "50",
            "--web.header-timeout",
            "60s",
        ],
    );
    let mut flood = slow_connections(&e.addr, 300);
    // Every scrape gets in: each sheds the oldest unfinished connection to make room.
    for _ in 0..3 {
        let s = e.scrape();
        assert!(s.0.contains("deliverability_build_info"), "{}", s.0);
        let open = s
            .value("deliverability_http_connections_open", &[])
            .unwrap();
        assert!(open <= 50.0, "{open} open, bound 50");
        let shed = s
            .value(
                "deliverability_http_connections_dropped_total",
                &[("reason", "shed")],
            )
            .unwrap();
        assert!(shed >= 250.0, "{shed} shed");
    }
    // The first connections made room; the last ones are still open.
    assert!(closed_by_server(&mut flood[0], Duration::from_secs(10)));
    assert!(!closed_by_server(
        flood.last_mut().unwrap(),
        Duration::from_millis(50)
    ));
}

#[test]
fn oversized_requests_are_refused() {
    let dir = TempDir::new("abuse-big");
    let e = exporter(&dir, &[]);
    let mut s = TcpStream::connect(&e.addr).unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(huge.as_bytes());
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("deliverability_build_info"),
        "an oversized request must not be served"
    );
    // A body is never read: a huge POST to /-/reload is answered without it.
    let mut s = TcpStream::connect(&e.addr).unwrap();
    let _ =
        s.write_all(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n");
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(took < Duration::from_secs(5));
    assert_eq!(e.get("/-/healthy").0, 200);
}

/// A GET with extra header lines; the status, the head (lower-cased) and the body.
fn get_raw(addr: &str, path: &str, extra: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
    let (all, _) = read_until_closed(&mut s, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn probes_beyond_the_bound_are_refused_at_once_and_scrapes_go_on() {
    let dir = TempDir::new("abuse-probes");
    // A nameserver that never answers: every probe runs until its timeout.
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{}\"\n\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"20s\"\nattempts = 1\n",
            dir.path().join("state").display(),
            dns.local_addr().unwrap()
        ),
    )
    .unwrap();
    let e = Exporter::start(&cfg, &["--web.max-probes", "2"]);
    // Two probes run (each for up to 30 s) ...
    let running: Vec<_> = (0..2)
        .map(|i| {
            let addr = e.addr.clone();
            std::thread::spawn(move || {
                get_raw(
                    &addr,
                    &format!("/probe?module=dns&target=d{i}.example"),
                    "X-Prometheus-Scrape-Timeout-Seconds: 30\r\n",
                )
                .0
            })
        })
        .collect();
    // ... as the nameserver sees: queries for both targets.
    dns.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut seen = [false; 2];
    let mut b = [0u8; 512];
    while !seen.iter().all(|s| *s) {
        let (n, _) = dns
            .recv_from(&mut b)
            .expect("both probes query the nameserver");
        let q = String::from_utf8_lossy(&b[..n]).to_string();
        for (i, s) in seen.iter_mut().enumerate() {
            *s |= q.contains(&format!("d{i}"));
        }
    }
    // While they run, more probes are refused with Retry-After, and scrapes are served.
    for i in 0..5 {
        let (code, head, body) = get_raw(
            &e.addr,
            &format!("/probe?module=dns&target=x{i}.example"),
            "",
        );
        assert_eq!(code, 503, "{head}\n{body}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(body.contains("--web.max-probes 2"), "{body}");
        let s = e.scrape();
        assert!(s.0.contains("deliverability_build_info"));
        assert_eq!(
            s.value("deliverability_http_probes_rejected_total", &[]),
            Some(i as f64 + 1.0)
        );
    }
    assert!(
        running.iter().all(|t| !t.is_finished()),
        "the two probes still ran"
    );
    drop(e);
    for t in running {
        let _ = t.join();
    }
}

#[test]
fn error_answers_are_short_plain_text_and_pages_carry_security_headers() {
    let dir = TempDir::new("abuse-answers");
    let e = exporter(&dir, &[]);
    let long = "a".repeat(5000);
    for path in [
        format!("/probe?module=dns&target={long}"),
        format!("/probe?module={long}&target=example.com"),
    ] {
        let (code, head, body) = get_raw(&e.addr, &path, "");
        assert_eq!(code, 400, "{head}\n{body}");
        assert!(
            head.contains("\r\ncontent-type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(body.len() < 300, "{} bytes: {body}", body.len());
        assert!(body.contains("(5000 characters)"), "{body}");
    }
    for path in ["/nope", "/-/healthy"] {
        let (_, head, _) = get_raw(&e.addr, path, "");
        assert!(
            head.contains("\r\ncontent-type: text/plain; charset=utf-8"),
            "{path}: {head}"
        );
        assert!(
            head.contains("\r\nx-content-type-options: nosniff"),
            "{head}"
        );
    }
    for path in ["/", "/runbooks"] {
        let (code, head, body) = get_raw(&e.addr, path, "");
        assert_eq!(code, 200);
        assert!(
            head.contains("\r\nx-content-type-options: nosniff"),
            "{head}"
        );
        let csp = head
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("{path}: no CSP: {head}"));
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("style-src 'unsafe-inline'"), "{csp}");
        assert!(!body.contains("<script"), "{path} has no scripts");
        // One request per connection, said so.
        assert!(head.contains("\r\nconnection: close"), "{head}");
    }
    // Plain HTTP's request headers over 16 KiB: 431, plain text.
    let (code, head, _) = get_raw(
        &e.addr,
        "/metrics",
        &format!("X-Big: {}\r\n", "b".repeat(17 * 1024)),
    );
    assert_eq!(code, 431, "{head}");
    assert!(head.contains("content-type: text/plain; charset=utf-8"));
}
