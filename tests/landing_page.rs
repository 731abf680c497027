//! The landing page in a real browser (Debian's headless Chromium, flags for a closed network):
//! it renders without scripts, and shows the routes matrix, the domains' DNS and blacklist
//! state, the recent reports and check runs of the exporter running on the local stack.

mod common;

use std::process::Command;

use common::repo;

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium (scripts/test installs Debian's chromium)")
}

#[test]
fn the_landing_page_renders_the_routes_domains_and_reports() {
    let (_st, dir, e) = common::demo_scenario("landing");
    let url = format!("http://{}/", e.addr);
    let profile = dir.path().join("chromium-profile");
    let out = chromium(&["--dump-dom", &url], &profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The routes matrix: every provider × seed with its last result.
    assert!(dom.contains("<table id=\"routes\">"), "{dom}");
    for p in [
        "postfix-starttls",
        "postfix-implicit",
        "misconfigured",
        "spammy",
        "wrong-password",
    ] {
        assert!(dom.contains(&format!("<td>{p}</td>")), "{p} missing: {dom}");
    }
    assert!(dom.contains("<td>delivered</td><td>inbox</td>"), "{dom}");
    assert!(dom.contains("<td>delivered</td><td>spam</td>"), "{dom}");
    assert!(dom.contains("auth failed (permanent, 535 5.7.8)"), "{dom}");
    // The domains' DNS checks, the blacklist state, the reports read, the check runs.
    assert!(
        dom.contains("<table id=\"domains\">") && dom.contains("<td>dx.test</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<table id=\"dnsbl\">")
            && dom.contains("<td>192.0.2.10</td><td>dnsbl-test</td><td>listed</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<table id=\"reports\">") && dom.contains("<td>receiver.example</td>"),
        "{dom}"
    );
    assert!(dom.contains("Recent check runs"), "{dom}");
    // And it draws: a screenshot of the page (kept in target/ for a look).
    let shot = repo().join("target/landing-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &[
            "--window-size=1400,2400",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
        &profile,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot of {} bytes",
        png.len()
    );
}
