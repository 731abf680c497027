//! Google service-account keys and the JWT bearer assertions they sign (RFC 7523 §2.1), the
//! way a service account gets an access token for the Postmaster Tools API: the exporter signs
//! an assertion with the key, POSTs it to the key's `token_uri` ([`token_request_body`]) and
//! gets a bearer token back. Nothing here touches the network; the exchange is the caller's,
//! the same POST [`crate::oauth2`] makes for a refresh token.
//!
//! The private key is parsed once into ring's `RsaKeyPair` and not kept as text. No `Debug`,
//! `Display`, error or log line holds it: errors name the field that is wrong, never its value.
//! Assertions are signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256), the algorithm Google's token
//! endpoint takes, and live an hour, Google's maximum.
//!
//! Shapes: <https://developers.google.com/identity/protocols/oauth2/service-account> ("Preparing
//! to make an authorized API call", HTTP/REST: the header, the claim set, the grant type) and
//! RFC 7523 §2.1 (the grant) and §3 (the claims).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The `grant_type` of a JWT bearer token request (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion is valid: `exp` = `iat` + this. Google refuses longer.
pub const LIFETIME_SECS: u64 = 3600;
/// A key file is about 2.4 KB; a file much larger than this is not one.
pub const MAX_KEY_FILE: usize = 64 * 1024;
const MAX_FIELD: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The file as a whole: too large, not JSON, not an object.
    #[error("service-account key file: {0}")]
    File(String),
    #[error("service-account key file: no {0:?} field")]
    Missing(&'static str),
    /// A field is there but unusable; `reason` never quotes the value.
    #[error("service-account key file: {field:?} {reason}")]
    Bad { field: &'static str, reason: String },
    #[error("cannot make the assertion: {0}")]
    Assertion(&'static str),
}

/// A Google service-account key, ready to sign assertions.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The account (`iss` of every assertion).
    pub client_email: String,
    /// Which of the account's keys this is: the header's `kid`.
    pub private_key_id: Option<String>,
    /// Where assertions are traded for access tokens (and their default `aud`).
    pub token_uri: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ServiceAccount {
    /// Reads a key file as the Cloud console downloads it (`"type": "service_account"`, with
    /// `client_email`, `private_key` (PKCS#8 PEM), `private_key_id` and `token_uri`).
    pub fn from_json(text: &str) -> Result<ServiceAccount, JwtError> {
        if text.len() > MAX_KEY_FILE {
            return Err(JwtError::File(format!(
                "larger than {MAX_KEY_FILE} bytes, not a key file"
            )));
        }
        // Into a Value first: serde's type errors quote the value they did not expect, syntax
        // errors only say where.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            JwtError::File(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let obj = value
            .as_object()
            .ok_or_else(|| JwtError::File("not a JSON object".into()))?;
        let bad = |field: &'static str, reason: &str| JwtError::Bad {
            field,
            reason: reason.to_string(),
        };
        let text_field = |field: &'static str| -> Result<Option<&str>, JwtError> {
            match obj.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.is_empty() => Err(bad(field, "is empty")),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(field, "is not a string")),
            }
        };
        let required = |field: &'static str| text_field(field)?.ok_or(JwtError::Missing(field));

        if required("type")? != "service_account" {
            return Err(bad(
                "type",
                "is not \"service_account\" (an OAuth client or user credentials file?)",
            ));
        }
        let client_email = required("client_email")?;
        if client_email.len() > MAX_FIELD
            || !client_email.contains('@')
            || client_email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("client_email", "is not an e-mail address"));
        }
        let token_uri = required("token_uri")?;
        if token_uri.len() > MAX_FIELD
            || !token_uri.starts_with("https://")
            || token_uri
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("token_uri", "is not an https URL"));
        }
        let private_key_id = text_field("private_key_id")?;
        if private_key_id.is_some_and(|k| k.len() > 256 || !k.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(bad("private_key_id", "is not a key id"));
        }
        let der = pkcs8_der(required("private_key")?).map_err(|r| bad("private_key", r))?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| JwtError::Bad {
            field: "private_key",
            reason: format!("is not an RSA PKCS#8 key ring accepts ({e})"),
        })?;
        Ok(ServiceAccount {
            client_email: client_email.to_string(),
            private_key_id: private_key_id.map(str::to_string),
            token_uri: token_uri.to_string(),
            key: Arc::new(key),
        })
    }

    /// A signed assertion for `scope` (space-separated scopes), issued at `now_unix` and valid
    /// for [`LIFETIME_SECS`]. `audience` is the token endpoint it is for; `""` means
    /// [`ServiceAccount::token_uri`], which is what Google expects.
    pub fn assertion(
        &self,
        scope: &str,
        audience: &str,
        now_unix: u64,
    ) -> Result<String, JwtError> {
        if scope.trim().is_empty() {
            return Err(JwtError::Assertion("no scope"));
        }
        let aud = if audience.is_empty() {
            self.token_uri.as_str()
        } else {
            audience
        };
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": aud,
            "iat": now_unix,
            "exp": now_unix.saturating_add(LIFETIME_SECS),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| JwtError::Assertion("ring could not sign"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The form body of the token request (RFC 7523 §2.1), to POST as
/// `application/x-www-form-urlencoded` to the key's `token_uri`.
pub fn token_request_body(assertion: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("assertion", assertion)
        .finish()
}

/// The DER inside a `-----BEGIN PRIVATE KEY-----` block. The reasons are fixed texts: nothing
/// of the key is ever quoted.
fn pkcs8_der(pem: &str) -> Result<Vec<u8>, &'static str> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let Some(start) = pem.find(BEGIN) else {
        return Err(if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            "is a PKCS#1 key (BEGIN RSA PRIVATE KEY), not PKCS#8: convert it with \
             `openssl pkcs8 -topk8 -nocrypt`"
        } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            "is an encrypted PKCS#8 key; only unencrypted keys are read"
        } else if pem.contains("-----BEGIN ") {
            "is a PEM block that is not a PKCS#8 private key"
        } else {
            "is not PEM (no -----BEGIN PRIVATE KEY----- line)"
        });
    };
    let body = &pem[start + BEGIN.len()..];
    let Some(end) = body.find(END) else {
        return Err("has no -----END PRIVATE KEY----- line");
    };
    // Some tools store the newlines escaped a second time: a literal backslash-n.
    let b64: String = body[..end]
        .replace("\\n", "")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| "is not base64 between its BEGIN and END lines")
}

#[cfg(test)]
mod tests;
