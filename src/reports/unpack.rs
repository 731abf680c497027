//! Finds the reports in one input, whatever it is wrapped in: `.xml`, `.json`, gzip, zip
//! (every member), an e-mail message (`.eml`, every attachment) or an mbox of them, nested up
//! to [`MAX_DEPTH`] deep. The content is sniffed from its first bytes, never taken from the
//! file name or Content-Type (GMX labels gzip as zip; Google sends `application/tlsrpt+gzip`).
//!
//! Everything an input makes the reader take in (the bytes read from it plus the bytes
//! produced by decompression) counts against one budget, `reports.max_decompressed_bytes`:
//! decompression is streamed and stops at the budget, whatever sizes an archive declares. XML
//! and gzip'd XML are streamed all the way to the parser; zip archives and e-mail messages are
//! held in memory, within the same budget.
//!
//! This is the entry point for every source: the directory source hands it a path, the
//! IMAP source (later) a message's bytes; either gets back an [`Outcome`] listing reports,
//! per-part errors and warnings, and the caller's ledger decides what is new.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::GzDecoder;

use super::align;
use super::dmarc;
pub use super::error::inner_read_error;
use super::error::{PartError, ReadError};
use super::model::{Report, TallyKey};
use super::names::SourceNames;
use super::tlsrpt;

mod mime;
use mime::{attachment_name, collect_leaves, is_candidate};

/// Containers nested deeper than this are refused (an e-mail holding a zip holding a gzip
/// holding the XML is three).
pub const MAX_DEPTH: usize = 5;
/// Bytes looked at to tell what an input is.
const SNIFF: usize = 512;

/// The limits every input is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Budget of bytes read plus bytes decompressed, per input.
    pub max_bytes: u64,
    /// Records per DMARC report (and policies per TLS report).
    pub max_records: u64,
    /// Members per zip archive, and report-like parts per e-mail message.
    pub max_members: u32,
}

impl Limits {
    pub fn from_config(r: &crate::config::ReportsConfig) -> Limits {
        Limits {
            max_bytes: r.max_decompressed_bytes,
            max_records: r.max_records,
            max_members: r.max_archive_members,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&crate::config::ReportsConfig::default())
    }
}

/// A report found in an input, with the part it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub part: String,
    pub report: Report,
}

/// Everything one input gave.
#[derive(Debug, Default)]
pub struct Outcome {
    pub reports: Vec<Found>,
    pub errors: Vec<PartError>,
    /// Repairs and skipped parts, each starting with the part's name.
    pub warnings: Vec<String>,
}

/// Reads the file at `path`; `name` is used in messages.
pub fn read_path(path: &Path, name: &str, limits: &Limits, sources: &SourceNames) -> Outcome {
    match std::fs::File::open(path) {
        Ok(f) => read_stream(name, f, limits, sources),
        Err(e) => Outcome {
            errors: vec![PartError {
                part: name.to_string(),
                error: ReadError::Io(crate::config::values::io_reason(&e)),
            }],
            ..Outcome::default()
        },
    }
}

/// Reads one message's or file's bytes (what an IMAP source fetches).
pub fn read_bytes(name: &str, data: &[u8], limits: &Limits, sources: &SourceNames) -> Outcome {
    read_stream(name, data, limits, sources)
}

/// Reads any input stream.
pub fn read_stream<R: Read>(
    name: &str,
    input: R,
    limits: &Limits,
    sources: &SourceNames,
) -> Outcome {
    let budget = Budget::new(limits.max_bytes);
    let mut u = Unpacker {
        limits,
        sources,
        budget: budget.clone(),
        out: Outcome::default(),
    };
    let input = BufReader::with_capacity(
        64 * 1024,
        Limited {
            inner: input,
            budget,
        },
    );
    if let Err(error) = u.read(name, Box::new(input), 0) {
        u.out.errors.push(PartError {
            part: name.to_string(),
            error,
        });
    }
    u.out
}

/// The shared byte budget of one input.
#[derive(Clone)]
struct Budget {
    left: Rc<Cell<u64>>,
    limit: u64,
}

impl Budget {
    fn new(limit: u64) -> Budget {
        Budget {
            left: Rc::new(Cell::new(limit)),
            limit,
        }
    }
}

/// Takes every byte read through it from the budget; fails once it is spent.
struct Limited<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.left.get();
        // Ask for at most one byte more than allowed, so a stream exactly at the limit passes.
        let want = buf
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > left {
            self.budget.left.set(0);
            return Err(io::Error::other(ReadError::TooLarge {
                limit: self.budget.limit,
            }));
        }
        self.budget.left.set(left - n as u64);
        Ok(n)
    }
}

/// Turns the decompressor's own errors into [`ReadError::Gzip`] with the offset reached;
/// errors from further down (the budget, the file) pass through unchanged.
struct GzipErrors<R> {
    inner: R,
    produced: u64,
}

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            Err(e) if inner_read_error(&e).is_some() => Err(e),
            Err(e) => {
                let message = match e.kind() {
                    io::ErrorKind::UnexpectedEof => "truncated stream".to_string(),
                    _ => e.to_string(),
                };
                Err(io::Error::other(ReadError::Gzip {
                    offset: self.produced,
                    message,
                }))
            }
        }
    }
}

/// Turns a zip member's read errors into [`ReadError::Zip`].
struct ZipErrors<R> {
    inner: R,
}

impl<R: Read> Read for ZipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if inner_read_error(&e).is_some() {
                e
            } else {
                io::Error::other(ReadError::Zip(e.to_string()))
            }
        })
    }
}

fn io_error(e: io::Error) -> ReadError {
    inner_read_error(&e).unwrap_or_else(|| ReadError::Io(e.to_string()))
}

/// What the first bytes say an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zip,
    Xml,
    Json,
    Mail,
    Mbox,
}

fn sniff(head: &[u8]) -> Result<Kind, ReadError> {
    if head.is_empty() {
        return Err(ReadError::Empty);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Kind::Gzip);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Kind::Zip);
    }
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Err(ReadError::Unrecognised(
            "a UTF-16 byte-order mark; only UTF-8 is supported".into(),
        ));
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    if text.starts_with(b"From ") {
        return Ok(Kind::Mbox);
    }
    let trimmed = text.trim_ascii_start();
    match trimmed.first() {
        Some(b'<') => return Ok(Kind::Xml),
        Some(b'{') => return Ok(Kind::Json),
        None => return Err(ReadError::Empty),
        _ => {}
    }
    if looks_like_header(text) {
        return Ok(Kind::Mail);
    }
    Err(ReadError::Unrecognised(preview(head)))
}

/// `Name: value` on the first line, as an RFC 5322 message starts.
fn looks_like_header(text: &[u8]) -> bool {
    let name_len = text
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && text.get(name_len) == Some(&b':')
}

fn preview(head: &[u8]) -> String {
    let n = head.len().min(8);
    let hex: Vec<String> = head[..n].iter().map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", hex.join(" "))
}

struct Unpacker<'a> {
    limits: &'a Limits,
    sources: &'a SourceNames,
    budget: Budget,
    out: Outcome,
}

impl Unpacker<'_> {
    /// Reads whatever `input` is. Errors of the input as a whole are returned; errors of
    /// inner parts (archive members, attachments) are recorded in `out`.
    fn read(
        &mut self,
        part: &str,
        mut input: Box<dyn BufRead + '_>,
        depth: usize,
    ) -> Result<(), ReadError> {
        if depth > MAX_DEPTH {
            return Err(ReadError::TooDeep(MAX_DEPTH));
        }
        let mut head = Vec::with_capacity(SNIFF);
        (&mut input)
            .take(SNIFF as u64)
            .read_to_end(&mut head)
            .map_err(io_error)?;
        let kind = sniff(&head)?;
        let input = Cursor::new(head).chain(input);
        match kind {
            Kind::Gzip => {
                let inner = GzipErrors {
                    inner: Limited {
                        inner: GzDecoder::new(input),
                        budget: self.budget.clone(),
                    },
                    produced: 0,
                };
                self.read(
                    part,
                    Box::new(BufReader::with_capacity(64 * 1024, inner)),
                    depth + 1,
                )
            }
            Kind::Zip => {
                let bytes = read_all(input)?;
                self.read_zip(part, bytes, depth)
            }
            Kind::Xml => self.read_xml(part, Box::new(BufReader::with_capacity(64 * 1024, input))),
            Kind::Json => {
                let report = tlsrpt::parse(BufReader::new(input), self.limits.max_records)?;
                self.found(part, Report::Tls(report));
                Ok(())
            }
            Kind::Mail => {
                let bytes = read_all(input)?;
                self.read_mail(part, &bytes, depth)
            }
            Kind::Mbox => {
                let bytes = read_all(input)?;
                self.read_mbox(part, &bytes, depth)
            }
        }
    }

    fn found(&mut self, part: &str, report: Report) {
        self.out.reports.push(Found {
            part: part.to_string(),
            report,
        });
    }

    fn read_xml(&mut self, part: &str, input: Box<dyn BufRead + '_>) -> Result<(), ReadError> {
        let sources = self.sources;
        let mut tallies: BTreeMap<TallyKey, u64> = BTreeMap::new();
        let mut on_record = |policy: &super::model::PolicyPublished, rec: &super::model::Record| {
            let from = if rec.header_from.is_empty() {
                policy.domain.as_str()
            } else {
                rec.header_from.as_str()
            };
            let ev = align::evaluate(rec, from, policy.adkim, policy.aspf);
            let key = TallyKey {
                source: sources.lookup(rec.source_ip),
                disposition: rec.disposition,
                dmarc_pass: ev.dmarc_pass(),
                spf_aligned: ev.spf_aligned,
                dkim_aligned: ev.dkim_aligned,
            };
            let n = tallies.entry(key).or_insert(0);
            *n = n.saturating_add(rec.count);
        };
        let parsed = dmarc::parse(input, self.limits.max_records, &mut on_record)?;
        let mut report = parsed.report;
        report.tallies = tallies;
        for w in parsed.warnings {
            self.out.warnings.push(format!("{part}: {w}"));
        }
        self.found(part, Report::Dmarc(report));
        Ok(())
    }

    fn read_zip(&mut self, part: &str, bytes: Vec<u8>, depth: usize) -> Result<(), ReadError> {
        let mut archive =
            zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReadError::Zip(e.to_string()))?;
        if archive.len() as u64 > u64::from(self.limits.max_members) {
            return Err(ReadError::TooManyMembers {
                found: archive.len() as u64,
                limit: self.limits.max_members,
            });
        }
        let mut any = false;
        for i in 0..archive.len() {
            let member = match archive.by_index(i) {
                Ok(m) => m,
                Err(e) => {
                    self.out.errors.push(PartError {
                        part: format!("{part}: member #{}", i + 1),
                        error: ReadError::Zip(e.to_string()),
                    });
                    continue;
                }
            };
            if member.is_dir() {
                continue;
            }
            any = true;
            let name = member
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| format!("#{}", i + 1));
            let member_part = format!("{part}: member {name}");
            let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(
                64 * 1024,
                ZipErrors {
                    inner: Limited {
                        inner: member,
                        budget: self.budget.clone(),
                    },
                },
            ));
            if let Err(error) = self.read(&member_part, reader, depth + 1) {
                let budget_spent = matches!(error, ReadError::TooLarge { .. });
                self.out.errors.push(PartError {
                    part: member_part,
                    error,
                });
                if budget_spent {
                    break;
                }
            }
        }
        if !any {
            return Err(ReadError::Zip("the archive has no files".into()));
        }
        Ok(())
    }

    fn read_mbox(&mut self, part: &str, bytes: &[u8], depth: usize) -> Result<(), ReadError> {
        let mut starts = vec![0usize];
        let mut at = 0;
        while let Some(i) = find(&bytes[at..], b"\nFrom ") {
            let line_start = at + i + 1;
            // mboxrd/mboxo: a message starts after an empty line (or at the very start).
            let blank_before =
                bytes[..line_start].ends_with(b"\n\n") || bytes[..line_start].ends_with(b"\n\r\n");
            if blank_before {
                starts.push(line_start);
            }
            at = line_start;
        }
        if starts.len() as u64 > u64::from(self.limits.max_members) {
            return Err(ReadError::TooManyMembers {
                found: starts.len() as u64,
                limit: self.limits.max_members,
            });
        }
        for (n, &s) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
            let msg = &bytes[s..end];
            // Skip the "From sender date" separator line.
            let msg = match find(msg, b"\n") {
                Some(i) => &msg[i + 1..],
                None => &[][..],
            };
            let msg_part = format!("{part}: message {}", n + 1);
            if let Err(error) = self.read_mail(&msg_part, msg, depth + 1) {
                self.out.errors.push(PartError {
                    part: msg_part,
                    error,
                });
            }
        }
        Ok(())
    }

    fn read_mail(&mut self, part: &str, bytes: &[u8], depth: usize) -> Result<(), ReadError> {
        let mail = mailparse::parse_mail(bytes).map_err(|e| ReadError::Mail(e.to_string()))?;
        if super::dsn::is_dsn(&mail) {
            let dsn = super::dsn::parse(&mail).ok_or_else(|| {
                ReadError::Mail(
                    "a delivery status notification without its delivery-status part".into(),
                )
            })?;
            self.found(part, Report::Bounce(dsn));
            return Ok(());
        }
        if super::feedback::is_feedback(&mail) {
            let sources = self.sources;
            let lookup = |ip: Option<std::net::IpAddr>| sources.lookup(ip);
            let naming = super::feedback::Naming {
                reporter: &super::names::reporter_label,
                source: &lookup,
            };
            let report = super::feedback::parse(&mail, &naming).ok_or_else(|| {
                ReadError::Mail(
                    "a feedback report (ARF) without a readable feedback-report part".into(),
                )
            })?;
            self.found(part, Report::Feedback(report));
            return Ok(());
        }
        let mut leaves = Vec::new();
        collect_leaves(&mail, &mut leaves, 0);
        let single = leaves.len() == 1;
        let candidates: Vec<_> = leaves
            .into_iter()
            .filter(|p| is_candidate(p) || (single && p.ctype.mimetype != "text/html"))
            .collect();
        if candidates.len() as u64 > u64::from(self.limits.max_members) {
            return Err(ReadError::TooManyMembers {
                found: candidates.len() as u64,
                limit: self.limits.max_members,
            });
        }
        let before = (self.out.reports.len(), self.out.errors.len());
        for (i, p) in candidates.iter().enumerate() {
            let sub_part = match attachment_name(p) {
                Some(name) => format!("{part}: attachment {name}"),
                None => format!("{part}: part {} ({})", i + 1, p.ctype.mimetype),
            };
            let body = match p.get_body_raw() {
                Ok(b) => b,
                Err(e) => {
                    self.out.errors.push(PartError {
                        part: sub_part,
                        error: ReadError::Mail(e.to_string()),
                    });
                    continue;
                }
            };
            let body = &body[..];
            let head = &body[..body.len().min(SNIFF)];
            // The message text, logos, signatures and the like: not an error.
            if let Err(ReadError::Unrecognised(_) | ReadError::Empty) = sniff(head) {
                self.out
                    .warnings
                    .push(format!("{sub_part}: skipped, not a report"));
                continue;
            }
            match self.read(&sub_part, Box::new(body), depth + 1) {
                Ok(()) => {}
                // A forwarded message without a report in it is not an error of this one.
                Err(ReadError::NoAttachment) => self.out.warnings.push(format!(
                    "{sub_part}: skipped, no report in the attached message"
                )),
                Err(error) => self.out.errors.push(PartError {
                    part: sub_part,
                    error,
                }),
            }
        }
        if (self.out.reports.len(), self.out.errors.len()) == before {
            return Err(ReadError::NoAttachment);
        }
        Ok(())
    }
}

fn read_all(mut input: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut v = Vec::new();
    input.read_to_end(&mut v).map_err(io_error)?;
    Ok(v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
