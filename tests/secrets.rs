//! Known secret strings planted in every secret field, some of them working credentials and
//! some wrong ones that make things fail (so they pass through error paths), must never appear
//! in /metrics, the landing page, /probe, any log line at debug level, or an error message.

mod common;

use std::time::Duration;

use common::{Exporter, Stack, TempDir, http};

#[test]
fn secrets_never_leave_the_process() {
    let st = Stack::start("secrets", &[]);
    let dir = TempDir::new("secrets");
    let ca = st.get("DX_CA_FILE");
    // Working credentials of the stack are secrets too.
    let secrets = [
        "pw-sender1",
        "pw-seed1",
        "SECRET-wrong-smtp-pw-0002",
        "SECRET-oauth-client-0003",
        "SECRET-oauth-refresh-0004",
        "SECRET-imap-wrong-0005",
        "SECRETdqs0006",
        "SECRET-reports-0007",
        "SECRET-env-0008",
        "SECRET-file-0009",
    ];
    let secret_file = dir.path().join("seed2-password");
    std::fs::write(&secret_file, "SECRET-file-0009\n").unwrap();
    let cfg = format!(
        r#"[exporter]
state_dir = "{state}"

[dns]
nameservers = ["127.0.0.1:{dns}"]
timeout = "1s"

[canary]
deadline = "20s"
interval = "1h"
jitter = 0.0

[[providers]]
name = "good"
host = "127.0.0.1"
port = {submit}
username = "sender1@dx.test"
password = "pw-sender1"
from = "canary@dx.test"
ca_file = "{ca}"

[[providers]]
name = "wrongpw"
host = "127.0.0.1"
port = {submit}
username = "sender2@dx.test"
password = "SECRET-wrong-smtp-pw-0002"
from = "canary@dx.test"
ca_file = "{ca}"

[[providers]]
name = "oauth"
host = "127.0.0.1"
port = {submit}
username = "sender3@dx.test"
from = "canary@dx.test"
ca_file = "{ca}"
oauth2 = {{ token_url = "http://127.0.0.1:1/token", client_id = "cid", client_secret = "SECRET-oauth-client-0003", refresh_token = "SECRET-oauth-refresh-0004" }}

[[providers]]
name = "envpw"
host = "127.0.0.1"
port = {submit}
username = "sender3@dx.test"
password = {{ env = "DX_TEST_PLANTED_SECRET" }}
from = "canary@dx.test"
ca_file = "{ca}"

[[seeds]]
name = "s1"
address = "seed1@seed.test"
host = "127.0.0.1"
port = {imaps}
password = "pw-seed1"
ca_file = "{ca}"

[[seeds]]
name = "s2"
address = "seed2@seed.test"
host = "127.0.0.1"
port = {imaps}
password = "SECRET-imap-wrong-0005"
ca_file = "{ca}"

[[seeds]]
name = "s3"
address = "seed3@seed.test"
host = "127.0.0.1"
port = {imaps}
password = {{ file = "{secret_file}" }}
ca_file = "{ca}"

[[domains]]
name = "dx.test"
dkim_selectors = ["dx"]
mta_sts = false

[dnsbl]
lists = ["spamhaus-zen"]
dqs_key = "SECRETdqs0006"
ips = ["192.0.2.10"]

[reports]
interval = "2s"

[[reports.sources]]
name = "mailbox"
kind = "imap"
host = "127.0.0.1"
port = {imaps}
username = "reports@seed.test"
password = "SECRET-reports-0007"
ca_file = "{ca}"
"#,
        state = dir.path().join("state").display(),
        dns = st.port("DX_DNS_PORT"),
        submit = st.port("DX_SMTP_SUBMIT_PORT"),
        imaps = st.port("DX_IMAPS_PORT"),
        secret_file = secret_file.display(),
    );
    let path = dir.path().join("dx.toml");
    std::fs::write(&path, &cfg).unwrap();

    // SAFETY: set before the exporter (a child process) starts; read by no other test.
    unsafe { std::env::set_var("DX_TEST_PLANTED_SECRET", "SECRET-env-0008") };
    let e = Exporter::start(&path, &["--web.enable-lifecycle"]);
    // Let every check run and fail where it should: sends, logins, token refresh, DQS.
    let s = e.wait_for(
        "every route to have a result",
        Duration::from_secs(40),
        |s| {
            s.value(
                "deliverability_canary_success",
                &[("provider", "good"), ("seed", "s1")],
            ) == Some(1.0)
                && s.sum(
                    "deliverability_canary_send_failures_total",
                    &[("provider", "wrongpw")],
                ) >= 3.0
                && s.sum(
                    "deliverability_canary_send_failures_total",
                    &[("provider", "oauth")],
                ) >= 3.0
                && s.value(
                    "deliverability_check_runs_total",
                    &[("check", "dnsbl"), ("result", "failure")],
                )
                .unwrap_or(0.0)
                    + s.value(
                        "deliverability_check_runs_total",
                        &[("check", "dnsbl"), ("result", "success")],
                    )
                    .unwrap_or(0.0)
                    >= 1.0
                && s.sum("deliverability_check_runs_total", &[("check", "reports")]) >= 1.0
        },
    );
    let mut places = vec![("metrics", s.0.clone()), ("landing page", e.get("/").1)];
    places.push((
        "probe dnsbl",
        e.get("/probe?module=dnsbl&target=192.0.2.10").1,
    ));
    places.push(("probe dns", e.get("/probe?module=dns&target=dx.test").1));
    // A reload with a broken config that holds the secrets: the refusal names the problem only.
    std::fs::write(
        &path,
        cfg.replace(
            "password = \"pw-seed1\"",
            "password = 123456789\npasword = \"pw-seed1\"",
        ),
    )
    .unwrap();
    let (code, body) = http(&e.addr, "POST", "/-/reload");
    assert_eq!(code, 500, "{body}");
    places.push(("reload error", body));
    std::thread::sleep(Duration::from_millis(500));
    places.push(("log", e.log_text()));
    let log = e.log_text();
    assert!(
        log.contains("level=debug"),
        "the log must be at debug level for this test to mean anything"
    );
    assert!(log.contains("login as seed2@seed.test refused"), "{log}");
    for (place, text) in &places {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret} appears in the {place}:\n{text}"
            );
        }
    }
}
