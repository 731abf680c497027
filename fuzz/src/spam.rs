//! The input format of the `spam_headers` target. No dependencies: the seed builder
//! (`fuzz/seeds`) includes this file as it is.

/// The headers the spam parsers read, plus the ones that decide whose an `X-Spam-Status` is.
pub const SPAM_HEADERS: [&str; 19] = [
    "X-Spam-Status",
    "X-Spam-Score",
    "X-Spam-Flag",
    "X-Spam",
    "X-Spamd-Result",
    "X-Rspamd-Result",
    "X-Rspamd-Score",
    "X-Rspamd-Action",
    "X-Rspamd-Server",
    "X-Rspamd-Queue-Id",
    "X-Spamd-Bar",
    "X-Spam-Result",
    "X-Forefront-Antispam-Report",
    "X-MS-Exchange-Organization-SCL",
    "X-Barracuda-Spam-Score",
    "X-Barracuda-Spam-Status",
    "X-Gm-Spam",
    "Authentication-Results",
    "Received",
];

/// Turns a `spam_headers` input into a header block: each line is one field, its first byte
/// choosing the name from [`SPAM_HEADERS`] and the rest being the value (a line starting
/// with a space or a tab continues the previous field, as folding does).
pub fn spam_block(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for line in data.split(|&b| b == b'\n') {
        let Some((&first, rest)) = line.split_first() else {
            continue;
        };
        if first == b' ' || first == b'\t' {
            out.extend_from_slice(line);
        } else {
            out.extend_from_slice(SPAM_HEADERS[usize::from(first) % SPAM_HEADERS.len()].as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(rest);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The inverse of [`spam_block`] for seeding: a header block (`Name: value` lines) becomes a
/// `spam_headers` input, keeping the fields whose name is in [`SPAM_HEADERS`] (and their
/// continuation lines).
pub fn spam_input(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // the end of the header block
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if keep {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            continue;
        }
        keep = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        if let Some(i) = SPAM_HEADERS
            .iter()
            .position(|h| h.as_bytes().eq_ignore_ascii_case(name))
        {
            keep = true;
            out.push(selector(i));
            out.extend_from_slice(line[colon + 1..].trim_ascii_start());
            out.push(b'\n');
        }
    }
    out
}

/// A printable first byte that selects `SPAM_HEADERS[i]`.
fn selector(i: usize) -> u8 {
    let n = SPAM_HEADERS.len();
    let base = (usize::from(b'@') / n + 1) * n;
    u8::try_from(base + i).expect("a short list")
}
