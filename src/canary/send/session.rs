//! The send of one canary through one provider: connect, TLS (implicit), banner and EHLO,
//! STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA and the body, each timed and each under its own
//! timeout (lettre has no read timeout), then a polite QUIT when the connection is still
//! usable. Every failure ends the send as a [`SendFailure`] in the [`SendOutcome`]; a broken
//! connection or a timeout after the message terminator was sent is `uncertain` (the message
//! may still arrive, so the seed keeps being watched).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::extension::{MailParameter, RcptParameter};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::failure::{FailureClass, SendFailure, Stage, classify, clean, fail};
use super::wire::{Inner, Wire, WireStats};
use crate::config::{AuthMechanism, Provider, Secret, TlsMode};
use crate::tls;

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
    /// The canary's token: the `{token}` of the provider's `bounce_address`, and the envelope
    /// id (RFC 3461 `ENVID`) where the server offers DSN.
    pub token: &'a str,
}

fn lettre_mechanism(m: AuthMechanism) -> Mechanism {
    match m {
        AuthMechanism::Plain => Mechanism::Plain,
        AuthMechanism::Login => Mechanism::Login,
        AuthMechanism::Xoauth2 => Mechanism::Xoauth2,
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
    let wire = Wire::new(inner, peer, stats.clone());
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
        stats.sniffer().arm();
        timed(
            out,
            Stage::Starttls,
            limit,
            conn.starttls(params, helo),
            |e| classify(Stage::Starttls, &e),
        )
        .await?;
        let version = stats.sniffer().version().unwrap_or("other");
        out.tls = Some(TlsInfo {
            version,
            cert_not_after: conn
                .peer_certificate()
                .ok()
                .and_then(|c| tls::cert_not_after(&c)),
        });
    }

    // Asked before AUTH: a second EHLO resets the session's state (RFC 5321 §4.1.4).
    let dsn = p.bounce_address.is_some() && offers_dsn(conn, helo, limit).await;

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

    // With a bounce address the envelope sender names the canary (VERP), and where the server
    // offers DSN the canary asks for a bounce with its headers (RET=HDRS), its token as the
    // envelope id, and no delay warnings (NOTIFY=FAILURE).
    let envelope = match &p.bounce_address {
        Some(b) => b.replace("{token}", req.token),
        None => p.from.clone(),
    };
    let from: Address = envelope.parse().map_err(|_| {
        fail(
            Stage::MailFrom,
            FailureClass::Protocol,
            format!("envelope sender {envelope:?} is not a valid address"),
        )
    })?;
    let (mail_params, rcpt_params) = if dsn {
        (
            vec![
                MailParameter::Other {
                    keyword: "RET".into(),
                    value: Some("HDRS".into()),
                },
                MailParameter::Other {
                    keyword: "ENVID".into(),
                    value: Some(req.token.to_string()),
                },
            ],
            vec![RcptParameter::Other {
                keyword: "NOTIFY".into(),
                value: Some("FAILURE".into()),
            }],
        )
    } else {
        (Vec::new(), Vec::new())
    };
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
        conn.command(Mail::new(Some(from), mail_params)),
        |e| classify(Stage::MailFrom, &e),
    )
    .await?;
    timed(
        out,
        Stage::RcptTo,
        limit,
        conn.command(Rcpt::new(rcpt, rcpt_params)),
        |e| classify(Stage::RcptTo, &e),
    )
    .await?;
    timed(out, Stage::Data, limit, conn.command(Data), |e| {
        classify(Stage::Data, &e)
    })
    .await?;

    let reads_before = stats.reads_polled();
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
                && stats.reads_polled() > reads_before
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
            if stats.reads_polled() > reads_before {
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

/// Whether the server offers DSN (RFC 3461): asked with a second EHLO (lettre keeps only the
/// extensions it knows). Any failure means no: the canary is then sent without DSN parameters.
async fn offers_dsn(conn: &mut AsyncSmtpConnection, helo: &ClientId, limit: Duration) -> bool {
    match timeout(limit, conn.command(Ehlo::new(helo.clone()))).await {
        Ok(Ok(r)) => r.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("DSN"))
        }),
        _ => false,
    }
}
