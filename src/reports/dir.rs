//! The `dir` report source: a directory scanned on the check's interval.
//!
//! Each regular file (hidden files, starting with `.`, are skipped, so a writer can create
//! `.name.tmp` and rename it when complete; so are empty files changed in the last minute) is
//! read once. With `move_files` it is then moved
//! to `processed/` (at least one report read) or `failed/` (none); without, it stays and the
//! ledger remembers it by name, size and modification time.
//!
//! The order of one batch of files is what makes counting exactly-once: read the files, record
//! the files themselves in the ledger, [`commit`] their reports (record them too, save the
//! ledger atomically, and only then count), and only then move. After a crash anywhere in
//! between, the next scan finds the reports already in the ledger (nothing is counted twice)
//! and finishes the moves.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use super::count::Counting;
use super::ledger::{FileEntry, FileOutcome, Ledger, LedgerError, file_key};
use super::pipeline::{Origin, ScanSummary, commit, count_errors};
use super::unpack::{Limits, read_path};
use crate::config::ReportDir;
use crate::state::StateDir;

/// Files read between two saves of the ledger.
const BATCH: usize = 32;
/// Empty files younger than this are left alone (a writer may be about to fill them).
const EMPTY_FILE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A configured directory source.
#[derive(Debug, Clone)]
pub struct DirSource {
    pub name: String,
    pub path: PathBuf,
    pub move_files: bool,
}

impl From<&ReportDir> for DirSource {
    fn from(d: &ReportDir) -> DirSource {
        DirSource {
            name: d.name.clone(),
            path: d.path.clone(),
            move_files: d.move_files,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("report source {source_name}: cannot list {path}: {reason}")]
    List {
        source_name: String,
        path: String,
        reason: String,
    },
    #[error("report source {source_name}: {error}")]
    Ledger {
        source_name: String,
        error: LedgerError,
    },
}

/// What a scan works with.
pub struct ScanContext<'a> {
    pub state: &'a StateDir,
    pub counting: Counting<'a>,
    pub limits: Limits,
    /// Unix seconds, for the ledger.
    pub now: u64,
    pub retention_secs: u64,
    /// Stop taking new files after this (the run's deadline approaches) or when cancelled.
    pub stop_at: Instant,
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

struct Listed {
    path: PathBuf,
    name: String,
    size: u64,
    mtime: i128,
}

impl DirSource {
    fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().ok();
            // An empty file changed a moment ago is most likely still being written.
            let fresh = modified
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < EMPTY_FILE_GRACE);
            if meta.len() == 0 && fresh {
                continue;
            }
            let mtime = modified
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            out.push(Listed {
                path: entry.path(),
                name,
                size: meta.len(),
                mtime,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Moves a file into `processed/` or `failed/`, never overwriting.
    fn settle(&self, file: &Path, name: &str, outcome: FileOutcome) -> io::Result<()> {
        let sub = match outcome {
            FileOutcome::Processed => "processed",
            FileOutcome::Failed => "failed",
        };
        let dir = self.path.join(sub);
        fs::create_dir_all(&dir)?;
        let mut target = dir.join(name);
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{name}.{n}"));
            n += 1;
            if n > 10_000 {
                return Err(io::Error::other("too many files of that name"));
            }
        }
        fs::rename(file, &target)
    }

    /// Reads every new file once, counting its new reports.
    pub fn scan(
        &self,
        ledger: &mut Ledger,
        cx: &ScanContext<'_>,
    ) -> Result<ScanSummary, ScanError> {
        let files = self.list().map_err(|e| ScanError::List {
            source_name: self.name.clone(),
            path: self.path.display().to_string(),
            reason: crate::config::values::io_reason(&e),
        })?;
        let present: HashSet<String> = files
            .iter()
            .map(|f| file_key(&self.name, &f.name))
            .collect();
        ledger.forget_files_except(&self.name, &present);
        ledger.prune(cx.now, cx.retention_secs);
        let mut summary = ScanSummary::default();
        let mut batch: Vec<(Listed, Option<super::unpack::Outcome>, FileOutcome)> = Vec::new();
        let mut iter = files.into_iter().peekable();
        while let Some(f) = iter.next() {
            if (cx.cancelled)() || Instant::now() >= cx.stop_at {
                summary.deferred = 1 + iter.count();
                break;
            }
            let key = file_key(&self.name, &f.name);
            match ledger.file(&key) {
                Some(e) if e.size == f.size && e.mtime == f.mtime => {
                    // Dealt with before; only an interrupted move may be left to do.
                    let outcome = e.outcome;
                    if self.move_files {
                        batch.push((f, None, outcome));
                    }
                }
                _ => {
                    let outcome = read_path(&f.path, &f.name, &cx.limits, cx.counting.sources);
                    let result = if outcome.reports.is_empty() {
                        FileOutcome::Failed
                    } else {
                        FileOutcome::Processed
                    };
                    ledger.remember_file(
                        key,
                        FileEntry {
                            size: f.size,
                            mtime: f.mtime,
                            outcome: result,
                            seen: cx.now,
                        },
                    );
                    batch.push((f, Some(outcome), result));
                }
            }
            if batch.len() >= BATCH {
                self.finish_batch(ledger, cx, &mut batch, &mut summary)?;
            }
        }
        self.finish_batch(ledger, cx, &mut batch, &mut summary)?;
        Ok(summary)
    }

    /// Commits the batch's reports (the ledger with them and the batch's files in it is saved
    /// before they are counted), counts its errors, then moves its files.
    fn finish_batch(
        &self,
        ledger: &mut Ledger,
        cx: &ScanContext<'_>,
        batch: &mut Vec<(Listed, Option<super::unpack::Outcome>, FileOutcome)>,
        summary: &mut ScanSummary,
    ) -> Result<(), ScanError> {
        if batch.is_empty() {
            return Ok(());
        }
        let found = batch.iter().flat_map(|(f, outcome, _)| {
            let origin = Origin::File(&f.name);
            outcome
                .iter()
                .flat_map(move |o| o.reports.iter().map(move |r| (origin, r)))
        });
        commit(
            ledger,
            cx.state,
            cx.now,
            &cx.counting,
            &self.name,
            found,
            summary,
        )
        .map_err(|error| ScanError::Ledger {
            source_name: self.name.clone(),
            error,
        })?;
        for (f, outcome, result) in batch.iter() {
            let Some(o) = outcome else { continue };
            summary.files += 1;
            if *result == FileOutcome::Failed {
                summary.failed += 1;
            }
            count_errors(
                &cx.counting,
                &self.name,
                Origin::File(&f.name),
                &o.errors,
                summary,
            );
            for w in &o.warnings {
                tracing::info!(source = %self.name, file = %f.name, warning = %w, "report repaired");
            }
        }
        if self.move_files {
            let mut moved_any = false;
            for (f, _, result) in batch.iter() {
                match self.settle(&f.path, &f.name, *result) {
                    Ok(()) => {
                        summary.moved += 1;
                        moved_any = true;
                        ledger.forget_file(&file_key(&self.name, &f.name));
                    }
                    Err(e) => {
                        summary.move_errors += 1;
                        tracing::warn!(source = %self.name, file = %f.name, error = %e, "cannot move report file; it stays and is not read again");
                    }
                }
            }
            if moved_any {
                ledger.save(cx.state).map_err(|error| ScanError::Ledger {
                    source_name: self.name.clone(),
                    error,
                })?;
            }
        }
        batch.clear();
        Ok(())
    }
}
