//! The DNS facts a canary's requirements need: the From domain's DMARC record (found as the
//! `dns` check finds it, with the RFC 9989 tree walk) and forward-confirmed reverse DNS of the
//! IP that delivered the canary into the receiver. Answers are kept for [`CACHE_SECONDS`], so
//! ten thousand routes sending from a few IPs and domains cost a few lookups per interval; the
//! cache holds at most [`CACHE_ENTRIES`] keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::{DmarcFacts, DnsFacts};
use crate::canary::headers::{CanaryHeaders, receiving_hop};
use crate::dns::dmarc::{self, Alignment, Reason};
use crate::resolver::{Lookup, LookupError, RType, Rr, reverse_name};

/// How long an answer is reused.
pub const CACHE_SECONDS: i64 = 300;
/// Keys kept; the cache is emptied when it would hold more.
pub const CACHE_ENTRIES: usize = 4096;
/// PTR names checked for one address (RFC 8601 `iprev` checks a handful; 10 like SPF's `ptr`).
const MAX_PTR_NAMES: usize = 10;

type Fact<T> = Option<Result<T, String>>;

#[derive(Clone)]
enum Cached {
    Dmarc(Fact<DmarcFacts>),
    Fcrdns(Fact<String>),
}

/// Looks up and remembers DNS facts.
#[derive(Default)]
pub struct FactCache {
    entries: Mutex<HashMap<String, (i64, Cached)>>,
}

impl FactCache {
    fn get(&self, key: &str, now: i64) -> Option<Cached> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.get(key)
            .filter(|(at, _)| now - at < CACHE_SECONDS)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, key: String, now: i64, v: Cached) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.len() >= CACHE_ENTRIES && !e.contains_key(&key) {
            e.clear();
        }
        e.insert(key, (now, v));
    }

    /// The facts for one canary; `now` is Unix seconds. An unknown answer (a timeout) is
    /// not cached.
    pub async fn facts(&self, dns: &dyn Lookup, h: &CanaryHeaders, now: i64) -> DnsFacts {
        let mut out = DnsFacts::default();
        if let Some(domain) = &h.format.from_domain {
            let key = format!("dmarc {domain}");
            out.dmarc = match self.get(&key, now) {
                Some(Cached::Dmarc(f)) => f,
                _ => {
                    let f = dmarc_facts(dns, domain).await;
                    if f.is_some() {
                        self.put(key, now, Cached::Dmarc(f.clone()));
                    }
                    f
                }
            };
        }
        let ip = receiving_hop(&h.hops, h.auth.authserv_id.as_deref(), h.spf_client_ip)
            .and_then(|hop| hop.ip)
            .or(h.spf_client_ip);
        if let Some(ip) = ip {
            let key = format!("fcrdns {ip}");
            out.fcrdns = match self.get(&key, now) {
                Some(Cached::Fcrdns(f)) => f,
                _ => {
                    let f = fcrdns(dns, ip).await;
                    if f.is_some() {
                        self.put(key, now, Cached::Fcrdns(f.clone()));
                    }
                    f
                }
            };
        }
        out
    }
}

/// The DMARC record in effect for `domain`: its policy, alignment modes and organizational
/// domain; `Some(Err)` when there is none or it is invalid; `None` when DNS did not answer.
pub async fn dmarc_facts(dns: &dyn Lookup, domain: &str) -> Fact<DmarcFacts> {
    match dmarc::discover(dns, domain).await {
        Ok(d) => Some(match d.policy_for(domain) {
            Some(p) => Ok(DmarcFacts {
                policy: p.as_str().to_string(),
                org_domain: d.org_domain.clone(),
                strict_dkim: d.record.adkim == Alignment::Strict,
                strict_spf: d.record.aspf == Alignment::Strict,
            }),
            None => Err(format!("{domain}: the DMARC record has no policy (p=)")),
        }),
        Err((Reason::DnsError, _)) => None,
        Err((_, why)) => Some(Err(why)),
    }
}

/// Forward-confirmed reverse DNS: a PTR name of `ip` whose A/AAAA records include `ip`.
pub async fn fcrdns(dns: &dyn Lookup, ip: IpAddr) -> Fact<String> {
    let zone = if ip.is_ipv4() {
        "in-addr.arpa"
    } else {
        "ip6.arpa"
    };
    let names: Vec<String> = match dns.lookup(&reverse_name(ip, zone), RType::Ptr).await {
        Ok(a) => a
            .records
            .into_iter()
            .filter_map(|r| match r {
                Rr::Ptr(n) => Some(n),
                _ => None,
            })
            .take(MAX_PTR_NAMES)
            .collect(),
        Err(e) if e.is_void() => return Some(Err(format!("{ip} has no PTR record"))),
        Err(_) => return None,
    };
    let rtype = if ip.is_ipv4() { RType::A } else { RType::Aaaa };
    let mut unknown = false;
    for n in &names {
        match dns.lookup(n, rtype).await {
            Ok(a) if a.ips().contains(&ip) => return Some(Ok(n.clone())),
            Ok(_) => {}
            Err(LookupError::NxDomain { .. } | LookupError::NoData { .. }) => {}
            Err(_) => unknown = true,
        }
    }
    if unknown {
        return None;
    }
    Some(Err(format!(
        "{ip}: PTR {} does not resolve back to it",
        names.join(", ")
    )))
}
