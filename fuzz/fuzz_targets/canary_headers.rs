//! A delivered message's raw header block into `canary::headers::parse`, as a seed's IMAP
//! server returns it: the field splitter, Authentication-Results / ARC / Received-SPF, the
//! DKIM-Signature fields, every spam filter's headers, the Received chain with its dates and
//! the canary token. The first byte chooses the trusted authserv-id (none, or one the seeds
//! use). Checks the bounds the module promises.
#![no_main]

use deliverability_exporter::canary::headers::{self, MAX_VALUE_LEN, auth_results, dkim, received};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let expected = match mode % 3 {
        0 => None,
        1 => Some("mx.google.com"),
        _ => Some("mx.seed.test"),
    };
    let h = headers::parse(raw, expected);
    let _ = (h.received_at(), h.sending_ip());
    assert!(h.auth.results.len() <= auth_results::MAX_RESULTS);
    assert!(
        h.auth
            .authserv_id
            .as_ref()
            .is_none_or(|id| id.len() <= MAX_VALUE_LEN)
    );
    for r in &h.auth.results {
        assert!(r.properties.len() <= auth_results::MAX_PROPERTIES);
        assert!(r.properties.iter().all(|p| p.value.len() <= MAX_VALUE_LEN));
    }
    assert!(h.hops.len() <= received::MAX_HOPS);
    assert!(h.dkim_signatures.len() <= dkim::MAX_SIGNATURES);
    for s in &h.dkim_signatures {
        assert!(s.domain.len() <= MAX_VALUE_LEN && s.selector.len() <= MAX_VALUE_LEN);
    }
    for v in &h.spam {
        assert!(
            v.score.is_none_or(f64::is_finite),
            "a score is a finite number: {v:?}"
        );
    }
});
