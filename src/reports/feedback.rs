//! Complaints and DMARC failure reports, counted without keeping personal data: the Abuse
//! Reporting Format (RFC 5965) that feedback loops send (Yahoo's CFL, Microsoft's JMRP, AOL's)
//! and the DMARC failure reports (RFC 6591, `Feedback-Type: auth-failure`) receivers send to a
//! domain's `ruf=` address. A message is one when it is `multipart/report;
//! report-type=feedback-report`.
//!
//! The machine-readable part, `message/feedback-report`, is an RFC 5322 header block (RFC
//! 5965 §3.1), read with mailparse like the rest of the message. (Stalwart's `mail-auth` has an
//! ARF parser, but compiles only with a DNS backend and a DKIM crypto backend: rsa and
//! ed25519-dalek or ring, plus hickory's TLS and DNSSEC features, about a minute more per build
//! on CI's two cores; the tests' fixtures are written by it, see tests/fixtures/feedback/.)
//!
//! Kept of a report: its feedback type, the reporter (the organizational domain of the
//! report's `From:`, else of its reporting MTA), the reported domain, for failure reports the
//! failed mechanism and the source class of the sending IP (a `[[reports.source_map]]` name,
//! a provider seen sending from it, or `unknown`: never the address), the number of incidents,
//! and what makes it unique for the ledger (its `Message-ID`). Never a recipient, a subject, or
//! the returned message: those parts are not read.

use std::net::IpAddr;

crate::label_enum! {
    /// `Feedback-Type` (RFC 5965 §7.3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FeedbackKind {
        Abuse = "abuse",
        AuthFailure = "auth-failure",
        Fraud = "fraud",
        NotSpam = "not-spam",
        Virus = "virus",
        Other = "other",
    }
}

crate::label_enum! {
    /// `Auth-Failure` of a failure report (RFC 6591 §3.2.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AuthFailure {
        Dmarc = "dmarc",
        Spf = "spf",
        Signature = "dkim_signature",
        BodyHash = "dkim_bodyhash",
        Revoked = "dkim_revoked",
        Adsp = "adsp",
        Unspecified = "unspecified",
    }
}

/// One feedback report, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackReport {
    pub kind: FeedbackKind,
    /// Organizational domain of the reporter, or `unknown`.
    pub reporter: String,
    /// The reported domain (`Reported-Domain`, else the domain of `Original-Mail-From`, else
    /// the DKIM domain), lower-cased; empty when none.
    pub domain: String,
    /// For `auth-failure`: which mechanism failed.
    pub auth_failure: AuthFailure,
    /// Index into the source names (0 = `unknown`), from `Source-IP`.
    pub source: u16,
    /// `Incidents` (at least 1).
    pub incidents: u32,
    /// What makes the report unique: its `Message-ID`, else its arrival date and envelope id.
    pub id: String,
}

/// Whether `mail` is an ARF report: `multipart/report; report-type=feedback-report`, or (as
/// NetEase sends its failure reports) any multipart message with a `message/feedback-report`
/// part of its own.
pub fn is_feedback(mail: &mailparse::ParsedMail<'_>) -> bool {
    let report = mail.ctype.mimetype.eq_ignore_ascii_case("multipart/report")
        && mail
            .ctype
            .params
            .get("report-type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("feedback-report"));
    report
        || mail.ctype.mimetype.starts_with("multipart/")
            && mail.subparts.iter().any(|p| {
                p.ctype
                    .mimetype
                    .eq_ignore_ascii_case("message/feedback-report")
            })
}

fn domain_of(address: &str) -> Option<String> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let d = a.rsplit_once('@').map_or(a, |(_, d)| d);
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty() && d.len() <= 253 && !d.contains(char::is_whitespace)).then_some(d)
}

/// How a report's reporter and source are named (the reports' `names`, handed in so this
/// module stays below them).
pub struct Naming<'a> {
    /// The reporter label of a contact address and a host name
    /// (`super::names::reporter_label`).
    pub reporter: &'a dyn Fn(&str, &str) -> String,
    /// The source index of an IP (`super::names::SourceNames::lookup`).
    pub source: &'a dyn Fn(Option<IpAddr>) -> u16,
}

/// Reads one ARF message. `None` when it has no `message/feedback-report` part.
pub fn parse(mail: &mailparse::ParsedMail<'_>, naming: &Naming<'_>) -> Option<FeedbackReport> {
    let part = mail.subparts.iter().find(|p| {
        p.ctype
            .mimetype
            .eq_ignore_ascii_case("message/feedback-report")
    })?;
    let body = part.get_body_raw().ok()?;
    let body = &body[..body.len().min(64 * 1024)];
    let (fields, _) = mailparse::parse_headers(body).ok()?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f.get_key_ref().eq_ignore_ascii_case(name))
            .map(|f| f.get_value().trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    };
    let from_addr = header("From")
        .and_then(|v| crate::domains::first_address(&v))
        .unwrap_or_default();
    let reporting_mta = field("Reporting-MTA").unwrap_or_default();
    let reporting_mta = reporting_mta
        .split_once(';')
        .map_or(reporting_mta.as_str(), |(_, h)| h)
        .trim()
        .to_string();
    let reporter = (naming.reporter)(&from_addr, &reporting_mta);
    let kind = match field("Feedback-Type")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "abuse" => FeedbackKind::Abuse,
        "auth-failure" => FeedbackKind::AuthFailure,
        "fraud" => FeedbackKind::Fraud,
        "not-spam" => FeedbackKind::NotSpam,
        "virus" => FeedbackKind::Virus,
        _ => FeedbackKind::Other,
    };
    let auth_failure = match field("Auth-Failure")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "dmarc" => AuthFailure::Dmarc,
        "spf" => AuthFailure::Spf,
        "signature" => AuthFailure::Signature,
        "bodyhash" => AuthFailure::BodyHash,
        "revoked" => AuthFailure::Revoked,
        "adsp" => AuthFailure::Adsp,
        _ => AuthFailure::Unspecified,
    };
    let domain = field("Reported-Domain")
        .and_then(|d| domain_of(&d))
        .or_else(|| field("Original-Mail-From").and_then(|a| domain_of(&a)))
        .or_else(|| field("DKIM-Domain").and_then(|d| domain_of(&d)))
        .unwrap_or_default();
    let source_ip: Option<IpAddr> = field("Source-IP").and_then(|ip| ip.parse().ok());
    let incidents = field("Incidents")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let id = header("Message-ID")
        .map(|m| {
            m.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}|{}|{}",
                field("Arrival-Date")
                    .unwrap_or_default()
                    .chars()
                    .take(64)
                    .collect::<String>(),
                field("Original-Envelope-Id")
                    .unwrap_or_default()
                    .chars()
                    .take(100)
                    .collect::<String>(),
                incidents
            )
        });
    Some(FeedbackReport {
        kind,
        reporter,
        domain,
        auth_failure,
        source: (naming.source)(source_ip),
        incidents,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Name, SourceMapEntry};
    use crate::reports::names::{SourceNames, reporter_label};

    fn with_naming<T>(sources: &SourceNames, f: impl FnOnce(&Naming<'_>) -> T) -> T {
        let lookup = |ip: Option<IpAddr>| sources.lookup(ip);
        f(&Naming {
            reporter: &reporter_label,
            source: &lookup,
        })
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/feedback")
                .join(name),
        )
        .unwrap()
    }

    fn read(name: &str, sources: &SourceNames) -> FeedbackReport {
        let raw = fixture(name);
        let mail = mailparse::parse_mail(&raw).unwrap();
        assert!(is_feedback(&mail), "{name}");
        with_naming(sources, |n| parse(&mail, n)).unwrap_or_else(|| panic!("{name}: no report"))
    }

    #[test]
    fn reports_written_by_mail_auth() {
        let map = [SourceMapEntry {
            name: Name("local-postfix".into()),
            cidrs: vec!["127.0.0.0/8".into()],
        }];
        let sources = SourceNames::new(&map, &[]);
        let y = read("yahoo-cfl-abuse.eml", &sources);
        assert_eq!(
            (y.kind, y.reporter.as_str(), y.domain.as_str(), y.incidents),
            (FeedbackKind::Abuse, "yahoo.com", "dx.test", 1)
        );
        assert_eq!(sources.name(y.source), "local-postfix");
        assert!(
            y.id.starts_with('<') && y.id.ends_with("@localhost>"),
            "{}",
            y.id
        );
        let m = read("microsoft-jmrp-abuse.eml", &sources);
        assert_eq!(
            (m.kind, m.reporter.as_str(), m.domain.as_str()),
            (FeedbackKind::Abuse, "hotmail.com", "dx.test")
        );
        let d = read("dmarc-failure.eml", &sources);
        assert_eq!(
            (
                d.kind,
                d.auth_failure,
                d.reporter.as_str(),
                d.domain.as_str()
            ),
            (
                FeedbackKind::AuthFailure,
                AuthFailure::Dmarc,
                "receiver.example",
                "dx.test"
            )
        );
        assert_eq!(
            sources.name(d.source),
            "unknown",
            "192.0.2.99 is in no source"
        );
        // Nothing personal is kept: no recipient, subject or returned message.
        for r in [&y, &m, &d] {
            let all = format!("{r:?}");
            for secret in ["complainer", "someone@", "Your order", "Hello"] {
                assert!(!all.contains(secret), "{secret} kept: {all}");
            }
        }
    }

    #[test]
    fn odd_and_hostile_reports() {
        let sources = SourceNames::default();
        let arf = |fields: &str| {
            format!(
                "From: fbl@isp.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\n{fields}\r\n--b--\r\n"
            )
        };
        let get = |t: &str| {
            let m = mailparse::parse_mail(t.as_bytes()).unwrap();
            with_naming(&sources, |n| parse(&m, n))
        };
        // Unknown type and failure, no domain, absurd incidents: bounded, not an error.
        let r = get(&arf(
            "Feedback-Type: Complaint\r\nAuth-Failure: weird\r\nIncidents: 99999999999",
        ))
        .unwrap();
        assert_eq!(
            (r.kind, r.auth_failure, r.domain.as_str(), r.incidents),
            (FeedbackKind::Other, AuthFailure::Unspecified, "", 1)
        );
        let r = get(&arf(
            "Feedback-Type: abuse\r\nIncidents: 5000000\r\nOriginal-Mail-From: <b@Mail.DX.test>",
        ))
        .unwrap();
        assert_eq!(
            (r.incidents, r.domain.as_str()),
            (1_000_000, "mail.dx.test")
        );
        assert_eq!(r.reporter, "isp.example");
        // No feedback-report part.
        let m = mailparse::parse_mail(b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n").unwrap();
        assert!(is_feedback(&m) && with_naming(&sources, |n| parse(&m, n)).is_none());
        // A huge field is cut by the 64 KiB read, never a panic.
        let big = arf(&format!(
            "Feedback-Type: abuse\r\nReported-Domain: {}",
            "a".repeat(200_000)
        ));
        let r = get(&big);
        assert!(r.is_none_or(|r| r.domain.len() <= 253));
    }
}
