//! A TXT string into the DMARC record parser `dns::dmarc::parse` (and `is_dmarc`); the
//! input's first line, as a domain, through the tree walk's `walk_parent`.
#![no_main]

use deliverability_exporter::dns::dmarc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let txt = String::from_utf8_lossy(data);
    let _ = dmarc::is_dmarc(&txt);
    match dmarc::parse(&txt) {
        Ok(rec) => {
            let _ = rec.subdomain_policy();
            assert!(rec.pct <= 100, "pct is a percentage: {}", rec.pct);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let domain = txt.lines().next().unwrap_or("");
    let mut name = domain.to_string();
    for step in 0.. {
        let Some(parent) = dmarc::walk_parent(&name) else {
            break;
        };
        assert!(step < 8, "the walk ends: {domain:?}");
        let _ = dmarc::is_external(&name, &parent);
        name = parent;
    }
});
