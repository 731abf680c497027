//! A canary is built like legitimate mail: delivered through the real stack from a provider
//! that signs correctly (Postfix submission, rspamd DKIM signing; rspamd verifying at the
//! receiver), the receiver's own verdict (`X-Spamd-Result`) holds no symbol caused by the
//! canary's construction, and no symbol with a positive score at all. A probe must never be the
//! cause of its own placement (issue 15: a missing MIME-Version alone scored +2.0).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, imaps_seed1, signing_provider};
use common::{Stack, TempDir};

/// Symbols rspamd gives for how a message is put together (not for who sent it).
const CONSTRUCTION: &[&str] = &[
    "MISSING_MIME_VERSION",
    "MISSING_MID",
    "MID_MISSING_BRACKETS",
    "MID_RHS_NOT_FQDN",
    "MISSING_DATE",
    "INVALID_DATE",
    "DATE_IN_FUTURE",
    "DATE_IN_PAST",
    "R_MISSING_CHARSET",
    "R_BAD_CTE_7BIT",
    "MISSING_TO",
    "MISSING_SUBJECT",
    "MISSING_FROM",
    "MULTIPLE_FROM",
    "MV_CASE",
    "CT_EXTRA_SEMI",
    "BROKEN_HEADERS",
    "BROKEN_CONTENT_TYPE",
    "MIME_BAD",
    "R_NO_SPACE_IN_FROM",
    "SUBJ_ALL_CAPS",
    "EMPTY_SUBJECT",
    "R_SUSPICIOUS_URL",
    "HAS_X_PRIO_ONE",
];

/// `(symbol, score)` of the `X-Spamd-Result` header of a stored message.
fn symbols(message: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut in_header = false;
    for line in message.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with("X-Spamd-Result:") {
            in_header = true;
            continue;
        }
        if in_header && line.starts_with([' ', '\t']) {
            let t = line.trim();
            if let Some((name, rest)) = t.split_once('(') {
                let score = rest
                    .split_once(')')
                    .and_then(|(s, _)| s.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                out.push((name.to_string(), score));
            }
        } else {
            in_header = false;
        }
    }
    out
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    ["new", "cur"]
        .iter()
        .flat_map(|s| std::fs::read_dir(dir.join(s)).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect()
}

#[test]
fn a_canary_carries_no_spam_symbol_of_its_own_making() {
    let st = Stack::start("canary-message", &[]);
    let dir = TempDir::new("canary-message");
    // Canaries are moved into "Checked" once seen, where this test reads them.
    let root = Path::new(st.get("DX_MAILDIR_ROOT")).join("seed.test/seed1/Maildir");
    let checked = root.join(".Checked");
    for s in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(checked.join(s)).unwrap();
    }
    let status = Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let cfg = ConfigBuilder::new(&dir)
        .canary(Canary::new().deadline("30s").move_to("Checked"))
        .provider(signing_provider(&st, "signing"))
        .seed(imaps_seed1(&st))
        .write();
    let out = Command::new(common::bin())
        .args(["once", "--only", "canary", "--config.file"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = std::time::Instant::now();
    while files(&checked).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the canary was not moved to Checked"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let f = &files(&checked)[0];
    let message = std::fs::read_to_string(f).unwrap();
    let syms = symbols(&message);
    assert!(
        syms.iter().any(|(s, _)| s == "R_DKIM_ALLOW"),
        "rspamd verified the provider's signature: {syms:?}\n{message}"
    );
    let own: Vec<_> = syms
        .iter()
        .filter(|(s, _)| CONSTRUCTION.contains(&s.as_str()))
        .collect();
    assert!(own.is_empty(), "symbols of the canary's making: {own:?}");
    let positive: Vec<_> = syms.iter().filter(|(_, score)| *score > 0.0).collect();
    assert!(
        positive.is_empty(),
        "a correctly signed canary earns no spam points: {positive:?}"
    );
}
