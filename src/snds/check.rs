//! The `snds` check: on every interval, fetches the account's SNDS data file (the newest day)
//! and IP status file with the access key, and exports per IP the filter verdict, complaint
//! band, trap hits, volumes and blocks ([`crate::metrics::signals`]).
//!
//! Failures are states, not zeros: a refused key (SNDS answers an HTML page), a 429 or a
//! server error set `deliverability_snds_state` and keep the last values; a day without data
//! (an empty file) is `no_data`. The key travels only in the request's query string: it is
//! never in a log line, an error or a label.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::parse::{self, DataRow, IpStatusRange, SndsError};
use crate::config::SndsConfig;
use crate::http_client::{self, HttpError, Target};
use crate::metrics::signals::SignalMetrics;
use crate::schedule::{BoxFuture, Check, CheckError, Context};
use crate::status::{SignalBoard, SignalLine};

/// The landing page's lines: the IPs with something to say (not green, trap hits, blocked),
/// and how many had nothing.
fn board_lines(
    at: f64,
    rows: &[DataRow],
    ranges: &[IpStatusRange],
) -> (Vec<(String, SignalLine)>, usize) {
    let mut says: BTreeMap<std::net::Ipv4Addr, Vec<String>> = BTreeMap::new();
    let mut quiet = 0;
    for r in rows {
        let mut parts = Vec::new();
        if r.filter.as_str() != "green" {
            parts.push(r.filter.as_str().to_string());
        }
        if let Some(c) = r.complaint.filter(|c| c.fraction > 0.001) {
            parts.push(format!("complaints up to {:.1}%", c.fraction * 100.0));
        }
        if r.trap_hits > 0 {
            parts.push(format!("{} trap hits", r.trap_hits));
        }
        if parts.is_empty() {
            quiet += 1;
        } else {
            parts.push(format!("{} recipients", r.message_recipients));
            says.entry(r.ip).or_default().extend(parts);
        }
    }
    for range in ranges.iter().filter(|r| r.blocked) {
        let text = format!("blocked ({})", range.reason.as_str());
        if range.first == range.last {
            says.entry(range.first).or_default().push(text);
        } else {
            let key = range.first;
            says.entry(key)
                .or_default()
                .push(format!("{text} with the range up to {}", range.last));
        }
    }
    let lines = says
        .into_iter()
        .map(|(ip, parts)| {
            (
                ip.to_string(),
                SignalLine {
                    at,
                    state: "ok",
                    bad: true,
                    says: parts.join(", "),
                },
            )
        })
        .collect();
    (lines, quiet)
}

/// Why a file was not read, as a state and a line for the log.
#[derive(Debug)]
struct Failure {
    state: &'static str,
    why: String,
}

pub struct SndsCheck {
    cfg: SndsConfig,
    board: Arc<SignalBoard>,
}

impl SndsCheck {
    pub fn new(cfg: SndsConfig, board: Arc<SignalBoard>) -> SndsCheck {
        SndsCheck { cfg, board }
    }

    /// GETs `file` (`data.aspx` or `ipStatus.aspx`) with the key; the body as text.
    async fn fetch(&self, file: &str) -> Result<String, Failure> {
        let key = self.cfg.key.as_ref().map(|k| k.expose()).unwrap_or("");
        let base = self.cfg.base_url.trim_end_matches('/');
        let mut target = Target::parse(&format!("{base}/{file}")).map_err(|e| Failure {
            state: "error",
            why: e,
        })?;
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("key", key)
            .finish();
        target.path = format!("{}?{query}", target.path);
        let failed = |e: HttpError| Failure {
            state: "error",
            why: format!("{file}: {e}"),
        };
        let addr = http_client::address(&target).await.map_err(failed)?;
        let (status, body) = http_client::send(http_client::Request {
            method: hyper::Method::GET,
            target: &target,
            addr,
            headers: vec![("accept", "text/csv, text/plain".into())],
            body: Vec::new(),
            ca_file: self.cfg.ca_file.clone(),
            timeout: self.cfg.timeout.get(),
            max_body: parse::MAX_BYTES,
        })
        .await
        .map_err(failed)?;
        let state = match status {
            200 => None,
            401 | 403 => Some("denied"),
            404 => Some("not_found"),
            429 => Some("rate_limited"),
            _ => Some("error"),
        };
        if let Some(state) = state {
            return Err(Failure {
                state,
                why: format!("{file}: HTTP status {status}"),
            });
        }
        String::from_utf8(body).map_err(|_| Failure {
            state: "error",
            why: format!("{file}: the answer is not UTF-8 text"),
        })
    }

    fn read_error(file: &str, e: SndsError) -> Failure {
        Failure {
            state: if e == SndsError::NotCsv {
                "denied"
            } else {
                "error"
            },
            why: format!("{file}: {e}"),
        }
    }

    /// Exports the newest row of each IP (at most `max_ips` IPs); how many IPs.
    fn record_data(&self, m: &SignalMetrics, rows: &[DataRow]) -> usize {
        let mut newest: BTreeMap<std::net::Ipv4Addr, &DataRow> = BTreeMap::new();
        for r in rows {
            let e = newest.entry(r.ip).or_insert(r);
            if r.activity_end > e.activity_end {
                *e = r;
            }
        }
        let mut ips = HashSet::new();
        let mut filters = HashSet::new();
        if newest.len() > self.cfg.max_ips {
            tracing::warn!(
                ips = newest.len(),
                max_ips = self.cfg.max_ips,
                "SNDS has data for more IPs than snds.max_ips; the rest are not exported"
            );
        }
        for (ip, r) in newest.into_iter().take(self.cfg.max_ips) {
            let ip = ip.to_string();
            for f in ["green", "yellow", "red", "unknown"] {
                m.snds_filter
                    .with_label_values(&[&ip, f])
                    .set(i64::from(r.filter.as_str() == f));
                filters.insert(vec![ip.clone(), f.to_string()]);
            }
            let l = [ip.as_str()];
            match r.complaint {
                Some(c) => m.snds_complaint_rate.with_label_values(&l).set(c.fraction),
                None => {
                    let _ = m.snds_complaint_rate.remove_label_values(&l);
                }
            }
            m.snds_trap_hits
                .with_label_values(&l)
                .set(r.trap_hits as f64);
            m.snds_rcpt
                .with_label_values(&l)
                .set(r.rcpt_commands as f64);
            m.snds_data
                .with_label_values(&l)
                .set(r.data_commands as f64);
            m.snds_recipients
                .with_label_values(&l)
                .set(r.message_recipients as f64);
            m.snds_data_day
                .with_label_values(&l)
                .set(r.activity_end as f64);
            ips.insert(vec![ip]);
        }
        let n = ips.len();
        m.keep_only(
            "snds_ip",
            &[
                &m.snds_complaint_rate,
                &m.snds_trap_hits,
                &m.snds_rcpt,
                &m.snds_data,
                &m.snds_recipients,
                &m.snds_data_day,
            ],
            ips,
            &|_| false,
        );
        m.keep_only("snds_filter", &[&m.snds_filter], filters, &|_| false);
        n
    }

    /// Exports every IP of the listed ranges (within `max_ips`) as blocked or not; how many
    /// are blocked.
    fn record_status(&self, m: &SignalMetrics, ranges: &[IpStatusRange]) -> usize {
        let mut left = self.cfg.max_ips;
        let mut sets = HashSet::new();
        let mut blocked = 0;
        for r in ranges {
            for ip in parse::ips_in_range(r.first, r.last, left) {
                left -= 1;
                let ip = ip.to_string();
                let reason = r.reason.as_str();
                m.snds_blocked
                    .with_label_values(&[&ip, reason])
                    .set(i64::from(r.blocked));
                blocked += usize::from(r.blocked);
                sets.insert(vec![ip, reason.to_string()]);
            }
        }
        let listed: u64 = ranges.iter().map(|r| r.ip_count()).sum();
        if listed > self.cfg.max_ips as u64 {
            tracing::warn!(
                listed,
                max_ips = self.cfg.max_ips,
                "SNDS lists more IPs than snds.max_ips; the rest are not exported"
            );
        }
        m.keep_only("snds_blocked", &[&m.snds_blocked], sets, &|_| false);
        blocked
    }
}

impl Check for SndsCheck {
    fn name(&self) -> &'static str {
        "snds"
    }

    fn interval(&self) -> Duration {
        self.cfg.interval.get()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            let m = &ctx.metrics.signals;
            let data = match self.fetch("data.aspx").await {
                Ok(text) => parse::parse_data(&text).map_err(|e| Self::read_error("data.aspx", e)),
                Err(f) => Err(f),
            };
            let status = match self.fetch("ipStatus.aspx").await {
                Ok(text) => {
                    parse::parse_ip_status(&text).map_err(|e| Self::read_error("ipStatus.aspx", e))
                }
                Err(f) => Err(f),
            };
            let mut line = Vec::new();
            let mut failure = None;
            match &data {
                Ok(d) => {
                    for b in d.bad_rows.iter().take(5) {
                        tracing::warn!(file = "data.aspx", row = %b, "SNDS row not read");
                    }
                    // A day without data keeps the last day's values (no_data says why).
                    let ips = if d.rows.is_empty() {
                        0
                    } else {
                        self.record_data(m, &d.rows)
                    };
                    line.push(format!("{ips} IPs with data"));
                    if !d.bad_rows.is_empty() {
                        line.push(format!("{} rows unreadable", d.bad_rows.len()));
                    }
                }
                Err(f) => failure = Some(f),
            }
            match &status {
                Ok(ranges) => {
                    let blocked = self.record_status(m, ranges);
                    line.push(format!(
                        "{} ranges listed, {blocked} IPs blocked",
                        ranges.len()
                    ));
                }
                Err(f) => failure = failure.or(Some(f)),
            }
            let state = match (failure, &data) {
                (Some(f), _) => f.state,
                // Every row unreadable (a changed format) is an error, not a quiet day.
                (None, Ok(d)) if d.rows.is_empty() && !d.bad_rows.is_empty() => "error",
                (None, Ok(d)) if d.rows.is_empty() => "no_data",
                _ => "ok",
            };
            SignalMetrics::set_state(&m.snds_state, &[], state);
            let at = ctx.clock.unix();
            match (&data, &status) {
                (Ok(d), Ok(ranges)) if !d.rows.is_empty() => {
                    let (lines, quiet) = board_lines(at, &d.rows, ranges);
                    self.board.set("Outlook.com", lines, quiet);
                }
                (Ok(_), Ok(_)) => {}
                _ => self.board.failed("Outlook.com", at, state),
            }
            let errors: Vec<&str> = [&data.as_ref().err(), &status.as_ref().err()]
                .into_iter()
                .flatten()
                .map(|f| f.why.as_str())
                .collect();
            if errors.is_empty() && state == "error" {
                Err(CheckError(format!(
                    "error: no row of data.aspx could be read ({})",
                    line.join(", ")
                )))
            } else if errors.is_empty() {
                Ok(line.join(", "))
            } else {
                Err(CheckError(format!("{state}: {}", errors.join("; "))))
            }
        })
    }
}
