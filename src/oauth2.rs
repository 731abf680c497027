//! OAuth2 access tokens: for XOAUTH2 (Gmail, Microsoft 365), exchanged for a refresh token at
//! the provider's token endpoint (RFC 6749 §6); for Google APIs read by a service account, for
//! a signed JWT assertion ([`jwt`], RFC 7523). Either is kept until shortly before it expires.
//!
//! The refresh token, client secret and signed assertion go only into the POST body sent to
//! the token endpoint; no error message, log line or metric ever holds them or the access
//! token.

pub mod jwt;

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{OAuth2Config, Secret};
use crate::http_client::{self, HttpError, Target};

/// Tokens are refreshed this long before they expire.
const EARLY: Duration = Duration::from_secs(60);
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The endpoint answered with an OAuth2 error (`invalid_grant`: the refresh token was
    /// revoked or expired; `invalid_client`: wrong client id or secret).
    #[error("token endpoint refused the refresh: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error("token endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("token endpoint {url}: {reason}")]
    BadResponse { url: String, reason: String },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// How a token is got.
enum Grant {
    /// A refresh token (RFC 6749 §6).
    Refresh(OAuth2Config),
    /// A service account's signed assertion (RFC 7523 §2.1).
    JwtBearer {
        account: jwt::ServiceAccount,
        scope: String,
        token_url: String,
        ca_file: Option<std::path::PathBuf>,
    },
}

/// One provider's, seed's or API's token, refreshed when needed.
pub struct TokenSource {
    grant: Grant,
    cache: Mutex<Option<(Secret, Instant)>>,
}

impl TokenSource {
    pub fn new(cfg: OAuth2Config) -> TokenSource {
        TokenSource {
            grant: Grant::Refresh(cfg),
            cache: Mutex::new(None),
        }
    }

    /// Tokens for `scope` got with `account`'s signed assertions, at `token_url` (else the key
    /// file's `token_uri`).
    pub fn service_account(
        account: jwt::ServiceAccount,
        scope: &str,
        token_url: Option<String>,
        ca_file: Option<std::path::PathBuf>,
    ) -> TokenSource {
        let token_url = token_url.unwrap_or_else(|| account.token_uri.clone());
        TokenSource {
            grant: Grant::JwtBearer {
                account,
                scope: scope.to_string(),
                token_url,
                ca_file,
            },
            cache: Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, or a fresh one from the endpoint.
    pub async fn token(&self, timeout: Duration) -> Result<Secret, OAuthError> {
        let mut cache = self.cache.lock().await;
        if let Some((t, until)) = cache.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let (token, lifetime) = self.refresh(timeout).await?;
        // Used until EARLY before it expires, or half its lifetime for a short-lived one.
        let usable = lifetime.saturating_sub(EARLY.min(lifetime / 2));
        *cache = Some((token.clone(), Instant::now() + usable));
        Ok(token)
    }

    /// Forgets the cached token (after the server refused it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn refresh(&self, timeout: Duration) -> Result<(Secret, Duration), OAuthError> {
        let (url, ca_file) = match &self.grant {
            Grant::Refresh(cfg) => (&cfg.token_url, &cfg.ca_file),
            Grant::JwtBearer {
                token_url, ca_file, ..
            } => (token_url, ca_file),
        };
        let unreachable = |reason: String| OAuthError::Unreachable {
            url: url.clone(),
            reason,
        };
        let target = Target::parse(url).map_err(unreachable)?;
        let addr = http_client::address(&target)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let body = match &self.grant {
            Grant::Refresh(cfg) => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", cfg.refresh_token.expose());
                form.append_pair("client_id", &cfg.client_id);
                if let Some(s) = &cfg.client_secret {
                    form.append_pair("client_secret", s.expose());
                }
                if let Some(scope) = &cfg.scope {
                    form.append_pair("scope", scope);
                }
                form.finish().into_bytes()
            }
            Grant::JwtBearer { account, scope, .. } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let assertion = account
                    .assertion(scope, "", now)
                    .map_err(|e| unreachable(format!("cannot sign the assertion: {e}")))?;
                jwt::token_request_body(&assertion).into_bytes()
            }
        };
        let (status, body) = http_client::send(http_client::Request {
            method: hyper::Method::POST,
            target: &target,
            addr,
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("accept", "application/json".into()),
            ],
            body,
            ca_file: ca_file.clone(),
            timeout,
            max_body: MAX_RESPONSE,
        })
        .await
        .map_err(|e: HttpError| unreachable(e.to_string()))?;
        let bad = |reason: String| OAuthError::BadResponse {
            url: url.clone(),
            reason,
        };
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            bad(format!(
                "HTTP {status} with a body that is not an OAuth2 JSON response"
            ))
        })?;
        if let Some(error) = parsed.error {
            let clip = |s: String| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            return Err(OAuthError::Refused {
                error: clip(error),
                description: parsed.error_description.map(clip),
            });
        }
        if status != 200 {
            return Err(bad(format!("HTTP status {status}")));
        }
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no access_token in the response".into()))?;
        let lifetime = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600)
        .clamp(60, 86_400);
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A token endpoint for these tests (the real ones are Google's and Microsoft's).
    fn endpoint(
        reply: &'static str,
        status: u16,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(std::sync::Mutex::new(String::new()));
        let (h, b) = (hits.clone(), last.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                h.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                *b.lock().unwrap() = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        (url, hits, last)
    }

    fn cfg(url: String) -> OAuth2Config {
        OAuth2Config {
            token_url: url,
            client_id: "cid".into(),
            client_secret: Some(Secret::new("csecret")),
            refresh_token: Secret::new("rtoken/+&"),
            scope: None,
            ca_file: None,
        }
    }

    #[tokio::test]
    async fn refreshes_once_and_caches() {
        let (url, hits, last) = endpoint(
            r#"{"access_token":"at-1","expires_in":3600,"token_type":"Bearer"}"#,
            200,
        );
        let src = TokenSource::new(cfg(url));
        assert_eq!(
            src.token(Duration::from_secs(5)).await.unwrap().expose(),
            "at-1"
        );
        assert_eq!(
            src.token(Duration::from_secs(5)).await.unwrap().expose(),
            "at-1"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1, "cached");
        let req = last.lock().unwrap().clone();
        assert!(req.starts_with("POST /token HTTP/1.1"), "{req}");
        assert!(req.contains("grant_type=refresh_token&refresh_token=rtoken%2F%2B%26&client_id=cid&client_secret=csecret"), "{req}");
        src.invalidate().await;
        src.token(Duration::from_secs(5)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refusals_are_named_and_never_hold_secrets() {
        let (url, _, _) = endpoint(
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
            400,
        );
        let e = TokenSource::new(cfg(url))
            .token(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "token endpoint refused the refresh: invalid_grant (Token has been expired or revoked.)"
        );
        let (url, _, _) = endpoint("<html>oops</html>", 502);
        let e = TokenSource::new(cfg(url))
            .token(Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 502") && !e.contains("rtoken") && !e.contains("csecret"),
            "{e}"
        );
        let e = TokenSource::new(cfg("http://127.0.0.1:1/token".into()))
            .token(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::Unreachable { .. }), "{e}");
    }
}
