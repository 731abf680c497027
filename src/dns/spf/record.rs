//! The SPF record itself (RFC 7208 sections 4.6 to 6): recognising a `v=spf1` TXT string,
//! parsing it into [`SpfRecord`] (directives with their qualifiers and mechanisms, the
//! `redirect` and `exp` modifiers), and the [`SyntaxError`] a receiver would turn into a
//! permerror. Pure: no DNS, no evaluation; the walk over a domain's records is in
//! [`eval`](super::eval).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Records longer than this are not parsed (hostile answers).
const MAX_RECORD_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Qualifier::Pass => "pass",
            Qualifier::Fail => "fail",
            Qualifier::SoftFail => "softfail",
            Qualifier::Neutral => "neutral",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A {
        domain: Option<String>,
        v4: u8,
        v6: u8,
    },
    Mx {
        domain: Option<String>,
        v4: u8,
        v6: u8,
    },
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

impl Mechanism {
    /// Whether evaluating it queries DNS (and so counts against the limit of 10).
    pub fn queries_dns(&self) -> bool {
        !matches!(
            self,
            Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfRecord {
    pub directives: Vec<Directive>,
    pub redirect: Option<String>,
    pub exp: Option<String>,
    /// Modifiers this implementation doesn't know (allowed by the RFC, ignored).
    pub unknown_modifiers: Vec<String>,
}

impl SpfRecord {
    /// The qualifier of the `all` mechanism, if the record has one.
    pub fn all(&self) -> Option<Qualifier> {
        self.directives
            .iter()
            .find(|d| d.mechanism == Mechanism::All)
            .map(|d| d.qualifier)
    }
}

/// Why a record is not valid SPF; each is a permerror at a receiver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("the record does not start with \"v=spf1\"")]
    NotSpf,
    #[error("unknown mechanism {0:?}")]
    UnknownMechanism(String),
    #[error("{term:?}: {why}")]
    BadTerm { term: String, why: &'static str },
    #[error("modifier {0:?} appears more than once")]
    DuplicateModifier(&'static str),
    #[error("the record is longer than {MAX_RECORD_LEN} characters")]
    TooLong,
}

/// Does this TXT string announce an SPF record? (`v=spf1` followed by a space or the end.)
pub fn is_spf(txt: &str) -> bool {
    let b = txt.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"v=spf1") && (b.len() == 6 || b[6] == b' ')
}

/// Parses a whole `v=spf1 ...` record.
pub fn parse(txt: &str) -> Result<SpfRecord, SyntaxError> {
    if txt.len() > MAX_RECORD_LEN {
        return Err(SyntaxError::TooLong);
    }
    if !is_spf(txt) {
        return Err(SyntaxError::NotSpf);
    }
    let mut rec = SpfRecord::default();
    for term in txt[6..].split(' ').filter(|t| !t.is_empty()) {
        parse_term(term, &mut rec)?;
    }
    Ok(rec)
}

fn bad(term: &str, why: &'static str) -> SyntaxError {
    SyntaxError::BadTerm {
        term: term.chars().take(100).collect(),
        why,
    }
}

fn parse_term(term: &str, rec: &mut SpfRecord) -> Result<(), SyntaxError> {
    // A modifier is name=value where name starts with a letter and has no ':' or '/' before '='.
    if let Some((name, value)) = term.split_once('=')
        && !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        let lname = name.to_ascii_lowercase();
        match lname.as_str() {
            "redirect" | "exp" => {
                check_domain_spec(term, value)?;
                let slot = if lname == "redirect" {
                    &mut rec.redirect
                } else {
                    &mut rec.exp
                };
                if slot.is_some() {
                    return Err(SyntaxError::DuplicateModifier(if lname == "redirect" {
                        "redirect"
                    } else {
                        "exp"
                    }));
                }
                *slot = Some(value.to_ascii_lowercase());
            }
            _ => rec.unknown_modifiers.push(term.to_string()),
        }
        return Ok(());
    }
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    // Name, then ':' argument and/or '/' cidr.
    let name_end = rest.find([':', '/']).unwrap_or(rest.len());
    let name = rest[..name_end].to_ascii_lowercase();
    let tail = &rest[name_end..];
    let arg = tail.strip_prefix(':');
    let mechanism = match name.as_str() {
        "all" => {
            if !tail.is_empty() {
                return Err(bad(term, "\"all\" takes no argument"));
            }
            Mechanism::All
        }
        "include" | "exists" => {
            let d = arg.ok_or_else(|| bad(term, "needs a domain after ':'"))?;
            check_domain_spec(term, d)?;
            let d = d.to_ascii_lowercase();
            if name == "include" {
                Mechanism::Include(d)
            } else {
                Mechanism::Exists(d)
            }
        }
        "a" | "mx" => {
            let (domain, cidr) = match arg {
                Some(a) => match a.find('/') {
                    Some(i) => (Some(&a[..i]), &a[i..]),
                    None => (Some(a), ""),
                },
                None => (None, tail),
            };
            if !tail.is_empty() && arg.is_none() && !tail.starts_with('/') {
                return Err(bad(term, "unexpected characters after the mechanism"));
            }
            if let Some(d) = domain {
                check_domain_spec(term, d)?;
            }
            let (v4, v6) = dual_cidr(term, cidr)?;
            let domain = domain.map(str::to_ascii_lowercase);
            if name == "a" {
                Mechanism::A { domain, v4, v6 }
            } else {
                Mechanism::Mx { domain, v4, v6 }
            }
        }
        "ptr" => {
            if !tail.is_empty() && arg.is_none() {
                return Err(bad(term, "\"ptr\" takes no prefix length"));
            }
            if let Some(d) = arg {
                check_domain_spec(term, d)?;
            }
            Mechanism::Ptr(arg.map(str::to_ascii_lowercase))
        }
        "ip4" => {
            let a = arg.ok_or_else(|| bad(term, "needs an IPv4 address after ':'"))?;
            let (ip, len) = a.split_once('/').map_or((a, None), |(i, l)| (i, Some(l)));
            let ip: Ipv4Addr = ip.parse().map_err(|_| bad(term, "invalid IPv4 address"))?;
            let len = cidr_len(term, len, 32)?;
            Mechanism::Ip4(ip, len)
        }
        "ip6" => {
            let a = arg.ok_or_else(|| bad(term, "needs an IPv6 address after ':'"))?;
            let (ip, len) = match a.rfind('/') {
                Some(i) => (&a[..i], Some(&a[i + 1..])),
                None => (a, None),
            };
            let ip: Ipv6Addr = ip.parse().map_err(|_| bad(term, "invalid IPv6 address"))?;
            let len = cidr_len(term, len, 128)?;
            Mechanism::Ip6(ip, len)
        }
        _ => {
            return Err(SyntaxError::UnknownMechanism(
                term.chars().take(100).collect(),
            ));
        }
    };
    rec.directives.push(Directive {
        qualifier,
        mechanism,
    });
    Ok(())
}

fn cidr_len(term: &str, len: Option<&str>, max: u8) -> Result<u8, SyntaxError> {
    match len {
        None => Ok(max),
        Some(l) => {
            // No leading zeros, digits only, within range.
            if l.is_empty() || l.len() > 3 || (l.len() > 1 && l.starts_with('0')) {
                return Err(bad(term, "invalid prefix length"));
            }
            match l.parse::<u8>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(bad(term, "prefix length out of range")),
            }
        }
    }
}

/// `/24`, `//64`, `/24//64` or nothing.
fn dual_cidr(term: &str, s: &str) -> Result<(u8, u8), SyntaxError> {
    if s.is_empty() {
        return Ok((32, 128));
    }
    let (v4, v6) = match s.split_once("//") {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let v4 = match v4.strip_prefix('/') {
        Some(l) => cidr_len(term, Some(l), 32)?,
        None if v4.is_empty() => 32,
        None => return Err(bad(term, "invalid prefix length")),
    };
    let v6 = match v6 {
        Some(l) => cidr_len(term, Some(l), 128)?,
        None => 128,
    };
    Ok((v4, v6))
}

/// A domain-spec: a macro string that, once expanded, is a domain name. Macros are accepted
/// here (they are valid SPF) and reported as unsupported when evaluated.
fn check_domain_spec(term: &str, d: &str) -> Result<(), SyntaxError> {
    if d.is_empty() {
        return Err(bad(term, "empty domain"));
    }
    if has_macro(d) {
        return Ok(());
    }
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.len() > 253
        || !d.contains('.')
        || d.split('.').any(|l| {
            l.is_empty()
                || l.len() > 63
                || !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
    {
        return Err(bad(term, "not a valid domain name"));
    }
    Ok(())
}

pub fn has_macro(s: &str) -> bool {
    s.contains('%')
}
