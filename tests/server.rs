//! The running exporter without checks: endpoints, reload of good and bad configurations,
//! `promtool check metrics` on a scrape, `check-config`, and shutdown.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Exporter, TempDir, bin, http, promtool_check_metrics};

fn write(dir: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn base_config(dir: &TempDir) -> String {
    format!(
        "[exporter]\nstate_dir = \"{}\"\ninstance = \"test-1\"\n",
        dir.path().join("state").display()
    )
}

#[test]
fn serves_metrics_health_ready_and_a_landing_page() {
    let dir = TempDir::new("server");
    let cfg = write(&dir, "dx.toml", &base_config(&dir));
    let e = Exporter::start(&cfg, &[]);
    assert_eq!(e.get("/-/healthy"), (200, "Healthy.\n".into()));
    assert_eq!(e.get("/-/ready").0, 200);
    let s = e.scrape();
    assert_eq!(
        s.value("deliverability_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        s.value(
            "deliverability_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .unwrap()
            > 1.7e9
    );
    let build = s.samples("deliverability_build_info");
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert!(s.value("process_resident_memory_bytes", &[]).unwrap() > 0.0);
    let complaints = promtool_check_metrics(&s.0);
    assert!(
        complaints.trim().is_empty(),
        "promtool check metrics complains:\n{complaints}\n{}",
        s.0
    );

    let (code, page) = e.get("/");
    assert_eq!(code, 200);
    assert!(page.contains("<a href=\"/metrics\">Metrics</a>"), "{page}");
    assert!(
        page.contains("test-1"),
        "instance name on the landing page: {page}"
    );
    assert_eq!(e.get("/nope").0, 404);
    assert_eq!(http(&e.addr, "POST", "/metrics").0, 405);
    // Lifecycle API is off unless enabled.
    assert_eq!(http(&e.addr, "POST", "/-/reload").0, 403);
}

#[test]
fn telemetry_path_flag_moves_metrics() {
    let dir = TempDir::new("telemetry");
    let cfg = write(&dir, "dx.toml", &base_config(&dir));
    let e = Exporter::start(&cfg, &["--web.telemetry-path", "/probe-metrics"]);
    let (code, body) = e.get("/probe-metrics");
    assert_eq!(code, 200);
    assert!(body.contains("deliverability_build_info"));
    assert_eq!(e.get("/metrics").0, 404);
}

#[test]
fn reload_keeps_the_old_config_when_the_new_one_is_bad() {
    let dir = TempDir::new("reload");
    let good = base_config(&dir);
    let cfg = write(&dir, "dx.toml", &good);
    let e = Exporter::start(&cfg, &["--web.enable-lifecycle"]);
    assert_eq!(
        http(&e.addr, "GET", "/-/reload").0,
        405,
        "reload needs POST"
    );

    // A bad config over HTTP: refused with the position of the problem, old one kept.
    std::fs::write(&cfg, format!("{good}\n[dns]\ntimeout = \"forever\"\n")).unwrap();
    let (code, body) = http(&e.addr, "POST", "/-/reload");
    assert_eq!(code, 500, "{body}");
    assert!(
        body.contains("dx.toml:6:11: dns.timeout: expected a duration"),
        "{body}"
    );
    let s = e.scrape();
    assert_eq!(
        s.value("deliverability_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        e.get("/-/ready").0,
        200,
        "still serving the old configuration"
    );
    let ts_before = s
        .value(
            "deliverability_config_last_reload_success_timestamp_seconds",
            &[],
        )
        .unwrap();

    // Fixed, then reloaded with SIGHUP.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&cfg, &good).unwrap();
    e.signal("HUP");
    let s = e.wait_for(
        "a successful reload after SIGHUP",
        Duration::from_secs(10),
        |s| s.value("deliverability_config_last_reload_successful", &[]) == Some(1.0),
    );
    assert!(
        s.value(
            "deliverability_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .unwrap()
            > ts_before
    );

    // A bad config with SIGHUP.
    std::fs::write(&cfg, "[[providers]]\nname = \"x\"\n").unwrap();
    e.signal("HUP");
    e.wait_for(
        "a refused reload after SIGHUP",
        Duration::from_secs(10),
        |s| s.value("deliverability_config_last_reload_successful", &[]) == Some(0.0),
    );
    assert!(
        e.log_text().contains("configuration reload refused"),
        "{}",
        e.log_text()
    );

    // Good again over HTTP.
    std::fs::write(&cfg, &good).unwrap();
    assert_eq!(
        http(&e.addr, "POST", "/-/reload"),
        (200, "Configuration reloaded.\n".into())
    );
}

#[test]
fn shuts_down_promptly_on_sigterm() {
    let dir = TempDir::new("term");
    let cfg = write(&dir, "dx.toml", &base_config(&dir));
    let e = Exporter::start(&cfg, &[]);
    let took = e.stop();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[test]
fn refuses_to_start_with_an_unwritable_state_dir() {
    let dir = TempDir::new("state");
    let file = write(&dir, "not-a-dir", "x");
    let cfg = write(
        &dir,
        "dx.toml",
        &format!("[exporter]\nstate_dir = \"{}/sub\"\n", file.display()),
    );
    let out = Command::new(bin())
        .args(["--web.listen-address", "127.0.0.1:0", "--config.file"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state directory") && err.contains("cannot create it"),
        "{err}"
    );
}

#[test]
fn check_config_points_at_the_broken_line() {
    let dir = TempDir::new("checkcfg");
    let good = write(&dir, "good.toml", &base_config(&dir));
    let out = Command::new(bin())
        .args(["check-config", "--config.file"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid: 0 providers"));

    let bad = write(
        &dir,
        "bad.toml",
        "[[providers]]\nname = \"a\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nport = 99999\n",
    );
    let out = Command::new(bin())
        .args(["check-config", "--config.file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:5:8: providers[0].port: expected an integer 1-65535, got 99999"),
        "{err}"
    );
}

#[test]
fn help_and_version() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.starts_with(&format!(
            "deliverability_exporter {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{v}"
    );
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let h = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config.file",
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--log.level",
        "--log.format",
        "check-config",
        "once",
        "parse-report",
    ] {
        assert!(h.contains(needle), "--help lacks {needle}:\n{h}");
    }
}

#[test]
fn json_logs_are_json() {
    let dir = TempDir::new("jsonlog");
    let cfg = write(
        &dir,
        "dx.toml",
        "[exporter]\nstate_dir = \"/nonexistent-file-dir/\\u0000\"\n",
    );
    let out = Command::new(bin())
        .args([
            "--log.format",
            "json",
            "--web.listen-address",
            "127.0.0.1:0",
            "--config.file",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("");
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert_eq!(v["level"], "ERROR");
}
