//! HTTP: `/metrics`, `/probe`, `/-/healthy`, `/-/ready`, `/-/reload` and the landing page.
//!
//! Built on hyper 1 with HTTP/1.1 only. Abuse is bounded: at most `max_connections` are served
//! at once (further clients wait in the kernel's accept queue), request headers must arrive
//! within `header_read_timeout` and fit in 16 KiB, and request bodies are never read.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};
use crate::schedule::History;
use crate::web_config::{WebConfig, WebSettings};

/// Answers `/probe?module=...&target=...`: the metrics of one target, checked now.
pub trait Prober: Send + Sync {
    fn modules(&self) -> &'static [&'static str];
    fn probe<'a>(
        &'a self,
        module: &'a str,
        target: &'a str,
        timeout: Duration,
    ) -> crate::schedule::BoxFuture<'a, Result<Vec<u8>, String>>;
}

/// A reload request: the reply says whether the new configuration was taken.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Everything the handlers read. Shared by all connections.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub config: Mutex<Arc<Config>>,
    pub ready: AtomicBool,
    pub history: Arc<History>,
    pub reload: mpsc::Sender<ReloadRequest>,
    pub telemetry_path: String,
    pub enable_lifecycle: bool,
    pub prober: Option<Arc<dyn Prober>>,
    /// `--web.config.file`: TLS and basic auth.
    pub web: Option<Arc<WebConfig>>,
    /// Extra sections of the landing page (the status views of the checks).
    pub status: Mutex<Vec<Arc<dyn StatusSection>>>,
}

pub use crate::landing::StatusSection;

impl AppState {
    pub fn config(&self) -> Arc<Config> {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub struct ServerOptions {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Binds the listen address; an error names the address and why.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Serves until `shutdown` is cancelled, then lets open connections finish their current
/// request for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    opts: ServerOptions,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let limit = Arc::new(Semaphore::new(opts.max_connections));
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        let header_timeout = opts.header_read_timeout;
        conns.spawn(async move {
            let _permit = permit;
            let settings = state.web.as_ref().map(|w| w.settings());
            match settings.as_ref().and_then(|s| s.tls.clone()) {
                None => serve_conn(stream, state, settings, peer, header_timeout, shutdown).await,
                Some(tls) => {
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(header_timeout, accept).await {
                        Ok(Ok(s)) => {
                            serve_conn(s, state, settings, peer, header_timeout, shutdown).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    conns.close();
    if tokio::time::timeout(grace, conns.wait()).await.is_err() {
        tracing::warn!("HTTP connections still open at shutdown were closed");
    }
}

/// Serves one connection (plain or TLS) until it ends or shutdown.
async fn serve_conn<S>(
    stream: S,
    state: Arc<AppState>,
    settings: Option<Arc<WebSettings>>,
    peer: SocketAddr,
    header_timeout: Duration,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let settings = settings.clone();
        async move { Ok::<_, Infallible>(handle(&state, settings.as_deref(), req, peer).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    state: &AppState,
    settings: Option<&WebSettings>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut resp = match (&state.web, settings) {
        (Some(web), Some(s))
            if !web.authorized(
                s,
                req.headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            ) =>
        {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
        _ => route(state, &req, &path, &method).await,
    };
    if let Some(s) = settings {
        for (k, v) in &s.headers {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                resp.headers_mut().insert(k, v);
            }
        }
    }
    tracing::debug!(peer = %peer, method = %method, path = %path, status = resp.status().as_u16(), "request");
    resp
}

/// The landing page of the running configuration.
fn landing_page(state: &AppState) -> String {
    let config = state.config();
    let sections = state
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    crate::landing::render(&crate::landing::Page {
        config: &config,
        telemetry_path: &state.telemetry_path,
        enable_lifecycle: state.enable_lifecycle,
        sections: &sections,
        runs: &state.history.recent(),
    })
}

async fn route(state: &AppState, req: &Request<Incoming>, path: &str, method: &Method) -> Resp {
    let get_only = |m: &Method| *m == Method::GET || *m == Method::HEAD;
    if path == state.telemetry_path {
        if !get_only(method) {
            return method_not_allowed("GET");
        }
        return metrics_response(state.metrics.encode(), req);
    }
    match path {
        "/" if get_only(method) => html(landing_page(state)),
        "/runbooks" if get_only(method) => html(crate::runbooks::page().to_string()),
        "/-/healthy" if get_only(method) => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if get_only(method) => {
            if state.ready.load(Ordering::SeqCst) {
                text(StatusCode::OK, "Ready.\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not ready: checks are not scheduled yet.\n",
                )
            }
        }
        "/-/reload" => {
            if *method != Method::POST && *method != Method::PUT {
                return method_not_allowed("POST");
            }
            if !state.enable_lifecycle {
                return text(
                    StatusCode::FORBIDDEN,
                    "Lifecycle API is not enabled: start with --web.enable-lifecycle, or send SIGHUP.\n",
                );
            }
            let (tx, rx) = oneshot::channel();
            if state.reload.send(tx).await.is_err() {
                return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            }
            match rx.await {
                Ok(Ok(())) => text(StatusCode::OK, "Configuration reloaded.\n"),
                Ok(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Configuration refused; the previous one keeps running:\n{e}\n"),
                ),
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            }
        }
        "/probe" if get_only(method) => probe(state, req).await,
        "/" | "/runbooks" | "/-/healthy" | "/-/ready" | "/probe" => method_not_allowed("GET"),
        _ => text(
            StatusCode::NOT_FOUND,
            "Not found. See / for the endpoints.\n",
        ),
    }
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed; use {allow}.\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn html(body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// The exposition, gzip'd when the scraper accepts it (Prometheus does).
fn metrics_response(body: Vec<u8>, req: &Request<Incoming>) -> Resp {
    let gzip = req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().split(';').next() == Some("gzip"));
    let mut r = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        let _ = enc.write_all(&body);
        let mut r = Response::new(Full::new(Bytes::from(enc.finish().unwrap_or_default())));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    r
}

/// Parses `a=b&c=d` with percent-decoding.
pub fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prometheus sends its scrape timeout in this header; the probe uses a little less.
fn probe_timeout(req: &Request<Incoming>) -> Duration {
    req.headers()
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64((s - 0.5).max(0.5)))
        .unwrap_or(Duration::from_secs(9))
}

async fn probe(state: &AppState, req: &Request<Incoming>) -> Resp {
    let Some(prober) = &state.prober else {
        return text(StatusCode::NOT_FOUND, "No probe modules are available.\n");
    };
    let params = query_params(req.uri().query().unwrap_or(""));
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(module) = get("module") else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Module parameter is missing; one of: {}\n",
                prober.modules().join(", ")
            ),
        );
    };
    if !prober.modules().contains(&module) {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Unknown module {module:?}; one of: {}\n",
                prober.modules().join(", ")
            ),
        );
    }
    let Some(target) = get("target").filter(|t| !t.is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "Target parameter is missing\n");
    };
    match prober.probe(module, target, probe_timeout(req)).await {
        Ok(body) => metrics_response(body, req),
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes() {
        assert_eq!(
            query_params("module=dns&target=ex%41mple.com&x"),
            vec![
                ("module".into(), "dns".into()),
                ("target".into(), "exAmple.com".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(query_params("t=a+b%2"), vec![("t".into(), "a b%2".into())]);
        assert_eq!(query_params("t=%zz"), vec![("t".into(), "%zz".into())]);
    }
}
