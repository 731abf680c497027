//! Anyone can mail the rua address: 100,000 reports from distinct reporters, for distinct
//! (unconfigured) domains, about distinct source IPs, must not create more series than
//! `reports.label_limit` allows, nor grow memory without bound.

use deliverability_exporter::config::{SourceMapEntry, UnknownDomains};
use deliverability_exporter::metrics::Metrics;
use deliverability_exporter::reports::count::Counting;
use deliverability_exporter::reports::names::{Domains, SourceNames};
use deliverability_exporter::reports::{Limits, read_bytes};

fn report(i: u32) -> String {
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    format!(
        "<feedback><report_metadata><org_name>reporter{i}.example</org_name><email>dmarc@reporter{i}.example</email><report_id>id{i}</report_id><date_range><begin>1795900000</begin><end>1795986399</end></date_range></report_metadata><policy_published><domain>{}</domain><p>none</p></policy_published><record><row><source_ip>{ip}</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>x.example</header_from></identifiers><auth_results><spf><domain>x.example</domain><result>fail</result></spf></auth_results></record></feedback>",
        if i.is_multiple_of(2) {
            format!("stranger{i}.example")
        } else {
            "dx.test".to_string()
        }
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_flood_of_distinct_reporters_domains_and_sources_stays_under_the_label_cap() {
    let metrics = Metrics::bare();
    let limit = 1_000;
    metrics.reports.set_label_limit(limit);
    let domains = Domains::new(["dx.test"], UnknownDomains::Other);
    let map = vec![SourceMapEntry {
        name: deliverability_exporter::config::Name("esp".into()),
        cidrs: vec!["10.0.0.0/16".into()],
    }];
    let sources = SourceNames::new(&map, &[]);
    let counting = Counting {
        metrics: &metrics.reports,
        domains: &domains,
        sources: &sources,
        board: None,
        bounces: None,
    };
    let limits = Limits {
        max_bytes: 1 << 20,
        max_records: 100,
        max_members: 4,
    };
    let before = rss_kib();
    let n = 100_000u32;
    let mut counted = 0;
    for i in 0..n {
        let outcome = read_bytes("flood.xml", report(i).as_bytes(), &limits, &sources);
        assert_eq!(outcome.reports.len(), 1, "report {i}: {:?}", outcome.errors);
        if counting.count(&outcome.reports[0].report) {
            counted += 1;
        }
    }
    assert_eq!(counted, n);
    let after = rss_kib();

    // The admission set holds at most the cap plus the folded sets (bounded label values only).
    assert!(
        metrics.reports.label_sets() <= limit + 50,
        "{} label sets",
        metrics.reports.label_sets()
    );
    assert!(
        metrics.reports.overflow.get() > 90_000,
        "overflow {}",
        metrics.reports.overflow.get()
    );
    let text = String::from_utf8(metrics.encode()).unwrap();
    let series = text
        .lines()
        .filter(|l| {
            l.starts_with("deliverability_dmarc_")
                && !l.starts_with("deliverability_dmarc_label_overflow")
        })
        .count();
    assert!(series <= limit + 50, "{series} report series");
    // Raw IPs and stranger domains never become label values.
    assert!(
        !text.contains("10.1.") && !text.contains("stranger"),
        "raw values leaked into labels"
    );
    assert!(
        text.contains("domain=\"other\""),
        "unconfigured domains are counted as other"
    );
    // Every message is still counted, folded or not.
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("deliverability_dmarc_messages_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, f64::from(n));
    // Memory: the flood may cost a little (the cap's label sets), not a growth per report.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew by {} KiB",
        after.saturating_sub(before)
    );
}
