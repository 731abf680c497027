use std::net::IpAddr;

use super::*;
use crate::resolver::{FakeDns, LookupError, RType};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn recognises_spf_records() {
    assert!(is_spf("v=spf1"));
    assert!(is_spf("V=SPF1 -all"));
    assert!(!is_spf("v=spf10 -all"));
    assert!(!is_spf("v=spf1-all"));
    assert!(!is_spf("spf2.0/pra"));
    assert!(!is_spf(""));
}

#[test]
fn parses_every_mechanism_and_modifier() {
    let r = parse(
        "v=spf1 +a -a:mail.example.com/24 ~mx:example.net//64 ?mx/26//48 ptr ptr:example.org \
         ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:192.0.2.1 exists:x.example.com \
         include:_spf.example.com redirect=_spf.example.net exp=explain.example.com foo=bar -all",
    )
    .unwrap();
    use Mechanism::*;
    let m: Vec<_> = r.directives.iter().map(|d| d.mechanism.clone()).collect();
    assert_eq!(
        m,
        vec![
            A {
                domain: None,
                v4: 32,
                v6: 128
            },
            A {
                domain: Some("mail.example.com".into()),
                v4: 24,
                v6: 128
            },
            Mx {
                domain: Some("example.net".into()),
                v4: 32,
                v6: 64
            },
            Mx {
                domain: None,
                v4: 26,
                v6: 48
            },
            Ptr(None),
            Ptr(Some("example.org".into())),
            Ip4("192.0.2.0".parse().unwrap(), 24),
            Ip6("2001:db8::".parse().unwrap(), 32),
            Ip4("192.0.2.1".parse().unwrap(), 32),
            Exists("x.example.com".into()),
            Include("_spf.example.com".into()),
            All,
        ]
    );
    let q: Vec<_> = r.directives.iter().map(|d| d.qualifier).collect();
    assert_eq!(q[1], Qualifier::Fail);
    assert_eq!(q[2], Qualifier::SoftFail);
    assert_eq!(q[3], Qualifier::Neutral);
    assert_eq!(q[0], Qualifier::Pass);
    assert_eq!(r.redirect.as_deref(), Some("_spf.example.net"));
    assert_eq!(r.exp.as_deref(), Some("explain.example.com"));
    assert_eq!(r.unknown_modifiers, vec!["foo=bar".to_string()]);
    assert_eq!(r.all(), Some(Qualifier::Fail));
}

#[test]
fn syntax_errors_are_named() {
    let cases = [
        ("v=spf1 foo:bar -all", "unknown mechanism \"foo:bar\""),
        ("v=spf1 ip4:300.1.1.1", "invalid IPv4 address"),
        ("v=spf1 ip4:192.0.2.0/33", "prefix length out of range"),
        ("v=spf1 ip4:192.0.2.0/024", "invalid prefix length"),
        ("v=spf1 ip6:zz::1", "invalid IPv6 address"),
        ("v=spf1 include", "needs a domain"),
        ("v=spf1 include:", "empty domain"),
        ("v=spf1 include:nodot", "not a valid domain name"),
        ("v=spf1 all:x", "takes no argument"),
        ("v=spf1 a/99", "prefix length out of range"),
        (
            "v=spf1 redirect=a.example redirect=b.example",
            "more than once",
        ),
        ("v=spf1 -", "unknown mechanism"),
    ];
    for (rec, want) in cases {
        let e = parse(rec).expect_err(rec).to_string();
        assert!(e.contains(want), "{rec}: {e}");
    }
    assert_eq!(parse("v=spf10"), Err(SyntaxError::NotSpf));
    assert_eq!(
        parse(&format!("v=spf1 {}", "a ".repeat(3000))),
        Err(SyntaxError::TooLong)
    );
}

#[test]
fn hostile_input_never_panics() {
    for s in [
        "v=spf1 \u{0}\u{ff}é:é/é",
        "v=spf1 ip6:",
        "v=spf1 ip6:/",
        "v=spf1 mx:/",
        "v=spf1 a://",
        "v=spf1 a:example.com//",
        "v=spf1 =x",
        "v=spf1 ~",
        "v=spf1 ip4:1.2.3.4/",
        "v=spf1 %{i}",
    ] {
        let _ = parse(s);
    }
}

fn chain(n: usize) -> FakeDns {
    // example.com includes i1..in, each with only ip4 terms: n lookups.
    let mut dns = FakeDns::new();
    let incs: Vec<String> = (1..=n)
        .map(|i| format!("include:i{i}.example.net"))
        .collect();
    dns = dns.txt("example.com", &format!("v=spf1 {} -all", incs.join(" ")));
    for i in 1..=n {
        dns = dns.txt(
            &format!("i{i}.example.net"),
            &format!("v=spf1 ip4:192.0.2.{i} ~all"),
        );
    }
    dns
}

#[tokio::test]
async fn counts_lookups_against_the_limit() {
    for (n, ok) in [(9, true), (10, true), (11, false)] {
        let r = analyze(&chain(n), "example.com").await;
        assert_eq!(r.lookups, n as u32);
        assert_eq!(r.ok(), ok, "{n}: {:?}", r.problems);
        if !ok {
            assert_eq!(r.problems[0].reason, Reason::LookupLimit);
        }
        assert_eq!(r.all, Some(Qualifier::Fail));
    }
    // check_host stops at the 11th term with permerror even for an IP that the 11th allows.
    assert!(matches!(
        check_host(&chain(11), ip("192.0.2.11"), "example.com").await,
        SpfResult::PermError(_)
    ));
    assert_eq!(
        check_host(&chain(10), ip("192.0.2.10"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&chain(10), ip("198.51.100.1"), "example.com").await,
        SpfResult::Fail
    );
}

#[tokio::test]
async fn nested_includes_are_counted_recursively() {
    let dns = FakeDns::new()
        .txt("example.com", "v=spf1 include:a.example.net mx -all")
        .txt(
            "a.example.net",
            "v=spf1 include:b.example.net a:host.example.net ?all",
        )
        .txt("b.example.net", "v=spf1 exists:e.example.net ptr -all")
        .a("host.example.net", "192.0.2.5")
        .a("e.example.net", "127.0.0.2")
        .mx("example.com", 10, "mx.example.com")
        .a("mx.example.com", "192.0.2.25");
    let r = analyze(&dns, "example.com").await;
    assert_eq!(r.lookups, 6, "include a, include b, exists, ptr, a, mx");
    assert_eq!(r.void_lookups, 0);
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(
        check_host(&dns, ip("192.0.2.25"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("192.0.2.5"), "example.com").await,
        SpfResult::Pass
    );
}

#[tokio::test]
async fn detects_include_loops() {
    let dns = FakeDns::new()
        .txt("example.com", "v=spf1 include:a.example.net -all")
        .txt("a.example.net", "v=spf1 include:b.example.net -all")
        .txt("b.example.net", "v=spf1 include:a.example.net -all");
    let r = analyze(&dns, "example.com").await;
    let p = r
        .problems
        .iter()
        .find(|p| p.reason == Reason::IncludeLoop)
        .unwrap();
    assert!(
        p.message
            .contains("a.example.net -> b.example.net -> a.example.net"),
        "{}",
        p.message
    );
    assert!(matches!(
        check_host(&dns, ip("192.0.2.1"), "example.com").await,
        SpfResult::PermError(m) if m.contains("loop")
    ));
}

#[tokio::test]
async fn counts_void_lookups() {
    let dns = FakeDns::new().txt(
        "example.com",
        "v=spf1 a:gone1.example.com a:gone2.example.com mx:gone3.example.com ip4:192.0.2.1 -all",
    );
    let r = analyze(&dns, "example.com").await;
    assert_eq!(r.void_lookups, 3);
    assert_eq!(r.problems[0].reason, Reason::VoidLimit);
    let two = FakeDns::new().txt(
        "example.com",
        "v=spf1 a:gone1.example.com a:gone2.example.com -all",
    );
    let r = analyze(&two, "example.com").await;
    assert_eq!(r.void_lookups, 2);
    assert!(r.ok());
    assert!(matches!(
        check_host(&dns, ip("192.0.2.1"), "example.com").await,
        SpfResult::PermError(m) if m.contains("void")
    ));
}

#[tokio::test]
async fn record_selection() {
    let two = FakeDns::new()
        .txt("example.com", "v=spf1 -all")
        .txt("example.com", "v=spf1 ip4:192.0.2.1 -all")
        .txt("example.com", "google-site-verification=abc");
    let r = analyze(&two, "example.com").await;
    assert_eq!(r.problems[0].reason, Reason::MultipleRecords);
    assert!(matches!(
        check_host(&two, ip("192.0.2.1"), "example.com").await,
        SpfResult::PermError(_)
    ));

    let none = FakeDns::new().txt("example.com", "hello");
    assert_eq!(
        analyze(&none, "example.com").await.problems[0].reason,
        Reason::NoRecord
    );
    assert_eq!(
        check_host(&none, ip("192.0.2.1"), "example.com").await,
        SpfResult::None
    );
    let nx = FakeDns::new();
    assert_eq!(
        check_host(&nx, ip("192.0.2.1"), "example.com").await,
        SpfResult::None
    );

    let broken = FakeDns::new().txt("example.com", "v=spf1 ip4:1.2.3 -all");
    let r = analyze(&broken, "example.com").await;
    assert_eq!(r.problems[0].reason, Reason::Syntax);
    assert!(
        r.problems[0].message.contains("invalid IPv4"),
        "{:?}",
        r.problems
    );

    let fail = FakeDns::new().fail(
        "example.com",
        RType::Txt,
        LookupError::ServFail {
            name: "example.com".into(),
        },
    );
    assert_eq!(
        analyze(&fail, "example.com").await.problems[0].reason,
        Reason::DnsError
    );
    assert!(matches!(
        check_host(&fail, ip("192.0.2.1"), "example.com").await,
        SpfResult::TempError(_)
    ));
}

#[tokio::test]
async fn redirect_and_all() {
    let dns = FakeDns::new()
        .txt(
            "example.com",
            "v=spf1 ip4:192.0.2.1 redirect=_spf.example.net",
        )
        .txt("_spf.example.net", "v=spf1 ip4:198.51.100.0/24 ~all");
    let r = analyze(&dns, "example.com").await;
    assert_eq!(r.lookups, 1);
    assert_eq!(
        r.all,
        Some(Qualifier::SoftFail),
        "the redirect target's all"
    );
    assert!(r.ok());
    assert_eq!(
        check_host(&dns, ip("198.51.100.7"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("192.0.2.1"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("203.0.113.1"), "example.com").await,
        SpfResult::SoftFail
    );

    let plus = FakeDns::new().txt("example.com", "v=spf1 +all");
    let r = analyze(&plus, "example.com").await;
    assert_eq!(r.all, Some(Qualifier::Pass));
    assert_eq!(r.problems[0].reason, Reason::PassAll);

    let no_all = FakeDns::new().txt("example.com", "v=spf1 ip4:192.0.2.1");
    assert_eq!(analyze(&no_all, "example.com").await.all, None);
    assert_eq!(
        check_host(&no_all, ip("203.0.113.1"), "example.com").await,
        SpfResult::Neutral
    );

    let dangling = FakeDns::new().txt("example.com", "v=spf1 redirect=missing.example.net");
    let r = analyze(&dangling, "example.com").await;
    assert!(
        r.problems
            .iter()
            .any(|p| p.reason == Reason::IncludeMissing),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn mx_host_limit() {
    let mut dns = FakeDns::new().txt("example.com", "v=spf1 mx -all");
    for i in 0..11 {
        dns = dns.mx("example.com", i, &format!("mx{i}.example.com"));
    }
    let r = analyze(&dns, "example.com").await;
    assert_eq!(r.problems[0].reason, Reason::MxLimit);
}

#[tokio::test]
async fn macros_are_reported_as_unsupported() {
    let dns = FakeDns::new().txt("example.com", "v=spf1 exists:%{i}._spf.example.net -all");
    let r = analyze(&dns, "example.com").await;
    assert_eq!(r.problems[0].reason, Reason::UnsupportedMacro);
    assert!(r.problems[0].message.contains("does not expand"));
    assert!(matches!(
        check_host(&dns, ip("192.0.2.1"), "example.com").await,
        SpfResult::Unsupported(_)
    ));
}

#[tokio::test]
async fn ipv6_and_cidr_matching() {
    let dns = FakeDns::new()
        .txt("example.com", "v=spf1 a/24//64 ip6:2001:db8:1::/48 -all")
        .a("example.com", "192.0.2.1")
        .a("example.com", "2001:db8:2::1");
    assert_eq!(
        check_host(&dns, ip("192.0.2.200"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("192.0.3.1"), "example.com").await,
        SpfResult::Fail
    );
    assert_eq!(
        check_host(&dns, ip("2001:db8:2::ffff"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("2001:db8:1:5::1"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("2001:db8:3::1"), "example.com").await,
        SpfResult::Fail
    );
    assert_eq!(
        check_host(&dns, ip("::ffff:192.0.2.9"), "example.com").await,
        SpfResult::Pass
    );
}

#[tokio::test]
async fn ptr_is_validated() {
    let dns = FakeDns::new()
        .txt("example.com", "v=spf1 ptr -all")
        .ptr("5.2.0.192.in-addr.arpa", "mail.example.com")
        .a("mail.example.com", "192.0.2.5")
        .ptr("6.2.0.192.in-addr.arpa", "mail.example.com");
    assert_eq!(
        check_host(&dns, ip("192.0.2.5"), "example.com").await,
        SpfResult::Pass
    );
    assert_eq!(
        check_host(&dns, ip("192.0.2.6"), "example.com").await,
        SpfResult::Fail,
        "forward lookup doesn't confirm"
    );
}
