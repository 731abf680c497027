//! A TXT string into the DKIM key record parser `dns::dkim::parse`: the tag list, the
//! base64 key and the DER walk that reads an RSA key's size.
#![no_main]

use deliverability_exporter::dns::dkim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let txt = String::from_utf8_lossy(data);
    match dkim::parse(&txt) {
        Ok(rec) => {
            let _ = rec.key_type.as_str();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
