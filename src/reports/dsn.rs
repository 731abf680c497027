//! Delivery status notifications (RFC 3464): the bounce a mail server sends back to the
//! envelope sender when it could not deliver. Read from the same sources as the reports; a
//! message is a DSN when it is `multipart/report; report-type=delivery-status`.
//!
//! What is kept is what ties a bounce to the canary that caused it and why it failed, never
//! the message itself: the reporting MTA, the original envelope id (`ENVID`, RFC 3461), the
//! candidate canary tokens (the envelope id, the `+detail` of the address the DSN was sent to
//! when the provider sends with a VERP return path, the `X-Deliverability-Canary` header of the
//! returned headers), and per recipient the action, the RFC 3463 status and a short diagnostic
//! from which [`classify`] derives a reason from a small closed set. The recipient addresses
//! are not kept.

use mailparse::ParsedMail;

/// Recipients kept of one DSN (a canary has one).
pub const MAX_RECIPIENTS: usize = 16;
/// Characters kept of a diagnostic.
pub const MAX_DIAGNOSTIC: usize = 300;
/// Candidate tokens kept.
const MAX_TOKENS: usize = 8;
/// The header the canary carries its token in (as `crate::canary::token::TOKEN_HEADER`).
const TOKEN_HEADER: &str = "X-Deliverability-Canary";

pub use crate::observed::{BounceClass, BounceReason};

/// One recipient of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded` (lower-cased).
    pub action: String,
    /// The RFC 3463 status, `5.7.1`.
    pub status: String,
    /// The remote server's reply (`Diagnostic-Code`, type prefix removed), cut short.
    pub diagnostic: String,
    pub class: BounceClass,
    pub reason: BounceReason,
}

/// One DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// `Reporting-MTA` without its type (`dns;`), lower-cased; `unknown` when absent.
    pub reporting_mta: String,
    /// `Original-Envelope-Id`.
    pub envid: Option<String>,
    /// `Arrival-Date`, Unix seconds.
    pub arrival: Option<i64>,
    /// The DSN's own `Message-ID`: with the reporting MTA, what makes it unique.
    pub message_id: Option<String>,
    /// Strings that may be the token of the canary that bounced, most reliable first.
    pub tokens: Vec<String>,
    pub recipients: Vec<DsnRecipient>,
}

impl Dsn {
    /// The recipients that failed for good or for now (`failed`), not the delay warnings.
    pub fn failed(&self) -> impl Iterator<Item = &DsnRecipient> {
        self.recipients.iter().filter(|r| r.action == "failed")
    }
}

/// Whether `mail` is a DSN: `multipart/report` with `report-type=delivery-status`.
pub fn is_dsn(mail: &ParsedMail<'_>) -> bool {
    mail.ctype.mimetype.eq_ignore_ascii_case("multipart/report")
        && mail
            .ctype
            .params
            .get("report-type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("delivery-status"))
}

fn cut(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

/// Strips the `type;` of a typed field (`dns; mx.example`, `smtp; 550 ...`).
fn untyped(v: &str) -> &str {
    v.split_once(';').map_or(v, |(_, rest)| rest).trim()
}

/// The `+detail` of the address in a header value (`reports+dx-abc@seed.test`).
fn detail(value: &str) -> Option<String> {
    let addr = value
        .rsplit('<')
        .next()
        .unwrap_or(value)
        .trim_end_matches(['>', ' ']);
    let local = addr.split('@').next()?;
    let (_, d) = local.split_once('+')?;
    let d = d.trim();
    (!d.is_empty() && d.len() <= 64).then(|| d.to_string())
}

/// Reads a DSN. `None` when `mail` is not one or has no `message/delivery-status` part.
pub fn parse(mail: &ParsedMail<'_>) -> Option<Dsn> {
    if !is_dsn(mail) {
        return None;
    }
    let status_part = mail.subparts.iter().find(|p| {
        p.ctype
            .mimetype
            .eq_ignore_ascii_case("message/delivery-status")
            || p.ctype
                .mimetype
                .eq_ignore_ascii_case("message/global-delivery-status")
    })?;
    let body = status_part.get_body_raw().ok()?;
    let body = &body[..body.len().min(64 * 1024)];
    // Per-message fields, then one group per recipient, separated by blank lines.
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut groups = text
        .split("\n\n")
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            mailparse::parse_headers(g.as_bytes())
                .map(|(h, _)| h)
                .unwrap_or_default()
        });
    let message_fields = groups.next()?;
    let field = |h: &[mailparse::MailHeader<'_>], name: &str| {
        h.iter()
            .find(|f| f.get_key_ref().eq_ignore_ascii_case(name))
            .map(|f| f.get_value())
    };
    let reporting_mta = field(&message_fields, "Reporting-MTA")
        .map(|v| cut(untyped(&v), 253).to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let envid = field(&message_fields, "Original-Envelope-Id")
        .map(|v| cut(v.trim(), 100))
        .filter(|v| !v.is_empty());
    let arrival =
        field(&message_fields, "Arrival-Date").and_then(|v| mailparse::dateparse(v.trim()).ok());
    let mut recipients = Vec::new();
    for g in groups.take(MAX_RECIPIENTS) {
        let Some(status) = field(&g, "Status") else {
            continue;
        };
        let status = cut(status.split_whitespace().next().unwrap_or(""), 16);
        let action = field(&g, "Action")
            .map(|a| cut(a.trim(), 16).to_ascii_lowercase())
            .unwrap_or_default();
        let diagnostic = field(&g, "Diagnostic-Code")
            .map(|d| cut(untyped(&d), MAX_DIAGNOSTIC))
            .unwrap_or_default();
        let (class, reason) = classify(&status, &diagnostic);
        recipients.push(DsnRecipient {
            action,
            status,
            diagnostic,
            class,
            reason,
        });
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut add = |t: Option<String>| {
        if let Some(t) = t
            && tokens.len() < MAX_TOKENS
            && !tokens.contains(&t)
        {
            tokens.push(t);
        }
    };
    add(envid.clone());
    for name in ["Delivered-To", "X-Original-To", "To"] {
        for h in mail
            .headers
            .iter()
            .filter(|h| h.get_key_ref().eq_ignore_ascii_case(name))
        {
            add(detail(&h.get_value()));
        }
    }
    // The returned message or its headers.
    for p in &mail.subparts {
        let t = p.ctype.mimetype.to_ascii_lowercase();
        if matches!(
            t.as_str(),
            "message/rfc822" | "text/rfc822-headers" | "message/global" | "message/global-headers"
        ) && let Ok(raw) = p.get_body_raw()
        {
            let raw = &raw[..raw.len().min(256 * 1024)];
            if let Ok((headers, _)) = mailparse::parse_headers(raw) {
                for h in headers
                    .iter()
                    .filter(|h| h.get_key_ref().eq_ignore_ascii_case(TOKEN_HEADER))
                {
                    add(Some(cut(h.get_value().trim(), 64)));
                }
            }
        }
    }
    Some(Dsn {
        reporting_mta,
        envid,
        arrival,
        message_id: mail
            .headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case("Message-ID"))
            .map(|h| cut(h.get_value().trim(), 200)),
        tokens,
        recipients,
    })
}

/// The class and reason of a status (`5.7.1`) and diagnostic (`550 5.7.1 ... blocked using
/// zen.spamhaus.org`). The diagnostic's words win over the code where they name a cause
/// (receivers use 5.7.1 for nearly everything).
pub fn classify(status: &str, diagnostic: &str) -> (BounceClass, BounceReason) {
    let class = if status.starts_with('4') {
        BounceClass::Transient
    } else {
        BounceClass::Permanent
    };
    let d = diagnostic.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    let code = |c: &str| status == c || d.contains(c);
    let reason = if has(&[
        "blocklist",
        "blacklist",
        "block list",
        "blocked using",
        "listed at",
        "listed on",
        "listed in",
        "spamhaus",
        "spamcop",
        "barracuda",
        "dnsbl",
        " rbl",
    ]) {
        BounceReason::Blocklist
    } else if code("5.7.26")
        || code("5.7.27")
        || code("5.7.25")
        || code("5.7.30")
        || has(&["unauthenticated", "spf", "dkim", "dmarc", "authentication"])
    {
        BounceReason::Authentication
    } else if code("4.7.28")
        || code("5.7.28")
        || code("4.7.0 ") && has(&["rate"])
        || has(&[
            "rate limit",
            "ratelimit",
            "too many",
            "throttl",
            "unusual rate",
            "slow down",
        ])
    {
        BounceReason::RateLimit
    } else if has(&["reputation", "poor sender", "low sender"]) {
        BounceReason::Reputation
    } else if status.ends_with(".2.2")
        || has(&[
            "quota",
            "mailbox full",
            "mailbox is full",
            "insufficient storage",
        ])
    {
        BounceReason::MailboxFull
    } else if status == "5.1.1"
        || status == "5.1.10"
        || has(&[
            "user unknown",
            "unknown user",
            "no such user",
            "does not exist",
            "mailbox unavailable",
            "no such mailbox",
        ])
    {
        BounceReason::UnknownUser
    } else if status.starts_with("5.7.") || status.starts_with("4.7.") {
        BounceReason::Policy
    } else {
        BounceReason::Other
    };
    (class, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX: &str = "From: MAILER-DAEMON@mx.seed.test (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: reports+dx-abcdefghijklmnopqrst@seed.test\r\n\
Message-Id: <20261205093000.4dKq1h0m2Rz3wTn@mx.seed.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.seed.test\r\nX-Postfix-Queue-ID: 4dKq1h0m2Rz3wTn\r\n\
Original-Envelope-Id: dx-abcdefghijklmnopqrst\r\n\
Arrival-Date: Sat,  5 Dec 2026 09:29:59 +0000 (UTC)\r\n\r\n\
Final-Recipient: rfc822; relay550@seed.test\r\nOriginal-Recipient: rfc822;relay550@seed.test\r\n\
Action: failed\r\nStatus: 5.7.1\r\nRemote-MTA: dns; 127.0.0.1\r\n\
Diagnostic-Code: smtp; 550 5.7.1 <relay550@seed.test>: Recipient address rejected: Message\r\n refused by local policy\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: canary@dx.test\r\nX-Deliverability-Canary: dx-zzzzzzzzzzzzzzzzzzzz\r\n\r\n\
--B--\r\n";

    #[test]
    fn a_postfix_bounce() {
        let file = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/dsn/postfix-relay550.eml"),
        )
        .unwrap();
        assert_eq!(file, POSTFIX.as_bytes(), "the fixture file is this text");
        let mail = mailparse::parse_mail(POSTFIX.as_bytes()).unwrap();
        let d = parse(&mail).expect("a DSN");
        assert_eq!(d.reporting_mta, "mx.seed.test");
        assert_eq!(d.envid.as_deref(), Some("dx-abcdefghijklmnopqrst"));
        assert_eq!(d.arrival, Some(1_796_462_999));
        assert_eq!(
            d.tokens,
            ["dx-abcdefghijklmnopqrst", "dx-zzzzzzzzzzzzzzzzzzzz"],
            "ENVID and VERP agree; the returned header comes after"
        );
        assert_eq!(d.recipients.len(), 1);
        let r = &d.recipients[0];
        assert_eq!((r.action.as_str(), r.status.as_str()), ("failed", "5.7.1"));
        assert!(r.diagnostic.starts_with("550 5.7.1 <relay550@seed.test>"));
        assert!(
            r.diagnostic.ends_with("refused by local policy"),
            "unfolded: {:?}",
            r.diagnostic
        );
        assert_eq!(
            (r.class, r.reason),
            (BounceClass::Permanent, BounceReason::Policy)
        );
        assert_eq!(d.failed().count(), 1);
    }

    #[test]
    fn not_a_dsn() {
        let m = mailparse::parse_mail(b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x--\r\n").unwrap();
        assert!(parse(&m).is_none());
        let m = mailparse::parse_mail(b"Subject: hi\r\n\r\nbody").unwrap();
        assert!(parse(&m).is_none());
        // A DSN without its status part.
        let m = mailparse::parse_mail(b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nx\r\n--x--\r\n").unwrap();
        assert!(parse(&m).is_none());
    }

    #[test]
    fn reasons_from_codes_and_words() {
        use BounceClass::*;
        use BounceReason::*;
        for (status, diag, want) in [
            (
                "5.7.1",
                "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org",
                (Permanent, Blocklist),
            ),
            (
                "5.7.26",
                "550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
                (Permanent, Authentication),
            ),
            (
                "5.7.1",
                "550 5.7.1 Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
                (Permanent, Authentication),
            ),
            (
                "4.7.28",
                "421-4.7.28 Our system has detected an unusual rate of unsolicited mail",
                (Transient, RateLimit),
            ),
            (
                "4.7.0",
                "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
                (Transient, Policy),
            ),
            (
                "5.7.1",
                "550 5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain",
                (Permanent, Reputation),
            ),
            (
                "5.2.2",
                "552 5.2.2 The email account that you tried to reach is over quota",
                (Permanent, MailboxFull),
            ),
            (
                "5.1.1",
                "550 5.1.1 The email account that you tried to reach does not exist",
                (Permanent, UnknownUser),
            ),
            (
                "5.7.1",
                "550 5.7.1 Message refused by local policy",
                (Permanent, Policy),
            ),
            ("5.4.4", "Host or domain name not found", (Permanent, Other)),
            (
                "4.4.1",
                "connect to mx.example[192.0.2.1]:25: Connection timed out",
                (Transient, Other),
            ),
        ] {
            assert_eq!(classify(status, diag), want, "{status} {diag}");
        }
    }

    #[test]
    fn hostile_dsns_are_bounded() {
        let many = format!(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\nTo: a+{}@b\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {}\r\n\r\n{}--x--\r\n",
            "t".repeat(100),
            "m".repeat(10_000),
            "Action: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; 550 x\r\n\r\n".repeat(1000)
        );
        let m = mailparse::parse_mail(many.as_bytes()).unwrap();
        let d = parse(&m).unwrap();
        assert_eq!(d.recipients.len(), MAX_RECIPIENTS);
        assert!(d.reporting_mta.len() <= 253);
        assert!(
            d.tokens.is_empty(),
            "a 100-character detail is not a token: {:?}",
            d.tokens
        );
    }
}
