use super::lookup::{FactCache, dmarc_facts, fcrdns};
use super::*;
use crate::canary::headers::parse;
use crate::resolver::{FakeDns, LookupError, RType};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/headers")
            .join(name),
    )
    .unwrap()
}

fn verdicts(outcomes: &[Outcome]) -> Vec<(&'static str, bool)> {
    outcomes
        .iter()
        .map(|o| (o.requirement.as_str(), o.met))
        .collect()
}

fn find(outcomes: &[Outcome], r: Requirement) -> Option<&Outcome> {
    outcomes.iter().find(|o| o.requirement == r)
}

fn dmarc_ok(org: &str) -> Option<Result<DmarcFacts, String>> {
    Some(Ok(DmarcFacts {
        policy: "quarantine".into(),
        org_domain: org.into(),
        strict_dkim: false,
        strict_spf: false,
    }))
}

#[test]
fn gmail_canary_meets_everything_but_one_click_it_does_not_carry() {
    let h = parse(&fixture("gmail_inbox.eml"), Some("mx.google.com"));
    let dns = DnsFacts {
        dmarc: dmarc_ok("shop.example"),
        fcrdns: Some(Ok("m231.esp-mail.example".into())),
    };
    let out = evaluate(&h, &dns, false);
    assert_eq!(
        verdicts(&out),
        [
            ("spf", true),
            ("dkim", true),
            ("spf_and_dkim", true),
            ("dmarc_policy", true),
            ("dmarc_alignment", true),
            ("dns_records", true),
            ("encryption", true),
            ("message_formatting", true),
        ]
    );
    // Aligned through DKIM (header.i=@shop.example), not SPF (esp-bounce.example).
    assert!(
        find(&out, Requirement::DmarcAlignment)
            .unwrap()
            .why
            .contains("DKIM d=shop.example"),
        "{out:?}"
    );
    assert!(
        find(&out, Requirement::Encryption)
            .unwrap()
            .why
            .contains("TLSv1.3")
    );
    // Configured to carry List-Unsubscribe, it is judged, and fails.
    let out = evaluate(&h, &dns, true);
    let oc = find(&out, Requirement::OneClickUnsubscribe).unwrap();
    assert!(!oc.met && oc.why == "no List-Unsubscribe", "{oc:?}");
}

#[test]
fn outlook_hop_into_the_receiver_is_found_by_the_spf_client_ip() {
    let h = parse(&fixture("outlook_junk.eml"), None);
    let out = evaluate(&h, &DnsFacts::default(), false);
    let enc = find(&out, Requirement::Encryption).expect("judged");
    assert!(enc.met && enc.why.contains("TLSv1.3"), "{enc:?}");
    // No DNS facts: the DNS requirements are left out, not failed.
    assert!(find(&out, Requirement::DnsRecords).is_none());
    assert!(find(&out, Requirement::DmarcPolicy).is_none());
}

const STACK: &str = "Received: from mx.seed.test\r\n\tby imap.seed.test with LMTP id 8JxO; Sun, 29 Nov 2026 04:35:59 +0000\r\n\
Received: from submit.seed.test (unknown [127.0.0.2])\r\n\tby mx.seed.test (Postfix) with ESMTPS id 4dKq1h0m2Rz3wTn\r\n\tfor <seed1@seed.test>; Sun, 29 Nov 2026 04:35:59 +0000 (UTC)\r\n\
Authentication-Results: mx.seed.test;\r\n\tdkim=pass header.d=dx.test header.s=dx header.b=dGVzdGtl;\r\n\tspf=pass smtp.mailfrom=canary@dx.test;\r\n\tdmarc=pass (policy=reject) header.from=dx.test\r\n\
Received: from localhost (localhost [127.0.0.1])\r\n\tby smtp.dx.test (Postfix) with ESMTPSA id 4dKq1g6vNnz3wTm; Sun, 29 Nov 2026 04:35:58 +0000 (UTC)\r\n\
DKIM-Signature: v=1; a=rsa-sha256; d=dx.test; s=dx; h=from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post; b=x\r\n\
From: canary@dx.test\r\nTo: seed1@seed.test\r\nSubject: Delivery check dx-aaaabbbbccccddddeeee\r\n\
Date: Sun, 29 Nov 2026 04:35:58 +0000\r\nMessage-ID: <dx-aaaabbbbccccddddeeee@dx.test>\r\n\
List-Unsubscribe: <mailto:u@dx.test>, <https://dx.test/u/dx-aaaabbbbccccddddeeee>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n";

fn stack(edit: impl Fn(&str) -> String) -> Vec<Outcome> {
    let h = parse(edit(STACK).as_bytes(), Some("mx.seed.test"));
    let dns = DnsFacts {
        dmarc: dmarc_ok("dx.test"),
        fcrdns: Some(Ok("mail.dx.test".into())),
    };
    evaluate(&h, &dns, true)
}

fn met(out: &[Outcome], r: Requirement) -> bool {
    find(out, r)
        .unwrap_or_else(|| panic!("{r:?} not judged: {out:?}"))
        .met
}

#[test]
fn the_local_stack_shape_meets_all_nine() {
    let out = stack(str::to_string);
    assert_eq!(out.len(), Requirement::ALL.len(), "{out:?}");
    assert!(out.iter().all(|o| o.met), "{out:?}");
    let oc = find(&out, Requirement::OneClickUnsubscribe).unwrap();
    assert_eq!(oc.why, "signed by d=dx.test s=dx");
}

#[test]
fn each_requirement_fails_on_its_own_fault() {
    use Requirement::*;
    // SPF fails: spf and spf_and_dkim, DKIM still aligns.
    let out = stack(|s| s.replace("spf=pass", "spf=fail"));
    assert!(!met(&out, Spf) && !met(&out, SpfAndDkim) && met(&out, Dkim));
    assert!(met(&out, DmarcAlignment));
    // DKIM fails: alignment still holds through SPF; one-click has no passing signature.
    let out = stack(|s| s.replace("dkim=pass", "dkim=fail"));
    assert!(!met(&out, Dkim) && met(&out, DmarcAlignment) && !met(&out, OneClickUnsubscribe));
    assert!(
        find(&out, DmarcAlignment)
            .unwrap()
            .why
            .contains("SPF dx.test")
    );
    // Both pass for another domain than From: not aligned.
    let out = stack(|s| {
        s.replace("header.d=dx.test", "header.d=esp.example")
            .replace(
                "smtp.mailfrom=canary@dx.test",
                "smtp.mailfrom=b@esp.example",
            )
    });
    assert!(met(&out, SpfAndDkim) && !met(&out, DmarcAlignment));
    assert!(
        find(&out, DmarcAlignment)
            .unwrap()
            .why
            .contains("not aligned with dkim=esp.example spf=esp.example")
    );
    // A subdomain aligns relaxed, not strict.
    let sub = |s: &str| {
        s.replace("header.d=dx.test", "header.d=mail.dx.test")
            .replace(
                "smtp.mailfrom=canary@dx.test",
                "smtp.mailfrom=b@esp.example",
            )
    };
    assert!(met(&stack(sub), DmarcAlignment));
    let h = parse(sub(STACK).as_bytes(), Some("mx.seed.test"));
    let strict = DnsFacts {
        dmarc: Some(Ok(DmarcFacts {
            policy: "reject".into(),
            org_domain: "dx.test".into(),
            strict_dkim: true,
            strict_spf: true,
        })),
        fcrdns: None,
    };
    assert!(!met(&evaluate(&h, &strict, true), DmarcAlignment));
    // The hop into the receiver without TLS.
    let out = stack(|s| {
        s.replace(
            "with ESMTPS id 4dKq1h0m2Rz3wTn",
            "with ESMTP id 4dKq1h0m2Rz3wTn",
        )
    });
    assert!(!met(&out, Encryption), "{out:?}");
    // A second From; a missing Message-ID; a 999-octet line.
    let out = stack(|s| {
        s.replace(
            "From: canary@dx.test\r\n",
            "From: canary@dx.test\r\nFrom: other@dx.test\r\n",
        )
    });
    let f = find(&out, MessageFormatting).unwrap();
    assert!(!f.met && f.why == "2 From fields", "{f:?}");
    let out = stack(|s| s.replace("Message-ID: <dx-aaaabbbbccccddddeeee@dx.test>\r\n", ""));
    assert_eq!(
        find(&out, MessageFormatting).unwrap().why,
        "0 Message-ID fields"
    );
    let long = format!("X-Long: {}\r\n", "a".repeat(991));
    let out = stack(|s| s.replace("To: seed1", &format!("{long}To: seed1")));
    assert_eq!(
        find(&out, MessageFormatting).unwrap().why,
        "a 999-octet header line"
    );
    let ok = format!("X-Long: {}\r\n", "a".repeat(990));
    assert!(met(
        &stack(|s| s.replace("To: seed1", &format!("{ok}To: seed1"))),
        MessageFormatting
    ));
    // One-click: stripped Post, a mailto only, a wrong value, not signed.
    for (edit, why) in [
        (
            ("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", ""),
            "no List-Unsubscribe-Post",
        ),
        (
            (", <https://dx.test/u/dx-aaaabbbbccccddddeeee>", ""),
            "List-Unsubscribe has no https URI",
        ),
        (
            ("List-Unsubscribe=One-Click", "List-Unsubscribe=Yes"),
            "List-Unsubscribe-Post is not List-Unsubscribe=One-Click",
        ),
        (
            (":list-unsubscribe-post;", ";"),
            "no passing DKIM signature covers List-Unsubscribe and List-Unsubscribe-Post",
        ),
    ] {
        let out = stack(|s| s.replace(edit.0, edit.1));
        let oc = find(&out, OneClickUnsubscribe).unwrap();
        assert!(!oc.met && oc.why == why, "{edit:?}: {oc:?}");
    }
    // Not configured and not carried: not judged.
    let h = parse(
        STACK
            .replace("List-Unsubscribe: <mailto:u@dx.test>, <https://dx.test/u/dx-aaaabbbbccccddddeeee>\r\n", "")
            .replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "")
            .as_bytes(),
        Some("mx.seed.test"),
    );
    assert!(
        find(
            &evaluate(&h, &DnsFacts::default(), false),
            OneClickUnsubscribe
        )
        .is_none()
    );
    // No verdict at all from the receiver: SPF, DKIM and alignment are unknown.
    let h = parse(
        STACK
            .replace(
                "Authentication-Results: mx.seed.test;",
                "X-Other: mx.seed.test;",
            )
            .as_bytes(),
        Some("mx.seed.test"),
    );
    let out = evaluate(&h, &DnsFacts::default(), false);
    assert!(
        find(&out, Spf).is_none() && find(&out, DmarcAlignment).is_none(),
        "{out:?}"
    );
}

#[tokio::test]
async fn dns_facts_from_the_records() {
    let dns = FakeDns::new()
        .txt("_dmarc.dx.test", "v=DMARC1; p=reject; adkim=s")
        .txt("_dmarc.none.test", "v=DMARC1; p=none")
        .ptr("1.0.0.127.in-addr.arpa", "mail.dx.test")
        .a("mail.dx.test", "127.0.0.1")
        .ptr("3.0.0.127.in-addr.arpa", "wrongptr.dx.test")
        .a("wrongptr.dx.test", "127.0.0.99")
        .fail(
            "_dmarc.slow.test",
            RType::Txt,
            LookupError::Timeout {
                name: "_dmarc.slow.test".into(),
            },
        )
        .fail(
            "4.0.0.127.in-addr.arpa",
            RType::Ptr,
            LookupError::ServFail { name: "x".into() },
        );
    let f = dmarc_facts(&dns, "dx.test").await.unwrap().unwrap();
    assert_eq!(
        (f.policy.as_str(), f.strict_dkim, f.strict_spf),
        ("reject", true, false)
    );
    assert_eq!(f.org_domain, "dx.test");
    assert_eq!(
        dmarc_facts(&dns, "mail.none.test")
            .await
            .unwrap()
            .unwrap()
            .policy,
        "none"
    );
    let missing = dmarc_facts(&dns, "nothing.test")
        .await
        .unwrap()
        .unwrap_err();
    assert!(missing.contains("no DMARC record"), "{missing}");
    assert_eq!(
        dmarc_facts(&dns, "slow.test").await,
        None,
        "a timeout is unknown"
    );
    let ip = |s: &str| s.parse().unwrap();
    assert_eq!(
        fcrdns(&dns, ip("127.0.0.1")).await,
        Some(Ok("mail.dx.test".into()))
    );
    let none = fcrdns(&dns, ip("127.0.0.2")).await.unwrap().unwrap_err();
    assert_eq!(none, "127.0.0.2 has no PTR record");
    let wrong = fcrdns(&dns, ip("127.0.0.3")).await.unwrap().unwrap_err();
    assert!(
        wrong.contains("wrongptr.dx.test does not resolve back"),
        "{wrong}"
    );
    assert_eq!(fcrdns(&dns, ip("127.0.0.4")).await, None);

    // Through the cache: the stack's canary from 127.0.0.2, looked up once in 5 minutes.
    let h = parse(STACK.as_bytes(), Some("mx.seed.test"));
    let cache = FactCache::default();
    let facts = cache.facts(&dns, &h, 1000).await;
    assert_eq!(
        facts.fcrdns,
        Some(Err("127.0.0.2 has no PTR record".into()))
    );
    assert!(matches!(facts.dmarc, Some(Ok(_))));
    let empty = FakeDns::new();
    let cached = cache
        .facts(&empty, &h, 1000 + lookup::CACHE_SECONDS - 1)
        .await;
    assert_eq!(cached, facts, "answered from the cache");
    let expired = cache.facts(&empty, &h, 1000 + lookup::CACHE_SECONDS).await;
    assert!(
        matches!(expired.dmarc, Some(Err(_))),
        "looked up again: {expired:?}"
    );
}

#[test]
fn the_board_sets_the_provider_series_from_every_route() {
    let metrics = Arc::new(Metrics::new());
    let board = board::Board::new(metrics.clone(), true);
    let o = |r, met| Outcome {
        requirement: r,
        met,
        why: String::new(),
    };
    let value = |p: &str, r: &str| {
        metrics
            .canary
            .requirement_met
            .with_label_values(&[p, r])
            .get()
    };
    board.record("p", "s1", &[o(Requirement::Encryption, true)]);
    assert_eq!(value("p", "encryption"), 1);
    board.record("p", "s2", &[o(Requirement::Encryption, false)]);
    assert_eq!(
        value("p", "encryption"),
        0,
        "one seed's failure is the provider's"
    );
    board.record("q", "s1", &[o(Requirement::Encryption, true)]);
    assert_eq!(value("q", "encryption"), 1, "another provider is apart");
    board.record("p", "s2", &[o(Requirement::Encryption, false)]);
    board.record("p", "s3", &[o(Requirement::Encryption, false)]);
    board.record("p", "s2", &[o(Requirement::Encryption, true)]);
    assert_eq!(
        value("p", "encryption"),
        0,
        "s3 still fails (s2 failing twice counted once)"
    );
    board.record("p", "s3", &[o(Requirement::Encryption, true)]);
    assert_eq!(value("p", "encryption"), 1, "repaired");
    let route = metrics
        .canary
        .route_requirement_met
        .with_label_values(&["p", "s2", "encryption"])
        .get();
    assert_eq!(route, 1);
    assert_eq!(board.route("p", "s2").len(), 1);
}
