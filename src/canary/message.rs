//! The canary message: From the provider's sender, To one seed, a Subject and a short neutral
//! body carrying a unique token, the `X-Deliverability-Canary` header that finds it again, and
//! headers that keep auto-responders quiet. Built with lettre's message builder like legitimate
//! mail, so that a probe never causes its own placement: `MIME-Version: 1.0`, `Date`, a
//! `Message-ID` in the sender's domain, `text/plain; charset=utf-8`, and a 7bit body when the
//! text allows it (rspamd's MISSING_MIME_VERSION alone scores +2.0).

use std::time::SystemTime;

use lettre::Message;
use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0,
};

pub use crate::canary::token::{TOKEN_HEADER, new_token};

/// What goes into one canary.
pub struct CanarySpec<'a> {
    pub token: &'a str,
    pub from: &'a str,
    pub from_domain: &'a str,
    pub to: &'a str,
    pub subject_template: &'a str,
    pub body_template: &'a str,
    pub provider: &'a str,
    pub seed: &'a str,
    pub instance: &'a str,
    /// Extra headers configured for the provider (e.g. to test spam placement).
    pub extra_headers: &'a [(String, String)],
    pub date: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("address {0:?} is not a valid mailbox")]
    Address(String),
    #[error("header {0:?}: not a valid header name")]
    HeaderName(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

fn fill(template: &str, s: &CanarySpec<'_>) -> String {
    template
        .replace("{token}", s.token)
        .replace("{provider}", s.provider)
        .replace("{seed}", s.seed)
        .replace("{instance}", s.instance)
}

/// The message as bytes ready for DATA (CRLF line ends).
pub fn build(s: &CanarySpec<'_>) -> Result<Vec<u8>, MessageError> {
    let from: Mailbox = s
        .from
        .parse()
        .map_err(|_| MessageError::Address(s.from.to_string()))?;
    let to: Mailbox =
        s.to.parse()
            .map_err(|_| MessageError::Address(s.to.to_string()))?;
    let mut b = Message::builder()
        .from(from)
        .to(to)
        .subject(fill(s.subject_template, s))
        .date(s.date)
        .message_id(Some(format!("<{}@{}>", s.token, s.from_domain)))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(TOKEN_HEADER),
            s.token.to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".into(),
        ));
    for (k, v) in s.extra_headers {
        let name = HeaderName::new_from_ascii(k.clone())
            .map_err(|_| MessageError::HeaderName(k.clone()))?;
        b = b.raw_header(HeaderValue::new(name, fill(v, s)));
    }
    // 7bit when every line is short ASCII (the usual body); else lettre picks an encoding.
    let body = Body::new_with_encoding(fill(s.body_template, s), ContentTransferEncoding::SevenBit)
        .unwrap_or_else(Body::new);
    let m = b
        .body(body)
        .map_err(|e| MessageError::Build(e.to_string()))?;
    Ok(m.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_carries_its_token_in_header_subject_body_and_message_id() {
        let extra = vec![("X-DX-Junk".to_string(), "yes".to_string())];
        let spec = CanarySpec {
            token: "dx-abcdefghijklmnopqrst",
            from: "canary@dx.test",
            from_domain: "dx.test",
            to: "seed1@seed.test",
            subject_template: "Delivery check {token}",
            body_template: "sent by {instance} via {provider} to {seed}\r\nToken: {token}\r\n",
            provider: "brevo",
            seed: "gmail-1",
            instance: "eu-1",
            extra_headers: &extra,
            date: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_926_959),
        };
        let m = String::from_utf8(build(&spec).unwrap()).unwrap();
        assert!(
            m.contains("X-Deliverability-Canary: dx-abcdefghijklmnopqrst\r\n"),
            "{m}"
        );
        assert!(
            m.contains("Subject: Delivery check dx-abcdefghijklmnopqrst\r\n"),
            "{m}"
        );
        assert!(
            m.contains("Message-ID: <dx-abcdefghijklmnopqrst@dx.test>\r\n"),
            "{m}"
        );
        assert!(m.contains("Auto-Submitted: auto-generated\r\n"), "{m}");
        assert!(m.contains("X-Auto-Response-Suppress: All\r\n"), "{m}");
        assert!(m.contains("X-DX-Junk: yes\r\n"), "{m}");
        assert!(m.contains("From: canary@dx.test\r\n"), "{m}");
        assert!(m.contains("To: seed1@seed.test\r\n"), "{m}");
        assert!(
            m.contains("Date: Sun, 29 Nov 2026 04:35:59 +0000\r\n"),
            "{m}"
        );
        assert!(m.contains("sent by eu-1 via brevo to gmail-1"), "{m}");
        // Built like legitimate mail (rspamd scores MISSING_MIME_VERSION +2.0, R_MISSING_CHARSET).
        assert!(m.contains("MIME-Version: 1.0\r\n"), "{m}");
        assert!(
            m.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{m}"
        );
        assert!(m.contains("Content-Transfer-Encoding: 7bit\r\n"), "{m}");
    }

    #[test]
    fn a_body_that_is_not_7bit_gets_an_encoding_that_fits() {
        let spec = CanarySpec {
            token: "t",
            from: "canary@dx.test",
            from_domain: "dx.test",
            to: "s@seed.test",
            subject_template: "{token}",
            body_template: "Zustellprüfung {token}\r\n",
            provider: "p",
            seed: "s",
            instance: "i",
            extra_headers: &[],
            date: SystemTime::UNIX_EPOCH,
        };
        let m = String::from_utf8(build(&spec).unwrap()).unwrap();
        assert!(!m.contains("Content-Transfer-Encoding: 7bit"), "{m}");
        assert!(m.contains("Content-Transfer-Encoding: "), "{m}");
    }

    #[test]
    fn bad_addresses_are_errors() {
        let spec = CanarySpec {
            token: "t",
            from: "not an address",
            from_domain: "x",
            to: "s@seed.test",
            subject_template: "{token}",
            body_template: "",
            provider: "p",
            seed: "s",
            instance: "i",
            extra_headers: &[],
            date: SystemTime::UNIX_EPOCH,
        };
        assert!(matches!(build(&spec), Err(MessageError::Address(_))));
    }
}
