use super::*;
use crate::resolver::{FakeDns, LookupError};

#[test]
fn parses_every_tag() {
    let r = parse(
        "v=DMARC1; p=quarantine; sp=reject; np=reject; adkim=s; aspf=r; pct=50; \
         rua=mailto:a@example.com,mailto:b@Reports.Example.NET!10m; ruf=mailto:f@example.com; \
         fo=1:d; t=y; psd=n; ri=86400; rf=afrf; foo=bar",
    )
    .unwrap();
    assert_eq!(r.p, Some(Policy::Quarantine));
    assert_eq!(r.sp, Some(Policy::Reject));
    assert_eq!(r.np, Some(Policy::Reject));
    assert_eq!((r.adkim, r.aspf), (Alignment::Strict, Alignment::Relaxed));
    assert_eq!(r.pct, 50);
    assert_eq!(r.rua, vec!["a@example.com", "b@reports.example.net"]);
    assert_eq!(r.ruf, vec!["f@example.com"]);
    assert_eq!(r.fo, vec!["1", "d"]);
    assert!(r.testing);
    assert_eq!(r.psd, Some('n'));
    assert_eq!(r.warnings, vec!["unknown tag \"foo\" ignored".to_string()]);
    let d = parse("v=DMARC1; p=none").unwrap();
    assert_eq!(
        (d.pct, d.subdomain_policy(), d.adkim),
        (100, Some(Policy::None), Alignment::Relaxed)
    );
}

#[test]
fn syntax_errors_name_the_tag() {
    for (rec, want) in [
        (
            "v=DMARC1; p=bogus",
            "p=\"bogus\": expected none, quarantine or reject",
        ),
        ("v=DMARC1; p=none; sp=x", "sp=\"x\""),
        ("v=DMARC1; p=none; adkim=z", "adkim=\"z\": expected r or s"),
        (
            "v=DMARC1; p=none; pct=150",
            "pct=\"150\": expected an integer 0-100",
        ),
        (
            "v=DMARC1; p=none; rua=https://example.com/r",
            "rua=\"https://example.com/r\"",
        ),
        (
            "v=DMARC1; p=none; rua=mailto:nobody",
            "rua=\"mailto:nobody\"",
        ),
        ("v=DMARC1; p=none; fo=2", "fo=\"2\""),
        ("v=DMARC1; p=none; t=maybe", "t=\"maybe\""),
        ("v=DMARC1; rua=mailto:a@example.com", "no p= tag"),
        ("p=none; v=DMARC1", "must start with v=DMARC1"),
        ("v=DMARC1; p=none; p=reject", "appears more than once"),
    ] {
        let e = parse(rec).expect_err(rec).to_string();
        assert!(e.contains(want), "{rec}: {e}");
    }
    assert!(is_dmarc("v=DMARC1; p=none"));
    assert!(is_dmarc("v = DMARC1"));
    assert!(!is_dmarc("v=DMARC10; p=none"));
    assert!(!is_dmarc("v=spf1 -all"));
}

#[test]
fn tree_walk_names() {
    assert_eq!(
        walk_parent("a.b.example.com").as_deref(),
        Some("b.example.com")
    );
    assert_eq!(walk_parent("com"), None);
    assert_eq!(
        walk_parent("a.b.c.d.e.f.g.h.i.example").as_deref(),
        Some("d.e.f.g.h.i.example"),
        "more than 8 labels: cut to 7"
    );
    assert_eq!(
        walk_parent("b.c.d.e.f.g.h.example").as_deref(),
        Some("c.d.e.f.g.h.example")
    );
}

#[tokio::test]
async fn discovery_falls_back_to_the_organizational_domain() {
    let dns = FakeDns::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine")
        .a("mail.example.com", "192.0.2.1");
    let d = discover(&dns, "mail.example.com").await.unwrap();
    assert_eq!(d.record_domain, "example.com");
    assert_eq!(d.org_domain, "example.com");
    assert!(d.inherited("mail.example.com"));
    assert_eq!(d.policy_for("mail.example.com"), Some(Policy::Quarantine));
    let own = discover(&dns, "example.com").await.unwrap();
    assert_eq!(own.policy_for("example.com"), Some(Policy::Reject));
    assert!(!own.inherited("example.com"));
    // Queries went _dmarc.mail.example.com, _dmarc.example.com, _dmarc.com.
    let log = dns.log.lock().unwrap().clone();
    assert_eq!(
        &log[..3],
        [
            "TXT _dmarc.mail.example.com",
            "TXT _dmarc.example.com",
            "TXT _dmarc.com"
        ]
    );
}

#[tokio::test]
async fn organizational_domain_follows_psd() {
    let dns = FakeDns::new()
        .txt("_dmarc.gov.example", "v=DMARC1; p=reject; psd=y")
        .txt("_dmarc.a.b.gov.example", "v=DMARC1; p=none");
    let d = discover(&dns, "a.b.gov.example").await.unwrap();
    assert_eq!(d.record_domain, "a.b.gov.example");
    assert_eq!(d.org_domain, "b.gov.example");
    let n = FakeDns::new()
        .txt("_dmarc.x.example.com", "v=DMARC1; p=none; psd=n")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject");
    assert_eq!(
        discover(&n, "x.example.com").await.unwrap().org_domain,
        "x.example.com"
    );
}

#[tokio::test]
async fn discovery_errors() {
    let two = FakeDns::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=none")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject");
    assert_eq!(
        discover(&two, "example.com").await.unwrap_err().0,
        Reason::MultipleRecords
    );
    let bad = FakeDns::new().txt("_dmarc.example.com", "v=DMARC1; p=rejct");
    let e = discover(&bad, "example.com").await.unwrap_err();
    assert_eq!(e.0, Reason::Syntax);
    assert!(e.1.contains("p=\"rejct\""), "{}", e.1);
    assert_eq!(
        discover(&FakeDns::new(), "example.com")
            .await
            .unwrap_err()
            .0,
        Reason::NoRecord
    );
    let down = FakeDns::new().fail(
        "_dmarc.com",
        RType::Txt,
        LookupError::Timeout {
            name: "_dmarc.com".into(),
        },
    );
    assert_eq!(
        discover(&down, "example.com").await.unwrap_err().0,
        Reason::DnsError
    );
    // A failure above a found record doesn't matter.
    let above = FakeDns::new()
        .txt("_dmarc.example.com", "v=DMARC1; p=none")
        .fail(
            "_dmarc.com",
            RType::Txt,
            LookupError::Refused {
                name: "_dmarc.com".into(),
            },
        );
    assert!(discover(&above, "example.com").await.is_ok());
}

#[tokio::test]
async fn external_destinations() {
    assert!(!is_external("example.com", "example.com"));
    assert!(!is_external("reports.example.com", "example.com"));
    assert!(is_external("example.net", "example.com"));
    assert!(is_external("badexample.com", "example.com"));
    let dns = FakeDns::new().txt("example.com._report._dmarc.example.net", "v=DMARC1");
    assert_eq!(
        authorize(&dns, "example.com", "example.net").await,
        Ok(true)
    );
    assert_eq!(
        authorize(&dns, "example.com", "example.org").await,
        Ok(false)
    );
}
