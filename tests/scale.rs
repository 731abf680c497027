//! Scale on the real stack (issue 7): a configuration of 50 providers × 20 seeds (1,000 routes)
//! runs one canary round with bounded connection counts and bounded memory.
//!
//! What is asserted, and why each bound holds:
//! - every route's canary is sent and delivered exactly once, none lost, no send failure;
//! - IMAP: one long-lived connection per watched folder (INBOX and the spam folder) of every
//!   seed, so seeds × 2 = 40, never more during the round and exactly that at its end: the cost
//!   grows with seeds, not with canaries (`src/canary/watch.rs`; a watcher drops its session
//!   before it reconnects);
//! - SMTP: there is no global limit on concurrent sends. What the code guarantees is one send
//!   at a time per provider: a round runs one task per provider that awaits each send before
//!   the next (`provider_round` in `src/canary/check.rs`), and the scheduler never overlaps
//!   runs of a check. So at most one connection per provider (50), and none once every send
//!   has returned;
//! - memory: the exporter's peak RSS stays under a generous ceiling.
//!
//! Connections are counted as `scripts/bench-canary` counts them: the exporter's sockets
//! (`/proc/<pid>/fd`) joined with `/proc/net/tcp{,6}` on the server's port. Performance figures
//! (detection delay, peak RSS and CPU per 1,000 routes of the release build) are the
//! benchmark's business; this test only prints what it measured.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Exporter, Scrape, Stack, TempDir};

const PROVIDERS: usize = 50;
const SEEDS: usize = 20;
/// Watched folders per seed: INBOX and the spam folder.
const FOLDERS: usize = 2;
const ROUTES: usize = PROVIDERS * SEEDS;

/// The canary round is spread over `JITTER` × `INTERVAL` (18 s): the scheduler delays the first
/// run by up to that, and each route starts at a random offset within it. One round only: the
/// next is an hour away.
const INTERVAL: &str = "1h";
const JITTER: f64 = 0.005;
/// A canary not seen by then is counted lost, well before the wait below gives up, so a lost
/// canary shows as such rather than as a timeout. Delivery on loopback takes milliseconds.
const DEADLINE: &str = "2m";
const WAIT: Duration = Duration::from_secs(240);

/// Guard against unbounded growth (a per-canary leak, buffers that grow with the round), not a
/// performance claim: the release build peaked at 27 MiB for 1,000 routes in
/// `scripts/bench-canary`; this is the debug build, with room to spare.
const MEMORY_CEILING: u64 = 256 * 1024 * 1024;

fn config(st: &Stack, dir: &TempDir) -> PathBuf {
    let ca = st.get("DX_CA_FILE");
    let submit = st.port("DX_SMTP_SUBMIT_PORT");
    let imaps = st.port("DX_IMAPS_PORT");
    let mut text = format!(
        "[exporter]\nstate_dir = \"{}\"\ninstance = \"scale-test\"\n\n\
         [dns]\nnameservers = [\"127.0.0.1:{}\"]\n\n\
         [canary]\ninterval = \"{INTERVAL}\"\njitter = {JITTER}\ndeadline = \"{DEADLINE}\"\n\
         cleanup = \"move\"\nmove_to = \"Archive\"\nsmtp_timeout = \"60s\"\n\n",
        dir.path().join("state").display(),
        st.port("DX_DNS_PORT")
    );
    for k in 1..=PROVIDERS {
        text += &format!(
            "[[providers]]\nname = \"p{k}\"\nhost = \"127.0.0.1\"\nport = {submit}\ntls = \"starttls\"\n\
             username = \"sender{k}@dx.test\"\npassword = \"pw-sender{k}\"\n\
             from = \"canary@dx.test\"\nca_file = \"{ca}\"\n\n"
        );
    }
    for k in 1..=SEEDS {
        text += &format!(
            "[[seeds]]\nname = \"s{k}\"\naddress = \"seed{k}@seed.test\"\nhost = \"127.0.0.1\"\n\
             port = {imaps}\ntls = \"implicit\"\npassword = \"pw-seed{k}\"\nca_file = \"{ca}\"\n\
             authserv_id = \"mx.seed.test\"\n\n"
        );
    }
    let p = dir.path().join("dx.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Sockets of process `pid` whose remote end is `port` (on loopback: the stack's server):
/// `(established, in any state)`. Reading the fds first and the tables second can miss a socket
/// opened in between, never count one twice or one that isn't the process's.
fn connections(pid: u32, port: u16) -> (usize, usize) {
    let mut inodes = HashSet::new();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"));
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let (mut established, mut any) = (0, 0);
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let remote_port = f[2]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && inodes.contains(f[9]) {
                any += 1;
                if f[3] == "01" {
                    established += 1;
                }
            }
        }
    }
    (established, any)
}

/// A `Vm*` figure of `/proc/<pid>/status`, in bytes.
fn vm(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The log's warnings and errors, and its last lines.
fn log_digest(e: &Exporter) -> String {
    let log = e.log.lock().unwrap();
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("level=warn") || l.contains("level=error"))
        .take(50)
        .collect();
    let tail = &log[log.len().saturating_sub(30)..];
    format!(
        "--- first warnings and errors ---\n{}\n--- last lines ---\n{}",
        warnings
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        tail.join("\n")
    )
}

/// Canaries settled so far: delivered, lost, or not accepted by the provider.
fn settled(s: &Scrape) -> f64 {
    s.sum("deliverability_canary_delivered_total", &[])
        + s.sum("deliverability_canary_lost_total", &[])
        + s.sum("deliverability_canary_send_failures_total", &[])
}

#[test]
fn a_round_of_1000_routes_holds_one_imap_connection_per_seed_folder_and_bounded_memory() {
    let t0 = Instant::now();
    let st = Stack::start(
        "scale",
        &[
            ("DX_SEEDS", &SEEDS.to_string()),
            ("DX_SENDERS", &PROVIDERS.to_string()),
        ],
    );
    let stack_up = t0.elapsed();
    let dir = TempDir::new("scale");
    let e = Exporter::start(&config(&st, &dir), &[]);
    let pid = e.child.id();
    let imaps = st.port("DX_IMAPS_PORT");
    let submit = st.port("DX_SMTP_SUBMIT_PORT");

    // Sample the connections every 100 ms through the round; scrape once a second (a scrape of
    // 1,000 routes is not free) until every canary is settled.
    let t1 = Instant::now();
    let (mut peak_imap, mut peak_smtp, mut samples) = (0, 0, 0);
    let mut last_scrape: Option<Instant> = None;
    let (mut delivered, mut last_delivery) = (0.0, Duration::ZERO);
    let s = loop {
        let (_, imap) = connections(pid, imaps);
        let (_, smtp) = connections(pid, submit);
        peak_imap = peak_imap.max(imap);
        peak_smtp = peak_smtp.max(smtp);
        samples += 1;
        if last_scrape.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_scrape = Some(Instant::now());
            let s = e.scrape();
            let d = s.sum("deliverability_canary_delivered_total", &[]);
            if d != delivered {
                (delivered, last_delivery) = (d, t1.elapsed());
            }
            if settled(&s) >= ROUTES as f64 {
                break s;
            }
            assert!(
                t1.elapsed() < WAIT,
                "timed out after {WAIT:?}: {} of {ROUTES} canaries settled ({delivered} delivered, {} sent)\n{}",
                settled(&s),
                s.sum("deliverability_canary_sent_total", &[]),
                log_digest(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let settled_after = t1.elapsed();
    // The run is recorded once its last send has returned; wait for that (whatever its result).
    let runs = e.wait_for(
        "the canary run to be recorded",
        Duration::from_secs(30),
        |s| s.sum("deliverability_check_runs_total", &[("check", "canary")]) >= 1.0,
    );

    // The end of the round: connections, memory, the last scrape. Figures first, then the
    // assertions, so a failing run still shows them; the full log goes to the stack's
    // directory, which is kept when the test fails.
    let (imap_end, imap_end_any) = connections(pid, imaps);
    let (smtp_end, smtp_end_any) = connections(pid, submit);
    let hwm = vm(pid, "VmHWM");
    let rss = vm(pid, "VmRSS");
    let s_end = e.scrape();
    let _ = std::fs::write(st.dir.join("exporter.log"), e.log_text());
    // (+ 0.0: an empty sum is -0.)
    let sum = |name: &str, labels: &[(&str, &str)]| s.sum(name, labels) + 0.0;
    eprintln!(
        "scale: {ROUTES} routes ({PROVIDERS} providers x {SEEDS} seeds), debug build\n\
         scale: stack up in {:.1} s; last delivery {:.1} s and every canary settled {:.1} s \
         after the exporter started; test wall time so far {:.1} s\n\
         scale: sent {}, delivered {} (inbox {}, spam {}, other {}), lost {}, send failures {}\n\
         scale: IMAP connections: peak {peak_imap}, at the end {imap_end} established \
         ({imap_end_any} in any state); bound seeds x folders = {}\n\
         scale: SMTP connections: peak {peak_smtp}, at the end {smtp_end_any}; \
         bound one per provider = {PROVIDERS}; {samples} samples\n\
         scale: exporter peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB; ceiling {:.0} MiB",
        stack_up.as_secs_f64(),
        last_delivery.as_secs_f64(),
        settled_after.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        sum("deliverability_canary_sent_total", &[]),
        sum("deliverability_canary_delivered_total", &[]),
        sum(
            "deliverability_canary_delivered_total",
            &[("placement", "inbox")]
        ),
        sum(
            "deliverability_canary_delivered_total",
            &[("placement", "spam")]
        ),
        sum(
            "deliverability_canary_delivered_total",
            &[("placement", "other")]
        ),
        sum("deliverability_canary_lost_total", &[]),
        sum("deliverability_canary_send_failures_total", &[]),
        SEEDS * FOLDERS,
        mib(hwm),
        mib(rss),
        mib(MEMORY_CEILING),
    );

    // Every route: one canary sent and accepted, delivered exactly once; nothing lost.
    let failures = s.samples("deliverability_canary_send_failures_total");
    let failed: Vec<_> = failures.iter().filter(|(_, v)| *v > 0.0).collect();
    assert!(
        failed.is_empty(),
        "send failures: {failed:?}\n{}",
        log_digest(&e)
    );
    assert_eq!(
        s.sum("deliverability_canary_lost_total", &[]),
        0.0,
        "canaries lost (log: {})\n{}",
        st.dir.join("exporter.log").display(),
        log_digest(&e)
    );
    assert_eq!(
        s.sum("deliverability_canary_sent_total", &[]),
        ROUTES as f64
    );
    let mut per_route: HashMap<(String, String), f64> = HashMap::new();
    for (l, v) in s.samples("deliverability_canary_delivered_total") {
        *per_route
            .entry((l["provider"].clone(), l["seed"].clone()))
            .or_default() += v;
    }
    assert_eq!(per_route.len(), ROUTES, "one series set per route");
    let odd: Vec<_> = per_route.iter().filter(|(_, v)| **v != 1.0).collect();
    assert!(odd.is_empty(), "routes not delivered exactly once: {odd:?}");
    assert_eq!(
        runs.value(
            "deliverability_check_runs_total",
            &[("check", "canary"), ("result", "success")]
        ),
        Some(1.0),
        "the round succeeded: every send accepted"
    );

    // Connections: every watcher still on its first connection, never more than one per seed
    // folder; at most one SMTP connection per provider, and none once every send has returned.
    assert!(
        peak_imap <= SEEDS * FOLDERS,
        "{peak_imap} IMAP connections at once; one per seed folder is {} (watcher reconnects: {})\n{}",
        SEEDS * FOLDERS,
        s_end.sum("deliverability_imap_reconnects_total", &[]),
        log_digest(&e)
    );
    assert_eq!(
        (imap_end, imap_end_any),
        (SEEDS * FOLDERS, SEEDS * FOLDERS),
        "IMAP connections at the end of the round (established, any state)"
    );
    assert_eq!(
        s_end.sum("deliverability_imap_up", &[]),
        (SEEDS * FOLDERS) as f64,
        "every seed folder watched"
    );
    assert_eq!(
        s_end.sum("deliverability_imap_reconnects_total", &[]),
        0.0,
        "no watcher had to reconnect\n{}",
        log_digest(&e)
    );
    assert!(
        peak_smtp <= PROVIDERS,
        "{peak_smtp} SMTP connections at once; sends are sequential per provider, so at most {PROVIDERS}"
    );
    // Without this the bound above could hold only because the counting saw nothing.
    assert!(
        peak_smtp >= 1,
        "no SMTP connection seen in {samples} samples during a round of {ROUTES} sends"
    );
    assert_eq!(
        (smtp_end, smtp_end_any),
        (0, 0),
        "SMTP connections left after every send returned"
    );

    // The series budget (docs/metrics.md, "Series"): what a route costs once its canary was
    // delivered, counted as series carrying both a provider and a seed label.
    let (mut route_series, mut provider_series, mut seed_series, mut total) = (0, 0, 0, 0);
    for line in s_end
        .0
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        total += 1;
        let (p, sd) = (line.contains("provider=\""), line.contains("seed=\""));
        match (p, sd) {
            (true, true) => route_series += 1,
            (true, false) => provider_series += 1,
            (false, true) => seed_series += 1,
            _ => {}
        }
    }
    eprintln!(
        "series: {total} in all; per route {:.2}, per provider {:.2}, per seed {:.2}",
        route_series as f64 / ROUTES as f64,
        provider_series as f64 / PROVIDERS as f64,
        seed_series as f64 / SEEDS as f64
    );
    assert!(
        route_series <= 16 * ROUTES,
        "{route_series} route series for {ROUTES} routes: over the budget of 16 per route"
    );
    // Without this the bound above could hold only because the count saw nothing.
    assert!(route_series >= 10 * ROUTES, "{route_series} route series");

    // Memory: see MEMORY_CEILING.
    assert!(
        hwm < MEMORY_CEILING,
        "the exporter's peak RSS is {:.1} MiB, over the {:.0} MiB ceiling",
        mib(hwm),
        mib(MEMORY_CEILING)
    );
    e.stop();
}
