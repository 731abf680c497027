//! `kind = "https"` report sources: an HTTPS endpoint that accepts TLS-RPT reports POSTed by
//! the reporting MTAs (RFC 8460 §3), resolved completely at load (the listen address parsed,
//! the certificate and key read), so that a reload with a bad certificate is refused and the
//! old configuration keeps running.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::Problems;
use super::schema::{ReportSourceSpec, SourceKind};
use super::values::relative_to;

/// The default cap on a POSTed body (compressed or not); reports are a few KiB.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;

/// An endpoint receiving TLS-RPT reports over HTTP(S) (`kind = "https"`).
#[derive(Debug, Clone)]
pub struct ReportEndpoint {
    pub name: String,
    /// `host:port`, or `:port` for every interface.
    pub listen_address: String,
    /// The one path reports are POSTed to; anything else is 404.
    pub url_path: String,
    /// Without it the endpoint speaks plain HTTP (behind a TLS-terminating proxy).
    pub tls: Option<Arc<ServerConfig>>,
    /// Cap on the request body as sent (gzip or JSON).
    pub max_body_bytes: u64,
}

/// Reports fields of the other kinds set on an `https` source, and the https fields on others.
pub(super) fn misplaced(problems: &mut Problems, i: usize, s: &ReportSourceSpec) {
    let at = |f: &str| format!("reports.sources[{i}].{f}");
    let https_fields = [
        ("listen_address", s.listen_address.is_some()),
        ("url_path", s.url_path.is_some()),
        ("tls_cert_file", s.tls_cert_file.is_some()),
        ("tls_key_file", s.tls_key_file.is_some()),
        ("max_body_bytes", s.max_body_bytes.is_some()),
    ];
    let other_fields = [
        ("path", s.path.is_some()),
        ("host", s.host.is_some()),
        ("port", s.port.is_some()),
        ("tls", s.tls.is_some()),
        ("username", s.username.is_some()),
        ("password", s.password.is_some()),
        ("ca_file", s.ca_file.is_some()),
        ("processed_folder", s.processed_folder.is_some()),
        ("error_folder", s.error_folder.is_some()),
    ];
    if s.kind == SourceKind::Https {
        for (f, set) in other_fields {
            if set {
                problems.add(at(f), "is not used with kind = \"https\"");
            }
        }
    } else {
        for (f, set) in https_fields {
            if set {
                problems.add(at(f), "is only used with kind = \"https\"");
            }
        }
    }
}

/// The endpoint of a `kind = "https"` source; `None` when a field it needs is wrong.
pub(super) fn resolve(
    problems: &mut Problems,
    file: &Path,
    i: usize,
    s: ReportSourceSpec,
) -> Option<ReportEndpoint> {
    let at = |f: &str| format!("reports.sources[{i}].{f}");
    let listen_address = match s.listen_address.as_deref() {
        None => {
            problems.add(
                at("listen_address"),
                "kind = \"https\" needs the address to listen on, e.g. \":8443\" or \"127.0.0.1:8443\"",
            );
            None
        }
        Some(a) => {
            let full = match a.strip_prefix(':') {
                Some(port) => format!("0.0.0.0:{port}"),
                None => a.to_string(),
            };
            match full.parse::<SocketAddr>() {
                Ok(_) => Some(a.to_string()),
                Err(_) => {
                    problems.add(
                        at("listen_address"),
                        format!("{a:?} is not host:port with an IP address (or :port)"),
                    );
                    None
                }
            }
        }
    };
    let url_path = s.url_path.unwrap_or_else(|| "/".into());
    if !url_path.starts_with('/') || url_path.contains(['?', '#', ' ']) {
        problems.add(at("url_path"), "must be a path starting with / (no query)");
    }
    let max_body_bytes = s.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_body_bytes == 0 {
        problems.add(at("max_body_bytes"), "must be above 0");
    }
    let tls = match (&s.tls_cert_file, &s.tls_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => match server_config(&relative_to(file, c), &relative_to(file, k)) {
            Ok(t) => Some(Arc::new(t)),
            Err((field, e)) => {
                problems.add(at(field), e);
                None
            }
        },
        (Some(_), None) => {
            problems.add(
                at("tls_key_file"),
                "tls_cert_file needs its key in tls_key_file",
            );
            None
        }
        (None, Some(_)) => {
            problems.add(
                at("tls_cert_file"),
                "tls_key_file needs its certificate in tls_cert_file",
            );
            None
        }
    };
    Some(ReportEndpoint {
        name: s.name.0,
        listen_address: listen_address?,
        url_path,
        tls,
        max_body_bytes,
    })
}

/// The TLS server configuration of `cert` and `key` (PEM); on failure the field to blame.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, (&'static str, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect())
        .map_err(|e| ("tls_cert_file", format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err((
            "tls_cert_file",
            format!("{}: no certificate in the file", cert.display()),
        ));
    }
    // The key's error names the file only: the PEM parser's message could quote key bytes.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        (
            "tls_key_file",
            format!("{}: no readable PEM private key", key.display()),
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls_cert_file", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            (
                "tls_key_file",
                format!("the key does not suit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ReportSource};
    use std::path::Path;

    fn load(source: &str) -> Result<Config, String> {
        let text = format!("[[reports.sources]]\nname = \"tlsrpt\"\nkind = \"https\"\n{source}");
        Config::from_str(Path::new("/etc/dx/dx.toml"), &text).map_err(|e| e.to_string())
    }

    #[test]
    fn an_https_source_is_resolved_with_its_defaults() {
        let c = load("listen_address = \":8443\"\n").unwrap();
        let ReportSource::Https(e) = &c.reports.sources[0] else {
            panic!("{:?}", c.reports.sources[0]);
        };
        assert_eq!(
            (
                e.listen_address.as_str(),
                e.url_path.as_str(),
                e.tls.is_none()
            ),
            (":8443", "/", true)
        );
        assert_eq!(e.max_body_bytes, super::DEFAULT_MAX_BODY);
        let c = load(
            "listen_address = \"127.0.0.1:8443\"\nurl_path = \"/tlsrpt\"\nmax_body_bytes = 1000\n",
        )
        .unwrap();
        let ReportSource::Https(e) = &c.reports.sources[0] else {
            panic!()
        };
        assert_eq!((e.url_path.as_str(), e.max_body_bytes), ("/tlsrpt", 1000));
    }

    #[test]
    fn wrong_https_fields_name_the_field_and_what_is_wrong() {
        for (source, expected) in [
            (
                "",
                "reports.sources[0].listen_address: kind = \"https\" needs",
            ),
            (
                "listen_address = \"example.com:80\"\n",
                "is not host:port with an IP address",
            ),
            (
                "listen_address = \":1\"\nurl_path = \"tlsrpt\"\n",
                "url_path: must be a path starting with /",
            ),
            (
                "listen_address = \":1\"\nmax_body_bytes = 0\n",
                "max_body_bytes: must be above 0",
            ),
            (
                "listen_address = \":1\"\ntls_cert_file = \"c.pem\"\n",
                "tls_key_file: tls_cert_file needs its key",
            ),
            (
                "listen_address = \":1\"\ntls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"k.pem\"\n",
                "tls_cert_file: /nonexistent/c.pem",
            ),
            (
                "listen_address = \":1\"\nhost = \"imap.example.com\"\n",
                "host: is not used with kind = \"https\"",
            ),
        ] {
            let e = load(source).unwrap_err();
            assert!(e.contains(expected), "{source:?}: {e}");
        }
        let text = "[[reports.sources]]\nname = \"d\"\nkind = \"imap\"\nhost = \"imap.example.com\"\nusername = \"u\"\npassword = \"p\"\nurl_path = \"/x\"\n";
        let e = Config::from_str(Path::new("/etc/dx/dx.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reports.sources[0].url_path: is only used with kind = \"https\""),
            "{e}"
        );
    }
}
