//! Splits a raw header block into fields, tolerantly and in one pass: LF or CRLF line ends,
//! folded lines (a line starting with space or tab continues the field above), the block ends
//! at the first empty line, and lines that are neither a field nor a continuation (an mbox
//! `From ` line, garbage) are skipped instead of failing the whole block, as
//! `mailparse::parse_headers` would. Values are unfolded and read as UTF-8 with invalid bytes
//! replaced.

use super::MAX_HEADER_BLOCK;

/// One header field as it stands in the block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// The name, without the colon or trailing blanks.
    pub name: &'a [u8],
    /// From the first byte of the name to the end of the last continuation line.
    pub raw: &'a [u8],
    /// The value, still folded.
    pub value: &'a [u8],
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value unfolded (line breaks dropped, the blanks that follow them kept), trimmed.
    pub fn text(&self) -> String {
        unfold(self.value).trim().to_string()
    }
}

/// The fields of a header block, top (most recently added) first.
#[derive(Debug, Default)]
pub(crate) struct HeaderBlock<'a> {
    fields: Vec<Field<'a>>,
    /// Octets of the longest line read, line end excluded (RFC 5322 §2.1.1 allows 998).
    pub longest_line: usize,
}

impl<'a> HeaderBlock<'a> {
    /// Reads at most [`MAX_HEADER_BLOCK`] bytes of `raw`.
    pub fn parse(raw: &'a [u8]) -> HeaderBlock<'a> {
        let raw = &raw[..raw.len().min(MAX_HEADER_BLOCK)];
        let mut fields: Vec<Field<'a>> = Vec::new();
        // The field being read: (start of name, name end, value start); it is open while
        // continuation lines follow.
        let mut open: Option<(usize, usize, usize)> = None;
        let mut pos = 0;
        let mut longest_line = 0;
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| pos + i + 1);
            let line = &raw[pos..end];
            let content = trim_eol(line);
            if content.is_empty() {
                break;
            }
            longest_line = longest_line.max(content.len());
            let continues = matches!(content[0], b' ' | b'\t');
            if !continues {
                close(raw, open.take(), pos, &mut fields);
                open = field_start(content)
                    .map(|(name_end, value_start)| (pos, pos + name_end, pos + value_start));
            }
            pos = end;
        }
        close(raw, open, pos, &mut fields);
        HeaderBlock {
            fields,
            longest_line,
        }
    }

    /// Every field called `name`, top first.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Field<'a>> + 's {
        self.fields.iter().filter(move |f| f.is(name))
    }

    /// The topmost field called `name`.
    pub fn first(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.is(name))
    }

    /// The topmost field called `name`, unfolded.
    pub fn text(&self, name: &str) -> Option<String> {
        self.first(name).map(Field::text)
    }

    pub fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }
}

/// Ends the open field at `end` (the start of the line that does not continue it).
fn close<'a>(
    raw: &'a [u8],
    open: Option<(usize, usize, usize)>,
    end: usize,
    fields: &mut Vec<Field<'a>>,
) {
    if let Some((start, name_end, value_start)) = open {
        let value_start = value_start.min(end);
        fields.push(Field {
            name: &raw[start..name_end],
            raw: trim_eol(&raw[start..end]),
            value: trim_eol(&raw[value_start..end]),
        });
    }
}

/// In a line that starts a field, where the name ends and the value starts; `None` when the
/// line has no colon or the name is not printable ASCII (RFC 5322 ftext, blanks allowed
/// before the colon as obs-optional).
fn field_start(line: &[u8]) -> Option<(usize, usize)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    let ok = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
    ok.then_some((name.len(), colon + 1))
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Drops CR and LF and keeps everything else; invalid UTF-8 becomes U+FFFD.
pub(crate) fn unfold(value: &[u8]) -> String {
    String::from_utf8_lossy(value).replace(['\r', '\n'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(b: &HeaderBlock<'_>) -> Vec<String> {
        b.fields
            .iter()
            .map(|f| String::from_utf8_lossy(f.name).into_owned())
            .collect()
    }

    #[test]
    fn splits_unfolds_and_stops_at_the_blank_line() {
        let raw = b"Received: from a\r\n\tby b; Mon, 01 Apr 2026 10:00:00 +0000\r\nSubject: hi\r\n there\r\nX-Empty:\r\nTo : x@y\r\n\r\nBody: not a header\r\n";
        let b = HeaderBlock::parse(raw);
        assert_eq!(names(&b), ["Received", "Subject", "X-Empty", "To"]);
        assert_eq!(
            b.text("received").as_deref(),
            Some("from a\tby b; Mon, 01 Apr 2026 10:00:00 +0000")
        );
        assert_eq!(b.text("SUBJECT").as_deref(), Some("hi there"));
        assert_eq!(b.text("X-Empty").as_deref(), Some(""));
        assert_eq!(b.text("To").as_deref(), Some("x@y"));
        assert!(!b.has("Body"));
        assert_eq!(b.first("Subject").unwrap().raw, b"Subject: hi\r\n there");
    }

    #[test]
    fn tolerates_bare_lf_garbage_lines_and_invalid_utf8() {
        let raw = b"From sender Mon Apr  1 10:00:00 2026\n  stray continuation\nX-A: 1\nnot a field\n\xff\xfe: x\nX-B: caf\xe9\n folded\nX-A: 2";
        let b = HeaderBlock::parse(raw);
        assert_eq!(names(&b), ["X-A", "X-B", "X-A"]);
        assert_eq!(b.text("X-B").as_deref(), Some("caf\u{fffd} folded"));
        let all: Vec<String> = b.all("x-a").map(Field::text).collect();
        assert_eq!(all, ["1", "2"]);
    }

    #[test]
    fn reads_no_further_than_the_limit() {
        let mut raw = b"X-A: 1\r\n".to_vec();
        raw.resize(MAX_HEADER_BLOCK, b'a');
        raw.extend_from_slice(b"\r\nX-B: beyond\r\n");
        let b = HeaderBlock::parse(&raw);
        assert!(b.has("X-A"));
        assert!(!b.has("X-B"));
        assert_eq!(HeaderBlock::parse(b"").fields.len(), 0);
        assert_eq!(HeaderBlock::parse(b"\r\nX-A: 1").fields.len(), 0);
    }
}
