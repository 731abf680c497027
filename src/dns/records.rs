//! All record checks of one domain, and their recording as metrics.
//!
//! [`check_domain`] runs SPF (analysis and `check_host()` for every given IP), DKIM (every
//! selector), DMARC (with external destination authorization), MX, MTA-STS and TLS-RPT for one
//! domain and returns a [`DomainReport`]. [`record`] turns it into the metric families of
//! `crate::metrics::dns`, logs every problem, and notes content changes in a [`ChangeLog`]
//! (persisted by the scheduled check so a restart doesn't look like a change).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dns::{dkim, dmarc, mta_sts, mx, spf, tlsrpt};
use crate::metrics::dns::{DnsMetrics, QUALIFIERS};
use crate::resolver::Lookup;

/// What to check for one domain.
#[derive(Debug, Clone)]
pub struct DomainInput {
    pub domain: String,
    pub selectors: Vec<String>,
    /// IPs whose `check_host()` result is reported.
    pub ips: Vec<IpAddr>,
    /// `None`: MTA-STS is not checked for this domain.
    pub mta_sts: Option<mta_sts::FetchOptions>,
}

/// Whether a DMARC report destination may receive the domain's reports (RFC 7489 §7.1).
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// Inside the organizational domain, or the destination publishes the authorization record.
    Authorized,
    /// External, and the destination answered without an authorization record.
    Unauthorized,
    /// The authorization lookup failed (REFUSED, SERVFAIL, timeout): unknown, not "unauthorized".
    Unknown(String),
}

/// The DMARC part of a report.
#[derive(Debug, Clone)]
pub struct DmarcPart {
    pub found: Result<dmarc::Discovery, (dmarc::Reason, String)>,
    /// Each report destination domain (rua and ruf) and whether it is authorized.
    pub destinations: Vec<(String, Authorization)>,
}

#[derive(Debug, Clone)]
pub struct DomainReport {
    pub domain: String,
    pub spf: spf::SpfReport,
    pub spf_results: Vec<(IpAddr, spf::SpfResult)>,
    pub dkim: Vec<dkim::SelectorReport>,
    pub dmarc: DmarcPart,
    pub mx: mx::MxReport,
    pub mta_sts: Option<mta_sts::StsReport>,
    pub tlsrpt: tlsrpt::TlsRptReport,
}

/// Runs every record check of one domain.
pub async fn check_domain(dns: &dyn Lookup, input: &DomainInput) -> DomainReport {
    let d = input.domain.as_str();
    let spf_part = async {
        let report = spf::analyze(dns, d).await;
        let mut results = Vec::new();
        for ip in &input.ips {
            results.push((*ip, spf::check_host(dns, *ip, d).await));
        }
        (report, results)
    };
    let dkim_part = futures::future::join_all(
        input
            .selectors
            .iter()
            .map(|s| dkim::check_selector(dns, d, s)),
    );
    let dmarc_part = async {
        let found = dmarc::discover(dns, d).await;
        let mut destinations = Vec::new();
        if let Ok(disc) = &found {
            let dests: BTreeSet<String> = disc
                .record
                .rua
                .iter()
                .chain(&disc.record.ruf)
                .filter_map(|a| a.rsplit_once('@').map(|(_, dom)| dom.to_string()))
                .collect();
            for dest in dests.into_iter().take(20) {
                let auth = if dmarc::is_external(&dest, &disc.org_domain) {
                    match dmarc::authorize(dns, &disc.record_domain, &dest).await {
                        Ok(true) => Authorization::Authorized,
                        Ok(false) => Authorization::Unauthorized,
                        Err(e) => Authorization::Unknown(e),
                    }
                } else {
                    Authorization::Authorized
                };
                destinations.push((dest, auth));
            }
        }
        DmarcPart {
            found,
            destinations,
        }
    };
    let mx_sts = async {
        let mx = mx::check(dns, d).await;
        let sts = match &input.mta_sts {
            Some(opts) => {
                let hosts: Vec<String> = mx.hosts.iter().map(|h| h.exchange.clone()).collect();
                Some(mta_sts::check(dns, d, &hosts, opts).await)
            }
            None => None,
        };
        (mx, sts)
    };
    let tls = tlsrpt::check(dns, d);
    let ((spf, spf_results), dkim, dmarc, (mx, mta_sts), tlsrpt) =
        futures::join!(spf_part, dkim_part, dmarc_part, mx_sts, tls);
    DomainReport {
        domain: d.to_string(),
        spf,
        spf_results,
        dkim,
        dmarc,
        mx,
        mta_sts,
        tlsrpt,
    }
}

/// The fixed reasons of each record check (the `reason` label).
pub fn reasons(check: &str) -> &'static [&'static str] {
    match check {
        "spf" => &spf::Reason::NAMES,
        "dkim" => &dkim::Reason::NAMES,
        "dmarc" => &dmarc::Reason::NAMES,
        "mx" => &mx::Reason::NAMES,
        "mta_sts" => &mta_sts::Reason::NAMES,
        "tls_rpt" => &tlsrpt::Reason::NAMES,
        _ => &[],
    }
}

/// One problem found by a record check.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The `check` label: spf, dkim, dmarc, mx, mta_sts, tls_rpt.
    pub check: &'static str,
    /// The `reason` label, one of [`reasons`] of the check.
    pub reason: &'static str,
    /// What is wrong, for the log and the landing page.
    pub message: String,
    /// A warning is counted (`deliverability_dns_check_errors_total`) and logged, but leaves the
    /// check successful: receivers still apply the record (an unauthorized external DMARC report
    /// destination, or one whose authorization could not be looked up).
    pub warning: bool,
}

impl Finding {
    fn error(check: &'static str, reason: &'static str, message: String) -> Finding {
        Finding {
            check,
            reason,
            message,
            warning: false,
        }
    }

    fn warning(check: &'static str, reason: &'static str, message: String) -> Finding {
        Finding {
            check,
            reason,
            message,
            warning: true,
        }
    }
}

impl DomainReport {
    /// Every problem and warning.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        for p in &self.spf.problems {
            out.push(Finding::error("spf", p.reason.as_str(), p.message.clone()));
        }
        for (ip, r) in &self.spf_results {
            if *r != spf::SpfResult::Pass && self.spf.record.is_some() {
                out.push(Finding::error(
                    "spf",
                    spf::Reason::IpNotPermitted.as_str(),
                    format!("SPF of {} for {ip}: {r}", self.domain),
                ));
            }
        }
        if self.dkim.is_empty() {
            out.push(Finding::error(
                "dkim",
                "no_selector",
                format!(
                    "no DKIM selector is configured or was seen in canaries for {}",
                    self.domain
                ),
            ));
        }
        for s in &self.dkim {
            if let Some((reason, m)) = &s.problem {
                out.push(Finding::error("dkim", reason.as_str(), m.clone()));
            }
        }
        match &self.dmarc.found {
            Ok(d) => {
                for w in &d.record.warnings {
                    tracing::info!(domain = %self.domain, "DMARC record of {}: {w}", d.record_domain);
                }
                for (dest, auth) in &self.dmarc.destinations {
                    match auth {
                        Authorization::Authorized => {}
                        Authorization::Unauthorized => out.push(Finding::warning(
                            "dmarc",
                            "unauthorized_destination",
                            format!(
                                "DMARC reports of {} go to {dest}, which does not publish {}._report._dmarc.{dest}: receivers apply the record but send it no reports",
                                self.domain, d.record_domain
                            ),
                        )),
                        Authorization::Unknown(e) => out.push(Finding::warning(
                            "dmarc",
                            "dns_error",
                            format!(
                                "whether {dest} accepts the DMARC reports of {} could not be looked up ({}._report._dmarc.{dest}): {e}",
                                self.domain, d.record_domain
                            ),
                        )),
                    }
                }
            }
            Err((reason, m)) => out.push(Finding::error("dmarc", reason.as_str(), m.clone())),
        }
        for (reason, m) in &self.mx.problems {
            out.push(Finding::error("mx", reason.as_str(), m.clone()));
        }
        if let Some(s) = &self.mta_sts
            && let Some((reason, m)) = &s.problem
        {
            out.push(Finding::error("mta_sts", reason.as_str(), m.clone()));
        }
        if let Some((reason, m)) = &self.tlsrpt.problem {
            out.push(Finding::error("tls_rpt", reason.as_str(), m.clone()));
        }
        out
    }

    /// The content of each check's records (`None`: unknown, a DNS error), for change
    /// detection. Absence of a record is content too (the empty string).
    pub fn contents(&self) -> Vec<(&'static str, Option<String>)> {
        let dns_err = |r: &str| r == "dns_error";
        let mut out = Vec::new();
        let spf_unknown = self
            .spf
            .problems
            .iter()
            .any(|p| p.reason == spf::Reason::DnsError)
            && self.spf.record.is_none();
        out.push((
            "spf",
            (!spf_unknown).then(|| self.spf.record.clone().unwrap_or_default()),
        ));
        let dkim_unknown = self
            .dkim
            .iter()
            .any(|s| s.problem.as_ref().is_some_and(|(r, _)| dns_err(r.as_str())));
        out.push((
            "dkim",
            (!dkim_unknown).then(|| {
                let mut v: Vec<String> = self
                    .dkim
                    .iter()
                    .map(|s| format!("{}={}", s.selector, s.record.clone().unwrap_or_default()))
                    .collect();
                v.sort();
                v.join("\n")
            }),
        ));
        out.push((
            "dmarc",
            match &self.dmarc.found {
                Ok(d) => Some(format!("{} {}", d.record_domain, d.text)),
                Err((dmarc::Reason::DnsError, _)) => None,
                Err(_) => Some(String::new()),
            },
        ));
        let mx_unknown = self
            .mx
            .problems
            .iter()
            .any(|(r, _)| *r == mx::Reason::DnsError);
        out.push((
            "mx",
            (!mx_unknown).then(|| self.mx.text.clone().unwrap_or_default()),
        ));
        if let Some(s) = &self.mta_sts {
            // Without the record or the policy the content is unknown, not absent.
            let unknown = matches!(
                s.problem,
                Some((
                    mta_sts::Reason::DnsError
                        | mta_sts::Reason::PolicyFetch
                        | mta_sts::Reason::Certificate,
                    _
                ))
            );
            out.push((
                "mta_sts",
                (!unknown).then(|| {
                    format!(
                        "{}\n{}",
                        s.record.clone().unwrap_or_default(),
                        s.policy_text.clone().unwrap_or_default()
                    )
                }),
            ));
        }
        out.push((
            "tls_rpt",
            match &self.tlsrpt.problem {
                Some((tlsrpt::Reason::DnsError, _)) => None,
                _ => Some(self.tlsrpt.record.clone().unwrap_or_default()),
            },
        ));
        out
    }
}

/// When each (domain, check)'s content was first seen as it is. Serialized to the state dir.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChangeLog {
    /// "domain/check" → (FNV-1a hash of the content, Unix seconds first seen).
    pub entries: BTreeMap<String, (u64, f64)>,
}

/// FNV-1a, 64 bits: stable across builds (unlike std's hasher).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl ChangeLog {
    /// Notes `content` for (domain, check) at `now`; returns the time the content was first
    /// seen and whether it changed (a first sighting is not a change).
    pub fn observe(&mut self, domain: &str, check: &str, content: &str, now: f64) -> (f64, bool) {
        let key = format!("{domain}/{check}");
        let h = fnv1a(content);
        match self.entries.get(&key) {
            Some((old, since)) if *old == h => (*since, false),
            Some(_) => {
                self.entries.insert(key, (h, now));
                (now, true)
            }
            None => {
                self.entries.insert(key, (h, now));
                (now, false)
            }
        }
    }

    pub fn get(&self, domain: &str, check: &str) -> Option<f64> {
        self.entries
            .get(&format!("{domain}/{check}"))
            .map(|(_, t)| *t)
    }

    /// Forgets domains no longer checked.
    pub fn retain_domains(&mut self, domains: &BTreeSet<String>) {
        self.entries
            .retain(|k, _| k.rsplit_once('/').is_some_and(|(d, _)| domains.contains(d)));
    }
}

/// The checks recorded for a domain.
pub fn checks_for(mta_sts: bool) -> Vec<&'static str> {
    crate::metrics::dns::CHECKS
        .iter()
        .copied()
        .filter(|c| mta_sts || *c != "mta_sts")
        .collect()
}

/// Records a report into the metrics (and `changes`, when given); logs every finding.
/// Returns the findings.
pub fn record(
    m: &DnsMetrics,
    r: &DomainReport,
    changes: Option<&mut ChangeLog>,
    now: f64,
) -> Vec<Finding> {
    let d = r.domain.as_str();
    let checks = checks_for(r.mta_sts.is_some());
    m.init_domain(d, &checks, &reasons);
    let findings = r.findings();
    for c in &checks {
        let failed = findings.iter().any(|f| f.check == *c && !f.warning);
        m.check_success
            .with_label_values(&[d, c])
            .set(i64::from(!failed));
    }
    let mut counted = BTreeSet::new();
    for f in &findings {
        tracing::warn!(
            domain = d,
            check = f.check,
            reason = f.reason,
            warning = f.warning,
            "{}",
            f.message
        );
        if counted.insert((f.check, f.reason)) {
            m.check_errors
                .with_label_values(&[d, f.check, f.reason])
                .inc();
        }
    }
    // SPF
    m.spf_lookups
        .with_label_values(&[d])
        .set(i64::from(r.spf.lookups));
    m.spf_void_lookups
        .with_label_values(&[d])
        .set(i64::from(r.spf.void_lookups));
    let q = match (&r.spf.record, r.spf.all) {
        (None, _) => None,
        (Some(_), Some(q)) => Some(q.as_str()),
        (Some(_), None) => Some("none"),
    };
    DnsMetrics::one_of(&m.spf_all, &[d], &QUALIFIERS, q);
    for (ip, res) in &r.spf_results {
        let ip = ip.to_string();
        m.spf_pass
            .with_label_values(&[d, &ip])
            .set(i64::from(*res == spf::SpfResult::Pass));
        DnsMetrics::one_of(
            &m.spf_result,
            &[d, &ip],
            &spf::SpfResult::ALL,
            Some(res.as_str()),
        );
    }
    // DKIM
    for s in &r.dkim {
        m.init_selector(d, &s.selector);
        let sel = s.selector.as_str();
        let _ = m.dkim_bits.remove_label_values(&[d, sel, "rsa"]);
        let _ = m.dkim_bits.remove_label_values(&[d, sel, "ed25519"]);
        match &s.key {
            Some(k) => {
                m.dkim_bits
                    .with_label_values(&[d, sel, k.key_type.as_str()])
                    .set(i64::from(k.bits));
                m.dkim_revoked
                    .with_label_values(&[d, sel])
                    .set(i64::from(k.revoked));
                m.dkim_testing
                    .with_label_values(&[d, sel])
                    .set(i64::from(k.testing));
            }
            None => {
                m.dkim_revoked.with_label_values(&[d, sel]).set(0);
                m.dkim_testing.with_label_values(&[d, sel]).set(0);
            }
        }
        if !s.cnames.is_empty() {
            tracing::debug!(domain = d, selector = sel, cnames = ?s.cnames, "DKIM record reached through CNAME");
        }
    }
    // DMARC
    let all_p = ["none", "quarantine", "reject"];
    match &r.dmarc.found {
        Ok(disc) => {
            DnsMetrics::one_of(
                &m.dmarc_policy,
                &[d],
                &all_p,
                disc.policy_for(d).map(|p| p.as_str()),
            );
            DnsMetrics::one_of(
                &m.dmarc_subdomain_policy,
                &[d],
                &all_p,
                disc.record.subdomain_policy().map(|p| p.as_str()),
            );
            m.dmarc_pct
                .with_label_values(&[d])
                .set(i64::from(disc.record.pct));
            m.dmarc_inherited
                .with_label_values(&[d])
                .set(i64::from(disc.inherited(d)));
        }
        Err(_) => {
            DnsMetrics::one_of(&m.dmarc_policy, &[d], &all_p, None);
            DnsMetrics::one_of(&m.dmarc_subdomain_policy, &[d], &all_p, None);
            m.dmarc_pct.with_label_values(&[d]).set(0);
            m.dmarc_inherited.with_label_values(&[d]).set(0);
        }
    }
    // A destination whose authorization could not be looked up keeps its last known value.
    let dests: BTreeSet<&str> = r
        .dmarc
        .destinations
        .iter()
        .map(|(x, _)| x.as_str())
        .collect();
    crate::metrics::dns::retain(&m.dmarc_rua_authorized, &|l| {
        l.get("domain").map(String::as_str) != Some(d)
            || l.get("destination")
                .is_some_and(|x| dests.contains(x.as_str()))
    });
    for (dest, auth) in &r.dmarc.destinations {
        let known = match auth {
            Authorization::Authorized => Some(1),
            Authorization::Unauthorized => Some(0),
            Authorization::Unknown(_) => None,
        };
        if let Some(v) = known {
            m.dmarc_rua_authorized.with_label_values(&[d, dest]).set(v);
        }
    }
    // MX, MTA-STS
    m.mx_records
        .with_label_values(&[d])
        .set(r.mx.hosts.len() as i64);
    if let Some(s) = &r.mta_sts {
        let modes = ["enforce", "testing", "none"];
        DnsMetrics::one_of(
            &m.mta_sts_mode,
            &[d],
            &modes,
            s.policy.as_ref().map(|p| p.mode.as_str()),
        );
        match &s.policy {
            Some(p) => m
                .mta_sts_max_age
                .with_label_values(&[d])
                .set(p.max_age as f64),
            None => {
                let _ = m.mta_sts_max_age.remove_label_values(&[d]);
            }
        }
        // The MX hosts compared with the policy. While the policy can't be had (DNS, fetch,
        // certificate) the last comparison stands; without a policy there is none.
        let unknown = matches!(
            s.problem,
            Some((
                mta_sts::Reason::DnsError
                    | mta_sts::Reason::PolicyFetch
                    | mta_sts::Reason::Certificate,
                _
            ))
        );
        if !unknown {
            let compared = s.mx_compared.as_deref().unwrap_or_default();
            crate::metrics::dns::retain(&m.mta_sts_mx_mismatch, &|l| {
                l.get("domain").map(String::as_str) != Some(d)
                    || l.get("mx")
                        .is_some_and(|x| compared.iter().any(|(h, _)| h == x))
            });
            for (host, matched) in compared {
                m.mta_sts_mx_mismatch
                    .with_label_values(&[d, host])
                    .set(i64::from(!matched));
            }
        }
    }
    if let Some(log) = changes {
        for (c, content) in r.contents() {
            if let Some(content) = content {
                let (since, changed) = log.observe(d, c, &content, now);
                if changed {
                    tracing::info!(domain = d, check = c, "DNS record content changed");
                }
                m.record_change.with_label_values(&[d, c]).set(since);
            } else if let Some(since) = log.get(d, c) {
                m.record_change.with_label_values(&[d, c]).set(since);
            }
        }
    }
    findings
}

/// Bounded: one domain's checks should never take longer than this.
pub const DOMAIN_TIMEOUT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests;
