//! The `postmaster` check: on every interval, asks Google Postmaster Tools v2 for each domain's
//! statistics over the last `days` days and its compliance status, and exports the newest day
//! with data ([`crate::metrics::signals`]).
//!
//! The domains are the configured ones, else every domain `domains.list` gives (pages
//! followed, at most `max_domains`). A domain's statistics are one `domainStats:query` (pages
//! followed; batchQuery would fail every domain for one denied domain), then, when that day
//! names feedback-loop identifiers, one more for their spam rates. Failures are states of the
//! domain (`deliverability_postmaster_state`): a 403 or 404 for one domain leaves the others;
//! a 429 stops the run (the rest keep their state until the next one); a 401 forgets the token.
//! No state zeroes a value: the gauges keep the last day with data.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::api::{
    self, ApiError, ApiRequest, AuthType, ComplianceState, Date, DayStats, Direction, ErrorFilter,
    ErrorKind, ErrorType, Metric, StatsQuery,
};
use crate::config::PostmasterConfig;
use crate::http_client::{self, Target};
use crate::metrics::signals::SignalMetrics;
use crate::oauth2::{OAuthError, TokenSource, jwt};
use crate::schedule::{BoxFuture, Check, CheckError, Context};
use crate::status::{SignalBoard, SignalLine};

/// Why a call gave nothing.
#[derive(Debug)]
enum CallError {
    Api(ApiError),
    /// No answer at all (connect, TLS, timeout, too large).
    Http(String),
    Token(OAuthError),
}

impl CallError {
    /// The state it puts the domain in.
    fn state(&self) -> &'static str {
        match self {
            CallError::Api(e) => match e.kind() {
                ErrorKind::Unauthenticated => "unauthenticated",
                ErrorKind::Denied => "denied",
                ErrorKind::NotFound => "not_found",
                ErrorKind::RateLimited => "rate_limited",
                _ => "error",
            },
            CallError::Token(OAuthError::Refused { .. }) => "unauthenticated",
            _ => "error",
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            CallError::Api(e) => write!(f, "{e}"),
            CallError::Http(e) => write!(f, "{e}"),
            CallError::Token(e) => write!(f, "{e}"),
        }
    }
}

pub struct PostmasterCheck {
    cfg: PostmasterConfig,
    board: Arc<SignalBoard>,
    /// `Err`: the key file could not be read (said on every run, so a fixed file is picked up
    /// by the next reload).
    tokens: Result<TokenSource, String>,
}

impl PostmasterCheck {
    pub fn new(cfg: PostmasterConfig, board: Arc<SignalBoard>) -> PostmasterCheck {
        // Listing domains needs the wider scope; statistics and compliance only the read-only one.
        let scope = if cfg.domains.is_empty() {
            format!("{} {}", api::SCOPE_TRAFFIC, api::SCOPE_DOMAINS)
        } else {
            api::SCOPE_TRAFFIC.to_string()
        };
        let tokens = match (&cfg.credentials_file, &cfg.oauth2) {
            (Some(file), _) => std::fs::read_to_string(file)
                .map_err(|e| format!("{}: {e}", file.display()))
                .and_then(|text| {
                    jwt::ServiceAccount::from_json(&text)
                        .map_err(|e| format!("{}: {e}", file.display()))
                })
                .map(|account| {
                    TokenSource::service_account(
                        account,
                        &scope,
                        cfg.token_url.clone(),
                        cfg.ca_file.clone(),
                    )
                }),
            (None, Some(o)) => {
                let mut o = o.clone();
                o.scope.get_or_insert(scope);
                Ok(TokenSource::new(o))
            }
            (None, None) => Err("no credentials".into()),
        };
        PostmasterCheck { cfg, board, tokens }
    }

    fn timeout(&self) -> Duration {
        self.cfg.timeout.get()
    }

    /// One API call: the body of a 2xx answer.
    async fn call(&self, req: &ApiRequest) -> Result<Vec<u8>, CallError> {
        let tokens = self
            .tokens
            .as_ref()
            .map_err(|e| CallError::Http(e.clone()))?;
        let token = tokens
            .token(self.timeout())
            .await
            .map_err(CallError::Token)?;
        let base = self.cfg.base_url.trim_end_matches('/');
        let target = Target::parse(&format!("{base}{}", req.path)).map_err(CallError::Http)?;
        let addr = http_client::address(&target)
            .await
            .map_err(|e| CallError::Http(e.to_string()))?;
        let mut headers = vec![
            ("authorization", format!("Bearer {}", token.expose())),
            ("accept", "application/json".to_string()),
        ];
        if req.body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        let (status, body) = http_client::send(http_client::Request {
            method: req.method.clone(),
            target: &target,
            addr,
            headers,
            body: req.body.clone().unwrap_or_default().into_bytes(),
            ca_file: self.cfg.ca_file.clone(),
            timeout: self.timeout(),
            max_body: api::MAX_BODY,
        })
        .await
        .map_err(|e| CallError::Http(e.to_string()))?;
        if let Err(e) = api::classify(status, None, &body) {
            if matches!(e, ApiError::Unauthenticated { .. }) {
                tokens.invalidate().await;
            }
            return Err(CallError::Api(e));
        }
        Ok(body)
    }

    /// The domains to query: configured, or listed by the API (at most `max_domains`).
    async fn domains(&self) -> Result<Vec<String>, CallError> {
        if !self.cfg.domains.is_empty() {
            return Ok(self.cfg.domains.clone());
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..api::MAX_PAGES {
            let body = self.call(&api::list_domains(token.as_deref())).await?;
            let page = api::parse_domains(&body).map_err(CallError::Api)?;
            // A domain listed with permission NONE would only answer 403.
            out.extend(
                page.domains
                    .into_iter()
                    .filter(|d| d.permission != api::Permission::NoAccess)
                    .map(|d| d.name),
            );
            token = page.next_page_token;
            if token.is_none() || out.len() >= self.cfg.max_domains {
                break;
            }
        }
        out.sort();
        out.dedup();
        if out.len() > self.cfg.max_domains {
            tracing::warn!(
                listed = out.len(),
                max_domains = self.cfg.max_domains,
                "Postmaster Tools lists more domains than postmaster.max_domains; the rest are not exported"
            );
            out.truncate(self.cfg.max_domains);
        }
        Ok(out)
    }

    /// Every page of `query`, merged.
    async fn stats(&self, query: &StatsQuery) -> Result<api::StatsPage, CallError> {
        let mut all = api::StatsPage::default();
        let mut token: Option<String> = None;
        for _ in 0..api::MAX_PAGES {
            let body = self.call(&query.request(token.as_deref())).await?;
            let page = query.parse(&body).map_err(CallError::Api)?;
            token = page.next_page_token.clone();
            all.absorb(page);
            if token.is_none() {
                break;
            }
        }
        if all.out_of_range > 0 {
            tracing::warn!(
                domain = query.domain(),
                values = all.out_of_range,
                "Postmaster Tools gave rates outside 0..1; they are not exported"
            );
        }
        Ok(all)
    }

    /// Queries and exports one domain; its label sets go into `kept`.
    async fn domain(
        &self,
        m: &SignalMetrics,
        domain: &str,
        today: Date,
        kept: &mut Kept,
    ) -> Result<Polled, CallError> {
        let end = Date::from_days(today.days() - 1);
        let start = Date::from_days(today.days() - i64::from(self.cfg.days));
        let bad = |e: api::BadRequest| CallError::Http(e.to_string());
        let query = StatsQuery::new(domain, start, end, Metric::daily()).map_err(bad)?;
        let page = self.stats(&query).await?;
        let newest = page
            .days
            .iter()
            .rev()
            .find(|(_, d)| !d.values.is_empty())
            .map(|(day, d)| (*day, d.clone()));
        if let Some((day, stats)) = &newest {
            let ids: Vec<Metric> = stats
                .feedback_loop_ids()
                .iter()
                .take(api::MAX_FEEDBACK_LOOPS)
                .map(|id| Metric::FeedbackLoopSpamRate(id.clone()))
                .collect();
            let loops = if ids.is_empty() {
                None
            } else {
                let q = StatsQuery::new(domain, *day, *day, ids).map_err(bad)?;
                Some(self.stats(&q).await?)
            };
            let fbl = loops.as_ref().and_then(|p| p.days.get(day)).and_then(|d| {
                d.feedback_loop_spam_rates()
                    .into_iter()
                    .map(|(_, r)| r)
                    .reduce(f64::max)
            });
            record_day(m, domain, *day, stats, fbl, kept);
        }
        let mut polled = Polled {
            has_data: newest.is_some(),
            says: newest.as_ref().map(|(day, d)| day_summary(*day, d)),
            bad: newest
                .as_ref()
                .and_then(|(_, d)| d.spam_rate())
                .is_some_and(|r| r >= 0.001),
        };
        let body = self
            .call(&api::compliance_status(domain).map_err(bad)?)
            .await?;
        let status = api::parse_compliance(&body).map_err(CallError::Api)?;
        if let Some(data) = status.effective() {
            let mut rows: Vec<(String, ComplianceState)> = data
                .rows
                .iter()
                .map(|r| (r.requirement.to_string(), r.state))
                .collect();
            for (name, v) in [
                ("one_click_unsubscribe", &data.one_click_unsubscribe),
                ("honor_unsubscribe", &data.honor_unsubscribe),
            ] {
                if let Some(v) = v
                    && !rows.iter().any(|(r, _)| r == name)
                {
                    rows.push((name.to_string(), v.state));
                }
            }
            let unmet: Vec<&str> = rows
                .iter()
                .filter(|(_, s)| *s == ComplianceState::NeedsWork)
                .map(|(r, _)| r.as_str())
                .collect();
            if !unmet.is_empty() {
                polled.bad = true;
                let text = format!("needs work: {}", unmet.join(", "));
                polled.says = Some(match polled.says.take() {
                    Some(s) => format!("{s}; {text}"),
                    None => text,
                });
            }
            for (req, state) in rows {
                let met = match state {
                    ComplianceState::Compliant => 1,
                    ComplianceState::NeedsWork => 0,
                    _ => continue,
                };
                m.pm_requirement.with_label_values(&[domain, &req]).set(met);
                kept.requirements.insert(vec![domain.to_string(), req]);
            }
        }
        Ok(polled)
    }
}

/// What one domain's poll gave, for the state and the landing page.
struct Polled {
    has_data: bool,
    says: Option<String>,
    /// Needs attention: a spam rate from 0.1%, a requirement needing work.
    bad: bool,
}

/// One line of what Gmail says of a day.
fn day_summary(day: Date, d: &DayStats) -> String {
    let pct = |r: f64| format!("{:.2}%", r * 100.0);
    let mut parts = vec![day.to_string()];
    if let Some(r) = d.spam_rate() {
        parts.push(format!("spam rate {}", pct(r)));
    }
    for t in AuthType::ALL {
        if let Some(r) = d.auth_success_rate(t) {
            parts.push(format!("{} {}", t.as_str().to_uppercase(), pct(r)));
        }
    }
    if let Some(r) = d.tls_rate(Direction::Inbound) {
        parts.push(format!("TLS {}", pct(r)));
    }
    if let Some(r) = d.rate(&Metric::DeliveryErrorRate(ErrorFilter::All)) {
        parts.push(format!("delivery errors {}", pct(r)));
    }
    parts.join(", ")
}

/// The label sets a run set, per family (or group of families with the same labels).
#[derive(Default)]
struct Kept {
    spam: HashSet<Vec<String>>,
    tls: HashSet<Vec<String>>,
    day: HashSet<Vec<String>>,
    auth: HashSet<Vec<String>>,
    errors: HashSet<Vec<String>>,
    fbl: HashSet<Vec<String>>,
    requirements: HashSet<Vec<String>>,
}

/// Sets the gauges of `domain` from its newest day with data.
fn record_day(
    m: &SignalMetrics,
    domain: &str,
    day: Date,
    d: &DayStats,
    fbl: Option<f64>,
    kept: &mut Kept,
) {
    let l = [domain];
    let this = || vec![domain.to_string()];
    kept.day.insert(this());
    m.pm_data_day
        .with_label_values(&l)
        .set(day.days() as f64 * 86_400.0);
    // A rate the newest day does not carry is dropped (not left from an older day).
    if let Some(r) = d.spam_rate() {
        m.pm_spam_rate.with_label_values(&l).set(r);
        kept.spam.insert(this());
    }
    if let Some(r) = d.tls_rate(Direction::Inbound) {
        m.pm_tls_rate.with_label_values(&l).set(r);
        kept.tls.insert(this());
    }
    if let Some(r) = fbl {
        m.pm_feedback_loop_spam_rate.with_label_values(&l).set(r);
        kept.fbl.insert(vec![domain.to_string()]);
    }
    for t in AuthType::ALL {
        if let Some(r) = d.auth_success_rate(t) {
            m.pm_auth_rate
                .with_label_values(&[domain, t.as_str()])
                .set(r);
            kept.auth
                .insert(vec![domain.to_string(), t.as_str().to_string()]);
        }
    }
    let class = |t: ErrorType| match t {
        ErrorType::Reject => "permanent",
        ErrorType::TempFail => "temporary",
    };
    let mut errors: Vec<(&str, &str, f64)> = Vec::new();
    if let Some(r) = d.rate(&Metric::DeliveryErrorRate(ErrorFilter::All)) {
        errors.push(("all", "all", r));
    }
    for t in ErrorType::ALL {
        if let Some(r) = d.rate(&Metric::DeliveryErrorRate(ErrorFilter::Type(t))) {
            errors.push((class(t), "all", r));
        }
    }
    for (reason, r) in d.delivery_error_rates() {
        errors.push((class(reason.error_type()), reason.as_str(), r));
    }
    for (class, kind, r) in errors {
        m.pm_delivery_error_rate
            .with_label_values(&[domain, class, kind])
            .set(r);
        kept.errors.insert(vec![
            domain.to_string(),
            class.to_string(),
            kind.to_string(),
        ]);
    }
}

fn line(at: f64, state: &'static str, bad: bool, says: String) -> SignalLine {
    SignalLine {
        at,
        state,
        bad,
        says,
    }
}

impl Check for PostmasterCheck {
    fn name(&self) -> &'static str {
        "postmaster"
    }

    fn interval(&self) -> Duration {
        self.cfg.interval.get()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            let m = &ctx.metrics.signals;
            let domains = self.domains().await.map_err(|e| {
                self.board.failed("Gmail", ctx.clock.unix(), e.state());
                // Listing failed: the state of the domains last listed (none yet: "all").
                let mut subjects = m.subjects("pm_state");
                if subjects.is_empty() {
                    subjects.push("all".into());
                }
                for d in &subjects {
                    SignalMetrics::set_state(&m.pm_state, &[d], e.state());
                }
                CheckError(format!("cannot list the domains: {e}"))
            })?;
            let today = Date::from_unix(ctx.clock.unix().max(0.0) as u64);
            let mut kept = Kept::default();
            let mut failures = Vec::new();
            let (mut with_data, mut stopped) = (0, false);
            let at = ctx.clock.unix();
            let mut lines = Vec::new();
            // Domains whose values stay as they were: failed, without data, or not polled.
            let mut carried: HashSet<String> = domains.iter().cloned().collect();
            for domain in &domains {
                if stopped || ctx.shutdown.is_cancelled() {
                    break;
                }
                let state = match self.domain(m, domain, today, &mut kept).await {
                    Ok(p) => {
                        let state = if p.has_data {
                            with_data += 1;
                            carried.remove(domain);
                            "ok"
                        } else {
                            "no_data"
                        };
                        let says = p.says.unwrap_or_else(|| {
                            "no data in the last days (too little mail to Gmail)".into()
                        });
                        lines.push((domain.clone(), line(at, state, p.bad, says)));
                        state
                    }
                    Err(e) => {
                        lines.push((domain.clone(), line(at, e.state(), true, e.to_string())));
                        tracing::warn!(domain = %domain, state = e.state(), error = %e, "Postmaster Tools");
                        failures.push(format!("{domain}: {e}"));
                        // A rate limit or a token that cannot be had holds for every domain.
                        stopped = e.state() == "rate_limited" || matches!(e, CallError::Token(_));
                        e.state()
                    }
                };
                SignalMetrics::set_state(&m.pm_state, &[domain], state);
            }
            let states = domains
                .iter()
                .flat_map(|d| {
                    crate::metrics::signals::STATES.map(|s| vec![d.clone(), s.to_string()])
                })
                .collect();
            m.keep_only("pm_state", &[&m.pm_state], states, &|_| false);
            // Label sets of domains no longer listed, and values the newest day no longer
            // carries, go; a failed domain's or one without new data stay as they were.
            let carry = |labels: &[String]| labels.first().is_some_and(|d| carried.contains(d));
            m.keep_only("pm_spam", &[&m.pm_spam_rate], kept.spam, &carry);
            m.keep_only("pm_tls", &[&m.pm_tls_rate], kept.tls, &carry);
            m.keep_only("pm_day", &[&m.pm_data_day], kept.day, &carry);
            m.keep_only("pm_fbl", &[&m.pm_feedback_loop_spam_rate], kept.fbl, &carry);
            m.keep_only("pm_auth", &[&m.pm_auth_rate], kept.auth, &carry);
            m.keep_only(
                "pm_errors",
                &[&m.pm_delivery_error_rate],
                kept.errors,
                &carry,
            );
            let failed: HashSet<&str> = lines
                .iter()
                .filter(|(_, l)| l.state != "ok" && l.state != "no_data")
                .map(|(d, _)| d.as_str())
                .collect();
            let polled: HashSet<&str> = lines.iter().map(|(d, _)| d.as_str()).collect();
            // Compliance is asked of every domain polled; only a failed or unpolled one keeps it.
            let keep_compliance = |labels: &[String]| {
                labels.first().is_some_and(|d| {
                    domains.contains(d)
                        && (failed.contains(d.as_str()) || !polled.contains(d.as_str()))
                })
            };
            m.keep_only(
                "pm_requirements",
                &[&m.pm_requirement],
                kept.requirements,
                &keep_compliance,
            );
            self.board.set("Gmail", lines, 0);
            let line = format!("{} domains, {with_data} with data", domains.len());
            if failures.is_empty() {
                Ok(line)
            } else {
                Err(CheckError(format!("{line}; {}", failures.join("; "))))
            }
        })
    }
}
