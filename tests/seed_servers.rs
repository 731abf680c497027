//! The same canary cases against both seed servers of the stack, one shared stack instance:
//! Dovecot, which announces new mail in IDLE (~0.5 s after delivery), and Cyrus IMAP without
//! `idled` (as Debian ships it), whose IDLE announces nothing until it re-checks the mailbox
//! every 60 s. Detection must not depend on the server's push: with a 1 s verify cadence and an
//! 8 s deadline every canary is found on both, none is lost, the exporter records a latency
//! bounded by the cadence, and the path that found it says whether the server pushed.
//!
//! Each server's case runs three phases on its own three seed mailboxes, with three inbox
//! providers and one whose canaries are filed as spam (12 routes):
//! 1. the exporter running for two canary intervals (sends spread by jitter): delivered to
//!    INBOX and to the `\Junk` folder, found within the cadence, 0 lost; then the server is
//!    restarted under the watchers, they reconnect, and the next round is found too;
//! 2. a restart: an exporter whose seeds can't be reached sends one round and stops, the
//!    canaries are delivered while nothing watches; `once` with the seeds reachable finds them
//!    in the start-up scan, sends and finds its own round, and exits 0;
//! 3. cleanup: every canary found was removed, both folders of every seed are empty.
//!
//! Latencies are read from the exporter's own record of each canary (its `canary delivered`
//! log line: path and latency), and printed as a table per server and path.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, Provider, Seed};
use common::{Exporter, Scrape, Shared, Stack, TempDir, bin};

/// One seed server of the stack.
struct Server {
    /// Also its service name in `scripts/stack`.
    name: &'static str,
    /// The domain its seeds receive mail for.
    domain: &'static str,
    /// Env keys of its IMAP ports: implicit TLS, and STARTTLS (also plaintext LOGIN).
    imaps_port: &'static str,
    imap_port: &'static str,
    /// Its `\Junk` folder: Dovecot's `/` namespace, Cyrus's `.` namespace under INBOX.
    junk: &'static str,
    /// Whether its IDLE announces new mail.
    pushes: bool,
}

const DOVECOT: Server = Server {
    name: "dovecot",
    domain: "seed.test",
    imaps_port: "DX_IMAPS_PORT",
    imap_port: "DX_IMAP_PORT",
    junk: "Junk",
    pushes: true,
};

const CYRUS: Server = Server {
    name: "cyrus",
    domain: "cyrus.test",
    imaps_port: "DX_CYRUS_IMAPS_PORT",
    imap_port: "DX_CYRUS_IMAP_PORT",
    junk: "INBOX.Junk",
    pushes: false,
};

/// The seed mailboxes of each server (seed1..seed3: the stack's DX_SEEDS default).
const SEEDS: usize = 3;
/// Providers whose canaries land in INBOX; one more ("junk") has its canaries filed as spam.
const INBOX_PROVIDERS: [&str; 3] = ["a", "b", "c"];
const ROUTES: usize = (INBOX_PROVIDERS.len() + 1) * SEEDS;
/// `canary.verify_interval`, seconds: the cadence detection must keep to.
const VERIFY: f64 = 1.0;
/// The margin allowed over the cadence: delivery through Postfix, the search itself, a loaded
/// machine. Cyrus without idled would announce nothing for 60 s.
const MARGIN: f64 = 1.0;

static STACK: Shared<Stack> = Shared::new();

fn stack() -> Arc<Stack> {
    STACK.get(|| Stack::start("seeds", &[]))
}

fn seed_name(server: &Server, k: usize) -> String {
    format!("{}-{k}", server.name)
}

/// A 3 s interval with the sends spread over its first 30 %, the 1 s verify cadence and an 8 s
/// deadline.
fn cadence() -> Canary {
    Canary::new()
        .interval("3s")
        .jitter(0.3)
        .deadline("8s")
        .verify_interval("1s")
        .imap_timeout("5s")
}

/// The exporter's configuration for `server`: 12 routes, [`cadence`]. `seed_port` replaces
/// every seed's port (a port nothing listens on makes the seeds unreachable).
fn config(st: &Stack, server: &Server, dir: &TempDir, seed_port: Option<u16>) -> ConfigBuilder {
    let ca = st.get("DX_CA_FILE");
    let mx = st.port("DX_SMTP_MX_PORT");
    let mut c = ConfigBuilder::new(dir)
        .instance("seed-servers")
        .canary(cadence());
    for p in INBOX_PROVIDERS {
        c = c.provider(Provider::starttls(p, mx).ca_file(ca));
    }
    c = c.provider(
        Provider::starttls("junk", mx)
            .ca_file(ca)
            .header("X-DX-Junk", "yes"),
    );
    for k in 1..=SEEDS {
        let name = seed_name(server, k);
        // seed 3 over STARTTLS, the others over implicit TLS
        let seed = match (seed_port, k) {
            (Some(p), _) => Seed::implicit_tls(&name, p),
            (None, 3) => Seed::starttls(&name, st.port(server.imap_port)),
            (None, _) => Seed::implicit_tls(&name, st.port(server.imaps_port)),
        };
        let user = format!("seed{k}@{}", server.domain);
        c = c.seed(
            seed.address(&user)
                .login(&user, &format!("pw-seed{k}"))
                .ca_file(ca)
                .authserv_id(st.get("DX_AUTHSERV_ID")),
        );
    }
    c
}

/// A canary the exporter reported delivered (its `canary delivered` log line).
#[derive(Debug)]
struct Detection {
    provider: String,
    seed: String,
    placement: String,
    path: String,
    latency: f64,
}

fn logfmt_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    if let Some(q) = rest.strip_prefix('"') {
        q.find('"').map(|end| &q[..end])
    } else {
        Some(rest.split(' ').next().unwrap_or(""))
    }
}

fn detections(log: &str, server: &Server) -> Vec<Detection> {
    log.lines()
        .filter(|l| l.contains("msg=\"canary delivered\""))
        .map(|l| {
            let f = |k| {
                logfmt_field(l, k)
                    .unwrap_or_else(|| panic!("no {k} in: {l}"))
                    .to_string()
            };
            Detection {
                provider: f("provider"),
                seed: f("seed"),
                placement: f("placement"),
                path: f("path"),
                latency: f("latency_seconds")
                    .parse()
                    .unwrap_or_else(|_| panic!("bad latency in: {l}")),
            }
        })
        .filter(|d| d.seed.starts_with(server.name))
        .collect()
}

/// Sum of a family over the server's seeds (whatever other labels it has).
fn seed_sum(s: &Scrape, server: &Server, name: &str, extra: &[(&str, &str)]) -> f64 {
    (1..=SEEDS)
        .map(|k| {
            let seed = seed_name(server, k);
            let mut l = vec![("seed", seed.as_str())];
            l.extend_from_slice(extra);
            s.sum(name, &l)
        })
        .sum()
}

/// Every detection by push or poll took at most the cadence plus the margin (the exporter's
/// own record); each landed where its provider's canaries belong.
fn check_detections(server: &Server, found: &[Detection], log: &str) {
    for d in found {
        let want = if d.provider == "junk" {
            "spam"
        } else {
            "inbox"
        };
        assert_eq!(d.placement, want, "{}: {d:?}\n{log}", server.name);
        assert!(
            ["push", "poll", "scan"].contains(&d.path.as_str()),
            "{}: {d:?}",
            server.name
        );
        if d.path != "scan" {
            assert!(
                d.latency >= 0.0 && d.latency <= VERIFY + MARGIN,
                "{}: found by {} {:.3} s after the send, over the {VERIFY} s cadence + {MARGIN} s: {d:?}\n{log}",
                server.name,
                d.path,
                d.latency
            );
        }
    }
}

/// The `q` quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn print_table(server: &Server, found: &[Detection]) {
    let mut by_path: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for d in found {
        by_path.entry(&d.path).or_default().push(d.latency);
    }
    eprintln!(
        "detection latency on {} (verify_interval {VERIFY} s): path  n  p50  p99  max",
        server.name
    );
    for (path, mut v) in by_path {
        v.sort_by(f64::total_cmp);
        eprintln!(
            "  {:<8} {:<6} {:>3} {:>7.3} {:>7.3} {:>7.3}",
            server.name,
            path,
            v.len(),
            quantile(&v, 0.5),
            quantile(&v, 0.99),
            v[v.len() - 1]
        );
    }
}

/// A minimal IMAP client on the plaintext port: the number of messages in `folder`.
fn messages_in(port: u16, user: &str, password: &str, folder: &str) -> u32 {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "greeting: {line}");
    let mut command = |tag: &str, cmd: String| -> Vec<String> {
        write!(w, "{tag} {cmd}\r\n").unwrap();
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0, "connection closed");
            if l.starts_with(&format!("{tag} ")) {
                assert!(l.starts_with(&format!("{tag} OK")), "{cmd}: {l}");
                return lines;
            }
            lines.push(l);
        }
    };
    command("a", format!("LOGIN {user} {password}"));
    let status = command("b", format!("STATUS \"{folder}\" (MESSAGES)"));
    command("c", "LOGOUT".into());
    let l = status
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .unwrap_or_else(|| panic!("no STATUS reply: {status:?}"));
    let n = l.rsplit("MESSAGES ").next().unwrap();
    n.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("bad STATUS reply: {l}"))
}

fn once(cfg: &Path) -> Output {
    Command::new(bin())
        .args(["--log.level", "debug", "--config.file"])
        .arg(cfg)
        .args(["once", "--only", "canary"])
        .output()
        .unwrap()
}

/// A port on 127.0.0.1 nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn canaries_are_found_within_the_cadence_none_lost_and_cleaned_up(server: &Server) {
    let st = stack();
    let dir = TempDir::new(&format!("seeds-{}", server.name));
    let cfg = config(&st, server, &dir, None).write();

    // 1. Two intervals of canaries, the sends spread over the first 30 % of each; stopped in
    // the quiet part of an interval, once every canary sent was found.
    let e = Exporter::start(&cfg, &[]);
    let s = e.wait_for(
        "two whole rounds of canaries sent and every one delivered",
        Duration::from_secs(40),
        |s| {
            let sent = seed_sum(s, server, "deliverability_canary_sent_total", &[]);
            sent >= (2 * ROUTES) as f64
                && sent % ROUTES as f64 == 0.0
                && seed_sum(s, server, "deliverability_canary_delivered_total", &[]) == sent
        },
    );
    // The server restarted under the watchers: they reconnect, and the next round is found.
    let before_restart = e.log.lock().unwrap().len();
    let delivered_before = seed_sum(&s, server, "deliverability_canary_delivered_total", &[]);
    st.ctl(&["restart", server.name]);
    let s = e.wait_for(
        "the watchers back and a round delivered after the server's restart",
        Duration::from_secs(40),
        |s| {
            let sent = seed_sum(s, server, "deliverability_canary_sent_total", &[]);
            sent >= delivered_before + ROUTES as f64
                && sent % ROUTES as f64 == 0.0
                && seed_sum(s, server, "deliverability_canary_delivered_total", &[]) == sent
                && seed_sum(s, server, "deliverability_imap_reconnects_total", &[])
                    >= (2 * SEEDS) as f64
        },
    );
    let log_lines = e.log.clone();
    e.stop();
    let log = log_lines.lock().unwrap().join("\n");
    let delivered = seed_sum(&s, server, "deliverability_canary_delivered_total", &[]);
    assert_eq!(
        seed_sum(&s, server, "deliverability_canary_lost_total", &[]),
        0.0,
        "{log}"
    );
    assert_eq!(
        seed_sum(
            &s,
            server,
            "deliverability_canary_delivered_total",
            &[("provider", "junk"), ("placement", "spam")]
        ),
        seed_sum(
            &s,
            server,
            "deliverability_canary_sent_total",
            &[("provider", "junk")]
        ),
        "every canary marked as spam is found in the \\Junk folder"
    );
    assert_eq!(
        seed_sum(&s, server, "deliverability_canary_detected_total", &[]),
        delivered,
        "each delivered canary was detected once, by one path"
    );
    for k in 1..=SEEDS {
        assert_eq!(
            s.value(
                "deliverability_imap_verify_interval_seconds",
                &[("seed", &seed_name(server, k))]
            ),
            Some(VERIFY)
        );
        // The spam folder was found by SPECIAL-USE in the server's own namespace.
        let watching = format!(
            "msg=\"watching seed folder\" seed={} folder={}",
            seed_name(server, k),
            server.junk
        );
        assert!(log.contains(&watching), "no {watching:?} in\n{log}");
    }
    let mut found = detections(&log, server);
    assert_eq!(found.len() as f64, delivered, "{log}");
    // Canaries sent while the server restarted wait in Postfix's queue: the cadence bounds
    // the detection of those found before the restart.
    let before = log_lines.lock().unwrap()[..before_restart].join("\n");
    let found_before = detections(&before, server);
    assert_eq!(found_before.len() as f64, delivered_before, "{before}");
    check_detections(server, &found_before, &log);
    let by = |found: &[Detection], path: &str| found.iter().filter(|d| d.path == path).count();
    let metric_paths: f64 = ["push", "poll", "scan"]
        .iter()
        .map(|p| {
            seed_sum(
                &s,
                server,
                "deliverability_canary_detected_total",
                &[("path", p)],
            )
        })
        .sum();
    assert_eq!(metric_paths, delivered);
    assert_eq!(
        seed_sum(
            &s,
            server,
            "deliverability_canary_detected_total",
            &[("path", "push")]
        ),
        by(&found, "push") as f64
    );
    if server.pushes {
        // Dovecot announces new mail ~0.5 s after delivery, mostly before the 1 s cadence
        // looks (a push for one canary also finds the others that arrived since).
        assert!(
            by(&found_before, "push") > 0,
            "no canary found by push: {found_before:?}"
        );
    } else {
        // Cyrus without idled announces nothing in IDLE: the watcher's own search finds them.
        // (After the restart, those delivered while the watchers reconnected are found by
        // their scan.)
        assert!(
            by(&found_before, "poll") * 10 >= found_before.len() * 9,
            "Cyrus without idled: fewer than 90 % found by poll: {found_before:?}"
        );
    }

    // 2. Restart: an exporter whose seeds are unreachable sends one round and is stopped;
    // Postfix delivers the canaries while nothing watches.
    let unreachable = config(&st, server, &dir, Some(dead_port()))
        .canary(cadence().jitter(0.0).imap_timeout("1s"))
        .write();
    let e = Exporter::start(&unreachable, &[]);
    e.wait_for(
        "one round sent with the seeds unreachable",
        Duration::from_secs(20),
        |s| {
            seed_sum(s, server, "deliverability_canary_sent_total", &[]) >= ROUTES as f64
                && seed_sum(s, server, "deliverability_canary_in_flight", &[]) >= ROUTES as f64
        },
    );
    e.stop();
    // `once` with the seeds reachable: the start-up scan finds the round sent before the
    // restart, then its own round is sent and found; exit 0 means none lost. (A send cut short
    // by a stop could leave a message of no known canary: swept as another instance's would be.)
    let cfg = config(&st, server, &dir, None)
        .canary(cadence().sweep_older_than("2s"))
        .write();
    let out = once(&cfg);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let s = Scrape(String::from_utf8_lossy(&out.stdout).into_owned());
    assert!(out.status.success(), "once failed:\n{err}");
    assert!(err.contains("canaries in flight restored"), "{err}");
    assert_eq!(
        seed_sum(&s, server, "deliverability_canary_lost_total", &[]),
        0.0
    );
    assert_eq!(
        seed_sum(&s, server, "deliverability_canary_delivered_total", &[]),
        (2 * ROUTES) as f64,
        "{err}"
    );
    let again = detections(&err, server);
    assert_eq!(again.len(), 2 * ROUTES, "{err}");
    check_detections(server, &again, &err);
    assert!(
        by(&again, "scan") >= 1,
        "the canaries delivered during the restart are found by the start-up scan: {again:?}"
    );
    if !server.pushes {
        let fresh = again.len() - by(&again, "scan");
        assert!(
            by(&again, "poll") * 10 >= fresh * 9,
            "Cyrus without idled: fewer than 90 % of once's own canaries found by poll: {again:?}"
        );
    }

    // 3. Cleanup: every canary found was removed; both folders of every seed are empty.
    for k in 1..=SEEDS {
        let user = format!("seed{k}@{}", server.domain);
        for folder in ["INBOX", server.junk] {
            assert_eq!(
                messages_in(
                    st.port(server.imap_port),
                    &user,
                    &format!("pw-seed{k}"),
                    folder
                ),
                0,
                "{user} {folder} still holds messages"
            );
        }
    }

    found.extend(again.into_iter().filter(|d| d.path != "scan"));
    print_table(server, &found);
}

#[test]
fn dovecot_canaries_found_in_cadence_none_lost_restart_cleanup() {
    canaries_are_found_within_the_cadence_none_lost_and_cleaned_up(&DOVECOT);
}

#[test]
fn cyrus_without_idled_canaries_found_by_poll_in_cadence_none_lost_restart_cleanup() {
    canaries_are_found_within_the_cadence_none_lost_and_cleaned_up(&CYRUS);
}
