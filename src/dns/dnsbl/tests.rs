use super::*;
use crate::resolver::FakeDns;
use std::sync::atomic::Ordering;

fn zone(name: &str, kind: ListKind, test: Option<&str>) -> Zone {
    Zone {
        name: name.to_string(),
        query_zone: format!("{name}.test"),
        kind,
        codes: catalogue::Codes::Exact(vec![("127.0.0.2".parse().unwrap(), "spam".into())]),
        error_codes: Vec::new(),
        test_entry: test.map(str::to_string),
        ipv6: true,
    }
}

fn ip(s: &str) -> Target {
    Target::Ip(s.parse().unwrap())
}

#[test]
fn reversal() {
    assert_eq!(
        reverse_name("192.0.2.1".parse().unwrap(), "z.example"),
        "1.2.0.192.z.example"
    );
    assert_eq!(
        reverse_name("2001:db8::1".parse().unwrap(), "z"),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z"
    );
    assert_eq!(ip("192.0.2.1").query_name("bl"), "1.2.0.192.bl");
    assert_eq!(
        Target::Domain("example.com".into()).query_name("dbl"),
        "example.com.dbl"
    );
}

#[test]
fn targets_parse_and_fit() {
    assert_eq!(Target::parse("192.0.2.1"), Some(ip("192.0.2.1")));
    assert_eq!(
        Target::parse("Example.COM."),
        Some(Target::Domain("example.com".into()))
    );
    assert_eq!(Target::parse("not a domain"), None);
    assert_eq!(Target::parse("localhost"), None);
    let z4 = Zone {
        ipv6: false,
        ..zone("a", ListKind::Ip, None)
    };
    assert!(ip("192.0.2.1").fits(&z4));
    assert!(!ip("2001:db8::1").fits(&z4));
    assert!(!Target::Domain("example.com".into()).fits(&z4));
    assert!(Target::Domain("example.com".into()).fits(&zone("d", ListKind::Domain, None)));
}

#[test]
fn classification_never_lists_an_error() {
    let z = zone("z", ListKind::Ip, None);
    let c = |s: &[&str]| {
        classify(
            &z,
            &s.iter().map(|a| a.parse().unwrap()).collect::<Vec<_>>(),
        )
    };
    assert!(c(&["127.0.0.2"]).is_listed());
    assert!(c(&["127.0.0.2", "127.0.0.10"]).is_listed());
    assert_eq!(c(&[]), Outcome::NotListed);
    for (code, reason) in [
        ("127.255.255.252", ErrorReason::Typo),
        ("127.255.255.254", ErrorReason::PublicResolver),
        ("127.255.255.255", ErrorReason::RateLimited),
        ("127.255.255.1", ErrorReason::InvalidCode),
        ("127.0.0.1", ErrorReason::InvalidCode),
        ("198.51.100.1", ErrorReason::Outside127),
        ("10.0.0.2", ErrorReason::Outside127),
    ] {
        let o = c(&[code]);
        assert_eq!(o.error_reason(), Some(reason), "{code}");
        assert!(!o.is_listed());
        // Mixed with a listing code, the error still wins.
        assert!(!c(&["127.0.0.2", code]).is_listed(), "{code}");
    }
    let dbl = catalogue::lookup("spamhaus-dbl", None).unwrap();
    assert_eq!(
        classify(&dbl, &["127.0.1.255".parse().unwrap()]).error_reason(),
        Some(ErrorReason::InvalidCode)
    );
}

#[tokio::test]
async fn a_round_over_targets_and_zones() {
    let dns = FakeDns::new()
        .a("2.0.0.127.good.test", "127.0.0.2")
        .a("10.2.0.192.good.test", "127.0.0.2")
        .a("11.2.0.192.good.test", "127.255.255.254")
        .a("test.dom.test", "127.0.0.2")
        .a("example.com.dom.test", "127.0.0.2")
        .a("10.2.0.192.broken.test", "127.0.0.2")
        .fail(
            "12.2.0.192.good.test",
            RType::A,
            LookupError::Timeout { name: "x".into() },
        );
    let zones = vec![
        zone("good", ListKind::Ip, Some("2.0.0.127")),
        zone("broken", ListKind::Ip, Some("2.0.0.127")),
        zone("dom", ListKind::Domain, Some("test")),
    ];
    let targets = vec![
        ip("192.0.2.10"),
        ip("192.0.2.11"),
        ip("192.0.2.12"),
        ip("192.0.2.99"),
        Target::Domain("example.com".into()),
    ];
    let cache = Cache::default();
    let r = run(&dns, &cache, &zones, &targets, 4).await;
    let h: HashMap<_, _> = r
        .zones
        .iter()
        .map(|(n, h)| (n.as_str(), h.healthy))
        .collect();
    assert!(h["good"]);
    assert!(!h["broken"], "test entry missing");
    assert!(h["dom"]);
    let get = |t: &str, z: &str| {
        r.verdicts
            .iter()
            .find(|v| v.target.to_string() == t && v.zone == z)
            .unwrap_or_else(|| panic!("{t} {z}"))
            .outcome
            .clone()
    };
    assert!(get("192.0.2.10", "good").is_listed());
    assert_eq!(
        get("192.0.2.11", "good").error_reason(),
        Some(ErrorReason::PublicResolver)
    );
    assert_eq!(
        get("192.0.2.12", "good").error_reason(),
        Some(ErrorReason::Timeout)
    );
    assert_eq!(get("192.0.2.99", "good"), Outcome::NotListed);
    assert_eq!(
        get("192.0.2.10", "broken").error_reason(),
        Some(ErrorReason::ZoneUnhealthy)
    );
    assert!(get("example.com", "dom").is_listed());
    assert_eq!(r.verdicts.len(), 4 * 2 + 1, "domains only in domain zones");
    let listed = r.verdicts.iter().find(|v| v.outcome.is_listed()).unwrap();
    assert_eq!(listed.meanings, vec!["spam".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn answers_are_cached_for_their_ttl_errors_are_not() {
    let dns = FakeDns::new()
        .a("2.0.0.127.good.test", "127.0.0.2")
        .a("10.2.0.192.good.test", "127.0.0.2")
        .fail(
            "12.2.0.192.good.test",
            RType::A,
            LookupError::ServFail { name: "x".into() },
        );
    let zones = vec![zone("good", ListKind::Ip, Some("2.0.0.127"))];
    let targets = vec![ip("192.0.2.10"), ip("192.0.2.11"), ip("192.0.2.12")];
    let cache = Cache::default();
    run(&dns, &cache, &zones, &targets, 2).await;
    let first = dns.queries.load(Ordering::SeqCst);
    assert_eq!(first, 2 + 3, "health (2) + targets (3)");
    run(&dns, &cache, &zones, &targets, 2).await;
    assert_eq!(
        dns.queries.load(Ordering::SeqCst),
        first + 1,
        "only the SERVFAIL is asked again"
    );
    // FakeDns: TTL 300 for answers, 60 for NXDOMAIN.
    tokio::time::advance(Duration::from_secs(61)).await;
    run(&dns, &cache, &zones, &targets, 2).await;
    assert_eq!(
        dns.queries.load(Ordering::SeqCst),
        first + 1 + 3,
        "NXDOMAINs (127.0.0.1, .11) and the error"
    );
}

#[tokio::test]
async fn untested_zone_health_follows_its_answers() {
    let dns = FakeDns::new().fail(
        "10.2.0.192.quiet.test",
        RType::A,
        LookupError::Refused { name: "x".into() },
    );
    let zones = vec![zone("quiet", ListKind::Ip, None)];
    let r = run(&dns, &Cache::default(), &zones, &[ip("192.0.2.10")], 1).await;
    assert!(!r.zones[0].1.healthy);
    assert_eq!(
        r.verdicts[0].outcome.error_reason(),
        Some(ErrorReason::Refused)
    );
    let ok = FakeDns::new();
    let r = run(&ok, &Cache::default(), &zones, &[ip("192.0.2.10")], 1).await;
    assert!(r.zones[0].1.healthy);
}

#[tokio::test]
async fn a_zone_that_lists_everything_is_unhealthy() {
    let dns = FakeDns::new()
        .a("2.0.0.127.all.test", "127.0.0.2")
        .a("1.0.0.127.all.test", "127.0.0.2");
    let zones = [zone("all", ListKind::Ip, Some("2.0.0.127"))];
    let h = health(&dns, &Cache::default(), &zones[0]).await;
    assert!(!h.healthy);
    assert!(h.problem.unwrap().contains("answers everything"));
}

#[test]
fn cache_is_bounded() {
    let c = Cache::new(2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..5 {
            c.put(format!("n{i}"), Outcome::NotListed, Duration::from_secs(60));
            assert!(c.len() <= 2);
        }
        c.put("zero".into(), Outcome::NotListed, Duration::ZERO);
        assert!(c.get("zero").is_none());
    });
}

#[tokio::test]
async fn a_dqs_key_never_reaches_an_error_message() {
    let z = catalogue::lookup("spamhaus-zen", Some("s3cr3tkey")).unwrap();
    let dns = FakeDns::new().fail(
        "1.2.0.192.s3cr3tkey.zen.dq.spamhaus.net",
        RType::A,
        LookupError::Timeout {
            name: "1.2.0.192.s3cr3tkey.zen.dq.spamhaus.net".into(),
        },
    );
    let o = query(
        &dns,
        &Cache::default(),
        &z,
        "1.2.0.192.s3cr3tkey.zen.dq.spamhaus.net",
    )
    .await;
    let Outcome::Error { detail, .. } = o else {
        panic!("{o:?}")
    };
    assert!(!detail.contains("s3cr3tkey"), "{detail}");
    assert!(detail.contains("<spamhaus-zen>"), "{detail}");
}
