//! The DMARC aggregate report reader: RFC 7489 appendix C, RFC 9990 (`dmarc-2.0` namespace,
//! with or without a prefix) and the old drafts without `<version>`, read as a stream of
//! quick-xml events so memory stays flat however many records a report has.
//!
//! Only local names are looked at (`<dmarc:record>` is `<record>`), unknown elements and their
//! content are skipped, values are trimmed and enumerations read case-insensitively. Each
//! `<record>` is handed to a callback as soon as it ends, together with the policy published
//! (which the schema puts before the records); the returned [`AggregateReport`] keeps only the
//! metadata, the policy and the totals.
//!
//! Hostile input is refused: a DOCTYPE (and so any entity declaration) is an error, undefined
//! entities are errors, depth is capped, and the number of records is limited. Real-world
//! damage that can be confined to one value is repaired with a warning, as the reference
//! readers do: bytes that are not UTF-8 inside a value become U+FFFD, and an end tag that
//! closes an ancestor closes the elements left open inside it (an unescaped `<addr>` in
//! `<email>`). Anything else, a truncated document first of all, is an error naming the line
//! and byte offset.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::decode::Decode;
use super::error::{ReadError, inner_read_error};
use super::model::{
    AggregateReport, AlignmentMode, Disposition, DkimAuth, DkimResult, Policy, PolicyPublished,
    Reason, ReasonType, Record, SpfAuth, SpfResult, Verdict,
};

mod elements;
use elements::El;

/// Longest value kept; longer text is cut (with a warning).
const MAX_VALUE: usize = 16 * 1024;
/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 64;
/// `<dkim>`/`<spf>`/`<reason>` entries kept per record; further ones are ignored.
const MAX_PER_RECORD: usize = 64;
/// Warnings kept per report.
const MAX_WARNINGS: usize = 20;

/// A parsed report and what was repaired on the way.
#[derive(Debug)]
pub struct Parsed {
    pub report: AggregateReport,
    pub warnings: Vec<String>,
}

/// Reads one aggregate report from `input`, calling `on_record` for every record.
pub fn parse<R: BufRead>(
    input: R,
    max_records: u64,
    on_record: &mut dyn FnMut(&PolicyPublished, &Record),
) -> Result<Parsed, ReadError> {
    let decoded = Decode::new(input)
        .map_err(|e| inner_read_error(&e).unwrap_or_else(|| ReadError::Io(e.to_string())))?;
    let mut reader = Reader::from_reader(decoded);
    let cfg = reader.config_mut();
    cfg.check_end_names = false;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    let mut p = Parser {
        report: AggregateReport::default(),
        record: Record::default(),
        policy_seen: false,
        stack: Vec::with_capacity(16),
        names: Vec::with_capacity(256),
        text: Vec::with_capacity(256),
        text_cut: false,
        warnings: Vec::new(),
        max_records,
        line: 1,
        root_done: false,
        root_name: None,
        feedback_seen: false,
    };
    let result = drive(&mut p, &mut reader, on_record);
    let repaired = reader.get_ref().repaired();
    match result {
        Ok(()) => p.finish(repaired),
        // A document that is not a report at all: say so rather than where it broke.
        Err(ReadError::Xml { .. }) if !p.feedback_seen && p.root_name.is_some() => Err(
            ReadError::NotFeedback(p.root_name.take().unwrap_or_default()),
        ),
        Err(e) => Err(e),
    }
}

/// Reads events until `</feedback>`.
fn drive<R: BufRead>(
    p: &mut Parser,
    reader: &mut Reader<Decode<R>>,
    on_record: &mut dyn FnMut(&PolicyPublished, &Record),
) -> Result<(), ReadError> {
    let mut buf = Vec::with_capacity(4096);
    // Newlines so far, counted in the events' content (markup delimiters hold none).
    let mut newlines = 0u64;
    loop {
        buf.clear();
        p.line = newlines + 1;
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => return Err(xml_error(&e, p.line, reader.error_position())),
        };
        let offset = reader.buffer_position();
        newlines += match &event {
            Event::Start(e) | Event::Empty(e) => count_newlines(e),
            Event::Text(t) | Event::Comment(t) | Event::DocType(t) => count_newlines(t),
            Event::CData(t) => count_newlines(t),
            Event::PI(t) => count_newlines(t),
            Event::Decl(t) => count_newlines(t),
            Event::End(_) | Event::GeneralRef(_) | Event::Eof => 0,
        };
        match event {
            Event::Start(e) => p.start(&e, offset)?,
            Event::Empty(e) => {
                p.start(&e, offset)?;
                p.end(e.name().as_ref().as_bytes(), offset, on_record)?;
            }
            Event::End(e) => p.end(e.name().as_ref().as_bytes(), offset, on_record)?,
            Event::Text(t) => p.text(t.as_bytes()),
            Event::CData(t) => p.text(t.as_bytes()),
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(ReadError::Entities {
                                line: p.line,
                                offset,
                                what: format!(
                                    "undefined entity &{};",
                                    other.chars().take(64).collect::<String>()
                                ),
                            });
                        }
                    },
                    Err(e) => {
                        return Err(ReadError::Xml {
                            line: p.line,
                            offset,
                            message: e.to_string(),
                        });
                    }
                };
                let mut tmp = [0u8; 4];
                p.text(ch.encode_utf8(&mut tmp).as_bytes());
            }
            Event::DocType(_) => {
                return Err(ReadError::Entities {
                    line: p.line,
                    offset,
                    what: "a DOCTYPE declaration".into(),
                });
            }
            // The encoding was dealt with by `Decode`.
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                return match p.stack.last() {
                    _ if p.root_done => Ok(()),
                    Some(_) => Err(ReadError::Xml {
                        line: p.line,
                        offset,
                        message: format!(
                            "unexpected end of input: <{}> is not closed (truncated?)",
                            String::from_utf8_lossy(p.name_at(p.stack.len() - 1))
                        ),
                    }),
                    None => Err(ReadError::Xml {
                        line: p.line,
                        offset,
                        message: "no XML element found".into(),
                    }),
                };
            }
        }
        if p.root_done {
            return Ok(());
        }
    }
}

fn count_newlines(s: &str) -> u64 {
    s.bytes().filter(|&b| b == b'\n').count() as u64
}

fn xml_error(e: &quick_xml::Error, line: u64, offset: u64) -> ReadError {
    if let quick_xml::Error::Io(io) = e
        && let Some(inner) = inner_read_error(io)
    {
        return inner;
    }
    ReadError::Xml {
        line,
        offset,
        message: e.to_string(),
    }
}

struct Parser {
    report: AggregateReport,
    record: Record,
    policy_seen: bool,
    /// Open elements: what they are and where their qualified name starts in `names`.
    stack: Vec<(El, usize)>,
    names: Vec<u8>,
    text: Vec<u8>,
    text_cut: bool,
    warnings: Vec<String>,
    max_records: u64,
    /// Line of the event being handled.
    line: u64,
    /// `</feedback>` was read: the report is complete.
    root_done: bool,
    /// The first element, when it was not `<feedback>`.
    root_name: Option<String>,
    feedback_seen: bool,
}

/// Empties a record for the next one, keeping its allocations.
fn reset(r: &mut Record) {
    r.source_ip = None;
    r.count = 0;
    r.disposition = Disposition::default();
    r.eval_dkim = Verdict::default();
    r.eval_spf = Verdict::default();
    r.reasons.clear();
    r.header_from.clear();
    r.envelope_from = None;
    r.envelope_to = None;
    r.dkim.clear();
    r.spf.clear();
}

/// A collected value: trimmed, and UTF-8 (`Decode` made the stream UTF-8; only a value cut at
/// `MAX_VALUE` can end mid-character).
fn val(text: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(text.trim_ascii())
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

impl Parser {
    fn warn(&mut self, message: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(format!("line {}: {message}", self.line));
        }
    }

    fn name_at(&self, i: usize) -> &[u8] {
        let start = self.stack[i].1;
        let end = self.stack.get(i + 1).map_or(self.names.len(), |n| n.1);
        &self.names[start..end]
    }

    fn start(&mut self, e: &BytesStart<'_>, offset: u64) -> Result<(), ReadError> {
        let qname = e.name();
        let name = qname.as_ref().as_bytes();
        let el = match self.stack.last() {
            // Some reporters wrap <feedback> in another element (IKEA: an unclosed
            // <xs:schema>); look for it inside.
            None | Some(&(El::Wrapper, _)) if local(name).eq_ignore_ascii_case(b"feedback") => {
                El::Feedback
            }
            None | Some(&(El::Wrapper, _)) => {
                if self.root_name.is_none() {
                    self.root_name =
                        Some(String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned());
                }
                El::Wrapper
            }
            Some(&(parent, _)) => El::child(parent, local(name)),
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(ReadError::Xml {
                line: self.line,
                offset,
                message: format!("elements nested more than {MAX_DEPTH} deep"),
            });
        }
        self.stack.push((el, self.names.len()));
        self.names.extend_from_slice(name);
        if el.is_leaf() {
            self.text.clear();
            self.text_cut = false;
        }
        match el {
            El::Feedback => self.feedback_seen = true,
            El::Record => reset(&mut self.record),
            El::Dkim if self.record.dkim.len() < MAX_PER_RECORD => {
                self.record.dkim.push(DkimAuth::default());
            }
            El::Spf if self.record.spf.len() < MAX_PER_RECORD => {
                self.record.spf.push(SpfAuth::default());
            }
            El::Reason if self.record.reasons.len() < MAX_PER_RECORD => {
                self.record.reasons.push(Reason {
                    kind: None,
                    comment: None,
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, t: &[u8]) {
        let Some(&(el, _)) = self.stack.last() else {
            return;
        };
        if !el.is_leaf() {
            return;
        }
        let room = MAX_VALUE.saturating_sub(self.text.len());
        if t.len() > room {
            self.text.extend_from_slice(&t[..room]);
            if !self.text_cut {
                self.text_cut = true;
                self.warn(format!("value longer than {MAX_VALUE} bytes cut"));
            }
        } else {
            self.text.extend_from_slice(t);
        }
    }

    fn end(
        &mut self,
        name: &[u8],
        offset: u64,
        on_record: &mut dyn FnMut(&PolicyPublished, &Record),
    ) -> Result<(), ReadError> {
        let Some(pos) = (0..self.stack.len())
            .rev()
            .find(|&i| self.name_at(i) == name)
        else {
            if self.stack.is_empty() {
                return Ok(());
            }
            return Err(ReadError::Xml {
                line: self.line,
                offset,
                message: format!(
                    "unexpected end tag </{}>, expected </{}>",
                    String::from_utf8_lossy(&name[..name.len().min(64)]),
                    String::from_utf8_lossy(self.name_at(self.stack.len() - 1))
                ),
            });
        };
        if pos + 1 < self.stack.len() {
            let unclosed = self.name_at(pos + 1);
            // Cut the bytes, not the decoded text: a cut inside a character would panic.
            let unclosed =
                String::from_utf8_lossy(&unclosed[..unclosed.len().min(64)]).into_owned();
            self.warn(format!(
                "<{}> not closed before </{}>; closed there",
                unclosed,
                String::from_utf8_lossy(name)
            ));
        }
        while self.stack.len() > pos {
            let (el, start) = self.stack[self.stack.len() - 1];
            self.close(el, on_record)?;
            self.stack.pop();
            self.names.truncate(start);
            if el == El::Feedback {
                self.root_done = true;
                break;
            }
        }
        Ok(())
    }

    /// The collected text of the element being closed, trimmed and decoded.
    fn value(&self) -> String {
        val(&self.text).into_owned()
    }

    fn number(&mut self, what: &str) -> Option<u64> {
        let v = self.value();
        match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => match v.parse::<f64>() {
                Ok(f) if (0.0..1.8e19).contains(&f) => Some(f as u64),
                _ => {
                    self.warn(format!("{what} {v:?} is not a number; ignored"));
                    None
                }
            },
        }
    }

    fn close(
        &mut self,
        el: El,
        on_record: &mut dyn FnMut(&PolicyPublished, &Record),
    ) -> Result<(), ReadError> {
        use El as E;
        let opt = |s: String| (!s.is_empty()).then_some(s);
        match el {
            E::Version => self.report.version = opt(self.value()),
            E::OrgName => self.report.org_name = self.value(),
            E::Email => self.report.email = self.value(),
            E::ExtraContact => self.report.extra_contact_info = opt(self.value()),
            E::ReportId => self.report.report_id = self.value(),
            E::Begin => self.report.begin = self.number("begin").unwrap_or(0),
            E::End => self.report.end = self.number("end").unwrap_or(0),
            E::MetaError => {
                let v = self.value();
                if !v.is_empty() && self.report.errors.len() < MAX_PER_RECORD {
                    self.report.errors.push(v);
                }
            }
            E::Generator => self.report.generator = opt(self.value()),
            E::Policy => self.policy_seen = true,
            E::PDomain => self.report.policy.domain = super::align::normalize_domain(&self.value()),
            E::Adkim => self.report.policy.adkim = AlignmentMode::parse(&self.value()),
            E::Aspf => self.report.policy.aspf = AlignmentMode::parse(&self.value()),
            E::P => self.report.policy.p = Policy::parse(&self.value()),
            E::Sp => self.report.policy.sp = Some(Policy::parse(&self.value())),
            E::Np => self.report.policy.np = Some(Policy::parse(&self.value())),
            E::Pct => {
                self.report.policy.pct = self
                    .number("pct")
                    .and_then(|n| u8::try_from(n).ok())
                    .filter(|&n| n <= 100)
            }
            E::Testing => {
                let v = self.value();
                self.report.policy.testing = match v.to_ascii_lowercase().as_str() {
                    "y" | "yes" | "true" => Some(true),
                    "n" | "no" | "false" => Some(false),
                    _ => None,
                }
            }
            E::Discovery => {
                self.report.policy.discovery_method = opt(self.value().to_ascii_lowercase())
            }
            E::Fo => self.report.policy.fo = opt(self.value()),
            E::SourceIp => {
                self.record.source_ip = val(&self.text).parse().ok();
                if self.record.source_ip.is_none() {
                    let v = self.value();
                    self.warn(format!("source_ip {v:?} is not an IP address"));
                }
            }
            E::Count => {
                let v = val(&self.text);
                self.record.count = v.parse().map_err(|_| ReadError::InvalidReport {
                    line: self.line,
                    message: format!("<count> {v:?} is not a non-negative integer"),
                })?;
            }
            E::Disposition => self.record.disposition = Disposition::parse(&val(&self.text)),
            E::EvalDkim => self.record.eval_dkim = Verdict::parse(&val(&self.text)),
            E::EvalSpf => self.record.eval_spf = Verdict::parse(&val(&self.text)),
            E::ReasonType => {
                let v = self.value();
                if let Some(r) = self.record.reasons.last_mut() {
                    r.kind = (!v.is_empty()).then(|| ReasonType::parse(&v));
                }
            }
            E::ReasonComment => {
                let v = opt(self.value());
                if let Some(r) = self.record.reasons.last_mut() {
                    r.comment = v;
                }
            }
            E::HeaderFrom => self.record.header_from.push_str(&val(&self.text)),
            E::EnvelopeFrom => self.record.envelope_from = opt(self.value()),
            E::EnvelopeTo => self.record.envelope_to = opt(self.value()),
            E::DkimDomain => {
                let v = self.value();
                if let Some(d) = self.record.dkim.last_mut() {
                    d.domain = v;
                }
            }
            E::Selector => {
                let v = opt(self.value());
                if let Some(d) = self.record.dkim.last_mut() {
                    d.selector = v;
                }
            }
            E::DkimResult => {
                let v = DkimResult::parse(&val(&self.text));
                if let Some(d) = self.record.dkim.last_mut() {
                    d.result = v;
                }
            }
            E::HumanResult => {
                let v = opt(self.value());
                if let Some(d) = self.record.dkim.last_mut() {
                    d.human_result = v;
                }
            }
            E::SpfDomain => {
                let v = self.value();
                if let Some(s) = self.record.spf.last_mut() {
                    s.domain = v;
                }
            }
            E::Scope => {
                let v = opt(self.value().to_ascii_lowercase());
                if let Some(s) = self.record.spf.last_mut() {
                    s.scope = v;
                }
            }
            E::SpfResult => {
                let v = SpfResult::parse(&val(&self.text));
                if let Some(s) = self.record.spf.last_mut() {
                    s.result = v;
                }
            }
            E::Record => {
                if !self.policy_seen {
                    return Err(ReadError::InvalidReport {
                        line: self.line,
                        message: "<record> before <policy_published>".into(),
                    });
                }
                if self.report.records >= self.max_records {
                    return Err(ReadError::TooManyRecords {
                        limit: self.max_records,
                    });
                }
                self.report.records += 1;
                self.report.messages = self.report.messages.saturating_add(self.record.count);
                on_record(&self.report.policy, &self.record);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self, repaired: Option<(u64, u64)>) -> Result<Parsed, ReadError> {
        if let Some((offset, count)) = repaired {
            self.warnings.insert(
                0,
                format!("byte {offset}: {count} bytes that are not UTF-8 replaced by U+FFFD"),
            );
        }
        if self.report.policy.domain.is_empty() {
            return Err(ReadError::InvalidReport {
                line: self.line,
                message: "no <policy_published> with a <domain>".into(),
            });
        }
        if self.report.org_name.is_empty() {
            // Fall back to the domain of the reporter's address.
            if let Some((_, d)) = self.report.email.rsplit_once('@') {
                self.report.org_name = d.trim_end_matches('>').to_ascii_lowercase();
            }
        }
        Ok(Parsed {
            report: self.report,
            warnings: self.warnings,
        })
    }
}
