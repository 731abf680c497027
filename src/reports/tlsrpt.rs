//! The SMTP TLS report reader (RFC 8460): JSON with one entry per policy, each with success
//! and failure session counts and failure details.
//!
//! Lenient where reporters differ from the RFC: Microsoft writes timestamps without a time
//! zone (read as UTC), `mx-host` comes as a string or an array, `contact-info` may be null,
//! counts may be missing (0) or written as strings. Failure details are summed per result type
//! while they are read and only the first [`KEEP_DETAILS`] are kept, and the number of
//! policies is limited, so a hostile report cannot grow memory past its own size.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::error::{ReadError, inner_read_error};
use super::model::{TlsFailure, TlsPolicy, TlsReport, TlsResultType};

/// Failure details kept per policy (all of them are counted).
pub const KEEP_DETAILS: usize = 100;

/// Reads one TLS report. `max_policies` bounds the `policies` array.
pub fn parse<R: Read>(input: R, max_policies: u64) -> Result<TlsReport, ReadError> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let raw = RawReport::deserialize_bounded(&mut de, max_policies)
        .and_then(|r| de.end().map(|()| r))
        .map_err(json_error);
    LIMIT.with(|l| l.set((u64::MAX, false)));
    raw?.into_report()
}

fn json_error(e: serde_json::Error) -> ReadError {
    if let Some(limit) = LIMIT.with(|l| l.get().1.then_some(l.get().0)) {
        return ReadError::TooManyRecords { limit };
    }
    if e.is_io() {
        let io: std::io::Error = e.into();
        return inner_read_error(&io).unwrap_or_else(|| ReadError::Io(io.to_string()));
    }
    let message = e.to_string();
    // serde_json appends " at line L column C"; the position is given separately.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    ReadError::Json {
        line: e.line(),
        column: e.column(),
        message,
    }
}

#[derive(Deserialize)]
struct RawReport {
    #[serde(rename = "organization-name", default)]
    organization_name: Option<String>,
    #[serde(rename = "date-range", default)]
    date_range: Option<RawRange>,
    #[serde(rename = "contact-info", default)]
    contact_info: Option<String>,
    #[serde(rename = "report-id", default)]
    report_id: Option<Lenient>,
    #[serde(default, deserialize_with = "policies")]
    policies: Option<Vec<TlsPolicy>>,
}

thread_local! {
    /// The policy limit of the parse running on this thread, and whether it was exceeded
    /// (serde's visitors have no other way to learn it or report it).
    static LIMIT: std::cell::Cell<(u64, bool)> = const { std::cell::Cell::new((u64::MAX, false)) };
}

impl RawReport {
    fn deserialize_bounded<'de, D: Deserializer<'de>>(
        d: D,
        max_policies: u64,
    ) -> Result<RawReport, D::Error> {
        LIMIT.with(|l| l.set((max_policies, false)));
        RawReport::deserialize(d)
    }

    fn into_report(self) -> Result<TlsReport, ReadError> {
        let Some(policies) = self.policies else {
            return Err(ReadError::NotTlsReport("no \"policies\" array".into()));
        };
        let Some(range) = self.date_range else {
            return Err(ReadError::NotTlsReport("no \"date-range\"".into()));
        };
        let begin = parse_datetime(&range.start).ok_or_else(|| {
            ReadError::NotTlsReport(format!(
                "\"start-datetime\" {:?} is not an RFC 3339 date-time",
                range.start
            ))
        })?;
        let end = parse_datetime(&range.end).ok_or_else(|| {
            ReadError::NotTlsReport(format!(
                "\"end-datetime\" {:?} is not an RFC 3339 date-time",
                range.end
            ))
        })?;
        let contact_info = self.contact_info.filter(|c| !c.trim().is_empty());
        let organization_name = match self.organization_name.filter(|o| !o.trim().is_empty()) {
            Some(o) => o.trim().to_string(),
            None => contact_info
                .as_deref()
                .and_then(|c| c.rsplit_once('@'))
                .map(|(_, d)| d.trim().to_ascii_lowercase())
                .unwrap_or_default(),
        };
        Ok(TlsReport {
            organization_name,
            contact_info,
            report_id: self.report_id.map(|r| r.0).unwrap_or_default(),
            begin,
            end,
            policies,
        })
    }
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "start-datetime")]
    start: String,
    #[serde(rename = "end-datetime")]
    end: String,
}

#[derive(Deserialize)]
struct RawPolicyEntry {
    policy: RawPolicy,
    #[serde(default)]
    summary: Option<RawSummary>,
    #[serde(rename = "failure-details", default, deserialize_with = "failures")]
    failure_details: Option<Failures>,
}

#[derive(Deserialize)]
struct RawPolicy {
    #[serde(rename = "policy-type", default)]
    policy_type: Option<String>,
    #[serde(rename = "policy-domain", default)]
    policy_domain: Option<String>,
    #[serde(rename = "mx-host", default)]
    mx_host: Option<OneOrMany>,
}

#[derive(Deserialize)]
struct RawSummary {
    #[serde(rename = "total-successful-session-count", default)]
    successful: Option<Lenient>,
    #[serde(rename = "total-failure-session-count", default)]
    failed: Option<Lenient>,
}

#[derive(Deserialize)]
struct RawFailure {
    #[serde(rename = "result-type", default)]
    result_type: Option<String>,
    #[serde(rename = "failed-session-count", default)]
    sessions: Option<Lenient>,
    #[serde(rename = "sending-mta-ip", default)]
    sending_mta_ip: Option<String>,
    #[serde(rename = "receiving-mx-hostname", default)]
    receiving_mx_hostname: Option<String>,
    #[serde(rename = "receiving-ip", default)]
    receiving_ip: Option<String>,
    #[serde(rename = "failure-reason-code", default)]
    failure_reason_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A string or a number, as reporters write ids and counts.
struct Lenient(String);

impl Lenient {
    fn count(&self) -> u64 {
        self.0.trim().parse().unwrap_or(0)
    }
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(v.max(0).to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(if v.is_finite() && v >= 0.0 {
                    (v as u64).to_string()
                } else {
                    "0".into()
                }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Failure details summed per result type, the first [`KEEP_DETAILS`] kept.
#[derive(Default)]
struct Failures {
    kept: Vec<TlsFailure>,
    by_type: BTreeMap<TlsResultType, u64>,
}

fn failures<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Failures>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Failures>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of failure details")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Failures::default();
            while let Some(f) = seq.next_element::<RawFailure>()? {
                let raw = f.result_type.unwrap_or_default();
                let result_type = TlsResultType::parse(&raw);
                let sessions = f.sessions.map(|s| s.count()).unwrap_or(0);
                let slot = out.by_type.entry(result_type).or_insert(0);
                *slot = slot.saturating_add(sessions);
                if out.kept.len() < KEEP_DETAILS {
                    out.kept.push(TlsFailure {
                        result_type,
                        result_type_raw: raw,
                        sessions,
                        sending_mta_ip: f.sending_mta_ip,
                        receiving_mx_hostname: f.receiving_mx_hostname,
                        receiving_ip: f.receiving_ip,
                        failure_reason_code: f.failure_reason_code,
                    });
                }
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

fn policies<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<TlsPolicy>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<TlsPolicy>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of policies")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let max = LIMIT.with(|l| l.get().0);
            let mut out = Vec::new();
            while let Some(p) = seq.next_element::<RawPolicyEntry>()? {
                if out.len() as u64 >= max {
                    LIMIT.with(|l| l.set((max, true)));
                    return Err(de::Error::custom("too many policies"));
                }
                let failures = p.failure_details.unwrap_or_default();
                let summary = p.summary;
                let mut policy = TlsPolicy {
                    policy_type: p
                        .policy
                        .policy_type
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase(),
                    domain: super::align::normalize_domain(
                        p.policy.policy_domain.as_deref().unwrap_or(""),
                    ),
                    mx_hosts: match p.policy.mx_host {
                        None => Vec::new(),
                        Some(OneOrMany::One(s)) => vec![s],
                        Some(OneOrMany::Many(v)) => v,
                    },
                    successful: summary
                        .as_ref()
                        .and_then(|s| s.successful.as_ref())
                        .map_or(0, Lenient::count),
                    failed: summary
                        .as_ref()
                        .and_then(|s| s.failed.as_ref())
                        .map_or(0, Lenient::count),
                    failures: failures.kept,
                    failed_by_type: failures.by_type,
                };
                policy.mx_hosts.truncate(KEEP_DETAILS);
                out.push(policy);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

/// Parses an RFC 3339 date-time (`2016-04-01T00:00:00Z`, `...+02:00`, fractions), also
/// without a zone (Microsoft; read as UTC) or with a space for `T`. Unix seconds.
pub fn parse_datetime(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = &rest[1..];
            let (oh, om) = match z.len() {
                5 if z.as_bytes()[2] == b':' => (z.get(0..2)?, z.get(3..5)?),
                4 => (z.get(0..2)?, z.get(2..4)?),
                2 => (z, "00"),
                _ => return None,
            };
            let oh: i64 = oh.parse().ok()?;
            let om: i64 = om.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = crate::clock::days_from_civil(y, mo as u32, d as u32);
    let t = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_with_and_without_zones() {
        assert_eq!(parse_datetime("2016-04-01T00:00:00Z"), Some(1_459_468_800));
        assert_eq!(parse_datetime("2016-04-01T00:00:00"), Some(1_459_468_800));
        assert_eq!(
            parse_datetime("2016-04-01 02:00:00+02:00"),
            Some(1_459_468_800)
        );
        assert_eq!(
            parse_datetime("2016-03-31T23:00:00.123-01:00"),
            Some(1_459_468_800)
        );
        assert_eq!(parse_datetime("2016-04-01T23:59:59Z"), Some(1_459_555_199));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2016-13-01T00:00:00Z"), None);
        assert_eq!(parse_datetime("2016-04-01T00:00:00Q"), None);
    }

    const REPORT: &str = r#"{
      "organization-name": "Example Inc.",
      "date-range": {"start-datetime": "2024-01-09T00:00:00", "end-datetime": "2024-01-09T23:59:59"},
      "contact-info": null,
      "report-id": 20240109,
      "policies": [
        {"policy": {"policy-type": "STS", "policy-domain": "Example.COM.", "mx-host": "mx.example.com"},
         "summary": {"total-successful-session-count": "7", "total-failure-session-count": 3},
         "failure-details": [
           {"result-type": "validation-failure", "failed-session-count": 2, "sending-mta-ip": "192.0.2.1"},
           {"result-type": "made-up-failure", "failed-session-count": 1}
         ]},
        {"policy": {"policy-type": "tlsa", "policy-domain": "example.com", "mx-host": ["a", "b"]},
         "summary": {"total-successful-session-count": 1}}
      ]
    }"#;

    #[test]
    fn reads_the_quirks() {
        let r = parse(REPORT.as_bytes(), 10).unwrap();
        assert_eq!(r.organization_name, "Example Inc.");
        assert_eq!(r.contact_info, None);
        assert_eq!(r.report_id, "20240109");
        assert_eq!(r.begin, 1_704_758_400);
        assert_eq!(r.end, 1_704_758_400 + 86_399);
        assert_eq!(r.policies.len(), 2);
        let p = &r.policies[0];
        assert_eq!(p.domain, "example.com");
        assert_eq!(p.policy_type, "sts");
        assert_eq!(p.mx_hosts, vec!["mx.example.com".to_string()]);
        assert_eq!((p.successful, p.failed), (7, 3));
        assert_eq!(p.failed_by_type[&TlsResultType::ValidationFailure], 2);
        assert_eq!(p.failed_by_type[&TlsResultType::Other], 1);
        assert_eq!(p.failures[1].result_type_raw, "made-up-failure");
        assert_eq!(r.policies[1].mx_hosts.len(), 2);
        assert_eq!(r.policies[1].failed, 0);
        assert_eq!((r.successful(), r.failed()), (8, 3));
        assert_eq!(r.domain(), "example.com");
    }

    #[test]
    fn too_many_policies_is_refused() {
        let e = parse(REPORT.as_bytes(), 1).unwrap_err();
        assert_eq!(e, ReadError::TooManyRecords { limit: 1 });
    }

    #[test]
    fn broken_json_names_line_and_column() {
        let e = parse(&b"{\n  \"policies\": [\n  }"[..], 10).unwrap_err();
        assert!(matches!(e, ReadError::Json { line: 3, .. }), "{e:?}");
        let e = parse(&b"{\"organization-name\": \"\xff\"}"[..], 10).unwrap_err();
        assert!(matches!(e, ReadError::Json { line: 1, .. }), "{e:?}");
        let e = parse(&b"{\"hello\": 1}"[..], 10).unwrap_err();
        assert!(matches!(e, ReadError::NotTlsReport(_)), "{e:?}");
    }

    #[test]
    fn details_past_the_kept_number_are_still_counted() {
        let details: Vec<String> = (0..KEEP_DETAILS + 50)
            .map(|_| r#"{"result-type":"certificate-expired","failed-session-count":2}"#.into())
            .collect();
        let json = format!(
            r#"{{"organization-name":"x","date-range":{{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-02T00:00:00Z"}},"report-id":"r","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"example.com"}},"summary":{{"total-successful-session-count":0,"total-failure-session-count":300}},"failure-details":[{}]}}]}}"#,
            details.join(",")
        );
        let r = parse(json.as_bytes(), 10).unwrap();
        let p = &r.policies[0];
        assert_eq!(p.failures.len(), KEEP_DETAILS);
        assert_eq!(
            p.failed_by_type[&TlsResultType::CertificateExpired],
            2 * (KEEP_DETAILS as u64 + 50)
        );
    }
}
