//! Turns reports into metric increments, with every label bounded (see [`super::names`]) and
//! every label set admitted through the cap of [`crate::metrics::reports`].
//!
//! Counting never decides *whether* a report is new: the ledger does that before anything is
//! counted. This only knows how a new report maps onto the families.

use super::dsn::Dsn;
use super::error::ReadError;
use super::feedback::{FeedbackKind, FeedbackReport};
use super::model::{AggregateReport, Policy, Report, TlsReport};
use super::names::{Domains, SourceNames};
use crate::metrics::reports::{Family, ReportMetrics};
use crate::observed::{BounceEvent, Observed};

/// What counting needs besides the report.
pub struct Counting<'a> {
    pub metrics: &'a ReportMetrics,
    pub domains: &'a Domains,
    pub sources: &'a SourceNames,
    /// Where the landing page's recent reports are kept, with the time of reading.
    pub board: Option<(&'a crate::status::ReportBoard, f64)>,
    /// Where bounces go for the canaries to tie to their canary (none in `parse-report`).
    pub bounces: Option<&'a Observed>,
}

fn yes_no(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

impl Counting<'_> {
    /// Counts a new report. `false` when nothing was counted because its domains are not
    /// configured and `reports.unknown_domains = "ignore"`.
    pub fn count(&self, report: &Report) -> bool {
        let counted = match report {
            Report::Dmarc(r) => self.count_dmarc(r),
            Report::Tls(r) => self.count_tls(r),
            Report::Bounce(d) => self.count_bounce(d),
            Report::Feedback(f) => self.count_feedback(f),
        };
        if counted && let Some((board, at)) = self.board {
            board.push(match report {
                Report::Dmarc(r) => crate::status::ReportLine {
                    at,
                    kind: "dmarc",
                    reporter: r.reporter(),
                    domain: r.policy.domain.clone(),
                    id: r.report_id.clone(),
                    messages: r.messages,
                },
                Report::Bounce(d) => crate::status::ReportLine {
                    at,
                    kind: "dsn",
                    reporter: d.reporting_mta.clone(),
                    domain: String::new(),
                    id: d.envid.clone().unwrap_or_default(),
                    messages: d.failed().count() as u64,
                },
                Report::Feedback(f) => crate::status::ReportLine {
                    at,
                    kind: "arf",
                    reporter: f.reporter.clone(),
                    domain: f.domain.clone(),
                    id: f.kind.as_str().to_string(),
                    messages: u64::from(f.incidents),
                },
                Report::Tls(r) => crate::status::ReportLine {
                    at,
                    kind: "tls-rpt",
                    reporter: r.reporter(),
                    domain: r.domain().to_string(),
                    id: r.report_id.clone(),
                    messages: r.policies.iter().map(|p| p.successful + p.failed).sum(),
                },
            });
        }
        counted
    }

    /// Counts a part that gave no report.
    pub fn count_error(&self, source: &str, error: &ReadError) {
        self.metrics
            .errors
            .with_label_values(&[source, error.reason()])
            .inc();
    }

    fn count_dmarc(&self, r: &AggregateReport) -> bool {
        let Some(domain) = self.domains.label(&r.policy.domain) else {
            return false;
        };
        let reporter = r.reporter();
        let m = self.metrics;
        let l = m.admit(Family::Reports, &[&domain, &reporter], &[1]);
        m.reports.with_label_values(&l).inc();
        for (key, &n) in &r.tallies {
            let labels = [
                domain.as_str(),
                reporter.as_str(),
                self.sources.name(key.source),
                key.disposition.as_str(),
                if key.dmarc_pass { "pass" } else { "fail" },
                yes_no(key.spf_aligned),
                yes_no(key.dkim_aligned),
            ];
            let l = m.admit(Family::Messages, &labels, &[1, 2]);
            m.messages.with_label_values(&l).inc_by(n);
        }
        if r.end > 0 {
            let l = m.admit(Family::WindowEnd, &[&domain, &reporter], &[1]);
            let g = m.window_end.with_label_values(&l);
            let end = r.end as f64;
            if end >= g.get() {
                g.set(end);
                for p in Policy::ALL {
                    let l = m.admit(Family::Policy, &[&domain, &reporter, p.as_str()], &[1]);
                    m.policy
                        .with_label_values(&l)
                        .set(i64::from(*p == r.policy.p));
                }
            }
        }
        true
    }

    /// A bounce: each failed recipient is handed to the canaries (through
    /// [`crate::observed::Observed`]), which tie it to the canary that caused it or count it
    /// as unattributed.
    fn count_bounce(&self, d: &Dsn) -> bool {
        let Some(observed) = self.bounces else {
            return true;
        };
        for r in d.failed() {
            observed.push_bounce(BounceEvent {
                tokens: d.tokens.clone(),
                status: r.status.clone(),
                class: r.class,
                reason: r.reason,
                reporting_mta: d.reporting_mta.clone(),
                diagnostic: r.diagnostic.clone(),
            });
        }
        true
    }

    /// A complaint or a DMARC failure report: counters only.
    fn count_feedback(&self, f: &FeedbackReport) -> bool {
        let Some(domain) = self.domains.label(&f.domain) else {
            return false;
        };
        let m = self.metrics;
        let l = m.admit(
            Family::Feedback,
            &[&domain, &f.reporter, f.kind.as_str()],
            &[1],
        );
        m.feedback
            .with_label_values(&l)
            .inc_by(u64::from(f.incidents));
        if f.kind == FeedbackKind::AuthFailure {
            let labels = [
                domain.as_str(),
                f.reporter.as_str(),
                f.auth_failure.as_str(),
                self.sources.name(f.source),
            ];
            let l = m.admit(Family::Failures, &labels, &[1, 3]);
            m.failures
                .with_label_values(&l)
                .inc_by(u64::from(f.incidents));
        }
        true
    }

    fn count_tls(&self, r: &TlsReport) -> bool {
        let reporter = r.reporter();
        let m = self.metrics;
        let mut counted = false;
        for p in &r.policies {
            let Some(domain) = self.domains.label(&p.domain) else {
                continue;
            };
            counted = true;
            for (result, n) in [("successful", p.successful), ("failed", p.failed)] {
                let l = m.admit(Family::TlsSessions, &[&domain, &reporter, result], &[1]);
                m.tls_sessions.with_label_values(&l).inc_by(n);
            }
            for (kind, &n) in &p.failed_by_type {
                let l = m.admit(
                    Family::TlsFailures,
                    &[&domain, &reporter, kind.as_str()],
                    &[1],
                );
                m.tls_failures.with_label_values(&l).inc_by(n);
            }
        }
        counted
    }
}
