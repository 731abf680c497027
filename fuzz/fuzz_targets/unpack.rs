//! Any bytes, as a report file or a fetched message, into `reports::read_bytes`: the
//! container sniffing and unpacking (gzip, zip, e-mail with MIME parts, mbox, nested), the
//! shared byte budget, and the DMARC and TLS-RPT readers behind them. Every report found then
//! goes where a real one goes: its ledger key, its JSON line, the counting into the report
//! metrics with their label cap, and the landing page's recent reports. Checks that no input
//! vanishes without a report or an error, and that a DMARC report's tallies add up to its
//! message total.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use deliverability_exporter::config::{Name, SourceMapEntry, UnknownDomains};
use deliverability_exporter::metrics::Metrics;
use deliverability_exporter::reports::count::Counting;
use deliverability_exporter::reports::names::{Domains, SourceNames};
use deliverability_exporter::reports::{Report, cli, ledger, read_bytes};
use deliverability_exporter::server::StatusSection;
use deliverability_exporter::status::ReportBoard;
use deliverability_exporter_fuzz::LIMITS;
use libfuzzer_sys::fuzz_target;

struct World {
    metrics: Metrics,
    board: ReportBoard,
    domains: Domains,
    sources: SourceNames,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let metrics = Metrics::bare();
    metrics.reports.set_label_limit(1_000);
    let map = [SourceMapEntry {
        name: Name("esp".into()),
        cidrs: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
    }];
    let observed = [
        (
            "gmail".to_string(),
            IpAddr::V4(Ipv4Addr::new(209, 85, 220, 41)),
        ),
        (
            "outlook".to_string(),
            IpAddr::V6(Ipv6Addr::new(0x2a01, 0x111, 0, 0, 0, 0, 0, 1)),
        ),
    ];
    World {
        metrics,
        board: ReportBoard::default(),
        domains: Domains::new(["example.com", "example.org"], UnknownDomains::Other),
        sources: SourceNames::new(&map, &observed),
    }
});

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    let out = read_bytes("fuzz", data, &LIMITS, &w.sources);
    let counting = Counting {
        metrics: &w.metrics.reports,
        domains: &w.domains,
        sources: &w.sources,
        board: Some((&w.board, 1_700_000_000.0)),
        bounces: None,
    };
    // Nothing is dropped silently: an input gives a report or says why not.
    assert!(
        !out.reports.is_empty() || !out.errors.is_empty(),
        "neither a report nor an error: {out:?}"
    );
    for found in &out.reports {
        if let Report::Dmarc(r) = &found.report {
            // The metrics count the tallies; the report line and the ledger its total.
            let tallied = r.tallies.values().fold(0u64, |a, &n| a.saturating_add(n));
            assert_eq!(tallied, r.messages, "the tallies add up to the messages");
        }
        let _ = ledger::report_key(&found.report);
        let _ = cli::json_line(&found.part, &found.report);
        counting.count(&found.report);
    }
    for e in &out.errors {
        let _ = e.error.to_string();
        counting.count_error("fuzz", &e.error);
    }
    if !out.reports.is_empty() {
        let _ = w.board.html();
    }
});
