//! The other DNS texts: the `tag=value` lists (`dns::tags::parse`), MTA-STS TXT records and
//! policy files (`mta_sts::parse_txt`, `parse_policy`, which is fetched over HTTPS from the
//! domain's own server), `mx_matches` on the policy's patterns, and TLS-RPT records
//! (`dns::tlsrpt::parse`).
#![no_main]

use deliverability_exporter::dns::{mta_sts, tags, tlsrpt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = tags::parse(&text) {
        for (name, _) in &t {
            assert!(tags::get(&t, name).is_some());
        }
    }
    let _ = tags::short(&text);
    let _ = (mta_sts::is_sts(&text), mta_sts::parse_txt(&text));
    if let Ok(policy) = mta_sts::parse_policy(&text) {
        let host = text.lines().last().unwrap_or("");
        for pattern in &policy.mx {
            let _ = mta_sts::mx_matches(pattern, host);
        }
    }
    let _ = (tlsrpt::is_tlsrpt(&text), tlsrpt::parse(&text));
});
