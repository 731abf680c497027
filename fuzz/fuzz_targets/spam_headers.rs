//! The spam-filter header parsers (SpamAssassin, rspamd, Stalwart, Microsoft SCL and
//! Forefront, Barracuda, Gmail), through `canary::headers::parse`, with the input shaped so
//! that every line is one of their headers: a line's first byte picks the field name, the
//! rest is its value (see `spam_block`). Scores must come out finite, one verdict per filter.
#![no_main]

use deliverability_exporter::canary::headers;
use deliverability_exporter_fuzz::spam_block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let block = spam_block(data);
    let h = headers::parse(&block, None);
    for (i, v) in h.spam.iter().enumerate() {
        assert!(
            v.score.is_none_or(f64::is_finite),
            "a score is a finite number: {v:?}"
        );
        assert!(
            h.spam[..i].iter().all(|o| o.source != v.source),
            "one entry per filter: {:?}",
            h.spam
        );
    }
});
