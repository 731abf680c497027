//! DKIM public-key records (RFC 6376 section 3.6.1, RFC 8463 for ed25519).
//!
//! The record of selector `s` for domain `d` is the TXT at `s._domainkey.d`; ESPs usually
//! publish it behind a CNAME, which the resolver follows (the chain is reported). [`parse`]
//! reads its tags; an empty `p=` is a revoked key; `t=y` marks a domain testing DKIM. The key
//! itself is decoded to its type and size: RSA keys by walking the SubjectPublicKeyInfo DER
//! (or a bare PKCS#1 RSAPublicKey, which some publish) to the modulus, ed25519 keys by length.
//! RSA keys under 1024 bits are refused by verifiers (RFC 8301) and reported as weak.

use base64::Engine as _;

use crate::dns::tags::{self, TagError};
use crate::resolver::{Lookup, RType};

/// RSA keys shorter than this are ignored by verifiers (RFC 8301 section 3.2).
pub const MIN_RSA_BITS: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// A parsed DKIM key record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimRecord {
    pub key_type: KeyType,
    /// Empty `p=`: the key is revoked.
    pub revoked: bool,
    /// Key size in bits (RSA modulus; 256 for ed25519); 0 when revoked.
    pub bits: u32,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `t=s`: the signing domain must equal the `i=` domain.
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    #[error("{0}")]
    Tags(#[from] TagError),
    #[error("v={0:?}: the version must be DKIM1")]
    Version(String),
    #[error("no p= tag (the public key)")]
    NoKey,
    #[error("k={0:?}: unknown key type (expected rsa or ed25519)")]
    KeyType(String),
    #[error("p=: not valid base64")]
    Base64,
    #[error("p=: {0}")]
    BadKey(&'static str),
}

/// Parses the TXT of a DKIM key record.
pub fn parse(txt: &str) -> Result<DkimRecord, DkimError> {
    let t = tags::parse(txt)?;
    if let Some(v) = tags::get(&t, "v")
        && (v != "DKIM1" || t[0].0 != "v")
    {
        return Err(DkimError::Version(tags::short(v)));
    }
    let key_type = match tags::get(&t, "k").map(str::to_ascii_lowercase).as_deref() {
        None | Some("rsa") => KeyType::Rsa,
        Some("ed25519") => KeyType::Ed25519,
        Some(other) => return Err(DkimError::KeyType(tags::short(other))),
    };
    let flags: Vec<&str> = tags::get(&t, "t")
        .map(|f| f.split(':').map(str::trim).collect())
        .unwrap_or_default();
    let p = tags::get(&t, "p").ok_or(DkimError::NoKey)?;
    let b64: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut rec = DkimRecord {
        key_type,
        revoked: b64.is_empty(),
        bits: 0,
        testing: flags.iter().any(|f| f.eq_ignore_ascii_case("y")),
        strict: flags.iter().any(|f| f.eq_ignore_ascii_case("s")),
    };
    if rec.revoked {
        return Ok(rec);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| DkimError::Base64)?;
    rec.bits = match key_type {
        KeyType::Ed25519 if der.len() == 32 => 256,
        KeyType::Ed25519 => return Err(DkimError::BadKey("an ed25519 key is 32 bytes")),
        KeyType::Rsa => rsa_bits(&der)?,
    };
    Ok(rec)
}

use crate::der::{BIT_STRING, INTEGER, OID, SEQUENCE, tlv as der};

/// 1.2.840.113549.1.1.1 rsaEncryption
const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The modulus size of an RSA public key in SubjectPublicKeyInfo or PKCS#1 form.
pub fn rsa_bits(der_bytes: &[u8]) -> Result<u32, DkimError> {
    let bad = DkimError::BadKey("not an RSA public key (SubjectPublicKeyInfo or RSAPublicKey DER)");
    let (tag, seq, _) = der(der_bytes).ok_or(bad.clone())?;
    if tag != SEQUENCE {
        return Err(bad);
    }
    let (first_tag, first, rest) = der(seq).ok_or(bad.clone())?;
    let rsa_public_key = match first_tag {
        // SubjectPublicKeyInfo: AlgorithmIdentifier, then the key in a BIT STRING.
        SEQUENCE => {
            let (oid_tag, oid, _) = der(first).ok_or(bad.clone())?;
            if oid_tag != OID || oid != RSA_OID {
                return Err(DkimError::BadKey("k=rsa but the key is not an RSA key"));
            }
            let (bs_tag, bits, _) = der(rest).ok_or(bad.clone())?;
            if bs_tag != BIT_STRING || bits.first() != Some(&0) {
                return Err(bad);
            }
            let (t, inner, _) = der(&bits[1..]).ok_or(bad.clone())?;
            if t != SEQUENCE {
                return Err(bad);
            }
            inner
        }
        // PKCS#1 RSAPublicKey: the modulus comes first.
        INTEGER => seq,
        _ => return Err(bad),
    };
    let (t, modulus, rest) = der(rsa_public_key).ok_or(bad.clone())?;
    let (te, _, _) = der(rest).ok_or(bad.clone())?;
    if t != INTEGER || te != INTEGER {
        return Err(bad);
    }
    let m: &[u8] = {
        let start = modulus
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(modulus.len());
        &modulus[start..]
    };
    match m.first() {
        None => Err(DkimError::BadKey("the RSA modulus is zero")),
        Some(top) => Ok((m.len() as u32 - 1) * 8 + (8 - top.leading_zeros())),
    }
}

crate::label_enum! {
    /// Why a selector's key is not usable, as a fixed reason (metric label).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        NoSelector = "no_selector",
        NoRecord = "no_record",
        MultipleRecords = "multiple_records",
        Syntax = "syntax",
        Revoked = "revoked",
        WeakKey = "weak_key",
        DnsError = "dns_error",
    }
}

/// The check of one selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorReport {
    pub selector: String,
    /// The record text, as published.
    pub record: Option<String>,
    /// CNAME targets followed to reach it.
    pub cnames: Vec<String>,
    pub key: Option<DkimRecord>,
    pub problem: Option<(Reason, String)>,
}

/// Fetches and checks `selector._domainkey.domain`.
pub async fn check_selector(dns: &dyn Lookup, domain: &str, selector: &str) -> SelectorReport {
    let name = format!("{selector}._domainkey.{domain}");
    let mut rep = SelectorReport {
        selector: selector.to_string(),
        record: None,
        cnames: Vec::new(),
        key: None,
        problem: None,
    };
    let ans = match dns.lookup(&name, RType::Txt).await {
        Ok(a) => a,
        Err(e) if e.is_void() => {
            rep.problem = Some((Reason::NoRecord, format!("no DKIM key at {name}")));
            return rep;
        }
        Err(e) => {
            rep.problem = Some((Reason::DnsError, e.to_string()));
            return rep;
        }
    };
    rep.cnames = ans.cnames.clone();
    let txts = ans.txts();
    // Several TXT records: keep those that look like DKIM keys.
    let keys: Vec<&String> = if txts.len() == 1 {
        txts.iter().collect()
    } else {
        txts.iter()
            .filter(|t| tags::parse(t).is_ok_and(|tl| tags::get(&tl, "p").is_some()))
            .collect()
    };
    match keys.as_slice() {
        [] => {
            rep.problem = Some((
                Reason::NoRecord,
                format!("no DKIM key record among the TXT records at {name}"),
            ))
        }
        [one] => {
            rep.record = Some((*one).clone());
            match parse(one) {
                Ok(k) => {
                    if k.revoked {
                        rep.problem = Some((
                            Reason::Revoked,
                            format!("{name}: the key is revoked (empty p=)"),
                        ));
                    } else if k.key_type == KeyType::Rsa && k.bits < MIN_RSA_BITS {
                        rep.problem = Some((
                            Reason::WeakKey,
                            format!(
                                "{name}: {}-bit RSA key; verifiers ignore keys under {MIN_RSA_BITS} bits",
                                k.bits
                            ),
                        ));
                    }
                    rep.key = Some(k);
                }
                Err(e) => rep.problem = Some((Reason::Syntax, format!("{name}: {e}"))),
            }
        }
        many => {
            rep.problem = Some((
                Reason::MultipleRecords,
                format!(
                    "{name} has {} DKIM key records; verifiers may pick any",
                    many.len()
                ),
            ))
        }
    }
    rep
}

#[cfg(test)]
mod tests;
