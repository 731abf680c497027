//! Walking a domain's SPF records against the DNS: [`check_host`] for one sending IP (the
//! result a receiver computes) and [`analyze`] for the whole tree (every include and
//! redirect followed as if no mechanism matched, counting DNS-querying terms, void lookups
//! and MX hosts against the RFC 7208 section 4.6.4 limits, finding include loops and the
//! final `all`). Both run the same walker, [`Eval`]; a record is fetched and parsed with
//! [`record`](super::record).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::record::{Mechanism, Qualifier, SpfRecord, has_macro, is_spf, parse};
use super::report::{Problem, Reason, SpfReport, SpfResult};
use crate::resolver::{Lookup, LookupError, RType};
use crate::schedule::BoxFuture;

/// The RFC 7208 limits.
pub const MAX_LOOKUPS: u32 = 10;
pub const MAX_VOID_LOOKUPS: u32 = 2;
pub const MAX_MX_HOSTS: usize = 10;
/// The analysis keeps counting past the limit to report the real number, up to here.
const HARD_STOP_LOOKUPS: u32 = 60;

/// The result a matching directive gives: its qualifier's.
fn qualifier_result(q: Qualifier) -> SpfResult {
    match q {
        Qualifier::Pass => SpfResult::Pass,
        Qualifier::Fail => SpfResult::Fail,
        Qualifier::SoftFail => SpfResult::SoftFail,
        Qualifier::Neutral => SpfResult::Neutral,
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
    async fn query(&mut self, name: &str, t: RType) -> Result<Vec<crate::resolver::Rr>, SpfResult> {
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
                    crate::resolver::Rr::A(a) => out.push(IpAddr::V4(a)),
                    crate::resolver::Rr::Aaaa(a) => out.push(IpAddr::V6(a)),
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
                Ok(true) => return qualifier_result(d.qualifier),
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
                        crate::resolver::Rr::Mx { exchange, .. } => Some(exchange),
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
                        crate::resolver::Rr::Ptr(n) => Some(n),
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
