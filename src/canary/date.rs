//! Dates as mail writes them, to Unix seconds: the RFC 5322 `date-time` of `Date:` and of the
//! tail of each `Received:` header (with the obsolete forms of RFC 5322 §4.3: two- and
//! three-digit years, `UT`/`GMT`/US zone names, military zone letters, comments such as
//! `+0000 (UTC)`), the IMAP `INTERNALDATE` form `29-Nov-2026 04:35:59 +0000`, and the asctime
//! form a few old MTAs still write (`Sun Nov 29 04:35:59 2026`). Pure and bounded: one pass
//! over at most [`MAX_DATE_LEN`] bytes, `None` for anything that is not a valid date.

use crate::canary::text::truncate;
use crate::clock::days_from_civil;

/// Longer inputs are cut here: a real date with a trailing comment is well under 100 bytes.
pub const MAX_DATE_LEN: usize = 256;

/// The date in `s` as seconds since the Unix epoch, or `None` when it is not a date.
///
/// A missing zone, `-0000` and the military letters (whose sign RFC 822 got wrong) are read
/// as UTC, as RFC 5322 §4.3 advises.
pub fn parse_date(s: &str) -> Option<i64> {
    let toks = tokens(s);
    let mut p = Cursor { toks: &toks, i: 0 };
    // An optional day of week, with or without its comma.
    if matches!(p.peek(), Some(Tok::Word(w)) if weekday(w)) {
        p.i += 1;
        p.eat(&Tok::Comma);
    }
    let (day, month, year_from_date) = match p.next()? {
        Tok::Num(d, _) => {
            // `29 Nov 2026` or `29-Nov-2026`
            p.eat(&Tok::Minus);
            let month = month_of(p.word()?)?;
            p.eat(&Tok::Minus);
            let year = year_of(p.num()?)?;
            (*d, month, Some(year))
        }
        // asctime: `Nov 29 04:35:59 2026`
        Tok::Word(w) => (p.num()?.0, month_of(w)?, None),
        _ => return None,
    };
    let (hour, minute, second) = time(&mut p)?;
    let year = match year_from_date {
        Some(y) => y,
        None => year_of(p.num()?)?,
    };
    let offset = zone(&mut p)?;
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, u32::try_from(day).ok()?);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A decimal number and how many digits it had (`05` is two digits: a zone needs four).
    Num(i64, usize),
    Word(String),
    Colon,
    Comma,
    Plus,
    Minus,
    Dot,
    Other,
}

/// Splits a date into tokens, dropping whitespace and (nested) comments.
fn tokens(s: &str) -> Vec<Tok> {
    let s = truncate(s, MAX_DATE_LEN);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if depth > 0 {
            match c {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b'\\' => i += 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        match c {
            b'(' => depth = 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b':' => out.push(Tok::Colon),
            b',' => out.push(Tok::Comma),
            b'+' => out.push(Tok::Plus),
            b'-' => out.push(Tok::Minus),
            b'.' => out.push(Tok::Dot),
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = &s[start..i];
                // More than nine digits is no part of a date; it also keeps i64 safe.
                let n = if digits.len() <= 9 {
                    digits.parse().ok()
                } else {
                    None
                };
                out.push(n.map_or(Tok::Other, |n| Tok::Num(n, digits.len())));
            }
            c if c.is_ascii_alphabetic() => {
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push(Tok::Word(s[start..i].to_ascii_lowercase()));
            }
            _ => out.push(Tok::Other),
        }
    }
    out
}

struct Cursor<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.i)?;
        self.i += 1;
        Some(t)
    }
    fn eat(&mut self, t: &Tok) -> bool {
        let hit = self.peek() == Some(t);
        if hit {
            self.i += 1;
        }
        hit
    }
    fn num(&mut self) -> Option<(i64, usize)> {
        match self.next()? {
            Tok::Num(n, d) => Some((*n, *d)),
            _ => None,
        }
    }
    fn word(&mut self) -> Option<&'a str> {
        match self.next()? {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// `hh:mm[:ss[.fraction]]`, range-checked (a leap second 60 is allowed).
fn time(p: &mut Cursor<'_>) -> Option<(i64, i64, i64)> {
    let hour = p.num()?.0;
    if !p.eat(&Tok::Colon) {
        return None;
    }
    let minute = p.num()?.0;
    let mut second = 0;
    if p.eat(&Tok::Colon) {
        second = p.num()?.0;
        if p.eat(&Tok::Dot) {
            p.num()?;
        }
    }
    (hour <= 23 && minute <= 59 && second <= 60).then_some((hour, minute, second))
}

/// The zone's offset east of UTC in seconds; 0 when the zone is missing.
fn zone(p: &mut Cursor<'_>) -> Option<i64> {
    let sign = match p.peek() {
        None => return Some(0),
        Some(Tok::Plus) => 1,
        Some(Tok::Minus) => -1,
        Some(Tok::Word(w)) => return named_zone(w).map(|h| h * 3600),
        Some(_) => return None,
    };
    p.i += 1;
    let (n, digits) = p.num()?;
    let (h, m) = (n / 100, n % 100);
    (digits == 4 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// RFC 5322 obs-zone names, in hours east of UTC.
fn named_zone(w: &str) -> Option<i64> {
    Some(match w {
        "ut" | "utc" | "gmt" | "z" => 0,
        "edt" => -4,
        "est" | "cdt" => -5,
        "cst" | "mdt" => -6,
        "mst" | "pdt" => -7,
        "pst" => -8,
        // Military zones: RFC 822 defined their signs backwards, so RFC 5322 says treat as -0000.
        w if w.len() == 1 && w != "j" => 0,
        _ => return None,
    })
}

fn weekday(w: &str) -> bool {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .any(|d| w.starts_with(d))
}

fn month_of(w: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = w.get(..3)?;
    let i = MONTHS.iter().position(|m| *m == prefix)?;
    u32::try_from(i + 1).ok()
}

/// Four-digit years as written; obsolete two-digit years are 1950–2049, three-digit ones
/// count from 1900 (RFC 5322 §4.3).
fn year_of((n, digits): (i64, usize)) -> Option<i64> {
    let y = match digits {
        1 | 2 if n < 50 => 2000 + n,
        1 | 2 => 1900 + n,
        3 => 1900 + n,
        4 => n,
        _ => return None,
    };
    (1900..=9999).contains(&y).then_some(y)
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-29T04:35:59Z, as in `clock`'s tests.
    const T: i64 = 1_795_926_959;

    #[test]
    fn rfc5322_dates_with_zones_and_comments() {
        for s in [
            "Sun, 29 Nov 2026 04:35:59 +0000",
            "Sun, 29 Nov 2026 04:35:59 +0000 (UTC)",
            "29 Nov 2026 04:35:59 GMT",
            "Sun,29 Nov 2026 04:35:59 UT",
            "  Sun, 29 Nov 2026 04:35:59 -0000",
            "Sunday, 29 November 2026 04:35:59 Z",
            "Sat, 28 Nov 2026 20:35:59 -0800 (PST)",
            "Sat, 28 Nov 2026 20:35:59 PST",
            "Sun, 29 Nov 2026 06:05:59 +0130",
            "Sun, 29 Nov 2026 4:35:59 +0000",
            "Sun, 29 Nov 2026 04:35:59.123456 +0000",
            "Sun, 29 Nov 2026 04:35:59",
            "Sun, 29 (comment (nested)) Nov 2026 04:35:59 +0000",
            "Sun, 29\r\n Nov 2026 04:35:59 +0000",
        ] {
            assert_eq!(parse_date(s), Some(T), "{s:?}");
        }
        assert_eq!(
            parse_date("Sun, 29 Nov 2026 04:35 +0000"),
            Some(T - 59),
            "seconds are optional"
        );
    }

    #[test]
    fn internaldate_and_asctime() {
        assert_eq!(parse_date("29-Nov-2026 04:35:59 +0000"), Some(T));
        assert_eq!(parse_date("29-Nov-2026 05:35:59 +0100"), Some(T));
        assert_eq!(
            parse_date(" 1-Dec-2026 04:35:59 +0000"),
            Some(T + 2 * 86_400)
        );
        assert_eq!(parse_date("Sun Nov 29 04:35:59 2026"), Some(T));
    }

    #[test]
    fn obsolete_years_and_military_zones() {
        assert_eq!(
            parse_date("Mon, 01 Apr 26 10:00:00 +0000"),
            Some(1_775_037_600)
        );
        assert_eq!(
            parse_date("Mon, 01 Apr 126 10:00:00 +0000"),
            Some(1_775_037_600)
        );
        assert_eq!(parse_date("Thu, 01 Jan 70 00:00:00 A"), Some(0));
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 EST"), Some(5 * 3600));
        assert_eq!(
            parse_date("Thu, 29 Feb 2024 00:00:00 +0000"),
            Some(1_709_164_800)
        );
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for s in [
            "",
            "tomorrow",
            "Sun, 31 Nov 2026 04:35:59 +0000",
            "Sun, 29 Feb 2026 04:35:59 +0000",
            "Sun, 0 Nov 2026 04:35:59 +0000",
            "Sun, 29 Foo 2026 04:35:59 +0000",
            "Sun, 29 Nov 2026 24:00:00 +0000",
            "Sun, 29 Nov 2026 04:60:00 +0000",
            "Sun, 29 Nov 2026 04:35:59 +00",
            "Sun, 29 Nov 2026 04:35:59 +0099",
            "Sun, 29 Nov 2026 04:35:59 XYZ",
            "Sun, 29 Nov 99999 04:35:59 +0000",
            "Sun, 29 Nov 2026 04-35-59 +0000",
            "Sun, 99999999999999999999 Nov 2026 04:35:59 +0000",
            "29 Nov",
            "(unclosed comment 29 Nov 2026 04:35:59 +0000",
        ] {
            assert_eq!(parse_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn hostile_input_is_cut_not_scanned() {
        let long = format!("Sun, 29 Nov 2026 04:35:59 +0000 {}", "(".repeat(100_000));
        assert_eq!(parse_date(&long), Some(T));
        assert_eq!(parse_date(&"9".repeat(100_000)), None);
        assert_eq!(parse_date("é29 Nov 2026 04:35:59 +0000"), None);
    }
}
