//! The `imap` report source: reads report e-mails from a mailbox folder, counts every report in
//! them once, and files each message away.
//!
//! On every run of the reports check: log in, select the folder, list the messages not yet dealt
//! with (all of them when a `processed_folder` is configured, since those are moved out; else the
//! unseen ones, which are marked `\Seen` after reading), and fetch them in small batches, never
//! a message larger than `reports.max_decompressed_bytes`. Each batch goes through the same
//! [`commit`] as the directory source's: the reports' identities go into the ledger and the
//! ledger is saved, then the new ones are counted; only then are the messages moved (to
//! `processed_folder`, or `error_folder` when they held no report, with [`imap::file_away`]) or
//! flagged. A crash between counting and moving leaves the messages in the folder; the next
//! run finds their reports in the ledger and only moves them. Reports arrive daily, so the
//! folder is polled on the check's interval rather than watched with IDLE.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::count::Counting;
use super::ledger::Ledger;
use super::pipeline::{Origin, ScanSummary, commit, count_errors};
use super::unpack::{Limits, Outcome, read_bytes};
use crate::config::ReportMailbox;
use crate::imap::{self, Endpoint, Filing, ImapError, ImapErrorKind, ImapSession, step};
use crate::state::StateDir;

/// Messages fetched per round trip.
const BATCH: usize = 16;

#[derive(Clone, Debug)]
pub struct ImapReportSource {
    pub name: String,
    pub endpoint: Endpoint,
    pub folder: String,
    pub processed_folder: Option<String>,
    pub error_folder: Option<String>,
    pub timeout: Duration,
}

impl From<&ReportMailbox> for ImapReportSource {
    fn from(m: &ReportMailbox) -> ImapReportSource {
        ImapReportSource {
            name: m.name.clone(),
            endpoint: Endpoint {
                host: m.host.clone(),
                port: m.port,
                tls: m.tls,
                username: m.username.clone(),
                secret: m.password.clone(),
                auth: m.auth,
                ca_file: m.ca_file.clone(),
                insecure_skip_verify: m.insecure_skip_verify,
            },
            folder: m.folder.clone(),
            processed_folder: m.processed_folder.clone(),
            error_folder: m.error_folder.clone(),
            timeout: m.timeout,
        }
    }
}

/// Runs a piece of counting work under the process-wide scan lock.
pub type CountUnderLock<'a> = dyn Fn(&mut dyn FnMut(&Counting<'_>)) + Sync + 'a;

/// What the IMAP scan needs from the check.
pub struct ImapScan<'a> {
    pub state: &'a StateDir,
    pub limits: Limits,
    pub now: u64,
    pub retention_secs: u64,
    pub stop_at: Instant,
    /// Parses and counts under the process-wide scan lock (blocking work).
    pub count: &'a CountUnderLock<'a>,
    pub sources: &'a super::names::SourceNames,
}

fn protocol(msg: String) -> ImapError {
    ImapError {
        kind: ImapErrorKind::Protocol,
        message: msg,
    }
}

impl ImapReportSource {
    pub async fn scan(&self, cx: &ImapScan<'_>) -> Result<ScanSummary, ImapError> {
        let limit = self.timeout;
        let mut s = imap::connect(&self.endpoint, limit).await?;
        let result = self.scan_session(&mut s, cx).await;
        let _ = tokio::time::timeout(limit, s.logout()).await;
        result
    }

    async fn scan_session(
        &self,
        s: &mut ImapSession,
        cx: &ImapScan<'_>,
    ) -> Result<ScanSummary, ImapError> {
        let limit = self.timeout;
        let caps = step("CAPABILITY", limit, s.capabilities()).await?;
        let filing = Filing::of(&caps);
        step("SELECT", limit, s.select(&self.folder)).await?;
        let query = if self.processed_folder.is_some() {
            "ALL"
        } else {
            "UNSEEN"
        };
        let mut uids: Vec<u32> = step("UID SEARCH", limit, s.uid_search(query))
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut summary = ScanSummary::default();
        for chunk in uids.chunks(BATCH) {
            if Instant::now() >= cx.stop_at {
                summary.deferred += uids.len() - summary.files;
                break;
            }
            let messages = self.fetch(s, chunk, cx.limits.max_bytes).await?;
            let limits = cx.limits;
            let sources = cx.sources.clone();
            let name = self.name.clone();
            // Parsing is CPU work: off the async threads.
            let parsed: Vec<(u32, Result<Outcome, u64>)> = tokio::task::spawn_blocking(move || {
                messages
                    .into_iter()
                    .map(|(uid, body)| {
                        (
                            uid,
                            body.map(|b| {
                                read_bytes(
                                    &format!("{name} message UID {uid}"),
                                    &b,
                                    &limits,
                                    &sources,
                                )
                            }),
                        )
                    })
                    .collect()
            })
            .await
            .map_err(|e| protocol(format!("report parsing stopped: {e}")))?;

            let mut processed = Vec::new();
            let mut failed = Vec::new();
            let mut error: Option<ImapError> = None;
            (cx.count)(&mut |counting: &Counting<'_>| {
                let mut ledger = match Ledger::load(cx.state) {
                    Ok(l) => l,
                    Err(e) => {
                        error = Some(protocol(e.to_string()));
                        return;
                    }
                };
                ledger.prune(cx.now, cx.retention_secs);
                let mut found = Vec::new();
                for (uid, p) in &parsed {
                    summary.files += 1;
                    match p {
                        Err(size) => {
                            summary.failed += 1;
                            summary.errors += 1;
                            counting
                                .metrics
                                .errors
                                .with_label_values(&[&self.name, "too_large"])
                                .inc();
                            tracing::warn!(source = %self.name, uid, size, limit = cx.limits.max_bytes, "report message larger than reports.max_decompressed_bytes; not read");
                            failed.push(*uid);
                        }
                        Ok(o) => {
                            found.extend(o.reports.iter().map(|r| (Origin::Uid(*uid), r)));
                            count_errors(
                                counting,
                                &self.name,
                                Origin::Uid(*uid),
                                &o.errors,
                                &mut summary,
                            );
                            if o.reports.is_empty() {
                                summary.failed += 1;
                                failed.push(*uid);
                            } else {
                                processed.push(*uid);
                            }
                        }
                    }
                }
                if let Err(e) = commit(
                    &mut ledger,
                    cx.state,
                    cx.now,
                    counting,
                    &self.name,
                    found,
                    &mut summary,
                ) {
                    error = Some(protocol(e.to_string()));
                }
            });
            if let Some(e) = error {
                return Err(e);
            }
            summary.moved += self
                .file_away(s, &processed, self.processed_folder.as_deref(), filing)
                .await?;
            summary.moved += self
                .file_away(s, &failed, self.error_folder.as_deref(), filing)
                .await?;
        }
        Ok(summary)
    }

    /// Fetches messages; one over `max` bytes comes back as `Err(size)` without its body.
    async fn fetch(
        &self,
        s: &mut ImapSession,
        uids: &[u32],
        max: u64,
    ) -> Result<Vec<(u32, Result<Vec<u8>, u64>)>, ImapError> {
        let limit = self.timeout;
        let set = imap::uid_set(uids);
        let sizes: Vec<(u32, u64)> = {
            let stream = step("UID FETCH", limit, s.uid_fetch(&set, "(UID RFC822.SIZE)")).await?;
            let all = tokio::time::timeout(limit, stream.collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError {
                    kind: ImapErrorKind::Timeout,
                    message: "UID FETCH sizes: no answer in time".into(),
                })?;
            all.into_iter()
                .filter_map(Result::ok)
                .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
                .collect()
        };
        let mut out = Vec::new();
        let small: Vec<u32> = sizes
            .iter()
            .filter(|(_, n)| *n <= max)
            .map(|(u, _)| *u)
            .collect();
        out.extend(
            sizes
                .iter()
                .filter(|(_, n)| *n > max)
                .map(|(u, n)| (*u, Err(*n))),
        );
        if !small.is_empty() {
            let set = imap::uid_set(&small);
            let stream = step("UID FETCH", limit, s.uid_fetch(&set, "(UID BODY.PEEK[])")).await?;
            // Large bodies take longer than one command's timeout: allow per megabyte.
            let total: u64 = sizes
                .iter()
                .filter(|(_, n)| *n <= max)
                .map(|(_, n)| n)
                .sum();
            let allow = limit + Duration::from_secs(total / 1_000_000);
            let all = tokio::time::timeout(allow, stream.collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError {
                    kind: ImapErrorKind::Timeout,
                    message: "UID FETCH bodies: no answer in time".into(),
                })?;
            for f in all {
                let f = f.map_err(|e| imap::command_error("UID FETCH", e))?;
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    out.push((uid, Ok(body.to_vec())));
                }
            }
        }
        Ok(out)
    }

    /// Moves messages to `folder`, or flags them `\Seen` when there is none. Returns how many
    /// were moved.
    async fn file_away(
        &self,
        s: &mut ImapSession,
        uids: &[u32],
        folder: Option<&str>,
        filing: Filing,
    ) -> Result<usize, ImapError> {
        if uids.is_empty() {
            return Ok(0);
        }
        let limit = self.timeout;
        match folder {
            Some(dest) => {
                imap::file_away(s, uids, Some(dest), filing, limit).await?;
                Ok(uids.len())
            }
            None => {
                let set = imap::uid_set(uids);
                let st = step(
                    "UID STORE",
                    limit,
                    s.uid_store(&set, "+FLAGS.SILENT (\\Seen)"),
                )
                .await?;
                let _ = tokio::time::timeout(limit, st.collect::<Vec<_>>()).await;
                Ok(0)
            }
        }
    }
}
