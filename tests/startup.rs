//! Start-up on the real stack: with ten-minute intervals and the widest `canary.jitter`, the
//! DNS record, blacklist and report checks have run within seconds of start-up, and their
//! success gauges say so. (The canary check starts as promptly, but spreads its routes over
//! `canary.jitter` × interval, as documented: its run ends when the last route has sent.) (Before issue 11 the jitter delayed the first run of every check
//! by up to jitter × interval: `check_success` stayed 0 for minutes after a start.)

mod common;

use std::time::Duration;

use common::{Exporter, Stack, TempDir};

#[test]
fn every_check_runs_promptly_at_start_up() {
    let st = Stack::start("startup", &[]);
    let dir = TempDir::new("startup");
    let cfg = common::demo_config(&st, &dir);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("interval = \"10s\"") && text.contains("jitter = 0.2"));
    let text = text
        .replace("interval = \"10s\"", "interval = \"10m\"")
        .replace("jitter = 0.2", "jitter = 1.0");
    std::fs::write(&cfg, text).unwrap();

    let e = Exporter::start(&cfg, &[]);
    let checks = ["dns", "dnsbl", "reports"];
    // The stagger puts the last first run a few seconds after start; the bound leaves room for
    // a busy machine and is far below the minutes the old jitter could wait.
    let s = e.wait_for("a first run of every check", Duration::from_secs(60), |s| {
        checks
            .iter()
            .all(|c| s.sum("deliverability_check_runs_total", &[("check", c)]) >= 1.0)
    });
    // Their results are in, not just their runs.
    assert_eq!(
        s.value(
            "deliverability_dns_check_success",
            &[("domain", "dx.test"), ("check", "spf")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    assert_eq!(
        s.value(
            "deliverability_dnsbl_listed",
            &[("target", "192.0.2.10"), ("zone", "dnsbl-test")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    let last: Vec<f64> = checks
        .iter()
        .map(|c| {
            s.value(
                "deliverability_check_last_run_timestamp_seconds",
                &[("check", c)],
            )
            .unwrap()
        })
        .collect();
    assert!(last.iter().all(|t| *t > 0.0), "{last:?}");
}
