//! DNS record and blacklist metric families. Labels are bounded: `domain` is a configured
//! domain (or a `/probe` target), `selector` and `ip` come from the configuration or from
//! canaries (a few per domain), `destination` from the domain's own DMARC record, `target` and
//! `zone` from `[dnsbl]`; `check`, `reason`, `qualifier`, `policy`, `mode`, `result` and `type`
//! come from fixed sets.

use std::collections::HashMap;

use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_counter_vec, int_gauge_vec};

/// The values of the `check` label of the record checks.
pub const CHECKS: [&str; 6] = ["spf", "dkim", "dmarc", "mx", "mta_sts", "tls_rpt"];

/// The `qualifier` values of `deliverability_spf_all_qualifier`; `none` means no `all`.
pub const QUALIFIERS: [&str; 5] = ["pass", "fail", "softfail", "neutral", "none"];

/// Name prefixes of the families below (what `/probe` returns).
pub const PREFIXES: [&str; 8] = [
    "deliverability_dns_",
    "deliverability_spf_",
    "deliverability_dkim_",
    "deliverability_dmarc_",
    "deliverability_mx_",
    "deliverability_mta_sts_",
    "deliverability_dnsbl_",
    "deliverability_probe_",
];

pub struct DnsMetrics {
    pub check_success: IntGaugeVec,
    pub check_errors: IntCounterVec,
    pub record_change: GaugeVec,
    pub spf_lookups: IntGaugeVec,
    pub spf_void_lookups: IntGaugeVec,
    pub spf_all: IntGaugeVec,
    pub spf_pass: IntGaugeVec,
    pub spf_result: IntGaugeVec,
    pub dkim_bits: IntGaugeVec,
    pub dkim_revoked: IntGaugeVec,
    pub dkim_testing: IntGaugeVec,
    pub dmarc_policy: IntGaugeVec,
    pub dmarc_subdomain_policy: IntGaugeVec,
    pub dmarc_pct: IntGaugeVec,
    pub dmarc_rua_authorized: IntGaugeVec,
    pub dmarc_inherited: IntGaugeVec,
    pub mx_records: IntGaugeVec,
    pub mta_sts_mode: IntGaugeVec,
    pub mta_sts_max_age: GaugeVec,
    pub mta_sts_mx_mismatch: IntGaugeVec,
    pub dnsbl_listed: IntGaugeVec,
    pub dnsbl_error: IntGaugeVec,
    pub dnsbl_zone_healthy: IntGaugeVec,
    pub probe_success: IntGaugeVec,
    pub probe_duration: GaugeVec,
}

impl DnsMetrics {
    pub fn new(r: &Registry) -> DnsMetrics {
        DnsMetrics {
            check_success: int_gauge_vec(
                r,
                "deliverability_dns_check_success",
                "Whether the domain's record of this kind (spf, dkim, dmarc, mx, mta_sts, tls_rpt) was found and is in order (1) or not (0) at the last check.",
                &["domain", "check"],
            ),
            check_errors: int_counter_vec(
                r,
                "deliverability_dns_check_errors_total",
                "Checks of the domain's record of this kind that found a problem, by reason (unauthorized_destination of dmarc, and dns_error while looking up a report destination's authorization, are warnings: counted here, the check stays successful).",
                &["domain", "check", "reason"],
            ),
            record_change: gauge_vec(
                r,
                "deliverability_dns_record_change_timestamp_seconds",
                "Unix time the content of the domain's record(s) of this kind was first seen as it is now (kept across restarts).",
                &["domain", "check"],
            ),
            spf_lookups: int_gauge_vec(
                r,
                "deliverability_spf_dns_lookups",
                "DNS-querying terms (include, a, mx, ptr, exists, redirect) of the domain's SPF record, counted through every include; receivers allow 10.",
                &["domain"],
            ),
            spf_void_lookups: int_gauge_vec(
                r,
                "deliverability_spf_void_lookups",
                "Lookups of the domain's SPF tree that returned NXDOMAIN or no data; receivers allow 2.",
                &["domain"],
            ),
            spf_all: int_gauge_vec(
                r,
                "deliverability_spf_all_qualifier",
                "The qualifier of the all mechanism that ends the domain's SPF record (1 for the published one; none: no all).",
                &["domain", "qualifier"],
            ),
            spf_pass: int_gauge_vec(
                r,
                "deliverability_spf_pass",
                "Whether SPF passes for mail from the domain sent by this IP (configured expected_ips and sending hosts seen in canaries).",
                &["domain", "ip"],
            ),
            spf_result: int_gauge_vec(
                r,
                "deliverability_spf_check_host_result",
                "The SPF result for mail from the domain sent by this IP (1 for the current result).",
                &["domain", "ip", "result"],
            ),
            dkim_bits: int_gauge_vec(
                r,
                "deliverability_dkim_key_bits",
                "Size of the DKIM public key published for the selector (RSA modulus bits; 256 for ed25519; 0 when revoked).",
                &["domain", "selector", "type"],
            ),
            dkim_revoked: int_gauge_vec(
                r,
                "deliverability_dkim_key_revoked",
                "Whether the selector's DKIM key is revoked (empty p=).",
                &["domain", "selector"],
            ),
            dkim_testing: int_gauge_vec(
                r,
                "deliverability_dkim_key_testing",
                "Whether the selector's DKIM record has the testing flag t=y.",
                &["domain", "selector"],
            ),
            dmarc_policy: int_gauge_vec(
                r,
                "deliverability_dmarc_policy",
                "The DMARC policy applied to mail from the domain (1 for the one in effect): its own p=, or its organizational domain's sp= (or p=) when it publishes none.",
                &["domain", "policy"],
            ),
            dmarc_subdomain_policy: int_gauge_vec(
                r,
                "deliverability_dmarc_subdomain_policy",
                "The DMARC policy for subdomains in the domain's DMARC record (sp=, else p=; 1 for the one in effect).",
                &["domain", "policy"],
            ),
            dmarc_pct: int_gauge_vec(
                r,
                "deliverability_dmarc_pct",
                "The pct= of the domain's DMARC record (legacy; 100 when absent).",
                &["domain"],
            ),
            dmarc_rua_authorized: int_gauge_vec(
                r,
                "deliverability_dmarc_rua_authorized",
                "Whether a report destination domain (rua or ruf) may receive the domain's reports: 1 when it is inside the organizational domain or publishes the external authorization record, 0 when it answered without one; kept at its last value while that lookup fails.",
                &["domain", "destination"],
            ),
            dmarc_inherited: int_gauge_vec(
                r,
                "deliverability_dmarc_inherited",
                "1 when the domain publishes no DMARC record of its own and the policy comes from its organizational domain (tree walk).",
                &["domain"],
            ),
            mx_records: int_gauge_vec(
                r,
                "deliverability_mx_records",
                "Number of MX records of the domain (a null MX counts 0).",
                &["domain"],
            ),
            mta_sts_mode: int_gauge_vec(
                r,
                "deliverability_mta_sts_mode",
                "The mode of the domain's MTA-STS policy (1 for the one in effect).",
                &["domain", "mode"],
            ),
            mta_sts_max_age: gauge_vec(
                r,
                "deliverability_mta_sts_max_age_seconds",
                "The max_age of the domain's MTA-STS policy.",
                &["domain"],
            ),
            mta_sts_mx_mismatch: int_gauge_vec(
                r,
                "deliverability_mta_sts_mx_mismatch",
                "Whether this MX host of the domain matches no mx: pattern of the domain's MTA-STS policy (1), so senders applying the policy in enforce mode will not deliver to it; 0 when it matches. Only while a policy in testing or enforce mode is known; kept at its last value while the policy cannot be fetched.",
                &["domain", "mx"],
            ),
            dnsbl_listed: int_gauge_vec(
                r,
                "deliverability_dnsbl_listed",
                "Whether the target (IP or domain) is listed in the DNS blacklist zone; never 1 for an error answer.",
                &["target", "zone"],
            ),
            dnsbl_error: int_gauge_vec(
                r,
                "deliverability_dnsbl_error",
                "Whether the last query of the target in the zone ended in this kind of error (1) instead of an answer.",
                &["target", "zone", "reason"],
            ),
            dnsbl_zone_healthy: int_gauge_vec(
                r,
                "deliverability_dnsbl_zone_healthy",
                "Whether the DNS blacklist zone answers correctly (RFC 5782 test entry listed, 127.0.0.1/invalid not listed).",
                &["zone"],
            ),
            probe_success: int_gauge_vec(
                r,
                "deliverability_probe_success",
                "Whether every check of the /probe target succeeded within the scrape timeout.",
                &["module"],
            ),
            probe_duration: gauge_vec(
                r,
                "deliverability_probe_duration_seconds",
                "How long the /probe took.",
                &["module"],
            ),
        }
    }

    /// Creates the series of a domain's record checks (zero), keeping existing values.
    pub fn init_domain(
        &self,
        domain: &str,
        checks: &[&str],
        reasons: &dyn Fn(&str) -> &'static [&'static str],
    ) {
        for c in checks {
            self.check_success.with_label_values(&[domain, c]);
            for r in reasons(c) {
                self.check_errors.with_label_values(&[domain, c, r]);
            }
        }
        self.spf_lookups.with_label_values(&[domain]);
        self.spf_void_lookups.with_label_values(&[domain]);
        for q in QUALIFIERS {
            self.spf_all.with_label_values(&[domain, q]);
        }
        for p in ["none", "quarantine", "reject"] {
            self.dmarc_policy.with_label_values(&[domain, p]);
            self.dmarc_subdomain_policy.with_label_values(&[domain, p]);
        }
        self.dmarc_pct.with_label_values(&[domain]);
        self.dmarc_inherited.with_label_values(&[domain]);
        self.mx_records.with_label_values(&[domain]);
        if checks.contains(&"mta_sts") {
            for m in ["enforce", "testing", "none"] {
                self.mta_sts_mode.with_label_values(&[domain, m]);
            }
        }
    }

    pub fn init_selector(&self, domain: &str, selector: &str) {
        self.dkim_revoked.with_label_values(&[domain, selector]);
        self.dkim_testing.with_label_values(&[domain, selector]);
    }

    /// `results`: every value of the `result` label of `deliverability_spf_check_host_result`.
    pub fn init_ip(&self, domain: &str, ip: &str, results: &[&str]) {
        self.spf_pass.with_label_values(&[domain, ip]);
        for r in results {
            self.spf_result.with_label_values(&[domain, ip, r]);
        }
    }

    /// `reasons`: every value of the `reason` label of `deliverability_dnsbl_error`.
    pub fn init_dnsbl(&self, target: &str, zone: &str, reasons: &[&str]) {
        self.dnsbl_listed.with_label_values(&[target, zone]);
        for r in reasons {
            self.dnsbl_error.with_label_values(&[target, zone, r]);
        }
    }

    pub fn init_zone(&self, zone: &str) {
        self.dnsbl_zone_healthy.with_label_values(&[zone]);
    }

    /// Sets `value` to 1 and every other value of `label` (among `all`) to 0.
    pub fn one_of(vec: &IntGaugeVec, fixed: &[&str], all: &[&str], value: Option<&str>) {
        for v in all {
            let mut labels: Vec<&str> = fixed.to_vec();
            labels.push(v);
            vec.with_label_values(&labels)
                .set(i64::from(Some(*v) == value));
        }
    }

    /// Removes the series of the record-check families for which `keep` says no.
    pub fn retain_domains(&self, keep: &dyn Fn(&HashMap<String, String>) -> bool) {
        retain(&self.check_success, keep);
        retain(&self.check_errors, keep);
        retain(&self.record_change, keep);
        retain(&self.spf_lookups, keep);
        retain(&self.spf_void_lookups, keep);
        retain(&self.spf_all, keep);
        retain(&self.spf_pass, keep);
        retain(&self.spf_result, keep);
        retain(&self.dkim_bits, keep);
        retain(&self.dkim_revoked, keep);
        retain(&self.dkim_testing, keep);
        retain(&self.dmarc_policy, keep);
        retain(&self.dmarc_subdomain_policy, keep);
        retain(&self.dmarc_pct, keep);
        retain(&self.dmarc_rua_authorized, keep);
        retain(&self.dmarc_inherited, keep);
        retain(&self.mx_records, keep);
        retain(&self.mta_sts_mode, keep);
        retain(&self.mta_sts_max_age, keep);
        retain(&self.mta_sts_mx_mismatch, keep);
    }

    /// Removes the blacklist series for which `keep` says no.
    pub fn retain_dnsbl(&self, keep: &dyn Fn(&HashMap<String, String>) -> bool) {
        retain(&self.dnsbl_listed, keep);
        retain(&self.dnsbl_error, keep);
        retain(&self.dnsbl_zone_healthy, keep);
    }
}

/// Something whose series can be listed and removed by label values.
pub trait Removable: Collector {
    fn remove_values(&self, values: &[&str]);
}

impl<T: prometheus::core::MetricVecBuilder> Removable for prometheus::core::MetricVec<T> {
    fn remove_values(&self, values: &[&str]) {
        let _ = self.remove_label_values(values);
    }
}

/// Removes every series of `vec` whose labels `keep` rejects.
pub fn retain(vec: &dyn Removable, keep: &dyn Fn(&HashMap<String, String>) -> bool) {
    for mf in vec.collect() {
        for m in mf.get_metric() {
            let labels: HashMap<String, String> = m
                .get_label()
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            if !keep(&labels) {
                // Values in the order of the vec's label names, which are sorted here as in
                // the exposition; reorder by the family's declared names.
                let names = vec
                    .desc()
                    .first()
                    .map(|d| d.variable_labels.clone())
                    .unwrap_or_default();
                let values: Vec<&str> = names
                    .iter()
                    .map(|n| labels.get(n).map(String::as_str).unwrap_or(""))
                    .collect();
                vec.remove_values(&values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_removes_only_rejected_series() {
        let r = Registry::new();
        let m = DnsMetrics::new(&r);
        m.init_domain("a.example", &CHECKS, &|_| &["x"]);
        m.init_domain("b.example", &CHECKS, &|_| &["x"]);
        m.check_success
            .with_label_values(&["a.example", "spf"])
            .set(1);
        m.retain_domains(&|l| l.get("domain").map(String::as_str) != Some("b.example"));
        let text = {
            let mut buf = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(
            text.contains("deliverability_dns_check_success{check=\"spf\",domain=\"a.example\"} 1"),
            "{text}"
        );
        assert!(!text.contains("b.example"), "{text}");
        assert!(text.contains("deliverability_dns_check_errors_total{check=\"dkim\",domain=\"a.example\",reason=\"x\"} 0"));
    }

    #[test]
    fn one_of_sets_exactly_one() {
        let r = Registry::new();
        let m = DnsMetrics::new(&r);
        DnsMetrics::one_of(&m.spf_all, &["d"], &QUALIFIERS, Some("softfail"));
        assert_eq!(m.spf_all.with_label_values(&["d", "softfail"]).get(), 1);
        assert_eq!(m.spf_all.with_label_values(&["d", "pass"]).get(), 0);
        DnsMetrics::one_of(&m.spf_all, &["d"], &QUALIFIERS, None);
        assert_eq!(m.spf_all.with_label_values(&["d", "softfail"]).get(), 0);
    }
}
