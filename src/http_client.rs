//! A small HTTP/1.1 client for the few outgoing requests the exporter makes: the MTA-STS policy
//! (GET over HTTPS) and OAuth2 token refreshes (POST). hyper speaks HTTP; this connects (to an
//! address the caller resolved, so DNS goes through the caller's resolver), does TLS with
//! [`crate::tls`], bounds the whole exchange by a timeout and the body by a size cap, and never
//! follows redirects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    Connect(String),
    /// The TLS handshake failed; `certificate` when the server's certificate was refused.
    Tls {
        reason: String,
        certificate: bool,
    },
    Http(String),
    TooLarge(usize),
    Timeout,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HttpError::Connect(m) => write!(f, "cannot connect: {m}"),
            HttpError::Tls { reason, .. } => write!(f, "TLS handshake: {reason}"),
            HttpError::Http(m) => write!(f, "{m}"),
            HttpError::TooLarge(n) => write!(f, "the response is larger than {n} bytes"),
            HttpError::Timeout => write!(f, "no complete answer in time"),
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `https://host[:port]/path` or `http://host[:port]/path`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?} is not an http(s) URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{url:?}: credentials in URLs are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                match p.parse::<u16>() {
                    Ok(p) if !h.is_empty() => (h.trim_start_matches('[').trim_end_matches(']'), p),
                    _ => return Err(format!("{url:?}: bad port")),
                }
            }
            _ => (
                authority.trim_start_matches('[').trim_end_matches(']'),
                if https { 443 } else { 80 },
            ),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Target {
            https,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// One request.
pub struct Request<'a> {
    pub method: hyper::Method,
    pub target: &'a Target,
    /// The address to connect to (resolved by the caller).
    pub addr: SocketAddr,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub max_body: usize,
}

/// The address to connect to for `target`: its IP literal, or the first address the system's
/// resolver gives (for SaaS APIs and token endpoints; the DNS checks resolve through their own
/// resolver instead).
pub async fn address(target: &Target) -> Result<SocketAddr, HttpError> {
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, target.port));
    }
    tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| HttpError::Connect(format!("cannot resolve {}: {e}", target.host)))?
        .next()
        .ok_or_else(|| HttpError::Connect(format!("{} has no address", target.host)))
}

/// Sends the request; returns the status and the body.
pub async fn send(req: Request<'_>) -> Result<(u16, Vec<u8>), HttpError> {
    let limit = req.timeout;
    match tokio::time::timeout(limit, exchange(req)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout),
    }
}

async fn exchange(req: Request<'_>) -> Result<(u16, Vec<u8>), HttpError> {
    let tcp = tokio::net::TcpStream::connect(req.addr)
        .await
        .map_err(|e| HttpError::Connect(format!("{}: {e}", req.addr)))?;
    let _ = tcp.set_nodelay(true);
    if req.target.https {
        let tls = crate::tls::client_config(req.ca_file.as_deref(), false, &[b"http/1.1"])
            .map_err(|e| HttpError::Tls {
                reason: e.to_string(),
                certificate: false,
            })?;
        let sni = crate::tls::server_name(&req.target.host).map_err(|e| HttpError::Tls {
            reason: e,
            certificate: false,
        })?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(sni, tcp)
            .await
            .map_err(|e| match crate::tls::tls_failure_reason(&e) {
                Some(r) => HttpError::Tls {
                    certificate: r.starts_with("certificate"),
                    reason: r,
                },
                None => HttpError::Tls {
                    reason: e.to_string(),
                    certificate: false,
                },
            })?;
        over(stream, &req).await
    } else {
        over(tcp, &req).await
    }
}

async fn over<S>(stream: S, req: &Request<'_>) -> Result<(u16, Vec<u8>), HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Http(e.to_string()))?;
    let driver = AbortOnDrop(tokio::spawn(conn));
    let host = if (req.target.https && req.target.port == 443)
        || (!req.target.https && req.target.port == 80)
    {
        req.target.host.clone()
    } else {
        format!("{}:{}", req.target.host, req.target.port)
    };
    let mut b = hyper::Request::builder()
        .method(req.method.clone())
        .uri(req.target.path.as_str())
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("deliverability_exporter/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close");
    for (k, v) in &req.headers {
        b = b.header(*k, v.as_str());
    }
    let request = b
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| HttpError::Http(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpError::Http(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > req.max_body {
                return Err(HttpError::TooLarge(req.max_body));
            }
            buf.extend_from_slice(data);
        }
    }
    drop(driver);
    Ok((status, buf))
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://oauth2.googleapis.com/token").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (true, "oauth2.googleapis.com", 443, "/token")
        );
        let t = Target::parse("http://127.0.0.1:8080/a?b=c").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 8080, "/a?b=c")
        );
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8443, "/")
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("https://user:pw@x/").is_err());
        assert!(Target::parse("https://x:99999/").is_err());
        assert!(Target::parse("https:///x").is_err());
    }
}
