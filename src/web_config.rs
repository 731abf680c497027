//! `--web.config.file`: TLS and basic auth for the HTTP endpoints, in the format of the
//! Prometheus exporter-toolkit, so the same file works for node_exporter and this exporter.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default), RequestClientCert,
//!   client_ca_file: clients-ca.crt                 #    RequireAnyClientCert, VerifyClientCertIfGiven
//!   min_version: TLS12                             # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...                         # bcrypt hashes
//! ```
//!
//! The file is checked at start-up (a bad file stops the exporter with the reason) and looked
//! at again on every new connection: when it changed, it is read again; a change that doesn't
//! load is logged and the previous settings stay. Successful password checks are cached by a
//! SHA-256 of the credentials, as the toolkit does, so bcrypt's cost is paid once per client;
//! a cached client is answered at once, while unverified passwords (guesses among them) wait
//! for one of a few bcrypt slots and never hold up anyone else.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

use crate::config::relative_to;
use crate::metrics::http::AuthFailure;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    tls_server_config: Option<TlsSpec>,
    #[serde(default)]
    basic_auth_users: HashMap<String, String>,
    #[serde(default)]
    http_server_config: Option<HttpSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSpec {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert: Option<String>,
    key: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// Accepted for compatibility; rustls chooses its own safe suites.
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSpec {
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    http2: Option<bool>,
}

/// The settings in force.
pub struct WebSettings {
    pub tls: Option<Arc<ServerConfig>>,
    /// user → bcrypt hash
    pub users: HashMap<String, String>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("WebSettings")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct WebConfigError {
    pub file: String,
    pub message: String,
}

/// Reads and checks the file.
pub fn load(path: &Path) -> Result<WebSettings, WebConfigError> {
    let err = |message: String| WebConfigError {
        file: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let spec: FileSpec = if text.trim().is_empty() {
        FileSpec::default()
    } else {
        serde_norway::from_str(&text).map_err(|e| err(e.to_string()))?
    };
    for (user, hash) in &spec.basic_auth_users {
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(err(format!(
                "basic_auth_users.{user}: expected a bcrypt hash ($2y$...), e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
            )));
        }
    }
    let headers = spec
        .http_server_config
        .as_ref()
        .map(|h| {
            h.headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(h) = &spec.http_server_config
        && h.http2 == Some(true)
    {
        tracing::warn!("http_server_config.http2 is ignored: this exporter serves HTTP/1.1");
    }
    let tls = match spec.tls_server_config {
        None => None,
        Some(t) => Some(Arc::new(tls_config(path, &t).map_err(err)?)),
    };
    Ok(WebSettings {
        tls,
        users: spec.basic_auth_users,
        headers,
    })
}

/// `tls_server_config`; its files are relative to the web configuration file at `path`.
fn tls_config(path: &Path, t: &TlsSpec) -> Result<ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = match (&t.cert_file, &t.cert) {
        (Some(f), None) => {
            let f = relative_to(path, f);
            CertificateDer::pem_file_iter(&f)
                .and_then(|i| i.collect())
                .map_err(|e| format!("tls_server_config.cert_file {}: {e}", f.display()))?
        }
        (None, Some(pem)) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("tls_server_config.cert: {e}"))?,
        _ => return Err("tls_server_config: exactly one of cert_file and cert is required".into()),
    };
    if certs.is_empty() {
        return Err("tls_server_config.cert_file: no certificate in the file".into());
    }
    let key: PrivateKeyDer<'static> = match (&t.key_file, &t.key) {
        (Some(f), None) => {
            let f = relative_to(path, f);
            PrivateKeyDer::from_pem_file(&f)
                .map_err(|e| format!("tls_server_config.key_file {}: {e}", f.display()))?
        }
        (None, Some(pem)) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("tls_server_config.key: {e}"))?,
        _ => return Err("tls_server_config: exactly one of key_file and key is required".into()),
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = {
        let rank = |v: &str, field: &str| match v {
            "TLS10" | "TLS11" => Err(format!(
                "tls_server_config.{field}: {v} is not supported; use TLS12 or TLS13"
            )),
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            other => Err(format!(
                "tls_server_config.{field}: expected TLS12 or TLS13, got {other:?}"
            )),
        };
        let min = t
            .min_version
            .as_deref()
            .map(|v| rank(v, "min_version"))
            .transpose()?
            .unwrap_or(12);
        let max = t
            .max_version
            .as_deref()
            .map(|v| rank(v, "max_version"))
            .transpose()?
            .unwrap_or(13);
        if min > max {
            return Err("tls_server_config: min_version is above max_version".into());
        }
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(r, _)| (min..=max).contains(r))
            .map(|(_, v)| v)
            .collect()
    };
    if t.cipher_suites.is_some()
        || t.curve_preferences.is_some()
        || t.prefer_server_cipher_suites.is_some()
    {
        tracing::warn!(
            "tls_server_config: cipher_suites, curve_preferences and prefer_server_cipher_suites are ignored; rustls uses its own safe defaults"
        );
    }
    let builder = ServerConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let roots = || -> Result<Arc<RootCertStore>, String> {
        let f = t.client_ca_file.as_ref().ok_or_else(|| {
            format!("tls_server_config: client_auth_type {auth} needs client_ca_file")
        })?;
        let f = relative_to(path, f);
        let mut roots = RootCertStore::empty();
        for c in crate::tls::load_pem_certs(&f).map_err(|e| e.to_string())? {
            roots
                .add(c)
                .map_err(|e| format!("client_ca_file {}: {e}", f.display()))?;
        }
        Ok(Arc::new(roots))
    };
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "tls_server_config.client_auth_type {auth}: accepting client certificates without verifying them is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
        "VerifyClientCertIfGiven" => {
            let v = WebPkiClientVerifier::builder_with_provider(roots()?, crate::tls::provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(v)
        }
        "RequireAndVerifyClientCert" => {
            let v = WebPkiClientVerifier::builder_with_provider(roots()?, crate::tls::provider())
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(v)
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: unknown value {other:?}"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: certificate and key don't go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The web configuration file, re-read when it changes.
pub struct WebConfig {
    path: PathBuf,
    current: Mutex<(Option<Stamp>, Arc<WebSettings>)>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// bcrypt runs at once ([`WebConfig::verifiers`]).
    verify_slots: tokio::sync::Semaphore,
}

/// When and how big the file was when last read.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl WebConfig {
    /// Loads the file; an error here stops the exporter.
    pub fn open(path: &Path) -> Result<WebConfig, WebConfigError> {
        let settings = load(path)?;
        Ok(WebConfig {
            path: path.to_path_buf(),
            current: Mutex::new((stamp(path), Arc::new(settings))),
            verified: Mutex::new(HashSet::new()),
            verify_slots: tokio::sync::Semaphore::new(WebConfig::verifiers()),
        })
    }

    /// The settings for a new connection: re-read when the file changed.
    pub fn settings(&self) -> Arc<WebSettings> {
        let now = stamp(&self.path);
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != cur.0 {
            match load(&self.path) {
                Ok(s) => {
                    tracing::info!(file = %self.path.display(), "web configuration reloaded");
                    *cur = (now, Arc::new(s));
                    self.verified
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                }
                Err(e) => {
                    tracing::error!(error = %e, "web configuration changed but does not load; keeping the previous one");
                    cur.0 = now;
                }
            }
        }
        cur.1.clone()
    }

    /// Checks an `Authorization` header against `basic_auth_users`; `Ok` when no users are
    /// configured.
    ///
    /// Credentials verified before are answered from the cache at once, never behind a bcrypt
    /// run. Others are verified by bcrypt on the blocking pool, at most [`WebConfig::verifiers`]
    /// at a time: password guesses queue here, each holding only its own connection, while
    /// cached clients and every other request go on.
    pub async fn authorize(
        &self,
        settings: &WebSettings,
        header: Option<&str>,
    ) -> Result<(), AuthFailure> {
        if settings.users.is_empty() {
            return Ok(());
        }
        let header = header.ok_or(AuthFailure::Missing)?;
        let (user, pass) = parse_basic(header).ok_or(AuthFailure::Malformed)?;
        // An unknown user costs a bcrypt run all the same, so users can't be told apart by
        // timing.
        let (hash, known) = match settings.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (UNKNOWN_USER_HASH.to_string(), false),
        };
        let key = cache_key(&user, &hash, &pass);
        if known && self.is_verified(&key) {
            return Ok(());
        }
        let _slot = self
            .verify_slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // The same credentials may have been verified while this one waited.
        if known && self.is_verified(&key) {
            return Ok(());
        }
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if !(ok && known) {
            return Err(AuthFailure::Wrong);
        }
        let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= 1024 {
            v.clear();
        }
        v.insert(key);
        Ok(())
    }

    /// How many bcrypt verifications run at once: half the CPUs, 1 to 4.
    pub fn verifiers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .clamp(1, 4)
    }

    fn is_verified(&self, key: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }
}

/// A bcrypt hash of no password anyone knows, checked for unknown users.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DSmn8mG1kEmSXo1DDXkGi";

/// The cache key of verified credentials: a SHA-256 of user, hash and password, so the
/// password itself is never kept and a changed hash is verified again.
fn cache_key(user: &str, hash: &str, pass: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        user.as_bytes(),
        b"\0",
        hash.as_bytes(),
        b"\0",
        pass.as_bytes(),
    ] {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().unwrap_or([0; 32])
}

fn parse_basic(h: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let b64 = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?
        .trim();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(tag: &str, text: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dx-webcfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("web.yml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[tokio::test]
    async fn basic_auth_checks_bcrypt_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let p = write("auth", &format!("basic_auth_users:\n  prom: {hash}\n"));
        let w = WebConfig::open(&p).unwrap();
        let s = w.settings();
        use base64::Engine as _;
        let hdr = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(w.authorize(&s, Some(&hdr("prom", "s3cret"))).await, Ok(()));
        assert!(w.is_verified(&cache_key("prom", &s.users["prom"], "s3cret")));
        assert_eq!(
            w.authorize(&s, Some(&hdr("prom", "s3cret"))).await,
            Ok(()),
            "cached"
        );
        assert_eq!(
            w.authorize(&s, Some(&hdr("prom", "wrong"))).await,
            Err(AuthFailure::Wrong)
        );
        assert_eq!(
            w.authorize(&s, Some(&hdr("nobody", "s3cret"))).await,
            Err(AuthFailure::Wrong)
        );
        assert_eq!(w.authorize(&s, None).await, Err(AuthFailure::Missing));
        assert_eq!(
            w.authorize(&s, Some("Bearer x")).await,
            Err(AuthFailure::Malformed)
        );
    }

    #[tokio::test]
    async fn a_cached_client_does_not_wait_behind_guesses() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let p = write("guess", &format!("basic_auth_users:\n  prom: {hash}\n"));
        let w = std::sync::Arc::new(WebConfig::open(&p).unwrap());
        let s = w.settings();
        use base64::Engine as _;
        let hdr = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(w.authorize(&s, Some(&hdr("prom", "s3cret"))).await, Ok(()));
        // Every bcrypt slot busy (held here, as by long-running guesses).
        let busy = w
            .verify_slots
            .acquire_many(WebConfig::verifiers() as u32)
            .await
            .unwrap();
        let guess = {
            let (w, s, h) = (w.clone(), s.clone(), hdr("prom", "guess"));
            tokio::spawn(async move { w.authorize(&s, Some(&h)).await })
        };
        // The cached client is answered; a timeout here means it waited for a slot.
        let cached = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            w.authorize(&s, Some(&hdr("prom", "s3cret"))),
        )
        .await;
        assert_eq!(cached, Ok(Ok(())));
        assert!(!guess.is_finished(), "a guess waits for a bcrypt slot");
        drop(busy);
        assert_eq!(guess.await.unwrap(), Err(AuthFailure::Wrong));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let p = write("bad1", "basic_auth_users:\n  prom: plaintext\n");
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("basic_auth_users.prom: expected a bcrypt hash")
        );
        let p = write(
            "bad2",
            "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
        );
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("tls_server_config.cert_file /nonexistent.crt")
        );
        let p = write("bad3", "tls_server_confg: {}\n");
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("unknown field `tls_server_confg`")
        );
        let p = write("bad4", "");
        assert!(load(&p).unwrap().users.is_empty());
    }

    #[test]
    fn changes_are_picked_up_and_bad_changes_keep_the_old_settings() {
        let hash = bcrypt::hash("a", 4).unwrap();
        let p = write("reload", &format!("basic_auth_users:\n  one: {hash}\n"));
        let w = WebConfig::open(&p).unwrap();
        assert!(w.settings().users.contains_key("one"));
        std::fs::write(
            &p,
            format!("basic_auth_users:\n  two: {hash}\n  three: {hash}\n"),
        )
        .unwrap();
        assert!(w.settings().users.contains_key("two"));
        std::fs::write(&p, "basic_auth_users: [oops\n").unwrap();
        assert!(
            w.settings().users.contains_key("two"),
            "a broken file keeps the previous settings"
        );
    }
}
