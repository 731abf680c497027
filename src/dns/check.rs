//! The scheduled checks `dns` (every `[[domains]]` entry's records, every `dns.interval`) and
//! `dnsbl` (every target in every configured blacklist zone, every `dnsbl.interval`).
//!
//! Both share one resolver pointed at `dns.nameservers`. Their series are created before the
//! first run (in `background`, which the scheduler calls at start) so every configured domain,
//! target and zone is visible from the first scrape; series of domains, targets and zones no
//! longer configured are removed on reload. The record change log is kept in the state
//! directory (`dns-records.json`) so a restart is not mistaken for a change.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use crate::config::{Config, Domain};
use crate::dns::dnsbl::{self, Cache, Outcome, Round, Target, Zone};
use crate::dns::mta_sts::FetchOptions;
use crate::dns::records::{self, ChangeLog, DomainInput};
use crate::metrics::dns::DnsMetrics;
use crate::observed::Observed;
use crate::resolver::{Lookup, Resolver};
use crate::schedule::{BoxFuture, Check, CheckError, Context};
use crate::status::DomainBoard;

pub const STATE_FILE: &str = "dns-records.json";
/// Domains checked at once.
const DOMAIN_CONCURRENCY: usize = 4;
/// Bound on one MTA-STS policy fetch.
pub const MTA_STS_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared resolver, or why it could not be built (reported by every run).
pub type SharedResolver = Result<Arc<Resolver>, String>;

/// Builds the resolver for a configuration.
pub fn resolver(config: &Config) -> SharedResolver {
    Resolver::new(&config.dns, config.dnsbl.concurrency)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The `dns` and `dnsbl` checks a configuration asks for.
pub fn build(
    config: &Arc<Config>,
    dns: bool,
    dnsbl: bool,
    board: Arc<DomainBoard>,
) -> Vec<Arc<dyn Check>> {
    let mut out: Vec<Arc<dyn Check>> = Vec::new();
    let want_dns = dns && !config.domains.is_empty();
    let zones = zones(config);
    let want_dnsbl = dnsbl && config.dnsbl.enabled && !zones.is_empty();
    if !want_dns && !want_dnsbl {
        return out;
    }
    let r = resolver(config);
    if want_dns {
        out.push(Arc::new(DnsCheck {
            config: config.clone(),
            resolver: r.clone(),
            changes: Mutex::new(None),
            board: board.clone(),
        }));
    }
    if want_dnsbl {
        out.push(Arc::new(DnsblCheck {
            config: config.clone(),
            resolver: r,
            zones,
            cache: Arc::new(Cache::default()),
            board,
        }));
    }
    out
}

/// What to check for a configured domain: configured selectors and expected IPs plus those
/// canaries saw (selectors signing for it, sending IPs of the providers sending as it).
pub fn domain_input(config: &Config, d: &Domain, observed: Option<&Observed>) -> DomainInput {
    let domain = d.name.trim_end_matches('.').to_ascii_lowercase();
    let mut selectors: BTreeSet<String> = d
        .dkim_selectors
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut ips: BTreeSet<IpAddr> = d.expected_ips.iter().copied().collect();
    if let Some(o) = observed {
        selectors.extend(o.dkim_selectors(&domain));
        let providers: HashSet<&str> = config
            .providers
            .iter()
            .filter(|p| p.from_domain == domain)
            .map(|p| p.name.as_str())
            .collect();
        ips.extend(
            o.sending_ips()
                .into_iter()
                .filter(|(p, _)| providers.contains(p.as_str()))
                .map(|(_, ip)| ip),
        );
    }
    DomainInput {
        domain,
        selectors: selectors.into_iter().collect(),
        ips: ips.into_iter().collect(),
        mta_sts: d.mta_sts.as_ref().map(|m| FetchOptions {
            port: m.port,
            ca_file: m.ca_file.clone(),
            timeout: MTA_STS_TIMEOUT,
        }),
    }
}

/// Creates the series of a domain's checks, selectors and IPs.
fn init_domain(m: &DnsMetrics, input: &DomainInput) {
    let checks = records::checks_for(input.mta_sts.is_some());
    m.init_domain(&input.domain, &checks, &records::reasons);
    for s in &input.selectors {
        m.init_selector(&input.domain, s);
    }
    for ip in &input.ips {
        m.init_ip(
            &input.domain,
            &ip.to_string(),
            &crate::dns::spf::SpfResult::ALL,
        );
    }
}

pub struct DnsCheck {
    config: Arc<Config>,
    resolver: SharedResolver,
    changes: Mutex<Option<ChangeLog>>,
    board: Arc<DomainBoard>,
}

impl DnsCheck {
    fn load_changes(&self, ctx: &Context) -> ChangeLog {
        let mut guard = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let log = match ctx.state.read(STATE_FILE) {
                Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(file = STATE_FILE, error = %e, "unreadable DNS record change log; starting a new one");
                    ChangeLog::default()
                }),
                Ok(None) => ChangeLog::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the DNS record change log");
                    ChangeLog::default()
                }
            };
            *guard = Some(log);
        }
        guard.clone().unwrap_or_default()
    }

    fn save_changes(&self, ctx: &Context, log: ChangeLog) {
        match serde_json::to_vec(&log) {
            Ok(bytes) => {
                if let Err(e) = ctx.state.write_atomic(STATE_FILE, &bytes) {
                    tracing::warn!(error = %e, "cannot save the DNS record change log");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode the DNS record change log"),
        }
        *self.changes.lock().unwrap_or_else(|e| e.into_inner()) = Some(log);
    }
}

impl Check for DnsCheck {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn interval(&self) -> Duration {
        self.config.dns.interval.get()
    }

    fn background(&self, ctx: &Context) -> Vec<BoxFuture<'static, ()>> {
        let m = &ctx.metrics.dns;
        let domains: HashSet<String> = self
            .config
            .domains
            .iter()
            .map(|d| d.name.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        m.retain_domains(&|l| l.get("domain").is_some_and(|d| domains.contains(d)));
        self.board.retain(&|d| domains.contains(d));
        for d in &self.config.domains {
            init_domain(m, &domain_input(&self.config, d, Some(&ctx.observed)));
        }
        Vec::new()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            let dns: Arc<Resolver> = self.resolver.clone().map_err(CheckError)?;
            let inputs: Vec<DomainInput> = self
                .config
                .domains
                .iter()
                .map(|d| domain_input(&self.config, d, Some(&ctx.observed)))
                .collect();
            let mut log = self.load_changes(ctx);
            log.retain_domains(&inputs.iter().map(|i| i.domain.clone()).collect());
            let futures: Vec<_> = inputs
                .iter()
                .map(|i| {
                    tokio::time::timeout(
                        records::DOMAIN_TIMEOUT,
                        records::check_domain(dns.as_ref(), i),
                    )
                })
                .collect();
            let reports: Vec<Option<records::DomainReport>> = futures::stream::iter(futures)
                .buffered(DOMAIN_CONCURRENCY)
                .map(Result::ok)
                .collect()
                .await;
            let now = ctx.clock.unix();
            let mut problems = Vec::new();
            for (input, report) in inputs.iter().zip(reports) {
                init_domain(&ctx.metrics.dns, input);
                match report {
                    Some(r) => {
                        let findings = records::record(&ctx.metrics.dns, &r, Some(&mut log), now);
                        let checks = records::checks_for(r.mta_sts.is_some());
                        // Warnings are counted and logged by `record`; the run and the
                        // landing page report what fails.
                        let failing: Vec<_> = findings.iter().filter(|f| !f.warning).collect();
                        let shown: Vec<(&'static str, String)> = failing
                            .iter()
                            .map(|f| (f.check, f.message.clone()))
                            .collect();
                        self.board.domain(&input.domain, now, &checks, &shown);
                        for f in failing {
                            problems.push(format!("{} {} ({})", input.domain, f.check, f.reason));
                        }
                    }
                    None => {
                        let checks = records::checks_for(input.mta_sts.is_some());
                        let shown: Vec<(&'static str, String)> = checks
                            .iter()
                            .map(|c| (*c, "timed out".to_string()))
                            .collect();
                        self.board.domain(&input.domain, now, &checks, &shown);
                        problems.push(format!("{} (timed out)", input.domain));
                    }
                }
            }
            self.save_changes(ctx, log);
            problems.dedup();
            if problems.is_empty() {
                Ok(format!("{} domains: every record in order", inputs.len()))
            } else {
                Err(CheckError(format!(
                    "{} problems in {} domains: {}",
                    problems.len(),
                    inputs.len(),
                    problems.join(", ")
                )))
            }
        })
    }
}

/// The zones of `[dnsbl]`: catalogue lists (with the DQS key) and custom zones.
pub fn zones(config: &Config) -> Vec<Zone> {
    let key = config
        .dnsbl
        .dqs_key
        .as_ref()
        .map(|k| k.expose().to_string());
    let mut out: Vec<Zone> = config
        .dnsbl
        .lists
        .iter()
        .filter_map(|l| dnsbl::catalogue::lookup(l, key.as_deref()))
        .collect();
    out.extend(config.dnsbl.custom.iter().map(dnsbl::catalogue::custom));
    let mut seen = HashSet::new();
    out.retain(|z| seen.insert(z.name.clone()));
    out
}

/// Configured targets plus, when asked, the providers' sending IPs seen in canaries.
pub fn targets(config: &Config, observed: Option<&Observed>) -> Vec<Target> {
    let mut t: BTreeSet<Target> = config.dnsbl.ips.iter().map(|ip| Target::Ip(*ip)).collect();
    t.extend(config.dnsbl.domains.iter().filter_map(|d| Target::parse(d)));
    if config.dnsbl.include_provider_ips
        && let Some(o) = observed
    {
        t.extend(o.sending_ips().into_iter().map(|(_, ip)| Target::Ip(ip)));
    }
    t.into_iter().collect()
}

/// Records a round into the metrics and logs listings and errors (the raw codes and TXT
/// reasons go to the log only). Returns (listed, errors).
pub async fn record_round(
    m: &DnsMetrics,
    dns: &dyn Lookup,
    zones: &[Zone],
    round: &Round,
) -> (usize, usize) {
    for (zone, h) in &round.zones {
        m.init_zone(zone);
        m.dnsbl_zone_healthy
            .with_label_values(&[zone])
            .set(i64::from(h.healthy));
        if let Some(p) = &h.problem {
            tracing::warn!(zone = %zone, "DNS blacklist zone unhealthy: {p}");
        }
    }
    let reasons = dnsbl::ErrorReason::NAMES;
    let (mut listed, mut errors) = (0, 0);
    for v in &round.verdicts {
        let target = v.target.to_string();
        m.init_dnsbl(&target, &v.zone, &reasons);
        m.dnsbl_listed
            .with_label_values(&[&target, &v.zone])
            .set(i64::from(v.outcome.is_listed()));
        DnsMetrics::one_of(
            &m.dnsbl_error,
            &[&target, &v.zone],
            &reasons,
            v.outcome.error_reason().map(|r| r.as_str()),
        );
        match &v.outcome {
            Outcome::Listed(codes) => {
                listed += 1;
                let reason = match zones.iter().find(|z| z.name == v.zone) {
                    Some(z) => dnsbl::txt_reason(dns, &v.target.query_name(&z.query_zone)).await,
                    None => None,
                };
                tracing::warn!(target = %target, zone = %v.zone, codes = ?codes, meanings = ?v.meanings, reason = reason.as_deref().unwrap_or(""), "listed in a DNS blacklist");
            }
            Outcome::Error { reason, detail } => {
                errors += 1;
                tracing::warn!(target = %target, zone = %v.zone, reason = reason.as_str(), detail = %detail, "DNS blacklist query failed (not counted as listed)");
            }
            Outcome::NotListed => {}
        }
    }
    (listed, errors)
}

pub struct DnsblCheck {
    config: Arc<Config>,
    resolver: SharedResolver,
    zones: Vec<Zone>,
    cache: Arc<Cache>,
    board: Arc<DomainBoard>,
}

impl Check for DnsblCheck {
    fn name(&self) -> &'static str {
        "dnsbl"
    }

    fn interval(&self) -> Duration {
        self.config.dnsbl.interval.get()
    }

    fn background(&self, ctx: &Context) -> Vec<BoxFuture<'static, ()>> {
        let m = &ctx.metrics.dns;
        let targets = targets(&self.config, Some(&ctx.observed));
        let names: HashSet<String> = targets.iter().map(|t| t.to_string()).collect();
        let zones: HashSet<String> = self.zones.iter().map(|z| z.name.clone()).collect();
        m.retain_dnsbl(&|l| {
            l.get("zone").is_some_and(|z| zones.contains(z))
                && l.get("target").is_none_or(|t| names.contains(t))
        });
        for z in &self.zones {
            m.init_zone(&z.name);
        }
        let reasons = dnsbl::ErrorReason::NAMES;
        for t in &targets {
            for z in self.zones.iter().filter(|z| t.fits(z)) {
                m.init_dnsbl(&t.to_string(), &z.name, &reasons);
            }
        }
        Vec::new()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            let dns = self.resolver.clone().map_err(CheckError)?;
            let targets = targets(&self.config, Some(&ctx.observed));
            let round = dnsbl::run(
                dns.as_ref(),
                &self.cache,
                &self.zones,
                &targets,
                self.config.dnsbl.concurrency,
            )
            .await;
            let (listed, errors) =
                record_round(&ctx.metrics.dns, dns.as_ref(), &self.zones, &round).await;
            let notable = round
                .verdicts
                .iter()
                .filter_map(|v| match &v.outcome {
                    Outcome::Listed(_) => {
                        Some((v.target.to_string(), v.zone.clone(), "listed".to_string()))
                    }
                    Outcome::Error { reason, .. } => Some((
                        v.target.to_string(),
                        v.zone.clone(),
                        format!("error: {}", reason.as_str()),
                    )),
                    Outcome::NotListed => None,
                })
                .collect();
            self.board.dnsbl(ctx.clock.unix(), notable);
            let unhealthy = round.zones.iter().filter(|(_, h)| !h.healthy).count();
            let summary = format!(
                "{} targets in {} zones ({} queries): {listed} listed, {errors} errors, {unhealthy} unhealthy zones",
                targets.len(),
                self.zones.len(),
                round.verdicts.len()
            );
            if listed + errors + unhealthy == 0 {
                Ok(summary)
            } else {
                Err(CheckError(summary))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_str(Path::new("/etc/dx/deliverability.toml"), text).map_err(|e| e.to_string())
    }

    const BASE: &str = r#"
[[providers]]
name = "own"
host = "mail.example.com"
port = 465
username = "canary"
password = "pw"
from = "canary@example.com"

[[providers]]
name = "other"
host = "mail.example.net"
port = 465
username = "canary"
password = "pw"
from = "canary@example.net"

[[domains]]
name = "Example.COM"
dkim_selectors = ["s1"]
expected_ips = ["192.0.2.1"]
mta_sts_ca_file = "ca.pem"
mta_sts_port = 8443

[[domains]]
name = "example.org"
mta_sts = false
"#;

    #[test]
    fn unknown_lists_are_refused_with_the_catalogue() {
        let e = load(&format!(
            "{BASE}\n[dnsbl]\nlists = [\"spamhaus-zen\", \"nope\"]\n"
        ))
        .unwrap_err();
        assert!(e.contains("dnsbl.lists[1]"), "{e}");
        assert!(
            e.contains("unknown list \"nope\"; one of: spamhaus-zen"),
            "{e}"
        );
        assert!(
            load(&format!(
                "{BASE}\n[dnsbl]\nlists = [\"zen.spamhaus.org\", \"uribl\"]\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn domain_inputs_merge_configured_and_observed() {
        let c = load(BASE).unwrap();
        let o = Observed::default();
        o.add_dkim_selector("example.com", "esp1");
        o.add_sending_ip("own", "198.51.100.1".parse().unwrap());
        o.add_sending_ip("other", "203.0.113.1".parse().unwrap());
        let i = domain_input(&c, &c.domains[0], Some(&o));
        assert_eq!(i.domain, "example.com");
        assert_eq!(i.selectors, vec!["esp1", "s1"]);
        let ips: Vec<String> = i.ips.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(
            ips,
            vec!["192.0.2.1", "198.51.100.1"],
            "only the IPs of providers sending as example.com"
        );
        let sts = i.mta_sts.unwrap();
        assert_eq!(sts.port, 8443);
        assert_eq!(
            sts.ca_file.as_deref(),
            Some(Path::new("/etc/dx/ca.pem")),
            "relative to the config file"
        );
        assert!(domain_input(&c, &c.domains[1], None).mta_sts.is_none());
        assert!(domain_input(&c, &c.domains[0], None).selectors == vec!["s1"]);
    }

    #[test]
    fn zones_targets_and_which_checks_run() {
        let c = Arc::new(
            load(&format!(
                r#"{BASE}
[dnsbl]
lists = ["spamhaus-zen", "spamcop", "spamhaus-zen"]
dqs_key = "k3y"
ips = ["192.0.2.10", "2001:db8::1"]
domains = ["spam.example"]

[[dnsbl.custom]]
name = "mine"
zone = "bl.example.net"
kind = "domain"
"#
            ))
            .unwrap(),
        );
        let z = zones(&c);
        let names: Vec<&str> = z.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["spamhaus-zen", "spamcop", "mine"],
            "duplicates dropped"
        );
        assert_eq!(z[0].query_zone, "k3y.zen.dq.spamhaus.net");
        let o = Observed::default();
        o.add_sending_ip("own", "198.51.100.1".parse().unwrap());
        let t: Vec<String> = targets(&c, Some(&o))
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            t,
            vec!["192.0.2.10", "198.51.100.1", "2001:db8::1", "spam.example"]
        );
        let names: Vec<&str> = build(&c, true, true, Default::default())
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(names, vec!["dns", "dnsbl"]);
        assert_eq!(build(&c, false, true, Default::default()).len(), 1);
        let bare = Arc::new(load("").unwrap());
        assert!(
            build(&bare, true, true, Default::default()).is_empty(),
            "no domains, no zones: nothing to run"
        );
    }
}
