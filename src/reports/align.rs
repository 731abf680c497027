//! DMARC alignment as a receiver evaluates it (RFC 7489 section 3.1, RFC 9990 section 4.4):
//! a record passes DMARC when a DKIM signature or the SPF check passed for a domain aligned
//! with the RFC 5322 From domain.
//!
//! Strict alignment is an exact match. Relaxed alignment compares organizational domains,
//! which receivers find with the Public Suffix List (or RFC 9990's DNS tree walk). The
//! exporter carries no copy of the list: [`organizational_domain`] knows the generic rule (one
//! label below the top-level domain) plus a built-in table of the multi-label public suffixes
//! that mail commonly comes from (`co.uk`, `com.au`, `co.jp`, `gob.mx`, ...). For a domain
//! under a suffix missing from the table the result can be one label too short, which makes
//! two unrelated registrations under that suffix look aligned; for the exporter's purpose,
//! counting a receiver's verdict on the owner's own mail, that only matters for suffixes the
//! owner does not use.

use super::model::{AlignmentMode, DkimResult, Record, SpfResult};

/// Multi-label public suffixes (the ICANN section of the Public Suffix List that mail comes
/// from, and a few private ones shared by unrelated senders), lower-case.
#[rustfmt::skip]
const MULTI_LABEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "sch.uk", "ac.uk", "gov.uk",
    "nhs.uk", "police.uk", "com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
    "co.nz", "net.nz", "org.nz", "govt.nz", "ac.nz", "school.nz", "geek.nz", "co.jp", "ne.jp",
    "or.jp", "ac.jp", "go.jp", "gr.jp", "ad.jp", "ed.jp", "lg.jp", "co.kr", "or.kr", "ne.kr",
    "go.kr", "ac.kr", "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "com.hk", "net.hk",
    "org.hk", "edu.hk", "gov.hk", "com.tw", "net.tw", "org.tw", "edu.tw", "gov.tw", "com.sg",
    "net.sg", "org.sg", "edu.sg", "gov.sg", "com.my", "net.my", "org.my", "edu.my", "gov.my",
    "co.id", "or.id", "ac.id", "go.id", "web.id", "co.in", "net.in", "org.in", "firm.in", "gen.in",
    "ind.in", "ac.in", "edu.in", "gov.in", "nic.in", "res.in", "com.pk", "net.pk", "org.pk",
    "com.ph", "net.ph", "org.ph", "co.th", "in.th", "or.th", "ac.th", "go.th", "com.vn", "net.vn",
    "org.vn", "co.il", "org.il", "net.il", "ac.il", "gov.il", "com.tr", "net.tr", "org.tr",
    "gen.tr", "edu.tr", "gov.tr", "com.sa", "net.sa", "org.sa", "com.eg", "ae.org", "co.ae",
    "net.ae", "org.ae", "gov.ae", "com.br", "net.br", "org.br", "gov.br", "edu.br", "art.br",
    "blog.br", "com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx", "com.ar", "net.ar", "org.ar",
    "gob.ar", "gov.ar", "com.co", "net.co", "org.co", "gov.co", "edu.co", "com.pe", "net.pe",
    "org.pe", "gob.pe", "cl.cl", "com.ec", "com.uy", "com.ve", "co.ve", "com.bo", "com.py",
    "com.do", "com.gt", "com.pa", "co.cr", "fin.ec", "co.za", "org.za", "net.za", "gov.za",
    "ac.za", "web.za", "co.ke", "or.ke", "ac.ke", "go.ke", "com.ng", "org.ng", "gov.ng", "edu.ng",
    "co.tz", "co.ug", "co.zw", "com.gh", "com.ma", "co.ma", "co.at", "or.at", "gv.at", "ac.at",
    "com.pl", "net.pl", "org.pl", "gov.pl", "edu.pl", "com.es", "org.es", "nom.es", "gob.es",
    "edu.es", "com.pt", "org.pt", "gov.pt", "com.gr", "org.gr", "gov.gr", "com.cy", "com.mt",
    "co.hu", "com.ua", "org.ua", "net.ua", "gov.ua", "com.ru", "org.ru", "net.ru", "msk.ru",
    "spb.ru", "co.rs", "org.rs", "com.hr", "co.it", "gov.it", "asso.fr", "gouv.fr", "com.fr",
    "co.no", "priv.no", "co.je", "co.gg", "co.im", "k12.ca.us", "fed.us", "dni.us", "isa.us",
    "nsn.us", "amazonses.com", "sendgrid.net", "mailgun.org", "herokuapp.com", "github.io",
    "onmicrosoft.com", "blogspot.com", "appspot.com", "azurewebsites.net", "cloudapp.net",
];

/// Normalises a domain for storing: trimmed, lower-case, without a trailing dot.
pub fn normalize_domain(d: &str) -> String {
    trim_domain(d).to_ascii_lowercase()
}

/// Trimmed and without a trailing dot, case kept (for comparisons without allocating).
fn trim_domain(d: &str) -> &str {
    let d = d.trim();
    d.strip_suffix('.').unwrap_or(d)
}

fn suffixes() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| MULTI_LABEL_SUFFIXES.iter().copied().collect())
}

/// Whether `s` (any case) is in the table of multi-label public suffixes.
fn is_multi_label_suffix(s: &str) -> bool {
    let mut buf = [0u8; 64];
    if s.len() > buf.len() {
        return false;
    }
    let lower = &mut buf[..s.len()];
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    std::str::from_utf8(lower).is_ok_and(|l| suffixes().contains(l))
}

/// The organizational domain of `domain` (trimmed, any case): the public suffix plus one
/// label. A bare public suffix or single label is its own organizational domain.
pub fn organizational_domain(domain: &str) -> &str {
    let domain = trim_domain(domain);
    // Start offsets of the last four labels, last first.
    let mut starts = [0usize; 4];
    let mut n = 0;
    let mut end = domain.len();
    while n < 4 {
        match domain[..end].rfind('.') {
            Some(i) => {
                starts[n] = i + 1;
                n += 1;
                end = i;
            }
            None => {
                starts[n] = 0;
                n += 1;
                break;
            }
        }
    }
    // starts[k] is where the suffix of k+1 labels begins; n labels exist (up to 4).
    if n <= 2 {
        return domain;
    }
    for suffix_labels in [3usize, 2] {
        if n > suffix_labels && is_multi_label_suffix(&domain[starts[suffix_labels - 1]..]) {
            return &domain[starts[suffix_labels]..];
        }
        if n == suffix_labels && starts[suffix_labels - 1] == 0 && is_multi_label_suffix(domain) {
            return domain;
        }
    }
    &domain[starts[1]..]
}

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
