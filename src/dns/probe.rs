//! `/probe?module=dns&target=<domain>` and `/probe?module=dnsbl&target=<IP or domain>`: the
//! checks of one target, run now, blackbox_exporter style.
//!
//! The results are recorded into a fresh registry and only the DNS families are returned,
//! with `deliverability_probe_success` and `..._duration_seconds`. A configured domain is
//! checked with its configured selectors, expected IPs and MTA-STS settings; any other domain
//! with none of those (selectors and IPs seen by canaries are for the scheduled check). The
//! record change timestamps are not part of a probe (they need the scheduled check's history).
//! Everything is bounded by the scrape timeout given by the server; a probe cut short returns
//! what it has with `deliverability_probe_success 0`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{Encoder, TextEncoder};
use tokio::time::Instant;

use crate::config::{Config, Domain};
use crate::dns::check::{self, SharedResolver};
use crate::dns::dnsbl::{self, Cache, Target};
use crate::dns::records;
use crate::metrics::Metrics;
use crate::metrics::dns::PREFIXES;
use crate::schedule::BoxFuture;
use crate::server::Prober;

struct State {
    config: Arc<Config>,
    resolver: SharedResolver,
    /// DNSBL answers cached across probes.
    cache: Arc<Cache>,
}

/// The prober of the `dns` and `dnsbl` modules; follows configuration reloads.
pub struct DnsProber {
    state: Mutex<Arc<State>>,
}

impl DnsProber {
    pub fn new(config: Arc<Config>) -> DnsProber {
        DnsProber {
            state: Mutex::new(Arc::new(State {
                resolver: check::resolver(&config),
                config,
                cache: Arc::new(Cache::default()),
            })),
        }
    }

    /// Takes a reloaded configuration.
    pub fn update(&self, config: Arc<Config>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(State {
            resolver: check::resolver(&config),
            config,
            cache: Arc::new(Cache::default()),
        });
    }

    fn state(&self) -> Arc<State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs one probe; `Err` is a bad request (unknown module, invalid target).
    pub async fn run(
        &self,
        module: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let st = self.state();
        let dns = st.resolver.clone()?;
        let m = Metrics::bare();
        let started = Instant::now();
        let ok = match module {
            "dns" => {
                let Some(Target::Domain(domain)) = Target::parse(target) else {
                    return Err(format!(
                        "target {} is not a domain name",
                        crate::server::quote(target)
                    ));
                };
                let input = match st
                    .config
                    .domains
                    .iter()
                    .find(|d| d.name.trim_end_matches('.').eq_ignore_ascii_case(&domain))
                {
                    Some(d) => check::domain_input(&st.config, d, None),
                    None => check::domain_input(&st.config, &Domain::unconfigured(domain), None),
                };
                let mut input = input;
                if let Some(o) = &mut input.mta_sts {
                    o.timeout = o.timeout.min(timeout);
                }
                match tokio::time::timeout(timeout, records::check_domain(dns.as_ref(), &input))
                    .await
                {
                    Ok(report) => records::record(&m.dns, &report, None, 0.0)
                        .iter()
                        .all(|f| f.warning),
                    Err(_) => false,
                }
            }
            "dnsbl" => {
                let t = Target::parse(target).ok_or_else(|| {
                    format!(
                        "target {} is neither an IP address nor a domain name",
                        crate::server::quote(target)
                    )
                })?;
                let zones: Vec<_> = check::zones(&st.config)
                    .into_iter()
                    .filter(|z| t.fits(z))
                    .collect();
                if zones.is_empty() {
                    return Err(format!(
                        "no configured DNS blacklist zone lists {}; add lists or custom zones to [dnsbl]",
                        if matches!(t, Target::Domain(_)) {
                            "domains"
                        } else {
                            "this kind of IP address"
                        }
                    ));
                }
                let work = async {
                    let round = dnsbl::run(
                        dns.as_ref(),
                        &st.cache,
                        &zones,
                        std::slice::from_ref(&t),
                        st.config.dnsbl.concurrency,
                    )
                    .await;
                    let (listed, errors) =
                        check::record_round(&m.dns, dns.as_ref(), &zones, &round).await;
                    listed + errors == 0 && round.zones.iter().all(|(_, h)| h.healthy)
                };
                tokio::time::timeout(timeout, work).await.unwrap_or(false)
            }
            other => {
                return Err(format!(
                    "unknown module {}; one of: dns, dnsbl",
                    crate::server::quote(other)
                ));
            }
        };
        m.dns
            .probe_success
            .with_label_values(&[module])
            .set(i64::from(ok));
        m.dns
            .probe_duration
            .with_label_values(&[module])
            .set(started.elapsed().as_secs_f64());
        let families: Vec<_> = m
            .registry
            .gather()
            .into_iter()
            .filter(|f| PREFIXES.iter().any(|p| f.name().starts_with(p)))
            .collect();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buf)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

impl Prober for DnsProber {
    fn modules(&self) -> &'static [&'static str] {
        &["dns", "dnsbl"]
    }

    fn probe<'a>(
        &'a self,
        module: &'a str,
        target: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(self.run(module, target, timeout))
    }
}
