//! HTTP: `/metrics`, `/probe`, `/runbooks`, `/-/healthy`, `/-/ready`, `/-/reload` and the landing page
//! (what each answers: [`routes`]).
//!
//! Built on hyper 1 (HTTP/1.1) and rustls, for a port that anyone on the network can reach.
//! What is bounded is work, not sockets:
//!
//! - Accept never stops. A new connection costs a socket and a few hundred bytes until its
//!   request headers are complete ([`head`]): no hyper or rustls state, no buffer while it
//!   says nothing. Connections that don't finish their headers (and TLS handshake) within
//!   `header_read_timeout` are closed; when `max_open_connections` are open, or the process
//!   runs out of file descriptors, the unfinished connection that has waited longest is shed
//!   to make room ([`conns`]).
//! - TLS handshakes past the ClientHello (where rustls starts spending CPU and memory) are at
//!   most `max_connections` at once, the oldest shed first.
//! - Requests are handled at most `max_connections` at once (others queue, briefly: a
//!   handler holds its permit only while it computes the answer); `/probe` has its own bound,
//!   `max_probes`, and answers 503 at once beyond it.
//! - Basic auth answers a cached credential at once; bcrypt runs for unverified ones a few at
//!   a time ([`crate::web_config`]), without holding any of the above.
//! - A connection serves one request (`Connection: close`): nothing idles in hyper between
//!   requests. A response must be taken by the client within `header_read_timeout`.
//!
//! Request bodies are never read.

mod conns;
mod head;
mod routes;

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
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::http::Dropped;
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};
use crate::schedule::History;
use crate::web_config::{WebConfig, WebSettings};

use conns::{Slot, Table};
use head::{HeadError, Prefixed};
use routes::*;
pub use routes::{CONTENT_SECURITY_POLICY, query_params, quote};

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
    /// Requests handled at once, and TLS handshakes in progress at once.
    pub max_connections: usize,
    /// Connections open at once, most of them possibly idle or slow; past it the oldest
    /// unfinished one is shed. See [`default_max_open_connections`].
    pub max_open_connections: usize,
    /// `/probe` requests running at once; more are answered 503 at once.
    pub max_probes: usize,
    /// Request headers (and the TLS handshake) must be complete this long after the
    /// connection was accepted; a response must be taken within it too.
    pub header_read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 64,
            max_open_connections: default_max_open_connections(fd_limit()),
            max_probes: 16,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept for everything but HTTP clients: state files, DNS, SMTP and IMAP
/// connections.
pub const FD_RESERVE: u64 = 256;

/// The default of `--web.max-open-connections`: the file descriptor limit less
/// [`FD_RESERVE`], between 64 and 100,000.
pub fn default_max_open_connections(fd_limit: u64) -> usize {
    fd_limit.saturating_sub(FD_RESERVE).clamp(64, 100_000) as usize
}

/// The process's soft limit of open file descriptors.
pub fn fd_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return 1024;
    }
    l.rlim_cur
}

/// Raises the soft limit of open file descriptors to the hard limit (as Go programs do at
/// start-up), so idle client connections don't exhaust the often low default of 1024 while
/// the hard limit allows far more. Returns the soft limit in force afterwards.
pub fn raise_fd_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        if l.rlim_cur < l.rlim_max {
            // RLIM_INFINITY as a hard limit is refused for the soft one; 2^20 is Linux's
            // default nr_open.
            let want = libc::rlimit {
                rlim_cur: l.rlim_max.min(1 << 20),
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                l.rlim_cur = want.rlim_cur;
            }
        }
    }
    l.rlim_cur
}

/// Binds the listen address; `:port` is every interface (IPv6 and IPv4 where possible, else
/// IPv4), like other exporters. An error names the address and why.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let one = |a: String| async move {
        TcpListener::bind(&a)
            .await
            .map_err(|e| format!("cannot listen on {a}: {e}"))
    };
    match addr.strip_prefix(':') {
        Some(port) => match one(format!("[::]:{port}")).await {
            Ok(l) => Ok(l),
            Err(_) => one(format!("0.0.0.0:{port}")).await,
        },
        None => one(addr.to_string()).await,
    }
}

/// What every connection's task shares.
struct Shared {
    state: Arc<AppState>,
    /// Requests being handled ([`ServerOptions::max_connections`]).
    work: Semaphore,
    probes: Semaphore,
    max_probes: usize,
    header_timeout: Duration,
}

/// Serves until `shutdown` is cancelled, then lets the requests being served finish for at
/// most `grace`; connections that have not sent a complete request are closed at once.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    opts: ServerOptions,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let table = Table::new(
        opts.max_open_connections,
        opts.max_connections,
        state.metrics.clone(),
    );
    let shared = Arc::new(Shared {
        state,
        work: Semaphore::new(opts.max_connections.max(1)),
        probes: Semaphore::new(opts.max_probes.max(1)),
        max_probes: opts.max_probes.max(1),
        header_timeout: opts.header_read_timeout,
    });
    let conns = tokio_util::task::TaskTracker::new();
    let mut backoff = Duration::ZERO;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::ZERO;
                x
            }
            Err(e) => {
                shared.state.metrics.http.accept_errors.inc();
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                let shed = out_of_fds && table.shed_oldest();
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(error = %e, shed_oldest_unfinished = shed, "accept failed; backing off");
                }
                // Never spin: a shed connection's descriptor is closed by its task, soon;
                // anything else waits a little longer each time.
                backoff = if shed {
                    Duration::from_millis(5)
                } else {
                    (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1))
                };
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let Some(slot) = table.admit() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        conns.spawn(connection(stream, peer, slot, shared.clone()));
    }
    table.close_unfinished();
    conns.close();
    if tokio::time::timeout(grace, conns.wait()).await.is_err() {
        tracing::warn!("HTTP connections still open at shutdown were closed");
    }
}

/// How a phase before serving ended.
enum Phase<T> {
    Done(T),
    TimedOut,
    Shed,
}

async fn phase<F: std::future::Future>(slot: &Slot, deadline: Instant, f: F) -> Phase<F::Output> {
    tokio::select! {
        biased;
        _ = slot.shed() => Phase::Shed,
        r = tokio::time::timeout_at(deadline, f) => match r {
            Ok(v) => Phase::Done(v),
            Err(_) => Phase::TimedOut,
        },
    }
}

/// One connection, from accept to close. Kept small while the client has not sent its
/// request: what follows the headers is boxed, so it costs only once it is reached.
async fn connection(stream: TcpStream, peer: SocketAddr, slot: Slot, shared: Arc<Shared>) {
    let metrics = &shared.state.metrics.http;
    let deadline = Instant::now() + shared.header_timeout;
    let mut buf = Vec::new();
    // The settings in force are looked up once the client has sent something, not for every
    // idle socket.
    match phase(
        &slot,
        deadline,
        head::read_tcp(&stream, &mut buf, head::anything),
    )
    .await
    {
        Phase::Done(Ok(())) => {}
        Phase::Done(Err(_)) => return,
        Phase::TimedOut => return metrics.dropped(Dropped::HeaderTimeout),
        Phase::Shed => return,
    }
    let settings = shared.state.web.as_ref().map(|w| w.settings());
    let tls = settings.as_ref().and_then(|s| s.tls.clone());
    let Some(tls) = tls else {
        match phase(
            &slot,
            deadline,
            head::read_tcp(&stream, &mut buf, head::request_head),
        )
        .await
        {
            Phase::Done(Ok(())) => {}
            Phase::Done(Err(HeadError::TooLarge)) => {
                metrics.dropped(Dropped::TooLarge);
                return refuse(stream, too_large()).await;
            }
            Phase::Done(Err(_)) => return,
            Phase::TimedOut => return metrics.dropped(Dropped::HeaderTimeout),
            Phase::Shed => return,
        }
        if slot.served() {
            Box::pin(serve_one(
                Prefixed::new(buf, stream),
                peer,
                settings,
                shared.clone(),
            ))
            .await;
        }
        return;
    };
    match phase(
        &slot,
        deadline,
        head::read_tcp(&stream, &mut buf, head::tls_record),
    )
    .await
    {
        Phase::Done(Ok(())) => {}
        Phase::Done(Err(HeadError::Wrong)) => {
            metrics.dropped(Dropped::Tls);
            // Plain HTTP to the TLS port: say so, as Go's servers do.
            if buf.first().is_some_and(u8::is_ascii_alphabetic) {
                let answer = text(
                    StatusCode::BAD_REQUEST,
                    "Client sent an HTTP request to an HTTPS server.\n",
                );
                return refuse(stream, answer).await;
            }
            return;
        }
        Phase::Done(Err(_)) => return metrics.dropped(Dropped::Tls),
        Phase::TimedOut => return metrics.dropped(Dropped::HeaderTimeout),
        Phase::Shed => return,
    }
    if slot.start_tls() {
        Box::pin(tls_connection(
            stream,
            buf,
            tls,
            peer,
            &slot,
            deadline,
            settings,
            shared.clone(),
        ))
        .await;
    }
}

/// A TLS connection past its ClientHello: the handshake, then the request headers, each
/// bounded by the same deadline and sheddable; then the request.
#[allow(clippy::too_many_arguments)]
async fn tls_connection(
    stream: TcpStream,
    hello: Vec<u8>,
    tls: Arc<rustls::ServerConfig>,
    peer: SocketAddr,
    slot: &Slot,
    deadline: Instant,
    settings: Option<Arc<WebSettings>>,
    shared: Arc<Shared>,
) {
    let metrics = &shared.state.metrics.http;
    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(Prefixed::new(hello, stream));
    let mut s = match phase(slot, deadline, accept).await {
        Phase::Done(Ok(s)) => s,
        Phase::Done(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            return metrics.dropped(Dropped::Tls);
        }
        Phase::TimedOut => return metrics.dropped(Dropped::HeaderTimeout),
        Phase::Shed => return,
    };
    let mut buf = Vec::new();
    match phase(slot, deadline, head::read_stream(&mut s, &mut buf)).await {
        Phase::Done(Ok(())) => {}
        Phase::Done(Err(HeadError::TooLarge)) => {
            metrics.dropped(Dropped::TooLarge);
            return refuse(s, too_large()).await;
        }
        Phase::Done(Err(_)) => return,
        Phase::TimedOut => return metrics.dropped(Dropped::HeaderTimeout),
        Phase::Shed => return,
    }
    if slot.served() {
        serve_one(Prefixed::new(buf, s), peer, settings, shared).await;
    }
}

fn too_large() -> Resp {
    text(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "Request headers too large (at most 16 KiB).\n",
    )
}

/// Answers a connection that won't be served, without hyper, and closes it.
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(mut s: S, r: Resp) {
    use http_body_util::BodyExt as _;
    let status = r.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    let (parts, body) = r.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    for (k, v) in &parts.headers {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    let write = async {
        let _ = s.write_all(&out).await;
        let _ = s.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Serves the one request whose headers are in `io`'s prefix, then closes.
async fn serve_one<S>(
    io: Prefixed<S>,
    peer: SocketAddr,
    settings: Option<Arc<WebSettings>>,
    shared: Arc<Shared>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let answered = Arc::new(Notify::new());
    let svc = {
        let (shared, answered) = (shared.clone(), answered.clone());
        hyper::service::service_fn(move |req| {
            let (shared, settings, answered) = (shared.clone(), settings.clone(), answered.clone());
            async move {
                let r = handle(&shared, settings.as_deref(), req, peer).await;
                answered.notify_one();
                Ok::<_, Infallible>(r)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_timeout)
        .max_buf_size(head::MAX_HEAD)
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    // The answer must be taken within the header timeout once it is ready: a client that
    // doesn't read holds no more than its own connection, and not for long.
    let stalled = async {
        answered.notified().await;
        tokio::time::sleep(shared.header_timeout).await;
    };
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        _ = stalled => tracing::debug!(peer = %peer, "the client did not take the response in time; closed"),
    }
}

type Resp = Response<Full<Bytes>>;

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

    #[test]
    fn quoted_input_is_cut_at_100_characters() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        let long = "é".repeat(5000);
        let q = quote(&long);
        assert!(q.starts_with(&format!("\"{}\"…", "é".repeat(100))), "{q}");
        assert!(q.ends_with("(5000 characters)"), "{q}");
        assert!(q.chars().count() < 130, "{q}");
    }

    #[test]
    fn the_default_open_connection_bound_follows_the_fd_limit() {
        assert_eq!(default_max_open_connections(1024), 768);
        assert_eq!(default_max_open_connections(20_000), 19_744);
        assert_eq!(default_max_open_connections(100), 64);
        assert_eq!(default_max_open_connections(1 << 30), 100_000);
    }
}
