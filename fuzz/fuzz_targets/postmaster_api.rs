//! Arbitrary bytes as the answers of Google Postmaster Tools v2: `parse_domains`,
//! `StatsQuery::parse` (of the daily query), `parse_compliance` and `classify` with every
//! status class. Checks the bounds the module promises: rates within 0..1, at most the page
//! limits, no panic on any body.
#![no_main]

use deliverability_exporter::postmaster::api::{
    self, Date, MAX_COMPLIANCE_ROWS, MAX_ROWS, Metric, StatValue, StatsQuery,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = api::parse_domains(data) {
        assert!(page.domains.len() <= MAX_ROWS);
    }
    let (start, end) = (
        Date::new(2026, 5, 1).unwrap(),
        Date::new(2026, 5, 4).unwrap(),
    );
    let query = StatsQuery::new("example.com", start, end, Metric::daily()).unwrap();
    if let Ok(page) = query.parse(data) {
        for (day, stats) in &page.days {
            assert!(*day >= start && *day <= end);
            for v in stats.values.values() {
                if let StatValue::Fraction(f) = v {
                    assert!((0.0..=1.0).contains(f), "{f}");
                }
            }
        }
    }
    if let Ok(status) = api::parse_compliance(data)
        && let Some(d) = status.effective()
    {
        assert!(d.rows.len() <= MAX_COMPLIANCE_ROWS);
    }
    for status in [200, 401, 403, 404, 429, 500, 418] {
        let _ = api::classify(status, Some("30"), data);
    }
});
