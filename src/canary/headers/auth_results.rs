//! The receiver's authentication verdicts: `Authentication-Results` (RFC 8601), with
//! `Received-SPF` (RFC 7208 §9.1) as the SPF fallback and `ARC-Authentication-Results`
//! (RFC 8617) as the ARC fallback.
//!
//! Which header to trust: the topmost one whose authserv-id is the seed's configured one, or
//! the topmost one when none is configured. A receiver may split its verdicts over several
//! headers with its own authserv-id (one milter for DKIM, one for DMARC), and RFC 8601 §5
//! obliges it to remove such headers arriving from outside, so every header with the chosen
//! authserv-id is read; a method is taken from the topmost header that has it, so one
//! receiver stamping twice is not counted twice.

use super::MAX_VALUE_LEN;
use super::block::HeaderBlock;
use super::lexer::{Kind, Lexer};
use crate::canary::text::truncate;

/// More resinfos than this in one header are ignored (a real one has under ten).
pub const MAX_RESULTS: usize = 64;
/// More properties than this on one resinfo are ignored.
pub const MAX_PROPERTIES: usize = 16;
/// Longer method names are not methods.
const MAX_METHOD_LEN: usize = 32;
/// Headers of one kind looked at, from the top; a real message has a handful.
const MAX_HEADERS: usize = 100;

/// An authentication method. Unknown ones (`iprev`, `auth`, `bimi`, Microsoft's `compauth`,
/// ...) keep their lower-cased name, at most 32 characters of `a-z0-9-_.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Spf,
    Dkim,
    Dmarc,
    Arc,
    Other(String),
}

impl Method {
    fn parse(name: &str) -> Option<Method> {
        let name = name.to_ascii_lowercase();
        let ok = !name.is_empty()
            && name.len() <= MAX_METHOD_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return None;
        }
        Some(match name.as_str() {
            "spf" => Method::Spf,
            "dkim" => Method::Dkim,
            "dmarc" => Method::Dmarc,
            "arc" => Method::Arc,
            _ => Method::Other(name),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Spf => "spf",
            Method::Dkim => "dkim",
            Method::Dmarc => "dmarc",
            Method::Arc => "arc",
            Method::Other(name) => name,
        }
    }
}

/// A result keyword of the RFC 8601 registry; anything else is `Other`. The legacy SPF
/// `hardfail` (RFC 5451) reads as `Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
    Policy,
    Other,
}

impl AuthResult {
    pub fn parse(word: &str) -> AuthResult {
        match word.to_ascii_lowercase().as_str() {
            "pass" => AuthResult::Pass,
            "fail" | "hardfail" => AuthResult::Fail,
            "softfail" => AuthResult::SoftFail,
            "neutral" => AuthResult::Neutral,
            "none" => AuthResult::None,
            "temperror" => AuthResult::TempError,
            "permerror" => AuthResult::PermError,
            "policy" => AuthResult::Policy,
            _ => AuthResult::Other,
        }
    }

    /// The label value: one of a fixed set.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
            AuthResult::Other => "other",
        }
    }
}

/// Which header a result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    AuthenticationResults,
    ReceivedSpf,
    ArcAuthenticationResults,
}

/// A `ptype.property=value`, the key lower-cased (`smtp.mailfrom`, `header.d`, `policy.dmarc`;
/// Microsoft's bare `action` is kept too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// One verdict: `method=result reason=... ptype.property=value ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResInfo {
    pub method: Method,
    pub result: AuthResult,
    pub reason: Option<String>,
    pub properties: Vec<Property>,
    pub origin: Origin,
}

impl ResInfo {
    /// The value of property `key` (`header.d`, case-insensitive).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
            .map(|p| p.value.as_str())
    }
}

/// One `Authentication-Results` header, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResultsHeader {
    /// `None` when the header has none (Microsoft 365 starts with `spf=` directly).
    pub authserv_id: Option<String>,
    /// In header order; several `dkim` entries when several signatures were checked.
    pub results: Vec<ResInfo>,
}

/// The verdicts the seed's receiver gave a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthVerdicts {
    /// The authserv-id of the trusted headers.
    pub authserv_id: Option<String>,
    /// How many `Authentication-Results` headers were trusted; 0 when none had the expected
    /// authserv-id (or there were none).
    pub trusted_headers: usize,
    /// Every result, top header first; SPF from `Received-SPF` and ARC from
    /// `ARC-Authentication-Results` when the trusted headers have none.
    pub results: Vec<ResInfo>,
}

impl AuthVerdicts {
    /// The results for one method (several for DKIM).
    pub fn of<'s>(&'s self, method: &'s Method) -> impl Iterator<Item = &'s ResInfo> + 's {
        self.results.iter().filter(move |r| r.method == *method)
    }
}

/// Parses one `Authentication-Results` value (without the field name).
pub fn parse_authentication_results(value: &str) -> AuthResultsHeader {
    parse_payload(&mut Lexer::new(value), Origin::AuthenticationResults)
}

/// Parses one `ARC-Authentication-Results` value: its instance (`i=`, 1 to 50) and the
/// `Authentication-Results` payload that follows.
pub fn parse_arc_authentication_results(value: &str) -> Option<(u32, AuthResultsHeader)> {
    let mut lx = Lexer::new(value);
    let tag = word(lx.next()?.kind)?;
    if !tag.eq_ignore_ascii_case("i") || lx.next()?.kind != Kind::Eq {
        return None;
    }
    let instance: u32 = word(lx.next()?.kind)?.parse().ok()?;
    if !(1..=50).contains(&instance) || lx.next()?.kind != Kind::Semi {
        return None;
    }
    Some((
        instance,
        parse_payload(&mut lx, Origin::ArcAuthenticationResults),
    ))
}

/// Parses one `Received-SPF` value: `result (comment) key=value; key=value ...`. The
/// `envelope-from` and `helo` keys are reported as `smtp.mailfrom` and `smtp.helo`, the
/// others under their own names (`client-ip`, `receiver`, ...).
pub fn parse_received_spf(value: &str) -> Option<ResInfo> {
    let mut lx = Lexer::new(value);
    let result = AuthResult::parse(word(lx.next()?.kind)?);
    let mut properties = Vec::new();
    while lx.peek().is_some() {
        if lx.peek_kind() == Some(&Kind::Semi) {
            lx.next();
            continue;
        }
        let Some((key, value)) = key_value(&mut lx) else {
            continue;
        };
        let key = match key.as_str() {
            "envelope-from" => "smtp.mailfrom".to_string(),
            "helo" => "smtp.helo".to_string(),
            _ => key,
        };
        if properties.len() < MAX_PROPERTIES {
            properties.push(Property { key, value });
        }
    }
    Some(ResInfo {
        method: Method::Spf,
        result,
        reason: None,
        properties,
        origin: Origin::ReceivedSpf,
    })
}

/// Chooses and merges the trusted verdicts of a header block (see the module doc).
pub(crate) fn verdicts(block: &HeaderBlock<'_>, expected_id: Option<&str>) -> AuthVerdicts {
    let mut out = AuthVerdicts::default();
    let headers = block
        .all("Authentication-Results")
        .take(MAX_HEADERS)
        .map(|f| parse_authentication_results(&f.text()));
    for h in headers {
        let trusted = match expected_id {
            Some(want) => same_id(h.authserv_id.as_deref(), want),
            None if out.trusted_headers == 0 => true,
            None => out
                .authserv_id
                .as_deref()
                .is_some_and(|chosen| same_id(h.authserv_id.as_deref(), chosen)),
        };
        if !trusted {
            continue;
        }
        if out.trusted_headers == 0 {
            out.authserv_id = h.authserv_id.clone();
        }
        out.trusted_headers += 1;
        let seen = distinct_methods(&out.results);
        let room = MAX_RESULTS.saturating_sub(out.results.len());
        out.results.extend(
            h.results
                .into_iter()
                .filter(|r| !seen.contains(&r.method))
                .take(room),
        );
    }
    // The fallbacks fill in within MAX_RESULTS too.
    if !out.results.iter().any(|r| r.method == Method::Spf)
        && out.results.len() < MAX_RESULTS
        && let Some(spf) = block
            .text("Received-SPF")
            .and_then(|v| parse_received_spf(&v))
    {
        out.results.push(spf);
    }
    if !out.results.iter().any(|r| r.method == Method::Arc) {
        let want = expected_id.or(out.authserv_id.as_deref());
        let room = MAX_RESULTS.saturating_sub(out.results.len());
        out.results
            .extend(arc_fallback(block, want).into_iter().take(room));
    }
    out
}

/// The `arc` results of the highest-instance `ARC-Authentication-Results` with the wanted
/// authserv-id (any when there is none to want).
fn arc_fallback(block: &HeaderBlock<'_>, want: Option<&str>) -> Vec<ResInfo> {
    block
        .all("ARC-Authentication-Results")
        .take(MAX_HEADERS)
        .filter_map(|f| parse_arc_authentication_results(&f.text()))
        .filter(|(_, h)| want.is_none_or(|w| same_id(h.authserv_id.as_deref(), w)))
        .max_by_key(|(instance, _)| *instance)
        .map(|(_, h)| {
            h.results
                .into_iter()
                .filter(|r| r.method == Method::Arc)
                .collect()
        })
        .unwrap_or_default()
}

fn distinct_methods(results: &[ResInfo]) -> Vec<Method> {
    let mut v: Vec<Method> = Vec::new();
    for r in results {
        if !v.contains(&r.method) {
            v.push(r.method.clone());
        }
    }
    v
}

/// authserv-ids compare case-insensitively, a trailing dot ignored.
fn same_id(id: Option<&str>, want: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    id.is_some_and(|id| norm(id) == norm(want))
}

/// `authserv-id [version] ( ";" "none" / 1*( ";" resinfo ) )`, tolerantly: a header without
/// the authserv-id, `none`, empty resinfos and garbage up to the next `;` are all read.
fn parse_payload(lx: &mut Lexer<'_>, origin: Origin) -> AuthResultsHeader {
    let mut h = AuthResultsHeader::default();
    // The authserv-id, unless the header starts right away with `method=`.
    let mut probe = lx.clone();
    let id = value(&mut probe);
    if probe.peek_kind() != Some(&Kind::Eq) {
        h.authserv_id = id;
        *lx = probe;
        // An optional version, then anything up to the first `;`, is ignored.
        lx.skip_past_semi();
    }
    while lx.peek().is_some() && h.results.len() < MAX_RESULTS {
        if lx.peek_kind() == Some(&Kind::Semi) {
            lx.next();
            continue;
        }
        // `none` (no result) has no `=` and is skipped with the other stray words.
        match resinfo(lx, origin) {
            Some(r) => h.results.push(r),
            None => lx.skip_past_semi(),
        }
    }
    h
}

/// `method[/version]=result [reason=value] [ptype.property=value ...]` up to the next `;`.
fn resinfo(lx: &mut Lexer<'_>, origin: Origin) -> Option<ResInfo> {
    let (method_spec, result) = key_value(lx)?;
    let (name, version) = method_spec
        .split_once('/')
        .unwrap_or((method_spec.as_str(), "1"));
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let method = Method::parse(name)?;
    let mut r = ResInfo {
        method,
        result: AuthResult::parse(&result),
        reason: None,
        properties: Vec::new(),
        origin,
    };
    while !matches!(lx.peek_kind(), Some(Kind::Semi) | None) {
        let Some((key, value)) = key_value(lx) else {
            continue;
        };
        if key == "reason" {
            r.reason.get_or_insert(value);
        } else if r.properties.len() < MAX_PROPERTIES {
            r.properties.push(Property { key, value });
        }
    }
    Some(r)
}

/// `key [CFWS] = value`, the key lower-cased with CFWS around its `.` and `/` dropped.
/// Returns `None` (having consumed the stray token) when no `=` follows a key; stops before
/// a `;`.
fn key_value(lx: &mut Lexer<'_>) -> Option<(String, String)> {
    let mut key = String::new();
    loop {
        match lx.peek_kind() {
            None | Some(Kind::Semi) => return None,
            Some(Kind::Eq) => {
                lx.next();
                break;
            }
            _ => {}
        }
        let t = lx.next()?;
        let part = match &t.kind {
            Kind::Word(w) => *w,
            Kind::Quoted(q) => q.as_str(),
            _ => "",
        };
        let joins = t.glued || key.ends_with(['.', '/']) || part.starts_with(['.', '/']);
        if !joins {
            // The words before were stray (not followed by `=`): start over.
            key.clear();
        }
        if key.len() + part.len() <= MAX_VALUE_LEN {
            key.push_str(part);
        }
    }
    if key.is_empty() {
        return None;
    }
    let value = value(lx).unwrap_or_default();
    Some((key.to_ascii_lowercase(), value))
}

/// A value: a word or quoted string and the words and quoted strings glued to it
/// (`"a b"@example.com`), cut at [`MAX_VALUE_LEN`].
fn value(lx: &mut Lexer<'_>) -> Option<String> {
    let mut out = String::new();
    let mut any = false;
    loop {
        let part = match lx.peek() {
            Some(t) if any && !t.glued => break,
            Some(t) => match &t.kind {
                Kind::Word(w) => (*w).to_string(),
                Kind::Quoted(q) => q.clone(),
                _ => break,
            },
            None => break,
        };
        lx.next();
        any = true;
        if out.len() < MAX_VALUE_LEN {
            out.push_str(&part);
        }
    }
    any.then(|| truncate(&out, MAX_VALUE_LEN).to_string())
}

fn word(k: Kind<'_>) -> Option<&str> {
    match k {
        Kind::Word(w) => Some(w),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
