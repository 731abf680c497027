//! DMARC aggregate (rua) and SMTP TLS (TLS-RPT) reports turned into metrics, each report
//! counted exactly once.
//!
//! How it fits together: a source (a directory, [`dir`], or a mailbox, [`imap_source`]) hands
//! one file's or message's bytes to [`unpack`], which sniffs the container (gzip, zip, e-mail,
//! mbox), enforces the limits, and streams each report to [`dmarc`] or [`tlsrpt`]. The DMARC
//! reader tallies its records as they stream by, per named source ([`names`]) and alignment
//! ([`align`]), so a report of any size reduces to a few numbers. The [`ledger`] then decides
//! which reports are new, is saved, and only then [`count`] adds them to the metrics of
//! [`crate::metrics::reports`]. The [`check`] runs all of that on the configured interval;
//! [`cli`] is the `parse-report` command.
//!
//! An `https` source ([`https_source`]) receives TLS-RPT reports POSTed by reporting MTAs.
//!
//! All sources hand their batches to the one [`pipeline`] for those ledger steps (record new
//! report keys, save, count); a source only lists, reads, and files away afterwards.

pub mod align;
pub mod check;
pub mod cli;
pub mod count;
mod decode;
pub mod dir;
pub mod dmarc;
pub mod dsn;
pub mod error;
pub mod feedback;
pub mod https_source;
pub mod imap_source;
pub mod ledger;
pub mod model;
pub mod names;
pub mod pipeline;
pub mod tlsrpt;
pub mod unpack;

pub use check::ReportsCheck;
pub use error::{PartError, ReadError};
pub use model::{AggregateReport, Report, TlsReport};
pub use unpack::{Found, Limits, Outcome, read_bytes, read_path, read_stream};

#[cfg(test)]
mod tests;
