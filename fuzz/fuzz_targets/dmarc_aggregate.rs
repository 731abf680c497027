//! DMARC aggregate report XML straight into `reports::dmarc::parse` (no container sniffing),
//! each record through the alignment evaluation and source naming the unpacker applies.
#![no_main]

use deliverability_exporter::reports::align;
use deliverability_exporter::reports::dmarc;
use deliverability_exporter::reports::model::{PolicyPublished, Record};
use deliverability_exporter::reports::names::SourceNames;
use deliverability_exporter_fuzz::LIMITS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sources = SourceNames::default();
    let mut records = 0u64;
    let mut on_record = |policy: &PolicyPublished, rec: &Record| {
        let from = if rec.header_from.is_empty() {
            policy.domain.as_str()
        } else {
            rec.header_from.as_str()
        };
        let _ = align::evaluate(rec, from, policy.adkim, policy.aspf).dmarc_pass();
        let _ = sources.lookup(rec.source_ip);
        records += 1;
    };
    if let Ok(parsed) = dmarc::parse(data, LIMITS.max_records, &mut on_record) {
        assert!(
            parsed.report.records <= LIMITS.max_records,
            "the record limit holds"
        );
        assert_eq!(
            parsed.report.records, records,
            "every record was handed over"
        );
    }
});
