//! `--web.config.file`: TLS, client certificates and basic auth, with a real TLS client
//! (rustls) against the running exporter, certificates made by openssl.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Exporter, TempDir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (installed by scripts/stack install)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=dx test CA",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=prometheus",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
            "-days",
            "2",
            "-extfile",
            "client.ext",
        ],
    );
}

/// GET over TLS; `Err` when the handshake or connection fails.
fn https_get(
    addr: &str,
    dir: &Path,
    path: &str,
    auth: Option<&str>,
    client_cert: bool,
) -> Result<(u16, String), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if client_cert {
        let certs = CertificateDer::pem_file_iter(dir.join("client.crt"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        b.with_client_auth_cert(
            certs,
            PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap(),
        )
        .unwrap()
    } else {
        b.with_no_client_auth()
    };
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let auth_header = auth.map(|a| {
        use base64::Engine as _;
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        )
    });
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: x\r\n{}\r\n",
        auth_header.unwrap_or_default()
    );
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf) {
        Ok(_) => {}
        // Servers may close without close_notify; what was read counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    Ok((code, text))
}

fn config(dir: &TempDir) -> std::path::PathBuf {
    let p = dir.path().join("dx.toml");
    std::fs::write(
        &p,
        format!(
            "[exporter]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn tls_with_basic_auth_and_reload_on_change() {
    let dir = TempDir::new("webtls");
    make_pki(dir.path());
    let hash = bcrypt::hash("right-password", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prom: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n")).unwrap();
    let e = Exporter::start(&config(&dir), &["--web.config.file", web.to_str().unwrap()]);

    let (code, _) = https_get(&e.addr, dir.path(), "/metrics", None, false).unwrap();
    assert_eq!(code, 401);
    let (code, _) = https_get(&e.addr, dir.path(), "/metrics", Some("prom:wrong"), false).unwrap();
    assert_eq!(code, 401);
    let (code, _) = https_get(
        &e.addr,
        dir.path(),
        "/metrics",
        Some("other:right-password"),
        false,
    )
    .unwrap();
    assert_eq!(code, 401);
    let (code, body) = https_get(
        &e.addr,
        dir.path(),
        "/metrics",
        Some("prom:right-password"),
        false,
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("deliverability_build_info"));
    assert!(
        body.to_ascii_lowercase().contains("x-frame-options: deny"),
        "{body}"
    );
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(&e.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(!answer.contains("deliverability_build_info"));
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("HTTP request to an HTTPS server"),
        "{answer}"
    );

    // The file changes: basic auth removed; the next connection sees it.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    let (code, _) = https_get(&e.addr, dir.path(), "/metrics", None, false).unwrap();
    assert_eq!(code, 200);
    // A broken change keeps the previous settings.
    std::fs::write(&web, "tls_server_config: [\n").unwrap();
    let (code, _) = https_get(&e.addr, dir.path(), "/-/healthy", None, false).unwrap();
    assert_eq!(code, 200);
    assert!(
        e.log_text()
            .contains("web configuration changed but does not load"),
        "{}",
        e.log_text()
    );
}

#[test]
fn client_certificates_are_required_when_configured() {
    let dir = TempDir::new("webmtls");
    make_pki(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n").unwrap();
    let e = Exporter::start(&config(&dir), &["--web.config.file", web.to_str().unwrap()]);
    assert!(
        https_get(&e.addr, dir.path(), "/metrics", None, false).is_err(),
        "no client certificate must fail"
    );
    let (code, _) = https_get(&e.addr, dir.path(), "/metrics", None, true).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_bad_web_config_stops_start_up_with_the_reason() {
    let dir = TempDir::new("webbad");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  prom: not-a-hash\n").unwrap();
    let out = Command::new(common::bin())
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            web.to_str().unwrap(),
            "--config.file",
        ])
        .arg(config(&dir))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("basic_auth_users.prom: expected a bcrypt hash"),
        "{err}"
    );
}

/// The first flight of a real TLS client: its ClientHello.
fn client_hello(dir: &Path) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[test]
fn a_flood_of_half_finished_tls_handshakes_does_not_hold_up_a_scrape() {
    let dir = TempDir::new("webtlsflood");
    make_pki(dir.path());
    let hash = bcrypt::hash("right-password", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prom: {hash}\n")).unwrap();
    // Four handshakes at once at most; a header timeout longer than the test.
    let e = Exporter::start(
        &config(&dir),
        &[
            "--web.config.file",
            web.to_str().unwrap(),
            "--web.max-connections",
            "4",
            "--web.header-timeout",
            "60s",
        ],
    );
    let hello = client_hello(dir.path());
    // 150 send half a ClientHello and wait; 150 send all of it and never answer the server.
    let flood: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect(&e.addr).unwrap();
            let n = if i % 2 == 0 {
                hello.len() / 2
            } else {
                hello.len()
            };
            s.write_all(&hello[..n]).unwrap();
            s
        })
        .collect();
    let scrape = || {
        let (code, body) = https_get(
            &e.addr,
            dir.path(),
            "/metrics",
            Some("prom:right-password"),
            false,
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("deliverability_build_info"), "{body}");
        let s = common::Scrape(body);
        let open = s
            .value("deliverability_http_connections_open", &[])
            .unwrap();
        // All 300 were accepted before this scrape's connection; the half ClientHellos wait.
        assert!(open >= 150.0, "connections open during the scrape: {open}");
        s.value(
            "deliverability_http_connections_dropped_total",
            &[("reason", "shed")],
        )
        .unwrap()
    };
    for _ in 0..3 {
        scrape();
    }
    // The complete ClientHellos beyond four handshakes at once are shed as the exporter
    // reads them; scrapes are served throughout.
    let start = std::time::Instant::now();
    while scrape() < 146.0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "complete ClientHellos beyond 4 handshakes at once are shed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(flood);
}

/// A plain-HTTP GET with basic auth; the status and body.
fn get_with_auth(addr: &str, path: &str, user_pass: &str) -> (u16, String) {
    use base64::Engine as _;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Basic {}\r\n\r\n",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn password_guessers_do_not_starve_the_right_client() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = TempDir::new("webguess");
    let hash = bcrypt::hash("right-password", 8).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prom: {hash}\n")).unwrap();
    let e = Exporter::start(&config(&dir), &["--web.config.file", web.to_str().unwrap()]);
    // The right client, verified once (and cached from then on).
    assert_eq!(
        get_with_auth(&e.addr, "/metrics", "prom:right-password").0,
        200
    );

    // 32 clients guessing distinct passwords until told to stop (at most 60 s, 200 each).
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let guessers: Vec<_> = (0..32)
        .map(|g| {
            let (addr, stop, refused) = (e.addr.clone(), stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                for i in 0..200 {
                    if stop.load(Ordering::SeqCst) {
                        return true;
                    }
                    if start.elapsed() > Duration::from_secs(60) {
                        return false;
                    }
                    let (code, _) =
                        get_with_auth(&addr, "/metrics", &format!("prom:wr0ng-{g}-{i}"));
                    assert_eq!(code, 401);
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                false
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let (code, body) = get_with_auth(&e.addr, "/metrics", "prom:right-password");
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("deliverability_build_info"), "{body}");
    }
    stop.store(true, Ordering::SeqCst);
    let lasted = guessers.into_iter().all(|g| g.join().unwrap());
    assert!(
        lasted,
        "every guesser was still guessing when the right client's scrapes were done"
    );
    // Every refused guess was counted, under no user name.
    let (code, body) = get_with_auth(&e.addr, "/metrics", "prom:right-password");
    assert_eq!(code, 200);
    let s = common::Scrape(body);
    let wrong = s
        .value(
            "deliverability_http_auth_failures_total",
            &[("reason", "wrong")],
        )
        .unwrap();
    assert!(refused.load(Ordering::SeqCst) > 0);
    assert!(wrong >= refused.load(Ordering::SeqCst) as f64, "{wrong}");
    assert!(
        s.samples("deliverability_http_auth_failures_total")
            .iter()
            .all(|(l, _)| l.keys().all(|k| k == "reason")),
        "{}",
        s.0
    );
    assert!(
        !e.log_text().contains("wr0ng-"),
        "a password in the log:\n{}",
        e.log_text()
            .lines()
            .filter(|l| l.contains("wr0ng-"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
