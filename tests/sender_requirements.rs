//! The bulk-sender requirements of Gmail, Yahoo and Outlook.com judged on real canaries (issue
//! 12): the stack's Postfix made to fail each requirement in turn, one provider per fault, all
//! sending through the same submission port and told apart by envelope sender
//! (scripts/stack.d/postfix/sender_access.in):
//!
//! - `good`: signed, TLS to the receiver from 127.0.0.1 (PTR mail.dx.test → 127.0.0.1), with
//!   List-Unsubscribe and List-Unsubscribe-Post signed by rspamd: meets all nine;
//! - `plain`: handed to the receiver without TLS → `encryption`;
//! - `noptr`: delivered from 127.0.0.2, which has no PTR → `dns_records`;
//! - `wrongptr`: from 127.0.0.3, whose PTR name resolves elsewhere → `dns_records`;
//! - `strip`: List-Unsubscribe-Post removed on the way out (Postfix smtp_header_checks) →
//!   `one_click_unsubscribe`;
//! - `dupfrom`: Postfix prepends a second From → `message_formatting` (and rspamd then does
//!   not sign it: `dkim`, `spf_and_dkim`);
//! - `nodmarc`: From nodmarc.test (SPF passes, no DMARC record, not signed) → `dmarc_policy`,
//!   `dkim`, `spf_and_dkim`;
//! - `bad`: From bad.test (SPF excludes the stack, signed with an unpublished key) → `spf`,
//!   `dkim`, `spf_and_dkim`, `dmarc_alignment`.
//!
//! The receiver's verdicts are rspamd's, the DNS is the stack's Unbound; the matrix the
//! exporter exported is printed. Nothing leaves 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, Dns, Provider, imaps_seed1};
use common::{Exporter, Stack, TempDir};

const ALL: [&str; 9] = [
    "spf",
    "dkim",
    "spf_and_dkim",
    "dmarc_policy",
    "dmarc_alignment",
    "dns_records",
    "encryption",
    "message_formatting",
    "one_click_unsubscribe",
];

/// (provider, envelope and header sender, carries List-Unsubscribe, requirements not met).
const CASES: [(&str, &str, bool, &[&str]); 8] = [
    ("good", "canary@dx.test", true, &[]),
    ("plain", "plain@dx.test", false, &["encryption"]),
    ("noptr", "noptr@dx.test", false, &["dns_records"]),
    ("wrongptr", "wrongptr@dx.test", false, &["dns_records"]),
    (
        "strip",
        "strip@dx.test",
        true,
        // rspamd signs List-Unsubscribe-Post: removing it after signing breaks DKIM too.
        &["dkim", "spf_and_dkim", "one_click_unsubscribe"],
    ),
    (
        "dupfrom",
        "dupfrom@dx.test",
        false,
        // rspamd does not sign a message with two From fields.
        &["dkim", "spf_and_dkim", "message_formatting"],
    ),
    (
        "nodmarc",
        "canary@nodmarc.test",
        false,
        &["dkim", "spf_and_dkim", "dmarc_policy"],
    ),
    (
        "bad",
        "canary@bad.test",
        false,
        &["spf", "dkim", "spf_and_dkim", "dmarc_alignment"],
    ),
];

#[test]
fn each_fault_fails_its_requirement_and_only_it() {
    let st = Stack::start("reqs", &[]);
    let dir = TempDir::new("reqs");
    let mut cfg = ConfigBuilder::new(&dir)
        .canary(
            Canary::new()
                .interval("1h")
                .deadline("40s")
                .jitter(0.0)
                .route_requirements(true),
        )
        .dns(Dns::local(st.port("DX_DNS_PORT")))
        .seed(imaps_seed1(&st).authserv_id(st.get("DX_AUTHSERV_ID")));
    for (name, from, unsubscribe, _) in CASES {
        let mut p = Provider::starttls(name, st.port("DX_SMTP_SUBMIT_PORT"))
            .login("sender1@dx.test", "pw-sender1")
            .from(from)
            .ca_file(st.get("DX_CA_FILE"));
        if unsubscribe {
            p = p
                .header("List-Unsubscribe", "<https://dx.test/unsubscribe/{token}>")
                .header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }
        cfg = cfg.provider(p);
    }
    let e = Exporter::start(&cfg.write(), &[]);
    let judged = |s: &common::Scrape| {
        let mut m: BTreeMap<(String, String), f64> = BTreeMap::new();
        for (l, v) in s.samples("deliverability_sender_requirement_route_met") {
            m.insert((l["provider"].clone(), l["requirement"].clone()), v);
        }
        m
    };
    let expected = |unsubscribe: bool| ALL.len() - usize::from(!unsubscribe);
    let s = e.wait_for(
        "every provider's canary judged",
        Duration::from_secs(60),
        |s| {
            let m = judged(s);
            CASES
                .iter()
                .all(|(p, _, u, _)| m.keys().filter(|(q, _)| q == p).count() == expected(*u))
        },
    );
    let m = judged(&s);
    // The matrix, rows requirement, columns provider (the closing note's table).
    let mut table = format!("{:<22}", "requirement");
    for (p, ..) in CASES {
        table.push_str(&format!("{p:>9}"));
    }
    for r in ALL {
        table.push_str(&format!("\n{r:<22}"));
        for (p, ..) in CASES {
            let cell = match m.get(&(p.to_string(), r.to_string())) {
                Some(v) if *v == 1.0 => "met",
                Some(_) => "FAIL",
                None => "-",
            };
            table.push_str(&format!("{cell:>9}"));
        }
    }
    println!("{table}");
    let log = e.log_text();
    for (p, _, unsubscribe, failing) in CASES {
        for r in ALL {
            if r == "one_click_unsubscribe" && !unsubscribe {
                assert!(
                    !m.contains_key(&(p.to_string(), r.to_string())),
                    "{p}: one-click judged though its canaries carry no List-Unsubscribe\n{table}"
                );
                continue;
            }
            let want = if failing.contains(&r) { 0.0 } else { 1.0 };
            assert_eq!(
                m.get(&(p.to_string(), r.to_string())),
                Some(&want),
                "{p} {r}\n{table}\n{log}"
            );
            // The provider's series says the same (one seed).
            assert_eq!(
                s.value(
                    "deliverability_sender_requirement_met",
                    &[("provider", p), ("requirement", r)]
                ),
                Some(want),
                "{p} {r}"
            );
        }
        // Each failure is logged with its reason.
        for r in failing {
            assert!(
                log.lines().any(|l| l.contains("sender requirement not met")
                    && l.contains(&format!("provider={p} "))
                    && l.contains(&format!("requirement={r}"))),
                "{p} {r}: no log line\n{log}"
            );
        }
    }
    // The reverse zone asked is the stack's Unbound (hickory itself would answer `localhost`
    // for any 127.0.0.0/8 address).
    for (p, why) in [
        ("noptr", "127.0.0.2 has no PTR record"),
        (
            "wrongptr",
            "127.0.0.3: PTR wrongptr.dx.test does not resolve back to it",
        ),
        ("plain", "with ESMTP\""),
        ("strip", "no List-Unsubscribe-Post"),
        ("dupfrom", "2 From fields"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("provider={p} ")) && l.contains(why)),
            "{p}: no reason {why:?}\n{log}"
        );
    }
    e.stop();
}
