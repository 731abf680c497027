//! The DMARC aggregate and TLS-RPT report metrics, and the cap on their label sets.
//!
//! Every label value here comes from a bounded set (configured domains, named sources,
//! closed enumerations) except `reporter`, which is normalised to a domain but still chosen
//! by whoever sends a report. So all report families share one cap on distinct label sets
//! (`reports.label_limit`): past it, a new set has its `reporter` and `source` folded into
//! `other` and `deliverability_dmarc_label_overflow_total` counts the fold.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_counter_vec, int_gauge_vec};

pub struct ReportMetrics {
    pub messages: IntCounterVec,
    pub reports: IntCounterVec,
    pub errors: IntCounterVec,
    pub window_end: GaugeVec,
    pub policy: IntGaugeVec,
    pub tls_sessions: IntCounterVec,
    pub tls_failures: IntCounterVec,
    pub feedback: IntCounterVec,
    pub failures: IntCounterVec,
    pub overflow: IntCounter,
    /// The `https` report sources' answers and listeners.
    pub http_requests: IntCounterVec,
    pub http_up: IntGaugeVec,
    guard: Mutex<Guard>,
}

struct Guard {
    limit: usize,
    seen: HashSet<String>,
}

/// Which family a label set belongs to, for the cap's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Messages,
    Reports,
    WindowEnd,
    Policy,
    TlsSessions,
    TlsFailures,
    Feedback,
    Failures,
}

impl ReportMetrics {
    pub(super) fn register(r: &Registry) -> ReportMetrics {
        let overflow = IntCounter::new(
            "deliverability_dmarc_label_overflow_total",
            "Report label sets folded into reporter=\"other\", source=\"other\" because reports.label_limit distinct label sets already exist.",
        )
        .expect("valid metric definition");
        r.register(Box::new(overflow.clone()))
            .expect("metric registered once");
        ReportMetrics {
            messages: int_counter_vec(
                r,
                "deliverability_dmarc_messages_total",
                "Messages in DMARC aggregate reports by policy domain, reporting organization (its domain), sending source (a [[reports.source_map]] name, a provider whose canaries were seen from that IP, or unknown), the receiver's disposition (none, quarantine, reject, pass, other), the DMARC result derived from the authentication results (pass, fail), and whether SPF and DKIM passed aligned with the From domain (true, false).",
                &[
                    "domain",
                    "reporter",
                    "source",
                    "disposition",
                    "dmarc",
                    "spf_aligned",
                    "dkim_aligned",
                ],
            ),
            reports: int_counter_vec(
                r,
                "deliverability_dmarc_reports_total",
                "DMARC aggregate reports counted (each once, duplicates excluded) by policy domain and reporting organization.",
                &["domain", "reporter"],
            ),
            errors: int_counter_vec(
                r,
                "deliverability_dmarc_report_errors_total",
                "Report files, archive members or attachments that gave no report, by report source and reason (io, not_a_report, too_large, too_many_members, too_many_records, corrupt_archive, malformed_xml, entities, malformed_json, invalid_report).",
                &["source", "reason"],
            ),
            window_end: gauge_vec(
                r,
                "deliverability_dmarc_report_window_end_timestamp_seconds",
                "End of the reporting period of the latest DMARC aggregate report by policy domain and reporting organization, in Unix seconds.",
                &["domain", "reporter"],
            ),
            policy: int_gauge_vec(
                r,
                "deliverability_dmarc_policy_published",
                "The DMARC policy (p=) the latest aggregate report of the reporting organization saw published for the domain: 1 for that policy, 0 for the others.",
                &["domain", "reporter", "policy"],
            ),
            tls_sessions: int_counter_vec(
                r,
                "deliverability_tlsrpt_sessions_total",
                "SMTP sessions in TLS-RPT reports by policy domain, reporting organization and result (successful, failed).",
                &["domain", "reporter", "result"],
            ),
            tls_failures: int_counter_vec(
                r,
                "deliverability_tlsrpt_failures_total",
                "Failed SMTP sessions in TLS-RPT failure details by policy domain, reporting organization and RFC 8460 result type (starttls-not-supported, certificate-expired, validation-failure, sts-policy-fetch-error, ..., other).",
                &["domain", "reporter", "type"],
            ),
            feedback: int_counter_vec(
                r,
                "deliverability_feedback_reports_total",
                "Incidents in feedback reports (ARF, RFC 5965: feedback loops' complaints, and DMARC failure reports) by reported domain, reporter (its organizational domain) and feedback type (abuse, auth-failure, fraud, not-spam, virus, other). Counters only: no recipient, subject or message is kept.",
                &["domain", "reporter", "feedback_type"],
            ),
            failures: int_counter_vec(
                r,
                "deliverability_dmarc_failure_reports_total",
                "Incidents in DMARC failure reports (RFC 6591, ARF auth-failure) by reported domain, reporter, the mechanism that failed (dmarc, spf, dkim_signature, dkim_bodyhash, dkim_revoked, adsp, unspecified) and sending source (a [[reports.source_map]] name, a provider seen sending from the IP, or unknown; never the IP).",
                &["domain", "reporter", "auth_failure", "source"],
            ),
            overflow,
            http_requests: int_counter_vec(
                r,
                "deliverability_report_http_requests_total",
                "Requests to an https report source (TLS-RPT reports POSTed, RFC 8460) by source and HTTP status code answered (200 counted or already counted, 400 unreadable, 404, 405, 413 too large, 415 wrong media type, 500, 503 ledger not saved).",
                &["source", "code"],
            ),
            http_up: int_gauge_vec(
                r,
                "deliverability_report_http_listening",
                "1 when an https report source is listening, -1 while its address cannot be bound (it retries), 0 when stopped.",
                &["source"],
            ),
            guard: Mutex::new(Guard {
                limit: 10_000,
                seen: HashSet::new(),
            }),
        }
    }

    /// Sets the cap on distinct label sets (`reports.label_limit`).
    pub fn set_label_limit(&self, limit: usize) {
        self.guard.lock().unwrap_or_else(|e| e.into_inner()).limit = limit;
    }

    /// Admits a label set of `family`. Known sets and sets under the cap pass unchanged;
    /// past the cap the values at positions `fold` become `other` (and the overflow counter
    /// counts it). Returns the labels to use.
    pub fn admit<'a>(&self, family: Family, labels: &[&'a str], fold: &[usize]) -> Vec<&'a str> {
        let key = |ls: &[&str]| {
            let mut k = format!("{family:?}");
            for l in ls {
                k.push('\u{1f}');
                k.push_str(l);
            }
            k
        };
        let mut g = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(labels);
        if g.seen.contains(&k) {
            return labels.to_vec();
        }
        if g.seen.len() < g.limit {
            g.seen.insert(k);
            return labels.to_vec();
        }
        self.overflow.inc();
        let folded: Vec<&'a str> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| if fold.contains(&i) { "other" } else { *l })
            .collect();
        g.seen.insert(key(&folded));
        folded
    }

    /// Creates the error series of a report source at 0, for every reason.
    pub fn init_source(&self, source: &str, reasons: &[&str]) {
        for reason in reasons {
            self.errors.with_label_values(&[source, reason]);
        }
    }

    /// Number of label sets admitted so far.
    pub fn label_sets(&self) -> usize {
        self.guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::Metrics;

    use super::Family;

    #[test]
    fn label_sets_past_the_limit_fold_into_other() {
        let m = Metrics::bare();
        let r = &m.reports;
        r.set_label_limit(2);
        assert_eq!(
            r.admit(Family::Reports, &["a.com", "x.com"], &[1]),
            ["a.com", "x.com"]
        );
        assert_eq!(
            r.admit(Family::Reports, &["a.com", "y.com"], &[1]),
            ["a.com", "y.com"]
        );
        assert_eq!(
            r.admit(Family::Reports, &["a.com", "x.com"], &[1]),
            ["a.com", "x.com"]
        );
        assert_eq!(
            r.admit(Family::Reports, &["a.com", "z.com"], &[1]),
            ["a.com", "other"]
        );
        assert_eq!(
            r.admit(Family::Reports, &["a.com", "w.com"], &[1]),
            ["a.com", "other"]
        );
        assert_eq!(r.overflow.get(), 2);
        assert_eq!(r.label_sets(), 3, "the folded set is admitted once");
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains("deliverability_dmarc_label_overflow_total 2"),
            "{text}"
        );
    }
}
