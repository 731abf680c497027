use super::*;
use crate::metrics::Metrics;
use crate::resolver::FakeDns;

fn good() -> FakeDns {
    FakeDns::new()
        .txt("example.com", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("s1._domainkey.example.com", "v=DKIM1; k=ed25519; p=up3g2yVAYP3BIlOhXx40+dprfHGauEB1LPU4stb3UUQ=")
        .txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:d@example.com,mailto:x@example.net")
        .txt("example.com._report._dmarc.example.net", "v=DMARC1")
        .mx("example.com", 10, "mx.example.com")
        .a("mx.example.com", "192.0.2.25")
        .txt("_smtp._tls.example.com", "v=TLSRPTv1; rua=mailto:tls@example.com")
}

fn input() -> DomainInput {
    DomainInput {
        domain: "example.com".into(),
        selectors: vec!["s1".into()],
        ips: vec![
            "192.0.2.7".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        ],
        mta_sts: None,
    }
}

#[tokio::test]
async fn a_domain_in_order_and_one_that_is_not() {
    let m = Metrics::bare();
    let r = check_domain(&good(), &input()).await;
    let mut log = ChangeLog::default();
    let findings = record(&m.dns, &r, Some(&mut log), 1000.0);
    // Only the IP outside the SPF record is a finding.
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (findings[0].check, findings[0].reason),
        ("spf", "ip_not_permitted")
    );
    let d = &m.dns;
    assert_eq!(
        d.check_success
            .with_label_values(&["example.com", "spf"])
            .get(),
        0
    );
    for c in ["dkim", "dmarc", "mx", "tls_rpt"] {
        assert_eq!(
            d.check_success.with_label_values(&["example.com", c]).get(),
            1,
            "{c}"
        );
    }
    assert_eq!(
        d.spf_pass
            .with_label_values(&["example.com", "192.0.2.7"])
            .get(),
        1
    );
    assert_eq!(
        d.spf_pass
            .with_label_values(&["example.com", "198.51.100.1"])
            .get(),
        0
    );
    assert_eq!(
        d.spf_result
            .with_label_values(&["example.com", "198.51.100.1", "fail"])
            .get(),
        1
    );
    assert_eq!(
        d.spf_all.with_label_values(&["example.com", "fail"]).get(),
        1
    );
    assert_eq!(
        d.dkim_bits
            .with_label_values(&["example.com", "s1", "ed25519"])
            .get(),
        256
    );
    assert_eq!(
        d.dmarc_policy
            .with_label_values(&["example.com", "reject"])
            .get(),
        1
    );
    assert_eq!(
        d.dmarc_subdomain_policy
            .with_label_values(&["example.com", "quarantine"])
            .get(),
        1
    );
    assert_eq!(d.dmarc_pct.with_label_values(&["example.com"]).get(), 50);
    assert_eq!(
        d.dmarc_rua_authorized
            .with_label_values(&["example.com", "example.net"])
            .get(),
        1
    );
    assert_eq!(
        d.dmarc_rua_authorized
            .with_label_values(&["example.com", "example.com"])
            .get(),
        1
    );
    assert_eq!(d.mx_records.with_label_values(&["example.com"]).get(), 1);
    assert_eq!(
        d.record_change
            .with_label_values(&["example.com", "spf"])
            .get(),
        1000.0
    );
    assert_eq!(
        d.check_errors
            .with_label_values(&["example.com", "spf", "ip_not_permitted"])
            .get(),
        1
    );
    assert_eq!(
        d.check_errors
            .with_label_values(&["example.com", "dkim", "revoked"])
            .get(),
        0
    );
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(
        !text.contains("check=\"mta_sts\""),
        "MTA-STS off: no series"
    );
    assert!(
        !text.contains("deliverability_mta_sts_mode{"),
        "MTA-STS off: no series"
    );

    // The SPF record is edited: its change timestamp moves, the others stay.
    let edited = good().txt("example.com", "v=spf1 +all");
    let r = check_domain(&edited, &input()).await;
    let findings = record(&m.dns, &r, Some(&mut log), 2000.0);
    assert!(findings.iter().any(|f| f.reason == "multiple_records"));
    assert_eq!(
        d.record_change
            .with_label_values(&["example.com", "spf"])
            .get(),
        2000.0
    );
    assert_eq!(
        d.record_change
            .with_label_values(&["example.com", "dmarc"])
            .get(),
        1000.0
    );
    assert_eq!(
        d.spf_all.with_label_values(&["example.com", "fail"]).get(),
        0,
        "no record in effect"
    );
}

#[tokio::test]
async fn nothing_published() {
    let m = Metrics::bare();
    let r = check_domain(
        &FakeDns::new(),
        &DomainInput {
            selectors: vec![],
            ..input()
        },
    )
    .await;
    let f = record(&m.dns, &r, None, 0.0);
    let reasons: Vec<_> = f.iter().map(|x| (x.check, x.reason)).collect();
    for want in [
        ("spf", "no_record"),
        ("dkim", "no_selector"),
        ("dmarc", "no_record"),
        ("mx", "no_mx"),
        ("tls_rpt", "no_record"),
    ] {
        assert!(reasons.contains(&want), "{want:?} in {reasons:?}");
    }
    assert!(
        !reasons.iter().any(|r| r.1 == "ip_not_permitted"),
        "no record: not an IP problem"
    );
    for c in ["spf", "dkim", "dmarc", "mx", "tls_rpt"] {
        assert_eq!(
            m.dns
                .check_success
                .with_label_values(&["example.com", c])
                .get(),
            0
        );
    }
}

#[test]
fn change_log() {
    let mut l = ChangeLog::default();
    assert_eq!(l.observe("a", "spf", "x", 1.0), (1.0, false));
    assert_eq!(l.observe("a", "spf", "x", 2.0), (1.0, false));
    assert_eq!(l.observe("a", "spf", "y", 3.0), (3.0, true));
    l.observe("b", "spf", "x", 4.0);
    l.retain_domains(&["a".to_string()].into());
    assert_eq!(l.get("b", "spf"), None);
    assert_eq!(l.get("a", "spf"), Some(3.0));
    assert_ne!(fnv1a("a"), fnv1a("b"));
    assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
}
