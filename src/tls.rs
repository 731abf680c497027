//! TLS client pieces shared by the SMTP sender, the IMAP watcher and HTTPS fetches: a rustls
//! configuration that trusts the web PKI plus an optional CA file (or, when a user explicitly
//! asks for it, nothing at all), the expiry date of a certificate, the negotiated TLS version
//! of a handshake we don't drive ourselves, and a short reason for a failed handshake.
//!
//! rustls is built with `ring` only (no aws-lc C build).

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bad = |reason: String| TlsSetupError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<_> = iter
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// A client configuration trusting the Mozilla roots plus `ca_file`; with `insecure`, any
/// certificate is accepted (the caller logs a warning).
pub fn client_config(
    ca_file: Option<&Path>,
    insecure: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            for cert in load_pem_certs(path)? {
                roots.add(cert).map_err(|e| TlsSetupError::CaFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The server name to verify: a DNS name, or an IP address (rustls checks IP SANs).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a valid TLS server name"))
}

pub fn version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0",
        _ => "other",
    }
}

/// Verifies nothing. Only used when a user sets `insecure_skip_verify = true`.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Finds a rustls error in an error's source chain and says in a few words what it was
/// ("certificate: unknown issuer"). `None` when the failure was not a TLS one.
pub fn tls_failure_reason(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(describe_rustls(r));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(describe_rustls(r));
        }
        cur = err.source();
    }
    None
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "certificate: unknown issuer".into(),
            C::Expired | C::ExpiredContext { .. } => "certificate: expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate: not valid yet".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate: not valid for the host name".into()
            }
            C::Revoked => "certificate: revoked".into(),
            C::BadSignature => "certificate: bad signature".into(),
            other => format!("certificate: {other:?}"),
        },
        rustls::Error::AlertReceived(a) => format!("alert from server: {a:?}"),
        rustls::Error::PeerIncompatible(p) => format!("incompatible server: {p:?}"),
        other => other.to_string(),
    }
}

/// The notAfter of an X.509 certificate as Unix seconds, read with a minimal DER walk
/// (Certificate → TBSCertificate → validity). `None` for anything it doesn't understand.
pub fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (cert, _) = der_seq(der)?;
    let (tbs, _) = der_seq(cert)?;
    let mut rest = tbs;
    // Optional [0] version.
    if rest.first() == Some(&0xa0) {
        rest = der_next(rest)?.1;
    }
    rest = der_next(rest)?.1; // serialNumber
    rest = der_next(rest)?.1; // signature algorithm
    rest = der_next(rest)?.1; // issuer
    let (validity, _) = der_seq(rest)?;
    let after = der_next(validity)?.1; // skip notBefore
    let (tag, value, _) = crate::der::tlv(after)?;
    parse_time(tag, value)
}

fn der_next(b: &[u8]) -> Option<(&[u8], &[u8])> {
    crate::der::tlv(b).map(|(_, v, r)| (v, r))
}

fn der_seq(b: &[u8]) -> Option<(&[u8], &[u8])> {
    match crate::der::tlv(b)? {
        (crate::der::SEQUENCE, v, r) => Some((v, r)),
        _ => None,
    }
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn parse_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    // Digits only: the slicing below is by byte, and "+1" would parse as a number.
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<u32>().ok();
    let (mo, d, h, mi, se) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(
        crate::clock::days_from_civil(year, mo, d) * 86_400
            + i64::from(h) * 3600
            + i64::from(mi) * 60
            + i64::from(se),
    )
}

/// Watches the raw bytes a server sends after STARTTLS and reads the negotiated version from
/// its ServerHello (the `supported_versions` extension for TLS 1.3, else the legacy version).
/// Used where a library drives the handshake and doesn't tell us the version.
#[derive(Debug, Default)]
pub struct ServerHelloSniffer {
    armed: bool,
    buf: Vec<u8>,
    version: Option<&'static str>,
}

impl ServerHelloSniffer {
    /// Start looking: the next chunk that begins a TLS handshake record is the ServerHello.
    pub fn arm(&mut self) {
        self.armed = true;
        self.buf.clear();
        self.version = None;
    }

    pub fn version(&self) -> Option<&'static str> {
        self.version
    }

    /// Feeds bytes read from the server.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.armed || self.version.is_some() {
            return;
        }
        if self.buf.is_empty() && data.first() != Some(&0x16) {
            // The plaintext "220 ready" reply to STARTTLS, not TLS yet.
            return;
        }
        let room = 16 * 1024 - self.buf.len();
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(v) = parse_server_hello(&self.buf) {
            self.version = Some(v);
            self.armed = false;
            self.buf = Vec::new();
        } else if self.buf.len() >= 16 * 1024 {
            self.armed = false;
            self.buf = Vec::new();
        }
    }
}

fn parse_server_hello(b: &[u8]) -> Option<&'static str> {
    // Record: type(1)=22, version(2), length(2); handshake: type(1)=2, length(3).
    if b.len() < 9 || b[0] != 0x16 || b[5] != 0x02 {
        return None;
    }
    let body = b.get(9..)?;
    let legacy = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut p = 2 + 32;
    let sid_len = *body.get(p)? as usize;
    p += 1 + sid_len + 2 + 1; // session id, cipher suite, compression
    let ext_len = u16::from_be_bytes([*body.get(p)?, *body.get(p + 1)?]) as usize;
    p += 2;
    let exts = body.get(p..p + ext_len)?;
    let mut q = 0;
    let mut version = legacy;
    while q + 4 <= exts.len() {
        let ty = u16::from_be_bytes([exts[q], exts[q + 1]]);
        let len = u16::from_be_bytes([exts[q + 2], exts[q + 3]]) as usize;
        if ty == 43 && len == 2 {
            version = u16::from_be_bytes([*exts.get(q + 4)?, *exts.get(q + 5)?]);
        }
        q += 4 + len;
    }
    Some(match version {
        0x0304 => "TLSv1.3",
        0x0303 => "TLSv1.2",
        0x0302 => "TLSv1.1",
        0x0301 => "TLSv1.0",
        _ => "other",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_time_parsing() {
        assert_eq!(parse_time(0x17, b"261129043559Z"), Some(1_795_926_959));
        assert_eq!(parse_time(0x18, b"20261129043559Z"), Some(1_795_926_959));
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x17, b"991231235959Z"), Some(946_684_799));
        assert_eq!(parse_time(0x17, b"261329043559Z"), None);
        assert_eq!(parse_time(0x17, b"2611"), None);
    }

    #[test]
    fn der_time_with_non_digits_is_refused_without_panicking() {
        // Found by the der_keys fuzz target: a multi-byte character where the year ends
        // panicked on the byte slice.
        assert_eq!(parse_time(0x17, "0Л9709+0225Z".as_bytes()), None);
        assert_eq!(parse_time(0x18, "202Л611290435Z".as_bytes()), None);
        // Signs are not digits, though `str::parse` takes them.
        assert_eq!(parse_time(0x17, b"26112904+559Z"), None);
        let crash = include_bytes!("../tests/fixtures/fuzz-regressions/der_keys-cert-time.der");
        assert_eq!(cert_not_after(crash), None);
    }

    #[test]
    fn der_walk_is_bounded_on_garbage() {
        assert_eq!(cert_not_after(&[]), None);
        assert_eq!(cert_not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(cert_not_after(&[0x30, 0x03, 0x30, 0x01]), None);
        let junk: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(cert_not_after(&junk), None);
    }

    #[test]
    fn server_hello_versions() {
        // A TLS 1.3 ServerHello: legacy 0x0303 with supported_versions = 0x0304.
        let mut hello = vec![0x03, 0x03];
        hello.extend([0u8; 32]);
        hello.push(0); // session id
        hello.extend([0x13, 0x01, 0x00]);
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        hello.extend((ext.len() as u16).to_be_bytes());
        hello.extend(ext);
        let mut rec = vec![0x16, 0x03, 0x03, 0, 0, 0x02, 0, 0, 0];
        rec.extend(&hello);
        let mut s = ServerHelloSniffer::default();
        s.feed(&rec);
        assert_eq!(s.version(), None, "not armed yet");
        s.arm();
        s.feed(b"220 2.0.0 Ready to start TLS\r\n");
        s.feed(&rec[..20]);
        assert_eq!(s.version(), None);
        s.feed(&rec[20..]);
        assert_eq!(s.version(), Some("TLSv1.3"));
        // TLS 1.2: no supported_versions extension.
        let mut hello12 = vec![0x03, 0x03];
        hello12.extend([0u8; 32]);
        hello12.extend([0, 0xc0, 0x2f, 0x00, 0x00, 0x00]);
        let mut rec12 = vec![0x16, 0x03, 0x03, 0, 0, 0x02, 0, 0, 0];
        rec12.extend(&hello12);
        assert_eq!(parse_server_hello(&rec12), Some("TLSv1.2"));
    }
}
