//! IMAP connections for the seed watchers and the report mailbox: connect over TCP, TLS from
//! the first byte or STARTTLS, then LOGIN, AUTHENTICATE PLAIN or XOAUTH2, with async-imap.
//!
//! Every step runs under the caller's timeout. Failures are classified so metrics and logs can
//! tell a refused login from a network or certificate problem; messages never hold a password.
//!
//! Both users also file messages away the same way once they are done with them: [`file_away`]
//! moves them (UID MOVE, or UID COPY and delete where the server has no MOVE) or deletes them.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::{Authenticator, Client, Session};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{ImapAuth, Secret, TlsMode};
use crate::tls;

/// Where and how to log in.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    /// Password, or the OAuth2 access token for XOAUTH2.
    pub secret: Secret,
    pub auth: ImapAuth,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

/// The stream under an IMAP session: plain TCP or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = Session<Stream>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapErrorKind {
    Network,
    Tls,
    /// The server refused the login.
    Auth,
    /// The server answered something unusable, or NO/BAD to a command.
    Protocol,
    Timeout,
}

impl ImapErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImapErrorKind::Network => "network",
            ImapErrorKind::Tls => "tls",
            ImapErrorKind::Auth => "auth",
            ImapErrorKind::Protocol => "protocol",
            ImapErrorKind::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImapError {
    pub kind: ImapErrorKind,
    pub message: String,
}

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

impl std::error::Error for ImapError {}

fn err(kind: ImapErrorKind, message: impl Into<String>) -> ImapError {
    ImapError {
        kind,
        message: message.into(),
    }
}

/// Classifies an async-imap error of a command.
pub fn command_error(what: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    let kind = match &e {
        E::Io(io) if tls::tls_failure_reason(io).is_some() => ImapErrorKind::Tls,
        E::Io(_) | E::ConnectionLost => ImapErrorKind::Network,
        _ => ImapErrorKind::Protocol,
    };
    err(kind, format!("{what}: {e}"))
}

/// Runs an IMAP step under `limit`, turning a timeout into an error naming the step.
pub async fn step<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(command_error(what, e)),
        Err(_) => Err(err(
            ImapErrorKind::Timeout,
            format!(
                "{what}: no answer within {}",
                crate::config::values::format_duration(limit)
            ),
        )),
    }
}

struct Plain<'a>(&'a str, &'a str);

impl Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.0, self.1).into_bytes()
    }
}

/// SASL XOAUTH2 (Google, Microsoft). On failure the server sends an error challenge, which is
/// answered with an empty response so it can finish with NO.
struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
    sent: bool,
}

impl Authenticator for XOAuth2<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _: &[u8]) -> Vec<u8> {
        if self.sent {
            return Vec::new();
        }
        self.sent = true;
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
    }
}

async fn tls_wrap(ep: &Endpoint, tcp: TcpStream, limit: Duration) -> Result<Stream, ImapError> {
    let config = tls::client_config(ep.ca_file.as_deref(), ep.insecure_skip_verify, &[])
        .map_err(|e| err(ImapErrorKind::Tls, e.to_string()))?;
    let name = tls::server_name(&ep.host).map_err(|e| err(ImapErrorKind::Tls, e))?;
    match timeout(
        limit,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    {
        Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => match tls::tls_failure_reason(&e) {
            Some(reason) => Err(err(
                ImapErrorKind::Tls,
                format!("TLS handshake with {}:{}: {reason}", ep.host, ep.port),
            )),
            None => Err(err(
                ImapErrorKind::Network,
                format!("TLS handshake with {}:{}: {e}", ep.host, ep.port),
            )),
        },
        Err(_) => Err(err(
            ImapErrorKind::Timeout,
            format!("TLS handshake with {}:{} took too long", ep.host, ep.port),
        )),
    }
}

async fn greeting(client: &mut Client<Stream>, limit: Duration) -> Result<(), ImapError> {
    match timeout(limit, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(err(
            ImapErrorKind::Network,
            "the server closed the connection before its greeting",
        )),
        Ok(Err(e)) => Err(err(ImapErrorKind::Network, format!("greeting: {e}"))),
        Err(_) => Err(err(ImapErrorKind::Timeout, "no greeting in time")),
    }
}

/// Connects and logs in. Each step is bounded by `limit`.
pub async fn connect(ep: &Endpoint, limit: Duration) -> Result<ImapSession, ImapError> {
    let tcp = match timeout(limit, TcpStream::connect((ep.host.as_str(), ep.port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(err(
                ImapErrorKind::Network,
                format!("cannot connect to {}:{}: {e}", ep.host, ep.port),
            ));
        }
        Err(_) => {
            return Err(err(
                ImapErrorKind::Timeout,
                format!("cannot connect to {}:{}: timed out", ep.host, ep.port),
            ));
        }
    };
    let _ = tcp.set_nodelay(true);
    let client = match ep.tls {
        TlsMode::Implicit => {
            let mut c = Client::new(tls_wrap(ep, tcp, limit).await?);
            greeting(&mut c, limit).await?;
            c
        }
        TlsMode::None => {
            let mut c = Client::new(Stream::Plain(tcp));
            greeting(&mut c, limit).await?;
            c
        }
        TlsMode::Starttls => {
            let mut c = Client::new(Stream::Plain(tcp));
            greeting(&mut c, limit).await?;
            step(
                "STARTTLS",
                limit,
                c.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            let Stream::Plain(tcp) = c.into_inner() else {
                return Err(err(
                    ImapErrorKind::Protocol,
                    "STARTTLS on an encrypted stream",
                ));
            };
            Client::new(tls_wrap(ep, tcp, limit).await?)
        }
    };
    let login = async {
        match ep.auth {
            ImapAuth::Login => client.login(&ep.username, ep.secret.expose()).await,
            ImapAuth::Plain => {
                client
                    .authenticate("PLAIN", Plain(&ep.username, ep.secret.expose()))
                    .await
            }
            ImapAuth::Xoauth2 => {
                client
                    .authenticate(
                        "XOAUTH2",
                        XOAuth2 {
                            user: &ep.username,
                            token: ep.secret.expose(),
                            sent: false,
                        },
                    )
                    .await
            }
        }
    };
    match timeout(limit, login).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err((e, _))) => {
            use async_imap::error::Error as E;
            match e {
                E::No(_) | E::Bad(_) => Err(err(
                    ImapErrorKind::Auth,
                    format!(
                        "login as {} refused by {}:{}",
                        ep.username, ep.host, ep.port
                    ),
                )),
                other => Err(command_error("login", other)),
            }
        }
        Err(_) => Err(err(ImapErrorKind::Timeout, "login: no answer in time")),
    }
}

/// Quotes a string for an IMAP command (mailbox names, search keys).
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')) {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// `1:3,5,7:8` from sorted UIDs (a UID repeated or inside a range is sent once).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut seen = std::collections::HashSet::new();
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] <= end + 1 {
            i += 1;
            end = end.max(uids[i]);
        }
        if seen.insert(start) {
            if !out.is_empty() {
                out.push(',');
            }
            if start == end {
                out.push_str(&start.to_string());
            } else {
                out.push_str(&format!("{start}:{end}"));
            }
        }
        i += 1;
    }
    out
}

/// What the server offers that decides how messages are filed away: MOVE (RFC 6851) and
/// UIDPLUS (RFC 4315), from its CAPABILITY answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filing {
    pub can_move: bool,
    pub uidplus: bool,
}

impl Filing {
    pub fn of(caps: &async_imap::types::Capabilities) -> Filing {
        Filing {
            can_move: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        }
    }

    /// The commands that file messages away: to `dest` by UID MOVE, or where the server has no
    /// MOVE by UID COPY and then deleting them; without `dest` they are only deleted.
    fn commands<'a>(self, dest: Option<&'a str>) -> Vec<FilingCommand<'a>> {
        let mut out = Vec::new();
        if let Some(dest) = dest {
            if self.can_move {
                return vec![FilingCommand::Move(dest)];
            }
            out.push(FilingCommand::Copy(dest));
        }
        out.push(FilingCommand::FlagDeleted);
        out.push(if self.uidplus {
            FilingCommand::UidExpunge
        } else {
            FilingCommand::Expunge
        });
        out
    }
}

/// One command of [`file_away`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilingCommand<'a> {
    Move(&'a str),
    Copy(&'a str),
    /// `UID STORE +FLAGS.SILENT (\Deleted)`.
    FlagDeleted,
    /// Expunges only the given messages.
    UidExpunge,
    /// Expunges every message flagged `\Deleted` in the folder (servers without UIDPLUS).
    Expunge,
}

/// Files messages of the selected folder away: moves them to `dest` (UID MOVE, or UID COPY,
/// UID STORE `\Deleted` and UID EXPUNGE, or EXPUNGE without UIDPLUS, where the server has no
/// MOVE), or deletes them when there is no `dest`. Each command runs under `limit`; the
/// untagged answers of STORE and EXPUNGE are drained but not checked. Nothing to do for no
/// UIDs.
pub async fn file_away(
    s: &mut ImapSession,
    uids: &[u32],
    dest: Option<&str>,
    filing: Filing,
    limit: Duration,
) -> Result<(), ImapError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    for command in filing.commands(dest) {
        match command {
            FilingCommand::Move(dest) => step("UID MOVE", limit, s.uid_mv(&set, dest)).await?,
            FilingCommand::Copy(dest) => step("UID COPY", limit, s.uid_copy(&set, dest)).await?,
            FilingCommand::FlagDeleted => {
                let stream = step(
                    "UID STORE",
                    limit,
                    s.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"),
                )
                .await?;
                let _ = timeout(limit, stream.collect::<Vec<_>>()).await;
            }
            FilingCommand::UidExpunge => {
                let stream = step("UID EXPUNGE", limit, s.uid_expunge(&set)).await?;
                let _ = timeout(limit, stream.collect::<Vec<_>>()).await;
            }
            FilingCommand::Expunge => {
                let stream = step("EXPUNGE", limit, s.expunge()).await?;
                let _ = timeout(limit, stream.collect::<Vec<_>>()).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote("a\"b\\c\r\n"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(Plain("u", "p").process(b""), b"\0u\0p");
        let mut x = XOAuth2 {
            user: "u@x",
            token: "tok",
            sent: false,
        };
        assert_eq!(x.process(b""), b"user=u@x\x01auth=Bearer tok\x01\x01");
        assert_eq!(x.process(b"{\"status\":\"400\"}"), b"");
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn filing_away_moves_or_copies_then_deletes() {
        use FilingCommand::*;
        let filing = |can_move, uidplus| Filing { can_move, uidplus };
        assert_eq!(filing(true, true).commands(Some("Done")), [Move("Done")]);
        assert_eq!(filing(true, false).commands(Some("Done")), [Move("Done")]);
        assert_eq!(
            filing(false, true).commands(Some("Done")),
            [Copy("Done"), FlagDeleted, UidExpunge]
        );
        assert_eq!(
            filing(false, false).commands(Some("Done")),
            [Copy("Done"), FlagDeleted, Expunge]
        );
        // Without a destination they are deleted, MOVE or not.
        assert_eq!(filing(true, true).commands(None), [FlagDeleted, UidExpunge]);
        assert_eq!(filing(false, false).commands(None), [FlagDeleted, Expunge]);
    }
}
