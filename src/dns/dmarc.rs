//! DMARC policy records (RFC 7489, and the DNS tree walk of RFC 9989).
//!
//! [`parse`] reads a `v=DMARC1` record: p, sp, np, adkim, aspf, pct (legacy), rua, ruf, fo, t
//! and psd, naming the tag of any syntax error; unknown tags are returned as warnings (the RFC
//! says to ignore them). [`discover`] finds the record in effect for a domain: `_dmarc.<domain>`
//! first, then, when absent, the tree walk towards the root (a name of more than 7 labels is
//! first shortened to 7) up to and including the TLD; the organizational domain follows the
//! `psd=` rules of the walk, else it is the shortest name with a record. [`authorize`] checks
//! that an external report destination agreed to receive reports
//! (`<domain>._report._dmarc.<destination>`, RFC 7489 section 7.1).

use crate::dns::tags::{self, TagError};
use crate::resolver::{Lookup, RType};

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Policy {
        None = "none",
        Quarantine = "quarantine",
        Reject = "reject",
    }
}

impl Policy {
    fn parse(tag: &'static str, v: &str) -> Result<Policy, DmarcError> {
        match v.to_ascii_lowercase().as_str() {
            "none" => Ok(Policy::None),
            "quarantine" => Ok(Policy::Quarantine),
            "reject" => Ok(Policy::Reject),
            _ => Err(DmarcError::BadValue {
                tag,
                value: tags::short(v),
                expected: "none, quarantine or reject",
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// A parsed DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    pub np: Option<Policy>,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// Legacy (RFC 7489); 100 when absent.
    pub pct: u8,
    /// Report addresses (the `mailto:` part removed, size limits dropped).
    pub rua: Vec<String>,
    pub ruf: Vec<String>,
    pub fo: Vec<String>,
    /// `t=y` (RFC 9989): the policy is being tested.
    pub testing: bool,
    /// `psd=y|n|u`.
    pub psd: Option<char>,
    /// Unknown tags, ignored as the RFC requires.
    pub warnings: Vec<String>,
}

impl DmarcRecord {
    /// The policy for subdomains: sp, else p.
    pub fn subdomain_policy(&self) -> Option<Policy> {
        self.sp.or(self.p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    #[error("{0}")]
    Tags(#[from] TagError),
    #[error("the record must start with v=DMARC1")]
    Version,
    #[error("no p= tag (the policy)")]
    NoPolicy,
    #[error("{tag}={value:?}: expected {expected}")]
    BadValue {
        tag: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Is this TXT string a DMARC record (its first tag is `v=DMARC1`)?
pub fn is_dmarc(txt: &str) -> bool {
    let first = txt.split(';').next().unwrap_or("");
    first
        .split_once('=')
        .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("v") && v.trim() == "DMARC1")
}

fn alignment(tag: &'static str, v: &str) -> Result<Alignment, DmarcError> {
    match v.to_ascii_lowercase().as_str() {
        "r" => Ok(Alignment::Relaxed),
        "s" => Ok(Alignment::Strict),
        _ => Err(DmarcError::BadValue {
            tag,
            value: tags::short(v),
            expected: "r or s",
        }),
    }
}

fn uris(tag: &'static str, v: &str) -> Result<Vec<String>, DmarcError> {
    let mut out = Vec::new();
    for u in v.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let bad = || DmarcError::BadValue {
            tag,
            value: tags::short(u),
            expected: "a comma-separated list of mailto:user@domain URIs",
        };
        let addr = u
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("mailto:"))
            .map(|_| &u[7..])
            .ok_or_else(bad)?;
        // An optional size limit follows '!'.
        let addr = addr.split('!').next().unwrap_or(addr);
        let (local, domain) = addr.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || crate::config::check_host(domain).is_err() || !domain.contains('.') {
            return Err(bad());
        }
        out.push(format!("{local}@{}", domain.to_ascii_lowercase()));
    }
    Ok(out)
}

/// Parses a DMARC record.
pub fn parse(txt: &str) -> Result<DmarcRecord, DmarcError> {
    let t = tags::parse(txt)?;
    if t.first().map(|(n, v)| (n.as_str(), v.as_str())) != Some(("v", "DMARC1")) {
        return Err(DmarcError::Version);
    }
    let mut r = DmarcRecord {
        p: None,
        sp: None,
        np: None,
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        pct: 100,
        rua: Vec::new(),
        ruf: Vec::new(),
        fo: vec!["0".into()],
        testing: false,
        psd: None,
        warnings: Vec::new(),
    };
    for (name, v) in &t[1..] {
        match name.as_str() {
            "p" => r.p = Some(Policy::parse("p", v)?),
            "sp" => r.sp = Some(Policy::parse("sp", v)?),
            "np" => r.np = Some(Policy::parse("np", v)?),
            "adkim" => r.adkim = alignment("adkim", v)?,
            "aspf" => r.aspf = alignment("aspf", v)?,
            "pct" => {
                r.pct = v.parse::<u8>().ok().filter(|p| *p <= 100).ok_or_else(|| {
                    DmarcError::BadValue {
                        tag: "pct",
                        value: tags::short(v),
                        expected: "an integer 0-100",
                    }
                })?
            }
            "rua" => r.rua = uris("rua", v)?,
            "ruf" => r.ruf = uris("ruf", v)?,
            "fo" => {
                let fo: Vec<String> = v.split(':').map(|s| s.trim().to_string()).collect();
                if fo
                    .iter()
                    .any(|o| !matches!(o.as_str(), "0" | "1" | "d" | "s"))
                {
                    return Err(DmarcError::BadValue {
                        tag: "fo",
                        value: tags::short(v),
                        expected: "options 0, 1, d or s separated by ':'",
                    });
                }
                r.fo = fo;
            }
            "t" => {
                r.testing = match v.as_str() {
                    "y" => true,
                    "n" => false,
                    _ => {
                        return Err(DmarcError::BadValue {
                            tag: "t",
                            value: tags::short(v),
                            expected: "y or n",
                        });
                    }
                }
            }
            "psd" => {
                r.psd = match v.as_str() {
                    "y" => Some('y'),
                    "n" => Some('n'),
                    "u" => Some('u'),
                    _ => {
                        return Err(DmarcError::BadValue {
                            tag: "psd",
                            value: tags::short(v),
                            expected: "y, n or u",
                        });
                    }
                }
            }
            // Known RFC 7489 tags without a check of their own.
            "rf" | "ri" => {}
            "v" => return Err(DmarcError::Version),
            other => r.warnings.push(format!("unknown tag {other:?} ignored")),
        }
    }
    if r.p.is_none() {
        return Err(DmarcError::NoPolicy);
    }
    Ok(r)
}

crate::label_enum! {
    /// Why a domain's DMARC is not in order, as a fixed reason (metric label).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        NoRecord = "no_record",
        MultipleRecords = "multiple_records",
        Syntax = "syntax",
        UnauthorizedDestination = "unauthorized_destination",
        DnsError = "dns_error",
    }
}

/// The record in effect for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where the record was found: the domain itself, or an ancestor (tree walk).
    pub record_domain: String,
    pub text: String,
    pub record: DmarcRecord,
    /// The organizational domain (RFC 9989 section 4.10.2).
    pub org_domain: String,
}

impl Discovery {
    /// Found at an ancestor rather than at the domain itself.
    pub fn inherited(&self, domain: &str) -> bool {
        self.record_domain != domain
    }

    /// The policy applied to mail from `domain`: p at the domain itself, else the ancestor's
    /// sp (or p).
    pub fn policy_for(&self, domain: &str) -> Option<Policy> {
        if self.inherited(domain) {
            self.record.subdomain_policy()
        } else {
            self.record.p
        }
    }
}

/// The next name of the tree walk (RFC 9989 section 4.10.1): more than 7 labels are cut to 7,
/// else the leftmost label is removed. `None` after a single label.
pub fn walk_parent(domain: &str) -> Option<String> {
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.len() {
        0 | 1 => None,
        n if n > 8 => Some(labels[n - 7..].join(".")),
        n => Some(labels[1..n].join(".")),
    }
}

/// One level of the walk: the valid DMARC records at `_dmarc.<name>`.
async fn records_at(
    dns: &dyn Lookup,
    name: &str,
) -> Result<Vec<(String, Result<DmarcRecord, DmarcError>)>, String> {
    match dns.lookup(&format!("_dmarc.{name}"), RType::Txt).await {
        Ok(a) => Ok(a
            .txts()
            .into_iter()
            .filter(|t| is_dmarc(t))
            .map(|t| {
                let p = parse(&t);
                (t, p)
            })
            .collect()),
        Err(e) if e.is_void() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Finds the DMARC record in effect for `domain`. `Err` carries the reason and a message.
pub async fn discover(dns: &dyn Lookup, domain: &str) -> Result<Discovery, (Reason, String)> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut found: Option<Discovery> = None;
    // (name, psd) of every valid record seen, from the domain upwards.
    let mut seen: Vec<(String, Option<char>)> = Vec::new();
    let mut name = Some(domain.clone());
    while let Some(n) = name {
        let recs = match records_at(dns, &n).await {
            Ok(r) => r,
            // Once a policy is found the rest only refines the organizational domain.
            Err(_) if found.is_some() => break,
            Err(e) => return Err((Reason::DnsError, e)),
        };
        match recs.len() {
            0 => {}
            1 if found.is_some() => {
                if let (_, Ok(r)) = &recs[0] {
                    seen.push((n.clone(), r.psd));
                }
            }
            1 => {
                let (text, parsed) = recs.into_iter().next().expect("one record");
                match parsed {
                    Ok(record) => {
                        seen.push((n.clone(), record.psd));
                        found = Some(Discovery {
                            record_domain: n.clone(),
                            text,
                            record,
                            org_domain: String::new(),
                        });
                    }
                    Err(e) => return Err((Reason::Syntax, format!("_dmarc.{n}: {e}"))),
                }
            }
            k if found.is_none() => {
                return Err((
                    Reason::MultipleRecords,
                    format!(
                        "_dmarc.{n} has {k} DMARC records; receivers then apply no DMARC policy"
                    ),
                ));
            }
            _ => {}
        }
        // psd=n ends the search for the organizational domain at that name.
        if seen
            .last()
            .is_some_and(|(s, psd)| *s == n && *psd == Some('n'))
        {
            break;
        }
        name = walk_parent(&n);
    }
    let Some(mut d) = found else {
        return Err((
            Reason::NoRecord,
            format!("no DMARC record at _dmarc.{domain} nor at any parent domain"),
        ));
    };
    d.org_domain = org_domain(&domain, &seen);
    Ok(d)
}

/// RFC 9989 section 4.10.2 over the records seen on the way up (closest first).
fn org_domain(domain: &str, seen: &[(String, Option<char>)]) -> String {
    if let Some((n, _)) = seen.iter().find(|(_, p)| *p == Some('n')) {
        return n.clone();
    }
    if let Some((psd, _)) = seen.iter().find(|(_, p)| *p == Some('y')) {
        // The name one label below the public suffix domain, on the path to `domain`.
        let extra = domain.strip_suffix(psd.as_str()).unwrap_or("");
        if let Some(label) = extra.trim_end_matches('.').rsplit('.').next()
            && !label.is_empty()
        {
            return format!("{label}.{psd}");
        }
        return domain.to_string();
    }
    seen.last()
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| domain.to_string())
}

/// Whether `dest` (a report address's domain) lies outside `org` (needs authorization).
pub fn is_external(dest: &str, org: &str) -> bool {
    !(dest == org || dest.ends_with(&format!(".{org}")))
}

/// Whether `dest` publishes `<domain>._report._dmarc.<dest>` with `v=DMARC1`.
pub async fn authorize(dns: &dyn Lookup, domain: &str, dest: &str) -> Result<bool, String> {
    match dns
        .lookup(&format!("{domain}._report._dmarc.{dest}"), RType::Txt)
        .await
    {
        Ok(a) => Ok(a.txts().iter().any(|t| is_dmarc(t))),
        Err(e) if e.is_void() => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
