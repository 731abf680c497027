//! The one report pipeline both sources feed: a source lists its files or messages, reads them
//! with [`super::unpack`] and files them away afterwards; in between, [`commit`] takes a batch's
//! reports through the ledger steps that make counting exactly-once. It records every report
//! in the [`Ledger`] (one already there, or twice in the batch, is a duplicate), saves the
//! ledger atomically, and only then counts the new ones into the metrics. A crash before the
//! save forgets the batch, which is read again; a crash after it finds the reports already
//! recorded, so the worst a crash can do is lose a report's counts, never count it twice. The
//! source files the batch away only after [`commit`] returned, for the same reason.
//!
//! [`count_errors`] counts the parts of one file or message that gave no report, and
//! [`ScanSummary`] is what a scan of either source did.

use super::count::Counting;
use super::error::PartError;
use super::ledger::{Ledger, LedgerError, report_key};
use super::unpack::Found;
use crate::state::StateDir;

/// Serialises every reader of the ledger (the scheduled scans, a run that outlived its
/// deadline, the previous configuration's check during a reload, the https source's POSTs),
/// so the ledger is loaded, updated and saved by one at a time.
pub static SCAN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    /// Files (or messages) read in this scan.
    pub files: usize,
    /// New reports counted.
    pub counted: usize,
    /// Reports already in the ledger (re-deliveries), not counted again.
    pub duplicates: usize,
    /// New reports for unconfigured domains with `unknown_domains = "ignore"`.
    pub ignored: usize,
    /// Files that gave no report.
    pub failed: usize,
    /// Parts (files, members, attachments) that gave an error.
    pub errors: usize,
    /// Files moved to processed/ or failed/ (messages to the processed or error folder).
    pub moved: usize,
    /// Files left for the next scan because time ran out or shutdown began.
    pub deferred: usize,
    /// Files that could not be moved (they stay, remembered by the ledger).
    pub move_errors: usize,
}

impl ScanSummary {
    pub fn add(&mut self, o: &ScanSummary) {
        self.files += o.files;
        self.counted += o.counted;
        self.duplicates += o.duplicates;
        self.ignored += o.ignored;
        self.failed += o.failed;
        self.errors += o.errors;
        self.moved += o.moved;
        self.deferred += o.deferred;
        self.move_errors += o.move_errors;
    }
}

/// Where a report or an error was found, for the log: a file of a directory source or a
/// message (by UID) of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    File(&'a str),
    Uid(u32),
}

/// Logs with the source and the origin's field (`file` or `uid`) first.
macro_rules! log_at {
    ($level:ident, $source:expr, $origin:expr, $($rest:tt)*) => {
        match $origin {
            Origin::File(file) => tracing::$level!(source = %$source, file = %file, $($rest)*),
            Origin::Uid(uid) => tracing::$level!(source = %$source, uid, $($rest)*),
        }
    };
}

/// Commits one batch of reports of `source`: records each in the ledger, saves the ledger,
/// then counts the new ones; the rest are duplicates. Adds to `counted`, `ignored` and
/// `duplicates` of `summary`. When the ledger cannot be saved nothing is counted: the batch's
/// files or messages must then not be filed away, so they are read again.
pub fn commit<'f>(
    ledger: &mut Ledger,
    state: &StateDir,
    now: u64,
    counting: &Counting<'_>,
    source: &str,
    found: impl IntoIterator<Item = (Origin<'f>, &'f Found)>,
    summary: &mut ScanSummary,
) -> Result<(), LedgerError> {
    // Decide what is new before saving, so a crash after the save can only lose counts.
    let mut new = Vec::new();
    for (origin, found) in found {
        if ledger.insert_report(report_key(&found.report), now) {
            new.push(&found.report);
        } else {
            summary.duplicates += 1;
            log_at!(info, source, origin, part = %found.part, "report already counted; not counted again");
        }
    }
    ledger.save(state)?;
    for report in new {
        if counting.count(report) {
            summary.counted += 1;
        } else {
            summary.ignored += 1;
        }
    }
    Ok(())
}

/// Counts and logs the parts of one file or message that gave no report, adding them to
/// `errors` of `summary`.
pub fn count_errors(
    counting: &Counting<'_>,
    source: &str,
    origin: Origin<'_>,
    errors: &[PartError],
    summary: &mut ScanSummary,
) {
    for e in errors {
        summary.errors += 1;
        counting.count_error(source, &e.error);
        log_at!(warn, source, origin, reason = e.error.reason(), error = %e, "report unreadable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnknownDomains;
    use crate::metrics::Metrics;
    use crate::reports::ReadError;
    use crate::reports::ledger::FILE_NAME;
    use crate::reports::model::{AggregateReport, PolicyPublished, Report};
    use crate::reports::names::{Domains, SourceNames, reporter_label};

    fn state(tag: &str) -> StateDir {
        let d = std::env::temp_dir().join(format!("dx-pipeline-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        StateDir::open(&d).unwrap()
    }

    fn found(id: &str, domain: &str) -> Found {
        Found {
            part: format!("{id}.xml"),
            report: Report::Dmarc(AggregateReport {
                org_name: "Reporter".into(),
                email: "dmarc@reporter.example".into(),
                report_id: id.into(),
                policy: PolicyPublished {
                    domain: domain.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    /// `deliverability_dmarc_reports_total` of example.com from the test reporter.
    fn reports_counted(m: &Metrics) -> u64 {
        let reporter = reporter_label("dmarc@reporter.example", "Reporter");
        m.reports
            .reports
            .with_label_values(&["example.com", &reporter])
            .get()
    }

    struct Fixture {
        metrics: Metrics,
        domains: Domains,
        sources: SourceNames,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                metrics: Metrics::new(),
                domains: Domains::new(["example.com"], UnknownDomains::Ignore),
                sources: SourceNames::default(),
            }
        }

        fn counting(&self) -> Counting<'_> {
            Counting {
                metrics: &self.metrics.reports,
                domains: &self.domains,
                sources: &self.sources,
                board: None,
                bounces: None,
            }
        }
    }

    #[test]
    fn new_reports_are_saved_then_counted_and_never_counted_again() {
        let state = state("once");
        let fx = Fixture::new();
        let a = found("a", "example.com");
        let a_again = found("a", "example.com");
        let unknown = found("u", "unconfigured.example");
        let mut ledger = Ledger::load(&state).unwrap();
        let mut summary = ScanSummary::default();
        let batch = [
            (Origin::File("one.xml"), &a),
            (Origin::File("two.xml"), &a_again),
            (Origin::File("three.xml"), &unknown),
        ];
        commit(
            &mut ledger,
            &state,
            1000,
            &fx.counting(),
            "inbox",
            batch,
            &mut summary,
        )
        .unwrap();
        assert_eq!(
            (summary.counted, summary.ignored, summary.duplicates),
            (1, 1, 1)
        );
        assert_eq!(reports_counted(&fx.metrics), 1);
        // Both new reports were saved, the ignored one too: it is not looked at again.
        let saved = Ledger::load(&state).unwrap();
        assert!(saved.contains_report(&report_key(&a.report)));
        assert!(saved.contains_report(&report_key(&unknown.report)));

        // Delivered again (another file, or a message after a restart): a duplicate.
        let mut ledger = Ledger::load(&state).unwrap();
        let mut again = ScanSummary::default();
        commit(
            &mut ledger,
            &state,
            2000,
            &fx.counting(),
            "mailbox",
            [(Origin::Uid(7), &a)],
            &mut again,
        )
        .unwrap();
        assert_eq!((again.counted, again.duplicates), (0, 1));
        assert_eq!(reports_counted(&fx.metrics), 1);
        std::fs::remove_dir_all(state.path()).unwrap();
    }

    #[test]
    fn nothing_is_counted_when_the_ledger_cannot_be_saved() {
        let state = state("unsaved");
        let fx = Fixture::new();
        let a = found("a", "example.com");
        let mut ledger = Ledger::load(&state).unwrap();
        // The state directory vanished: the save fails.
        std::fs::remove_dir_all(state.path()).unwrap();
        let mut summary = ScanSummary::default();
        let result = commit(
            &mut ledger,
            &state,
            1000,
            &fx.counting(),
            "inbox",
            [(Origin::File("one.xml"), &a)],
            &mut summary,
        );
        assert!(result.is_err());
        assert_eq!(summary.counted, 0);
        assert_eq!(reports_counted(&fx.metrics), 0);
        assert!(!state.path().join(FILE_NAME).exists());
    }

    #[test]
    fn part_errors_are_counted_by_source_and_reason() {
        let fx = Fixture::new();
        let mut summary = ScanSummary::default();
        let errors = [
            PartError {
                part: "a.zip".into(),
                error: ReadError::TooLarge { limit: 1 },
            },
            PartError {
                part: "b.zip".into(),
                error: ReadError::TooLarge { limit: 1 },
            },
        ];
        count_errors(
            &fx.counting(),
            "inbox",
            Origin::Uid(3),
            &errors,
            &mut summary,
        );
        assert_eq!(summary.errors, 2);
        assert_eq!(
            fx.metrics
                .reports
                .errors
                .with_label_values(&["inbox", "too_large"])
                .get(),
            2
        );
    }
}
