//! SMTP TLS report JSON straight into `reports::tlsrpt::parse`; the input as text into
//! `tlsrpt::parse_datetime` too.
#![no_main]

use deliverability_exporter::reports::tlsrpt;
use deliverability_exporter_fuzz::LIMITS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = tlsrpt::parse(data, LIMITS.max_records) {
        let _ = (report.successful(), report.failed());
        assert!(
            report.policies.len() as u64 <= LIMITS.max_records,
            "the policy limit holds"
        );
        for p in &report.policies {
            assert!(p.failures.len() <= tlsrpt::KEEP_DETAILS);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tlsrpt::parse_datetime(s);
    }
});
