//! Shared helpers of the suites that run against the real local stack (`scripts/stack`):
//! a private stack instance per test that needs one, the exporter binary started with a
//! configuration, scrapes and metric lookups.
//!
//! A private instance gets its own state directory and a block of free ports, and is taken
//! down when its guard is dropped. Tests that need the stack and can't start it fail with the
//! reason; they never pass silently.

#![allow(dead_code)]

pub mod alerting;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exporter configurations built by name ([`config::ConfigBuilder`]).
pub mod config;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running stack instance, down on drop.
pub struct Stack {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

/// Ports one stack instance uses: `DX_PORT_BASE` .. `DX_PORT_BASE` + 16 (`scripts/stack`).
const PORT_BLOCK: u16 = 17;

fn port_block_free(base: u16) -> bool {
    (0..PORT_BLOCK).all(|i| {
        TcpListener::bind(("127.0.0.1", base + i)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()
    })
}

/// Serialises choosing ports and starting instances within one test binary.
static START: Mutex<()> = Mutex::new(());

impl Stack {
    /// Starts a private instance. `name` keeps the state directory recognisable.
    pub fn start(name: &str, extra_env: &[(&str, &str)]) -> Stack {
        let _g = START.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        // A directory of its own for every instance of the process: a `Shared` stack can be
        // started again while the previous one is still being taken down (its drop runs after
        // the last holder let go), and must not share (and lose) that one's directory.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(if n == 0 {
            format!("/tmp/dxt-{name}-{pid}")
        } else {
            format!("/tmp/dxt-{name}-{pid}-{n}")
        });
        let _ = std::fs::remove_dir_all(&dir);
        // Spread bases by pid so concurrent test binaries rarely probe the same block. The
        // blocks lie below Linux's ephemeral port range (32768-60999): an outgoing connection
        // of any process may take a port there, and then a service stopped by a test (Postfix
        // for an outage) could not bind its port again.
        const FIRST: u16 = 12000;
        const BLOCKS: u16 = (32700 - FIRST) / PORT_BLOCK;
        let mut base = FIRST + (pid % u32::from(BLOCKS)) as u16 * PORT_BLOCK;
        let mut tries = 0;
        while !port_block_free(base) {
            base += PORT_BLOCK;
            if base + PORT_BLOCK > 32700 {
                base = FIRST;
            }
            tries += 1;
            assert!(
                tries < 2000,
                "no block of {PORT_BLOCK} free ports on 127.0.0.1 between {FIRST} and 32700"
            );
        }
        let out = Command::new(repo().join("scripts/stack"))
            .arg("up")
            .env("DX_STACK_DIR", &dir)
            .env("DX_PORT_BASE", base.to_string())
            .envs(extra_env.iter().copied())
            .output()
            .expect("cannot run scripts/stack");
        assert!(
            out.status.success(),
            "scripts/stack up failed for {}:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = read_env(&dir.join("env"));
        Stack { dir, env }
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("the stack's env file has no {key}"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a port"))
    }

    /// Runs `scripts/stack <args>` on this instance.
    pub fn ctl(&self, args: &[&str]) {
        let out = Command::new(repo().join("scripts/stack"))
            .args(args)
            .env("DX_STACK_DIR", &self.dir)
            .output()
            .expect("cannot run scripts/stack");
        assert!(
            out.status.success(),
            "scripts/stack {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The Maildir `new/` directory of a seed's folder ("" for INBOX, "Junk").
    pub fn maildir_new(&self, user: &str, folder: &str) -> PathBuf {
        let base = Path::new(self.get("DX_MAILDIR_ROOT"))
            .join("seed.test")
            .join(user)
            .join("Maildir");
        if folder.is_empty() {
            base.join("new")
        } else {
            base.join(format!(".{folder}")).join("new")
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/stack"))
            .arg("down")
            .env("DX_STACK_DIR", &self.dir)
            .output();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A value (a stack instance, say) shared by the tests of one binary that run at the same
/// time: the first test makes it, the others get the same one, and it is dropped (the stack
/// taken down) when the last test holding it ends. A later test makes a new one. So every
/// case can be its own `#[test]` (a failure hides no other case) without a stack per case.
pub struct Shared<T>(Mutex<std::sync::Weak<T>>);

impl<T> Shared<T> {
    pub const fn new() -> Shared<T> {
        Shared(Mutex::new(std::sync::Weak::new()))
    }

    pub fn get(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = g.upgrade() {
            return v;
        }
        let v = Arc::new(make());
        *g = Arc::downgrade(&v);
        v
    }
}

pub fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("dx-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The exporter binary, running.
pub struct Exporter {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
    pub config: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_deliverability_exporter")
}

impl Exporter {
    /// Starts the exporter on a free port with the given config file and extra flags, and
    /// waits until it listens.
    pub fn start(config: &Path, flags: &[&str]) -> Exporter {
        let mut child = Command::new(bin())
            .arg("--config.file")
            .arg(config)
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.level",
                "debug",
            ])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the exporter");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("msg=listening")
                    && let Some(a) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(a.to_string());
                }
                log2.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the exporter did not start listening; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Exporter {
            child,
            addr,
            log,
            config: config.to_path_buf(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path)
    }

    pub fn scrape(&self) -> Scrape {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "scrape failed: {body}");
        Scrape(body)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until `f` holds on a scrape, or panics with the last scrape and the log.
    pub fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&Scrape) -> bool) -> Scrape {
        let start = Instant::now();
        loop {
            let s = self.scrape();
            if f(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n--- scrape ---\n{}\n--- log ---\n{}",
                    s.0,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGTERM and wait; returns how long the exit took.
    pub fn stop(mut self) -> Duration {
        let start = Instant::now();
        self.signal("TERM");
        let _ = self.child.wait();
        start.elapsed()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 request (no client crate needed for tests).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// A scrape's text with lookups.
pub struct Scrape(pub String);

impl Scrape {
    /// The value of the sample `name{labels}` where every given label matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name)
            .into_iter()
            .find(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
    }

    /// Sum of all samples of `name` matching the labels.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name)
            .into_iter()
            .filter(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    pub fn samples(&self, name: &str) -> Vec<(HashMap<String, String>, f64)> {
        let mut out = Vec::new();
        for line in self.0.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                continue;
            }
            let mut map = HashMap::new();
            for part in split_labels(labels) {
                if let Some((k, v)) = part.split_once('=') {
                    map.insert(
                        k.to_string(),
                        v.trim_matches('"')
                            .replace("\\\"", "\"")
                            .replace("\\\\", "\\"),
                    );
                }
            }
            if let Ok(v) = value.parse::<f64>() {
                out.push((map, v));
            }
        }
        out
    }
}

fn split_labels(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                cur.push(c);
            }
            '"' => {
                in_q = !in_q;
                cur.push(c);
            }
            ',' if !in_q => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// Runs `promtool check metrics` on a scrape; returns its complaints (empty when clean).
pub fn promtool_check_metrics(text: &str) -> String {
    let promtool = std::env::var("DX_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {promtool} (scripts/stack install provides it): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && s.trim().is_empty() {
        s = format!("promtool exited with {}", out.status);
    }
    s
}

/// Delivers a message over plain SMTP without AUTH (the stack's MX port: a receiver's port 25).
/// A temporary refusal (4xx: rspamd, the milter, still busy on a loaded machine answers 451) is
/// retried as a real sending MTA would, for at most 60 s; anything else fails the test.
pub fn smtp_deliver(port: u16, from: &str, to: &str, msg: &[u8]) {
    let start = Instant::now();
    loop {
        match smtp_try(port, from, to, msg) {
            Ok(()) => return,
            Err(reply) if reply.starts_with('4') && start.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(reply) => panic!("SMTP delivery to {to} refused: {reply:?}"),
        }
    }
}

/// One SMTP transaction; `Err` with the reply that was not the one expected.
fn smtp_try(port: u16, from: &str, to: &str, msg: &[u8]) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut expect = |code: &str| -> Result<(), String> {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if !line.starts_with(code) {
                return Err(line);
            }
            if line.as_bytes().get(3) == Some(&b' ') {
                return Ok(());
            }
        }
    };
    expect("220")?;
    s.write_all(b"EHLO test.example\r\n").unwrap();
    expect("250")?;
    write!(s, "MAIL FROM:<{from}>\r\n").unwrap();
    expect("250")?;
    write!(s, "RCPT TO:<{to}>\r\n").unwrap();
    expect("250")?;
    s.write_all(b"DATA\r\n").unwrap();
    expect("354")?;
    s.write_all(msg).unwrap();
    s.write_all(b"\r\n.\r\n").unwrap();
    expect("250")?;
    let _ = s.write_all(b"QUIT\r\n");
    Ok(())
}

/// Renders the demo's configuration for this stack, with an extra failing provider.
pub fn demo_config(st: &Stack, dir: &TempDir) -> std::path::PathBuf {
    let template = std::fs::read_to_string(repo().join("examples/local-stack.toml.in")).unwrap();
    let mut text = String::new();
    let mut rest = template.as_str();
    while let Some(i) = rest.find('@') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('@') {
            Some(j)
                if after[..j]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && j > 0 =>
            {
                text.push_str(st.get(&after[..j]));
                rest = &after[j + 1..];
            }
            _ => {
                text.push('@');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    let text = text.replace(
        &format!("{}/exporter-state", st.dir.display()),
        &dir.path().join("state").display().to_string(),
    );
    let text = text.replace("interval = \"30s\"", "interval = \"10s\"");
    // Every family shows in the scenario, the per-route delivery histogram too.
    let text = text.replacen(
        "[canary]\ninterval = \"10s\"\n",
        "[canary]\ninterval = \"10s\"\nroute_histograms = true\nroute_requirements = true\n",
        1,
    );
    assert!(text.contains("route_histograms = true"), "{text}");
    let extra = format!(
        "\n[[providers]]\nname = \"wrong-password\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"sender2@dx.test\"\npassword = \"not-it\"\nfrom = \"canary@dx.test\"\nca_file = \"{}\"\n",
        st.port("DX_SMTP_SUBMIT_PORT"),
        st.get("DX_CA_FILE")
    );
    // Providers must come before the tables that follow them in TOML; append at the end is
    // fine because [[providers]] is an array of tables.
    let p = dir.path().join("dx.toml");
    std::fs::write(&p, text + &extra).unwrap();
    p
}

/// The demo's scenario on a private stack: the demo's reports mailed into the rua mailbox and
/// the exporter running the demo's configuration (plus a failing provider), waited for until
/// canaries, DNS, blacklist and report results are all in.
pub fn demo_scenario(name: &str) -> (Stack, TempDir, Exporter) {
    let st = Stack::start(name, &[]);
    let dir = TempDir::new(name);
    let mail = Command::new("python3")
        .arg(repo().join("scripts/stack.d/mail-demo-reports.py"))
        .arg(st.dir.join("env"))
        .output()
        .unwrap();
    assert!(
        mail.status.success(),
        "{}",
        String::from_utf8_lossy(&mail.stderr)
    );
    // Bounces too: every provider sends with a VERP return path into the reports mailbox, and
    // a seed whose address the stack accepts and then refuses one hop later (relay_reject).
    let cfg = demo_config(&st, &dir);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace(
            "\nfrom = \"canary@",
            "\nbounce_address = \"reports+{token}@seed.test\"\nfrom = \"canary@",
        )
        .replacen(
            "[[seeds]]",
            &format!(
                "[[seeds]]\nname = \"refuses\"\naddress = \"relay550@seed.test\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\nusername = \"seed3@seed.test\"\npassword = \"pw-seed3\"\nca_file = \"{}\"\n\n[[seeds]]",
                st.port("DX_IMAPS_PORT"),
                st.get("DX_CA_FILE")
            ),
            1,
        );
    assert!(
        text.contains("bounce_address") && text.contains("relay550"),
        "{text}"
    );
    std::fs::write(&cfg, text).unwrap();
    let e = Exporter::start(&cfg, &[]);
    // A TLS-RPT report POSTed to the demo's https report source, as a reporting MTA does.
    e.wait_for("the TLS-RPT endpoint", Duration::from_secs(30), |s| {
        s.value(
            "deliverability_report_http_listening",
            &[("source", "tlsrpt-https")],
        ) == Some(1.0)
    });
    let report = br#"{"organization-name":"posting.example","date-range":{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T23:59:59Z"},"contact-info":"tlsrpt@posting.example","report-id":"posted-demo-1","policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"dx.test"},"summary":{"total-successful-session-count":25,"total-failure-session-count":1},"failure-details":[{"result-type":"starttls-not-supported","failed-session-count":1}]}]}"#;
    let mut curl = Command::new("curl")
        .args(["--silent", "--fail", "--max-time", "20", "--cacert"])
        .arg(st.get("DX_CA_FILE"))
        .args([
            "--header",
            "Content-Type: application/tlsrpt+json",
            "--data-binary",
            "@-",
        ])
        .arg(format!(
            "https://127.0.0.1:{}/tlsrpt",
            st.port("DX_TLSRPT_PORT")
        ))
        .stdin(Stdio::piped())
        .spawn()
        .expect("curl");
    curl.stdin.take().unwrap().write_all(report).unwrap();
    assert!(curl.wait().unwrap().success(), "the TLS-RPT report POSTed");
    e.wait_for(
        "canaries, bounces, DNS, blacklist and report results",
        Duration::from_secs(90),
        |s| {
            s.sum("deliverability_canary_delivered_total", &[]) >= 4.0
                && s.sum("deliverability_canary_bounced_total", &[]) >= 1.0
                && s.sum(
                    "deliverability_canary_send_failures_total",
                    &[("provider", "wrong-password")],
                ) >= 1.0
                && s.sum("deliverability_dmarc_reports_total", &[]) >= 1.0
                && s.sum("deliverability_dmarc_failure_reports_total", &[]) >= 1.0
                && s.sum("deliverability_check_runs_total", &[("check", "dns")]) >= 1.0
                && s.sum("deliverability_check_runs_total", &[("check", "dnsbl")]) >= 1.0
                && s.value(
                    "deliverability_postmaster_state",
                    &[("domain", "dx.test"), ("state", "ok")],
                ) == Some(1.0)
                && s.value("deliverability_snds_state", &[("state", "ok")]) == Some(1.0)
        },
    );
    (st, dir, e)
}
