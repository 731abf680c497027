//! The two CSV files of Microsoft SNDS "Automated Data Access", read into typed rows: the
//! data file (`data.aspx?key=KEY[&date=MMDDYY]`, one row per IP and day) and the IP status
//! file (`ipStatus.aspx?key=KEY`, the ranges Outlook.com blocks or junks). Only numbers,
//! verdicts and closed label sets are kept: the sample HELO, sample MAIL FROM and comment
//! columns (which can name people) are passed over, never stored, and a block's free-text
//! details become a [`BlockReason`].
//!
//! The layout, as public clients read it (the FAQ,
//! <https://sendersupport.olc.protection.outlook.com/snds/FAQ.aspx>, explains the fields):
//! - no header row, CRLF line ends; data columns: IP address, activity start, activity end,
//!   RCPT commands, DATA commands, message recipients, filter result (`GREEN`, `YELLOW`,
//!   `RED`), complaint rate (`< 0.1%`), trap message period start and end (empty without
//!   trap hits), trap hits, sample HELO, sample MAIL FROM, comments; times as
//!   `12/31/2019 8:00 AM` (<https://github.com/undersfx/sndslib>: `tests/conftest.py`,
//!   `sndslib/sndslib.py`). No zone is written and the sources disagree (UTC, or Pacific
//!   time): they are read as UTC;
//! - the filter gave a spam verdict up to 10% of the time when green, 10–90% yellow, more
//!   than 90% red (<https://help.returnpath.com/hc/en-us/articles/115004843928>);
//! - IP status columns: first IP, last IP, blocked (`Yes`/`No`), details such as `Blocked
//!   due to user complaints or other evidence of spamming` or, with `No`, `Junked due to
//!   ...` (sndslib), `E-mail address harvesting`, `Symantec Brightmail`, `SpamHaus
//!   SBL/XBL` (<https://github.com/AbuseIO/collector-snds>, `config/Snds.php`).
//!
//! Tolerated: a UTF-8 byte order mark, CRLF or LF, blank lines, a header row (a first line
//! whose first field has no digit), quoted fields (`"a, ""b"""`; a field cannot span
//! lines). An HTML page (what SNDS serves for a bad key) is [`SndsError::NotCsv`]; an empty
//! file is a day without data. A data row that cannot be read is skipped and reported in
//! [`DataFile::bad_rows`] with its line and column; the rest of the file still counts. The
//! IP status file is all or nothing: dropping one of its rows could hide a block. Hostile
//! input is bounded by [`MAX_BYTES`], [`MAX_ROWS`], [`MAX_LINE`] and [`MAX_FIELDS`].

use std::fmt;
use std::net::Ipv4Addr;

use crate::clock::{civil_from_days, days_from_civil};

/// Largest file read, in bytes.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Most rows (non-blank lines) in one file.
pub const MAX_ROWS: usize = 100_000;
/// Longest line, in bytes.
pub const MAX_LINE: usize = 4096;
/// Most fields on one line.
pub const MAX_FIELDS: usize = 64;
/// Characters of an unreadable value shown in a [`BadRow`].
const SHOWN: usize = 32;

/// The data file's columns, in order, up to the last one kept.
const DATA_COLUMNS: [&str; 11] = [
    "IP address",
    "activity start",
    "activity end",
    "RCPT commands",
    "DATA commands",
    "message recipients",
    "filter result",
    "complaint rate",
    "trap message period start",
    "trap message period end",
    "trap hits",
];
/// The IP status file's columns.
const STATUS_COLUMNS: [&str; 4] = ["first IP", "last IP", "blocked", "details"];

crate::label_enum! {
    /// SNDS's filter verdict for an IP and day; `Unknown` for an empty or unexpected value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FilterResult {
        Green = "green",
        Yellow = "yellow",
        Red = "red",
        Unknown = "unknown",
    }
}

crate::label_enum! {
    /// The complaint rate's band, in percent: below 0.1, 0.1 up to 0.3, 0.3 up to 1, 1 up
    /// to 3, 3 and more. `< X%` falls in the band below X, `A-B%` in the band below B, an
    /// exact `X%` or `> X%` in the band that starts at or below X.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ComplaintBand {
        Below0_1 = "lt_0.1",
        From0_1To0_3 = "0.1_to_0.3",
        From0_3To1 = "0.3_to_1",
        From1To3 = "1_to_3",
        From3 = "ge_3",
    }
}

/// Lower edges of the bands after the first, in percent.
const BAND_EDGES: [f64; 4] = [0.1, 0.3, 1.0, 3.0];

crate::label_enum! {
    /// Why SNDS lists a range, from its details text; `Other` for any text not known here
    /// (the text itself is never kept), `None` when it is empty.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BlockReason {
        BlockedComplaints = "blocked_due_to_user_complaints_or_other_evidence",
        JunkedComplaints = "junked_due_to_user_complaints_or_other_evidence",
        Harvesting = "email_address_harvesting",
        SymantecBrightmail = "symantec_brightmail",
        Spamhaus = "spamhaus_sbl_xbl",
        None = "none",
        Other = "other",
    }
}

/// A complaint rate as SNDS writes it (`< 0.1%`, `0.3%`, `0.1-0.3%`, `> 5%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComplaintRate {
    /// The rate as a fraction, at most as high as written: `< 0.1%` gives 0.001, `0.3%`
    /// 0.003, `0.1-0.3%` 0.003; `> 5%`, which has no upper bound, gives its lower one, 0.05.
    pub fraction: f64,
    pub band: ComplaintBand,
}

/// One IP's day in the data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRow {
    pub ip: Ipv4Addr,
    /// First and last activity, Unix seconds (read as UTC).
    pub activity_start: i64,
    pub activity_end: i64,
    pub rcpt_commands: u64,
    pub data_commands: u64,
    pub message_recipients: u64,
    pub filter: FilterResult,
    /// `None` when the column is empty (or `-`, `n/a`).
    pub complaint: Option<ComplaintRate>,
    /// When trap messages came, Unix seconds; `None` when empty (no trap hits).
    pub trap_start: Option<i64>,
    pub trap_end: Option<i64>,
    /// Messages to spam traps; an empty column counts as 0.
    pub trap_hits: u64,
}

/// A row that was not read: its line (from 1), the column, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: usize,
    /// `None` when the row as a whole is wrong (too long, too few fields).
    pub column: Option<&'static str>,
    pub problem: String,
}

impl BadRow {
    fn at(line: usize, (column, problem): Problem) -> BadRow {
        BadRow {
            line,
            column,
            problem,
        }
    }
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {c}: {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// The data file: the rows read, and those skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataFile {
    pub rows: Vec<DataRow>,
    pub bad_rows: Vec<BadRow>,
}

/// One row of the IP status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpStatusRange {
    pub first: Ipv4Addr,
    /// Not below `first`.
    pub last: Ipv4Addr,
    pub blocked: bool,
    pub reason: BlockReason,
}

impl IpStatusRange {
    /// Addresses in the range (1 to 2^32; 0 if `last` were below `first`).
    pub fn ip_count(&self) -> u64 {
        (u64::from(u32::from(self.last)) + 1).saturating_sub(u64::from(u32::from(self.first)))
    }
}

/// Why a file was not read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SndsError {
    #[error("an HTML page, not SNDS CSV (a wrong or revoked access key?)")]
    NotCsv,
    #[error("{bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("more than {limit} rows")]
    TooManyRows { limit: usize },
    #[error("{0}")]
    Row(BadRow),
}

/// Reads the data file. Unreadable rows are skipped and listed; the file fails only when it
/// is not CSV or breaks a limit.
pub fn parse_data(text: &str) -> Result<DataFile, SndsError> {
    let mut file = DataFile::default();
    each_row(text, DATA_COLUMNS.len(), |line, fields| {
        match fields.and_then(|(f, n)| data_row(&f, n)) {
            Ok(row) => file.rows.push(row),
            Err(p) => file.bad_rows.push(BadRow::at(line, p)),
        }
        Ok(())
    })?;
    Ok(file)
}

/// Reads the IP status file; one unreadable row fails it ([`SndsError::Row`]).
pub fn parse_ip_status(text: &str) -> Result<Vec<IpStatusRange>, SndsError> {
    let mut out = Vec::new();
    each_row(text, STATUS_COLUMNS.len(), |line, fields| {
        let row = fields.and_then(|(f, n)| status_row(&f, n));
        out.push(row.map_err(|p| SndsError::Row(BadRow::at(line, p)))?);
        Ok(())
    })?;
    Ok(out)
}

/// The addresses from `first` to `last`, at most `limit` of them; none when `last` is
/// below `first`.
pub fn ips_in_range(
    first: Ipv4Addr,
    last: Ipv4Addr,
    limit: usize,
) -> impl Iterator<Item = Ipv4Addr> {
    (u32::from(first)..=u32::from(last))
        .take(limit)
        .map(Ipv4Addr::from)
}

/// What is wrong with a row: the column (`None` for the whole row) and the problem.
type Problem = (Option<&'static str>, String);
/// What a row gave: its first fields and how many it had, or what is wrong.
type Fields = Result<(Vec<String>, usize), Problem>;

/// Hands each row of a file to `each` with its line number and first `keep` fields: the
/// checks of the whole file first, then blank lines and a header row left out.
fn each_row(
    text: &str,
    keep: usize,
    mut each: impl FnMut(usize, Fields) -> Result<(), SndsError>,
) -> Result<(), SndsError> {
    if text.len() > MAX_BYTES {
        return Err(SndsError::TooLarge {
            bytes: text.len(),
            limit: MAX_BYTES,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('<') {
        return Err(SndsError::NotCsv);
    }
    let mut seen = 0;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if seen == MAX_ROWS {
            return Err(SndsError::TooManyRows { limit: MAX_ROWS });
        }
        let fields = if line.len() > MAX_LINE {
            Err((None, format!("{} bytes, more than {MAX_LINE}", line.len())))
        } else {
            split_fields(line, keep).map_err(|p| (None, p.to_string()))
        };
        let no_digit = |f: &String| !f.chars().any(|c| c.is_ascii_digit());
        let header = seen == 0
            && fields
                .as_ref()
                .is_ok_and(|(f, _)| f.first().is_some_and(no_digit));
        if !header {
            seen += 1;
            each(i + 1, fields)?;
        }
    }
    Ok(())
}

/// Splits one line into fields, keeping the first `keep` (trimmed) and counting all.
fn split_fields(line: &str, keep: usize) -> Result<(Vec<String>, usize), &'static str> {
    let mut kept = Vec::with_capacity(keep);
    let mut count = 0;
    let mut chars = line.chars().peekable();
    let blank = |c: &char| *c == ' ' || *c == '\t';
    loop {
        count += 1;
        if count > MAX_FIELDS {
            return Err("too many fields");
        }
        let store = count <= keep;
        let mut field = String::new();
        while chars.next_if(blank).is_some() {}
        let end = if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed"),
                    // A doubled quote is one quote: the guard takes the second.
                    Some('"') if chars.next_if_eq(&'"').is_none() => break,
                    Some(c) if store => field.push(c),
                    Some(_) => {}
                }
            }
            while chars.next_if(blank).is_some() {}
            match chars.next() {
                None => true,
                Some(',') => false,
                Some(_) => return Err("text after a closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => break true,
                    Some(',') => break false,
                    Some(c) if store => field.push(c),
                    Some(_) => {}
                }
            }
        };
        if store {
            kept.push(field.trim().to_string());
        }
        if end {
            return Ok((kept, count));
        }
    }
}

/// A value for a problem text: control characters removed, cut, quoted.
fn shown(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(SHOWN).collect();
    format!("{s:?}")
}

fn data_row(f: &[String], n: usize) -> Result<DataRow, Problem> {
    if n < DATA_COLUMNS.len() {
        let want = DATA_COLUMNS.len();
        return Err((None, format!("{n} fields, expected at least {want}")));
    }
    let at = |i: usize| (DATA_COLUMNS[i], f[i].as_str());
    let count = |i: usize| {
        let (col, v) = at(i);
        number::<u64>(v, 20).ok_or_else(|| (Some(col), format!("not a count: {}", shown(v))))
    };
    let time = |i: usize| {
        let (col, v) = at(i);
        timestamp(v).map_err(|p| (Some(col), format!("{p}: {}", shown(v))))
    };
    let optional_time = |i: usize| match at(i).1 {
        "" => Ok(None),
        _ => time(i).map(Some),
    };
    let (col, rate) = at(7);
    Ok(DataRow {
        ip: ipv4(at(0))?,
        activity_start: time(1)?,
        activity_end: time(2)?,
        rcpt_commands: count(3)?,
        data_commands: count(4)?,
        message_recipients: count(5)?,
        filter: filter_result(at(6).1),
        complaint: complaint_rate(rate)
            .map_err(|p| (Some(col), format!("{p}: {}", shown(rate))))?,
        trap_start: optional_time(8)?,
        trap_end: optional_time(9)?,
        trap_hits: if at(10).1.is_empty() { 0 } else { count(10)? },
    })
}

fn status_row(f: &[String], n: usize) -> Result<IpStatusRange, Problem> {
    if n < 3 {
        return Err((None, format!("{n} fields, expected at least 3")));
    }
    let at = |i: usize| (STATUS_COLUMNS[i], f.get(i).map_or("", String::as_str));
    let (first, last) = (ipv4(at(0))?, ipv4(at(1))?);
    if last < first {
        return Err((Some(STATUS_COLUMNS[1]), format!("{last} is below {first}")));
    }
    let (col, v) = at(2);
    let blocked = match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" => false,
        _ => return Err((Some(col), format!("not Yes or No: {}", shown(v)))),
    };
    Ok(IpStatusRange {
        first,
        last,
        blocked,
        reason: block_reason(at(3).1),
    })
}

fn ipv4((col, v): (&'static str, &str)) -> Result<Ipv4Addr, Problem> {
    v.parse()
        .map_err(|_| (Some(col), format!("not an IPv4 address: {}", shown(v))))
}

/// Digits only (no sign, no separators), at most `max_digits` of them.
fn number<T: std::str::FromStr>(s: &str, max_digits: usize) -> Option<T> {
    let ok = !s.is_empty() && s.len() <= max_digits && s.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

fn filter_result(v: &str) -> FilterResult {
    [FilterResult::Green, FilterResult::Yellow, FilterResult::Red]
        .into_iter()
        .find(|r| v.eq_ignore_ascii_case(r.as_str()))
        .unwrap_or(FilterResult::Unknown)
}

/// The details text of a listed range, as a label.
pub fn block_reason(details: &str) -> BlockReason {
    let d = details.trim().to_ascii_lowercase();
    if d.is_empty() {
        BlockReason::None
    } else if d.starts_with("blocked due to user complaints") {
        BlockReason::BlockedComplaints
    } else if d.starts_with("junked due to user complaints") {
        BlockReason::JunkedComplaints
    } else if d.contains("harvesting") {
        BlockReason::Harvesting
    } else if d.contains("brightmail") {
        BlockReason::SymantecBrightmail
    } else if d.contains("spamhaus") {
        BlockReason::Spamhaus
    } else {
        BlockReason::Other
    }
}

/// `M/D/YYYY h:mm[:ss] AM|PM` (or a 24-hour `H:mm[:ss]`) to Unix seconds, as UTC.
fn timestamp(s: &str) -> Result<i64, &'static str> {
    const SHAPE: &str = "not a time such as 12/31/2026 8:00 PM";
    let meridiem = |m: &str| {
        let cut = s.len().checked_sub(2)?;
        let tail = s.get(cut..)?;
        tail.eq_ignore_ascii_case(m).then(|| &s[..cut])
    };
    let (rest, pm) = match (meridiem("AM"), meridiem("PM")) {
        (Some(r), _) => (r, Some(false)),
        (_, Some(r)) => (r, Some(true)),
        _ => (s, None),
    };
    let (date, time) = rest.trim().split_once(' ').ok_or(SHAPE)?;
    let date: Vec<&str> = date.splitn(4, '/').collect();
    let time: Vec<&str> = time.trim().splitn(4, ':').collect();
    let [m, d, y] = date[..] else {
        return Err(SHAPE);
    };
    let (h, min, sec) = match time[..] {
        [h, min] => (h, min, "0"),
        [h, min, sec] => (h, min, sec),
        _ => return Err(SHAPE),
    };
    // Two digits at most: the casts below cannot truncate.
    let n = |v: &str, digits| number::<i64>(v, digits).ok_or(SHAPE);
    let (m, d, y) = (n(m, 2)? as u32, n(d, 2)? as u32, n(y, 4)?);
    let (h, min, sec) = (n(h, 2)?, n(min, 2)?, n(sec, 2)?);
    let days = days_from_civil(y, m, d);
    // A day past the month's end (or month 13) comes back as another date.
    if !(1970..=9999).contains(&y) || civil_from_days(days) != (y, m, d) {
        return Err("no such date");
    }
    let h = match pm {
        Some(pm) if (1..=12).contains(&h) => h % 12 + if pm { 12 } else { 0 },
        None if h < 24 => h,
        _ => return Err("no such hour"),
    };
    if min > 59 || sec > 59 {
        return Err("no such time");
    }
    Ok(days * 86_400 + h * 3600 + min * 60 + sec)
}

/// A complaint rate: `< X%`, `X%`, `A-B%`, `> X%`; `None` for an empty value, `-` or `n/a`.
fn complaint_rate(s: &str) -> Result<Option<ComplaintRate>, &'static str> {
    const SHAPE: &str = "not a percentage such as < 0.1%";
    if s.is_empty() || s == "-" || s.eq_ignore_ascii_case("n/a") {
        return Ok(None);
    }
    let body = s.strip_suffix('%').ok_or(SHAPE)?.trim_end();
    let percent = |v: &str| {
        let v = v.trim();
        let ok = !v.is_empty()
            && v.len() <= 12
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && v.bytes().filter(|&b| b == b'.').count() <= 1;
        let v = ok.then(|| v.parse::<f64>().ok()).flatten().ok_or(SHAPE)?;
        (0.0..=100.0)
            .contains(&v)
            .then_some(v)
            .ok_or("more than 100%")
    };
    // (value the fraction is taken from, whether the rate lies strictly below it)
    let (value, below) = if let Some(v) = body.strip_prefix('<') {
        (percent(v)?, true)
    } else if let Some(v) = body.strip_prefix('>') {
        (percent(v)?, false)
    } else if let Some((lo, hi)) = body.split_once('-') {
        let (lo, hi) = (percent(lo)?, percent(hi)?);
        if hi < lo {
            return Err("a range whose end is below its start");
        }
        (hi, true)
    } else {
        (percent(body)?, false)
    };
    let past = BAND_EDGES
        .iter()
        .filter(|&&e| if below { value > e } else { value >= e })
        .count();
    Ok(Some(ComplaintRate {
        fraction: value / 100.0,
        band: ComplaintBand::ALL[past],
    }))
}

#[cfg(test)]
mod tests;
