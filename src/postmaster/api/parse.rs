//! The three answers the exporter reads (a page of domains, a page of daily statistics, a
//! domain's compliance status), parsed with serde into the documented shapes, then checked
//! and bounded into values the exporter can record: names a path or a label can hold, dates
//! inside the query's range, rates as fractions, Google's requirement names as ours.
//!
//! Every field is optional (proto3 JSON leaves out defaults) and unknown ones are ignored. A
//! row that makes no sense alone (no metric, no date, a value of the wrong kind) is skipped and
//! counted; a body that is not the shape at all, or over a cap, is an error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    ApiError, AuthType, Date, Direction, ErrorFilter, ErrorReason, Kind, MAX_BODY,
    MAX_COMPLIANCE_ROWS, MAX_FEEDBACK_LOOPS, MAX_ROWS, MAX_TOKEN, Metric, RATE_SCALE, StatsQuery,
    clip, domain_segment, feedback_loop_id_ok,
};

fn from_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::BadResponse(format!(
            "the {what} is {} bytes, over the {MAX_BODY}-byte cap",
            body.len()
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadResponse(format!(
            "not the documented {what}: {}",
            clip(&e.to_string())
        ))
    })
}

fn rows<T>(v: Option<Vec<T>>, cap: usize, what: &str) -> Result<Vec<T>, ApiError> {
    let v = v.unwrap_or_default();
    if v.len() > cap {
        return Err(ApiError::BadResponse(format!(
            "{} {what}, over the cap of {cap}",
            v.len()
        )));
    }
    Ok(v)
}

fn page_token(t: Option<String>) -> Result<Option<String>, ApiError> {
    match t {
        Some(t) if t.len() > MAX_TOKEN => Err(ApiError::BadResponse(format!(
            "a nextPageToken of {} bytes",
            t.len()
        ))),
        Some(t) if !t.is_empty() => Ok(Some(t)),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDomainList {
    domains: Option<Vec<RawDomain>>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDomain {
    name: Option<String>,
    permission: Option<String>,
    verification_state: Option<String>,
}

/// What the account may do with a domain (Domain.permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Owner,
    Reader,
    /// `NONE`: listed, but its statistics would be refused.
    NoAccess,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The domain, without `domains/`, lower case.
    pub name: String,
    pub permission: Permission,
    /// `verificationState`; `None` when absent or unspecified.
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPage {
    pub domains: Vec<Domain>,
    pub next_page_token: Option<String>,
    /// Entries without a usable `domains/…` name.
    pub skipped: usize,
}

/// A `domains.list` answer (ListDomainsResponse).
pub fn parse_domains(body: &[u8]) -> Result<DomainPage, ApiError> {
    let raw: RawDomainList = from_body(body, "domain list")?;
    let listed = rows(raw.domains, MAX_ROWS, "domains")?;
    let total = listed.len();
    let domains: Vec<Domain> = listed
        .into_iter()
        .filter_map(|d| {
            let name = d.name?.strip_prefix("domains/")?.to_string();
            Some(Domain {
                name: domain_segment(&name).ok()?,
                permission: match d.permission.as_deref() {
                    Some("OWNER") => Permission::Owner,
                    Some("READER") => Permission::Reader,
                    Some("NONE") => Permission::NoAccess,
                    _ => Permission::Unknown,
                },
                verified: match d.verification_state.as_deref() {
                    Some("VERIFIED") => Some(true),
                    Some("UNVERIFIED") => Some(false),
                    _ => None,
                },
            })
        })
        .collect();
    Ok(DomainPage {
        skipped: total - domains.len(),
        domains,
        next_page_token: page_token(raw.next_page_token)?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStats {
    domain_stats: Option<Vec<RawStat>>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStat {
    metric: Option<String>,
    date: Option<RawDate>,
    value: Option<RawValue>,
}

#[derive(Deserialize)]
struct RawDate {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
}

/// StatisticValue. Numbers as `Value`s: proto3 JSON writes int64 as a string and may write
/// doubles as "NaN" or "Infinity", and either must not fail the whole page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawValue {
    double_value: Option<serde_json::Value>,
    float_value: Option<serde_json::Value>,
    int_value: Option<serde_json::Value>,
    string_value: Option<String>,
    string_list: Option<RawStringList>,
}

#[derive(Deserialize)]
struct RawStringList {
    values: Option<Vec<String>>,
}

fn number(v: &Option<serde_json::Value>) -> Option<f64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One day's value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum StatValue {
    /// A rate as a fraction, 0..=1.
    Fraction(f64),
    Count(u64),
    /// Feedback-loop ids, checked with [`super::feedback_loop_id_ok`].
    Ids(Vec<String>),
}

/// One day's statistics, by metric. A day Google has no data for is not in
/// [`StatsPage::days`] at all ("Returns statistics only for dates where data is available").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayStats {
    pub values: BTreeMap<Metric, StatValue>,
}

impl DayStats {
    pub fn rate(&self, m: &Metric) -> Option<f64> {
        match self.values.get(m)? {
            StatValue::Fraction(f) => Some(*f),
            _ => None,
        }
    }

    pub fn count(&self, m: &Metric) -> Option<u64> {
        match self.values.get(m)? {
            StatValue::Count(n) => Some(*n),
            _ => None,
        }
    }

    pub fn spam_rate(&self) -> Option<f64> {
        self.rate(&Metric::SpamRate)
    }

    pub fn auth_success_rate(&self, t: AuthType) -> Option<f64> {
        self.rate(&Metric::AuthSuccessRate(t))
    }

    pub fn tls_rate(&self, d: Direction) -> Option<f64> {
        self.rate(&Metric::TlsRate(d))
    }

    /// The delivery error rate broken down by reason (each reason knows its type).
    pub fn delivery_error_rates(&self) -> Vec<(ErrorReason, f64)> {
        ErrorReason::ALL
            .into_iter()
            .filter_map(|r| {
                Some((
                    r,
                    self.rate(&Metric::DeliveryErrorRate(ErrorFilter::Reason(r)))?,
                ))
            })
            .collect()
    }

    pub fn feedback_loop_ids(&self) -> &[String] {
        match self.values.get(&Metric::FeedbackLoopIds) {
            Some(StatValue::Ids(ids)) => ids,
            _ => &[],
        }
    }

    /// Each feedback-loop id's spam rate, as far as they were asked for.
    pub fn feedback_loop_spam_rates(&self) -> Vec<(&str, f64)> {
        self.values
            .iter()
            .filter_map(|(m, v)| match (m, v) {
                (Metric::FeedbackLoopSpamRate(id), StatValue::Fraction(f)) => {
                    Some((id.as_str(), *f))
                }
                _ => None,
            })
            .collect()
    }
}

/// One page of a statistics query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsPage {
    pub days: BTreeMap<Date, DayStats>,
    pub next_page_token: Option<String>,
    /// Rows naming no metric of the query, or without a date in its range, or without a value
    /// of the metric's kind.
    pub skipped: usize,
    /// Rates outside 0..=1 once scaled by [`RATE_SCALE`]: not recorded (see the module doc of
    /// [`super`]); steadily non-zero means the unit changed.
    pub out_of_range: usize,
}

impl StatsPage {
    /// Adds a later page of the same query (the token is the later page's).
    pub fn absorb(&mut self, page: StatsPage) {
        for (date, day) in page.days {
            self.days.entry(date).or_default().values.extend(day.values);
        }
        self.next_page_token = page.next_page_token;
        self.skipped += page.skipped;
        self.out_of_range += page.out_of_range;
    }
}

impl StatsQuery {
    /// A `domainStats:query` answer (QueryDomainStatsResponse) to this query.
    pub fn parse(&self, body: &[u8]) -> Result<StatsPage, ApiError> {
        let raw: RawStats = from_body(body, "statistics")?;
        let mut page = StatsPage {
            next_page_token: page_token(raw.next_page_token)?,
            ..StatsPage::default()
        };
        let (start, end) = self.range();
        for row in rows(raw.domain_stats, MAX_ROWS, "statistics rows")? {
            let metric = row
                .metric
                .as_deref()
                .and_then(|n| n.strip_prefix('m'))
                .filter(|i| !i.starts_with('0') || *i == "0")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| self.metrics().get(i));
            let date = row.date.and_then(|d| {
                let part = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
                Date::new(i32::try_from(d.year?).ok()?, part(d.month)?, part(d.day)?)
            });
            let (Some(metric), Some(date), Some(value)) = (metric, date, row.value) else {
                page.skipped += 1;
                continue;
            };
            if date < start || date > end {
                page.skipped += 1;
                continue;
            }
            let parsed = match metric.kind() {
                Kind::Rate => number(&value.double_value)
                    .or_else(|| number(&value.float_value))
                    .or_else(|| number(&value.int_value))
                    .map(|r| r * RATE_SCALE)
                    .map(|r| {
                        if (0.0..=1.0).contains(&r) {
                            Ok(StatValue::Fraction(r))
                        } else {
                            Err(())
                        }
                    }),
                Kind::Count => number(&value.int_value)
                    .or_else(|| number(&value.double_value))
                    .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n < 9.0e15)
                    .map(|n| Ok(StatValue::Count(n as u64))),
                Kind::Ids => {
                    let mut ids: Vec<String> = value
                        .string_list
                        .and_then(|l| l.values)
                        .unwrap_or_default()
                        .into_iter()
                        .chain(value.string_value)
                        .chain(value.int_value.as_ref().and_then(|v| match v {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        }))
                        .filter(|id| feedback_loop_id_ok(id))
                        .collect();
                    ids.sort();
                    ids.dedup();
                    ids.truncate(MAX_FEEDBACK_LOOPS);
                    Some(Ok(StatValue::Ids(ids)))
                }
            };
            match parsed {
                Some(Ok(v)) => {
                    page.days
                        .entry(date)
                        .or_default()
                        .values
                        .insert(metric.clone(), v);
                }
                Some(Err(())) => page.out_of_range += 1,
                None => page.skipped += 1,
            }
        }
        Ok(page)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCompliance {
    compliance_data: Option<RawComplianceData>,
    subdomain_compliance_data: Option<RawComplianceData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawComplianceData {
    domain_id: Option<String>,
    row_data: Option<Vec<RawRow>>,
    one_click_unsubscribe_verdict: Option<RawVerdict>,
    honor_unsubscribe_verdict: Option<RawVerdict>,
}

#[derive(Deserialize)]
struct RawRow {
    requirement: Option<String>,
    status: Option<RawStatus>,
}

/// ComplianceStatus: an object around the state, `{"status": "COMPLIANT"}`.
#[derive(Deserialize)]
struct RawStatus {
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawVerdict {
    status: Option<RawStatus>,
    reason: Option<String>,
}

crate::label_enum! {
    /// A requirement's state, as a label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ComplianceState {
        Compliant = "compliant",
        NeedsWork = "needs_work",
        /// STATE_UNSPECIFIED, absent, or a value this version does not know.
        Unknown = "unknown",
    }
}

fn state(s: Option<RawStatus>) -> ComplianceState {
    match s.and_then(|s| s.status).as_deref() {
        Some("COMPLIANT") => ComplianceState::Compliant,
        Some("NEEDS_WORK") => ComplianceState::NeedsWork,
        _ => ComplianceState::Unknown,
    }
}

/// The exporter's own sender-requirement names: the `requirement` label of the canaries'
/// checks (`Requirement::NAMES` in src/canary/requirements.rs, copied: a check does not import
/// another).
pub const OUR_REQUIREMENTS: [&str; 9] = [
    "spf",
    "dkim",
    "spf_and_dkim",
    "dmarc_policy",
    "dmarc_alignment",
    "dns_records",
    "encryption",
    "message_formatting",
    "one_click_unsubscribe",
];

/// Google's ComplianceRowData.requirement as a `requirement` label: ours where the exporter
/// judges the same thing, else Google's own in snake_case (USER_REPORTED_SPAM_RATE,
/// HONOR_UNSUBSCRIBE, and whatever is added later). `None` for the unspecified value and for
/// names that are not an identifier.
pub fn requirement_name(google: &str) -> Option<Cow<'static, str>> {
    if google == "COMPLIANCE_REQUIREMENT_UNSPECIFIED" {
        return None;
    }
    // Google's names of the requirements the exporter judges are ours in upper case.
    let name = google.to_ascii_lowercase();
    if let Some(ours) = OUR_REQUIREMENTS.iter().find(|o| **o == name) {
        return Some(Cow::Borrowed(ours));
    }
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(Cow::Owned(name))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceRow {
    /// Ours where one matches ([`requirement_name`]).
    pub requirement: Cow<'static, str>,
    pub state: ComplianceState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: ComplianceState,
    /// Google's reason (NO_UNSUB_GENERAL, NOT_HONORING, …), clipped; empty when compliant.
    pub reason: Option<String>,
}

/// DomainComplianceData: the rows of one domain, each requirement once (the first row wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceData {
    pub domain: Option<String>,
    pub rows: Vec<ComplianceRow>,
    /// Rows without a usable requirement name, or repeating one.
    pub skipped: usize,
    pub one_click_unsubscribe: Option<Verdict>,
    pub honor_unsubscribe: Option<Verdict>,
}

/// DomainComplianceStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceStatus {
    /// For the registrable domain (`example.com` when `sub.example.com` was asked for).
    pub registrable: Option<ComplianceData>,
    /// For the subdomain asked for, when it is one and Google has data for it.
    pub subdomain: Option<ComplianceData>,
}

impl ComplianceStatus {
    /// The data for the domain asked for: its own if it is a subdomain that has some.
    pub fn effective(&self) -> Option<&ComplianceData> {
        self.subdomain.as_ref().or(self.registrable.as_ref())
    }
}

fn compliance_data(raw: RawComplianceData) -> Result<ComplianceData, ApiError> {
    let verdict = |v: Option<RawVerdict>| {
        v.map(|v| Verdict {
            state: state(v.status),
            reason: v.reason.map(|r| clip(&r)).filter(|r| !r.is_empty()),
        })
    };
    let listed = rows(raw.row_data, MAX_COMPLIANCE_ROWS, "compliance rows")?;
    let total = listed.len();
    let mut out: Vec<ComplianceRow> = Vec::with_capacity(total);
    for row in listed {
        let Some(requirement) = row.requirement.as_deref().and_then(requirement_name) else {
            continue;
        };
        if out.iter().all(|r| r.requirement != requirement) {
            out.push(ComplianceRow {
                requirement,
                state: state(row.status),
            });
        }
    }
    Ok(ComplianceData {
        domain: raw.domain_id.and_then(|d| domain_segment(&d).ok()),
        skipped: total - out.len(),
        rows: out,
        one_click_unsubscribe: verdict(raw.one_click_unsubscribe_verdict),
        honor_unsubscribe: verdict(raw.honor_unsubscribe_verdict),
    })
}

/// A `getComplianceStatus` answer.
pub fn parse_compliance(body: &[u8]) -> Result<ComplianceStatus, ApiError> {
    let raw: RawCompliance = from_body(body, "compliance status")?;
    Ok(ComplianceStatus {
        registrable: raw.compliance_data.map(compliance_data).transpose()?,
        subdomain: raw
            .subdomain_compliance_data
            .map(compliance_data)
            .transpose()?,
    })
}
