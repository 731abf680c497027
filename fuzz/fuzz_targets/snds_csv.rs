//! Arbitrary bytes (as UTF-8, lossy) into both SNDS readers, `snds::parse::parse_data` and
//! `parse_ip_status`: byte order mark, line splitting, quoted fields, the limits, times,
//! complaint rates, addresses; then each range through `ips_in_range`. Checks the bounds the
//! module promises.
#![no_main]

use deliverability_exporter::snds::parse::{self, ComplaintBand, MAX_ROWS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = parse::parse_data(&text) {
        assert!(file.rows.len() + file.bad_rows.len() <= MAX_ROWS);
        for r in &file.rows {
            if let Some(c) = r.complaint {
                assert!((0.0..=1.0).contains(&c.fraction), "{c:?}");
                assert!(ComplaintBand::ALL.contains(&c.band));
            }
            assert!(r.activity_start >= 0 && r.activity_end >= 0);
        }
        for b in &file.bad_rows {
            assert!(b.line >= 1 && b.problem.len() <= 400, "{b}");
        }
    }
    if let Ok(ranges) = parse::parse_ip_status(&text) {
        assert!(ranges.len() <= MAX_ROWS);
        for r in &ranges {
            assert!(r.first <= r.last && r.ip_count() >= 1);
            let n = parse::ips_in_range(r.first, r.last, 4).count() as u64;
            assert_eq!(n, r.ip_count().min(4));
        }
    }
});
