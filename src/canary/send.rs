//! Sends one canary through one provider, stage by stage, timing each and classifying any
//! failure.
//!
//! lettre's step-by-step `AsyncSmtpConnection` speaks SMTP over a `TcpStream` we open ourselves
//! (with `TCP_NODELAY`: lettre leaves Nagle on, which adds ~40 ms to the body on loopback). The
//! stream is wrapped in [`Wire`], which lets us see two things lettre doesn't tell: the TLS
//! version a STARTTLS handshake negotiated (from the ServerHello), and whether the message
//! terminator had been sent when the body stage timed out (then the message may still arrive:
//! the failure is `uncertain` and the seed keeps being watched).
//!
//! Every stage runs under its own timeout: lettre has no read timeout.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::config::{AuthMechanism, Provider, Secret, TlsMode};
use crate::tls::{self, ServerHelloSniffer};

/// SMTP stages, in order; the `stage` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Connect,
    /// The TLS handshake of an implicit-TLS connection.
    Tls,
    /// Banner and EHLO.
    Ehlo,
    /// STARTTLS, its handshake and the second EHLO.
    Starttls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The message and its terminator, up to the final reply.
    Body,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Connect,
        Stage::Tls,
        Stage::Ehlo,
        Stage::Starttls,
        Stage::Auth,
        Stage::MailFrom,
        Stage::RcptTo,
        Stage::Data,
        Stage::Body,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Tls => "tls",
            Stage::Ehlo => "ehlo",
            Stage::Starttls => "starttls",
            Stage::Auth => "auth",
            Stage::MailFrom => "mail_from",
            Stage::RcptTo => "rcpt_to",
            Stage::Data => "data",
            Stage::Body => "body",
        }
    }
}

/// The `class` label of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// A 4xx reply: try again later (421, 450, 451, 452).
    Transient,
    /// A 5xx reply: this will not work without a change (535, 550, 552, 553, 554).
    Permanent,
    /// The connection could not be made or broke.
    Network,
    /// The TLS handshake failed, including an untrusted certificate.
    Tls,
    /// A stage took longer than `canary.smtp_timeout`.
    Timeout,
    /// Timed out, or the connection broke, after the message terminator was sent and before
    /// the final reply: it may still arrive, so it is still watched for.
    Uncertain,
    /// The server said something we could not use (no STARTTLS, no common AUTH mechanism,
    /// a malformed reply).
    Protocol,
}

impl FailureClass {
    pub const ALL: [FailureClass; 7] = [
        FailureClass::Transient,
        FailureClass::Permanent,
        FailureClass::Network,
        FailureClass::Tls,
        FailureClass::Timeout,
        FailureClass::Uncertain,
        FailureClass::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Permanent => "permanent",
            FailureClass::Network => "network",
            FailureClass::Tls => "tls",
            FailureClass::Timeout => "timeout",
            FailureClass::Uncertain => "uncertain",
            FailureClass::Protocol => "protocol",
        }
    }
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    pub stage: Stage,
    pub class: FailureClass,
    /// The SMTP reply code, when the server replied.
    pub code: Option<u16>,
    /// The RFC 3463 enhanced status code (`5.7.8`), when the reply had one.
    pub enhanced: Option<String>,
    /// One line for logs and the landing page. Never holds a credential.
    pub message: String,
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} failed ({}", self.stage.as_str(), self.class.as_str())?;
        if let Some(c) = self.code {
            write!(f, ", {c}")?;
        }
        if let Some(e) = &self.enhanced {
            write!(f, " {e}")?;
        }
        write!(f, "): {}", self.message)
    }
}

/// The TLS facts of a send.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsInfo {
    pub version: &'static str,
    /// The server certificate's notAfter, Unix seconds.
    pub cert_not_after: Option<i64>,
}

/// Everything one send attempt produced.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// Each completed stage and how long it took, in order.
    pub stages: Vec<(Stage, Duration)>,
    pub tls: Option<TlsInfo>,
    pub auth_mechanism: Option<AuthMechanism>,
    /// The final reply to the message, when accepted: the server's queue id line.
    pub accepted: Option<String>,
    /// When the final reply to the message arrived (or, for `uncertain`, when the terminator
    /// was sent): delivery latency is measured from here.
    pub data_done: Option<SystemTime>,
    pub failure: Option<SendFailure>,
}

/// One send: the provider, the envelope, the message.
pub struct SendRequest<'a> {
    pub provider: &'a Provider,
    pub rcpt: &'a str,
    pub message: &'a [u8],
    pub stage_timeout: Duration,
    pub helo_name: &'a str,
    /// An OAuth2 access token fetched for this send (XOAUTH2); otherwise the configured password.
    pub access_token: Option<Secret>,
}

/// Counts what happened on the socket, shared between [`Wire`] and the sender.
#[derive(Debug, Default)]
struct WireStats {
    reads_polled: AtomicU64,
    sniffer: Mutex<ServerHelloSniffer>,
}

/// The stream lettre talks over: a TCP stream, or our own TLS stream for implicit TLS.
enum Inner {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

struct Wire {
    inner: Inner,
    peer: SocketAddr,
    stats: Arc<WireStats>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Wire({})", self.peer)
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.stats.reads_polled.fetch_add(1, Ordering::Relaxed);
        let before = buf.filled().len();
        let r = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let (Poll::Ready(Ok(())), Inner::Tcp(_)) = (&r, &this.inner) {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                this.stats
                    .sniffer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .feed(new);
            }
        }
        r
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

fn lettre_mechanism(m: AuthMechanism) -> Mechanism {
    match m {
        AuthMechanism::Plain => Mechanism::Plain,
        AuthMechanism::Login => Mechanism::Login,
        AuthMechanism::Xoauth2 => Mechanism::Xoauth2,
    }
}

/// Finds an RFC 3463 enhanced status code (`class.subject.detail`) at the start of a reply.
pub fn enhanced_code(text: &str) -> Option<String> {
    let first = text.split_whitespace().next()?;
    let mut parts = first.split('.');
    let (c, s, d) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = matches!(c, "2" | "4" | "5")
        && (1..=3).contains(&s.len())
        && (1..=3).contains(&d.len())
        && s.bytes().chain(d.bytes()).all(|b| b.is_ascii_digit())
        && parts.next().is_none();
    ok.then(|| first.to_string())
}

/// One line of server text, bounded, with no control characters.
fn clean(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Classifies a lettre error of a stage.
fn classify(stage: Stage, e: &lettre::transport::smtp::Error) -> SendFailure {
    use std::error::Error as _;
    if let Some(code) = e.status() {
        let code_num: u16 = code.to_string().parse().unwrap_or(0);
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        return SendFailure {
            stage,
            class: if e.is_transient() {
                FailureClass::Transient
            } else {
                FailureClass::Permanent
            },
            code: Some(code_num),
            enhanced: enhanced_code(&text),
            message: clean(&format!("{code_num} {text}")),
        };
    }
    if let Some(reason) = tls::tls_failure_reason(e) {
        return SendFailure {
            stage,
            class: FailureClass::Tls,
            code: None,
            enhanced: None,
            message: reason,
        };
    }
    // lettre reports a connection closed before a complete reply as a response error.
    let closed = e.to_string().contains("incomplete response");
    let class = if e.is_timeout() {
        FailureClass::Timeout
    } else if closed {
        FailureClass::Network
    } else if e.is_client() || e.is_response() {
        FailureClass::Protocol
    } else {
        FailureClass::Network
    };
    let mut msg = e.to_string();
    if let Some(src) = e.source() {
        msg = format!("{msg}: {src}");
    }
    SendFailure {
        stage,
        class,
        code: None,
        enhanced: None,
        message: clean(&msg),
    }
}

fn fail(stage: Stage, class: FailureClass, message: impl Into<String>) -> SendFailure {
    SendFailure {
        stage,
        class,
        code: None,
        enhanced: None,
        message: clean(&message.into()),
    }
}

/// Sends the message. Never panics; every failure is a [`SendFailure`] in the outcome.
pub async fn send(req: SendRequest<'_>) -> SendOutcome {
    let mut out = SendOutcome {
        stages: Vec::new(),
        tls: None,
        auth_mechanism: None,
        accepted: None,
        data_done: None,
        failure: None,
    };
    use futures::FutureExt as _;
    let result = std::panic::AssertUnwindSafe(run(&req, &mut out))
        .catch_unwind()
        .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(f)) => out.failure = Some(f),
        Err(_) => {
            // A bug in a library must cost one canary, not the exporter.
            let done = out.stages.last().map(|(s, _)| *s);
            let stage = Stage::ALL
                .iter()
                .skip_while(|s| Some(**s) != done)
                .nth(1)
                .copied()
                .unwrap_or(Stage::Connect);
            out.failure = Some(fail(
                stage,
                FailureClass::Protocol,
                "internal error in the SMTP client; see the log",
            ));
        }
    }
    out
}

async fn timed<T, E>(
    out: &mut SendOutcome,
    stage: Stage,
    limit: Duration,
    fut: impl Future<Output = Result<T, E>>,
    on_err: impl FnOnce(E) -> SendFailure,
) -> Result<T, SendFailure> {
    let start = Instant::now();
    match timeout(limit, fut).await {
        Ok(Ok(v)) => {
            out.stages.push((stage, start.elapsed()));
            Ok(v)
        }
        Ok(Err(e)) => Err(on_err(e)),
        Err(_) => Err(fail(
            stage,
            FailureClass::Timeout,
            format!(
                "no answer within {}",
                crate::config::values::format_duration(limit)
            ),
        )),
    }
}

async fn run(req: &SendRequest<'_>, out: &mut SendOutcome) -> Result<(), SendFailure> {
    let p = req.provider;
    let limit = req.stage_timeout;
    let stats = Arc::new(WireStats::default());

    let tcp = timed(
        out,
        Stage::Connect,
        limit,
        TcpStream::connect((p.host.as_str(), p.port)),
        |e| {
            fail(
                Stage::Connect,
                FailureClass::Network,
                format!("cannot connect to {}:{}: {e}", p.host, p.port),
            )
        },
    )
    .await?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp
        .peer_addr()
        .map_err(|e| fail(Stage::Connect, FailureClass::Network, e.to_string()))?;

    let inner = if p.tls == TlsMode::Implicit {
        let config = tls::client_config(p.ca_file.as_deref(), p.insecure_skip_verify, &[])
            .map_err(|e| fail(Stage::Tls, FailureClass::Tls, e.to_string()))?;
        let name = tls::server_name(&p.host).map_err(|e| fail(Stage::Tls, FailureClass::Tls, e))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = timed(out, Stage::Tls, limit, connector.connect(name, tcp), |e| {
            let reason = tls::tls_failure_reason(&e).unwrap_or_else(|| e.to_string());
            let class = if tls::tls_failure_reason(&e).is_some() {
                FailureClass::Tls
            } else {
                FailureClass::Network
            };
            fail(Stage::Tls, class, reason)
        })
        .await?;
        let (_, conn) = stream.get_ref();
        out.tls = Some(TlsInfo {
            version: conn
                .protocol_version()
                .map(tls::version_name)
                .unwrap_or("other"),
            cert_not_after: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| tls::cert_not_after(c)),
        });
        Inner::Tls(Box::new(stream))
    } else {
        Inner::Tcp(tcp)
    };
    let wire = Wire {
        inner,
        peer,
        stats: stats.clone(),
    };
    let helo = ClientId::Domain(req.helo_name.to_string());

    let mut conn = timed(
        out,
        Stage::Ehlo,
        limit,
        AsyncSmtpConnection::connect_with_transport(Box::new(wire), &helo),
        |e| classify(Stage::Ehlo, &e),
    )
    .await?;
    let result = session(req, out, &mut conn, &stats, &helo).await;
    // QUIT politely; its outcome doesn't change the result. Not after a failed STARTTLS:
    // lettre leaves no stream behind then (writing to it would panic), nor after a timeout
    // or a network error, where the connection is unusable anyway.
    let usable = match &result {
        Ok(()) => true,
        Err(f) => {
            f.stage != Stage::Starttls
                && matches!(
                    f.class,
                    FailureClass::Transient | FailureClass::Permanent | FailureClass::Protocol
                )
        }
    };
    if usable && !conn.has_broken() {
        let _ = timeout(Duration::from_secs(2).min(limit), conn.quit()).await;
    }
    result
}

async fn session(
    req: &SendRequest<'_>,
    out: &mut SendOutcome,
    conn: &mut AsyncSmtpConnection,
    stats: &Arc<WireStats>,
    helo: &ClientId,
) -> Result<(), SendFailure> {
    let p = req.provider;
    let limit = req.stage_timeout;

    if p.tls == TlsMode::Starttls {
        if !conn.can_starttls() {
            return Err(fail(
                Stage::Starttls,
                FailureClass::Protocol,
                "the server does not offer STARTTLS",
            ));
        }
        let mut builder = TlsParameters::builder(p.host.clone());
        if let Some(ca) = &p.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                fail(
                    Stage::Starttls,
                    FailureClass::Tls,
                    format!("ca_file {}: {e}", ca.display()),
                )
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                fail(
                    Stage::Starttls,
                    FailureClass::Tls,
                    format!("ca_file {}: {e}", ca.display()),
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if p.insecure_skip_verify {
            builder = builder
                .dangerous_accept_invalid_certs(true)
                .dangerous_accept_invalid_hostnames(true);
        }
        let params = builder
            .build_rustls()
            .map_err(|e| fail(Stage::Starttls, FailureClass::Tls, e.to_string()))?;
        stats
            .sniffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arm();
        timed(
            out,
            Stage::Starttls,
            limit,
            conn.starttls(params, helo),
            |e| classify(Stage::Starttls, &e),
        )
        .await?;
        let version = stats
            .sniffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .version()
            .unwrap_or("other");
        out.tls = Some(TlsInfo {
            version,
            cert_not_after: conn
                .peer_certificate()
                .ok()
                .and_then(|c| tls::cert_not_after(&c)),
        });
    }

    if let Some((user, password)) = &p.credentials {
        let secret = req.access_token.as_ref().unwrap_or(password);
        let offered: Vec<AuthMechanism> = p
            .auth
            .iter()
            .copied()
            .filter(|m| {
                conn.server_info()
                    .supports_auth_mechanism(lettre_mechanism(*m))
            })
            .collect();
        let Some(&mechanism) = offered.first() else {
            let names: Vec<&str> = p.auth.iter().map(|m| m.as_str()).collect();
            return Err(fail(
                Stage::Auth,
                FailureClass::Protocol,
                format!(
                    "the server offers none of the configured AUTH mechanisms ({})",
                    names.join(", ")
                ),
            ));
        };
        out.auth_mechanism = Some(mechanism);
        let creds = Credentials::new(user.clone(), secret.expose().to_string());
        timed(
            out,
            Stage::Auth,
            limit,
            conn.auth(&[lettre_mechanism(mechanism)], &creds),
            |e| classify(Stage::Auth, &e),
        )
        .await?;
    }

    let from: Address = p.from.parse().map_err(|_| {
        fail(
            Stage::MailFrom,
            FailureClass::Protocol,
            format!("from {:?} is not a valid address", p.from),
        )
    })?;
    let rcpt: Address = req.rcpt.parse().map_err(|_| {
        fail(
            Stage::RcptTo,
            FailureClass::Protocol,
            format!("recipient {:?} is not a valid address", req.rcpt),
        )
    })?;
    timed(
        out,
        Stage::MailFrom,
        limit,
        conn.command(Mail::new(Some(from), vec![])),
        |e| classify(Stage::MailFrom, &e),
    )
    .await?;
    timed(
        out,
        Stage::RcptTo,
        limit,
        conn.command(Rcpt::new(rcpt, vec![])),
        |e| classify(Stage::RcptTo, &e),
    )
    .await?;
    timed(out, Stage::Data, limit, conn.command(Data), |e| {
        classify(Stage::Data, &e)
    })
    .await?;

    let reads_before = stats.reads_polled.load(Ordering::Relaxed);
    let start = Instant::now();
    match timeout(limit, conn.message(req.message)).await {
        Ok(Ok(resp)) => {
            out.stages.push((Stage::Body, start.elapsed()));
            out.data_done = Some(SystemTime::now());
            out.accepted = Some(clean(&resp.message().collect::<Vec<_>>().join(" ")));
            Ok(())
        }
        Ok(Err(e)) => {
            let mut f = classify(Stage::Body, &e);
            // The connection broke without a final reply after the whole message was handed
            // over: the server may have queued it (RFC 5321 §6.1), so keep watching for it.
            if f.code.is_none()
                && f.class == FailureClass::Network
                && stats.reads_polled.load(Ordering::Relaxed) > reads_before
            {
                f.class = FailureClass::Uncertain;
                f.message = format!(
                    "the connection broke after the message was sent, before the final reply ({}); it may still arrive",
                    f.message
                );
                out.data_done = Some(SystemTime::now());
            }
            Err(f)
        }
        Err(_) => {
            // lettre writes the whole message and the terminator before it reads the reply:
            // a read polled since the body began means the terminator was sent.
            if stats.reads_polled.load(Ordering::Relaxed) > reads_before {
                out.data_done = Some(SystemTime::now() - limit);
                Err(fail(
                    Stage::Body,
                    FailureClass::Uncertain,
                    "the message was sent but no final reply came in time; it may still arrive",
                ))
            } else {
                Err(fail(
                    Stage::Body,
                    FailureClass::Timeout,
                    "the message could not be written in time",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes() {
        assert_eq!(
            enhanced_code("5.7.8 Error: authentication failed"),
            Some("5.7.8".into())
        );
        assert_eq!(
            enhanced_code("4.2.1 <busy450@seed.test>: Recipient address rejected"),
            Some("4.2.1".into())
        );
        assert_eq!(
            enhanced_code("2.0.0 Ok: queued as 4ABC"),
            Some("2.0.0".into())
        );
        assert_eq!(enhanced_code("Error: no"), None);
        assert_eq!(enhanced_code("5.7"), None);
        assert_eq!(enhanced_code("6.1.1 x"), None);
        assert_eq!(enhanced_code("5.1234.1 x"), None);
        assert_eq!(enhanced_code(""), None);
    }

    #[test]
    fn server_text_is_bounded_and_single_line() {
        assert_eq!(clean("a\r\nb"), "a  b");
        let long = "é".repeat(400);
        let c = clean(&long);
        assert!(c.len() <= 304 && c.ends_with('…'));
    }
}
