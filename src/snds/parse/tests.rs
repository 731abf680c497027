//! The parser against the fixtures in tests/fixtures/snds/ and hand-made hostile input.

use super::*;

/// 2026-12-01T00:00:00Z.
const DAY: i64 = 1_796_083_200;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snds")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at(h: i64, m: i64) -> i64 {
    DAY + h * 3600 + m * 60
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn rate(fraction: f64, band: ComplaintBand) -> Option<ComplaintRate> {
    Some(ComplaintRate { fraction, band })
}

/// Compares rows, complaint fractions within rounding.
fn assert_row(got: &DataRow, want: &DataRow) {
    let (mut g, mut w) = (got.clone(), want.clone());
    match (g.complaint.as_mut(), w.complaint.as_mut()) {
        (Some(g), Some(w)) => {
            assert!((g.fraction - w.fraction).abs() < 1e-12, "{got:?}");
            g.fraction = w.fraction;
        }
        (None, None) => {}
        _ => panic!("complaint rate of {got:?}, expected {want:?}"),
    }
    assert_eq!(g, w);
}

#[test]
fn reads_the_data_fixture() {
    let file = parse_data(&fixture("data-2026-12-01.csv")).unwrap();
    type Trap = Option<(i64, i64)>;
    let row =
        |ip_: &str, start: i64, end: i64, counts: [u64; 3], filter, complaint, trap: Trap, hits| {
            DataRow {
                ip: ip(ip_),
                activity_start: start,
                activity_end: end,
                rcpt_commands: counts[0],
                data_commands: counts[1],
                message_recipients: counts[2],
                filter,
                complaint,
                trap_start: trap.map(|(s, _)| s),
                trap_end: trap.map(|(_, e)| e),
                trap_hits: hits,
            }
        };
    use ComplaintBand::*;
    use FilterResult::*;
    let want = [
        row(
            "192.0.2.10",
            at(0, 5),
            at(23, 58),
            [1250, 1248, 1250],
            Green,
            rate(0.001, Below0_1),
            None,
            0,
        ),
        row(
            "192.0.2.11",
            at(3, 0),
            at(21, 30),
            [800, 790, 805],
            Yellow,
            rate(0.003, From0_3To1),
            Some((at(4, 10), at(18, 45))),
            3,
        ),
        row(
            "198.51.100.7",
            at(0, 0),
            at(23, 59),
            [40000, 39000, 41000],
            Red,
            rate(0.012, From1To3),
            Some((at(1, 0), at(22, 0))),
            57,
        ),
        row(
            "198.51.100.8",
            at(13, 15),
            at(14, 45),
            [90, 90, 90],
            Green,
            rate(0.001, Below0_1),
            None,
            0,
        ),
        row(
            "203.0.113.9",
            at(6, 0),
            at(18, 0),
            [500, 498, 500],
            Green,
            rate(0.003, From0_1To0_3),
            Some((at(7, 0), at(7, 30))),
            1,
        ),
        row(
            "203.0.113.10",
            at(10, 0),
            at(10, 20),
            [3, 3, 3],
            Unknown,
            None,
            None,
            0,
        ),
        row(
            "203.0.113.11",
            at(21, 0),
            at(23, 0),
            [20000, 19800, 20000],
            Red,
            rate(0.05, From3),
            Some((at(21, 5), at(22, 55))),
            212,
        ),
    ];
    assert_eq!(file.rows.len(), want.len());
    for (got, want) in file.rows.iter().zip(&want) {
        assert_row(got, want);
    }
    assert_eq!(
        file.bad_rows,
        [BadRow {
            line: 5,
            column: Some("RCPT commands"),
            problem: "not a count: \"many\"".into(),
        }]
    );
    assert_eq!(
        file.bad_rows[0].to_string(),
        "line 5, column RCPT commands: not a count: \"many\""
    );
    // Nothing of the sample HELO, MAIL FROM or comment columns is kept.
    let kept = format!("{file:?}");
    for private in ["example", "Bulk", "JMRP", "person"] {
        assert!(!kept.contains(private), "{private} kept: {kept}");
    }
}

#[test]
fn reads_the_ip_status_fixture() {
    let ranges = parse_ip_status(&fixture("ipstatus.csv")).unwrap();
    assert_eq!(
        ranges,
        [
            IpStatusRange {
                first: ip("192.0.2.0"),
                last: ip("192.0.2.15"),
                blocked: true,
                reason: BlockReason::BlockedComplaints,
            },
            IpStatusRange {
                first: ip("198.51.100.7"),
                last: ip("198.51.100.7"),
                blocked: false,
                reason: BlockReason::JunkedComplaints,
            },
            IpStatusRange {
                first: ip("203.0.113.64"),
                last: ip("203.0.113.127"),
                blocked: true,
                reason: BlockReason::Other,
            },
        ]
    );
    assert_eq!(ranges[0].ip_count(), 16);
    assert_eq!(ranges[1].ip_count(), 1);
    assert_eq!(
        BlockReason::JunkedComplaints.as_str(),
        "junked_due_to_user_complaints_or_other_evidence"
    );
}

#[test]
fn an_html_page_is_not_csv_and_an_empty_file_is_a_day_without_data() {
    let html = fixture("error-page.html");
    assert_eq!(parse_data(&html), Err(SndsError::NotCsv));
    assert_eq!(parse_ip_status(&html), Err(SndsError::NotCsv));
    assert_eq!(
        parse_data("\u{feff}\r\n  <html><body>x"),
        Err(SndsError::NotCsv)
    );
    for empty in [
        fixture("empty.csv"),
        "\u{feff}".into(),
        "\r\n\r\n  \n".into(),
    ] {
        assert_eq!(parse_data(&empty), Ok(DataFile::default()));
        assert_eq!(parse_ip_status(&empty), Ok(vec![]));
    }
}

#[test]
fn tolerates_a_bom_lf_a_header_and_quotes() {
    let text = "\u{feff}IP Address,Activity start,Activity end,RCPT,DATA,Recipients,Filter,\
Complaint,Trap start,Trap end,Trap hits,HELO,MAIL FROM,Comments\n\
 \"192.0.2.1\" ,\"12/1/2026 12:00 PM\",12/1/2026 12:00 AM,1,2,3, Red ,\"< 0.1%\",,,\"7\",\"a,b\",\"\"\"c\"\"\",d\n";
    let file = parse_data(text).unwrap();
    assert_eq!(file.bad_rows, []);
    assert_eq!(file.rows.len(), 1);
    let r = &file.rows[0];
    assert_eq!(
        (r.ip, r.activity_start, r.activity_end),
        (ip("192.0.2.1"), at(12, 0), DAY)
    );
    assert_eq!(
        (r.rcpt_commands, r.data_commands, r.message_recipients),
        (1, 2, 3)
    );
    assert_eq!((r.filter, r.trap_hits), (FilterResult::Red, 7));
    let status = parse_ip_status("First IP,Last IP,Blocked,Details\r\n192.0.2.1,192.0.2.1,no,\r\n");
    assert_eq!(status.unwrap()[0].reason, BlockReason::None);
}

#[test]
fn reports_each_bad_row_with_its_line_and_column() {
    let good = "192.0.2.1,12/1/2026 1:00 AM,12/1/2026 2:00 AM,1,1,1,GREEN,< 0.1%,,,0";
    let long = format!("{good},\"{}\"", "x".repeat(MAX_LINE));
    let many = format!("{good}{}", ",".repeat(MAX_FIELDS));
    let lines = [
        good.to_string(),
        "192.0.2.1,12/1/2026 1:00 AM,12/1/2026 2:00 AM".into(),
        good.replace("192.0.2.1,", "192.0.2.256,"),
        good.replace("1:00 AM", "13:00 PM"),
        good.replace("12/1/2026 2:00 AM", "2/30/2026 2:00 AM"),
        good.replace("< 0.1%", "lots"),
        good.replace("< 0.1%", "101%"),
        good.replace(",0", ",-1"),
        good.replace(",,0", ",12/1/2026,0"),
        format!("{good},\"open"),
        format!("{good},\"a\"b"),
        long,
        many,
    ];
    let file = parse_data(&lines.join("\r\n")).unwrap();
    assert_eq!(file.rows.len(), 1);
    let got: Vec<String> = file.bad_rows.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "line 2: 3 fields, expected at least 11",
            "line 3, column IP address: not an IPv4 address: \"192.0.2.256\"",
            "line 4, column activity start: no such hour: \"12/1/2026 13:00 PM\"",
            "line 5, column activity end: no such date: \"2/30/2026 2:00 AM\"",
            "line 6, column complaint rate: not a percentage such as < 0.1%: \"lots\"",
            "line 7, column complaint rate: more than 100%: \"101%\"",
            "line 8, column trap hits: not a count: \"-1\"",
            "line 9, column trap message period end: not a time such as 12/31/2026 8:00 PM: \
\"12/1/2026\"",
            "line 10: a quoted field is not closed",
            "line 11: text after a closing quote",
            &format!("line 12: {} bytes, more than {MAX_LINE}", lines[11].len()),
            "line 13: too many fields",
        ]
    );
    // The IP status file fails on its first bad row.
    let status = "192.0.2.0,192.0.2.9,Yes,x\r\n192.0.2.9,192.0.2.0,Yes,x\r\n";
    let err = parse_ip_status(status).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2, column last IP: 192.0.2.0 is below 192.0.2.9"
    );
    let err = parse_ip_status("192.0.2.0,192.0.2.9,Maybe,x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1, column blocked: not Yes or No: \"Maybe\""
    );
}

#[test]
fn reads_complaint_rates_into_bands() {
    use ComplaintBand::*;
    for (text, fraction, band) in [
        ("< 0.1%", 0.001, Below0_1),
        ("<0.1%", 0.001, Below0_1),
        ("0%", 0.0, Below0_1),
        ("0.1%", 0.001, From0_1To0_3),
        ("< 0.3%", 0.003, From0_1To0_3),
        ("0.1-0.3%", 0.003, From0_1To0_3),
        ("0.3%", 0.003, From0_3To1),
        ("> 0.3%", 0.003, From0_3To1),
        ("0.5-1%", 0.01, From0_3To1),
        ("1%", 0.01, From1To3),
        ("2.9 %", 0.029, From1To3),
        ("3%", 0.03, From3),
        ("100%", 1.0, From3),
    ] {
        let got = complaint_rate(text).unwrap().unwrap();
        assert!((got.fraction - fraction).abs() < 1e-12, "{text}: {got:?}");
        assert_eq!(got.band, band, "{text}");
    }
    for none in ["", "-", "N/A"] {
        assert_eq!(complaint_rate(none), Ok(None));
    }
    for bad in [
        "0.1", "x%", "1.2.3%", "0.3-0.1%", "<>1%", "NaN%", "inf%", "1e2%", "-1%",
    ] {
        assert!(complaint_rate(bad).is_err(), "{bad}");
    }
    assert_eq!(
        ComplaintBand::NAMES,
        ["lt_0.1", "0.1_to_0.3", "0.3_to_1", "1_to_3", "ge_3"]
    );
}

#[test]
fn reads_times_as_utc() {
    assert_eq!(timestamp("12/1/2026 12:00 AM"), Ok(DAY));
    assert_eq!(timestamp("12/01/2026 12:30 PM"), Ok(at(12, 30)));
    assert_eq!(timestamp("12/1/2026 11:59:59 pm"), Ok(at(23, 59) + 59));
    assert_eq!(timestamp("12/1/2026 23:00"), Ok(at(23, 0)));
    assert_eq!(timestamp("2/29/2028 1:00AM"), Ok(1_835_398_800));
    assert_eq!(timestamp("1/1/1970 0:00"), Ok(0));
    for bad in [
        "2/29/2026 1:00 AM",
        "0/1/2026 1:00 AM",
        "12/1/2026 0:00 AM",
        "12/1/2026 24:00",
        "12/1/2026 1:60 AM",
        "12/1/1969 1:00 AM",
        "12/1/2026",
        "12-1-2026 1:00 AM",
        "12/1/2026 1:00:00:00 AM",
        "12/1/+202 1:00 AM",
        "12/1/2026 1:00 ÅM",
    ] {
        assert!(timestamp(bad).is_err(), "{bad}");
    }
}

#[test]
fn limits_hold() {
    let big = "x".repeat(MAX_BYTES + 1);
    assert_eq!(
        parse_data(&big),
        Err(SndsError::TooLarge {
            bytes: MAX_BYTES + 1,
            limit: MAX_BYTES,
        })
    );
    let rows = "1\n".repeat(MAX_ROWS + 1);
    let too_many = SndsError::TooManyRows { limit: MAX_ROWS };
    assert_eq!(parse_data(&rows), Err(too_many.clone()));
    let ranges = "192.0.2.1,192.0.2.1,No,\n".repeat(MAX_ROWS + 1);
    assert_eq!(parse_ip_status(&ranges), Err(too_many));
    assert_eq!(
        parse_data(&"1\n".repeat(MAX_ROWS)).unwrap().bad_rows.len(),
        MAX_ROWS
    );
}

#[test]
fn ips_in_a_range_are_bounded() {
    let all: Vec<Ipv4Addr> = ips_in_range(ip("192.0.2.254"), ip("192.0.3.1"), 10).collect();
    assert_eq!(
        all,
        [
            ip("192.0.2.254"),
            ip("192.0.2.255"),
            ip("192.0.3.0"),
            ip("192.0.3.1")
        ]
    );
    assert_eq!(
        ips_in_range(ip("0.0.0.0"), ip("255.255.255.255"), 3).count(),
        3
    );
    let top = ips_in_range(ip("255.255.255.254"), ip("255.255.255.255"), 10);
    assert_eq!(top.count(), 2);
    assert_eq!(
        ips_in_range(ip("192.0.2.2"), ip("192.0.2.1"), 10).count(),
        0
    );
    let everything = IpStatusRange {
        first: ip("0.0.0.0"),
        last: ip("255.255.255.255"),
        blocked: true,
        reason: BlockReason::Other,
    };
    assert_eq!(everything.ip_count(), 1 << 32);
    let backwards = IpStatusRange {
        first: everything.last,
        last: everything.first,
        ..everything
    };
    assert_eq!(backwards.ip_count(), 0);
}

#[test]
fn classifies_block_details() {
    for (details, reason) in [
        (
            "Blocked due to user complaints or other evidence of spamming",
            "blocked_due_to_user_complaints_or_other_evidence",
        ),
        (
            "junked due to user complaints",
            "junked_due_to_user_complaints_or_other_evidence",
        ),
        ("E-mail address harvesting", "email_address_harvesting"),
        ("Symantec Brightmail", "symantec_brightmail"),
        ("SpamHaus SBL/XBL", "spamhaus_sbl_xbl"),
        ("  ", "none"),
        ("Something new, with a name in it: Jane Doe", "other"),
    ] {
        assert_eq!(block_reason(details).as_str(), reason, "{details}");
    }
    assert_eq!(FilterResult::NAMES, ["green", "yellow", "red", "unknown"]);
}
