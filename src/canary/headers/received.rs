//! The `Received:` chain (RFC 5321 §4.4): each hop's `from` host and connecting IP, `by`
//! host, `with` protocol, `id` and date, top (the last hop, the receiver's) first. The IP is
//! the first bracketed address in the `from` clause (`from helo (rdns [IP])`, Exim's
//! `from [IP]`, `[IPv6:...]`), else the first bare address there (Microsoft's
//! `from host (2603:10a6:...)`, qmail's `(1.2.3.4)`). Private and test addresses are kept:
//! [`is_public`] and [`sending_ip`] are for callers that want the provider's public address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::MAX_VALUE_LEN;
use super::block::HeaderBlock;
use crate::canary::date::parse_date;
use crate::canary::text::truncate;

/// More hops than this are ignored (Postfix bounces a message after 50).
pub const MAX_HOPS: usize = 100;

/// One `Received:` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// The host name after `from`, lower-cased.
    pub from_host: Option<String>,
    /// The address the hop's sender connected from.
    pub ip: Option<IpAddr>,
    /// The host name after `by`, lower-cased: who added the header.
    pub by_host: Option<String>,
    /// The protocol after `with` (`ESMTPS`, `LMTP`, `SMTP`).
    pub with: Option<String>,
    /// The queue id after `id`.
    pub id: Option<String>,
    /// The date after the last `;`, in Unix seconds.
    pub date: Option<i64>,
    /// The TLS version the hop's comments name (Postfix `(using TLSv1.3 with cipher ...)`,
    /// Gmail's and Microsoft's `(version=TLS1_3, ...)`, Exim's `(TLS1.3)`), as `TLSv1.3`.
    pub tls: Option<String>,
}

/// `with` protocols that say the hop was encrypted (RFC 3848: the `S` of ESMTPS).
const TLS_PROTOCOLS: [&str; 6] = [
    "ESMTPS",
    "ESMTPSA",
    "UTF8SMTPS",
    "UTF8SMTPSA",
    "LMTPS",
    "LMTPSA",
];

impl Hop {
    /// Whether the client authenticated (RFC 3848 `ESMTPA`, `ESMTPSA`, ...): a submission.
    pub fn authenticated(&self) -> bool {
        self.with.as_deref().is_some_and(|w| {
            let w = w.to_ascii_uppercase();
            w.ends_with("SMTPA") || w.ends_with("SMTPSA") || w == "LMTPA" || w == "LMTPSA"
        })
    }

    /// Whether the hop was encrypted: a `with` protocol of RFC 3848 that says so, or a TLS
    /// version in its comments (Microsoft writes `with Microsoft SMTP Server (version=TLS1_3`).
    pub fn encrypted(&self) -> bool {
        self.tls.is_some()
            || self
                .with
                .as_deref()
                .is_some_and(|w| TLS_PROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(w)))
    }
}

/// The first TLS version named in a `Received:` value: `TLS` (any case), an optional `v`
/// and `1.N` or `1_N`, as `TLSv1.N`.
pub fn tls_version(value: &str) -> Option<String> {
    let b = value.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i..i + 3].eq_ignore_ascii_case(b"TLS") {
            let mut j = i + 3;
            if j < b.len() && (b[j] == b'v' || b[j] == b'V') {
                j += 1;
            }
            if j + 3 <= b.len()
                && b[j] == b'1'
                && (b[j + 1] == b'.' || b[j + 1] == b'_')
                && b[j + 2].is_ascii_digit()
                && b.get(j + 3).is_none_or(|c| !c.is_ascii_digit())
            {
                return Some(format!("TLSv1.{}", b[j + 2] as char));
            }
        }
        i += 1;
    }
    None
}

/// Parses one `Received:` value.
pub fn parse_received(value: &str) -> Hop {
    let items = items(value);
    let last_semi = items.iter().rposition(|i| matches!(i, Item::Semi(_)));
    let mut hop = Hop {
        date: last_semi.and_then(|i| match items[i] {
            Item::Semi(at) => parse_date(value.get(at + 1..).unwrap_or("")),
            _ => None,
        }),
        tls: tls_version(value),
        ..Hop::default()
    };
    let clauses = &items[..last_semi.unwrap_or(items.len())];
    let mut clause = Clause::None;
    let mut from_texts: Vec<&str> = Vec::new();
    for item in clauses {
        let (text, is_word) = match *item {
            Item::Word(w) => (w, true),
            Item::Comment(c) => (c, false),
            Item::Semi(_) => continue,
        };
        if is_word && let Some(c) = Clause::named(text) {
            clause = c;
            continue;
        }
        if clause == Clause::From {
            from_texts.push(text);
        }
        let slot = match clause {
            Clause::From => &mut hop.from_host,
            Clause::By => &mut hop.by_host,
            Clause::With => &mut hop.with,
            Clause::Id => &mut hop.id,
            _ => continue,
        };
        if is_word && slot.is_none() {
            let v = truncate(text, MAX_VALUE_LEN).trim_end_matches('.');
            *slot = Some(match clause {
                Clause::From | Clause::By => v.to_ascii_lowercase(),
                _ => v.to_string(),
            });
        }
    }
    hop.ip = bracketed_ip(&from_texts).or_else(|| bare_ip(&from_texts));
    hop
}

/// Every hop in the block, top first.
pub(crate) fn hops(block: &HeaderBlock<'_>) -> Vec<Hop> {
    block
        .all("Received")
        .take(MAX_HOPS)
        .map(|f| parse_received(&f.text()))
        .collect()
}

/// Whether `ip` is a public unicast address: not unspecified, private (RFC 1918, unique
/// local), shared (RFC 6598), loopback, link-local, documentation (RFC 5737, RFC 3849,
/// RFC 9637), benchmarking, multicast, broadcast or reserved. IPv4-mapped IPv6 addresses
/// are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Global unicast is 2000::/3.
    let global = (s[0] & 0xe000) == 0x2000;
    let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xfff0) == 0x3ff0;
    let benchmarking = s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0;
    global && !documentation && !benchmarking
}

/// The public address that delivered the message into the receiver.
///
/// `authserv_host` is the receiver's name (its authserv-id, e.g. `mx.google.com`); its
/// domain is that name without the first label when it has three or more (`google.com`).
/// The receiver's hops are the run of hops, from the first one whose `by` host is in that
/// domain, that stay in it; the answer is the public IP of the lowest of them that has one,
/// the hop where the message came in from outside. When no hop names the receiver (or no
/// name is given), it is the topmost public IP of the chain.
pub fn sending_ip(hops: &[Hop], authserv_host: Option<&str>) -> Option<IpAddr> {
    let public = |h: &Hop| h.ip.filter(|ip| is_public(*ip));
    match receiver_run(hops, authserv_host) {
        Some(run) => run.iter().rev().find_map(public),
        None => hops.iter().find_map(public),
    }
}

/// The hops the receiver added (see [`sending_ip`]), top first; `None` when no hop names it.
fn receiver_run<'h>(hops: &'h [Hop], authserv_host: Option<&str>) -> Option<&'h [Hop]> {
    let domain = receiver_domain(authserv_host?);
    let ours = |h: &Hop| {
        h.by_host.as_ref().is_some_and(|by| {
            *by == domain
                || by
                    .strip_suffix(domain.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
    };
    let first = hops.iter().position(ours)?;
    let len = hops[first..].iter().take_while(|h| ours(h)).count();
    Some(&hops[first..first + len])
}

/// The hop where the message entered the receiver: the hop from the address the receiver
/// checked SPF for (`client_ip`, from `Received-SPF`), else the lowest hop with an address
/// in the receiver's run (as [`sending_ip`], private addresses included) that is not an
/// authenticated submission (`ESMTPSA`: the sender's own submission server, when it shares
/// the receiver's name). Its protocol says
/// whether the provider delivered over TLS; its address is the one receivers look up in
/// reverse DNS.
pub fn receiving_hop<'h>(
    hops: &'h [Hop],
    authserv_host: Option<&str>,
    client_ip: Option<IpAddr>,
) -> Option<&'h Hop> {
    if let Some(ip) = client_ip
        && let Some(h) = hops.iter().find(|h| h.ip == Some(ip))
    {
        return Some(h);
    }
    receiver_run(hops, authserv_host)?
        .iter()
        .rev()
        .find(|h| h.ip.is_some() && !h.authenticated())
}

fn receiver_domain(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match host.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest.to_string(),
        _ => host,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    None,
    From,
    By,
    Via,
    With,
    Id,
    For,
}

impl Clause {
    fn named(word: &str) -> Option<Clause> {
        const NAMES: [(&str, Clause); 6] = [
            ("from", Clause::From),
            ("by", Clause::By),
            ("via", Clause::Via),
            ("with", Clause::With),
            ("id", Clause::Id),
            ("for", Clause::For),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(word))
            .map(|&(_, c)| c)
    }
}

/// A piece of a `Received:` value outside comments, or a whole (outermost) comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item<'a> {
    Word(&'a str),
    Comment(&'a str),
    /// A `;` outside comments, at this byte offset.
    Semi(usize),
}

/// Splits a value into words, outermost comments and `;`s in one pass; an unclosed comment
/// runs to the end.
fn items(v: &str) -> Vec<Item<'_>> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        match b[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b')' => i += 1,
            b';' => {
                out.push(Item::Semi(i));
                i += 1;
            }
            b'(' => {
                let mut depth = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        b'\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                let end = i.min(b.len());
                out.push(Item::Comment(v.get(start + 1..end).unwrap_or("")));
            }
            _ => {
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';')
                {
                    i += 1;
                }
                out.push(Item::Word(v.get(start..i).unwrap_or("")));
            }
        }
    }
    out
}

/// The first `[address]` (with an optional `IPv6:` tag) in the texts.
fn bracketed_ip(texts: &[&str]) -> Option<IpAddr> {
    texts.iter().find_map(|t| {
        t.split('[')
            .skip(1)
            .find_map(|rest| ip_literal(rest.split(']').next().unwrap_or("")))
    })
}

/// The first piece of the texts that is an address on its own.
fn bare_ip(texts: &[&str]) -> Option<IpAddr> {
    texts.iter().find_map(|t| {
        t.split(|c: char| c.is_whitespace() || "()[],;=\"<>".contains(c))
            .find_map(ip_literal)
    })
}

fn ip_literal(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = match s.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => &s[5..],
        _ => s,
    };
    // An address is at most 45 characters; longer pieces are not parsed at all.
    (s.len() <= 45).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests;
