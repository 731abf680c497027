//! The exporter's own HTTP port under load: connections open, connections closed before they
//! were served (and why), accept errors, failed basic-auth attempts and refused probes. Labels
//! come from fixed sets; no user name, password, address or path is ever a label value.
//!
//! These families are registered only in the serving registry ([`super::Metrics::new`]), not
//! in the bare ones that `/probe` and `once` answer with.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

crate::label_enum! {
    /// Why a connection was closed before a request on it was served.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Dropped {
        /// Request headers (or the TLS handshake) not finished within `--web.header-timeout`.
        HeaderTimeout = "header_timeout",
        /// The oldest unfinished connection, closed to make room for a new one.
        Shed = "shed",
        /// A new connection closed at once: every open connection was being served.
        Refused = "refused",
        /// Request headers over 16 KiB.
        TooLarge = "too_large",
        /// TLS handshake failed, or plain HTTP sent to the TLS port.
        Tls = "tls_error",
    }
}

crate::label_enum! {
    /// Why basic auth refused a request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AuthFailure {
        /// No `Authorization` header.
        Missing = "missing",
        /// An `Authorization` header that is not `Basic` with base64 `user:password`.
        Malformed = "malformed",
        /// Unknown user or wrong password.
        Wrong = "wrong",
    }
}

pub struct HttpMetrics {
    pub connections_open: IntGauge,
    pub dropped: IntCounterVec,
    pub accept_errors: IntCounter,
    pub auth_failures: IntCounterVec,
    pub probes_rejected: IntCounter,
}

impl HttpMetrics {
    /// The families, not registered anywhere yet: they work, but are exported only after
    /// [`HttpMetrics::register`].
    pub fn new() -> HttpMetrics {
        let m = HttpMetrics {
            connections_open: IntGauge::new(
                "deliverability_http_connections_open",
                "Connections to the exporter's HTTP port open now: being served or still sending their request headers (or TLS handshake).",
            )
            .expect("valid metric definition"),
            dropped: IntCounterVec::new(
                Opts::new(
                    "deliverability_http_connections_dropped_total",
                    "Connections to the exporter's HTTP port closed before a request was served, by reason: header_timeout (headers or TLS handshake not finished within --web.header-timeout), shed (the oldest unfinished connection, closed to make room when --web.max-open-connections, the TLS handshake bound or the file descriptor limit was reached), refused (every open connection was being served), too_large (request headers over 16 KiB), tls_error (handshake failed, or plain HTTP to the TLS port).",
                ),
                &["reason"],
            )
            .expect("valid metric definition"),
            accept_errors: IntCounter::new(
                "deliverability_http_accept_errors_total",
                "Errors accepting a connection on the exporter's HTTP port (such as the file descriptor limit): the exporter sheds an unfinished connection or backs off, and keeps serving.",
            )
            .expect("valid metric definition"),
            auth_failures: IntCounterVec::new(
                Opts::new(
                    "deliverability_http_auth_failures_total",
                    "Requests refused by basic auth (--web.config.file), by reason: missing (no Authorization header), malformed, wrong (unknown user or wrong password). Never labelled with a user name.",
                ),
                &["reason"],
            )
            .expect("valid metric definition"),
            probes_rejected: IntCounter::new(
                "deliverability_http_probes_rejected_total",
                "/probe requests answered 503 at once because --web.max-probes probes were already running.",
            )
            .expect("valid metric definition"),
        };
        for r in Dropped::ALL {
            m.dropped.with_label_values(&[r.as_str()]);
        }
        for r in AuthFailure::ALL {
            m.auth_failures.with_label_values(&[r.as_str()]);
        }
        m
    }

    pub fn register(&self, r: &Registry) {
        r.register(Box::new(self.connections_open.clone()))
            .expect("metric registered once");
        r.register(Box::new(self.dropped.clone()))
            .expect("metric registered once");
        r.register(Box::new(self.accept_errors.clone()))
            .expect("metric registered once");
        r.register(Box::new(self.auth_failures.clone()))
            .expect("metric registered once");
        r.register(Box::new(self.probes_rejected.clone()))
            .expect("metric registered once");
    }

    pub fn dropped(&self, why: Dropped) {
        self.dropped.with_label_values(&[why.as_str()]).inc();
    }

    pub fn auth_failed(&self, why: AuthFailure) {
        self.auth_failures.with_label_values(&[why.as_str()]).inc();
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new()
    }
}
