//! DMARC alignment as a receiver evaluates it (RFC 7489 section 3.1, RFC 9990 section 4.4):
//! a record passes DMARC when a DKIM signature or the SPF check passed for a domain aligned
//! with the RFC 5322 From domain.
//!
//! Strict alignment is an exact match. Relaxed alignment compares organizational domains
//! ([`organizational_domain`], from `crate::domains`).

use super::model::{AlignmentMode, DkimResult, Record, SpfResult};

use crate::domains::trim_domain;
pub use crate::domains::{normalize_domain, organizational_domain};

/// Whether `domain` is aligned with the From domain under `mode` (any case, trailing dots
/// ignored).
pub fn aligned(domain: &str, from: &str, mode: AlignmentMode) -> bool {
    let (domain, from) = (trim_domain(domain), trim_domain(from));
    if domain.is_empty() || from.is_empty() {
        return false;
    }
    if domain.eq_ignore_ascii_case(from) {
        return true;
    }
    match mode {
        AlignmentMode::Strict => false,
        AlignmentMode::Relaxed => {
            organizational_domain(domain).eq_ignore_ascii_case(organizational_domain(from))
        }
    }
}

/// The receiver's view of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
}

impl Evaluation {
    pub fn dmarc_pass(self) -> bool {
        self.dkim_aligned || self.spf_aligned
    }
}

/// Derives alignment from the record's authentication results: any passing DKIM signature
/// (every `<dkim>`, not just the first) whose `d=` aligns with the From domain, and any
/// passing SPF result whose domain aligns. `from` is the record's `<header_from>` (or the
/// policy domain when a reporter left it out).
pub fn evaluate(
    record: &Record,
    from: &str,
    adkim: AlignmentMode,
    aspf: AlignmentMode,
) -> Evaluation {
    let dkim_aligned = record
        .dkim
        .iter()
        .any(|d| d.result == DkimResult::Pass && aligned(&d.domain, from, adkim));
    let spf_aligned = record
        .spf
        .iter()
        .any(|s| s.result == SpfResult::Pass && aligned(&s.domain, from, aspf));
    Evaluation {
        dkim_aligned,
        spf_aligned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::model::{DkimAuth, SpfAuth};

    #[test]
    fn organizational_domains() {
        assert_eq!(organizational_domain("mail.example.com"), "example.com");
        assert_eq!(organizational_domain("example.com"), "example.com");
        assert_eq!(organizational_domain("com"), "com");
        assert_eq!(organizational_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(organizational_domain("example.co.uk"), "example.co.uk");
        assert_eq!(organizational_domain("co.uk"), "co.uk");
        assert_eq!(organizational_domain("sicher.gmx.net"), "gmx.net");
        assert_eq!(
            organizational_domain("estadocuenta1.infonacot.gob.mx"),
            "infonacot.gob.mx"
        );
        assert_eq!(
            organizational_domain("x.school.k12.ca.us"),
            "school.k12.ca.us"
        );
        assert_eq!(organizational_domain("a.ab.id.au"), "ab.id.au");
        assert_eq!(
            organizational_domain("bounce.em.sendgrid.net"),
            "em.sendgrid.net"
        );
    }

    #[test]
    fn relaxed_and_strict_alignment() {
        assert!(aligned(
            "mail.example.com",
            "example.com",
            AlignmentMode::Relaxed
        ));
        assert!(!aligned(
            "mail.example.com",
            "example.com",
            AlignmentMode::Strict
        ));
        assert!(aligned("example.com", "example.com", AlignmentMode::Strict));
        assert!(!aligned(
            "other.co.uk",
            "example.co.uk",
            AlignmentMode::Relaxed
        ));
        assert!(aligned(
            "a.example.co.uk",
            "b.example.co.uk",
            AlignmentMode::Relaxed
        ));
        assert!(!aligned("", "example.com", AlignmentMode::Relaxed));
    }

    #[test]
    fn every_auth_result_counts_not_only_the_first() {
        let r = Record {
            dkim: vec![
                DkimAuth {
                    domain: "esp.example.net".into(),
                    result: DkimResult::Pass,
                    ..Default::default()
                },
                DkimAuth {
                    domain: "Example.COM.".into(),
                    result: DkimResult::Pass,
                    ..Default::default()
                },
            ],
            spf: vec![SpfAuth {
                domain: "bounces.example.com".into(),
                result: SpfResult::SoftFail,
                scope: None,
            }],
            ..Default::default()
        };
        let e = evaluate(
            &r,
            "example.com",
            AlignmentMode::Relaxed,
            AlignmentMode::Relaxed,
        );
        assert!(e.dkim_aligned && !e.spf_aligned && e.dmarc_pass());
        let strict = evaluate(
            &r,
            "mail.example.com",
            AlignmentMode::Strict,
            AlignmentMode::Strict,
        );
        assert!(!strict.dmarc_pass());
    }
}
