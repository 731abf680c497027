//! What an answer that is not a success means: Google's error body (`google.rpc.Status` as
//! JSON, <https://cloud.google.com/apis/design/errors>) and the HTTP status, classified into the
//! states the exporter records ([`ErrorKind`]) and, for 429, how long to wait.

use super::{MAX_BODY, clip};

crate::label_enum! {
    /// Why a call failed, as a label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorKind {
        Unauthenticated = "unauthenticated",
        Denied = "denied",
        NotFound = "not_found",
        RateLimited = "rate_limited",
        Server = "server",
        Refused = "refused",
        BadResponse = "bad_response",
    }
}

/// A call that did not give an answer. `message` is Google's, clipped and without control
/// characters; it never holds the token (Google does not echo it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 401: the access token was refused (expired, revoked, wrong audience).
    #[error("unauthenticated (HTTP {status}): {message}")]
    Unauthenticated { status: u16, message: String },
    /// 403: the account may not read this domain (or the API is not enabled for the project).
    #[error("permission denied (HTTP {status}): {message}")]
    Denied { status: u16, message: String },
    /// 404: the domain is not registered in Postmaster Tools for this account.
    #[error("not found (HTTP {status}): {message}")]
    NotFound { status: u16, message: String },
    /// 429 or RESOURCE_EXHAUSTED: come back after `retry_after` seconds when given.
    #[error("rate limited (HTTP {status}{}): {message}", .retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default())]
    RateLimited {
        status: u16,
        retry_after: Option<u64>,
        message: String,
    },
    /// 5xx.
    #[error("server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    /// Another 4xx (400 INVALID_ARGUMENT: a request this module built wrong, or a new rule).
    #[error("request refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// No usable answer: an unexpected status, or a body that is not the documented shape.
    #[error("bad response: {0}")]
    BadResponse(String),
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            ApiError::Denied { .. } => ErrorKind::Denied,
            ApiError::NotFound { .. } => ErrorKind::NotFound,
            ApiError::RateLimited { .. } => ErrorKind::RateLimited,
            ApiError::Server { .. } => ErrorKind::Server,
            ApiError::Refused { .. } => ErrorKind::Refused,
            ApiError::BadResponse(_) => ErrorKind::BadResponse,
        }
    }

    /// Worth trying again later without a change.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::RateLimited { .. } | ApiError::Server { .. })
    }
}

/// Longest wait believed from Retry-After or RetryInfo.
pub const MAX_RETRY_AFTER: u64 = 86_400;

/// What an answer's status says: `Ok(())` for 2xx (then parse the body), else the error.
/// `retry_after` is the Retry-After header if the caller has it (delta-seconds; an HTTP-date
/// is not read); a `google.rpc.RetryInfo` in the body is used when it is absent.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let envelope = (body.len() <= MAX_BODY)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten();
    let error = envelope
        .as_ref()
        .map(|v| &v["error"])
        .filter(|e| e.is_object());
    let canonical = error.and_then(|e| e["status"].as_str()).unwrap_or("");
    let message = match error.and_then(|e| e["message"].as_str()) {
        Some(m) => clip(m),
        None if body.is_empty() => "no body".to_string(),
        None => "the body is not a Google error".to_string(),
    };
    let header_wait = retry_after.and_then(|h| h.trim().parse::<u64>().ok());
    let wait = header_wait
        .or_else(|| error.and_then(retry_info))
        .map(|s| s.min(MAX_RETRY_AFTER));
    Err(match (status, canonical) {
        (429, _) | (_, "RESOURCE_EXHAUSTED") => ApiError::RateLimited {
            status,
            retry_after: wait,
            message,
        },
        (401, _) | (_, "UNAUTHENTICATED") => ApiError::Unauthenticated { status, message },
        (403, _) => ApiError::Denied { status, message },
        (404, _) => ApiError::NotFound { status, message },
        (500..=599, _) => ApiError::Server { status, message },
        (400..=499, _) => ApiError::Refused { status, message },
        _ => ApiError::BadResponse(format!("HTTP status {status}: {message}")),
    })
}

/// Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "30s"` or `"1.5s"`), rounded
/// up.
fn retry_info(error: &serde_json::Value) -> Option<u64> {
    let details = error["details"].as_array()?;
    details.iter().take(16).find_map(|d| {
        let ty = d["@type"].as_str()?;
        if !ty.ends_with("google.rpc.RetryInfo") {
            return None;
        }
        let secs: f64 = d["retryDelay"].as_str()?.strip_suffix('s')?.parse().ok()?;
        (secs.is_finite() && secs >= 0.0).then(|| secs.ceil().min(MAX_RETRY_AFTER as f64) as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/postmaster")
            .join(name);
        std::fs::read(path).expect("fixture")
    }

    #[test]
    fn errors_become_states() {
        assert_eq!(classify(200, None, b"{}"), Ok(()));
        let denied = classify(403, None, &fixture("error-403.json")).unwrap_err();
        assert_eq!(
            denied,
            ApiError::Denied {
                status: 403,
                message: "The caller does not have permission".into()
            }
        );
        assert_eq!(denied.kind().as_str(), "denied");
        assert!(!denied.is_transient());

        let limited = classify(429, Some("30"), &fixture("error-429.json")).unwrap_err();
        let ApiError::RateLimited {
            retry_after,
            message,
            ..
        } = &limited
        else {
            panic!("{limited:?}");
        };
        assert_eq!(*retry_after, Some(30));
        assert!(
            message.starts_with("Quota exceeded for quota metric 'Queries'"),
            "{message}"
        );
        assert!(limited.is_transient());
        let no_header = classify(429, None, &fixture("error-429.json")).unwrap_err();
        assert!(matches!(
            no_header,
            ApiError::RateLimited {
                retry_after: None,
                ..
            }
        ));

        let retry_info = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"slow down",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#;
        let e = classify(429, Some("Wed, 21 Oct 2026 07:28:00 GMT"), retry_info).unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::RateLimited {
                    retry_after: Some(2),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = classify(429, Some("9999999999"), b"").unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::RateLimited {
                    retry_after: Some(86_400),
                    ..
                }
            ),
            "{e:?}"
        );
        let quota_403 = br#"{"error":{"code":403,"status":"RESOURCE_EXHAUSTED","message":"q"}}"#;
        assert_eq!(
            classify(403, None, quota_403).unwrap_err().kind(),
            ErrorKind::RateLimited
        );

        let kind = |status, body: &[u8]| classify(status, None, body).unwrap_err().kind();
        let unauth = br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(kind(401, unauth), ErrorKind::Unauthenticated);
        let missing = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#;
        assert_eq!(kind(404, missing), ErrorKind::NotFound);
        assert_eq!(kind(400, b"{\"error\":{\"code\":400}}"), ErrorKind::Refused);
        assert_eq!(kind(500, b""), ErrorKind::Server);
        assert_eq!(kind(503, b"<html>unavailable</html>"), ErrorKind::Server);
        assert_eq!(kind(302, b""), ErrorKind::BadResponse);

        let hostile = classify(
            502,
            None,
            b"{\"error\":{\"message\":\"a\\u001b[31mred\\nline\"}}",
        );
        assert_eq!(
            hostile,
            Err(ApiError::Server {
                status: 502,
                message: "a[31mredline".into()
            })
        );
        let text = classify(500, None, b"<html>").unwrap_err().to_string();
        assert_eq!(
            text,
            "server error (HTTP 500): the body is not a Google error"
        );
    }
}
