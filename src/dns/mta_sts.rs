//! MTA-STS (RFC 8461): the `_mta-sts.<domain>` TXT record (`v=STSv1; id=...`), the policy
//! fetched over HTTPS from `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and whether every
//! MX of the domain matches one of the policy's `mx` patterns.
//!
//! The policy host is resolved through the same configured nameservers as every other query.
//! The HTTPS fetch is hyper's HTTP/1.1 client connection over tokio-rustls: the certificate is
//! verified against the web PKI plus the domain's optional `mta_sts_ca_file`, redirects are not
//! followed (the RFC forbids it), the body is capped at 64 KiB and the whole fetch at a timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::http_client::{self, HttpError, Target};

use crate::dns::tags;
use crate::resolver::{Lookup, RType, txt_records};

/// RFC 8461 section 3.2: policies larger than this may be refused; we refuse them.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// RFC 8461 section 3.2: max_age of at most one year.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        Enforce = "enforce",
        Testing = "testing",
        None = "none",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    pub mode: Mode,
    pub max_age: u64,
    pub mx: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("line {0:?} is not \"key: value\"")]
    NotAPair(String),
    #[error("version must be STSv1, got {0:?}")]
    Version(String),
    #[error("no version: STSv1 line")]
    NoVersion,
    #[error("mode {0:?}: expected enforce, testing or none")]
    Mode(String),
    #[error("no mode line")]
    NoMode,
    #[error("max_age {0:?}: expected seconds from 0 to {MAX_AGE_LIMIT}")]
    MaxAge(String),
    #[error("no max_age line")]
    NoMaxAge,
    #[error("mode {0} needs at least one mx line")]
    NoMx(&'static str),
    #[error("{0:?} appears more than once")]
    Duplicate(&'static str),
}

/// Parses a policy file (lines `key: value`, CRLF or LF).
pub fn parse_policy(text: &str) -> Result<StsPolicy, PolicyError> {
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| PolicyError::NotAPair(tags::short(line)))?;
        let v = v.trim();
        match k.trim() {
            "version" if version.replace(v).is_some() => {
                return Err(PolicyError::Duplicate("version"));
            }
            "version" => {}
            "mode" => {
                let m = match v {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    _ => return Err(PolicyError::Mode(tags::short(v))),
                };
                if mode.replace(m).is_some() {
                    return Err(PolicyError::Duplicate("mode"));
                }
            }
            "max_age" => {
                let a = v
                    .parse::<u64>()
                    .ok()
                    .filter(|a| *a <= MAX_AGE_LIMIT && v.len() <= 10)
                    .ok_or_else(|| PolicyError::MaxAge(tags::short(v)))?;
                if max_age.replace(a).is_some() {
                    return Err(PolicyError::Duplicate("max_age"));
                }
            }
            "mx" => mx.push(v.to_ascii_lowercase().trim_end_matches('.').to_string()),
            // Extensions are ignored (section 3.2).
            _ => {}
        }
    }
    match version {
        None => return Err(PolicyError::NoVersion),
        Some("STSv1") => {}
        Some(v) => return Err(PolicyError::Version(tags::short(v))),
    }
    let mode = mode.ok_or(PolicyError::NoMode)?;
    let max_age = max_age.ok_or(PolicyError::NoMaxAge)?;
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError::NoMx(mode.as_str()));
    }
    Ok(StsPolicy { mode, max_age, mx })
}

/// Does MX host `host` match policy pattern `pattern` (`*.` matches exactly one label)?
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => host == pattern,
    }
}

/// Is this TXT string an MTA-STS record?
pub fn is_sts(txt: &str) -> bool {
    txt.split(';')
        .next()
        .and_then(|f| f.split_once('='))
        .is_some_and(|(n, v)| n.trim() == "v" && v.trim() == "STSv1")
}

/// The `id` of an MTA-STS TXT record.
pub fn parse_txt(txt: &str) -> Result<String, String> {
    let t = tags::parse(txt).map_err(|e| e.to_string())?;
    if t.first().map(|(n, v)| (n.as_str(), v.as_str())) != Some(("v", "STSv1")) {
        return Err("the record must start with v=STSv1".into());
    }
    let id = tags::get(&t, "id").ok_or("no id= tag")?;
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "id={:?}: expected 1-32 letters and digits",
            tags::short(id)
        ));
    }
    Ok(id.to_string())
}

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        NoRecord = "no_record",
        MultipleRecords = "multiple_records",
        Syntax = "syntax",
        PolicyFetch = "policy_fetch",
        Certificate = "certificate",
        PolicySyntax = "policy_syntax",
        MxMismatch = "mx_mismatch",
        DnsError = "dns_error",
    }
}

/// Where and how to fetch the policy.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub port: u16,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            port: 443,
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StsReport {
    pub record: Option<String>,
    pub id: Option<String>,
    pub policy: Option<StsPolicy>,
    /// The policy text, for change detection.
    pub policy_text: Option<String>,
    /// MX hosts that match no pattern.
    pub unmatched_mx: Vec<String>,
    /// Every MX host compared with the policy and whether it matched; `None` when no policy in
    /// testing or enforce mode was compared (no record, mode none, or the policy is unknown).
    pub mx_compared: Option<Vec<(String, bool)>>,
    pub problem: Option<(Reason, String)>,
}

/// Checks the record and policy of `domain`; `mx_hosts` are the domain's MX exchanges.
pub async fn check(
    dns: &dyn Lookup,
    domain: &str,
    mx_hosts: &[String],
    opts: &FetchOptions,
) -> StsReport {
    let mut rep = StsReport::default();
    let name = format!("_mta-sts.{domain}");
    let recs = match txt_records(dns, &name, is_sts).await {
        Ok(r) => r,
        Err(e) => {
            rep.problem = Some((Reason::DnsError, e.to_string()));
            return rep;
        }
    };
    match recs.len() {
        0 => {
            rep.problem = Some((Reason::NoRecord, format!("no MTA-STS record at {name}")));
            return rep;
        }
        1 => {}
        n => {
            rep.problem = Some((
                Reason::MultipleRecords,
                format!("{name} has {n} MTA-STS records; senders then ignore MTA-STS"),
            ));
            return rep;
        }
    }
    let text = recs.into_iter().next().unwrap_or_default();
    match parse_txt(&text) {
        Ok(id) => rep.id = Some(id),
        Err(e) => {
            rep.record = Some(text);
            rep.problem = Some((Reason::Syntax, format!("{name}: {e}")));
            return rep;
        }
    }
    rep.record = Some(text);
    let host = format!("mta-sts.{domain}");
    let body = match tokio::time::timeout(opts.timeout, fetch(dns, &host, opts)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            rep.problem = Some(e);
            return rep;
        }
        Err(_) => {
            rep.problem = Some((
                Reason::PolicyFetch,
                format!(
                    "https://{host}/.well-known/mta-sts.txt: no answer within {:?}",
                    opts.timeout
                ),
            ));
            return rep;
        }
    };
    let policy = match parse_policy(&body) {
        Ok(p) => p,
        Err(e) => {
            rep.policy_text = Some(body);
            rep.problem = Some((Reason::PolicySyntax, format!("policy of {domain}: {e}")));
            return rep;
        }
    };
    rep.policy_text = Some(body);
    if policy.mode != Mode::None {
        rep.mx_compared = Some(
            mx_hosts
                .iter()
                .map(|h| (h.clone(), policy.mx.iter().any(|p| mx_matches(p, h))))
                .collect(),
        );
        rep.unmatched_mx = mx_hosts
            .iter()
            .filter(|h| !policy.mx.iter().any(|p| mx_matches(p, h)))
            .cloned()
            .collect();
        if !rep.unmatched_mx.is_empty() {
            rep.problem = Some((
                Reason::MxMismatch,
                format!(
                    "MX {} of {domain} match no mx pattern of the MTA-STS policy ({}); senders in enforce mode will not deliver to them",
                    rep.unmatched_mx.join(", "),
                    policy.mx.join(", ")
                ),
            ));
        }
    }
    rep.policy = Some(policy);
    rep
}

type FetchError = (Reason, String);

/// GET the policy: resolve, connect, TLS, HTTP/1.1, status 200, capped body.
async fn fetch(dns: &dyn Lookup, host: &str, opts: &FetchOptions) -> Result<String, FetchError> {
    let url = format!("https://{host}/.well-known/mta-sts.txt");
    let fetch_err = |m: String| (Reason::PolicyFetch, format!("{url}: {m}"));
    let mut addrs: Vec<IpAddr> = Vec::new();
    for t in [RType::A, RType::Aaaa] {
        match dns.lookup(host, t).await {
            Ok(a) => addrs.extend(a.ips()),
            Err(e) if e.is_void() => {}
            Err(e) => return Err((Reason::DnsError, e.to_string())),
        }
    }
    let Some(ip) = addrs.first() else {
        return Err(fetch_err(format!("{host} has no A or AAAA record")));
    };
    let target = Target {
        https: true,
        host: host.to_string(),
        port: opts.port,
        path: "/.well-known/mta-sts.txt".into(),
    };
    let (status, body) = http_client::send(http_client::Request {
        method: hyper::Method::GET,
        target: &target,
        addr: SocketAddr::new(*ip, opts.port),
        headers: Vec::new(),
        body: Vec::new(),
        ca_file: opts.ca_file.clone(),
        timeout: opts.timeout,
        max_body: MAX_POLICY_BYTES,
    })
    .await
    .map_err(|e| match e {
        HttpError::Tls {
            reason,
            certificate: true,
        } => (Reason::Certificate, format!("{url}: {reason}")),
        HttpError::TooLarge(n) => fetch_err(format!("the policy is larger than {n} bytes")),
        other => fetch_err(other.to_string()),
    })?;
    if status != 200 {
        return Err(fetch_err(format!(
            "HTTP status {status} (must be 200; redirects are not followed)"
        )));
    }
    String::from_utf8(body).map_err(|_| {
        (
            Reason::PolicySyntax,
            format!("{url}: the policy is not UTF-8 text"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert_eq!(p.mx, vec!["mx1.example.com", "*.example.net"]);
        let n = parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").unwrap();
        assert_eq!(n.mode, Mode::None);
        for (text, want) in [
            ("mode: enforce\nmx: a.b\nmax_age: 1", "no version"),
            (
                "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1",
                "STSv1",
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1",
                "expected enforce",
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 1",
                "needs at least one mx",
            ),
            (
                "version: STSv1\nmode: testing\nmx: a.b\nmax_age: 99999999999",
                "max_age",
            ),
            ("version: STSv1\nmode: testing\nmx: a.b", "no max_age"),
            ("version: STSv1\ngarbage", "not \"key: value\""),
            (
                "version: STSv1\nmode: none\nmode: none\nmax_age: 1",
                "more than once",
            ),
        ] {
            let e = parse_policy(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn mx_patterns() {
        assert!(mx_matches("mx.example.com", "MX.example.com."));
        assert!(mx_matches("*.example.com", "mx1.example.com"));
        assert!(
            !mx_matches("*.example.com", "a.b.example.com"),
            "one label only"
        );
        assert!(!mx_matches("*.example.com", "example.com"));
        assert!(!mx_matches("mx.example.com", "mx.example.net"));
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_txt("v=STSv1; id=20240101T000000"),
            Ok("20240101T000000".into())
        );
        assert!(parse_txt("v=STSv1;").unwrap_err().contains("no id"));
        assert!(
            parse_txt("v=STSv1; id=a-b")
                .unwrap_err()
                .contains("letters and digits")
        );
        assert!(is_sts("v=STSv1; id=1"));
        assert!(!is_sts("v=STSv10; id=1"));
    }
}
