//! Every metric family the exporter exposes: name, help, labels and buckets, in one place.
//!
//! Metrics are the exporter's public API: dashboards and alerts are written against these
//! names. A [`Metrics`] owns its own registry, so `/probe` can record one target's results into
//! a fresh instance and return only those.

pub mod canary;
pub mod dns;
pub mod family;
pub mod http;
pub mod reports;
pub mod signals;

use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::sync::atomic::{AtomicUsize, Ordering};

/// The exporter's own build, from the environment at compile time.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct Metrics {
    pub registry: Registry,

    // --- the exporter itself
    pub build_info: IntGaugeVec,
    /// Which shard of how many this instance is (`--shard.index`, `--shard.count`).
    pub shard_info: IntGaugeVec,
    pub config_last_reload_successful: IntGauge,
    pub config_last_reload_success_timestamp: Gauge,
    pub check_success: IntGaugeVec,
    pub check_duration: GaugeVec,
    pub check_last_run: GaugeVec,
    pub check_runs: IntCounterVec,
    pub state_write_errors: IntCounterVec,
    pub state_write_failing: IntGaugeVec,

    pub canary: canary::CanaryMetrics,
    pub dns: dns::DnsMetrics,
    /// The HTTP port itself; exported only by the serving registry ([`Metrics::new`]).
    pub http: http::HttpMetrics,
    // --- DMARC aggregate and TLS-RPT reports
    pub reports: reports::ReportMetrics,
    // --- the mailbox providers' signals (Postmaster Tools, SNDS)
    pub signals: signals::SignalMetrics,
    /// The size of the last scrape, to allocate the next one at once.
    last_size: AtomicUsize,
}

pub(crate) fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let v = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(v.clone()))
        .expect("metric registered once");
    v
}

pub(crate) fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let v = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(v.clone()))
        .expect("metric registered once");
    v
}

pub(crate) fn int_counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(v.clone()))
        .expect("metric registered once");
    v
}

impl Metrics {
    /// The exporter's main metrics, with process metrics and build info.
    pub fn new() -> Metrics {
        let m = Metrics::bare();
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registered once");
        m.http.register(&m.registry);
        m.build_info
            .with_label_values(&[
                VERSION,
                option_env!("DX_GIT_REVISION").unwrap_or("unknown"),
                option_env!("DX_RUSTC_VERSION").unwrap_or("unknown"),
            ])
            .set(1);
        m
    }

    /// All families, no process metrics: for `/probe` and `once`.
    pub fn bare() -> Metrics {
        let r = Registry::new();
        let build_info = int_gauge_vec(
            &r,
            "deliverability_build_info",
            "A metric with a constant '1' value labeled by the exporter's version, git revision and the rustc that built it.",
            &["version", "revision", "rustc"],
        );
        let shard_info = int_gauge_vec(
            &r,
            "deliverability_shard_info",
            "A metric with a constant '1' value labeled by this instance's shard index and the shard count (--shard.index, --shard.count): it probes the canary routes of the seeds that hash to its index; DNS, DNSBL and report checks run on shard 0 only.",
            &["index", "count"],
        );
        let config_last_reload_successful = IntGauge::new(
            "deliverability_config_last_reload_successful",
            "Whether the last configuration load or reload succeeded (1) or was refused and the previous configuration kept (0).",
        )
        .expect("valid metric definition");
        r.register(Box::new(config_last_reload_successful.clone()))
            .expect("registered once");
        let config_last_reload_success_timestamp = Gauge::new(
            "deliverability_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load or reload.",
        )
        .expect("valid metric definition");
        r.register(Box::new(config_last_reload_success_timestamp.clone()))
            .expect("registered once");
        Metrics {
            build_info,
            shard_info,
            config_last_reload_successful,
            config_last_reload_success_timestamp,
            check_success: int_gauge_vec(
                &r,
                "deliverability_check_success",
                "Whether the last run of the check succeeded (1) or failed or timed out (0).",
                &["check"],
            ),
            check_duration: gauge_vec(
                &r,
                "deliverability_check_duration_seconds",
                "How long the last run of the check took.",
                &["check"],
            ),
            check_last_run: gauge_vec(
                &r,
                "deliverability_check_last_run_timestamp_seconds",
                "Unix time the last run of the check finished; 0 until it first runs.",
                &["check"],
            ),
            check_runs: int_counter_vec(
                &r,
                "deliverability_check_runs_total",
                "Runs of the check by result (success, failure, timeout).",
                &["check", "result"],
            ),
            state_write_errors: int_counter_vec(
                &r,
                "deliverability_state_write_errors_total",
                "Failed writes of a file in the state directory (canaries in flight, report ledger, DNS change log): the previous content is kept and the write retried; reports are not counted until their ledger entry is written.",
                &["file"],
            ),
            state_write_failing: int_gauge_vec(
                &r,
                "deliverability_state_write_failing",
                "Whether the last write of the state file failed (1) and no write has succeeded since, or succeeded (0).",
                &["file"],
            ),
            canary: canary::CanaryMetrics::new(),
            dns: dns::DnsMetrics::new(&r),
            http: http::HttpMetrics::new(),
            reports: reports::ReportMetrics::register(&r),
            signals: signals::SignalMetrics::register(&r),
            registry: r,
            last_size: AtomicUsize::new(16 * 1024),
        }
    }

    /// Sets `deliverability_shard_info` to shard `index` of `count` (one series).
    pub fn set_shard(&self, index: u32, count: u32) {
        self.shard_info.reset();
        self.shard_info
            .with_label_values(&[&index.to_string(), &count.to_string()])
            .set(1);
    }

    /// Creates the series of a check so they exist from the first scrape.
    pub fn init_check(&self, check: &str) {
        self.check_success.with_label_values(&[check]).set(0);
        self.check_duration.with_label_values(&[check]).set(0.0);
        self.check_last_run.with_label_values(&[check]).set(0.0);
        for result in ["success", "failure", "timeout"] {
            self.check_runs.with_label_values(&[check, result]);
        }
    }

    /// Forgets the series of checks no longer configured.
    pub fn reset_checks(&self) {
        self.check_success.reset();
        self.check_duration.reset();
        self.check_last_run.reset();
    }

    /// The Prometheus text exposition of everything: the canary families (written directly,
    /// see [`family`]), then the registry's.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);
        self.canary.families.encode(&mut buf);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        self.last_size.store(buf.len(), Ordering::Relaxed);
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_series_exist_before_the_first_run() {
        let m = Metrics::bare();
        m.init_check("dns");
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains("deliverability_check_success{check=\"dns\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("deliverability_check_last_run_timestamp_seconds{check=\"dns\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("deliverability_check_runs_total{check=\"dns\",result=\"timeout\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn build_info_is_set() {
        let m = Metrics::new();
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains("deliverability_build_info{revision="),
            "{text}"
        );
        assert!(text.contains(&format!("version=\"{VERSION}\"")), "{text}");
    }

    #[test]
    fn shard_info_is_one_series_of_the_last_shard_set() {
        let m = Metrics::bare();
        assert!(
            !String::from_utf8(m.encode())
                .unwrap()
                .contains("shard_info{")
        );
        m.set_shard(0, 1);
        m.set_shard(2, 3);
        let text = String::from_utf8(m.encode()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("deliverability_shard_info{"))
            .collect();
        assert_eq!(
            lines,
            ["deliverability_shard_info{count=\"3\",index=\"2\"} 1"],
            "{text}"
        );
    }
}
