//! Bounces tied to the canary that caused them (issue 12), with real Postfix DSNs: the
//! stack's submission port accepts canaries for `relay550@seed.test` and `relay554@seed.test`,
//! queues them and relays them to its MX port, which refuses them (550 5.7.1 "refused by local
//! policy", 554 5.7.1 "blocked using dnsbl-test"; scripts/stack.d/postfix/relay_reject), so
//! Postfix sends a delivery status notification (RFC 3464) to the canary's envelope sender.
//! The provider sends with `bounce_address = "reports+{token}@seed.test"` (VERP) and, as the
//! stack's Postfix offers DSN, with the token as ENVID; the DSN lands in the stack's reports
//! mailbox, which the reports check reads.
//!
//! Proven: each bounced canary ends as `bounced` with its class and reason within seconds of
//! its send, never lost; a canary to a working seed is delivered as usual; a bounce for a
//! message that is not a canary of ours (sent to the same refusing address by a test client)
//! is counted as unattributed and given to no route; after a restart nothing is counted again
//! (the DSNs were moved to `Reports/processed` and are in the ledger; the canaries are done in
//! the tracker). Nothing leaves 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::config::{
    Canary, ConfigBuilder, Dns, Domain, Reports, Seed, imaps_seed1, signing_provider,
};
use common::{Exporter, Stack, TempDir, smtp_deliver};

fn bounced(s: &common::Scrape, seed: &str, reason: &str) -> f64 {
    s.sum(
        "deliverability_canary_bounced_total",
        &[
            ("provider", "esp"),
            ("seed", seed),
            ("class", "permanent"),
            ("reason", reason),
        ],
    )
}

#[test]
fn a_real_bounce_ends_its_canary_with_its_reason() {
    let st = Stack::start("bounces", &[]);
    let dir = TempDir::new("bounces");
    let refusing = |name: &str, address: &str, login: &str| {
        Seed::implicit_tls(name, st.port("DX_IMAPS_PORT"))
            .address(address)
            .login(login, &format!("pw-{}", login.split('@').next().unwrap()))
            .ca_file(st.get("DX_CA_FILE"))
    };
    let base = ConfigBuilder::new(&dir)
        .canary(Canary::new().interval("1h").deadline("60s").jitter(0.0))
        .dns(Dns::local(st.port("DX_DNS_PORT")))
        .provider(signing_provider(&st, "esp").bounce_address("reports+{token}@seed.test"))
        .seed(imaps_seed1(&st))
        .reports(
            Reports::new()
                .interval("1s")
                .stack_mailbox_source("bounces", &st),
        );
    let cfg_path = base
        .clone()
        .seed(refusing("rejects", "relay550@seed.test", "seed2@seed.test"))
        .seed(refusing("blocks", "relay554@seed.test", "seed3@seed.test"))
        .write();
    let started = Instant::now();
    let e = Exporter::start(&cfg_path, &[]);
    let s = e.wait_for(
        "both refused canaries bounced, the other delivered",
        Duration::from_secs(45),
        |s| {
            bounced(s, "rejects", "policy") == 1.0
                && bounced(s, "blocks", "blocklist") == 1.0
                && s.sum(
                    "deliverability_canary_delivered_total",
                    &[("seed", "seed1")],
                ) == 1.0
        },
    );
    let took = started.elapsed();
    println!("exporter start -> both canaries bounced with their reasons: {took:.1?}");
    for seed in ["rejects", "blocks"] {
        assert_eq!(
            s.value(
                "deliverability_canary_lost_total",
                &[("provider", "esp"), ("seed", seed)]
            ),
            Some(0.0),
            "{seed}: a bounced canary is not lost"
        );
        assert_eq!(
            s.value(
                "deliverability_canary_in_flight",
                &[("provider", "esp"), ("seed", seed)]
            ),
            Some(0.0),
            "{seed}: ended"
        );
        assert_eq!(
            s.value(
                "deliverability_canary_success",
                &[("provider", "esp"), ("seed", seed)]
            ),
            Some(0.0)
        );
    }
    assert_eq!(
        s.sum("deliverability_canary_bounced_total", &[]),
        2.0,
        "nothing else bounced"
    );
    assert_eq!(s.sum("deliverability_bounces_unattributed_total", &[]), 0.0);
    let log = e.log_text();
    assert!(
        log.lines().any(|l| l.contains("canary bounced")
            && l.contains("seed=blocks")
            && l.contains("blocked using dnsbl-test")),
        "the log names the diagnostic\n{log}"
    );
    // The envelope sender named the canary and the server took ENVID.
    let dsn_log = std::fs::read_to_string(st.get("DX_POSTFIX_LOG")).unwrap_or_default();
    assert!(
        dsn_log.contains("from=<reports+dx-") && dsn_log.contains("dsn=5.7.1"),
        "Postfix's log shows the VERP sender and the bounce"
    );

    // A bounce for a message that is no canary of ours: counted, never attributed.
    smtp_deliver(
        st.port("DX_REINJECT_PORT"),
        "reports+someone-else@seed.test",
        "relay550@seed.test",
        b"From: newsletter@seed.test\r\nTo: relay550@seed.test\r\nSubject: not a canary\r\nMessage-ID: <n1@seed.test>\r\n\r\nhello\r\n",
    );
    let s = e.wait_for("the stranger's bounce", Duration::from_secs(30), |s| {
        s.value(
            "deliverability_bounces_unattributed_total",
            &[("class", "permanent"), ("reason", "policy")],
        ) == Some(1.0)
    });
    assert_eq!(s.sum("deliverability_canary_bounced_total", &[]), 2.0);
    e.stop();

    // After a restart (the refusing seeds left out, so that no new canary bounces) nothing is
    // counted again: the stranger's bounce would count as unattributed if it were read twice.
    let e = Exporter::start(&base.write(), &[]);
    let s = e.wait_for(
        "a reports scan after the restart",
        Duration::from_secs(20),
        |s| {
            s.value(
                "deliverability_check_last_run_timestamp_seconds",
                &[("check", "reports")],
            )
            .is_some_and(|t| t > 0.0)
                && s.sum("deliverability_canary_delivered_total", &[]) == 1.0
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let s2 = e.scrape();
    for s in [&s, &s2] {
        assert_eq!(s.sum("deliverability_canary_bounced_total", &[]), 0.0);
        assert_eq!(s.sum("deliverability_bounces_unattributed_total", &[]), 0.0);
        assert_eq!(s.sum("deliverability_canary_lost_total", &[]), 0.0);
    }
    e.stop();
}

/// Complaints (ARF, RFC 5965) and a DMARC failure report (RFC 6591), written by `mail-auth`
/// (tests/fixtures/feedback), mailed through the stack's Postfix into the reports mailbox and
/// read over IMAP: counted once, by reporter, type, failed mechanism and source class, with no
/// recipient or subject in the metrics or the log, and not again after a restart.
#[test]
fn complaints_and_failure_reports_are_counted_once_without_personal_data() {
    let st = Stack::start("feedback", &[]);
    let dir = TempDir::new("feedback");
    let fixtures = common::repo().join("tests/fixtures/feedback");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3);
    for p in &names {
        smtp_deliver(
            st.port("DX_SMTP_MX_PORT"),
            "",
            "reports@seed.test",
            &std::fs::read(p).unwrap(),
        );
    }
    let cfg = ConfigBuilder::new(&dir)
        .dns(Dns::local(st.port("DX_DNS_PORT")))
        .domain(Domain::new("dx.test"))
        .reports(
            Reports::new()
                .interval("1s")
                .stack_mailbox_source("fbl", &st),
        )
        .write();
    let e = Exporter::start(&cfg, &[]);
    let want = [
        ("yahoo.com", "abuse"),
        ("hotmail.com", "abuse"),
        ("receiver.example", "auth-failure"),
    ];
    let s = e.wait_for("the three feedback reports", Duration::from_secs(30), |s| {
        want.iter().all(|(r, t)| {
            s.value(
                "deliverability_feedback_reports_total",
                &[("domain", "dx.test"), ("reporter", r), ("feedback_type", t)],
            ) == Some(1.0)
        })
    });
    assert_eq!(s.sum("deliverability_feedback_reports_total", &[]), 3.0);
    assert_eq!(
        s.value(
            "deliverability_dmarc_failure_reports_total",
            &[
                ("domain", "dx.test"),
                ("reporter", "receiver.example"),
                ("auth_failure", "dmarc"),
                ("source", "unknown")
            ]
        ),
        Some(1.0)
    );
    let log = e.log_text();
    for personal in [
        "complainer@yahoo.com",
        "someone@receiver.example",
        "Your order",
    ] {
        assert!(!s.0.contains(personal), "{personal} in the metrics");
        assert!(!log.contains(personal), "{personal} in the log:\n{log}");
    }
    e.stop();
    // Again, after a restart, with the same reports mailed once more (a receiver re-sending):
    // the ledger knows them.
    for p in &names {
        smtp_deliver(
            st.port("DX_SMTP_MX_PORT"),
            "",
            "reports@seed.test",
            &std::fs::read(p).unwrap(),
        );
    }
    let e = Exporter::start(&cfg, &[]);
    let s = e.wait_for("the re-sent reports read", Duration::from_secs(30), |_| {
        e.log_text()
            .matches("report already counted; not counted again")
            .count()
            >= 3
    });
    assert_eq!(s.sum("deliverability_feedback_reports_total", &[]), 0.0);
    assert_eq!(
        s.sum("deliverability_dmarc_failure_reports_total", &[]),
        0.0
    );
    e.stop();
}
