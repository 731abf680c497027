//! One header value, as text, into each of the value parsers the canary code uses on its
//! own: `parse_authentication_results`, `parse_arc_authentication_results`,
//! `parse_received_spf`, `parse_received`, `parse_dkim_signature` and the RFC 5322 date
//! reader `parse_date`. Invalid UTF-8 is replaced, as the header splitter does.
#![no_main]

use deliverability_exporter::canary::date::parse_date;
use deliverability_exporter::canary::headers::{
    MAX_VALUE_LEN, auth_results, parse_arc_authentication_results, parse_authentication_results,
    parse_dkim_signature, parse_received, parse_received_spf,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let ar = parse_authentication_results(&value);
    assert!(ar.results.len() <= auth_results::MAX_RESULTS);
    for r in &ar.results {
        assert!(r.properties.len() <= auth_results::MAX_PROPERTIES);
        assert!(r.properties.iter().all(|p| p.value.len() <= MAX_VALUE_LEN));
    }
    if let Some((i, _)) = parse_arc_authentication_results(&value) {
        assert!((1..=50).contains(&i));
    }
    let _ = parse_received_spf(&value);
    let _ = parse_received(&value);
    let _ = parse_dkim_signature(&value);
    let _ = parse_date(&value);
});
