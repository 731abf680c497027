//! DNS blacklists against the real Unbound of a private stack instance (zones dnsbl.test and
//! broken-dnsbl.test of the stack, dbl.dc.test, bl6.dc.test, silentbl.test and refusebl.test
//! of scripts/stack.d/zones/dns-checks.conf): listed, not listed, 127.255.255.254, 127.0.0.1,
//! an answer outside 127/8, a zone missing its test entry, a zone that never answers, REFUSED,
//! IPv6 and domain targets, the cache of a second round; a nameserver that never answers (a
//! UDP socket this test binds and never reads); then the exporter binary end to end: series
//! from the first scrape, the scheduled checks, `/probe` for both modules within the scrape
//! timeout, and `once`.
//!
//! Each case is its own test; the tests running at the same time share one stack instance
//! (`common::Shared`), taken down when the last of them ends, also when a case fails. Nothing
//! is sent anywhere but 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Exporter, Scrape, Shared, Stack, TempDir, bin};
use deliverability_exporter::config::{CustomZone, DnsConfig, Dur, Name, ZoneKind};
use deliverability_exporter::dns::check::record_round;
use deliverability_exporter::dns::dnsbl::{self, Cache, ErrorReason, Target, Zone, catalogue};
use deliverability_exporter::metrics::Metrics;
use deliverability_exporter::resolver::{Answer, Lookup, LookupError, RType, Resolver};

fn resolver(addr: &str, timeout_ms: u64) -> Resolver {
    let cfg = DnsConfig {
        nameservers: vec![addr.parse().unwrap()],
        timeout: Dur(Duration::from_millis(timeout_ms)),
        attempts: 1,
        interval: Dur(Duration::from_secs(60)),
    };
    Resolver::new(&cfg, 16).expect("resolver")
}

fn zone(name: &str, zone: &str, kind: ZoneKind, test_entry: bool) -> Zone {
    catalogue::custom(&CustomZone {
        name: Name(name.into()),
        zone: zone.into(),
        kind,
        codes: BTreeMap::from([("127.0.0.2".to_string(), "spam source".to_string())]),
        test_entry,
    })
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

static ENV: Shared<Stack> = Shared::new();

/// The stack instance shared by the cases running at the same time.
fn stack() -> Arc<Stack> {
    ENV.get(|| Stack::start("dnsbl", &[]))
}

/// A runtime like the one the exporter runs its checks on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one case against the shared stack's Unbound (a 300 ms query timeout).
fn case<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce(Resolver, Arc<Stack>) -> Fut,
    Fut: std::future::Future,
{
    // Held here until the case has run: a closure that doesn't use its stack argument drops it
    // before the future runs.
    let stack = stack();
    let dns = resolver(&format!("127.0.0.1:{}", stack.port("DX_DNS_PORT")), 300);
    runtime().block_on(f(dns, stack.clone()))
}

/// Every kind of zone the stack serves.
fn zones() -> Vec<Zone> {
    vec![
        zone("testbl", "dnsbl.test", ZoneKind::Ip, true),
        zone("brokenbl", "broken-dnsbl.test", ZoneKind::Ip, true),
        zone("dbl", "dbl.dc.test", ZoneKind::Domain, true),
        zone("bl6", "bl6.dc.test", ZoneKind::Ip, true),
        zone("silent", "silentbl.test", ZoneKind::Ip, false),
        zone("silent-tested", "silentbl.test", ZoneKind::Ip, true),
        zone("refusing", "refusebl.test", ZoneKind::Ip, false),
    ]
}

/// Targets for every kind of answer those zones give.
fn targets() -> Vec<Target> {
    [
        "192.0.2.10",
        "192.0.2.99",
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
        "2001:db8::10",
        "2001:db8::11",
        "spammy.dc-ext.test",
        "clean.dc-ext.test",
    ]
    .iter()
    .map(|s| t(s))
    .collect()
}

/// One round of every target in every zone, recorded into fresh metrics.
struct Recorded {
    m: Metrics,
    round: dnsbl::Round,
    /// What recording the round returned: the listings and the errors.
    listed: usize,
    errors: usize,
}

impl Recorded {
    fn listed_in(&self, target: &str, zone: &str) -> i64 {
        self.m
            .dns
            .dnsbl_listed
            .with_label_values(&[target, zone])
            .get()
    }

    fn err(&self, target: &str, zone: &str, reason: ErrorReason) -> i64 {
        self.m
            .dns
            .dnsbl_error
            .with_label_values(&[target, zone, reason.as_str()])
            .get()
    }

    fn healthy(&self, zone: &str) -> i64 {
        self.m
            .dns
            .dnsbl_zone_healthy
            .with_label_values(&[zone])
            .get()
    }
}

/// A round of [`targets`] in [`zones`] against the shared stack's Unbound.
fn every_zone() -> Recorded {
    case(|dns, _stack| async move {
        let zones = zones();
        let round = dnsbl::run(&dns, &Cache::default(), &zones, &targets(), 8).await;
        let m = Metrics::bare();
        let (listed, errors) = record_round(&m.dns, &dns, &zones, &round).await;
        Recorded {
            m,
            round,
            listed,
            errors,
        }
    })
}

#[test]
fn an_ip_in_the_zone_is_listed_and_one_not_in_it_is_not() {
    let r = every_zone();
    assert_eq!(r.listed_in("192.0.2.10", "testbl"), 1, "listed");
    assert_eq!(r.listed_in("192.0.2.99", "testbl"), 0, "not listed");
    assert!(
        ErrorReason::ALL
            .iter()
            .all(|e| r.err("192.0.2.99", "testbl", *e) == 0)
    );
    assert_eq!(r.healthy("testbl"), 1);
}

#[test]
fn answers_that_are_not_listing_codes_are_errors() {
    let r = every_zone();
    assert_eq!(
        r.listed_in("192.0.2.11", "testbl"),
        0,
        "127.255.255.254 is an error"
    );
    assert_eq!(
        r.err("192.0.2.11", "testbl", ErrorReason::PublicResolver),
        1
    );
    assert_eq!(
        r.listed_in("192.0.2.12", "testbl"),
        0,
        "127.0.0.1 is an error"
    );
    assert_eq!(r.err("192.0.2.12", "testbl", ErrorReason::InvalidCode), 1);
    assert_eq!(
        r.listed_in("192.0.2.13", "testbl"),
        0,
        "outside 127/8 is an error"
    );
    assert_eq!(r.err("192.0.2.13", "testbl", ErrorReason::Outside127), 1);
}

#[test]
fn a_zone_missing_its_test_entry_is_unhealthy_and_lists_nothing() {
    let r = every_zone();
    assert_eq!(r.healthy("brokenbl"), 0, "test entry missing");
    assert_eq!(
        r.listed_in("192.0.2.10", "brokenbl"),
        0,
        "an unhealthy zone lists nothing"
    );
    assert_eq!(
        r.err("192.0.2.10", "brokenbl", ErrorReason::ZoneUnhealthy),
        1
    );
}

#[test]
fn domain_targets_in_a_domain_zone() {
    let r = every_zone();
    assert_eq!(r.listed_in("spammy.dc-ext.test", "dbl"), 1);
    assert_eq!(r.listed_in("clean.dc-ext.test", "dbl"), 0);
    assert_eq!(r.healthy("dbl"), 1);
}

#[test]
fn ipv6_targets_nibble_reversed() {
    let r = every_zone();
    assert_eq!(
        r.listed_in("2001:db8::10", "bl6"),
        1,
        "IPv6, nibble-reversed"
    );
    assert_eq!(r.listed_in("2001:db8::11", "bl6"), 0);
}

#[test]
fn a_zone_that_never_answers_is_a_timeout_and_unhealthy() {
    let r = every_zone();
    assert_eq!(r.listed_in("192.0.2.10", "silent"), 0);
    assert_eq!(
        r.err("192.0.2.10", "silent", ErrorReason::Timeout),
        1,
        "a zone that never answers"
    );
    assert_eq!(r.healthy("silent"), 0);
    assert_eq!(r.healthy("silent-tested"), 0);
    assert_eq!(
        r.err("192.0.2.10", "silent-tested", ErrorReason::ZoneUnhealthy),
        1
    );
}

#[test]
fn a_zone_that_refuses_is_an_error_and_unhealthy() {
    let r = every_zone();
    assert_eq!(r.err("192.0.2.10", "refusing", ErrorReason::Refused), 1);
    assert_eq!(r.healthy("refusing"), 0);
}

#[test]
fn never_listed_on_error_whatever_the_zone() {
    let r = every_zone();
    let round = &r.round;
    for v in &round.verdicts {
        assert!(!(v.outcome.is_listed() && v.outcome.error_reason().is_some()));
        if v.outcome.error_reason().is_some() {
            assert_eq!(r.listed_in(&v.target.to_string(), &v.zone), 0, "{v:?}");
        }
    }
    assert_eq!(
        r.listed, 3,
        "192.0.2.10 in testbl, 2001:db8::10 in bl6, spammy in dbl; {round:?}"
    );
    assert!(r.errors > 0);
}

#[test]
fn a_second_round_is_answered_from_the_cache_and_only_errors_are_asked_again() {
    case(|dns, _stack| async move {
        let (zones, targets) = (zones(), targets());
        let cache = Cache::default();
        let dns = Counting {
            inner: &dns,
            queries: Default::default(),
        };
        let round = dnsbl::run(&dns, &cache, &zones, &targets, 8).await;
        let first = dns.take();
        let cached = cache.len();
        assert!(cached > 10, "{cached}");
        let again = dnsbl::run(&dns, &cache, &zones, &targets, 8).await;
        let second = dns.take();
        // The work is counted, not timed: what the cache holds is not asked again.
        assert!(
            second + cached <= first,
            "first round {first} queries, {cached} answers cached, second round {second} queries"
        );
        let key = |r: &dnsbl::Round| {
            let mut v: Vec<String> = r
                .verdicts
                .iter()
                .map(|v| format!("{} {} {:?}", v.target, v.zone, v.outcome.is_listed()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(key(&again), key(&round));
    });
}

/// A resolver that counts the queries it passes on.
struct Counting<'a> {
    inner: &'a Resolver,
    queries: std::sync::atomic::AtomicUsize,
}

impl Counting<'_> {
    /// The queries since the last call.
    fn take(&self) -> usize {
        self.queries.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Lookup for Counting<'_> {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: RType,
    ) -> futures::future::BoxFuture<'a, Result<Answer, LookupError>> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.lookup(name, rtype)
    }
}

/// A nameserver that never answers: a UDP socket bound here and never read. Needs no stack.
#[test]
fn a_nameserver_that_never_answers() {
    runtime().block_on(async {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap().to_string();
        let dns = resolver(&addr, 200);
        let zones = vec![
            zone("testbl", "dnsbl.test", ZoneKind::Ip, true),
            zone("untested", "dnsbl.test", ZoneKind::Ip, false),
        ];
        let targets = vec![t("192.0.2.10")];
        let round = dnsbl::run(&dns, &Cache::default(), &zones, &targets, 4).await;
        let m = Metrics::bare();
        let (listed, _) = record_round(&m.dns, &dns, &zones, &round).await;
        assert_eq!(listed, 0);
        let d = &m.dns;
        assert_eq!(
            d.dnsbl_listed
                .with_label_values(&["192.0.2.10", "testbl"])
                .get(),
            0
        );
        assert_eq!(d.dnsbl_zone_healthy.with_label_values(&["testbl"]).get(), 0);
        assert_eq!(
            d.dnsbl_error
                .with_label_values(&["192.0.2.10", "untested", "timeout"])
                .get(),
            1,
            "{round:?}"
        );
        drop(sock);
    });
}

/// GET with Prometheus' scrape timeout header; returns (status, body, elapsed).
fn probe(addr: &str, path: &str, scrape_timeout: f64) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nX-Prometheus-Scrape-Timeout-Seconds: {scrape_timeout}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string(), started.elapsed())
}

/// The exporter's configuration: records of good.dc.test, blacklists testbl, dbl and the silent
/// zone, all against the shared stack's Unbound; written into `tmp`.
fn exporter_config(stack: &Stack, tmp: &TempDir) -> PathBuf {
    let dns_port = stack.port("DX_DNS_PORT");
    let cfg = tmp.path().join("deliverability.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[exporter]
state_dir = "{state}"

[dns]
nameservers = ["127.0.0.1:{dns_port}"]
timeout = "500ms"
attempts = 1
interval = "10s"

[canary]
jitter = 0.0

[[domains]]
name = "good.dc.test"
dkim_selectors = ["ed"]
expected_ips = ["127.0.0.1"]
mta_sts = false

[dnsbl]
interval = "10s"
ips = ["192.0.2.10", "192.0.2.99"]
domains = ["spammy.dc-ext.test"]

[[dnsbl.custom]]
name = "testbl"
zone = "dnsbl.test"
kind = "ip"

[[dnsbl.custom]]
name = "dbl"
zone = "dbl.dc.test"
kind = "domain"

[[dnsbl.custom]]
name = "silent"
zone = "silentbl.test"
kind = "ip"
test_entry = false
"#,
            state = tmp.path().join("state").display()
        ),
    )
    .unwrap();
    cfg
}

/// The exporter started with [`exporter_config`] on the shared stack.
fn exporter(tag: &str) -> (Arc<Stack>, TempDir, Exporter) {
    let stack = stack();
    let tmp = TempDir::new(tag);
    let ex = Exporter::start(&exporter_config(&stack, &tmp), &[]);
    (stack, tmp, ex)
}

#[test]
fn the_exporter_has_every_series_from_its_first_scrape() {
    let (_stack, _tmp, ex) = exporter("dnsbl-first-scrape");
    // Series exist from the first scrape, whether or not a run has finished.
    let s = ex.scrape();
    for (name, labels) in [
        (
            "deliverability_dns_check_success",
            vec![("domain", "good.dc.test"), ("check", "spf")],
        ),
        (
            "deliverability_dns_check_errors_total",
            vec![
                ("domain", "good.dc.test"),
                ("check", "dmarc"),
                ("reason", "syntax"),
            ],
        ),
        (
            "deliverability_spf_pass",
            vec![("domain", "good.dc.test"), ("ip", "127.0.0.1")],
        ),
        (
            "deliverability_dkim_key_revoked",
            vec![("domain", "good.dc.test"), ("selector", "ed")],
        ),
        (
            "deliverability_dmarc_policy",
            vec![("domain", "good.dc.test"), ("policy", "reject")],
        ),
        (
            "deliverability_dnsbl_listed",
            vec![("target", "192.0.2.99"), ("zone", "testbl")],
        ),
        (
            "deliverability_dnsbl_listed",
            vec![("target", "spammy.dc-ext.test"), ("zone", "dbl")],
        ),
        (
            "deliverability_dnsbl_error",
            vec![
                ("target", "192.0.2.10"),
                ("zone", "silent"),
                ("reason", "timeout"),
            ],
        ),
        (
            "deliverability_dnsbl_zone_healthy",
            vec![("zone", "testbl")],
        ),
    ] {
        assert!(
            s.value(name, &labels).is_some(),
            "{name}{labels:?} missing from the first scrape:\n{}",
            s.0
        );
    }
    assert!(
        s.value(
            "deliverability_dnsbl_listed",
            &[("target", "spammy.dc-ext.test"), ("zone", "testbl")]
        )
        .is_none(),
        "domains only in domain zones"
    );
}

#[test]
fn the_exporters_scheduled_checks_record_the_records_and_the_listings() {
    let (_stack, _tmp, ex) = exporter("dnsbl-scheduled");
    let s = ex.wait_for("both checks to run", Duration::from_secs(30), |s| {
        s.value(
            "deliverability_check_last_run_timestamp_seconds",
            &[("check", "dns")],
        )
        .unwrap_or(0.0)
            > 0.0
            && s.value(
                "deliverability_check_last_run_timestamp_seconds",
                &[("check", "dnsbl")],
            )
            .unwrap_or(0.0)
                > 0.0
    });
    let v = |s: &Scrape, n: &str, l: &[(&str, &str)]| s.value(n, l).unwrap_or(-1.0);
    assert_eq!(
        v(
            &s,
            "deliverability_dns_check_success",
            &[("domain", "good.dc.test"), ("check", "spf")]
        ),
        1.0,
        "{}",
        ex.log_text()
    );
    assert_eq!(
        v(
            &s,
            "deliverability_dkim_key_bits",
            &[
                ("domain", "good.dc.test"),
                ("selector", "ed"),
                ("type", "ed25519")
            ]
        ),
        256.0
    );
    assert_eq!(
        v(
            &s,
            "deliverability_spf_pass",
            &[("domain", "good.dc.test"), ("ip", "127.0.0.1")]
        ),
        1.0
    );
    assert!(
        v(
            &s,
            "deliverability_dns_record_change_timestamp_seconds",
            &[("domain", "good.dc.test"), ("check", "spf")]
        ) > 1.0e9
    );
    assert_eq!(
        v(
            &s,
            "deliverability_dnsbl_listed",
            &[("target", "192.0.2.10"), ("zone", "testbl")]
        ),
        1.0
    );
    assert_eq!(
        v(
            &s,
            "deliverability_dnsbl_listed",
            &[("target", "spammy.dc-ext.test"), ("zone", "dbl")]
        ),
        1.0
    );
    assert_eq!(
        v(
            &s,
            "deliverability_dnsbl_listed",
            &[("target", "192.0.2.10"), ("zone", "silent")]
        ),
        0.0
    );
    assert_eq!(
        v(
            &s,
            "deliverability_dnsbl_error",
            &[
                ("target", "192.0.2.10"),
                ("zone", "silent"),
                ("reason", "timeout")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(&s, "deliverability_check_success", &[("check", "dnsbl")]),
        0.0,
        "listings make the run fail"
    );
    let lint = common::promtool_check_metrics(&s.0);
    assert!(
        !lint.contains("deliverability_dns")
            && !lint.contains("deliverability_spf")
            && !lint.contains("dnsbl"),
        "promtool: {lint}"
    );
    assert!(
        ex.log_text().contains("listed in a DNS blacklist"),
        "listings are logged"
    );
}

#[test]
fn probe_returns_only_the_targets_metrics_within_the_scrape_timeout() {
    let (_stack, _tmp, ex) = exporter("dnsbl-probe");
    // /probe: only the target's metrics.
    let (code, body, _) = probe(&ex.addr, "/probe?module=dns&target=plusall.dc.test", 5.0);
    assert_eq!(code, 200, "{body}");
    let p = Scrape(body);
    assert_eq!(
        p.value(
            "deliverability_spf_all_qualifier",
            &[("domain", "plusall.dc.test"), ("qualifier", "pass")]
        ),
        Some(1.0),
        "{}",
        p.0
    );
    assert_eq!(
        p.value("deliverability_probe_success", &[("module", "dns")]),
        Some(0.0)
    );
    assert!(
        !p.0.contains("good.dc.test")
            && !p.0.contains("deliverability_check_")
            && !p.0.contains("deliverability_build_info"),
        "{}",
        p.0
    );
    let (code, body, _) = probe(
        &ex.addr,
        "/probe?module=dnsbl&target=spammy.dc-ext.test",
        5.0,
    );
    assert_eq!(code, 200, "{body}");
    let p = Scrape(body);
    assert_eq!(
        p.value(
            "deliverability_dnsbl_listed",
            &[("target", "spammy.dc-ext.test"), ("zone", "dbl")]
        ),
        Some(1.0),
        "{}",
        p.0
    );
    assert!(!p.0.contains("192.0.2.10"), "{}", p.0);
    // The silent zone takes longer than this scrape allows (timeout 1 s, probe gets 0.5 s).
    let (code, body, took) = probe(&ex.addr, "/probe?module=dnsbl&target=192.0.2.77", 1.0);
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_millis(900), "probe took {took:?}");
    assert_eq!(
        Scrape(body).value("deliverability_probe_success", &[("module", "dnsbl")]),
        Some(0.0)
    );
    let (code, body, _) = probe(&ex.addr, "/probe?module=dns&target=not%20a%20domain", 5.0);
    assert_eq!(code, 400, "{body}");
}

#[test]
fn once_only_dnsbl_prints_the_blacklist_metrics_and_fails_on_a_listing() {
    let stack = stack();
    let tmp = TempDir::new("dnsbl-once");
    let cfg = exporter_config(&stack, &tmp);
    let out = std::process::Command::new(bin())
        .args([
            "--config.file",
            cfg.to_str().unwrap(),
            "once",
            "--only",
            "dnsbl",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "once succeeded:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Scrape(text.into_owned());
    assert_eq!(
        s.value(
            "deliverability_dnsbl_listed",
            &[("target", "192.0.2.10"), ("zone", "testbl")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    assert!(
        s.value("deliverability_dns_check_success", &[]).is_none(),
        "--only dnsbl runs no record check"
    );
}
