//! The mailbox providers' own signals: Google Postmaster Tools (per domain) and Microsoft SNDS
//! (per sending IP). Both are daily data polled hourly, so every family is a gauge holding the
//! newest day with data, beside the day it describes; a poll that fails keeps the last values
//! and says why in the `..._state` family instead of zeroing them.
//!
//! Label values are bounded: domains by `postmaster.domains` or `postmaster.max_domains`, IPs by
//! `snds.max_ips`, every other label by a closed set.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_gauge_vec};

/// The states of a poll, one-hot in `deliverability_postmaster_state` and
/// `deliverability_snds_state`.
pub const STATES: [&str; 7] = [
    "ok",
    "no_data",
    "denied",
    "not_found",
    "rate_limited",
    "unauthenticated",
    "error",
];

pub struct SignalMetrics {
    pub pm_state: IntGaugeVec,
    pub pm_spam_rate: GaugeVec,
    pub pm_auth_rate: GaugeVec,
    pub pm_tls_rate: GaugeVec,
    pub pm_delivery_error_rate: GaugeVec,
    pub pm_feedback_loop_spam_rate: GaugeVec,
    pub pm_data_day: GaugeVec,
    pub pm_requirement: IntGaugeVec,
    pub snds_state: IntGaugeVec,
    pub snds_filter: IntGaugeVec,
    pub snds_complaint_rate: GaugeVec,
    pub snds_trap_hits: GaugeVec,
    pub snds_rcpt: GaugeVec,
    pub snds_data: GaugeVec,
    pub snds_recipients: GaugeVec,
    pub snds_data_day: GaugeVec,
    pub snds_blocked: IntGaugeVec,
    /// The label sets set by the last successful poll of each family, to drop the ones a new
    /// poll no longer reports (a domain removed, an IP gone).
    kept: Mutex<std::collections::HashMap<&'static str, HashSet<Vec<String>>>>,
}

impl SignalMetrics {
    pub(super) fn register(r: &Registry) -> SignalMetrics {
        SignalMetrics {
            pm_state: int_gauge_vec(
                r,
                "deliverability_postmaster_state",
                "The state of the last Google Postmaster Tools poll of the domain, 1 for the current one: ok, no_data (no day with data in the window: low volume), denied (403: the account may not read the domain), not_found, rate_limited (429), unauthenticated (the token was refused), error. The other postmaster gauges keep the last data while the state is not ok.",
                &["domain", "state"],
            ),
            pm_spam_rate: gauge_vec(
                r,
                "deliverability_postmaster_spam_rate",
                "Gmail's user-reported spam rate of the domain's mail on the newest day with data (a fraction, 0-1; Gmail's thresholds: 0.001 and 0.003).",
                &["domain"],
            ),
            pm_auth_rate: gauge_vec(
                r,
                "deliverability_postmaster_auth_success_rate",
                "The fraction of the domain's mail that passed SPF, DKIM or DMARC at Gmail on the newest day with data.",
                &["domain", "method"],
            ),
            pm_tls_rate: gauge_vec(
                r,
                "deliverability_postmaster_tls_encryption_rate",
                "The fraction of the domain's mail Gmail received over TLS on the newest day with data.",
                &["domain"],
            ),
            pm_delivery_error_rate: gauge_vec(
                r,
                "deliverability_postmaster_delivery_error_rate",
                "The fraction of the domain's mail Gmail rejected or deferred on the newest day with data, by error class (permanent, temporary, all) and type (Gmail's reason in snake case, or all).",
                &["domain", "class", "type"],
            ),
            pm_feedback_loop_spam_rate: gauge_vec(
                r,
                "deliverability_postmaster_feedback_loop_spam_rate",
                "The highest spam rate of the domain's Feedback-ID identifiers at Gmail on the newest day with data (a fraction, 0-1).",
                &["domain"],
            ),
            pm_data_day: gauge_vec(
                r,
                "deliverability_postmaster_data_day_timestamp_seconds",
                "Unix time of the start (00:00 UTC) of the day the domain's postmaster gauges describe: Gmail publishes a day's data a day or two later.",
                &["domain"],
            ),
            pm_requirement: int_gauge_vec(
                r,
                "deliverability_postmaster_requirement_met",
                "Gmail's verdict on a sender requirement for the domain (domains.getComplianceStatus): 1 compliant, 0 needs work; the requirement names the exporter's own checks use where one matches (deliverability_sender_requirement_met), else Gmail's in snake case.",
                &["domain", "requirement"],
            ),
            snds_state: int_gauge_vec(
                r,
                "deliverability_snds_state",
                "The state of the last Microsoft SNDS poll, 1 for the current one (as deliverability_postmaster_state; denied: the key was refused). The other SNDS gauges keep the last data while it is not ok.",
                &["state"],
            ),
            snds_filter: int_gauge_vec(
                r,
                "deliverability_snds_filter_result",
                "Outlook.com's spam filter verdict on the IP's mail on the newest day with data, 1 for the current one: green (under 10% spam), yellow (10-90%), red (over 90%).",
                &["ip", "result"],
            ),
            snds_complaint_rate: gauge_vec(
                r,
                "deliverability_snds_complaint_rate",
                "The upper bound of the complaint rate band SNDS reports for the IP (a fraction: 0.001 for \"< 0.1%\").",
                &["ip"],
            ),
            snds_trap_hits: gauge_vec(
                r,
                "deliverability_snds_trap_hits",
                "Messages from the IP that reached Outlook.com's spam traps on the newest day with data.",
                &["ip"],
            ),
            snds_rcpt: gauge_vec(
                r,
                "deliverability_snds_rcpt_commands",
                "RCPT commands from the IP on the newest day with data.",
                &["ip"],
            ),
            snds_data: gauge_vec(
                r,
                "deliverability_snds_data_commands",
                "DATA commands from the IP on the newest day with data.",
                &["ip"],
            ),
            snds_recipients: gauge_vec(
                r,
                "deliverability_snds_message_recipients",
                "Message recipients from the IP on the newest day with data.",
                &["ip"],
            ),
            snds_data_day: gauge_vec(
                r,
                "deliverability_snds_data_day_timestamp_seconds",
                "Unix time of the end of the activity period the IP's SNDS gauges describe.",
                &["ip"],
            ),
            snds_blocked: int_gauge_vec(
                r,
                "deliverability_snds_ip_blocked",
                "1 for an IP SNDS lists as blocked by Outlook.com, with the reason as a closed set; 0 for one listed as not blocked.",
                &["ip", "reason"],
            ),
            kept: Mutex::new(Default::default()),
        }
    }

    /// Sets the one-hot state of a poll.
    pub fn set_state(vec: &IntGaugeVec, prefix: &[&str], state: &str) {
        for s in STATES {
            let mut labels = prefix.to_vec();
            labels.push(s);
            vec.with_label_values(&labels).set(i64::from(s == state));
        }
    }

    /// Remembers that `family` now holds `sets` (label values, in order) and removes the label
    /// sets of the previous call that are not among them, except those `carry` keeps (a
    /// domain whose poll failed or had no data keeps its last values).
    pub fn keep_only(
        &self,
        family: &'static str,
        vecs: &[&dyn Remove],
        mut sets: HashSet<Vec<String>>,
        carry: &dyn Fn(&[String]) -> bool,
    ) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let old = kept.remove(family).unwrap_or_default();
        for gone in old {
            if sets.contains(&gone) {
                continue;
            }
            if carry(&gone) {
                sets.insert(gone);
                continue;
            }
            let labels: Vec<&str> = gone.iter().map(String::as_str).collect();
            for v in vecs {
                v.remove(&labels);
            }
        }
        kept.insert(family, sets);
    }

    /// The distinct first label values `family` holds (the domains of a postmaster family).
    pub fn subjects(&self, family: &'static str) -> Vec<String> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = kept
            .get(family)
            .into_iter()
            .flatten()
            .filter_map(|l| l.first().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Drops every Postmaster Tools series (the section was removed from the configuration).
    pub fn reset_postmaster(&self) {
        self.pm_state.reset();
        for v in [
            &self.pm_spam_rate,
            &self.pm_auth_rate,
            &self.pm_tls_rate,
            &self.pm_delivery_error_rate,
            &self.pm_feedback_loop_spam_rate,
            &self.pm_data_day,
        ] {
            v.reset();
        }
        self.pm_requirement.reset();
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|f, _| !f.starts_with("pm_"));
    }

    /// Drops every SNDS series (the section was removed from the configuration).
    pub fn reset_snds(&self) {
        for v in [&self.snds_state, &self.snds_filter, &self.snds_blocked] {
            v.reset();
        }
        for v in [
            &self.snds_complaint_rate,
            &self.snds_trap_hits,
            &self.snds_rcpt,
            &self.snds_data,
            &self.snds_recipients,
            &self.snds_data_day,
        ] {
            v.reset();
        }
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|f, _| !f.starts_with("snds_"));
    }
}

/// A vector whose series can be removed by label values (gauges of either kind).
pub trait Remove {
    fn remove(&self, labels: &[&str]);
}

impl Remove for GaugeVec {
    fn remove(&self, labels: &[&str]) {
        let _ = self.remove_label_values(labels);
    }
}

impl Remove for IntGaugeVec {
    fn remove(&self, labels: &[&str]) {
        let _ = self.remove_label_values(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::core::Collector;

    #[test]
    fn keep_only_drops_what_is_gone_unless_carried() {
        let m = SignalMetrics::register(&Registry::new());
        let set = |labels: &[&[&str]]| -> HashSet<Vec<String>> {
            labels
                .iter()
                .map(|l| l.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        for d in ["a.example", "b.example", "c.example"] {
            m.pm_spam_rate.with_label_values(&[d]).set(0.001);
        }
        let none = |_: &[String]| false;
        m.keep_only(
            "pm_spam",
            &[&m.pm_spam_rate],
            set(&[&["a.example"], &["b.example"], &["c.example"]]),
            &none,
        );
        // b failed (carried), c is gone: c's series goes, b's stays.
        let carry = |l: &[String]| l[0] == "b.example";
        m.keep_only(
            "pm_spam",
            &[&m.pm_spam_rate],
            set(&[&["a.example"]]),
            &carry,
        );
        let left: Vec<String> = m
            .pm_spam_rate
            .collect()
            .iter()
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|x| x.get_label()[0].value().to_string())
            })
            .collect();
        assert_eq!(left, ["a.example", "b.example"]);
        assert_eq!(m.subjects("pm_spam"), ["a.example", "b.example"]);
        m.reset_postmaster();
        assert!(m.subjects("pm_spam").is_empty());
        assert!(m.pm_spam_rate.collect()[0].get_metric().is_empty());
    }
}
