//! The `reports` check: on every interval, scans each `dir` and `imap` report source and counts
//! the new reports into the report metrics.
//!
//! The work is blocking (file system, decompression, parsing), so it runs on tokio's blocking
//! pool. One process-wide lock serialises scans, so a run that outlived its deadline, or the
//! previous configuration's check during a reload, can never read the same file at the same
//! time as another; the ledger is loaded from the state directory at the start of every run
//! for the same reason. A run stops taking new files shortly before its deadline or when
//! shutdown begins; the rest waits for the next run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::count::Counting;
use super::dir::{DirSource, ScanContext};
use super::error::REASONS;
use super::imap_source::{ImapReportSource, ImapScan};
use super::ledger::Ledger;
use super::names::{Domains, SourceNames};
use super::pipeline::{SCAN_LOCK, ScanSummary};
use super::unpack::Limits;
use crate::config::{Config, ReportSource, UnknownDomains};
use crate::schedule::{BoxFuture, Check, CheckError, Context};

/// The scheduled report reader.
#[derive(Clone)]
pub struct ReportsCheck {
    interval: Duration,
    sources: Vec<DirSource>,
    imap_sources: Vec<ImapReportSource>,
    endpoints: Vec<crate::config::ReportEndpoint>,
    source_map: Vec<crate::config::SourceMapEntry>,
    domains: Vec<String>,
    unknown: UnknownDomains,
    limits: Limits,
    label_limit: usize,
    retention: Duration,
    /// The landing page's recent reports.
    board: Option<Arc<crate::status::ReportBoard>>,
}

impl ReportsCheck {
    /// The check for `config`, when `[reports]` is enabled and has sources.
    pub fn from_config(config: &Config) -> Option<ReportsCheck> {
        let r = &config.reports;
        if !r.enabled {
            return None;
        }
        let mut sources = Vec::new();
        let mut imap_sources = Vec::new();
        let mut endpoints = Vec::new();
        for s in &r.sources {
            match s {
                ReportSource::Dir(d) => sources.push(DirSource::from(d)),
                ReportSource::Imap(m) => imap_sources.push(ImapReportSource::from(m)),
                ReportSource::Https(e) => endpoints.push(e.clone()),
            }
        }
        if sources.is_empty() && imap_sources.is_empty() && endpoints.is_empty() {
            return None;
        }
        Some(ReportsCheck {
            interval: r.interval.get(),
            sources,
            imap_sources,
            endpoints,
            source_map: r.source_map.clone(),
            domains: config.domains.iter().map(|d| d.name.clone()).collect(),
            unknown: r.unknown_domains,
            limits: Limits::from_config(r),
            label_limit: r.label_limit,
            retention: r.ledger_retention.get(),
            board: None,
        })
    }

    /// Shows the reports read on the landing page.
    pub fn with_board(mut self, board: Arc<crate::status::ReportBoard>) -> ReportsCheck {
        self.board = Some(board);
        self
    }

    /// Scans every source once (blocking).
    fn scan_all(&self, ctx: &Context, stop_at: Instant) -> Result<ScanSummary, CheckError> {
        let _guard = SCAN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let metrics = &ctx.metrics.reports;
        metrics.set_label_limit(self.label_limit);
        for s in &self.sources {
            metrics.init_source(&s.name, REASONS);
        }
        let mut ledger = Ledger::load(&ctx.state).map_err(|e| CheckError(e.to_string()))?;
        let sources = SourceNames::new(&self.source_map, &ctx.observed.sending_ips());
        let domains = Domains::new(self.domains.iter().map(String::as_str), self.unknown);
        let token = ctx.shutdown.clone();
        let cancelled = move || token.is_cancelled();
        let mut total = ScanSummary::default();
        let mut failures = Vec::new();
        for s in &self.sources {
            let cx = ScanContext {
                state: &ctx.state,
                counting: Counting {
                    metrics,
                    domains: &domains,
                    sources: &sources,
                    board: self.board.as_deref().map(|b| (b, ctx.clock.unix())),
                    bounces: Some(&ctx.observed),
                },
                limits: self.limits,
                now: ctx.clock.unix() as u64,
                retention_secs: self.retention.as_secs(),
                stop_at,
                cancelled: &cancelled,
            };
            match s.scan(&mut ledger, &cx) {
                Ok(summary) => total.add(&summary),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(total)
        } else {
            Err(CheckError(failures.join("; ")))
        }
    }
}

impl ReportsCheck {
    /// Reads every IMAP source once, adding to `summary`; failures are collected per source.
    async fn scan_imap(
        &self,
        ctx: &Context,
        stop_at: Instant,
        summary: &mut ScanSummary,
        failures: &mut Vec<String>,
    ) {
        if self.imap_sources.is_empty() {
            return;
        }
        let metrics = &ctx.metrics.reports;
        metrics.set_label_limit(self.label_limit);
        let sources = SourceNames::new(&self.source_map, &ctx.observed.sending_ips());
        let domains = Domains::new(self.domains.iter().map(String::as_str), self.unknown);
        let count = |f: &mut dyn FnMut(&Counting<'_>)| {
            let _guard = SCAN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            f(&Counting {
                metrics,
                domains: &domains,
                sources: &sources,
                board: self.board.as_deref().map(|b| (b, ctx.clock.unix())),
                bounces: Some(&ctx.observed),
            });
        };
        for s in &self.imap_sources {
            metrics.init_source(&s.name, REASONS);
            let cx = ImapScan {
                state: &ctx.state,
                limits: self.limits,
                now: ctx.clock.unix() as u64,
                retention_secs: self.retention.as_secs(),
                stop_at,
                count: &count,
                sources: &sources,
            };
            let scan = tokio::select! {
                r = s.scan(&cx) => r,
                _ = ctx.shutdown.cancelled() => return,
            };
            match scan {
                Ok(one) => summary.add(&one),
                Err(e) => {
                    tracing::warn!(source = %s.name, error = %e, "cannot read the report mailbox");
                    failures.push(format!("{}: {e}", s.name));
                }
            }
        }
    }
}

/// One line for the landing page and the log.
pub fn describe(s: &ScanSummary) -> String {
    let mut line = format!(
        "{} files read: {} reports counted, {} duplicates, {} files without a report",
        s.files, s.counted, s.duplicates, s.failed
    );
    if s.ignored > 0 {
        line.push_str(&format!(", {} for unconfigured domains ignored", s.ignored));
    }
    if s.deferred > 0 {
        line.push_str(&format!(", {} files left for the next run", s.deferred));
    }
    if s.move_errors > 0 {
        line.push_str(&format!(", {} files could not be moved", s.move_errors));
    }
    line
}

impl Check for ReportsCheck {
    fn name(&self) -> &'static str {
        "reports"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    /// The `https` sources listen beside the runs, until shutdown or reload.
    fn background(&self, ctx: &Context) -> Vec<BoxFuture<'static, ()>> {
        self.endpoints
            .iter()
            .map(|e| {
                let endpoint = Arc::new(super::https_source::Endpoint {
                    config: e.clone(),
                    limits: self.limits,
                    source_map: self.source_map.clone(),
                    domains: self.domains.clone(),
                    unknown: self.unknown,
                    label_limit: self.label_limit,
                    retention_secs: self.retention.as_secs(),
                    board: self.board.clone(),
                    peers: Default::default(),
                    commits: Arc::new(tokio::sync::Semaphore::new(super::https_source::COMMITS)),
                });
                Box::pin(endpoint.serve(ctx.clone())) as BoxFuture<'static, ()>
            })
            .collect()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            // Leave a tenth of the deadline for the last batch to finish.
            let stop_at = Instant::now() + self.deadline().mul_f64(0.9);
            let this = Arc::new(self.clone());
            let ctx2 = ctx.clone();
            let mut summary = tokio::task::spawn_blocking(move || this.scan_all(&ctx2, stop_at))
                .await
                .map_err(|e| CheckError(format!("report scan stopped: {e}")))??;
            let mut failures = Vec::new();
            self.scan_imap(ctx, stop_at, &mut summary, &mut failures)
                .await;
            if failures.is_empty() {
                Ok(describe(&summary))
            } else {
                Err(CheckError(format!(
                    "{}; {}",
                    failures.join("; "),
                    describe(&summary)
                )))
            }
        })
    }
}
