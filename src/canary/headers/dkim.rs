//! `DKIM-Signature` headers (RFC 6376 §3.5): the signing domain `d=`, selector `s=` and
//! algorithm `a=` of each signature, so the exporter learns which selectors a provider signs
//! with. Nothing is verified here; the receiver's verdict is in `Authentication-Results`.

use super::MAX_VALUE_LEN;
use super::block::HeaderBlock;
use crate::canary::text::truncate;

/// More signatures than this are ignored (a provider adds one or two).
pub const MAX_SIGNATURES: usize = 16;

/// One signature's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSignature {
    /// `d=`, lower-cased.
    pub domain: String,
    /// `s=`, lower-cased (DNS names are case-insensitive).
    pub selector: String,
    /// `a=` (`rsa-sha256`, `ed25519-sha256`), lower-cased, when present.
    pub algorithm: Option<String>,
    /// `h=`: the names of the header fields the signature covers, lower-cased, in order (a
    /// name listed twice is over-signed), at most [`MAX_SIGNED_HEADERS`].
    pub signed_headers: Vec<String>,
}

/// Names of `h=` kept; a signature lists a dozen or two.
pub const MAX_SIGNED_HEADERS: usize = 64;

impl DkimSignature {
    /// Whether the signature covers the header field `name` (any case).
    pub fn covers(&self, name: &str) -> bool {
        self.signed_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Parses one `DKIM-Signature` value; `None` without a usable `d=` and `s=`.
pub fn parse_dkim_signature(value: &str) -> Option<DkimSignature> {
    let (mut d, mut s, mut a, mut h) = (None, None, None, None);
    for spec in value.split(';') {
        let Some((tag, val)) = spec.split_once('=') else {
            continue;
        };
        let tag = tag.trim();
        let slot = match tag {
            "d" => &mut d,
            "s" => &mut s,
            "a" => &mut a,
            "h" => &mut h,
            _ => continue,
        };
        // The first of a repeated tag counts; folding whitespace inside a value is dropped.
        if slot.is_none() {
            // `h=` lists names: longer than the other values, bounded all the same.
            let limit = if tag == "h" { 4096 } else { MAX_VALUE_LEN };
            let v: String = truncate(val, limit)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            *slot = Some(v.to_ascii_lowercase());
        }
    }
    let domain = d.filter(|v| dns_name(v))?;
    let selector = s.filter(|v| dns_name(v))?;
    Some(DkimSignature {
        domain,
        selector,
        algorithm: a.filter(|v| !v.is_empty()),
        signed_headers: h
            .map(|v| {
                v.split(':')
                    .filter(|n| !n.is_empty())
                    .take(MAX_SIGNED_HEADERS)
                    .map(|n| truncate(n, 64).to_string())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Every signature in the block, top first.
pub(crate) fn signatures(block: &HeaderBlock<'_>) -> Vec<DkimSignature> {
    block
        .all("DKIM-Signature")
        .filter_map(|f| parse_dkim_signature(&f.text()))
        .take(MAX_SIGNATURES)
        .collect()
}

fn dns_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_domain_selector_and_algorithm_through_folding() {
        let v = "v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td=Example.ORG; s=\r\n sel-2026; h=from:to:subject;\r\n bh=abc=; b=dGVzdA\r\n  ==";
        let block = format!("DKIM-Signature: {v}\r\n\r\n");
        let sigs = signatures(&HeaderBlock::parse(block.as_bytes()));
        assert_eq!(
            sigs,
            [DkimSignature {
                domain: "example.org".into(),
                selector: "sel-2026".into(),
                algorithm: Some("rsa-sha256".into()),
                signed_headers: vec!["from".into(), "to".into(), "subject".into()],
            }]
        );
        let long = format!(
            "d=a.example; s=x; h={}List-Unsubscribe:List-Unsubscribe-Post",
            "x-some-long-header-name:".repeat(20)
        );
        let sig = parse_dkim_signature(&long).unwrap();
        assert!(sig.covers("list-unsubscribe-post") && sig.covers("List-Unsubscribe"));
        assert!(!sig.covers("from"));
    }

    #[test]
    fn two_signatures_are_both_kept_and_broken_ones_dropped() {
        let raw = b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=ed; b=x\r\n\
DKIM-Signature: v=1; a=rsa-sha256; d=esp.example; s=s1; b=y\r\n\
DKIM-Signature: v=1; a=rsa-sha256; s=nodomain; b=z\r\n\
DKIM-Signature: v=1; d=bad domain!; s=x; b=z\r\n\
DKIM-Signature: garbage\r\n\r\n";
        let sigs = signatures(&HeaderBlock::parse(raw));
        let ids: Vec<(&str, &str, Option<&str>)> = sigs
            .iter()
            .map(|s| (&*s.domain, &*s.selector, s.algorithm.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                ("example.org", "ed", Some("ed25519-sha256")),
                ("esp.example", "s1", Some("rsa-sha256"))
            ]
        );
        assert_eq!(
            parse_dkim_signature("d=a.example; s=x; d=b.example").map(|s| s.domain),
            Some("a.example".into()),
            "the first of a repeated tag"
        );
        assert_eq!(
            parse_dkim_signature("d=a.example; s=x").and_then(|s| s.algorithm),
            None
        );
    }

    #[test]
    fn keeps_at_most_the_limit() {
        let one = "DKIM-Signature: d=example.org; s=s\r\n";
        let raw = one.repeat(1000);
        assert_eq!(
            signatures(&HeaderBlock::parse(raw.as_bytes())).len(),
            MAX_SIGNATURES
        );
    }
}
