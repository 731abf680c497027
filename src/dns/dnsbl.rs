//! DNS blacklists: is an IP or a domain listed, in each configured zone?
//!
//! A query is `<reversed IP or domain>.<zone>` for an A record. Every answer is sorted into one
//! of three outcomes ([`Outcome`]): **listed** (a listing code in 127.0.0.0/8), **not listed**
//! (NXDOMAIN, or the name without an A record) and **error**, which is never a listing: the
//! Spamhaus error codes 127.255.255.252/254/255 (typo, query through a public resolver, rate
//! limited), 127.0.0.1 and any other 127.255.255.x, answers outside 127.0.0.0/8 (NXDOMAIN
//! rewriting), timeouts, SERVFAIL and REFUSED. Raw codes and the TXT reason of a listing go to
//! the log only.
//!
//! Before its targets, each zone's health is checked (RFC 5782 section 5): the test entry
//! (127.0.0.2, `test`, or the list's own) must be listed and 127.0.0.1 / `invalid` must not.
//! Targets of an unhealthy zone are not queried and are reported in error (`zone_unhealthy`).
//! Answers are cached for their TTL (NXDOMAIN for its negative TTL), and at most `concurrency`
//! queries are in flight.

pub use crate::config::dnsbl_lists as catalogue;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::resolver::{Lookup, LookupError, RType};
pub use catalogue::{ListKind, Zone};

crate::label_enum! {
    /// Why a DNSBL answer is an error. The `reason` label of `deliverability_dnsbl_error`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorReason {
        Timeout = "timeout",
        Servfail = "servfail",
        Refused = "refused",
        DnsError = "dns_error",
        /// 127.255.255.252: the query was malformed (Spamhaus: typo in the zone name).
        Typo = "typo",
        /// 127.255.255.254: queries through public/open resolvers are refused.
        PublicResolver = "public_resolver",
        /// 127.255.255.255: too many queries (rate limited).
        RateLimited = "rate_limited",
        /// 127.0.0.1, another 127.255.255.x or a list's own error code.
        InvalidCode = "invalid_code",
        /// An answer outside 127.0.0.0/8: a resolver rewriting NXDOMAIN.
        Outside127 = "outside_127",
        /// The zone failed its health check, so its answers are not trusted.
        ZoneUnhealthy = "zone_unhealthy",
    }
}

impl ErrorReason {
    fn from_lookup(e: &LookupError) -> ErrorReason {
        match e {
            LookupError::Timeout { .. } => ErrorReason::Timeout,
            LookupError::ServFail { .. } => ErrorReason::Servfail,
            LookupError::Refused { .. } => ErrorReason::Refused,
            _ => ErrorReason::DnsError,
        }
    }
}

/// The outcome of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The listing codes returned.
    Listed(Vec<Ipv4Addr>),
    NotListed,
    /// `detail` holds the raw answer or DNS error, for the log.
    Error {
        reason: ErrorReason,
        detail: String,
    },
}

impl Outcome {
    pub fn is_listed(&self) -> bool {
        matches!(self, Outcome::Listed(_))
    }
    pub fn error_reason(&self) -> Option<ErrorReason> {
        match self {
            Outcome::Error { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// What is looked up: an IP (IPv4 or IPv6) or a domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Ip(IpAddr),
    Domain(String),
}

impl Target {
    /// An IP address, else a domain name (lower-cased); `None` when it is neither.
    pub fn parse(s: &str) -> Option<Target> {
        let s = s.trim().trim_end_matches('.');
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Target::Ip(ip));
        }
        crate::config::check_host(s).ok()?;
        s.contains('.')
            .then(|| Target::Domain(s.to_ascii_lowercase()))
    }

    /// Whether `zone` lists this kind of target.
    pub fn fits(&self, zone: &Zone) -> bool {
        match self {
            Target::Ip(IpAddr::V4(_)) => zone.kind == ListKind::Ip,
            Target::Ip(IpAddr::V6(_)) => zone.kind == ListKind::Ip && zone.ipv6,
            Target::Domain(_) => zone.kind == ListKind::Domain,
        }
    }

    /// The name queried in `zone`.
    pub fn query_name(&self, zone: &str) -> String {
        match self {
            Target::Ip(ip) => reverse_name(*ip, zone),
            Target::Domain(d) => format!("{d}.{zone}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Domain(d) => f.write_str(d),
        }
    }
}

pub use crate::resolver::reverse_name;

/// Sorts the A records of an answer into listed or error.
pub fn classify(zone: &Zone, codes: &[Ipv4Addr]) -> Outcome {
    let err = |reason, c: &Ipv4Addr| Outcome::Error {
        reason,
        detail: format!("answer {c}"),
    };
    for c in codes {
        let o = c.octets();
        if o[0] != 127 {
            return err(ErrorReason::Outside127, c);
        }
        if zone.error_codes.contains(c) {
            return err(ErrorReason::InvalidCode, c);
        }
        match o {
            [127, 255, 255, 252] => return err(ErrorReason::Typo, c),
            [127, 255, 255, 254] => return err(ErrorReason::PublicResolver, c),
            [127, 255, 255, 255] => return err(ErrorReason::RateLimited, c),
            [127, 255, 255, _] | [127, 0, 0, 1] => return err(ErrorReason::InvalidCode, c),
            _ => {}
        }
    }
    if codes.is_empty() {
        Outcome::NotListed
    } else {
        Outcome::Listed(codes.to_vec())
    }
}

/// Answers kept for their TTL, keyed by the queried name. Errors are not cached.
pub struct Cache {
    entries: Mutex<HashMap<String, (Outcome, Instant)>>,
    max_entries: usize,
    /// TTL for NXDOMAIN answers without an SOA, and the cap on any TTL.
    default_negative: Duration,
    max_ttl: Duration,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(200_000)
    }
}

impl Cache {
    pub fn new(max_entries: usize) -> Cache {
        Cache {
            entries: Mutex::new(HashMap::new()),
            max_entries,
            default_negative: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
        }
    }

    fn get(&self, name: &str) -> Option<Outcome> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(o, _)| o.clone())
    }

    fn put(&self, name: String, o: Outcome, ttl: Duration) {
        let ttl = ttl.min(self.max_ttl);
        if ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(name, (o, now + ttl));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Looks up one name in one zone, through the cache.
pub async fn query(dns: &dyn Lookup, cache: &Cache, zone: &Zone, name: &str) -> Outcome {
    if let Some(o) = cache.get(name) {
        return o;
    }
    let (outcome, ttl) = match dns.lookup(name, RType::A).await {
        Ok(ans) => {
            let codes: Vec<Ipv4Addr> = ans
                .records
                .iter()
                .filter_map(|r| match r {
                    crate::resolver::Rr::A(a) => Some(*a),
                    _ => None,
                })
                .collect();
            (
                classify(zone, &codes),
                Duration::from_secs(u64::from(ans.ttl)),
            )
        }
        Err(e) if e.is_void() => {
            let ttl = e
                .negative_ttl()
                .map(|t| Duration::from_secs(u64::from(t)))
                .unwrap_or(cache.default_negative);
            (Outcome::NotListed, ttl)
        }
        Err(e) => (
            Outcome::Error {
                reason: ErrorReason::from_lookup(&e),
                // The queried zone may embed a DQS key: log the list's name instead.
                detail: e
                    .to_string()
                    .replace(&zone.query_zone, &format!("<{}>", zone.name)),
            },
            Duration::ZERO,
        ),
    };
    if !matches!(outcome, Outcome::Error { .. }) {
        cache.put(name.to_string(), outcome.clone(), ttl);
    }
    outcome
}

/// A zone's health (RFC 5782 section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    /// Why not, for the log.
    pub problem: Option<String>,
}

/// Checks that the zone lists its test entry and not 127.0.0.1 / `invalid`. Zones without a
/// test entry pass here; [`run`] then judges them by whether they answered.
pub async fn health(dns: &dyn Lookup, cache: &Cache, zone: &Zone) -> Health {
    let Some(test) = &zone.test_entry else {
        return Health {
            healthy: true,
            problem: None,
        };
    };
    let positive = query(dns, cache, zone, &format!("{test}.{}", zone.query_zone)).await;
    let negative_name = match zone.kind {
        ListKind::Ip => "1.0.0.127",
        ListKind::Domain => "invalid",
    };
    let problem = match positive {
        Outcome::Listed(_) => {
            match query(
                dns,
                cache,
                zone,
                &format!("{negative_name}.{}", zone.query_zone),
            )
            .await
            {
                Outcome::NotListed => None,
                Outcome::Listed(c) => Some(format!(
                    "lists {negative_name}, which must never be listed ({c:?}): the zone answers everything"
                )),
                Outcome::Error { detail, .. } => Some(format!(
                    "the never-listed entry {negative_name} gave an error ({detail})"
                )),
            }
        }
        Outcome::NotListed => Some(format!("its test entry {test} is not listed")),
        Outcome::Error { detail, .. } => {
            Some(format!("its test entry {test} gave an error ({detail})"))
        }
    };
    Health {
        healthy: problem.is_none(),
        problem,
    }
}

/// One (target, zone) result of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub target: Target,
    pub zone: String,
    pub outcome: Outcome,
    /// Meanings of the listing codes (from the code map), for the log.
    pub meanings: Vec<String>,
}

/// The result of one round over every target and zone.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub zones: Vec<(String, Health)>,
    pub verdicts: Vec<Verdict>,
}

/// Checks every target in every zone that fits it, at most `concurrency` queries at once.
pub async fn run(
    dns: &dyn Lookup,
    cache: &Cache,
    zones: &[Zone],
    targets: &[Target],
    concurrency: usize,
) -> Round {
    let concurrency = concurrency.max(1);
    // Futures are built first and then polled as a stream: a closure inside the stream would
    // have to be generic over lifetimes, which async blocks can't express (the futures must
    // stay Send).
    let health_futures: Vec<_> = zones
        .iter()
        .map(|z| async move { (z.name.clone(), health(dns, cache, z).await) })
        .collect();
    let healths: Vec<(String, Health)> = futures::stream::iter(health_futures)
        .buffered(concurrency)
        .collect()
        .await;
    let pairs: Vec<(&Target, &Zone, bool)> = targets
        .iter()
        .flat_map(|t| {
            zones
                .iter()
                .zip(&healths)
                .filter(move |(z, _)| t.fits(z))
                .map(move |(z, (_, h))| (t, z, h.healthy))
        })
        .collect();
    let verdict_futures: Vec<_> = pairs
        .into_iter()
        .map(|(t, z, healthy)| async move {
            let outcome = if healthy {
                query(dns, cache, z, &t.query_name(&z.query_zone)).await
            } else {
                Outcome::Error {
                    reason: ErrorReason::ZoneUnhealthy,
                    detail: "not queried: the zone failed its health check".into(),
                }
            };
            let meanings = match &outcome {
                Outcome::Listed(codes) => {
                    let mut m: Vec<String> = codes.iter().flat_map(|c| z.meanings(*c)).collect();
                    m.sort();
                    m.dedup();
                    m
                }
                _ => Vec::new(),
            };
            Verdict {
                target: t.clone(),
                zone: z.name.clone(),
                outcome,
                meanings,
            }
        })
        .collect();
    let verdicts: Vec<Verdict> = futures::stream::iter(verdict_futures)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    // A zone without a test entry is judged by its answers: failing to answer is unhealthy.
    let healths = healths
        .into_iter()
        .zip(zones)
        .map(|((name, h), z)| {
            if z.test_entry.is_some() {
                return (name, h);
            }
            let failed = verdicts.iter().find(|v| {
                v.zone == name
                    && matches!(
                        v.outcome.error_reason(),
                        Some(
                            ErrorReason::Timeout
                                | ErrorReason::Servfail
                                | ErrorReason::Refused
                                | ErrorReason::PublicResolver
                                | ErrorReason::RateLimited
                                | ErrorReason::Typo
                        )
                    )
            });
            match failed {
                Some(v) => (
                    name,
                    Health {
                        healthy: false,
                        problem: Some(format!("it failed to answer for {}", v.target)),
                    },
                ),
                None => (name, h),
            }
        })
        .collect();
    Round {
        zones: healths,
        verdicts,
    }
}

/// The TXT reason a zone gives for a listing, for the log (best effort, capped).
pub async fn txt_reason(dns: &dyn Lookup, name: &str) -> Option<String> {
    let ans = dns.lookup(name, RType::Txt).await.ok()?;
    let t = ans.txts().join(" | ");
    Some(t.chars().take(300).collect())
}

#[cfg(test)]
mod tests;
