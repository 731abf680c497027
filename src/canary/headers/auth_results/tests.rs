use super::*;

/// (method, result) pairs, for short assertions.
fn pairs(results: &[ResInfo]) -> Vec<(&str, &str)> {
    results
        .iter()
        .map(|r| (r.method.as_str(), r.result.as_str()))
        .collect()
}

#[test]
fn rfc8601_examples() {
    // RFC 8601 Appendix B.2, B.3 and B.4, shortened.
    let none = parse_authentication_results("example.org 1; none");
    assert_eq!(none.authserv_id.as_deref(), Some("example.org"));
    assert!(none.results.is_empty());

    let h = parse_authentication_results("example.com; spf=pass smtp.mailfrom=example.net");
    assert_eq!(pairs(&h.results), [("spf", "pass")]);
    assert_eq!(h.results[0].property("smtp.mailfrom"), Some("example.net"));

    let h = parse_authentication_results(
        "example.com;\r\n\t  auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n\t  spf=pass smtp.mailfrom=example.net",
    );
    assert_eq!(pairs(&h.results), [("auth", "pass"), ("spf", "pass")]);
    assert_eq!(h.results[0].method, Method::Other("auth".into()));
    assert_eq!(
        h.results[0].property("smtp.auth"),
        Some("sender@example.net")
    );
}

#[test]
fn comments_quotes_versions_and_odd_spacing() {
    let h = parse_authentication_results(
        "(leading comment) \"mx.example.org\" (between) 1 ; \
         dkim/1 (sig one) = pass (ok) reason=\"good; signature\" header.d=example.com header . s = sel1 header.i=\"first last\"@example.com header.b=\"AbCd/+12\"; \
         DKIM=FAIL reason=bad header.d=esp.example header.s=(c)s2 ;; \
         dmarc=pass (p=reject) policy.published-domain-policy=reject header.from=example.com",
    );
    assert_eq!(h.authserv_id.as_deref(), Some("mx.example.org"));
    assert_eq!(
        pairs(&h.results),
        [("dkim", "pass"), ("dkim", "fail"), ("dmarc", "pass")]
    );
    let first = &h.results[0];
    assert_eq!(first.reason.as_deref(), Some("good; signature"));
    assert_eq!(first.property("header.d"), Some("example.com"));
    assert_eq!(first.property("header.s"), Some("sel1"));
    assert_eq!(first.property("HEADER.I"), Some("first last@example.com"));
    assert_eq!(first.property("header.b"), Some("AbCd/+12"));
    assert_eq!(h.results[1].reason.as_deref(), Some("bad"));
    assert_eq!(h.results[1].property("header.s"), Some("s2"));
    assert_eq!(
        h.results[2].property("policy.published-domain-policy"),
        Some("reject")
    );
}

#[test]
fn microsoft_form_without_authserv_id() {
    let h = parse_authentication_results(
        "spf=pass (sender IP is 40.107.22.100) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100",
    );
    assert_eq!(h.authserv_id, None);
    assert_eq!(
        pairs(&h.results),
        [
            ("spf", "pass"),
            ("dkim", "pass"),
            ("dmarc", "pass"),
            ("compauth", "pass")
        ]
    );
    assert_eq!(h.results[2].property("action"), Some("none"));
    assert_eq!(h.results[3].reason.as_deref(), Some("100"));
}

#[test]
fn result_keywords() {
    let h = parse_authentication_results(
        "mx; spf=softfail; spf=hardfail; spf=neutral; spf=none; spf=temperror; spf=permerror; dkim=policy; dmarc=bestguesspass; arc=PASS",
    );
    assert_eq!(
        pairs(&h.results),
        [
            ("spf", "softfail"),
            ("spf", "fail"),
            ("spf", "neutral"),
            ("spf", "none"),
            ("spf", "temperror"),
            ("spf", "permerror"),
            ("dkim", "policy"),
            ("dmarc", "other"),
            ("arc", "pass"),
        ]
    );
}

#[test]
fn garbage_is_skipped_up_to_the_next_semicolon() {
    let h = parse_authentication_results(
        "mx; this is not = a; =pass; spf; dkim=; very/long/method/name/that/is/far/too/long/to/be/a/method=pass; spf=pass",
    );
    // `this is not = a` reads as method `not` (stray words dropped), result `a`.
    assert_eq!(
        pairs(&h.results),
        [("not", "other"), ("dkim", "other"), ("spf", "pass")]
    );
    assert_eq!(
        parse_authentication_results(""),
        AuthResultsHeader::default()
    );
    assert_eq!(
        parse_authentication_results(";;;"),
        AuthResultsHeader::default()
    );
}

#[test]
fn received_spf() {
    let r = parse_received_spf(
        "Pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender)\r\n receiver=mybox.example.org; client-ip=192.0.2.1;\r\n envelope-from=\"myname@example.com\"; helo=foo.example.com;",
    )
    .unwrap();
    assert_eq!((r.method.as_str(), r.result), ("spf", AuthResult::Pass));
    assert_eq!(r.origin, Origin::ReceivedSpf);
    assert_eq!(r.property("smtp.mailfrom"), Some("myname@example.com"));
    assert_eq!(r.property("smtp.helo"), Some("foo.example.com"));
    assert_eq!(r.property("client-ip"), Some("192.0.2.1"));
    assert_eq!(r.property("receiver"), Some("mybox.example.org"));
    assert_eq!(
        parse_received_spf("softfail").map(|r| r.result),
        Some(AuthResult::SoftFail)
    );
    assert_eq!(parse_received_spf(""), None);
    assert_eq!(parse_received_spf("; pass"), None);
}

#[test]
fn arc_authentication_results() {
    let (i, h) = parse_arc_authentication_results(
        "i=2; mx.google.com; dkim=pass header.i=@example.org; arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org)",
    )
    .unwrap();
    assert_eq!(i, 2);
    assert_eq!(h.authserv_id.as_deref(), Some("mx.google.com"));
    assert_eq!(pairs(&h.results), [("dkim", "pass"), ("arc", "pass")]);
    assert_eq!(h.results[1].origin, Origin::ArcAuthenticationResults);
    for bad in [
        "i=0; mx; arc=pass",
        "i=51; mx; arc=pass",
        "mx; arc=pass",
        "i=x;",
        "i=1",
    ] {
        assert_eq!(parse_arc_authentication_results(bad), None, "{bad}");
    }
}

fn block_verdicts(raw: &str, expected: Option<&str>) -> AuthVerdicts {
    verdicts(&HeaderBlock::parse(raw.as_bytes()), expected)
}

#[test]
fn trusts_the_expected_authserv_id_or_the_topmost() {
    let raw = "Authentication-Results: internal.relay; spf=fail smtp.mailfrom=x\r\n\
               Authentication-Results: MX.Seed.Test.; spf=pass smtp.mailfrom=canary@dx.test\r\n\
               Authentication-Results: forged.example; dkim=pass\r\n\r\n";
    let v = block_verdicts(raw, Some("mx.seed.test"));
    assert_eq!(v.authserv_id.as_deref(), Some("MX.Seed.Test."));
    assert_eq!(v.trusted_headers, 1);
    assert_eq!(pairs(&v.results), [("spf", "pass")]);

    let top = block_verdicts(raw, None);
    assert_eq!(top.authserv_id.as_deref(), Some("internal.relay"));
    assert_eq!(pairs(&top.results), [("spf", "fail")]);

    let none = block_verdicts(raw, Some("elsewhere.example"));
    assert_eq!(none, AuthVerdicts::default());
}

#[test]
fn merges_split_headers_of_one_receiver_once_per_method() {
    let raw = "Authentication-Results: mx.example; dmarc=pass header.from=example.com\r\n\
               Authentication-Results: other.example; spf=fail\r\n\
               Authentication-Results: mx.example; dkim=pass header.d=example.com; dkim=pass header.d=esp.example\r\n\
               Authentication-Results: mx.example; dmarc=fail; spf=pass\r\n\r\n";
    for expected in [None, Some("mx.example")] {
        let v = block_verdicts(raw, expected);
        assert_eq!(v.trusted_headers, 3, "{expected:?}");
        assert_eq!(
            pairs(&v.results),
            [
                ("dmarc", "pass"),
                ("dkim", "pass"),
                ("dkim", "pass"),
                ("spf", "pass")
            ],
            "{expected:?}"
        );
    }
}

#[test]
fn received_spf_and_arc_fill_in_what_is_missing() {
    let raw = "ARC-Authentication-Results: i=2; mx.example; arc=fail\r\n\
               ARC-Authentication-Results: i=3; mx.example; arc=pass; spf=fail\r\n\
               ARC-Authentication-Results: i=4; forwarder.example; arc=none\r\n\
               Received-SPF: softfail (mx.example: transitioning domain) client-ip=192.0.2.1;\r\n\
               Received-SPF: pass (older hop)\r\n\
               Authentication-Results: mx.example; dkim=pass header.d=example.com\r\n\r\n";
    let v = block_verdicts(raw, Some("mx.example"));
    assert_eq!(
        pairs(&v.results),
        [("dkim", "pass"), ("spf", "softfail"), ("arc", "pass")]
    );
    let origins: Vec<Origin> = v.results.iter().map(|r| r.origin).collect();
    assert_eq!(
        origins,
        [
            Origin::AuthenticationResults,
            Origin::ReceivedSpf,
            Origin::ArcAuthenticationResults
        ]
    );

    let own = "Authentication-Results: mx.example; spf=pass; arc=none\r\n\
               Received-SPF: fail\r\n\
               ARC-Authentication-Results: i=1; mx.example; arc=pass\r\n\r\n";
    let v = block_verdicts(own, None);
    assert_eq!(pairs(&v.results), [("spf", "pass"), ("arc", "none")]);

    let only_fallbacks = block_verdicts(
        "Received-SPF: neutral\r\nARC-Authentication-Results: i=1; anyone.example; arc=fail\r\n",
        None,
    );
    assert_eq!(only_fallbacks.trusted_headers, 0);
    assert_eq!(
        pairs(&only_fallbacks.results),
        [("spf", "neutral"), ("arc", "fail")]
    );
}

#[test]
fn results_are_bounded() {
    let many = format!("mx{}", "; dkim=pass".repeat(1000));
    assert_eq!(
        parse_authentication_results(&many).results.len(),
        MAX_RESULTS
    );
    let props = format!("mx; dkim=pass{}", " a.b=c".repeat(1000));
    let h = parse_authentication_results(&props);
    assert_eq!(h.results[0].properties.len(), MAX_PROPERTIES);
    let long = format!("mx; dkim=pass header.d={}", "a".repeat(10_000));
    let h = parse_authentication_results(&long);
    assert_eq!(
        h.results[0].property("header.d").map(str::len),
        Some(MAX_VALUE_LEN)
    );
    let id = format!("{}; spf=pass", "é".repeat(10_000));
    let h = parse_authentication_results(&id);
    assert!(h.authserv_id.is_some_and(|id| id.len() <= MAX_VALUE_LEN));
    let distinct: String = (0..200).map(|i| format!("; m{i}=pass")).collect();
    let raw =
        format!("Authentication-Results: mx{distinct}\r\nAuthentication-Results: mx{distinct}\r\n");
    assert_eq!(block_verdicts(&raw, None).results.len(), MAX_RESULTS);
}

#[test]
fn fallbacks_stay_within_max_results() {
    // Found by the canary_headers fuzz target: 64 results, then Received-SPF pushed a 65th
    // (and the ARC fallback could add 64 more).
    let full: String = (0..MAX_RESULTS).map(|i| format!("; m{i}=pass")).collect();
    let arcs = "; arc=pass".repeat(MAX_RESULTS);
    let raw = format!(
        "Authentication-Results: mx{full}\r\nReceived-SPF: pass\r\n\
         ARC-Authentication-Results: i=1; mx{arcs}\r\n\r\n"
    );
    let v = block_verdicts(&raw, None);
    assert_eq!(v.results.len(), MAX_RESULTS);
    assert!(
        v.results
            .iter()
            .all(|r| r.origin == Origin::AuthenticationResults)
    );
    let minimized = "Authentication-Results:d=;c=;a=;c=;c=;r=;.=;v=;i=;a=;c=;C=;a=;c=;d=;\
        c=;e=;a=;c=;a=;m=;c=;r=;a=;.=;a=;c=;r=;r=;a=;c=;a=;1=;a=;c=;c=;c=;d=;v=;i=;a=;c=;C=;a=;\
        c=;d=;d=;e=;a=;c=;c=;m=;c=;m=;a=;4=;a=;c=;r=;a=;a=;i=;a=;c=\nReceived-SPF:s";
    assert!(block_verdicts(minimized, None).results.len() <= MAX_RESULTS);
}
