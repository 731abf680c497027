//! Hostile-network benchmark (run by scripts/bench-hostile): this exporter (release build) and
//! Debian's prometheus-blackbox-exporter side by side, each started fresh on 127.0.0.1 with
//! the same `--web.config.file` (a bcrypt cost-12 password; TLS with a P-256 certificate for
//! the TLS rows), under one flood at a time:
//!
//! - N connections that sent half a request header and wait (100, 1,000, 10,000);
//! - 10,000 connections that sent half a TLS ClientHello, and 1,000 that sent a whole one and
//!   never finish the handshake;
//! - 32 clients guessing distinct passwords, back to back;
//! - 64 clients asking /probe back to back, the probes hanging on a nameserver that never
//!   answers (5 ms pause after each answer).
//!
//! While the flood lasts, a right-credential client scrapes /metrics (a new connection each
//! time, one at a time, 5 ms apart) and the figures are: scrapes answered 200 with the
//! metrics, p50, p99 and max latency, and the exporter's RSS before and during the flood
//! (with the growth per flood connection open at the RSS sample). This exporter runs with
//! `--web.header-timeout 60s` so that its header timeout doesn't thin out a flood while it is
//! measured (blackbox_exporter has none). Every flood is bounded in connections and in time,
//! and everything goes to 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const PASSWORD: &str = "right-password-of-the-bench";
/// Scrapes measured per row.
const SCRAPES: usize = 200;
/// A scrape that takes longer counts as failed (and as this long).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(15);
/// No flood runs longer than this.
const FLOOD_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ours,
    Blackbox,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "deliverability_exporter",
            Kind::Blackbox => "blackbox_exporter",
        }
    }
}

#[derive(Clone, Copy)]
enum Flood {
    None,
    SlowHeaders(usize),
    HalfHello(usize),
    WholeHello(usize),
    Guessers(usize),
    Probes(usize),
}

impl Flood {
    fn label(self) -> String {
        match self {
            Flood::None => "none".into(),
            Flood::SlowHeaders(n) => format!("{} slow-header connections", thousands(n)),
            Flood::HalfHello(n) => format!("TLS: {} half ClientHellos", thousands(n)),
            Flood::WholeHello(n) => {
                format!("TLS: {} whole ClientHellos, never finished", thousands(n))
            }
            Flood::Guessers(n) => format!("{n} password guessers"),
            Flood::Probes(n) => format!("{n} clients flooding /probe"),
        }
    }

    fn tls(self) -> bool {
        matches!(self, Flood::HalfHello(_) | Flood::WholeHello(_))
    }

    fn connections(self) -> usize {
        match self {
            Flood::SlowHeaders(n) | Flood::HalfHello(n) | Flood::WholeHello(n) => n,
            _ => 0,
        }
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1; the web configurations; both exporters'
/// configurations.
struct Setup {
    dir: PathBuf,
    web_auth: PathBuf,
    web_tls: PathBuf,
    ours_config: PathBuf,
    blackbox_config: PathBuf,
    tls_client: Arc<rustls::ClientConfig>,
    /// The silent nameserver the probes wait for.
    dns: UdpSocket,
}

fn setup(dir: &Path) -> Setup {
    std::fs::create_dir_all(dir).unwrap();
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
            "/CN=bench CA",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
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
    let hash = bcrypt::hash(PASSWORD, 12).unwrap();
    let users = format!("basic_auth_users:\n  prom: {hash}\n");
    let web_auth = dir.join("web-auth.yml");
    std::fs::write(&web_auth, &users).unwrap();
    let web_tls = dir.join("web-tls.yml");
    std::fs::write(
        &web_tls,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{users}",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        ),
    )
    .unwrap();
    let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours_config = dir.join("dx.toml");
    std::fs::write(
        &ours_config,
        format!(
            "[exporter]\nstate_dir = \"{}\"\n\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"5s\"\nattempts = 1\n",
            dir.join("state").display(),
            dns.local_addr().unwrap()
        ),
    )
    .unwrap();
    let blackbox_config = dir.join("blackbox.yml");
    std::fs::write(
        &blackbox_config,
        "modules:\n  dns:\n    prober: dns\n    timeout: 5s\n    dns:\n      query_name: example.com\n      transport_protocol: udp\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n",
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let tls_client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    Setup {
        dir: dir.to_path_buf(),
        web_auth,
        web_tls,
        ours_config,
        blackbox_config,
        tls_client,
        dns,
    }
}

struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(kind: Kind, s: &Setup, tls: bool, exporter: &Path) -> Running {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let web = if tls { &s.web_tls } else { &s.web_auth };
    let mut cmd = match kind {
        Kind::Ours => {
            let mut c = Command::new(exporter);
            c.arg("--config.file").arg(&s.ours_config).args([
                "--web.listen-address",
                &addr,
                "--log.level",
                "error",
                // The default 10 s would close the flood's first connections while the
                // rows measure: keep them all open, as blackbox_exporter does.
                "--web.header-timeout",
                "60s",
            ]);
            c
        }
        Kind::Blackbox => {
            let mut c = Command::new("prometheus-blackbox-exporter");
            c.arg(format!("--config.file={}", s.blackbox_config.display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=error");
            c
        }
    };
    cmd.arg(format!("--web.config.file={}", web.display()))
        .current_dir(&s.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    let r = Running { child, addr };
    let t = Instant::now();
    while TcpStream::connect(&r.addr).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} did not listen",
            kind.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    r
}

fn auth_header(pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("prom:{pass}"))
    )
}

/// One request on a new connection (TLS or not), read to the end; the status and body.
fn request(
    addr: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    req: &str,
) -> Option<(u16, String)> {
    let mut sock = TcpStream::connect(addr).ok()?;
    sock.set_read_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    sock.set_write_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::new();
    match tls {
        None => {
            sock.write_all(req.as_bytes()).ok()?;
            let _ = sock.read_to_end(&mut buf);
        }
        Some(cfg) => {
            let mut conn = rustls::ClientConnection::new(
                cfg.clone(),
                ServerName::try_from("127.0.0.1").unwrap(),
            )
            .ok()?;
            let mut s = rustls::Stream::new(&mut conn, &mut sock);
            s.write_all(req.as_bytes()).ok()?;
            let _ = s.read_to_end(&mut buf);
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn scrape_request() -> String {
    format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
        auth_header(PASSWORD)
    )
}

/// The first flight of a TLS client: its ClientHello.
fn client_hello(cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut conn =
        rustls::ClientConnection::new(cfg.clone(), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// A running flood; stops (and closes its connections) on drop.
struct FloodRun {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    conns: Vec<TcpStream>,
    /// Requests the flood's clients got answered.
    answered: Arc<AtomicUsize>,
}

impl FloodRun {
    /// Flood connections the server still holds open.
    fn still_open(&mut self) -> usize {
        let mut b = [0u8; 1024];
        let mut open = 0;
        for c in &mut self.conns {
            let _ = c.set_nonblocking(true);
            // Read what the server sent (a ServerHello, say) up to EOF or "nothing yet".
            open += loop {
                match c.read(&mut b) {
                    Ok(0) => break 0,
                    Ok(_) => continue,
                    Err(e) => break usize::from(e.kind() == std::io::ErrorKind::WouldBlock),
                }
            };
        }
        open
    }
}

impl Drop for FloodRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.conns.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn flood(flood: Flood, r: &Running, s: &Setup, kind: Kind) -> FloodRun {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut run = FloodRun {
        stop: stop.clone(),
        threads: Vec::new(),
        conns: Vec::new(),
        answered: answered.clone(),
    };
    let connect_all = |n: usize, bytes: &[u8]| -> Vec<TcpStream> {
        (0..n)
            .filter_map(|_| {
                let mut c = TcpStream::connect(&r.addr).ok()?;
                c.write_all(bytes).ok()?;
                Some(c)
            })
            .collect()
    };
    // Clients that send requests back to back until stopped (or FLOOD_LIMIT).
    let clients =
        |n: usize, make: Arc<dyn Fn(usize, usize) -> String + Send + Sync>, pause: Duration| {
            (0..n)
                .map(|c| {
                    let (stop, answered, addr, make) =
                        (stop.clone(), answered.clone(), r.addr.clone(), make.clone());
                    std::thread::spawn(move || {
                        let t = Instant::now();
                        let mut i = 0;
                        while !stop.load(Ordering::SeqCst) && t.elapsed() < FLOOD_LIMIT {
                            if request(&addr, None, &make(c, i)).is_some() {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            i += 1;
                            std::thread::sleep(pause);
                        }
                    })
                })
                .collect::<Vec<_>>()
        };
    match flood {
        Flood::None => {}
        Flood::SlowHeaders(n) => {
            run.conns = connect_all(
                n,
                b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow",
            );
        }
        Flood::HalfHello(n) => {
            let hello = client_hello(&s.tls_client);
            run.conns = connect_all(n, &hello[..hello.len() / 2]);
        }
        Flood::WholeHello(n) => {
            let hello = client_hello(&s.tls_client);
            run.conns = connect_all(n, &hello);
        }
        Flood::Guessers(n) => {
            run.threads = clients(
                n,
                Arc::new(|c, i| {
                    format!(
                        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
                        auth_header(&format!("guess-{c}-{i}"))
                    )
                }),
                Duration::ZERO,
            );
        }
        Flood::Probes(n) => {
            let target = match kind {
                Kind::Ours => "example.com".to_string(),
                Kind::Blackbox => s.dns.local_addr().unwrap().to_string(),
            };
            run.threads = clients(
                n,
                Arc::new(move |_, _| {
                    format!(
                        "GET /probe?module=dns&target={target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}X-Prometheus-Scrape-Timeout-Seconds: 5\r\nConnection: close\r\n\r\n",
                        auth_header(PASSWORD)
                    )
                }),
                Duration::from_millis(5),
            );
        }
    }
    run
}

struct Row {
    flood: String,
    exporter: &'static str,
    ok: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rss_before: u64,
    rss_during: u64,
    per_conn: Option<f64>,
    note: String,
}

fn measure(kind: Kind, f: Flood, s: &Setup, exporter: &Path) -> Row {
    let r = start(kind, s, f.tls(), exporter);
    let tls = f.tls().then_some(&s.tls_client);
    let req = scrape_request();
    // Warm up: the right credential verified (and cached) once.
    for _ in 0..3 {
        let _ = request(&r.addr, tls, &req);
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = r.child.id();
    let rss_before = rss_kib(pid);
    let mut run = flood(f, &r, s, kind);
    // Let the exporter take in the flood.
    std::thread::sleep(Duration::from_millis(if f.connections() > 0 {
        1000
    } else {
        500
    }));
    let rss_during = rss_kib(pid);
    let open_at_rss = run.still_open();
    let mut times = Vec::with_capacity(SCRAPES);
    let mut ok = 0;
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let good = matches!(request(&r.addr, tls, &req), Some((200, b)) if b.contains("process_resident_memory_bytes"));
        let took = t.elapsed();
        ok += good as usize;
        times.push(if good { took } else { took.max(SCRAPE_TIMEOUT) });
        std::thread::sleep(Duration::from_millis(5));
    }
    let rss_during = rss_during.max(rss_kib(pid));
    let open = run.still_open();
    let answered = run.answered.load(Ordering::Relaxed);
    drop(run);
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let n = f.connections();
    let note = match f {
        Flood::None => String::new(),
        Flood::SlowHeaders(_) | Flood::HalfHello(_) | Flood::WholeHello(_) => {
            format!(
                "{} of {} open at the RSS sample, {} after the scrapes",
                thousands(open_at_rss),
                thousands(n),
                thousands(open)
            )
        }
        Flood::Guessers(_) => format!("{answered} guesses answered meanwhile"),
        Flood::Probes(_) => format!("{answered} probe requests answered meanwhile"),
    };
    Row {
        flood: f.label(),
        exporter: kind.name(),
        ok,
        p50: pct(0.50),
        p99: pct(0.99),
        max: *times.last().unwrap(),
        rss_before,
        rss_during,
        per_conn: (open_at_rss > 0)
            .then(|| (rss_during.saturating_sub(rss_before) * 1024) as f64 / open_at_rss as f64),
        note,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo test --all-targets` runs this too (without --bench): there is nothing to test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/hostile: a benchmark; run it with scripts/bench-hostile");
        return;
    }
    let exporter = PathBuf::from(
        std::env::var("DX_EXPORTER_BIN")
            .expect("DX_EXPORTER_BIN: run the benchmark through scripts/bench-hostile"),
    );
    raise_fd_limit();
    let dir = std::env::temp_dir().join(format!("dx-bench-hostile-{}", std::process::id()));
    let s = setup(&dir);
    let only = std::env::var("DX_BENCH_ONLY").unwrap_or_default();
    let floods = [
        Flood::None,
        Flood::SlowHeaders(100),
        Flood::SlowHeaders(1000),
        Flood::SlowHeaders(10_000),
        Flood::HalfHello(10_000),
        Flood::WholeHello(1000),
        Flood::Guessers(32),
        Flood::Probes(64),
    ];
    println!(
        "| flood | exporter | scrapes OK | p50 ms | p99 ms | max ms | RSS before MB | RSS during MB | per flood connection KB | |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in floods {
        if !only.is_empty() && !f.label().contains(&only) {
            continue;
        }
        for kind in [Kind::Ours, Kind::Blackbox] {
            let r = measure(kind, f, &s, &exporter);
            println!(
                "| {} | {} | {}/{} | {} | {} | {} | {:.1} | {:.1} | {} | {} |",
                r.flood,
                r.exporter,
                r.ok,
                SCRAPES,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                r.rss_before as f64 / 1024.0,
                r.rss_during as f64 / 1024.0,
                r.per_conn
                    .map(|b| format!("{:.1}", b / 1024.0))
                    .unwrap_or_else(|| "–".into()),
                r.note
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
