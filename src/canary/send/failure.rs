//! What a failed send is: the SMTP [`Stage`] it failed at and its [`FailureClass`] (the
//! `stage` and `class` labels), the reply code and RFC 3463 enhanced status code when the
//! server replied, and one clean line of text. Turns lettre's errors into a [`SendFailure`]
//! (4xx transient, 5xx permanent, TLS, timeout, network, protocol); the session in
//! [`session`](super::session) decides when a failure is `uncertain`.

use std::fmt;

use crate::tls;

crate::label_enum! {
    /// SMTP stages, in order; the `stage` label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Stage {
        Connect = "connect",
        /// The TLS handshake of an implicit-TLS connection.
        Tls = "tls",
        /// Banner and EHLO.
        Ehlo = "ehlo",
        /// STARTTLS, its handshake and the second EHLO.
        Starttls = "starttls",
        Auth = "auth",
        MailFrom = "mail_from",
        RcptTo = "rcpt_to",
        Data = "data",
        /// The message and its terminator, up to the final reply.
        Body = "body",
    }
}

crate::label_enum! {
    /// The `class` label of a failure.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FailureClass {
        /// A 4xx reply: try again later (421, 450, 451, 452).
        Transient = "transient",
        /// A 5xx reply: this will not work without a change (535, 550, 552, 553, 554).
        Permanent = "permanent",
        /// The connection could not be made or broke.
        Network = "network",
        /// The TLS handshake failed, including an untrusted certificate.
        Tls = "tls",
        /// A stage took longer than `canary.smtp_timeout`.
        Timeout = "timeout",
        /// Timed out, or the connection broke, after the message terminator was sent and before
        /// the final reply: it may still arrive, so it is still watched for.
        Uncertain = "uncertain",
        /// The server said something we could not use (no STARTTLS, no common AUTH mechanism,
        /// a malformed reply).
        Protocol = "protocol",
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
pub(super) fn clean(s: &str) -> String {
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
pub(super) fn classify(stage: Stage, e: &lettre::transport::smtp::Error) -> SendFailure {
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

pub(super) fn fail(stage: Stage, class: FailureClass, message: impl Into<String>) -> SendFailure {
    SendFailure {
        stage,
        class,
        code: None,
        enhanced: None,
        message: clean(&message.into()),
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
