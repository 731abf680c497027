//! DNS blacklists against the real Unbound of a private stack instance (zones dnsbl.test and
//! broken-dnsbl.test of the stack, dbl.dc.test, bl6.dc.test, silentbl.test and refusebl.test
//! of scripts/stack.d/zones/dns-checks.conf): listed, not listed, 127.255.255.254, 127.0.0.1,
//! an answer outside 127/8, a zone missing its test entry, a zone that never answers, REFUSED,
//! IPv6 and domain targets; a nameserver that never answers (a UDP socket this test binds and
//! never reads); then the exporter binary end to end: series from the first scrape, the
//! scheduled checks, `/probe` for both modules within the scrape timeout, and `once`.
//!
//! One test function per stack instance, so the instance is always taken down. Nothing is
//! sent anywhere but 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Exporter, Scrape, Stack, TempDir, bin};
use deliverability_exporter::config::{CustomZone, DnsConfig, Dur, Name, ZoneKind};
use deliverability_exporter::dns::check::record_round;
use deliverability_exporter::dns::dnsbl::{self, Cache, ErrorReason, Target, Zone, catalogue};
use deliverability_exporter::dns::resolver::Resolver;
use deliverability_exporter::metrics::Metrics;

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

#[test]
fn dnsbl_against_the_local_unbound_and_the_exporter() {
    let stack = Stack::start("dnsbl", &[]);
    let port = stack.port("DX_DNS_PORT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(zone_cases(port));
    rt.block_on(silent_nameserver());
    exporter_end_to_end(&stack);
}

async fn zone_cases(port: u16) {
    let dns = resolver(&format!("127.0.0.1:{port}"), 300);
    let zones = vec![
        zone("testbl", "dnsbl.test", ZoneKind::Ip, true),
        zone("brokenbl", "broken-dnsbl.test", ZoneKind::Ip, true),
        zone("dbl", "dbl.dc.test", ZoneKind::Domain, true),
        zone("bl6", "bl6.dc.test", ZoneKind::Ip, true),
        zone("silent", "silentbl.test", ZoneKind::Ip, false),
        zone("silent-tested", "silentbl.test", ZoneKind::Ip, true),
        zone("refusing", "refusebl.test", ZoneKind::Ip, false),
    ];
    let targets: Vec<Target> = [
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
    .collect();
    let cache = Cache::default();
    let started = Instant::now();
    let round = dnsbl::run(&dns, &cache, &zones, &targets, 8).await;
    let first = started.elapsed();
    let m = Metrics::bare();
    let (listed, errors) = record_round(&m.dns, &dns, &zones, &round).await;
    let d = &m.dns;
    let listed_in = |t: &str, z: &str| d.dnsbl_listed.with_label_values(&[t, z]).get();
    let err = |t: &str, z: &str, r: ErrorReason| {
        d.dnsbl_error.with_label_values(&[t, z, r.as_str()]).get()
    };
    let healthy = |z: &str| d.dnsbl_zone_healthy.with_label_values(&[z]).get();

    assert_eq!(listed_in("192.0.2.10", "testbl"), 1, "listed");
    assert_eq!(listed_in("192.0.2.99", "testbl"), 0, "not listed");
    assert!(
        ErrorReason::ALL
            .iter()
            .all(|r| err("192.0.2.99", "testbl", *r) == 0)
    );
    assert_eq!(
        listed_in("192.0.2.11", "testbl"),
        0,
        "127.255.255.254 is an error"
    );
    assert_eq!(err("192.0.2.11", "testbl", ErrorReason::PublicResolver), 1);
    assert_eq!(
        listed_in("192.0.2.12", "testbl"),
        0,
        "127.0.0.1 is an error"
    );
    assert_eq!(err("192.0.2.12", "testbl", ErrorReason::InvalidCode), 1);
    assert_eq!(
        listed_in("192.0.2.13", "testbl"),
        0,
        "outside 127/8 is an error"
    );
    assert_eq!(err("192.0.2.13", "testbl", ErrorReason::Outside127), 1);
    assert_eq!(healthy("testbl"), 1);

    assert_eq!(healthy("brokenbl"), 0, "test entry missing");
    assert_eq!(
        listed_in("192.0.2.10", "brokenbl"),
        0,
        "an unhealthy zone lists nothing"
    );
    assert_eq!(err("192.0.2.10", "brokenbl", ErrorReason::ZoneUnhealthy), 1);

    assert_eq!(listed_in("spammy.dc-ext.test", "dbl"), 1);
    assert_eq!(listed_in("clean.dc-ext.test", "dbl"), 0);
    assert_eq!(healthy("dbl"), 1);
    assert_eq!(listed_in("2001:db8::10", "bl6"), 1, "IPv6, nibble-reversed");
    assert_eq!(listed_in("2001:db8::11", "bl6"), 0);

    assert_eq!(listed_in("192.0.2.10", "silent"), 0);
    assert_eq!(
        err("192.0.2.10", "silent", ErrorReason::Timeout),
        1,
        "a zone that never answers"
    );
    assert_eq!(healthy("silent"), 0);
    assert_eq!(healthy("silent-tested"), 0);
    assert_eq!(
        err("192.0.2.10", "silent-tested", ErrorReason::ZoneUnhealthy),
        1
    );
    assert_eq!(err("192.0.2.10", "refusing", ErrorReason::Refused), 1);
    assert_eq!(healthy("refusing"), 0);

    // Never listed on error, whatever the zone.
    for v in &round.verdicts {
        assert!(!(v.outcome.is_listed() && v.outcome.error_reason().is_some()));
        if v.outcome.error_reason().is_some() {
            assert_eq!(listed_in(&v.target.to_string(), &v.zone), 0, "{v:?}");
        }
    }
    assert_eq!(
        listed, 3,
        "192.0.2.10 in testbl, 2001:db8::10 in bl6, spammy in dbl; {round:?}"
    );
    assert!(errors > 0);

    // Second round: answers come from the cache; only errors are asked again.
    let cached = cache.len();
    assert!(cached > 10, "{cached}");
    let started = Instant::now();
    let again = dnsbl::run(&dns, &cache, &zones, &targets, 8).await;
    assert!(started.elapsed() <= first + Duration::from_millis(200));
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
}

/// A nameserver that never answers: a UDP socket bound here and never read.
async fn silent_nameserver() {
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

fn exporter_end_to_end(stack: &Stack) {
    let tmp = TempDir::new("dnsbl-exporter");
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
    let ex = Exporter::start(&cfg, &[]);
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
    drop(ex);

    // once --only dnsbl prints the blacklist metrics and fails (a target is listed).
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
