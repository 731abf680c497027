//! The bulk-sender requirements Gmail (February 2024), Yahoo (February 2024) and Outlook.com
//! (May 2025) enforce, judged on every delivered canary: what the receiver said (SPF, DKIM),
//! what the message carries (one From, Date and Message-ID, short lines, one-click
//! unsubscribe signed by DKIM), how it came in (TLS on the hop into the receiver, a sending IP
//! with forward-confirmed reverse DNS) and what the From domain publishes (a DMARC policy,
//! and alignment recomputed from the From header, not only read from the receiver's verdict).
//!
//! [`evaluate`] is pure: the headers of one canary and the DNS facts [`lookup`] found for it
//! give one [`Outcome`] per requirement that could be judged; a requirement that could not
//! (no verdict from the receiver, a DNS timeout, no hop into the receiver) is left out rather
//! than counted as failed. [`board`] keeps the last outcome of every route and sets the
//! metrics.

pub mod board;
pub mod lookup;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use crate::canary::headers::{AuthResult, CanaryHeaders, Method, ResInfo, receiving_hop};
use crate::metrics::Metrics;
use crate::resolver::Lookup;

/// What the canary check holds to judge its deliveries: the DNS (none when the resolver could
/// not be built: the DNS requirements are then not judged), the cache of DNS facts, the
/// providers whose canaries carry `List-Unsubscribe`, and the board of outcomes.
pub struct Judge {
    pub board: board::Board,
    cache: lookup::FactCache,
    dns: Option<Arc<dyn Lookup>>,
    unsubscribe: HashSet<String>,
}

impl Judge {
    pub fn new(
        metrics: Arc<Metrics>,
        route_series: bool,
        dns: Option<Arc<dyn Lookup>>,
        unsubscribe: HashSet<String>,
    ) -> Judge {
        Judge {
            board: board::Board::new(metrics, route_series),
            cache: lookup::FactCache::default(),
            dns,
            unsubscribe,
        }
    }

    /// The judge of a configuration: the resolver of `dns.nameservers` (none, with a warning,
    /// when it cannot be built), and the providers whose canaries carry `List-Unsubscribe`.
    pub fn from_config(cfg: &crate::config::Config, metrics: Arc<Metrics>) -> Judge {
        let dns: Option<Arc<dyn Lookup>> = match crate::resolver::Resolver::new(&cfg.dns, 16) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, "no resolver: the DNS sender requirements (dmarc_policy, dns_records) are not judged");
                None
            }
        };
        let unsubscribe = cfg
            .providers
            .iter()
            .filter(|p| {
                p.headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("List-Unsubscribe"))
            })
            .map(|p| p.name.clone())
            .collect();
        Judge::new(metrics, cfg.canary.route_requirements, dns, unsubscribe)
    }

    /// Judges a delivered canary of route (provider, seed); `now` in Unix seconds.
    pub async fn judge(&self, provider: &str, seed: &str, h: &CanaryHeaders, now: i64) {
        let facts = match &self.dns {
            Some(dns) => self.cache.facts(dns.as_ref(), h, now).await,
            None => DnsFacts::default(),
        };
        let outcomes = evaluate(h, &facts, self.unsubscribe.contains(provider));
        self.board.record(provider, seed, &outcomes);
    }
}

crate::label_enum! {
    /// A requirement, named as the mailbox providers' sender guidelines name it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Requirement {
        /// The receiver's SPF check passed.
        Spf = "spf",
        /// A DKIM signature passed at the receiver.
        Dkim = "dkim",
        /// Both (Gmail and Yahoo ask bulk senders for both).
        SpfAndDkim = "spf_and_dkim",
        /// The From domain publishes a DMARC record with a policy (p=none is enough).
        DmarcPolicy = "dmarc_policy",
        /// The From domain is aligned with a passing DKIM d= or SPF domain.
        DmarcAlignment = "dmarc_alignment",
        /// The sending IP has a PTR record whose name resolves back to it.
        DnsRecords = "dns_records",
        /// The hop into the receiver used TLS.
        Encryption = "encryption",
        /// Exactly one From, Date and Message-ID; no header line over 998 octets.
        MessageFormatting = "message_formatting",
        /// An https List-Unsubscribe, List-Unsubscribe-Post: List-Unsubscribe=One-Click,
        /// both covered by a passing DKIM signature.
        OneClickUnsubscribe = "one_click_unsubscribe",
    }
}

/// One requirement judged on one canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub requirement: Requirement,
    pub met: bool,
    /// Why, in a few words (logs and the landing page; never a secret or a recipient).
    pub why: String,
}

/// The From domain's DMARC record in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcFacts {
    /// The policy applied to the From domain (`none`, `quarantine`, `reject`).
    pub policy: String,
    /// The organizational domain found by the DNS tree walk.
    pub org_domain: String,
    pub strict_dkim: bool,
    pub strict_spf: bool,
}

/// What DNS says about a canary. `None`: not known (the lookup failed, or there was nothing
/// to look up); `Some(Err(why))`: DNS answered, and the answer fails the requirement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsFacts {
    pub dmarc: Option<Result<DmarcFacts, String>>,
    /// Forward-confirmed reverse DNS of the sending IP: the confirmed name.
    pub fcrdns: Option<Result<String, String>>,
}

/// RFC 5322 §2.1.1: a line is at most 998 octets, CRLF excluded.
pub const MAX_LINE: usize = 998;

fn outcome(requirement: Requirement, met: bool, why: impl Into<String>) -> Outcome {
    Outcome {
        requirement,
        met,
        why: why.into(),
    }
}

/// The domain of a result's identity: `header.d`, else the domain of `header.i` (for DKIM),
/// `smtp.mailfrom`'s domain, else `smtp.helo` (for SPF).
fn result_domain(r: &ResInfo) -> Option<String> {
    let keys: &[&str] = match r.method {
        Method::Dkim => &["header.d", "header.i"],
        _ => &["smtp.mailfrom", "smtp.helo"],
    };
    keys.iter().find_map(|k| {
        let v = r.property(k)?;
        let d = v.rsplit_once('@').map_or(v, |(_, d)| d);
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        (!d.is_empty()).then_some(d)
    })
}

/// Whether `domain` is aligned with the From domain: the same name, or (relaxed) under the
/// From domain's organizational domain (RFC 7489 §3.1, RFC 9989 §4.4).
pub fn aligned(domain: &str, from: &str, org: &str, strict: bool) -> bool {
    if domain.eq_ignore_ascii_case(from) {
        return true;
    }
    if strict || org.is_empty() {
        return false;
    }
    let domain = domain.to_ascii_lowercase();
    let org = org.to_ascii_lowercase();
    domain == org || domain.ends_with(&format!(".{org}"))
}

/// Judges one delivered canary. `unsubscribe_expected`: the provider is configured to send
/// the canary with `List-Unsubscribe`; otherwise one-click unsubscribe is judged only when the
/// delivered message carries one of its headers (a provider that adds its own).
pub fn evaluate(h: &CanaryHeaders, dns: &DnsFacts, unsubscribe_expected: bool) -> Vec<Outcome> {
    let mut out = Vec::new();
    let passing = |m: Method| -> Vec<&ResInfo> {
        h.auth
            .results
            .iter()
            .filter(|r| r.method == m && r.result == AuthResult::Pass)
            .collect()
    };
    let spf_pass = passing(Method::Spf);
    let dkim_pass = passing(Method::Dkim);
    let verdict = |m: Method| {
        h.auth
            .results
            .iter()
            .filter(|r| r.method == m)
            .map(|r| r.result.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    // Without any verdict from the receiver, SPF and DKIM are unknown, not failed.
    if !h.auth.results.is_empty() {
        let spf = !spf_pass.is_empty();
        let dkim = !dkim_pass.is_empty();
        let said = |m: Method| {
            let v = verdict(m);
            if v.is_empty() { "none".to_string() } else { v }
        };
        out.push(outcome(
            Requirement::Spf,
            spf,
            format!("spf={}", said(Method::Spf)),
        ));
        out.push(outcome(
            Requirement::Dkim,
            dkim,
            format!("dkim={}", said(Method::Dkim)),
        ));
        out.push(outcome(
            Requirement::SpfAndDkim,
            spf && dkim,
            format!("spf={} dkim={}", said(Method::Spf), said(Method::Dkim)),
        ));
    }

    let from = h.format.from_domain.as_deref();
    match (&dns.dmarc, from) {
        (_, None) => out.push(outcome(Requirement::DmarcPolicy, false, "no From domain")),
        (Some(Ok(f)), Some(d)) => out.push(outcome(
            Requirement::DmarcPolicy,
            true,
            format!("{d}: p={}", f.policy),
        )),
        (Some(Err(why)), Some(_)) => out.push(outcome(Requirement::DmarcPolicy, false, why)),
        (None, Some(_)) => {}
    }

    if let Some(from) = from
        && !h.auth.results.is_empty()
    {
        let facts = dns.dmarc.as_ref().and_then(|r| r.as_ref().ok());
        // The DNS tree walk's organizational domain, else the built-in suffix table's.
        let org = facts.map_or_else(
            || crate::domains::organizational_domain(from).to_string(),
            |f| f.org_domain.clone(),
        );
        let (strict_dkim, strict_spf) =
            facts.map_or((false, false), |f| (f.strict_dkim, f.strict_spf));
        let dkim_aligned = dkim_pass
            .iter()
            .filter_map(|r| result_domain(r))
            .find(|d| aligned(d, from, &org, strict_dkim));
        let spf_aligned = spf_pass
            .iter()
            .filter_map(|r| result_domain(r))
            .find(|d| aligned(d, from, &org, strict_spf));
        let why = match (&dkim_aligned, &spf_aligned) {
            (Some(d), _) => format!("From {from} aligned with DKIM d={d}"),
            (None, Some(d)) => format!("From {from} aligned with SPF {d}"),
            (None, None) => {
                let seen: Vec<String> = dkim_pass
                    .iter()
                    .chain(spf_pass.iter())
                    .filter_map(|r| result_domain(r).map(|d| format!("{}={d}", r.method.as_str())))
                    .collect();
                if seen.is_empty() {
                    format!("From {from}: no passing DKIM or SPF identity")
                } else {
                    format!("From {from} not aligned with {}", seen.join(" "))
                }
            }
        };
        out.push(outcome(
            Requirement::DmarcAlignment,
            dkim_aligned.is_some() || spf_aligned.is_some(),
            why,
        ));
    }

    match &dns.fcrdns {
        Some(Ok(name)) => out.push(outcome(
            Requirement::DnsRecords,
            true,
            format!("PTR {name}"),
        )),
        Some(Err(why)) => out.push(outcome(Requirement::DnsRecords, false, why)),
        None => {}
    }

    if let Some(hop) = receiving_hop(&h.hops, h.auth.authserv_id.as_deref(), h.spf_client_ip) {
        let with = hop.with.as_deref().unwrap_or("?");
        let why = match &hop.tls {
            Some(v) => format!("with {with} ({v})"),
            None => format!("with {with}"),
        };
        out.push(outcome(Requirement::Encryption, hop.encrypted(), why));
    }

    let f = &h.format;
    let mut wrong = Vec::new();
    for (name, n) in [
        ("From", f.from_fields),
        ("Date", f.date_fields),
        ("Message-ID", f.message_id_fields),
    ] {
        if n != 1 {
            wrong.push(format!("{n} {name} fields"));
        }
    }
    if f.longest_line > MAX_LINE {
        wrong.push(format!("a {}-octet header line", f.longest_line));
    }
    out.push(outcome(
        Requirement::MessageFormatting,
        wrong.is_empty(),
        if wrong.is_empty() {
            "one From, Date and Message-ID".to_string()
        } else {
            wrong.join(", ")
        },
    ));

    if unsubscribe_expected || f.list_unsubscribe.is_some() || f.list_unsubscribe_post.is_some() {
        out.push(one_click(h, &dkim_pass));
    }
    out
}

/// RFC 8058: an https URI in List-Unsubscribe, `List-Unsubscribe=One-Click` in
/// List-Unsubscribe-Post, and a valid DKIM signature covering both.
fn one_click(h: &CanaryHeaders, dkim_pass: &[&ResInfo]) -> Outcome {
    let f = &h.format;
    let fail = |why: &str| outcome(Requirement::OneClickUnsubscribe, false, why);
    let Some(lu) = &f.list_unsubscribe else {
        return fail("no List-Unsubscribe");
    };
    let https = lu
        .split(',')
        .filter_map(|u| u.trim().strip_prefix('<')?.split('>').next())
        .any(|u| u.len() > 8 && u[..8].eq_ignore_ascii_case("https://"));
    if !https {
        return fail("List-Unsubscribe has no https URI");
    }
    match &f.list_unsubscribe_post {
        None => return fail("no List-Unsubscribe-Post"),
        Some(v) if !v.trim().eq_ignore_ascii_case("List-Unsubscribe=One-Click") => {
            return fail("List-Unsubscribe-Post is not List-Unsubscribe=One-Click");
        }
        Some(_) => {}
    }
    let passed: Vec<String> = dkim_pass.iter().filter_map(|r| result_domain(r)).collect();
    let covering = h.dkim_signatures.iter().find(|s| {
        s.covers("list-unsubscribe")
            && s.covers("list-unsubscribe-post")
            && (passed.is_empty() && !dkim_pass.is_empty()
                || passed
                    .iter()
                    .any(|d| *d == s.domain || d.ends_with(&format!(".{}", s.domain))))
    });
    match covering {
        Some(s) => outcome(
            Requirement::OneClickUnsubscribe,
            true,
            format!("signed by d={} s={}", s.domain, s.selector),
        ),
        None if dkim_pass.is_empty() => fail("no DKIM signature passed"),
        None => fail("no passing DKIM signature covers List-Unsubscribe and List-Unsubscribe-Post"),
    }
}
