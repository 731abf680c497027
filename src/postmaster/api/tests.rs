use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/postmaster")
        .join(name);
    std::fs::read(path).expect("fixture")
}

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::new(y, m, d).unwrap()
}

/// The query stats-example.com.json answers.
fn fixture_query() -> StatsQuery {
    let mut metrics = Metric::daily();
    metrics.push(Metric::FeedbackLoopSpamRate("campaign-42".into()));
    metrics.push(Metric::FeedbackLoopSpamRate("newsletter".into()));
    StatsQuery::new("Example.com.", date(2026, 5, 1), date(2026, 5, 4), metrics).unwrap()
}

fn approx(a: Option<f64>, b: f64) {
    let a = a.expect("a value");
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn list_domains_request() {
    let first = list_domains(None);
    assert_eq!(first.method, hyper::Method::GET);
    assert_eq!(first.path, "/v2/domains?pageSize=200");
    assert_eq!(first.body, None);
    let next = list_domains(Some("a+b/c=="));
    assert_eq!(
        next.path,
        "/v2/domains?pageSize=200&pageToken=a%2Bb%2Fc%3D%3D"
    );
    assert_eq!(
        next.url(),
        "https://gmailpostmastertools.googleapis.com/v2/domains?pageSize=200&pageToken=a%2Bb%2Fc%3D%3D"
    );
}

#[test]
fn domain_pages_give_names_and_the_next_token() {
    let page1 = parse_domains(&fixture("domains-list-page1.json")).unwrap();
    let names: Vec<&str> = page1.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["example.com", "mail.example.com", "example.org"]);
    assert_eq!(page1.domains[0].permission, Permission::Owner);
    assert_eq!(page1.domains[1].permission, Permission::Reader);
    assert_eq!(page1.domains[2].permission, Permission::NoAccess);
    assert_eq!(page1.domains[2].verified, Some(false));
    assert_eq!(
        page1.next_page_token.as_deref(),
        Some("ChFkb21haW5zL2V4YW1wbGUub3Jn")
    );
    assert_eq!(page1.skipped, 0);

    let page2 = parse_domains(&fixture("domains-list-page2.json")).unwrap();
    assert_eq!(page2.domains.len(), 1);
    assert_eq!(page2.domains[0].name, "example.net");
    assert_eq!(page2.next_page_token, None);
    assert_eq!(page2.skipped, 1, "the entry without a name");

    let empty = parse_domains(b"{}").unwrap();
    assert!(empty.domains.is_empty() && empty.next_page_token.is_none());
    let bad_names = br#"{"domains":[{"name":"example.com"},{"name":"domains/a/b"},
        {"name":"domains/x y.com"}],"nextPageToken":""}"#;
    let page = parse_domains(bad_names).unwrap();
    assert_eq!(
        (page.domains.len(), page.skipped, page.next_page_token),
        (0, 3, None)
    );
}

#[test]
fn stats_query_request_body() {
    let q = fixture_query();
    assert_eq!(q.domain(), "example.com");
    let req = q.request(None);
    assert_eq!(req.method, hyper::Method::POST);
    assert_eq!(req.path, "/v2/domains/example.com/domainStats:query");
    let body: serde_json::Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
    let defs = body["metricDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), 23);
    assert_eq!(
        defs[0],
        serde_json::json!({"name": "m0", "baseMetric": {"standardMetric": "SPAM_RATE"}})
    );
    let find = |name: &str| defs.iter().find(|d| d["name"] == name).unwrap().clone();
    assert_eq!(
        find("m1")["baseMetric"]["standardMetric"],
        "AUTH_SUCCESS_RATE"
    );
    assert_eq!(find("m1")["filter"], "auth_type = \"spf\"");
    assert_eq!(
        find("m4")["baseMetric"]["standardMetric"],
        "TLS_ENCRYPTION_RATE"
    );
    assert_eq!(find("m4")["filter"], "traffic_direction = \"inbound\"");
    assert_eq!(
        find("m6")["baseMetric"]["standardMetric"],
        "DELIVERY_ERROR_RATE"
    );
    assert!(find("m6").get("filter").is_none(), "all errors: no filter");
    assert_eq!(
        find("m7")["baseMetric"]["standardMetric"],
        "DELIVERY_ERROR_COUNT"
    );
    assert_eq!(find("m8")["filter"], "error_type = \"reject\"");
    assert_eq!(
        find("m11")["filter"],
        "error_type = \"reject\" AND error_reason = \"bad_or_missing_ptr_record\""
    );
    assert_eq!(
        find("m19")["filter"],
        "error_type = \"temp_fail\" AND error_reason = \"other\""
    );
    assert_eq!(
        find("m20")["baseMetric"]["standardMetric"],
        "FEEDBACK_LOOP_ID"
    );
    assert_eq!(
        find("m21")["baseMetric"]["standardMetric"],
        "FEEDBACK_LOOP_SPAM_RATE"
    );
    assert_eq!(find("m21")["filter"], "feedback_loop_id = \"campaign-42\"");
    assert_eq!(
        body["timeQuery"],
        serde_json::json!({"dateRanges": {"dateRanges": [{
            "start": {"year": 2026, "month": 5, "day": 1},
            "end": {"year": 2026, "month": 5, "day": 4},
        }]}})
    );
    assert_eq!(body["aggregationGranularity"], "DAILY");
    assert_eq!(body["pageSize"], 200);
    assert!(body.get("pageToken").is_none());
    let next: serde_json::Value =
        serde_json::from_str(&q.request(Some("MjAyNi0wNS0wMi9tMTA")).body.unwrap()).unwrap();
    assert_eq!(next["pageToken"], "MjAyNi0wNS0wMi9tMTA");
}

#[test]
fn stats_queries_refuse_what_they_cannot_ask() {
    let d = date(2026, 5, 1);
    let ok = |dom: &str, s, e, m| StatsQuery::new(dom, s, e, m);
    assert!(ok("example.com/x", d, d, Metric::daily()).is_err());
    assert!(ok("example.com?a", d, d, Metric::daily()).is_err());
    assert!(ok("localhost", d, d, Metric::daily()).is_err());
    assert!(
        ok("example.com", d, date(2026, 4, 30), Metric::daily()).is_err(),
        "end < start"
    );
    assert!(
        ok("example.com", d, date(2026, 7, 2), Metric::daily()).is_err(),
        "63 days"
    );
    assert!(
        ok("example.com", d, date(2026, 7, 1), Metric::daily()).is_ok(),
        "62 days"
    );
    assert!(ok("example.com", d, d, vec![]).is_err());
    assert!(
        ok(
            "example.com",
            d,
            d,
            vec![Metric::SpamRate, Metric::SpamRate]
        )
        .is_err()
    );
    let quote = vec![Metric::FeedbackLoopSpamRate("a\" OR x = \"b".into())];
    assert!(ok("example.com", d, d, quote).is_err());
    assert_eq!(Date::new(2026, 2, 29), None);
    assert_eq!(
        Date::new(2028, 2, 29).map(|d| d.to_string()).as_deref(),
        Some("2028-02-29")
    );
    assert_eq!(Date::new(0, 1, 1), None);
    assert_eq!(Date::from_unix(1_777_593_600), date(2026, 5, 1));
    assert_eq!(
        compliance_status("Example.COM").unwrap().path,
        "/v2/domains/example.com/complianceStatus"
    );
    assert!(compliance_status("../admin").is_err());
}

#[test]
fn stats_per_day_and_metric() {
    let q = fixture_query();
    let page = q.parse(&fixture("stats-example.com.json")).unwrap();
    let days: Vec<String> = page.days.keys().map(|d| d.to_string()).collect();
    assert_eq!(
        days,
        ["2026-05-01", "2026-05-02", "2026-05-04"],
        "05-03 had no data"
    );
    assert_eq!(page.next_page_token, None);
    assert_eq!(page.skipped, 1, "05-04's empty value");
    assert_eq!(page.out_of_range, 0);

    let first = &page.days[&date(2026, 5, 1)];
    approx(first.spam_rate(), 0.0012);
    approx(first.auth_success_rate(AuthType::Spf), 0.998);
    approx(first.auth_success_rate(AuthType::Dkim), 1.0);
    approx(first.auth_success_rate(AuthType::Dmarc), 0.9931);
    approx(first.tls_rate(Direction::Inbound), 0.9995);
    approx(first.tls_rate(Direction::Outbound), 1.0);
    approx(
        first.rate(&Metric::DeliveryErrorRate(ErrorFilter::All)),
        0.0042,
    );
    assert_eq!(
        first.count(&Metric::DeliveryErrorCount(ErrorFilter::All)),
        Some(57)
    );
    let by_type = |t| first.rate(&Metric::DeliveryErrorRate(ErrorFilter::Type(t)));
    approx(by_type(ErrorType::Reject), 0.003);
    approx(by_type(ErrorType::TempFail), 0.0012);
    let reasons: Vec<(ErrorType, &str, f64)> = first
        .delivery_error_rates()
        .into_iter()
        .map(|(r, v)| (r.error_type(), r.as_str(), v))
        .collect();
    assert_eq!(
        reasons,
        [
            (ErrorType::Reject, "bad_or_missing_ptr_record", 0.0021),
            (ErrorType::Reject, "low_ip_reputation", 0.0009),
            (ErrorType::TempFail, "anomalous_traffic_pattern", 0.0012),
        ]
    );
    assert_eq!(first.feedback_loop_ids(), ["campaign-42", "newsletter"]);
    assert_eq!(
        first.feedback_loop_spam_rates(),
        [("campaign-42", 0.0031), ("newsletter", 0.0004)]
    );

    let second = &page.days[&date(2026, 5, 2)];
    approx(second.spam_rate(), 0.0008);
    assert_eq!(
        second.count(&Metric::DeliveryErrorCount(ErrorFilter::All)),
        Some(0)
    );
    assert!(second.delivery_error_rates().is_empty());
    assert_eq!(second.feedback_loop_spam_rates(), [("campaign-42", 0.0022)]);

    let fourth = &page.days[&date(2026, 5, 4)];
    approx(fourth.spam_rate(), 0.0);
    approx(fourth.tls_rate(Direction::Inbound), 0.75);
    assert_eq!(fourth.auth_success_rate(AuthType::Dkim), None);
    assert_eq!(
        fourth.rate(&Metric::DeliveryErrorRate(ErrorFilter::All)),
        None
    );
    assert_eq!(
        fourth.count(&Metric::DeliveryErrorCount(ErrorFilter::All)),
        Some(3)
    );
    assert!(fourth.feedback_loop_ids().is_empty());
}

#[test]
fn stats_rows_that_make_no_sense_are_skipped_or_counted() {
    let q = StatsQuery::new(
        "example.com",
        date(2026, 5, 1),
        date(2026, 5, 2),
        vec![
            Metric::SpamRate,
            Metric::DeliveryErrorCount(ErrorFilter::All),
        ],
    )
    .unwrap();
    let row = |metric: &str, date: &str, value: &str| {
        format!(r#"{{"metric":"{metric}","date":{date},"value":{value},"extra":[1,{{"x":2}}]}}"#)
    };
    let d1 = r#"{"year":2026,"month":5,"day":1}"#;
    let rows = [
        row("m0", d1, r#"{"doubleValue":"NaN"}"#),
        row("m0", d1, r#"{"doubleValue":1.5}"#),
        row("m0", d1, r#"{"doubleValue":-0.1}"#),
        row("m9", d1, r#"{"doubleValue":0.1}"#),
        row("m00", d1, r#"{"doubleValue":0.1}"#),
        row("spam", d1, r#"{"doubleValue":0.1}"#),
        row(
            "m0",
            r#"{"year":2026,"month":4,"day":30}"#,
            r#"{"doubleValue":0.1}"#,
        ),
        row(
            "m0",
            r#"{"year":2026,"month":2,"day":30}"#,
            r#"{"doubleValue":0.1}"#,
        ),
        row("m0", "null", r#"{"doubleValue":0.1}"#),
        row("m1", d1, r#"{"intValue":"-4"}"#),
        row("m1", d1, r#"{"stringValue":"12"}"#),
        row("m1", d1, r#"{"intValue":12}"#),
        row(
            "m0",
            r#"{"year":2026,"month":5,"day":2}"#,
            r#"{"doubleValue":"0.25"}"#,
        ),
    ];
    let body = format!(
        r#"{{"domainStats":[{}],"nextPageToken":"t2"}}"#,
        rows.join(",")
    );
    let page = q.parse(body.as_bytes()).unwrap();
    assert_eq!(page.out_of_range, 3, "NaN, 1.5, -0.1");
    assert_eq!(page.skipped, 8);
    assert_eq!(page.days[&date(2026, 5, 1)].values.len(), 1);
    assert_eq!(
        page.days[&date(2026, 5, 1)].count(&Metric::DeliveryErrorCount(ErrorFilter::All)),
        Some(12)
    );
    approx(page.days[&date(2026, 5, 2)].spam_rate(), 0.25);
    assert_eq!(page.next_page_token.as_deref(), Some("t2"));

    // A later page adds to the first.
    let mut all = page.clone();
    let later = format!(
        r#"{{"domainStats":[{}]}}"#,
        row("m0", d1, r#"{"floatValue":0.5}"#)
    );
    all.absorb(q.parse(later.as_bytes()).unwrap());
    approx(all.days[&date(2026, 5, 1)].spam_rate(), 0.5);
    assert_eq!(
        (all.next_page_token, all.skipped, all.out_of_range),
        (None, 8, 3)
    );
}

#[test]
fn hostile_bodies_are_errors_not_panics() {
    let q = fixture_query();
    let deep = "[".repeat(100_000);
    let deep_object = format!("{{\"domains\":{}", "[".repeat(100_000));
    let huge = vec![b' '; MAX_BODY + 1];
    let long_token = format!(r#"{{"nextPageToken":"{}"}}"#, "a".repeat(MAX_TOKEN + 1));
    let everywhere: [&[u8]; 6] = [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"\xff\xfe{}",
        deep.as_bytes(),
        deep_object.as_bytes(),
        &huge,
    ];
    for body in everywhere {
        for err in [
            q.parse(body).unwrap_err(),
            parse_domains(body).unwrap_err(),
            parse_compliance(body).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
            assert!(err.to_string().len() < 400, "{err}");
        }
    }
    let many =
        |key: &str, row: &str, n: usize| format!(r#"{{"{key}":[{}]}}"#, vec![row; n].join(","));
    let too_many = many("domainStats", "{}", MAX_ROWS + 1);
    let stats: [&[u8]; 4] = [
        b"{\"domainStats\": 5}",
        b"{\"domainStats\": [{\"date\": {\"year\": \"x\"}}]}",
        too_many.as_bytes(),
        long_token.as_bytes(),
    ];
    for body in stats {
        assert!(q.parse(body).is_err());
    }
    assert!(
        q.parse(many("domainStats", "{}", MAX_ROWS).as_bytes())
            .is_ok()
    );
    assert!(parse_domains(many("domains", "{}", MAX_ROWS + 1).as_bytes()).is_err());
    assert!(parse_domains(long_token.as_bytes()).is_err());
    let rows = many(
        "rowData",
        r#"{"requirement":"SPF"}"#,
        MAX_COMPLIANCE_ROWS + 1,
    );
    let body = format!(r#"{{"complianceData":{rows}}}"#);
    assert!(parse_compliance(body.as_bytes()).is_err());
}

#[test]
fn compliance_rows_in_our_names() {
    let status = parse_compliance(&fixture("compliance-example.com.json")).unwrap();
    assert!(status.subdomain.is_none());
    let data = status.effective().unwrap();
    assert_eq!(data.domain.as_deref(), Some("example.com"));
    let rows: Vec<(&str, &str)> = data
        .rows
        .iter()
        .map(|r| (r.requirement.as_ref(), r.state.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("spf", "compliant"),
            ("dkim", "compliant"),
            ("spf_and_dkim", "compliant"),
            ("dmarc_policy", "compliant"),
            ("dmarc_alignment", "needs_work"),
            ("message_formatting", "compliant"),
            ("dns_records", "compliant"),
            ("encryption", "compliant"),
            ("user_reported_spam_rate", "needs_work"),
            ("one_click_unsubscribe", "needs_work"),
            ("honor_unsubscribe", "unknown"),
        ]
    );
    assert_eq!(data.skipped, 0);
    let one_click = data.one_click_unsubscribe.as_ref().unwrap();
    assert_eq!(one_click.state, ComplianceState::NeedsWork);
    assert_eq!(
        one_click.reason.as_deref(),
        Some("NO_UNSUB_PROMO_SPAM_REPORTS")
    );
    let honor = data.honor_unsubscribe.as_ref().unwrap();
    assert_eq!(
        (honor.state, honor.reason.as_deref()),
        (ComplianceState::Unknown, None)
    );
}

#[test]
fn requirement_names_map_onto_ours() {
    for ours in OUR_REQUIREMENTS {
        let google = ours.to_ascii_uppercase();
        assert_eq!(requirement_name(&google).as_deref(), Some(ours), "{google}");
    }
    assert_eq!(
        requirement_name("HONOR_UNSUBSCRIBE").as_deref(),
        Some("honor_unsubscribe")
    );
    assert_eq!(requirement_name("COMPLIANCE_REQUIREMENT_UNSPECIFIED"), None);
    assert_eq!(
        requirement_name("BIMI_RECORD_2").as_deref(),
        Some("bimi_record_2")
    );
    assert_eq!(requirement_name("spf; DROP"), None);
    assert_eq!(requirement_name(""), None);
}

#[test]
fn a_subdomain_has_its_own_rows_first_row_wins() {
    let body = br#"{"name":"domains/news.example.com/complianceStatus",
        "complianceData":{"domainId":"example.com","rowData":[
            {"requirement":"SPF","status":{"status":"COMPLIANT"}}]},
        "subdomainComplianceData":{"domainId":"news.example.com","rowData":[
            {"requirement":"SPF","status":{"status":"NEEDS_WORK"}},
            {"requirement":"SPF","status":{"status":"COMPLIANT"}},
            {"requirement":"COMPLIANCE_REQUIREMENT_UNSPECIFIED"},
            {"status":{"status":"COMPLIANT"}},
            {"requirement":"DKIM","status":{"status":"SOMETHING_NEW"}}]}}"#;
    let status = parse_compliance(body).unwrap();
    let data = status.effective().unwrap();
    assert_eq!(data.domain.as_deref(), Some("news.example.com"));
    assert_eq!(data.rows.len(), 2);
    assert_eq!(data.rows[0].state, ComplianceState::NeedsWork);
    assert_eq!(data.rows[1].state, ComplianceState::Unknown);
    assert_eq!(data.skipped, 3);
    assert_eq!(
        status.registrable.unwrap().rows[0].state,
        ComplianceState::Compliant
    );
}
