//! XOAUTH2 with refresh tokens, as Gmail and Microsoft 365 need: the exporter exchanges each
//! provider's and seed's refresh token for an access token, then logs in with it to the real
//! Postfix (SMTP AUTH XOAUTH2) and Dovecot (IMAP AUTHENTICATE XOAUTH2), which check the token.
//!
//! The token endpoint is the one part that is not a real server: Google's and Microsoft's can't
//! be reached from here, so this test runs a minimal one (`/token` exchanges refresh tokens,
//! `/tokeninfo` is what Dovecot asks to validate an access token).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Scrape, Stack, TempDir, bin};

/// Serves `/token` (refresh token `rt-USER` → access token `at-USER`; anything else is
/// refused with `invalid_grant`) and `/tokeninfo?access_token=at-USER` → `{"email": USER}`.
fn token_endpoint(l: TcpListener, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let first = req.lines().next().unwrap_or("").to_string();
            log.lock().unwrap().push(first.clone());
            let (status, body) = if first.starts_with("POST /token") {
                let form = req.split("\r\n\r\n").nth(1).unwrap_or("");
                let rt = form
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("refresh_token="))
                    .unwrap_or("");
                let rt = rt.replace("%40", "@");
                match rt.strip_prefix("rt-") {
                    Some(user) => (200, format!("{{\"access_token\":\"at-{user}\",\"expires_in\":3600,\"token_type\":\"Bearer\"}}")),
                    None => (400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}".to_string()),
                }
            } else if let Some(rest) = first.strip_prefix("GET /tokeninfo?access_token=") {
                let token = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .replace("%40", "@");
                match token.strip_prefix("at-") {
                    Some(user) => (200, format!("{{\"email\":\"{user}\"}}")),
                    None => (400, "{\"error\":\"invalid_token\"}".to_string()),
                }
            } else {
                (404, "{}".to_string())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

#[test]
fn xoauth2_with_refreshed_tokens_for_smtp_and_imap() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    token_endpoint(listener, log.clone());
    let st = Stack::start("oauth2", &[("DX_OAUTH_PORT", &port.to_string())]);
    let dir = TempDir::new("oauth2");
    let ca = st.get("DX_CA_FILE");
    let oauth = |rt: &str| {
        format!(
            "oauth2 = {{ token_url = \"http://127.0.0.1:{port}/token\", client_id = \"client-1\", client_secret = \"client-secret-xyz\", refresh_token = \"{rt}\" }}"
        )
    };
    let cfg = format!(
        r#"[exporter]
state_dir = "{state}"

[dns]
nameservers = ["127.0.0.1:{dns}"]

[canary]
deadline = "30s"

[[providers]]
name = "workspace"
host = "127.0.0.1"
port = {submit}
tls = "starttls"
username = "sender1@dx.test"
auth = ["xoauth2"]
from = "canary@dx.test"
ca_file = "{ca}"
{good}

[[providers]]
name = "revoked"
host = "127.0.0.1"
port = {submit}
tls = "starttls"
username = "sender2@dx.test"
auth = ["xoauth2"]
from = "canary@dx.test"
ca_file = "{ca}"
{bad}

[[seeds]]
name = "s1"
address = "seed1@seed.test"
host = "127.0.0.1"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
{seed}
"#,
        state = dir.path().join("state").display(),
        submit = st.port("DX_SMTP_SUBMIT_PORT"),
        dns = st.port("DX_DNS_PORT"),
        imaps = st.port("DX_IMAPS_PORT"),
        good = oauth("rt-sender1@dx.test"),
        bad = oauth("revoked-refresh-token-xyz"),
        seed = oauth("rt-seed1@seed.test"),
    );
    let path = dir.path().join("dx.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(bin())
        .args(["--log.level", "debug", "--config.file"])
        .arg(&path)
        .args(["once", "--only", "canary"])
        .output()
        .unwrap();
    let s = Scrape(String::from_utf8_lossy(&out.stdout).into_owned());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();

    let w = [("provider", "workspace"), ("seed", "s1")];
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[w[0], w[1], ("placement", "inbox")]
        ),
        Some(1.0),
        "{err}"
    );
    assert_eq!(
        s.value(
            "deliverability_smtp_auth_mechanism_info",
            &[("provider", "workspace"), ("mechanism", "xoauth2")]
        ),
        Some(1.0)
    );
    // The canary was found by the seed watcher, which logged in with XOAUTH2.
    // The revoked refresh token: an AUTH failure before any SMTP connection.
    assert_eq!(
        s.value(
            "deliverability_canary_send_failures_total",
            &[
                ("provider", "revoked"),
                ("seed", "s1"),
                ("stage", "auth"),
                ("class", "permanent"),
                ("code", "")
            ]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    assert!(err.contains("invalid_grant"), "{err}");
    // One refresh per token source; Dovecot validated both access tokens.
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("POST /token")).count(),
        3,
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("tokeninfo?access_token=at-sender1")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("tokeninfo?access_token=at-seed1")),
        "{log:?}"
    );
    for secret in [
        "client-secret-xyz",
        "revoked-refresh-token-xyz",
        "rt-sender1",
        "at-sender1",
    ] {
        assert!(
            !err.contains(secret) && !s.0.contains(secret),
            "{secret} leaked:\n{err}"
        );
    }
}
