//! Canary metric families: sends, SMTP stages, deliveries, placement, the receivers' verdicts,
//! TLS facts and the IMAP watchers. Labels are bounded: `provider` and `seed` are configured
//! names, `stage`, `class`, `placement`, `path`, `method`, `result` and `source` come from fixed sets,
//! `code` is a three-digit SMTP reply code or empty.

use std::sync::Arc;

use super::family::{Families, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec};

pub struct CanaryMetrics {
    pub sent: Arc<IntCounterVec>,
    pub send_failures: Arc<IntCounterVec>,
    pub send_success: Arc<IntGaugeVec>,
    pub smtp_failures: Arc<IntCounterVec>,
    pub retries: Arc<IntCounterVec>,
    pub stage_duration: Arc<HistogramVec>,
    pub delivered: Arc<IntCounterVec>,
    pub provider_delivery_duration: Arc<HistogramVec>,
    pub seed_delivery_duration: Arc<HistogramVec>,
    pub last_delivery_duration: Arc<GaugeVec>,
    /// Per route; observed only with `canary.route_histograms = true`.
    pub delivery_duration: Arc<HistogramVec>,
    pub detected: Arc<IntCounterVec>,
    pub lost: Arc<IntCounterVec>,
    pub late: Arc<IntCounterVec>,
    pub uncertain: Arc<IntCounterVec>,
    pub in_flight: Arc<IntGaugeVec>,
    pub auth_results: Arc<IntCounterVec>,
    pub spam_score: Arc<GaugeVec>,
    pub success: Arc<IntGaugeVec>,
    pub last_success: Arc<GaugeVec>,
    pub last_send: Arc<GaugeVec>,
    pub auth_mechanism: Arc<IntGaugeVec>,
    pub cert_expiry: Arc<GaugeVec>,
    pub tls_version: Arc<IntGaugeVec>,
    pub imap_up: Arc<IntGaugeVec>,
    pub imap_reconnects: Arc<IntCounterVec>,
    pub verify_interval: Arc<GaugeVec>,
    pub bounced: Arc<IntCounterVec>,
    pub bounces_unattributed: Arc<IntCounterVec>,
    pub requirement_met: Arc<IntGaugeVec>,
    /// Per route; set only with `canary.route_requirements = true`.
    pub route_requirement_met: Arc<IntGaugeVec>,
    /// Every family above, for the encoder.
    pub families: Families,
}

/// The `placement` label of `deliverability_canary_delivered_total`.
pub const PLACEMENTS: [&str; 3] = ["inbox", "spam", "other"];

/// The series [`CanaryMetrics::init_route`] creates for a route: 9 gauges and counters, one
/// per placement, one per passing SPF/DKIM/DMARC verdict. A delivered canary adds one per
/// spam filter that scored it (one on most receivers); each other verdict (a DKIM `fail`, an
/// `arc` result) and each failure (stage, class, reply code) adds one when it first happens.
pub const ROUTE_SERIES: usize = 9 + PLACEMENTS.len() + 3;

/// The `path` label of `deliverability_canary_detected_total`.
pub const DETECTION_PATHS: [&str; 3] = ["push", "poll", "scan"];

/// SMTP stages take milliseconds on a good day and tens of seconds on a bad one.
pub const STAGE_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Delivery takes from a fraction of a second to an hour.
pub const DELIVERY_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    3600.0,
];

impl CanaryMetrics {
    pub fn new() -> CanaryMetrics {
        let mut f = Families::default();
        CanaryMetrics {
            sent: f.counter(
                "deliverability_canary_sent_total",
                "Canaries accepted by the provider (final reply to the message was 2xx).",
                &["provider", "seed"],
            ),
            send_failures: f.counter(
                "deliverability_canary_send_failures_total",
                "Canaries the provider did not accept, by SMTP stage, failure class (transient, permanent, network, tls, timeout, uncertain, protocol) and SMTP reply code (empty when there was no reply).",
                &["provider", "seed", "stage", "class", "code"],
            ),
            send_success: f.int_gauge(
                "deliverability_canary_send_success",
                "Whether the last send attempt of the route was accepted by the provider (1) or failed at an SMTP stage (0); 0 before the first attempt (see deliverability_canary_last_send_timestamp_seconds).",
                &["provider", "seed"],
            ),
            smtp_failures: f.counter(
                "deliverability_smtp_failures_total",
                "Send attempts through the provider that failed, by SMTP stage and failure class; every stage and class exists from the first scrape, so a single failure shows in increase(). The reply code is in deliverability_canary_send_failures_total.",
                &["provider", "stage", "class"],
            ),
            retries: f.counter(
                "deliverability_canary_retries_total",
                "Sends through the provider tried again after a failure (after 30 s, 1 min, 2 min, within the canary interval).",
                &["provider"],
            ),
            stage_duration: f.histogram(
                "deliverability_smtp_stage_duration_seconds",
                "Time each completed SMTP stage took (connect, tls, ehlo, starttls, auth, mail_from, rcpt_to, data, body).",
                &["provider", "stage"],
                &STAGE_BUCKETS,
            ),
            delivered: f.counter(
                "deliverability_canary_delivered_total",
                "Canaries found in the seed mailbox, by placement (inbox, spam, other).",
                &["provider", "seed", "placement"],
            ),
            provider_delivery_duration: f.histogram(
                "deliverability_canary_provider_delivery_duration_seconds",
                "Time from the provider's final reply to the message until the canary was seen in the seed mailbox. A canary found by the scan at start-up or after a reconnect is timed by its INTERNALDATE, which has one-second resolution: the end of that second (never later than it was seen), an upper bound accurate to a second, never 0; one found after its deadline is counted late instead. By provider, over all seeds.",
                &["provider"],
                &DELIVERY_BUCKETS,
            ),
            seed_delivery_duration: f.histogram(
                "deliverability_canary_seed_delivery_duration_seconds",
                "Time from the provider's final reply to the message until the canary was seen in the seed mailbox. A canary found by the scan at start-up or after a reconnect is timed by its INTERNALDATE, which has one-second resolution: the end of that second (never later than it was seen), an upper bound accurate to a second, never 0; one found after its deadline is counted late instead. By seed, over all providers.",
                &["seed"],
                &DELIVERY_BUCKETS,
            ),
            last_delivery_duration: f.gauge(
                "deliverability_canary_last_delivery_duration_seconds",
                "The delivery time of the route's last delivered canary (as in deliverability_canary_provider_delivery_duration_seconds); 0 before the first.",
                &["provider", "seed"],
            ),
            delivery_duration: f.histogram(
                "deliverability_canary_delivery_duration_seconds",
                "Time from the provider's final reply to the message until the canary was seen in the seed mailbox. A canary found by the scan at start-up or after a reconnect is timed by its INTERNALDATE, which has one-second resolution: the end of that second (never later than it was seen), an upper bound accurate to a second, never 0; one found after its deadline is counted late instead. By route; exported only with canary.route_histograms = true (18 series per route).",
                &["provider", "seed"],
                &DELIVERY_BUCKETS,
            ),
            detected: f.counter(
                "deliverability_canary_detected_total",
                "Canaries delivered to the seed (from all providers), by the path that found them: push (the seed's server announced the new message), poll (the watcher searched on its own: every canary.verify_interval while canaries are in flight, at an IDLE refresh, or polling a server without IDLE), scan (the search at start-up or after a reconnect). A seed whose canaries are all found by poll has a server that does not push.",
                &["seed", "path"],
            ),
            lost: f.counter(
                "deliverability_canary_lost_total",
                "Canaries accepted by the provider but not seen in the seed by canary.deadline (counted once the seed's watched folders were searched after the deadline).",
                &["provider", "seed"],
            ),
            late: f.counter(
                "deliverability_canary_late_total",
                "Canaries seen in the seed after they had been counted lost.",
                &["provider", "seed"],
            ),
            uncertain: f.counter(
                "deliverability_canary_uncertain_total",
                "Canaries sent through the provider whose final reply never came after the message was sent; they are still watched for.",
                &["provider"],
            ),
            in_flight: f.int_gauge(
                "deliverability_canary_in_flight",
                "Canaries sent and not yet seen or lost.",
                &["provider", "seed"],
            ),
            auth_results: f.counter(
                "deliverability_canary_auth_results_total",
                "The receiving seed's verdicts on delivered canaries from its Authentication-Results, by method (spf, dkim, dmarc, arc) and result.",
                &["provider", "seed", "method", "result"],
            ),
            spam_score: f.gauge(
                "deliverability_canary_spam_score",
                "The spam score the receiver gave the last delivered canary, by the filter that wrote it.",
                &["provider", "seed", "source"],
            ),
            success: f.int_gauge(
                "deliverability_canary_success",
                "1 when the last canary of the route was accepted and arrived in the inbox; 0 after a send failure, spam placement or loss.",
                &["provider", "seed"],
            ),
            last_success: f.gauge(
                "deliverability_canary_last_success_timestamp_seconds",
                "Unix time the last canary of the route arrived in the inbox; 0 if none has yet.",
                &["provider", "seed"],
            ),
            last_send: f.gauge(
                "deliverability_canary_last_send_timestamp_seconds",
                "Unix time of the last send attempt on the route.",
                &["provider", "seed"],
            ),
            auth_mechanism: f.int_gauge(
                "deliverability_smtp_auth_mechanism_info",
                "The SMTP AUTH mechanism used at the last send through the provider (1 for the one used).",
                &["provider", "mechanism"],
            ),
            cert_expiry: f.gauge(
                "deliverability_smtp_tls_certificate_expiry_timestamp_seconds",
                "Unix time the provider's SMTP server certificate expires, as seen at the last send.",
                &["provider"],
            ),
            tls_version: f.int_gauge(
                "deliverability_smtp_tls_version_info",
                "The TLS version negotiated with the provider at the last send (1 for the current one).",
                &["provider", "version"],
            ),
            imap_up: f.int_gauge(
                "deliverability_imap_up",
                "Whether the watcher of the seed's folder is connected, logged in and watching (1) or not (0).",
                &["seed", "folder"],
            ),
            imap_reconnects: f.counter(
                "deliverability_imap_reconnects_total",
                "Times the watcher of the seed's folder had to connect again after an error.",
                &["seed", "folder"],
            ),
            verify_interval: f.gauge(
                "deliverability_imap_verify_interval_seconds",
                "How often the seed's watchers search for canaries in flight whatever the server announces (canary.verify_interval; poll_interval if shorter on a server without IDLE): the bound on detection latency, in seconds.",
                &["seed"],
            ),
            bounced: f.counter(
                "deliverability_canary_bounced_total",
                "Canaries that bounced after the provider accepted them: a delivery status notification (RFC 3464) for the canary arrived in a report source, by class (permanent, transient) and reason (policy, blocklist, authentication, reputation, rate_limit, mailbox_full, unknown_user, other). The canary ends there and is not counted lost (one already counted lost is counted here too).",
                &["provider", "seed", "class", "reason"],
            ),
            bounces_unattributed: f.counter(
                "deliverability_bounces_unattributed_total",
                "Bounces read from the report sources that name no canary of this exporter (another sender's, or older than its memory), by class and reason. Never attributed to a route.",
                &["class", "reason"],
            ),
            requirement_met: f.int_gauge(
                "deliverability_sender_requirement_met",
                "Whether the provider's mail meets a bulk-sender requirement of the mailbox providers (spf, dkim, spf_and_dkim, dmarc_policy, dmarc_alignment, dns_records, encryption, message_formatting, one_click_unsubscribe), judged on the last delivered canary of each of its routes: 1 when every one that could be judged met it, 0 when one did not. Absent until a canary was judged; one_click_unsubscribe only for providers whose canaries carry List-Unsubscribe.",
                &["provider", "requirement"],
            ),
            route_requirement_met: f.int_gauge(
                "deliverability_sender_requirement_route_met",
                "Whether the route's last delivered canary met the bulk-sender requirement (as deliverability_sender_requirement_met, per seed). Exported only with canary.route_requirements = true (up to 9 series per route).",
                &["provider", "seed", "requirement"],
            ),
            families: f,
        }
    }

    /// Creates a provider's series: its failure series (every `stages` × `classes`), its
    /// delivery histogram and its retry and uncertain counters.
    pub fn init_provider(&self, provider: &str, stages: &[&str], classes: &[&str]) {
        for s in stages {
            for c in classes {
                self.smtp_failures.with_label_values(&[provider, s, c]);
            }
        }
        self.provider_delivery_duration
            .with_label_values(&[provider]);
        self.retries.with_label_values(&[provider]);
        self.uncertain.with_label_values(&[provider]);
    }

    /// Creates the series of a route so dashboards and alerts see them from the first scrape:
    /// [`ROUTE_SERIES`] of them, and the 18 of its histogram with `histogram`.
    pub fn init_route(&self, provider: &str, seed: &str, histogram: bool) {
        let ps = &[provider, seed];
        self.sent.with_label_values(ps);
        self.send_success.with_label_values(ps);
        self.lost.with_label_values(ps);
        self.late.with_label_values(ps);
        self.in_flight.with_label_values(ps);
        self.success.with_label_values(ps);
        self.last_success.with_label_values(ps);
        self.last_send.with_label_values(ps);
        self.last_delivery_duration.with_label_values(ps);
        if histogram {
            self.delivery_duration.with_label_values(ps);
        }
        for placement in PLACEMENTS {
            self.delivered
                .with_label_values(&[provider, seed, placement]);
        }
        for method in ["spf", "dkim", "dmarc"] {
            self.auth_results
                .with_label_values(&[provider, seed, method, "pass"]);
        }
    }

    /// Creates the unattributed-bounce series of every class × reason.
    pub fn init_bounces(&self, classes: &[&str], reasons: &[&str]) {
        for c in classes {
            for r in reasons {
                self.bounces_unattributed.with_label_values(&[c, r]);
            }
        }
    }

    /// Creates a seed's series: its delivery histogram and its detection paths.
    pub fn init_seed(&self, seed: &str) {
        self.seed_delivery_duration.with_label_values(&[seed]);
        for path in DETECTION_PATHS {
            self.detected.with_label_values(&[seed, path]);
        }
    }

    /// Creates the series of the watcher of a seed's folder.
    pub fn init_seed_folder(&self, seed: &str, folder: &str) {
        self.imap_up.with_label_values(&[seed, folder]);
        self.imap_reconnects.with_label_values(&[seed, folder]);
        self.verify_interval.with_label_values(&[seed]);
    }
}

impl Default for CanaryMetrics {
    fn default() -> Self {
        CanaryMetrics::new()
    }
}
