//! Why an input (or one part of it: an archive member, an e-mail attachment) gave no report.
//!
//! Each error says what was wrong and where (line and byte offset for XML, line and column
//! for JSON, the decompressed offset for a broken gzip stream), and maps to one of a small
//! fixed set of reasons for the `reason` label of
//! `deliverability_dmarc_report_errors_total`.

use std::fmt;
use std::io;

/// What went wrong with one input or part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("empty input")]
    Empty,
    #[error(
        "unrecognised content (starts with {0}); expected DMARC XML, TLS-RPT JSON, gzip, zip or an e-mail message"
    )]
    Unrecognised(String),
    #[error(
        "more than {limit} bytes after decompression; refused (raise reports.max_decompressed_bytes if this report is genuine)"
    )]
    TooLarge { limit: u64 },
    #[error(
        "archive has {found} members, more than the limit of {limit} (reports.max_archive_members)"
    )]
    TooManyMembers { found: u64, limit: u32 },
    #[error("more than {limit} records in one report (reports.max_records)")]
    TooManyRecords { limit: u64 },
    #[error("containers nested more than {0} deep")]
    TooDeep(usize),
    #[error("gzip stream broken after {offset} decompressed bytes: {message}")]
    Gzip { offset: u64, message: String },
    #[error("zip archive unreadable: {0}")]
    Zip(String),
    #[error("e-mail message unreadable: {0}")]
    Mail(String),
    #[error("no report attachment in the e-mail message")]
    NoAttachment,
    #[error("XML error at line {line}, byte {offset}: {message}")]
    Xml {
        line: u64,
        offset: u64,
        message: String,
    },
    #[error(
        "refused at line {line}, byte {offset}: {what} (DMARC reports never need one; it would allow entity expansion)"
    )]
    Entities {
        line: u64,
        offset: u64,
        what: String,
    },
    #[error("not a DMARC aggregate report: the root element is <{0}>, expected <feedback>")]
    NotFeedback(String),
    #[error("invalid report at line {line}: {message}")]
    InvalidReport { line: u64, message: String },
    #[error("JSON error at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a TLS report: {0}")]
    NotTlsReport(String),
}

/// The `reason` label values, fixed so a stranger's file cannot create series.
pub const REASONS: &[&str] = &[
    "io",
    "not_a_report",
    "too_large",
    "too_many_members",
    "too_many_records",
    "corrupt_archive",
    "malformed_xml",
    "entities",
    "malformed_json",
    "invalid_report",
];

impl ReadError {
    /// The `reason` label (one of [`REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Io(_) => "io",
            ReadError::Empty
            | ReadError::Unrecognised(_)
            | ReadError::NoAttachment
            | ReadError::NotFeedback(_)
            | ReadError::NotTlsReport(_) => "not_a_report",
            ReadError::TooLarge { .. } => "too_large",
            ReadError::TooManyMembers { .. } | ReadError::TooDeep(_) => "too_many_members",
            ReadError::TooManyRecords { .. } => "too_many_records",
            ReadError::Gzip { .. } | ReadError::Zip(_) | ReadError::Mail(_) => "corrupt_archive",
            ReadError::Xml { .. } => "malformed_xml",
            ReadError::Entities { .. } => "entities",
            ReadError::Json { .. } => "malformed_json",
            ReadError::InvalidReport { .. } => "invalid_report",
        }
    }
}

/// A [`ReadError`] with the part it happened in: `file.zip`, `file.zip: member a.xml`,
/// `message.eml: attachment r.zip: member a.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    pub part: String,
    pub error: ReadError,
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.error)
    }
}

impl std::error::Error for PartError {}

/// The [`ReadError`] an I/O error carries, when it came from one of the readers that wrap
/// the input (the decompression budget and the gzip and zip error mappers of
/// [`unpack`](super::unpack)): the parsers that read through them give it back unchanged.
pub fn inner_read_error(e: &io::Error) -> Option<ReadError> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<ReadError>())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_in_the_fixed_set() {
        let all = [
            ReadError::Io("x".into()),
            ReadError::Empty,
            ReadError::TooLarge { limit: 1 },
            ReadError::TooManyMembers { found: 2, limit: 1 },
            ReadError::TooManyRecords { limit: 1 },
            ReadError::Gzip {
                offset: 0,
                message: "x".into(),
            },
            ReadError::Xml {
                line: 1,
                offset: 0,
                message: "x".into(),
            },
            ReadError::Json {
                line: 1,
                column: 1,
                message: "x".into(),
            },
            ReadError::InvalidReport {
                line: 1,
                message: "x".into(),
            },
        ];
        for e in all {
            assert!(REASONS.contains(&e.reason()), "{e:?}");
        }
        let e = PartError {
            part: "a.zip: member b.xml".into(),
            error: ReadError::Xml {
                line: 3,
                offset: 40,
                message: "unexpected end".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "a.zip: member b.xml: XML error at line 3, byte 40: unexpected end"
        );
    }

    #[test]
    fn inner_read_error_only_for_a_wrapped_read_error() {
        let wrapped = io::Error::other(ReadError::TooLarge { limit: 7 });
        assert_eq!(
            inner_read_error(&wrapped),
            Some(ReadError::TooLarge { limit: 7 })
        );
        assert_eq!(inner_read_error(&io::Error::other("disk on fire")), None);
        let plain = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(inner_read_error(&plain), None);
    }
}
