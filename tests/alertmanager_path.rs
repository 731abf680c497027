//! The alerting path on the real stack: Prometheus scrapes a target, evaluates rules the test
//! supplies (`DX_PROM_RULES`), sends its alerts to the stack's Alertmanager, which routes and
//! inhibits them and notifies a webhook the test runs (tests/common/alerting.rs).
//!
//! - `routing_inhibition_and_resolution_reach_the_webhook`: the test's own Alertmanager config
//!   (`DX_AM_CONFIG`) with an inhibit rule; a condition the test controls (a scrape target's
//!   samples) fires an alert, inhibits another, and is repaired.
//! - `the_stack_template_notifies_the_callers_webhook`: the stack's own Alertmanager config,
//!   its webhook at `DX_AM_WEBHOOK_PORT`, a constant alert.
//!
//! Timers are short (scrape and evaluation 1 s, `for: 0s`, group_wait/group_interval 1 s) and
//! every wait is bounded; the assertions are on content, the durations are printed.

mod common;

use std::time::{Duration, Instant};

use common::alerting::{
    MetricsTarget, Webhook, am_alerts, am_metric, prometheus_scrape, wait_am_alert, wait_prom_query,
};
use common::{Stack, TempDir};

const WAIT: Duration = Duration::from_secs(60);

/// A site down (critical) inhibits the canary alert of the same site (warning); the canary
/// alert of another site is not inhibited (the control).
const RULES: &str = r#"groups:
  - name: dx-am-path
    rules:
      - alert: DxAmTestSiteDown
        expr: dx_am_test_down == 1
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: "site {{ $labels.site }} is down"
      - alert: DxAmTestCanaryLost
        expr: dx_am_test_lost == 1
        for: 0s
        labels:
          severity: warning
        annotations:
          summary: "canaries to site {{ $labels.site }} are lost"
"#;

fn am_config(webhook_url: &str) -> String {
    format!(
        r#"route:
  receiver: test-webhook
  group_by: [alertname, site]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test-webhook
    webhook_configs:
      - url: "{webhook_url}"
        send_resolved: true
inhibit_rules:
  - source_matchers: ['alertname="DxAmTestSiteDown"']
    target_matchers: ['alertname="DxAmTestCanaryLost"']
    equal: [site]
"#
    )
}

const DOWN_A: &str = r#"dx_am_test_down{site="a"}"#;
const LOST_A: &str = r#"dx_am_test_lost{site="a"}"#;
const LOST_B: &str = r#"dx_am_test_lost{site="b"}"#;

#[test]
fn routing_inhibition_and_resolution_reach_the_webhook() {
    let hook = Webhook::start();
    let target = MetricsTarget::start();
    for s in [DOWN_A, LOST_A, LOST_B] {
        target.set(s, 0.0);
    }
    let dir = TempDir::new("am-path");
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/path.yml"), RULES).unwrap();
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(&am_file, am_config(&hook.url())).unwrap();
    let rules_glob = dir.path().join("rules/*.yml");
    let st = Stack::start(
        "am-path",
        &[
            ("DX_AM_CONFIG", am_file.to_str().unwrap()),
            ("DX_PROM_RULES", rules_glob.to_str().unwrap()),
        ],
    );
    assert_eq!(st.get("DX_AM_CONFIG_FILE"), am_file.to_str().unwrap());
    prometheus_scrape(&st, "am-path", &target.addr());
    let t0 = Instant::now();
    wait_prom_query(&st, "dx_am_test_down == 0", WAIT);
    println!(
        "Prometheus has the target's samples {:.1?} after the file_sd file",
        t0.elapsed()
    );

    // (a) The fault: the site-down alert reaches the webhook, with its labels.
    let fault = Instant::now();
    target.set(DOWN_A, 1.0);
    let fired = hook.wait_for_labels(
        &[("alertname", "DxAmTestSiteDown"), ("site", "a")],
        "firing",
        None,
        WAIT,
    );
    println!(
        "fault -> firing notification at the webhook: {:.2?}",
        fired.at - fault
    );
    assert_eq!(fired.labels["severity"], "critical", "{:?}", fired.labels);
    assert_eq!(fired.labels["job"], "deliverability", "{:?}", fired.labels);
    assert_eq!(fired.notification["receiver"], "test-webhook");
    assert_eq!(fired.notification["status"], "firing");
    assert_eq!(
        fired.notification["groupLabels"]["site"], "a",
        "grouped by site: {}",
        fired.notification
    );

    // (b) Canaries lost on site a (down: inhibited) and on site b (not inhibited, the control).
    let lost = Instant::now();
    target.set(LOST_A, 1.0);
    target.set(LOST_B, 1.0);
    let control = hook.wait_for_labels(
        &[("alertname", "DxAmTestCanaryLost"), ("site", "b")],
        "firing",
        None,
        WAIT,
    );
    println!(
        "canaries lost -> firing notification of the uninhibited alert (site b): {:.2?}",
        control.at - lost
    );
    let inhibited = wait_am_alert(
        &st,
        &[("alertname", "DxAmTestCanaryLost"), ("site", "a")],
        |a| a.state == "suppressed" && !a.inhibited_by.is_empty(),
        "suppressed with inhibitedBy",
        WAIT,
    );
    let alerts = am_alerts(&st);
    let source = alerts
        .iter()
        .find(|a| a.labels.get("alertname").map(String::as_str) == Some("DxAmTestSiteDown"))
        .unwrap_or_else(|| panic!("Alertmanager lost the site-down alert: {alerts:?}"));
    assert_eq!(source.state, "active", "{source:?}");
    assert_eq!(
        inhibited.inhibited_by,
        vec![source.fingerprint.clone()],
        "the canary alert of site a is inhibited by the site-down alert of site a"
    );
    assert!(inhibited.silenced_by.is_empty(), "{inhibited:?}");
    let control_am = alerts
        .iter()
        .find(|a| {
            a.labels.get("alertname").map(String::as_str) == Some("DxAmTestCanaryLost")
                && a.labels.get("site").map(String::as_str) == Some("b")
        })
        .unwrap_or_else(|| panic!("Alertmanager lost the site-b canary alert: {alerts:?}"));
    assert_eq!(control_am.state, "active", "{control_am:?}");
    assert!(control_am.inhibited_by.is_empty(), "{control_am:?}");
    // Its aggregation group flushes every group_interval (1 s): a few of them pass with the
    // alert suppressed, and nothing about it reaches the webhook (checked again at the end).
    std::thread::sleep(Duration::from_secs(4));
    let leaked = hook.alerts(&[("alertname", "DxAmTestCanaryLost"), ("site", "a")], None);
    assert!(
        leaked.is_empty(),
        "the inhibited alert was notified: {leaked:?}"
    );

    // (c) Repair: the canaries first (site b's resolution is notified, site a's is not: it was
    // never notified), then the site; its resolution is notified.
    let repair_lost = Instant::now();
    target.set(LOST_A, 0.0);
    target.set(LOST_B, 0.0);
    let control_resolved = hook.wait_for_labels(
        &[("alertname", "DxAmTestCanaryLost"), ("site", "b")],
        "resolved",
        None,
        WAIT,
    );
    println!(
        "canaries repaired -> resolved notification (site b): {:.2?}",
        control_resolved.at - repair_lost
    );
    // site a's canary alert is gone from Alertmanager's active alerts (resolved) before the
    // site is repaired, so the inhibition cannot end while it fires
    let t = Instant::now();
    loop {
        let still = am_alerts(&st).into_iter().any(|a| {
            a.labels.get("alertname").map(String::as_str) == Some("DxAmTestCanaryLost")
                && a.labels.get("site").map(String::as_str) == Some("a")
        });
        if !still {
            break;
        }
        assert!(
            t.elapsed() < WAIT,
            "the canary alert of site a never resolved in Alertmanager:\n{}",
            common::alerting::alerting_state(&st)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let repair = Instant::now();
    target.set(DOWN_A, 0.0);
    let resolved = hook.wait_for_labels(
        &[("alertname", "DxAmTestSiteDown"), ("site", "a")],
        "resolved",
        None,
        WAIT,
    );
    println!(
        "repair -> resolved notification at the webhook: {:.2?}",
        resolved.at - repair
    );
    assert_eq!(resolved.fingerprint, fired.fingerprint);
    assert_eq!(resolved.labels, fired.labels);

    // Over the whole run: the inhibited alert never reached the webhook, each of the others
    // was notified firing once and resolved once, and Alertmanager counts what arrived.
    std::thread::sleep(Duration::from_secs(2));
    let leaked = hook.alerts(&[("alertname", "DxAmTestCanaryLost"), ("site", "a")], None);
    assert!(
        leaked.is_empty(),
        "the inhibited alert was notified: {leaked:?}"
    );
    for (name, site) in [("DxAmTestSiteDown", "a"), ("DxAmTestCanaryLost", "b")] {
        for status in ["firing", "resolved"] {
            let n = hook
                .alerts(&[("alertname", name), ("site", site)], Some(status))
                .len();
            assert_eq!(
                n,
                1,
                "{name} site {site}: {n} {status} notifications\n{}",
                hook.dump()
            );
        }
    }
    let posts = hook.notifications().len();
    let sent = am_metric(
        &st,
        "alertmanager_notifications_total",
        &[("integration", "webhook")],
    );
    let failed = am_metric(
        &st,
        "alertmanager_notifications_failed_total",
        &[("integration", "webhook")],
    );
    println!(
        "webhook received {posts} notifications; Alertmanager counts {sent} sent, {failed} failed"
    );
    assert_eq!(posts, 4, "{}", hook.dump());
    assert_eq!(sent, posts as f64);
    assert_eq!(failed, 0.0);
    assert!(target.scrapes() > 0);
}

#[test]
fn the_stack_template_notifies_the_callers_webhook() {
    let hook = Webhook::start();
    let dir = TempDir::new("am-template");
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/always.yml"),
        r#"groups:
  - name: dx-am-template
    rules:
      - alert: DxAmTestAlways
        expr: vector(1)
        for: 0s
        labels:
          severity: info
"#,
    )
    .unwrap();
    let rules_glob = dir.path().join("rules/*.yml");
    let port = hook.port().to_string();
    let start = Instant::now();
    let st = Stack::start(
        "am-template",
        &[
            ("DX_AM_WEBHOOK_PORT", port.as_str()),
            ("DX_PROM_RULES", rules_glob.to_str().unwrap()),
        ],
    );
    let up = start.elapsed();
    assert_eq!(st.get("DX_AM_WEBHOOK_URL"), hook.url());
    assert_eq!(
        st.get("DX_AM_CONFIG_FILE"),
        st.dir
            .join("alertmanager/alertmanager.yml")
            .to_str()
            .unwrap()
    );
    assert_eq!(st.get("DX_AM_CONFIG"), "");
    assert_eq!(
        st.get("DX_AM_URL"),
        format!("http://127.0.0.1:{}", st.port("DX_AM_PORT"))
    );
    let n = hook.wait_for("DxAmTestAlways", "firing", WAIT);
    println!(
        "stack up in {up:.2?}; the constant alert's firing notification {:.2?} after `up` began",
        n.at - start
    );
    assert_eq!(n.notification["receiver"], "webhook");
    assert_eq!(n.labels["severity"], "info");
    let a = wait_am_alert(
        &st,
        &[("alertname", "DxAmTestAlways")],
        |a| a.state == "active",
        "active",
        WAIT,
    );
    assert_eq!(a.receivers, vec!["webhook".to_string()]);

    // The service commands work on it: after a restart Prometheus re-sends the alert.
    let t = Instant::now();
    st.ctl(&["restart", "alertmanager"]);
    wait_am_alert(
        &st,
        &[("alertname", "DxAmTestAlways")],
        |a| a.state == "active",
        "active after a restart",
        WAIT,
    );
    println!(
        "restart alertmanager -> the alert is back in it after {:.2?}",
        t.elapsed()
    );
}
