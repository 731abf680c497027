//! The ledger: which reports were already counted, so each is counted once across restarts,
//! duplicate deliveries and a crash between counting and moving its file.
//!
//! A report is identified by its kind, reporter, report id and policy domain. The ledger also
//! remembers the files it has dealt with (by source, name, size and modification time) with
//! their outcome, so a file left in place is not read again and a file whose move was
//! interrupted is only moved on the next scan. It lives in the state directory as one JSON
//! file, replaced atomically; [`super::pipeline::commit`] saves it *before* counting, so a crash
//! can at worst lose a report's counts, never count it twice. Report identities are forgotten
//! after the retention window; file entries when their file is gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Report;
use crate::state::{StateDir, StateError};

/// The ledger's file name in the state directory.
pub const FILE_NAME: &str = "reports-ledger.json";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "report ledger {path} is unreadable ({reason}); move it away to start a new one (reports still in the sources would then be counted again)"
    )]
    Corrupt { path: String, reason: String },
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    /// At least one report was read from it.
    Processed,
    /// No report could be read from it.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i128,
    pub outcome: FileOutcome,
    /// Unix seconds it was first dealt with.
    pub seen: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    version: u32,
    /// Report identity -> Unix seconds it was first counted.
    reports: BTreeMap<String, u64>,
    /// `source/file name` -> what happened to it.
    files: BTreeMap<String, FileEntry>,
}

/// The identity of a report: kind, reporter, report id and policy domain. Reports without an
/// id are identified by their date range instead.
pub fn report_key(report: &Report) -> String {
    let (kind, reporter, id, domain, begin, end) = match report {
        Report::Feedback(f) => return format!("arf|{}|{}", f.reporter, f.id),
        // A DSN: its reporting MTA and its own Message-ID (else the envelope id and arrival).
        Report::Bounce(d) => {
            let id = d.message_id.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    d.envid.as_deref().unwrap_or(""),
                    d.arrival.unwrap_or(0)
                )
            });
            return format!("dsn|{}|{}", d.reporting_mta, id.trim());
        }
        Report::Dmarc(r) => (
            "dmarc",
            &r.org_name,
            &r.report_id,
            r.policy.domain.as_str(),
            r.begin,
            r.end,
        ),
        Report::Tls(r) => (
            "tlsrpt",
            &r.organization_name,
            &r.report_id,
            r.domain(),
            r.begin,
            r.end,
        ),
    };
    let id = id.trim();
    let id = if id.is_empty() {
        format!("{begin}-{end}")
    } else {
        id.to_string()
    };
    format!(
        "{kind}|{}|{id}|{domain}",
        reporter.trim().to_ascii_lowercase()
    )
}

/// The key of a file of a source.
pub fn file_key(source: &str, name: &str) -> String {
    format!("{source}/{name}")
}

impl Ledger {
    /// Loads the ledger; an empty one when the file does not exist yet.
    pub fn load(state: &StateDir) -> Result<Ledger, LedgerError> {
        match state.read(FILE_NAME)? {
            None => Ok(Ledger {
                version: VERSION,
                ..Ledger::default()
            }),
            Some(bytes) => {
                let corrupt = |reason: String| LedgerError::Corrupt {
                    path: state.path().join(FILE_NAME).display().to_string(),
                    reason,
                };
                let l: Ledger =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if l.version != VERSION {
                    return Err(corrupt(format!("unknown version {}", l.version)));
                }
                Ok(l)
            }
        }
    }

    /// Replaces the file atomically.
    pub fn save(&self, state: &StateDir) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec(self).map_err(|e| LedgerError::Corrupt {
            path: FILE_NAME.into(),
            reason: e.to_string(),
        })?;
        state.write_atomic(FILE_NAME, &bytes)?;
        Ok(())
    }

    /// Records a report as counted; `false` when it already was.
    pub fn insert_report(&mut self, key: String, now: u64) -> bool {
        match self.reports.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(now);
                true
            }
        }
    }

    pub fn contains_report(&self, key: &str) -> bool {
        self.reports.contains_key(key)
    }

    pub fn file(&self, key: &str) -> Option<&FileEntry> {
        self.files.get(key)
    }

    pub fn remember_file(&mut self, key: String, entry: FileEntry) {
        self.files.insert(key, entry);
    }

    pub fn forget_file(&mut self, key: &str) {
        self.files.remove(key);
    }

    /// Forgets the files of `source` that are not in `present` (their keys).
    pub fn forget_files_except(
        &mut self,
        source: &str,
        present: &std::collections::HashSet<String>,
    ) {
        let prefix = format!("{source}/");
        self.files
            .retain(|k, _| !k.starts_with(&prefix) || present.contains(k));
    }

    /// Forgets report identities first counted more than `retention_secs` before `now`.
    pub fn prune(&mut self, now: u64, retention_secs: u64) -> usize {
        let before = self.reports.len();
        self.reports
            .retain(|_, seen| now.saturating_sub(*seen) <= retention_secs);
        before - self.reports.len()
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::model::{AggregateReport, PolicyPublished};

    fn dir(tag: &str) -> StateDir {
        let d = std::env::temp_dir().join(format!("dx-ledger-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        StateDir::open(&d).unwrap()
    }

    fn report(id: &str) -> Report {
        Report::Dmarc(AggregateReport {
            org_name: "Google.com ".into(),
            report_id: id.into(),
            policy: PolicyPublished {
                domain: "example.com".into(),
                ..Default::default()
            },
            begin: 10,
            end: 20,
            ..Default::default()
        })
    }

    #[test]
    fn keys_identify_reporter_id_and_domain() {
        assert_eq!(report_key(&report("42")), "dmarc|google.com|42|example.com");
        assert_eq!(
            report_key(&report(" ")),
            "dmarc|google.com|10-20|example.com"
        );
    }

    #[test]
    fn survives_a_restart_and_forgets_after_retention() {
        let state = dir("restart");
        let mut l = Ledger::load(&state).unwrap();
        assert!(l.insert_report(report_key(&report("1")), 1000));
        assert!(!l.insert_report(report_key(&report("1")), 1001));
        l.remember_file(
            file_key("inbox", "a.xml"),
            FileEntry {
                size: 3,
                mtime: 7,
                outcome: FileOutcome::Processed,
                seen: 1000,
            },
        );
        l.save(&state).unwrap();
        let mut again = Ledger::load(&state).unwrap();
        assert!(again.contains_report(&report_key(&report("1"))));
        assert_eq!(
            again.file("inbox/a.xml").map(|e| e.outcome),
            Some(FileOutcome::Processed)
        );
        assert_eq!(again.prune(1000 + 50, 100), 0);
        assert_eq!(again.prune(1000 + 101, 100), 1);
        assert!(again.is_empty());
        again.forget_files_except("inbox", &Default::default());
        assert!(again.file("inbox/a.xml").is_none());
        std::fs::remove_dir_all(state.path()).unwrap();
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_not_a_fresh_start() {
        let state = dir("corrupt");
        state.write_atomic(FILE_NAME, b"{not json").unwrap();
        let e = Ledger::load(&state).unwrap_err().to_string();
        assert!(
            e.contains("unreadable") && e.contains("move it away"),
            "{e}"
        );
        std::fs::remove_dir_all(state.path()).unwrap();
    }
}
