//! What a delivered canary's headers say, read from the raw header block the seed's IMAP
//! server returns for `BODY.PEEK[HEADER]`: the receiver's SPF/DKIM/DMARC/ARC verdicts
//! ([`auth_results`]), the DKIM signatures the provider added ([`dkim`]), spam scores
//! ([`spam`]), the `Received:` chain with the receiving hop's time and the provider's sending
//! IP ([`received`]), and the canary token.
//!
//! Pure functions, no I/O. Every input is bounded: the block is read up to
//! [`MAX_HEADER_BLOCK`] bytes, strings kept from it are cut at [`MAX_VALUE_LEN`], lists at a
//! fixed length; every parser is a single pass (comments are depth counters, not recursion),
//! and no input panics. The fields are split by the `block` module, which, unlike
//! `mailparse::parse_headers`, skips a broken line instead of failing the whole block;
//! mailparse decodes the RFC 2047 Subject for the token fallback.

pub mod auth_results;
mod block;
pub mod dkim;
mod lexer;
pub mod received;
pub mod spam;

#[cfg(test)]
mod sample_tests;

pub use auth_results::{
    AuthResult, AuthResultsHeader, AuthVerdicts, Method, Origin, Property, ResInfo,
    parse_arc_authentication_results, parse_authentication_results, parse_received_spf,
};
pub use dkim::{DkimSignature, parse_dkim_signature};
pub use received::{Hop, is_public, parse_received, receiving_hop, sending_ip};
pub use spam::{SpamSource, SpamVerdict};

use std::net::IpAddr;

use crate::canary::token::{TOKEN_HEADER, token_from_header, token_from_subject};
use block::HeaderBlock;

/// Bytes of a header block read; the rest is ignored.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// Bytes kept of any one value (an authserv-id, a property, a host name).
pub const MAX_VALUE_LEN: usize = 256;
/// Bytes of a Subject given to the RFC 2047 decoder (mailparse's is quadratic in the worst
/// case; a Subject line is at most 998 bytes).
const MAX_SUBJECT_DECODE: usize = 2048;

/// Everything the canary code records from one delivered message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanaryHeaders {
    /// The canary token: the `X-Deliverability-Canary` header's, else the Subject's.
    pub token: Option<String>,
    /// The receiver's verdicts.
    pub auth: AuthVerdicts,
    /// Every DKIM signature, top first.
    pub dkim_signatures: Vec<DkimSignature>,
    /// One entry per spam filter that left a score or verdict.
    pub spam: Vec<SpamVerdict>,
    /// The `Received:` chain, top (the receiver's last hop) first.
    pub hops: Vec<Hop>,
    /// `client-ip` of the topmost `Received-SPF`: the address the receiver checked SPF for.
    pub spf_client_ip: Option<IpAddr>,
    /// What the bulk-sender rules of the mailbox providers look at in the header itself.
    pub format: Format,
}

/// The header facts the mailbox providers' sender requirements name: one From, Date and
/// Message-ID, line lengths, the From domain, and the one-click unsubscribe fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Format {
    /// How many `From:`, `Date:` and `Message-ID:` fields the message has.
    pub from_fields: usize,
    pub date_fields: usize,
    pub message_id_fields: usize,
    /// Octets of the longest header line, line end excluded (RFC 5322 allows 998).
    pub longest_line: usize,
    /// The domain of the (first) `From:` address, lower-cased.
    pub from_domain: Option<String>,
    /// The `List-Unsubscribe` value, unfolded (cut at [`MAX_VALUE_LEN`] × 4).
    pub list_unsubscribe: Option<String>,
    /// The `List-Unsubscribe-Post` value, unfolded.
    pub list_unsubscribe_post: Option<String>,
}

/// The domain of the first address in a `From:` value (`Name <a@b>`, `a@b`, a group).
fn from_domain(value: &str) -> Option<String> {
    let addr = crate::domains::first_address(value)?;
    let domain = addr.rsplit_once('@')?.1.trim().trim_end_matches('.');
    (!domain.is_empty() && domain.len() <= 253).then(|| domain.to_ascii_lowercase())
}

fn format(block: &HeaderBlock<'_>) -> Format {
    let cut = |v: String| crate::canary::text::truncate(&v, MAX_VALUE_LEN * 4).to_string();
    Format {
        from_fields: block.all("From").count(),
        date_fields: block.all("Date").count(),
        message_id_fields: block.all("Message-ID").count(),
        longest_line: block.longest_line,
        from_domain: block.text("From").and_then(|v| from_domain(&v)),
        list_unsubscribe: block.text("List-Unsubscribe").map(cut),
        list_unsubscribe_post: block.text("List-Unsubscribe-Post").map(cut),
    }
}

impl CanaryHeaders {
    /// When the receiver's last hop stamped the message: the topmost `Received:` date.
    pub fn received_at(&self) -> Option<i64> {
        self.hops.first().and_then(|h| h.date)
    }

    /// The provider's public sending IP: the SPF client IP when it is public and one of the
    /// hops came from it (Microsoft 365 names itself in no authserv-id, and its internal hops
    /// have public IPv6 addresses), else [`sending_ip`] with the trusted authserv-id.
    pub fn sending_ip(&self) -> Option<IpAddr> {
        self.spf_client_ip
            .filter(|ip| is_public(*ip) && self.hops.iter().any(|h| h.ip == Some(*ip)))
            .or_else(|| sending_ip(&self.hops, self.auth.authserv_id.as_deref()))
    }
}

/// Reads a raw header block. `expected_authserv_id` is the seed's configured authserv-id:
/// only `Authentication-Results` with it are trusted; with `None`, the topmost one is.
pub fn parse(raw: &[u8], expected_authserv_id: Option<&str>) -> CanaryHeaders {
    let block = HeaderBlock::parse(raw);
    CanaryHeaders {
        token: token(&block),
        auth: auth_results::verdicts(&block, expected_authserv_id),
        dkim_signatures: dkim::signatures(&block),
        spam: spam::verdicts(&block),
        hops: received::hops(&block),
        spf_client_ip: block
            .text("Received-SPF")
            .and_then(|v| parse_received_spf(&v))
            .and_then(|r| r.property("client-ip")?.parse().ok()),
        format: format(&block),
    }
}

/// The token in the canary header, else in the Subject: as written, then RFC 2047-decoded.
fn token(block: &HeaderBlock<'_>) -> Option<String> {
    if let Some(t) = block
        .text(TOKEN_HEADER)
        .and_then(|v| token_from_header(&v).map(str::to_string))
    {
        return Some(t);
    }
    let subject = block.first("Subject")?;
    if let Some(t) = token_from_subject(&subject.text()) {
        return Some(t.to_string());
    }
    let raw = &subject.raw[..subject.raw.len().min(MAX_SUBJECT_DECODE)];
    let (field, _) = mailparse::parse_header(raw).ok()?;
    token_from_subject(&field.get_value()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn token_from_header_then_subject_then_encoded_subject() {
        let t = Some("dx-abcdefghijklmnop2345".to_string());
        let h = b"Subject: x\r\nX-Deliverability-Canary: dx-abcdefghijklmnop2345\r\n\r\n";
        assert_eq!(parse(h, None).token, t);
        let rewritten = b"X-Deliverability-Canary: mangled\r\nSubject: Check\r\n dx-abcdefghijklmnop2345\r\n\r\n";
        assert_eq!(parse(rewritten, None).token, t);
        let encoded = b"Subject: =?UTF-8?Q?Pr=C3=BCfung_dx-abcdefghijklmnop2345?=\r\n\r\n";
        assert_eq!(parse(encoded, None).token, t);
        let b64 = b"Subject: =?utf-8?B?ZHgtYWJjZGVmZ2hpamtsbW5vcDIzNDU=?=\r\n\r\n";
        assert_eq!(parse(b64, None).token, t);
        assert_eq!(parse(b"Subject: none here\r\n\r\n", None).token, None);
    }

    /// Inputs built to find panics and super-linear loops: each is parsed whole, within a
    /// generous time for a debug build (a quadratic loop over 256 KiB takes minutes).
    #[test]
    fn hostile_blocks_parse_quickly_without_panics() {
        let big = MAX_HEADER_BLOCK;
        let fill = |head: &str, unit: &str| {
            let mut s = head.to_string();
            while s.len() < big + 1000 {
                s.push_str(unit);
            }
            s.into_bytes()
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("nested comments", fill("Authentication-Results: mx; spf=pass ", "(")),
            ("closing parens", fill("Authentication-Results: mx; ", ")")),
            (
                "balanced nesting",
                format!(
                    "Authentication-Results: {}mx{}; dkim=pass\r\nReceived: {}x{}; Sun, 29 Nov 2026 04:35:59 +0000\r\n",
                    "(".repeat(10_000),
                    ")".repeat(10_000),
                    "(".repeat(10_000),
                    ")".repeat(10_000)
                )
                .into_bytes(),
            ),
            ("open quote", fill("Authentication-Results: \"", "\\\"a")),
            ("no semicolons", fill("Authentication-Results: mx ", "spf=pass ")),
            ("only semicolons", fill("Authentication-Results: mx", ";")),
            ("many resinfos", fill("Authentication-Results: mx", "; dkim=pass header.d=x")),
            ("many properties", fill("Authentication-Results: mx; dkim=pass", " a.b=c")),
            ("equals", fill("Authentication-Results: mx; ", "=")),
            ("many headers", fill("", "Authentication-Results: mx; spf=fail\r\n")),
            ("many arc", fill("", "ARC-Authentication-Results: i=1; mx; arc=pass\r\n")),
            ("received-spf", fill("Received-SPF: pass ", "a=b; ")),
            ("received brackets", fill("Received: from ", "[")),
            ("received words", fill("Received: from x ", "1.2.3.4 by ")),
            ("received semis", fill("Received: from x", ";")),
            ("many received", fill("", "Received: from a ([192.0.2.1]) by b; Sun, 29 Nov 2026 04:35:59 +0000\r\n")),
            ("dkim", fill("DKIM-Signature: ", "d=example.org; s=s;")),
            ("many dkim", fill("", "DKIM-Signature: d=example.org; s=s\r\n")),
            ("spam status", fill("X-Spam-Status: Yes, ", "scor")),
            ("stalwart tags", fill("X-Spam-Result: ", "A (1.0), ")),
            ("forefront", fill("X-Forefront-Antispam-Report: ", "SCL:")),
            ("subject encoded words", fill("Subject: ", "=?")),
            ("subject prefixes", fill("Subject: ", "dx-")),
            ("folding", fill("X-Spam-Status: Yes", "\r\n ")),
            ("bare CR", fill("Authentication-Results: mx;", "\r")),
            ("invalid utf-8", {
                let mut v = b"Authentication-Results: \xff\xfe; spf=pass (\xc3) smtp.mailfrom=\xe2\x82;\r\nReceived: from \xf0\x9f ([192.0.2.1]) by \xff; Sun, 29 Nov 2026 04:35:59 +0000\r\nSubject: \xff dx-abcdefghijklmnop2345\r\n".to_vec();
                v.extend(std::iter::repeat_n(0xffu8, big));
                v
            }),
            ("from brackets", fill("From: ", "<")),
            ("from quotes", fill("From: ", "\"a\\\" ")),
            ("from groups", fill("From: ", "g: a@b, c@d; ")),
            ("many from", fill("", "From: a@b.example\r\n")),
            ("list-unsubscribe", fill("List-Unsubscribe: ", "<https://a/>, ")),
            ("dkim h=", fill("DKIM-Signature: d=a.example; s=s; h=", "from:")),
            ("one long line", vec![b'a'; big + 1000]),
            ("nul bytes", vec![0u8; big]),
        ];
        for (name, raw) in &cases {
            let started = Instant::now();
            let h = parse(raw, Some("mx"));
            let took = started.elapsed();
            assert!(took < Duration::from_secs(3), "{name}: {took:?}");
            assert!(h.auth.results.len() <= auth_results::MAX_RESULTS, "{name}");
            assert!(h.hops.len() <= received::MAX_HOPS, "{name}");
            assert!(h.dkim_signatures.len() <= dkim::MAX_SIGNATURES, "{name}");
            assert!(
                h.dkim_signatures
                    .iter()
                    .all(|s| s.signed_headers.len() <= dkim::MAX_SIGNED_HEADERS),
                "{name}"
            );
            assert!(
                h.format.from_domain.as_ref().is_none_or(|d| d.len() <= 253),
                "{name}"
            );
            assert!(
                h.format
                    .list_unsubscribe
                    .as_ref()
                    .is_none_or(|v| v.len() <= MAX_VALUE_LEN * 4),
                "{name}"
            );
            for r in &h.auth.results {
                assert!(r.properties.len() <= auth_results::MAX_PROPERTIES, "{name}");
                assert!(r.properties.iter().all(|p| p.value.len() <= MAX_VALUE_LEN));
            }
        }
    }

    #[test]
    fn hostile_blocks_still_yield_what_is_valid() {
        let raw = b"Authentication-Results: mx.seed.test; spf=pass (unbalanced (comment smtp.mailfrom=a@b\r\nAuthentication-Results: mx.seed.test; dkim=pass header.d=dx.test\r\nReceived: from \xff\xfe ([192.0.2.1]) by mx.seed.test; Sun, 29 Nov 2026 04:35:59 +0000\r\nSubject: \xff dx-abcdefghijklmnop2345\r\n\r\n";
        let h = parse(raw, Some("mx.seed.test"));
        let got: Vec<(&str, &str)> = h
            .auth
            .results
            .iter()
            .map(|r| (r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(got, [("spf", "pass"), ("dkim", "pass")]);
        assert!(
            h.auth.results[0].properties.is_empty(),
            "eaten by the comment"
        );
        assert_eq!(h.received_at(), Some(1_795_926_959));
        assert_eq!(h.token.as_deref(), Some("dx-abcdefghijklmnop2345"));
    }
}
