//! The third report source: an HTTP(S) endpoint that accepts TLS-RPT reports POSTed by the
//! reporting MTAs (RFC 8460 §3: `https:` in a domain's `rua=`), on its own listen address so it
//! can face the Internet without exposing `/metrics`.
//!
//! A request is read under limits (the body as sent: `max_body_bytes`; decompressed: the
//! reports' `max_decompressed_bytes`), its media type checked (`application/tlsrpt+gzip`, a
//! gzip body — not `Content-Encoding` — or `application/tlsrpt+json`), then read by the same
//! [`super::unpack`] as a mailed report and committed through the same [`super::pipeline`]:
//! recorded in the ledger, the ledger saved, and only then counted. So a report POSTed twice,
//! or mailed and POSTed, is counted once; and a report is answered `2xx` only once it is safely
//! in the ledger: when the ledger cannot be saved the answer is `503` and the reporter retries.
//!
//! Answers: 200 (counted, already counted, or ignored: a domain not configured with
//! `reports.unknown_domains = "ignore"`, which is then not recorded either), 400 (not a TLS
//! report, or unreadable: the reason in the body), 404 (another path), 405 (not POST), 408 (the
//! body not received within 10 s), 413 (too large), 415 (another media type), 500, 503 (the
//! ledger could not be saved). Every answer is counted in
//! `deliverability_report_http_requests_total{source,code}`.
//!
//! The endpoint faces whoever can reach it (RFC 8460 has no authentication): at most 64
//! connections, 16 from one address; headers within 10 s, the body within 10 s more, a
//! connection at most 60 s; at most 4 bodies read and committed at once (the rest wait).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::count::Counting;
use super::ledger::Ledger;
use super::model::Report;
use super::names::{Domains, SourceNames};
use super::pipeline::{Origin, SCAN_LOCK, ScanSummary, commit, count_errors};
use super::unpack::{self, Limits};
use crate::config::{ReportEndpoint, SourceMapEntry, UnknownDomains};
use crate::schedule::Context;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// The request line and headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole connection (TLS handshake, request, answer) is closed after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections from one address at once; more are closed at once.
const PER_PEER: usize = 16;
/// The body must arrive within this once the headers did.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies read and committed at once (blocking work under the ledger's lock).
pub const COMMITS: usize = 4;
/// How long a reload waits for the previous configuration's listener to close.
const BIND_RETRY: Duration = Duration::from_millis(200);

/// The answers, as the `code` label (their series exist from the start).
pub const CODES: [&str; 9] = [
    "200", "400", "404", "405", "408", "413", "415", "500", "503",
];

const GZIP: &str = "application/tlsrpt+gzip";
const JSON: &str = "application/tlsrpt+json";

/// What counting a POSTed report needs, shared by the endpoint's connections.
pub struct Endpoint {
    pub config: ReportEndpoint,
    pub limits: Limits,
    pub source_map: Vec<SourceMapEntry>,
    pub domains: Vec<String>,
    pub unknown: UnknownDomains,
    pub label_limit: usize,
    pub retention_secs: u64,
    pub board: Option<Arc<crate::status::ReportBoard>>,
    /// Open connections per peer address.
    pub peers: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// Bodies being read and committed (the blocking work keeps its permit to the end, even
    /// when its connection timed out).
    pub commits: Arc<Semaphore>,
}

/// One connection of a peer, counted while it lives.
struct PeerSlot(Arc<Endpoint>, std::net::IpAddr);

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.0.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = peers.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.1);
            }
        }
    }
}

impl Endpoint {
    /// A slot for one more connection of `peer`, unless it already has [`PER_PEER`].
    fn peer_slot(self: &Arc<Self>, peer: std::net::IpAddr) -> Option<PeerSlot> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let n = peers.entry(peer).or_insert(0);
        if *n >= PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot(self.clone(), peer))
    }

    /// Listens until `ctx.shutdown`, retrying the bind (a reload's old listener may still be
    /// closing; another program may hold the port) with the failure logged once.
    pub async fn serve(self: Arc<Self>, ctx: Context) {
        let metrics = &ctx.metrics.reports;
        for code in CODES {
            metrics
                .http_requests
                .with_label_values(&[&self.config.name, code]);
        }
        metrics.init_source(&self.config.name, super::error::REASONS);
        let up = metrics.http_up.with_label_values(&[&self.config.name]);
        up.set(0);
        let listener = loop {
            match crate::server::bind(&self.config.listen_address).await {
                Ok(l) => break l,
                Err(e) => {
                    if !up.get().is_negative() {
                        tracing::error!(source = %self.config.name, address = %self.config.listen_address, error = %e, "cannot listen for TLS-RPT reports; retrying");
                        up.set(-1);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(BIND_RETRY) => {}
                        _ = ctx.shutdown.cancelled() => return,
                    }
                }
            }
        };
        up.set(1);
        let local = listener.local_addr().map(|a| a.to_string());
        tracing::info!(source = %self.config.name, address = %local.unwrap_or_default(), path = %self.config.url_path, tls = self.config.tls.is_some(), "TLS-RPT endpoint listening");
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("never closed"),
                _ = ctx.shutdown.cancelled() => break,
            };
            let (tcp, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(source = %self.config.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = ctx.shutdown.cancelled() => break,
            };
            let this = self.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let Some(_slot) = this.peer_slot(peer.ip()) else {
                    tracing::debug!(%peer, "too many connections from this address; closed");
                    return;
                };
                let shutdown = ctx.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::timeout(CONNECTION_TIMEOUT, this.connection(tcp, peer, ctx)) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
        // Stopped (shutdown, or a reload that may have removed the source): no series left
        // claiming a listener; a source still configured sets it again at once.
        let _ = metrics.http_up.remove_label_values(&[&self.config.name]);
    }

    async fn connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        ctx: Context,
    ) {
        let _ = tcp.set_nodelay(true);
        let tls = self.config.tls.clone();
        let service = hyper::service::service_fn(move |req| {
            let this = self.clone();
            let ctx = ctx.clone();
            async move { Ok::<_, std::convert::Infallible>(this.answer(req, &ctx).await) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(false);
        let result = match tls {
            None => http.serve_connection(TokioIo::new(tcp), service).await,
            Some(config) => {
                let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
                match tokio::time::timeout(HEADER_TIMEOUT, accept).await {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// An answer with a one-line text body.
fn reply(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The media type of a request, lower-cased, without parameters.
fn media_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

impl Endpoint {
    async fn answer(&self, req: Request<Incoming>, ctx: &Context) -> Response<Full<Bytes>> {
        let r = self.decide(req, ctx).await;
        ctx.metrics
            .reports
            .http_requests
            .with_label_values(&[&self.config.name, r.status().as_str()])
            .inc();
        r
    }

    async fn decide(&self, req: Request<Incoming>, ctx: &Context) -> Response<Full<Bytes>> {
        if req.uri().path() != self.config.url_path {
            return reply(StatusCode::NOT_FOUND, "not found");
        }
        if req.method() != Method::POST {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "TLS-RPT reports are POSTed here (RFC 8460 §3)",
            );
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("POST"),
            );
            return r;
        }
        let gzip = match media_type(&req).as_str() {
            GZIP => true,
            JSON => false,
            other => {
                return reply(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!(
                        "media type {:?} is not accepted: send {GZIP} (a gzip body) or {JSON}",
                        other.chars().take(100).collect::<String>()
                    ),
                );
            }
        };
        let max = self.config.max_body_bytes;
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {max} bytes"),
            )
        };
        if declared.is_some_and(|n| n > max) {
            return too_large();
        }
        let limited = Limited::new(req.into_body(), usize::try_from(max).unwrap_or(usize::MAX));
        let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Ok(Err(_)) => return reply(StatusCode::BAD_REQUEST, "the body was not received whole"),
            Err(_) => {
                return reply(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body was not received in time",
                );
            }
        };
        if gzip != body.starts_with(&[0x1f, 0x8b]) {
            return reply(
                StatusCode::BAD_REQUEST,
                if gzip {
                    "application/tlsrpt+gzip needs a gzip-compressed body (not Content-Encoding)"
                } else {
                    "application/tlsrpt+json needs an uncompressed JSON body"
                },
            );
        }
        let this = self.snapshot();
        let ctx2 = ctx.clone();
        let Ok(commit) = self.commits.clone().acquire_owned().await else {
            return reply(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        };
        let work = move || {
            let _commit = commit;
            this.count(&body, &ctx2)
        };
        match tokio::task::spawn_blocking(work).await {
            Ok((code, text)) => reply(code, &text),
            Err(_) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the report could not be read",
            ),
        }
    }

    /// What the blocking part needs, owned.
    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            name: self.config.name.clone(),
            limits: self.limits,
            source_map: self.source_map.clone(),
            domains: self.domains.clone(),
            unknown: self.unknown,
            label_limit: self.label_limit,
            retention_secs: self.retention_secs,
            board: self.board.clone(),
        })
    }
}

struct Snapshot {
    name: String,
    limits: Limits,
    source_map: Vec<SourceMapEntry>,
    domains: Vec<String>,
    unknown: UnknownDomains,
    label_limit: usize,
    retention_secs: u64,
    board: Option<Arc<crate::status::ReportBoard>>,
}

impl Snapshot {
    /// Reads the body as any source's input, then commits its TLS report (blocking).
    fn count(&self, body: &[u8], ctx: &Context) -> (StatusCode, String) {
        let metrics = &ctx.metrics.reports;
        metrics.set_label_limit(self.label_limit);
        let sources = SourceNames::new(&self.source_map, &ctx.observed.sending_ips());
        let domains = Domains::new(self.domains.iter().map(String::as_str), self.unknown);
        let counting = Counting {
            metrics,
            domains: &domains,
            sources: &sources,
            board: self.board.as_deref().map(|b| (b, ctx.clock.unix())),
            bounces: Some(&ctx.observed),
        };
        let mut outcome = unpack::read_bytes("request", body, &self.limits, &sources);
        let mut summary = ScanSummary::default();
        outcome
            .reports
            .retain(|f| matches!(f.report, Report::Tls(_)));
        if outcome.reports.len() != 1 {
            let _guard = SCAN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            count_errors(
                &counting,
                &self.name,
                Origin::File("request"),
                &outcome.errors,
                &mut summary,
            );
            let why = match outcome.errors.first() {
                Some(e) => e.to_string(),
                None if outcome.reports.is_empty() => "the body is not a TLS-RPT report".into(),
                None => "the body holds more than one report".into(),
            };
            return (StatusCode::BAD_REQUEST, why);
        }
        if let Report::Tls(r) = &outcome.reports[0].report
            && domains.label(r.domain()).is_none()
        {
            tracing::info!(source = %self.name, "TLS-RPT report for a domain not configured; ignored (reports.unknown_domains = \"ignore\")");
            return (StatusCode::OK, "ignored: not a configured domain".into());
        }
        let _guard = SCAN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let now = ctx.clock.unix() as u64;
        let mut ledger = match Ledger::load(&ctx.state) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(source = %self.name, error = %e, "cannot read the report ledger; the reporter will retry");
                return (StatusCode::SERVICE_UNAVAILABLE, "try again later".into());
            }
        };
        ledger.prune(now, self.retention_secs);
        let found = outcome.reports.iter().map(|f| (Origin::File("request"), f));
        if let Err(e) = commit(
            &mut ledger,
            &ctx.state,
            now,
            &counting,
            &self.name,
            found,
            &mut summary,
        ) {
            tracing::error!(source = %self.name, error = %e, "cannot save the report ledger; the reporter will retry");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again later".into());
        }
        let f = &outcome.reports[0];
        let id = match &f.report {
            Report::Tls(r) => r.report_id.clone(),
            _ => String::new(),
        };
        if summary.duplicates > 0 {
            tracing::info!(source = %self.name, report_id = %id, "TLS-RPT report POSTed again; already counted");
            (StatusCode::OK, "already counted".into())
        } else {
            tracing::info!(source = %self.name, report_id = %id, "TLS-RPT report received");
            (StatusCode::OK, "counted".into())
        }
    }
}
