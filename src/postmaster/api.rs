//! Google Postmaster Tools API v2 without the network: the requests the exporter sends (method,
//! path, JSON body), the responses it reads (domains, each day's statistics, compliance rows,
//! in [`parse`]) and what an error answer means ([`classify`]). The caller sends them, with
//! [`crate::http_client`] and a token got with [`crate::oauth2::jwt`]; all of this is pure, and tested
//! against the fixtures in tests/fixtures/postmaster/.
//!
//! Responses are untrusted: a body over [`MAX_BODY`], more rows than the caps below, or JSON
//! that is not the documented shape is an [`ApiError::BadResponse`], never a panic. Unknown
//! fields are ignored and every field may be absent.
//!
//! The shapes come from the v2 reference and the discovery document (revision 20260512):
//! - <https://developers.google.com/workspace/gmail/postmaster/reference/rest/v2> (the methods)
//! - .../reference/rest/v2/domains/list, .../v2/domains.domainStats/query,
//!   .../v2/domainStats/batchQuery, .../v2/domains/getComplianceStatus
//! - .../reference/rest/v2/MetricDefinition (StandardMetric, the filter syntax),
//!   .../v2/TimeQuery, .../v2/QueryDomainStatsResponse (DomainStat, StatisticValue)
//! - <https://gmailpostmastertools.googleapis.com/$discovery/rest?version=v2>, as vendored in
//!   google-api-python-client (googleapiclient/discovery_cache/documents/gmailpostmastertools.v2.json)
//! - <https://developers.google.com/workspace/gmail/postmaster/guides/migration-v2>
//! - errors: <https://cloud.google.com/apis/design/errors> (`{"error":{"code","message",
//!   "status","details"}}`, 429 = RESOURCE_EXHAUSTED, `google.rpc.RetryInfo`)
//!
//! Rates. The reference calls SPAM_RATE, AUTH_SUCCESS_RATE, TLS_ENCRYPTION_RATE,
//! DELIVERY_ERROR_RATE and FEEDBACK_LOOP_SPAM_RATE rates, in a `doubleValue`, and does not say
//! whether 0.3 % comes as 0.003 or 0.3. v1 documented the same statistics as ratios (0..1), and
//! a v2 client in use (Mindbaz/python-gpostmaster-domains-data) multiplies them by 100 to get
//! percent; so they are read as fractions. [`RATE_SCALE`] is the one place to change should
//! that be wrong, and a rate outside 0..=1 is not believed but counted
//! ([`parse::StatsPage::out_of_range`]), so a change of unit shows.
//!
//! batchQuery is not used. The reference says it "Returns PERMISSION_DENIED if you don't have
//! permission to access DomainStats for any of the requested domains", so one domain the
//! account lost would blank all of them, and each request in a batch pages on its own. One
//! `domainStats:query` per domain keeps a denied or unknown domain a state of that domain, for
//! a request per configured domain per run.

mod error;
pub mod parse;

use std::fmt;

pub use error::{ApiError, ErrorKind, MAX_RETRY_AFTER, classify};
pub use parse::{
    ComplianceData, ComplianceRow, ComplianceState, ComplianceStatus, DayStats, Domain, DomainPage,
    OUR_REQUIREMENTS, Permission, StatValue, StatsPage, Verdict, parse_compliance, parse_domains,
    requirement_name,
};

pub const ENDPOINT: &str = "https://gmailpostmastertools.googleapis.com";
/// Enough for `domainStats:query` and `getComplianceStatus`, and read-only.
pub const SCOPE_TRAFFIC: &str = "https://www.googleapis.com/auth/postmaster.traffic.readonly";
/// `domains.list` needs this (or the broad `postmaster`) besides; it also lets the holder add
/// and delete domains, so it is asked for only to discover the domains.
pub const SCOPE_DOMAINS: &str = "https://www.googleapis.com/auth/postmaster.domain";

/// Rates as the API sends them, times this, are fractions (see the module doc).
pub const RATE_SCALE: f64 = 1.0;
/// The most a page may hold; the documented maximum of both list and query.
pub const PAGE_SIZE: u32 = 200;
/// Bodies larger than this are refused before parsing (a full page is ~40 KB).
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// The longest date range one query asks for, and so the most days a response can fill.
pub const MAX_DAYS: i64 = 62;
/// Rows accepted from one page (domains or statistics): [`PAGE_SIZE`] with room to spare.
pub const MAX_ROWS: usize = 1000;
/// Metric definitions in one query.
pub const MAX_METRICS: usize = 64;
/// Feedback-loop ids kept per day, and so spam rates asked for.
pub const MAX_FEEDBACK_LOOPS: usize = 32;
/// Compliance rows accepted per domain (Google has 11 requirements).
pub const MAX_COMPLIANCE_ROWS: usize = 64;
/// Pages a caller should follow before giving up on one listing or query.
pub const MAX_PAGES: usize = 20;
/// Longest page token, feedback-loop id or Google name accepted.
pub const MAX_TOKEN: usize = 2048;

/// One call: append `path` to [`ENDPOINT`]; a POST sends `body` as `application/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: hyper::Method,
    /// Path and query, from `/v2/`.
    pub path: String,
    pub body: Option<String>,
}

impl ApiRequest {
    pub fn url(&self) -> String {
        format!("{ENDPOINT}{}", self.path)
    }
}

/// A request that cannot be built from what it was given (a configuration or caller mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("postmaster request: {0}")]
pub struct BadRequest(pub String);

/// `GET /v2/domains`: one page of the domains the account can see.
pub fn list_domains(page_token: Option<&str>) -> ApiRequest {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("pageSize", &PAGE_SIZE.to_string());
    if let Some(t) = page_token.filter(|t| !t.is_empty()) {
        query.append_pair("pageToken", t);
    }
    ApiRequest {
        method: hyper::Method::GET,
        path: format!("/v2/domains?{}", query.finish()),
        body: None,
    }
}

/// `GET /v2/domains/{domain}/complianceStatus`.
pub fn compliance_status(domain: &str) -> Result<ApiRequest, BadRequest> {
    Ok(ApiRequest {
        method: hyper::Method::GET,
        path: format!("/v2/domains/{}/complianceStatus", domain_segment(domain)?),
        body: None,
    })
}

/// A domain as a path segment: a DNS name, lower case, without the root dot. Anything else
/// (a `/`, `?`, `%`, a space) would change which resource the path names.
pub fn domain_segment(domain: &str) -> Result<String, BadRequest> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(BadRequest(format!("{domain:?} is not a domain name")));
    }
    Ok(d)
}

/// A calendar day (google.type.Date): the API names days by date alone, with no time zone;
/// the requests are built from UTC dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// A real Gregorian date in years 1..=9999 (the range google.type.Date allows).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let d = Date { year, month, day };
        ((1..=9999).contains(&year) && Date::from_days(d.days()) == d).then_some(d)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        crate::clock::days_from_civil(i64::from(self.year), self.month, self.day)
    }

    pub fn from_days(days: i64) -> Date {
        let (y, month, day) = crate::clock::civil_from_days(days);
        Date {
            year: i32::try_from(y).unwrap_or(0),
            month,
            day,
        }
    }

    /// The UTC date of a Unix time.
    pub fn from_unix(secs: u64) -> Date {
        Date::from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2))
    }

    fn json(self) -> serde_json::Value {
        serde_json::json!({ "year": self.year, "month": self.month, "day": self.day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

crate::label_enum! {
    /// AUTH_SUCCESS_RATE's filter: `auth_type = "…"`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum AuthType {
        Spf = "spf",
        Dkim = "dkim",
        Dmarc = "dmarc",
    }
}

crate::label_enum! {
    /// TLS_ENCRYPTION_*'s filter `traffic_direction = "…"`: inbound is mail to Gmail.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Direction {
        Inbound = "inbound",
        Outbound = "outbound",
    }
}

crate::label_enum! {
    /// DELIVERY_ERROR_*'s `error_type`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum ErrorType {
        Reject = "reject",
        TempFail = "temp_fail",
    }
}

/// DELIVERY_ERROR_*'s `error_reason`, each under the one `error_type` it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorReason {
    BadAttachment,
    BadOrMissingPtrRecord,
    IpInRbls,
    LowDomainReputation,
    LowIpReputation,
    SpammyContent,
    StampPolicyError,
    RejectOther,
    AnomalousTrafficPattern,
    TempFailOther,
}

impl ErrorReason {
    pub const ALL: [ErrorReason; 10] = [
        ErrorReason::BadAttachment,
        ErrorReason::BadOrMissingPtrRecord,
        ErrorReason::IpInRbls,
        ErrorReason::LowDomainReputation,
        ErrorReason::LowIpReputation,
        ErrorReason::SpammyContent,
        ErrorReason::StampPolicyError,
        ErrorReason::RejectOther,
        ErrorReason::AnomalousTrafficPattern,
        ErrorReason::TempFailOther,
    ];

    pub fn error_type(self) -> ErrorType {
        match self {
            ErrorReason::AnomalousTrafficPattern | ErrorReason::TempFailOther => {
                ErrorType::TempFail
            }
            _ => ErrorType::Reject,
        }
    }

    /// Google's name (`other` under both types).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::BadAttachment => "bad_attachment",
            ErrorReason::BadOrMissingPtrRecord => "bad_or_missing_ptr_record",
            ErrorReason::IpInRbls => "ip_in_rbls",
            ErrorReason::LowDomainReputation => "low_domain_reputation",
            ErrorReason::LowIpReputation => "low_ip_reputation",
            ErrorReason::SpammyContent => "spammy_content",
            ErrorReason::StampPolicyError => "stamp_policy_error",
            ErrorReason::AnomalousTrafficPattern => "anomalous_traffic_pattern",
            ErrorReason::RejectOther | ErrorReason::TempFailOther => "other",
        }
    }
}

/// Which delivery errors a DELIVERY_ERROR_* metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorFilter {
    All,
    Type(ErrorType),
    Reason(ErrorReason),
}

/// One statistic a query asks for: a StandardMetric with its filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// User-reported spam rate.
    SpamRate,
    AuthSuccessRate(AuthType),
    TlsRate(Direction),
    TlsMessageCount(Direction),
    DeliveryErrorRate(ErrorFilter),
    DeliveryErrorCount(ErrorFilter),
    /// The Feedback-ID identifiers seen that day (a string list).
    FeedbackLoopIds,
    /// One feedback-loop id's spam rate; the ids come from [`Metric::FeedbackLoopIds`].
    FeedbackLoopSpamRate(String),
}

/// What kind of value a metric has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rate,
    Count,
    Ids,
}

impl Metric {
    /// What the exporter asks for every day: everything but the per-loop spam rates, which
    /// need the ids first.
    pub fn daily() -> Vec<Metric> {
        let mut m = vec![Metric::SpamRate];
        m.extend(AuthType::ALL.map(Metric::AuthSuccessRate));
        m.extend(Direction::ALL.map(Metric::TlsRate));
        m.push(Metric::DeliveryErrorRate(ErrorFilter::All));
        m.push(Metric::DeliveryErrorCount(ErrorFilter::All));
        m.extend(ErrorType::ALL.map(|t| Metric::DeliveryErrorRate(ErrorFilter::Type(t))));
        m.extend(ErrorReason::ALL.map(|r| Metric::DeliveryErrorRate(ErrorFilter::Reason(r))));
        m.push(Metric::FeedbackLoopIds);
        m
    }

    /// The StandardMetric enum value.
    pub fn standard(&self) -> &'static str {
        match self {
            Metric::SpamRate => "SPAM_RATE",
            Metric::AuthSuccessRate(_) => "AUTH_SUCCESS_RATE",
            Metric::TlsRate(_) => "TLS_ENCRYPTION_RATE",
            Metric::TlsMessageCount(_) => "TLS_ENCRYPTION_MESSAGE_COUNT",
            Metric::DeliveryErrorRate(_) => "DELIVERY_ERROR_RATE",
            Metric::DeliveryErrorCount(_) => "DELIVERY_ERROR_COUNT",
            Metric::FeedbackLoopIds => "FEEDBACK_LOOP_ID",
            Metric::FeedbackLoopSpamRate(_) => "FEEDBACK_LOOP_SPAM_RATE",
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Metric::TlsMessageCount(_) | Metric::DeliveryErrorCount(_) => Kind::Count,
            Metric::FeedbackLoopIds => Kind::Ids,
            _ => Kind::Rate,
        }
    }

    /// The MetricDefinition's `filter` (the syntax of the StandardMetric descriptions).
    pub fn filter(&self) -> Option<String> {
        let errors = |f: &ErrorFilter| match f {
            ErrorFilter::All => None,
            ErrorFilter::Type(t) => Some(format!("error_type = \"{}\"", t.as_str())),
            ErrorFilter::Reason(r) => Some(format!(
                "error_type = \"{}\" AND error_reason = \"{}\"",
                r.error_type().as_str(),
                r.as_str()
            )),
        };
        match self {
            Metric::SpamRate | Metric::FeedbackLoopIds => None,
            Metric::AuthSuccessRate(a) => Some(format!("auth_type = \"{}\"", a.as_str())),
            Metric::TlsRate(d) | Metric::TlsMessageCount(d) => {
                Some(format!("traffic_direction = \"{}\"", d.as_str()))
            }
            Metric::DeliveryErrorRate(f) | Metric::DeliveryErrorCount(f) => errors(f),
            Metric::FeedbackLoopSpamRate(id) => Some(format!("feedback_loop_id = \"{id}\"")),
        }
    }
}

/// A feedback-loop id fit to quote in a filter and a label: printable, no quote or backslash.
pub fn feedback_loop_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// `POST /v2/domains/{domain}/domainStats:query`, daily, over a date range. The metric
/// definitions are named `m{index}`, which is how [`StatsQuery::parse`] maps the rows back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    domain: String,
    start: Date,
    end: Date,
    metrics: Vec<Metric>,
}

impl StatsQuery {
    pub fn new(
        domain: &str,
        start: Date,
        end: Date,
        metrics: Vec<Metric>,
    ) -> Result<StatsQuery, BadRequest> {
        let domain = domain_segment(domain)?;
        let span = end.days() - start.days() + 1;
        if !(1..=MAX_DAYS).contains(&span) {
            return Err(BadRequest(format!(
                "{start}..{end} is not a range of 1 to {MAX_DAYS} days"
            )));
        }
        if metrics.is_empty() || metrics.len() > MAX_METRICS {
            return Err(BadRequest(format!(
                "1 to {MAX_METRICS} metrics, not {}",
                metrics.len()
            )));
        }
        for (i, m) in metrics.iter().enumerate() {
            if metrics[..i].contains(m) {
                return Err(BadRequest(format!("{m:?} is asked for twice")));
            }
            if let Metric::FeedbackLoopSpamRate(id) = m
                && !feedback_loop_id_ok(id)
            {
                return Err(BadRequest(
                    "a feedback-loop id that cannot be quoted".into(),
                ));
            }
        }
        Ok(StatsQuery {
            domain,
            start,
            end,
            metrics,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn range(&self) -> (Date, Date) {
        (self.start, self.end)
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// One page of the query; `page_token` is the last page's `nextPageToken`.
    pub fn request(&self, page_token: Option<&str>) -> ApiRequest {
        let definitions: Vec<serde_json::Value> = self
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut d = serde_json::json!({
                    "name": format!("m{i}"),
                    "baseMetric": { "standardMetric": m.standard() },
                });
                if let Some(f) = m.filter() {
                    d["filter"] = f.into();
                }
                d
            })
            .collect();
        let mut body = serde_json::json!({
            "metricDefinitions": definitions,
            "timeQuery": { "dateRanges": { "dateRanges": [
                { "start": self.start.json(), "end": self.end.json() }
            ] } },
            "aggregationGranularity": "DAILY",
            "pageSize": PAGE_SIZE,
        });
        if let Some(t) = page_token.filter(|t| !t.is_empty()) {
            body["pageToken"] = t.into();
        }
        ApiRequest {
            method: hyper::Method::POST,
            path: format!("/v2/domains/{}/domainStats:query", self.domain),
            body: Some(body.to_string()),
        }
    }
}

/// Text from a response, fit for a log line: no control characters, at most 200 of them.
pub(crate) fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests;
