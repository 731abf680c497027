//! Raw DER into the hand-written DER readers: `dns::dkim::rsa_bits` (an RSA public key in
//! SubjectPublicKeyInfo or PKCS#1 form, from a DKIM record's `p=`), `tls::cert_not_after`
//! (a certificate's expiry) and `der::tlv`.
#![no_main]

use deliverability_exporter::{der, dns::dkim, tls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((_, content, rest)) = der::tlv(data) {
        assert!(content.len() + rest.len() < data.len());
    }
    let _ = dkim::rsa_bits(data);
    let _ = tls::cert_not_after(data);
});
