//! SPF (RFC 7208): parsing a `v=spf1` record, walking it the way a receiver would, and
//! `check_host()` for one IP.
//!
//! [`parse`] turns a record into [`SpfRecord`] with a named [`SyntaxError`] for anything a
//! receiver would call a permerror. [`analyze`] walks the whole tree of a domain (every
//! include and redirect, as if no mechanism matched) and counts what the RFC limits: terms that
//! query DNS (10), void lookups (2) and MX hosts per `mx` (10); it also finds include loops and
//! reports the final `all` qualifier. [`check_host`] evaluates one IP with the same limits and
//! returns pass/fail/... like a receiver. Macros (`%{i}` and friends) are not expanded: a term
//! using one is reported as unsupported, never guessed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::resolver::{Lookup, LookupError, RType};
use crate::schedule::BoxFuture;

/// The RFC 7208 limits.
pub const MAX_LOOKUPS: u32 = 10;
pub const MAX_VOID_LOOKUPS: u32 = 2;
pub const MAX_MX_HOSTS: usize = 10;
/// The analysis keeps counting past the limit to report the real number, up to here.
const HARD_STOP_LOOKUPS: u32 = 60;
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
    fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
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

/// The result of `check_host()` (RFC 7208 section 2.6), plus `Unsupported` for records this
/// implementation can't evaluate (macros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError(String),
    PermError(String),
    Unsupported(String),
}

impl SpfResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError(_) => "temperror",
            SpfResult::PermError(_) => "permerror",
            SpfResult::Unsupported(_) => "unsupported",
        }
    }
    pub const ALL: [&'static str; 8] = [
        "none",
        "neutral",
        "pass",
        "fail",
        "softfail",
        "temperror",
        "permerror",
        "unsupported",
    ];
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpfResult::TempError(m) | SpfResult::PermError(m) | SpfResult::Unsupported(m) => {
                write!(f, "{}: {m}", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// What is wrong with a domain's SPF, as a fixed reason (a metric label) and a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NoRecord,
    MultipleRecords,
    Syntax,
    LookupLimit,
    VoidLimit,
    MxLimit,
    IncludeLoop,
    IncludeMissing,
    UnsupportedMacro,
    PassAll,
    DnsError,
    IpNotPermitted,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::NoRecord,
        Reason::MultipleRecords,
        Reason::Syntax,
        Reason::LookupLimit,
        Reason::VoidLimit,
        Reason::MxLimit,
        Reason::IncludeLoop,
        Reason::IncludeMissing,
        Reason::UnsupportedMacro,
        Reason::PassAll,
        Reason::DnsError,
        Reason::IpNotPermitted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoRecord => "no_record",
            Reason::MultipleRecords => "multiple_records",
            Reason::Syntax => "syntax",
            Reason::LookupLimit => "lookup_limit",
            Reason::VoidLimit => "void_limit",
            Reason::MxLimit => "mx_limit",
            Reason::IncludeLoop => "include_loop",
            Reason::IncludeMissing => "include_missing",
            Reason::UnsupportedMacro => "unsupported_macro",
            Reason::PassAll => "pass_all",
            Reason::DnsError => "dns_error",
            Reason::IpNotPermitted => "ip_not_permitted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub message: String,
}

/// The analysis of a domain's whole SPF tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfReport {
    /// The domain's own record, as published (for change detection).
    pub record: Option<String>,
    /// DNS-querying terms counted through every include and redirect.
    pub lookups: u32,
    pub void_lookups: u32,
    /// The `all` that ends evaluation: the domain's own, or its redirect target's.
    pub all: Option<Qualifier>,
    pub problems: Vec<Problem>,
}

impl SpfReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Fetching a domain's one SPF record.
enum Fetched {
    Record(String, SpfRecord),
    None,
    Err(SpfResult, Reason),
}

async fn fetch(dns: &dyn Lookup, domain: &str) -> (Fetched, Option<LookupError>) {
    match dns.lookup(domain, RType::Txt).await {
        Ok(ans) => {
            let spf: Vec<String> = ans.txts().into_iter().filter(|t| is_spf(t)).collect();
            match spf.len() {
                0 => (Fetched::None, None),
                1 => {
                    let text = spf.into_iter().next().unwrap_or_default();
                    match parse(&text) {
                        Ok(r) => (Fetched::Record(text, r), None),
                        Err(e) => (
                            Fetched::Err(
                                SpfResult::PermError(format!("{domain}: {e}")),
                                Reason::Syntax,
                            ),
                            None,
                        ),
                    }
                }
                n => (
                    Fetched::Err(
                        SpfResult::PermError(format!(
                            "{domain} publishes {n} SPF records; exactly one is allowed"
                        )),
                        Reason::MultipleRecords,
                    ),
                    None,
                ),
            }
        }
        Err(e) if e.is_void() => (Fetched::None, Some(e)),
        Err(e) => (
            Fetched::Err(SpfResult::TempError(e.to_string()), Reason::DnsError),
            Some(e),
        ),
    }
}

/// The evaluation state shared by [`analyze`] and [`check_host`].
struct Eval<'a> {
    dns: &'a dyn Lookup,
    /// `None`: analysis (nothing matches, everything is walked and counted).
    ip: Option<IpAddr>,
    lookups: u32,
    voids: u32,
    /// Domains being evaluated, outermost first (include/redirect chain), for loop detection.
    chain: Vec<String>,
    problems: Vec<Problem>,
    top_all: Option<Qualifier>,
    top_record: Option<String>,
}

impl Eval<'_> {
    fn problem(&mut self, reason: Reason, message: String) {
        if !self.problems.iter().any(|p| p.message == message) {
            self.problems.push(Problem { reason, message });
        }
    }

    fn analysis(&self) -> bool {
        self.ip.is_none()
    }

    /// Counts a DNS-querying term; `Err` when evaluation must stop.
    fn count_lookup(&mut self, term: &str) -> Result<(), SpfResult> {
        self.lookups += 1;
        if self.lookups == MAX_LOOKUPS + 1 {
            let m = format!(
                "more than {MAX_LOOKUPS} DNS-querying terms (the 11th is {term:?} in {}); receivers return permerror",
                self.chain.last().map(String::as_str).unwrap_or("?")
            );
            self.problem(Reason::LookupLimit, m.clone());
            if !self.analysis() {
                return Err(SpfResult::PermError(m));
            }
        }
        if self.lookups > HARD_STOP_LOOKUPS {
            return Err(SpfResult::PermError(format!(
                "walk stopped after {HARD_STOP_LOOKUPS} lookups"
            )));
        }
        Ok(())
    }

    fn count_void(&mut self, what: &str) -> Result<(), SpfResult> {
        self.voids += 1;
        if self.voids == MAX_VOID_LOOKUPS + 1 {
            let m = format!(
                "more than {MAX_VOID_LOOKUPS} void lookups (NXDOMAIN or no data; the 3rd is {what}); receivers return permerror"
            );
            self.problem(Reason::VoidLimit, m.clone());
            if !self.analysis() {
                return Err(SpfResult::PermError(m));
            }
        }
        Ok(())
    }

    /// A lookup made by a mechanism; voids are counted, other errors are temperrors.
    async fn query(
        &mut self,
        name: &str,
        t: RType,
    ) -> Result<Vec<crate::dns::resolver::Rr>, SpfResult> {
        match self.dns.lookup(name, t).await {
            Ok(a) => Ok(a.records),
            Err(e) if e.is_void() => Ok(Vec::new()),
            Err(e) => {
                self.problem(Reason::DnsError, e.to_string());
                Err(SpfResult::TempError(e.to_string()))
            }
        }
    }

    /// Address lookup for `a`/`mx`: A for IPv4 senders, AAAA for IPv6; both in analysis.
    async fn addresses(&mut self, host: &str) -> Result<Vec<IpAddr>, SpfResult> {
        let types: &[RType] = match self.ip {
            Some(IpAddr::V4(_)) => &[RType::A],
            Some(IpAddr::V6(_)) => &[RType::Aaaa],
            None => &[RType::A, RType::Aaaa],
        };
        let mut out = Vec::new();
        for t in types {
            for r in self.query(host, *t).await? {
                match r {
                    crate::dns::resolver::Rr::A(a) => out.push(IpAddr::V4(a)),
                    crate::dns::resolver::Rr::Aaaa(a) => out.push(IpAddr::V6(a)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// Evaluates `domain`'s record. `track_all`: this record's `all` is the one that ends the
    /// top-level evaluation (the domain itself, or a redirect target of it).
    fn eval<'s>(&'s mut self, domain: String, track_all: bool) -> BoxFuture<'s, SpfResult> {
        Box::pin(async move {
            let depth = self.chain.len();
            let (fetched, err) = fetch(self.dns, &domain).await;
            let rec = match fetched {
                Fetched::Record(text, r) => {
                    if depth == 0 {
                        self.top_record = Some(text);
                    }
                    r
                }
                Fetched::None => {
                    if depth == 0 {
                        self.problem(
                            Reason::NoRecord,
                            format!("{domain} publishes no SPF record"),
                        );
                    } else {
                        if err.is_some() {
                            // The include/redirect target does not exist: a void lookup.
                            if let Err(r) = self.count_void(&format!("{domain} (included)")) {
                                return r;
                            }
                        }
                        self.problem(
                            Reason::IncludeMissing,
                            format!(
                                "{domain} (included by {}) publishes no SPF record; receivers return permerror",
                                self.chain.last().map(String::as_str).unwrap_or("?")
                            ),
                        );
                    }
                    return SpfResult::None;
                }
                Fetched::Err(r, reason) => {
                    let msg = match &r {
                        SpfResult::TempError(m) | SpfResult::PermError(m) => m.clone(),
                        _ => String::new(),
                    };
                    self.problem(reason, msg);
                    return r;
                }
            };
            self.chain.push(domain.clone());
            let r = self.eval_record(&domain, &rec, track_all).await;
            self.chain.pop();
            r
        })
    }

    async fn eval_record(&mut self, domain: &str, rec: &SpfRecord, track_all: bool) -> SpfResult {
        if track_all && rec.all().is_some() {
            self.top_all = rec.all();
        }
        if track_all && rec.all() == Some(Qualifier::Pass) {
            self.problem(
                Reason::PassAll,
                format!("{domain} ends with +all: anyone may send mail as this domain"),
            );
        }
        for d in &rec.directives {
            match self.mechanism(domain, &d.mechanism).await {
                Ok(true) => return d.qualifier.result(),
                Ok(false) => {}
                Err(r) => {
                    if !self.analysis() {
                        return r;
                    }
                    if matches!(r, SpfResult::PermError(_)) && self.lookups > HARD_STOP_LOOKUPS {
                        return r;
                    }
                }
            }
        }
        if let Some(target) = &rec.redirect
            && rec.all().is_none()
        {
            if let Err(r) = self.count_lookup(&format!("redirect={target}")) {
                return r;
            }
            if has_macro(target) {
                return self.unsupported(domain, &format!("redirect={target}"));
            }
            if let Some(r) = self.loop_check(target) {
                return r;
            }
            return match self.eval(target.clone(), track_all).await {
                SpfResult::None => {
                    SpfResult::PermError(format!("redirect target {target} has no SPF record"))
                }
                r => r,
            };
        }
        SpfResult::Neutral
    }

    fn unsupported(&mut self, domain: &str, term: &str) -> SpfResult {
        let m = format!(
            "{domain}: {term:?} uses an SPF macro, which this exporter does not expand; the result for mail from this domain is not checked"
        );
        self.problem(Reason::UnsupportedMacro, m.clone());
        SpfResult::Unsupported(m)
    }

    fn loop_check(&mut self, target: &str) -> Option<SpfResult> {
        if self.chain.iter().any(|d| d == target) {
            let mut path = self.chain.clone();
            path.push(target.to_string());
            let m = format!("include loop: {}", path.join(" -> "));
            self.problem(Reason::IncludeLoop, m.clone());
            return Some(SpfResult::PermError(m));
        }
        None
    }

    /// Whether the mechanism matches. `Err` carries a result that stops evaluation.
    async fn mechanism(&mut self, domain: &str, m: &Mechanism) -> Result<bool, SpfResult> {
        let target = |d: &Option<String>| d.clone().unwrap_or_else(|| domain.to_string());
        match m {
            Mechanism::All => Ok(!self.analysis()),
            Mechanism::Ip4(net, len) => {
                Ok(matches!(self.ip, Some(IpAddr::V4(ip)) if in_v4(ip, *net, *len)))
            }
            Mechanism::Ip6(net, len) => {
                Ok(matches!(self.ip, Some(IpAddr::V6(ip)) if in_v6(ip, *net, *len)))
            }
            Mechanism::Include(t) => {
                self.count_lookup(&format!("include:{t}"))?;
                if has_macro(t) {
                    return Err(self.unsupported(domain, &format!("include:{t}")));
                }
                if let Some(r) = self.loop_check(t) {
                    return Err(r);
                }
                match self.eval(t.clone(), false).await {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::None => Err(SpfResult::PermError(format!(
                        "include:{t}: {t} has no SPF record"
                    ))),
                    r => Err(r),
                }
            }
            Mechanism::A { domain: d, v4, v6 } => {
                let t = target(d);
                self.count_lookup(&format!("a:{t}"))?;
                if has_macro(&t) {
                    return Err(self.unsupported(domain, &format!("a:{t}")));
                }
                let addrs = self.addresses(&t).await?;
                if addrs.is_empty() {
                    self.count_void(&format!("a:{t}"))?;
                }
                Ok(self
                    .ip
                    .is_some_and(|ip| addrs.iter().any(|a| cidr_match(ip, *a, *v4, *v6))))
            }
            Mechanism::Mx { domain: d, v4, v6 } => {
                let t = target(d);
                self.count_lookup(&format!("mx:{t}"))?;
                if has_macro(&t) {
                    return Err(self.unsupported(domain, &format!("mx:{t}")));
                }
                let mxs: Vec<String> = self
                    .query(&t, RType::Mx)
                    .await?
                    .into_iter()
                    .filter_map(|r| match r {
                        crate::dns::resolver::Rr::Mx { exchange, .. } => Some(exchange),
                        _ => None,
                    })
                    .collect();
                if mxs.is_empty() {
                    self.count_void(&format!("mx:{t}"))?;
                }
                if mxs.len() > MAX_MX_HOSTS {
                    let msg = format!(
                        "mx:{t} has {} MX hosts; more than {MAX_MX_HOSTS} is a permerror",
                        mxs.len()
                    );
                    self.problem(Reason::MxLimit, msg.clone());
                    return Err(SpfResult::PermError(msg));
                }
                let Some(ip) = self.ip else { return Ok(false) };
                for host in mxs.iter().filter(|h| !h.is_empty()) {
                    let addrs = self.addresses(host).await?;
                    if addrs.iter().any(|a| cidr_match(ip, *a, *v4, *v6)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Exists(t) => {
                self.count_lookup(&format!("exists:{t}"))?;
                if has_macro(t) {
                    return Err(self.unsupported(domain, &format!("exists:{t}")));
                }
                let found = !self.query(t, RType::A).await?.is_empty();
                if !found {
                    self.count_void(&format!("exists:{t}"))?;
                }
                Ok(found && !self.analysis())
            }
            Mechanism::Ptr(d) => {
                let t = target(d);
                self.count_lookup(&format!("ptr:{t}"))?;
                let Some(ip) = self.ip else { return Ok(false) };
                let zone = if ip.is_ipv4() {
                    "in-addr.arpa"
                } else {
                    "ip6.arpa"
                };
                let rev = crate::dns::dnsbl::reverse_name(ip, zone);
                let names: Vec<String> = self
                    .query(&rev, RType::Ptr)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| match r {
                        crate::dns::resolver::Rr::Ptr(n) => Some(n),
                        _ => None,
                    })
                    .take(MAX_MX_HOSTS)
                    .collect();
                for n in names {
                    if (n == t || n.ends_with(&format!(".{t}")))
                        && self.addresses(&n).await.unwrap_or_default().contains(&ip)
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - u32::from(len.min(32)));
    (u32::from(ip) & mask) == (u32::from(net) & mask)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(len.min(128)));
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn cidr_match(ip: IpAddr, addr: IpAddr, v4: u8, v6: u8) -> bool {
    match (ip, addr) {
        (IpAddr::V4(i), IpAddr::V4(a)) => in_v4(i, a, v4),
        (IpAddr::V6(i), IpAddr::V6(a)) => in_v6(i, a, v6),
        _ => false,
    }
}

fn new_eval(dns: &dyn Lookup, ip: Option<IpAddr>) -> Eval<'_> {
    Eval {
        dns,
        ip,
        lookups: 0,
        voids: 0,
        chain: Vec::new(),
        problems: Vec::new(),
        top_all: None,
        top_record: None,
    }
}

/// Walks the whole SPF tree of `domain` and reports counts, the final `all` and problems.
pub async fn analyze(dns: &dyn Lookup, domain: &str) -> SpfReport {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut e = new_eval(dns, None);
    let _ = e.eval(domain, true).await;
    SpfReport {
        record: e.top_record,
        lookups: e.lookups,
        void_lookups: e.voids,
        all: e.top_all,
        problems: e.problems,
    }
}

/// `check_host(ip, domain)`: the result a receiver computes for mail from `domain` sent by `ip`.
pub async fn check_host(dns: &dyn Lookup, ip: IpAddr, domain: &str) -> SpfResult {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let mut e = new_eval(dns, Some(ip));
    e.eval(domain, true).await
}

#[cfg(test)]
mod tests;
