//! A TXT string into the SPF record parser `dns::spf::parse` (and `is_spf`, `has_macro`).
#![no_main]

use deliverability_exporter::dns::spf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let txt = String::from_utf8_lossy(data);
    let _ = spf::is_spf(&txt);
    let _ = spf::has_macro(&txt);
    match spf::parse(&txt) {
        Ok(rec) => {
            assert!(spf::is_spf(&txt), "only v=spf1 records parse");
            let _ = rec.all();
            for d in &rec.directives {
                let _ = (d.qualifier.as_str(), d.mechanism.queries_dns());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
