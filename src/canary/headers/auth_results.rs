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
mod tests {
    use super::*;

    /// (method, result) pairs, for short assertions.
    fn pairs(results: &[ResInfo]) -> Vec<(&str, &str)> {
        results
            .iter()
            .map(|r| (r.method.as_str(), r.result.as_str()))
            .collect()
    }

    #[test]
    fn rfc8601_examples() {
        // RFC 8601 Appendix B.2, B.3 and B.4, shortened.
        let none = parse_authentication_results("example.org 1; none");
        assert_eq!(none.authserv_id.as_deref(), Some("example.org"));
        assert!(none.results.is_empty());

        let h = parse_authentication_results("example.com; spf=pass smtp.mailfrom=example.net");
        assert_eq!(pairs(&h.results), [("spf", "pass")]);
        assert_eq!(h.results[0].property("smtp.mailfrom"), Some("example.net"));

        let h = parse_authentication_results(
            "example.com;\r\n\t  auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n\t  spf=pass smtp.mailfrom=example.net",
        );
        assert_eq!(pairs(&h.results), [("auth", "pass"), ("spf", "pass")]);
        assert_eq!(h.results[0].method, Method::Other("auth".into()));
        assert_eq!(
            h.results[0].property("smtp.auth"),
            Some("sender@example.net")
        );
    }

    #[test]
    fn comments_quotes_versions_and_odd_spacing() {
        let h = parse_authentication_results(
            "(leading comment) \"mx.example.org\" (between) 1 ; \
             dkim/1 (sig one) = pass (ok) reason=\"good; signature\" header.d=example.com header . s = sel1 header.i=\"first last\"@example.com header.b=\"AbCd/+12\"; \
             DKIM=FAIL reason=bad header.d=esp.example header.s=(c)s2 ;; \
             dmarc=pass (p=reject) policy.published-domain-policy=reject header.from=example.com",
        );
        assert_eq!(h.authserv_id.as_deref(), Some("mx.example.org"));
        assert_eq!(
            pairs(&h.results),
            [("dkim", "pass"), ("dkim", "fail"), ("dmarc", "pass")]
        );
        let first = &h.results[0];
        assert_eq!(first.reason.as_deref(), Some("good; signature"));
        assert_eq!(first.property("header.d"), Some("example.com"));
        assert_eq!(first.property("header.s"), Some("sel1"));
        assert_eq!(first.property("HEADER.I"), Some("first last@example.com"));
        assert_eq!(first.property("header.b"), Some("AbCd/+12"));
        assert_eq!(h.results[1].reason.as_deref(), Some("bad"));
        assert_eq!(h.results[1].property("header.s"), Some("s2"));
        assert_eq!(
            h.results[2].property("policy.published-domain-policy"),
            Some("reject")
        );
    }

    #[test]
    fn microsoft_form_without_authserv_id() {
        let h = parse_authentication_results(
            "spf=pass (sender IP is 40.107.22.100) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100",
        );
        assert_eq!(h.authserv_id, None);
        assert_eq!(
            pairs(&h.results),
            [
                ("spf", "pass"),
                ("dkim", "pass"),
                ("dmarc", "pass"),
                ("compauth", "pass")
            ]
        );
        assert_eq!(h.results[2].property("action"), Some("none"));
        assert_eq!(h.results[3].reason.as_deref(), Some("100"));
    }

    #[test]
    fn result_keywords() {
        let h = parse_authentication_results(
            "mx; spf=softfail; spf=hardfail; spf=neutral; spf=none; spf=temperror; spf=permerror; dkim=policy; dmarc=bestguesspass; arc=PASS",
        );
        assert_eq!(
            pairs(&h.results),
            [
                ("spf", "softfail"),
                ("spf", "fail"),
                ("spf", "neutral"),
                ("spf", "none"),
                ("spf", "temperror"),
                ("spf", "permerror"),
                ("dkim", "policy"),
                ("dmarc", "other"),
                ("arc", "pass"),
            ]
        );
    }

    #[test]
    fn garbage_is_skipped_up_to_the_next_semicolon() {
        let h = parse_authentication_results(
            "mx; this is not = a; =pass; spf; dkim=; very/long/method/name/that/is/far/too/long/to/be/a/method=pass; spf=pass",
        );
        // `this is not = a` reads as method `not` (stray words dropped), result `a`.
        assert_eq!(
            pairs(&h.results),
            [("not", "other"), ("dkim", "other"), ("spf", "pass")]
        );
        assert_eq!(
            parse_authentication_results(""),
            AuthResultsHeader::default()
        );
        assert_eq!(
            parse_authentication_results(";;;"),
            AuthResultsHeader::default()
        );
    }

    #[test]
    fn received_spf() {
        let r = parse_received_spf(
            "Pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender)\r\n receiver=mybox.example.org; client-ip=192.0.2.1;\r\n envelope-from=\"myname@example.com\"; helo=foo.example.com;",
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.result), ("spf", AuthResult::Pass));
        assert_eq!(r.origin, Origin::ReceivedSpf);
        assert_eq!(r.property("smtp.mailfrom"), Some("myname@example.com"));
        assert_eq!(r.property("smtp.helo"), Some("foo.example.com"));
        assert_eq!(r.property("client-ip"), Some("192.0.2.1"));
        assert_eq!(r.property("receiver"), Some("mybox.example.org"));
        assert_eq!(
            parse_received_spf("softfail").map(|r| r.result),
            Some(AuthResult::SoftFail)
        );
        assert_eq!(parse_received_spf(""), None);
        assert_eq!(parse_received_spf("; pass"), None);
    }

    #[test]
    fn arc_authentication_results() {
        let (i, h) = parse_arc_authentication_results(
            "i=2; mx.google.com; dkim=pass header.i=@example.org; arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org)",
        )
        .unwrap();
        assert_eq!(i, 2);
        assert_eq!(h.authserv_id.as_deref(), Some("mx.google.com"));
        assert_eq!(pairs(&h.results), [("dkim", "pass"), ("arc", "pass")]);
        assert_eq!(h.results[1].origin, Origin::ArcAuthenticationResults);
        for bad in [
            "i=0; mx; arc=pass",
            "i=51; mx; arc=pass",
            "mx; arc=pass",
            "i=x;",
            "i=1",
        ] {
            assert_eq!(parse_arc_authentication_results(bad), None, "{bad}");
        }
    }

    fn block_verdicts(raw: &str, expected: Option<&str>) -> AuthVerdicts {
        verdicts(&HeaderBlock::parse(raw.as_bytes()), expected)
    }

    #[test]
    fn trusts_the_expected_authserv_id_or_the_topmost() {
        let raw = "Authentication-Results: internal.relay; spf=fail smtp.mailfrom=x\r\n\
                   Authentication-Results: MX.Seed.Test.; spf=pass smtp.mailfrom=canary@dx.test\r\n\
                   Authentication-Results: forged.example; dkim=pass\r\n\r\n";
        let v = block_verdicts(raw, Some("mx.seed.test"));
        assert_eq!(v.authserv_id.as_deref(), Some("MX.Seed.Test."));
        assert_eq!(v.trusted_headers, 1);
        assert_eq!(pairs(&v.results), [("spf", "pass")]);

        let top = block_verdicts(raw, None);
        assert_eq!(top.authserv_id.as_deref(), Some("internal.relay"));
        assert_eq!(pairs(&top.results), [("spf", "fail")]);

        let none = block_verdicts(raw, Some("elsewhere.example"));
        assert_eq!(none, AuthVerdicts::default());
    }

    #[test]
    fn merges_split_headers_of_one_receiver_once_per_method() {
        let raw = "Authentication-Results: mx.example; dmarc=pass header.from=example.com\r\n\
                   Authentication-Results: other.example; spf=fail\r\n\
                   Authentication-Results: mx.example; dkim=pass header.d=example.com; dkim=pass header.d=esp.example\r\n\
                   Authentication-Results: mx.example; dmarc=fail; spf=pass\r\n\r\n";
        for expected in [None, Some("mx.example")] {
            let v = block_verdicts(raw, expected);
            assert_eq!(v.trusted_headers, 3, "{expected:?}");
            assert_eq!(
                pairs(&v.results),
                [
                    ("dmarc", "pass"),
                    ("dkim", "pass"),
                    ("dkim", "pass"),
                    ("spf", "pass")
                ],
                "{expected:?}"
            );
        }
    }

    #[test]
    fn received_spf_and_arc_fill_in_what_is_missing() {
        let raw = "ARC-Authentication-Results: i=2; mx.example; arc=fail\r\n\
                   ARC-Authentication-Results: i=3; mx.example; arc=pass; spf=fail\r\n\
                   ARC-Authentication-Results: i=4; forwarder.example; arc=none\r\n\
                   Received-SPF: softfail (mx.example: transitioning domain) client-ip=192.0.2.1;\r\n\
                   Received-SPF: pass (older hop)\r\n\
                   Authentication-Results: mx.example; dkim=pass header.d=example.com\r\n\r\n";
        let v = block_verdicts(raw, Some("mx.example"));
        assert_eq!(
            pairs(&v.results),
            [("dkim", "pass"), ("spf", "softfail"), ("arc", "pass")]
        );
        let origins: Vec<Origin> = v.results.iter().map(|r| r.origin).collect();
        assert_eq!(
            origins,
            [
                Origin::AuthenticationResults,
                Origin::ReceivedSpf,
                Origin::ArcAuthenticationResults
            ]
        );

        let own = "Authentication-Results: mx.example; spf=pass; arc=none\r\n\
                   Received-SPF: fail\r\n\
                   ARC-Authentication-Results: i=1; mx.example; arc=pass\r\n\r\n";
        let v = block_verdicts(own, None);
        assert_eq!(pairs(&v.results), [("spf", "pass"), ("arc", "none")]);

        let only_fallbacks = block_verdicts(
            "Received-SPF: neutral\r\nARC-Authentication-Results: i=1; anyone.example; arc=fail\r\n",
            None,
        );
        assert_eq!(only_fallbacks.trusted_headers, 0);
        assert_eq!(
            pairs(&only_fallbacks.results),
            [("spf", "neutral"), ("arc", "fail")]
        );
    }

    #[test]
    fn results_are_bounded() {
        let many = format!("mx{}", "; dkim=pass".repeat(1000));
        assert_eq!(
            parse_authentication_results(&many).results.len(),
            MAX_RESULTS
        );
        let props = format!("mx; dkim=pass{}", " a.b=c".repeat(1000));
        let h = parse_authentication_results(&props);
        assert_eq!(h.results[0].properties.len(), MAX_PROPERTIES);
        let long = format!("mx; dkim=pass header.d={}", "a".repeat(10_000));
        let h = parse_authentication_results(&long);
        assert_eq!(
            h.results[0].property("header.d").map(str::len),
            Some(MAX_VALUE_LEN)
        );
        let id = format!("{}; spf=pass", "é".repeat(10_000));
        let h = parse_authentication_results(&id);
        assert!(h.authserv_id.is_some_and(|id| id.len() <= MAX_VALUE_LEN));
        let distinct: String = (0..200).map(|i| format!("; m{i}=pass")).collect();
        let raw = format!(
            "Authentication-Results: mx{distinct}\r\nAuthentication-Results: mx{distinct}\r\n"
        );
        assert_eq!(block_verdicts(&raw, None).results.len(), MAX_RESULTS);
    }

    #[test]
    fn fallbacks_stay_within_max_results() {
        // Found by the canary_headers fuzz target: 64 results, then Received-SPF pushed a 65th
        // (and the ARC fallback could add 64 more).
        let full: String = (0..MAX_RESULTS).map(|i| format!("; m{i}=pass")).collect();
        let arcs = "; arc=pass".repeat(MAX_RESULTS);
        let raw = format!(
            "Authentication-Results: mx{full}\r\nReceived-SPF: pass\r\n\
             ARC-Authentication-Results: i=1; mx{arcs}\r\n\r\n"
        );
        let v = block_verdicts(&raw, None);
        assert_eq!(v.results.len(), MAX_RESULTS);
        assert!(
            v.results
                .iter()
                .all(|r| r.origin == Origin::AuthenticationResults)
        );
        let minimized = "Authentication-Results:d=;c=;a=;c=;c=;r=;.=;v=;i=;a=;c=;C=;a=;c=;d=;\
            c=;e=;a=;c=;a=;m=;c=;r=;a=;.=;a=;c=;r=;r=;a=;c=;a=;1=;a=;c=;c=;c=;d=;v=;i=;a=;c=;C=;a=;\
            c=;d=;d=;e=;a=;c=;c=;m=;c=;m=;a=;4=;a=;c=;r=;a=;a=;i=;a=;c=\nReceived-SPF:s";
        assert!(block_verdicts(minimized, None).results.len() <= MAX_RESULTS);
    }
}
