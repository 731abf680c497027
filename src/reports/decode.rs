//! Makes a report's bytes UTF-8 before the XML reader sees them (quick-xml works on `str`).
//!
//! Reporters declare UTF-8 and send stray Windows-1252 bytes (a `\x91` in `<header_from>`), or
//! declare ISO-8859-1. Rather than refuse a whole report for one byte, bytes that are not UTF-8
//! are replaced by U+FFFD and the first one's offset is reported as a warning; a document
//! declared ISO-8859-1 (or windows-1252, read as ISO-8859-1) is transcoded. Only
//! [`super::dmarc`] uses it.

use std::io::{self, BufRead};

/// Makes the byte stream UTF-8 for the XML reader: a document declared ISO-8859-1 (or
/// windows-1252, read as ISO-8859-1) is transcoded; in any other, bytes that are not UTF-8 are
/// replaced by U+FFFD and the first one's offset is kept for a warning. Decoding a whole chunk
/// at a time keeps the XML reader's many small reads cheap.
pub struct Decode<R> {
    inner: R,
    latin1: bool,
    /// The decoded bytes being handed out.
    out: Vec<u8>,
    pos: usize,
    /// The start of a character split between two reads of the inner reader.
    carry: Vec<u8>,
    /// Bytes handed out before the current `out`.
    produced: u64,
    first_bad: Option<u64>,
    replaced: u64,
}

impl<R: BufRead> Decode<R> {
    pub fn new(mut inner: R) -> io::Result<Decode<R>> {
        let head = inner.fill_buf()?;
        let head = &head[..head.len().min(200)];
        let latin1 = declared_latin1(head);
        Ok(Decode {
            inner,
            latin1,
            out: Vec::with_capacity(64 * 1024),
            pos: 0,
            carry: Vec::new(),
            produced: 0,
            first_bad: None,
            replaced: 0,
        })
    }

    /// (byte offset, count) of the replaced bytes, when there were any.
    pub fn repaired(&self) -> Option<(u64, u64)> {
        self.first_bad.map(|o| (o, self.replaced))
    }

    /// Appends `data` to `out`, replacing what is not UTF-8.
    fn repair(&mut self, mut data: &[u8]) {
        loop {
            match std::str::from_utf8(data) {
                Ok(_) => {
                    self.out.extend_from_slice(data);
                    return;
                }
                Err(e) => {
                    let (ok, rest) = data.split_at(e.valid_up_to());
                    self.out.extend_from_slice(ok);
                    let n = e.error_len().unwrap_or(rest.len());
                    if self.first_bad.is_none() {
                        self.first_bad = Some(self.produced + self.out.len() as u64);
                    }
                    self.replaced += n as u64;
                    self.out.extend_from_slice("\u{FFFD}".as_bytes());
                    data = &rest[n..];
                }
            }
        }
    }
}

/// Length of the UTF-8 sequence a lead byte starts (1 for anything invalid).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

fn declared_latin1(head: &[u8]) -> bool {
    let head = head
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(head)
        .trim_ascii_start();
    if !head.starts_with(b"<?xml") {
        return false;
    }
    let decl = &head[..head.iter().position(|&b| b == b'>').unwrap_or(head.len())];
    let decl = String::from_utf8_lossy(decl).to_ascii_lowercase();
    let Some(i) = decl.find("encoding") else {
        return false;
    };
    let v = decl[i + 8..].trim_start_matches([' ', '=', '"', '\'']);
    [
        "iso-8859-1",
        "iso8859-1",
        "latin1",
        "latin-1",
        "windows-1252",
        "cp1252",
    ]
    .iter()
    .any(|e| v.starts_with(e))
}

impl<R: BufRead> io::Read for Decode<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Decode<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.out.len() {
            self.produced += self.out.len() as u64;
            self.out.clear();
            self.pos = 0;
            let input = self.inner.fill_buf()?;
            let len = input.len();
            if len == 0 {
                if self.carry.is_empty() {
                    break;
                }
                // Truncated inside a character.
                let carry = std::mem::take(&mut self.carry);
                self.repair(&carry);
                continue;
            }
            if self.latin1 {
                for &b in input {
                    if b < 0x80 {
                        self.out.push(b);
                    } else {
                        self.out.push(0xc0 | (b >> 6));
                        self.out.push(0x80 | (b & 0x3f));
                    }
                }
                self.inner.consume(len);
                continue;
            }
            if let Some(&lead) = self.carry.first() {
                let need = utf8_len(lead).saturating_sub(self.carry.len()).min(len);
                self.carry.extend_from_slice(&input[..need]);
                self.inner.consume(need);
                if self.carry.len() >= utf8_len(lead) {
                    let carry = std::mem::take(&mut self.carry);
                    self.repair(&carry);
                }
                continue;
            }
            match std::str::from_utf8(input) {
                Ok(_) => {
                    self.out.extend_from_slice(input);
                    self.inner.consume(len);
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    self.out.extend_from_slice(&input[..valid]);
                    match e.error_len() {
                        Some(n) => {
                            if self.first_bad.is_none() {
                                self.first_bad = Some(self.produced + valid as u64);
                            }
                            self.replaced += n as u64;
                            self.out.extend_from_slice("\u{FFFD}".as_bytes());
                            self.inner.consume(valid + n);
                        }
                        None => {
                            // A character split at the end of the inner buffer.
                            self.carry = input[valid..].to_vec();
                            self.inner.consume(len);
                        }
                    }
                }
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.len());
    }
}
