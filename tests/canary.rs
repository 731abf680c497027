//! Canaries against the real stack: Postfix submission (STARTTLS, implicit TLS, plain) with
//! rspamd signing and verifying, Dovecot IMAP with Sieve filing spam into Junk.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, Provider, Seed};
use common::{Exporter, Scrape, Stack, TempDir, bin};

/// The configuration of a canary test (instance `canary-test`).
fn config(dir: &TempDir) -> ConfigBuilder {
    ConfigBuilder::new(dir).instance("canary-test")
}

/// A seed on the stack's IMAPS port that trusts the verdicts of the stack's receiving MX.
fn imaps_seed(st: &Stack, name: &str) -> Seed {
    Seed::implicit_tls(name, st.port("DX_IMAPS_PORT"))
        .ca_file(st.get("DX_CA_FILE"))
        .authserv_id("mx.seed.test")
}

fn once(cfg: &std::path::Path) -> (Output, Scrape) {
    let out = Command::new(bin())
        .args(["--log.level", "debug", "--config.file"])
        .arg(cfg)
        .args(["once", "--only", "canary"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, Scrape(text))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn canaries_arrive_through_starttls_implicit_tls_and_plain_with_placement() {
    let st = Stack::start("canary-ok", &[]);
    let dir = TempDir::new("canary-ok");
    let ca = st.get("DX_CA_FILE");
    let submit = st.port("DX_SMTP_SUBMIT_PORT");
    let cfg = config(&dir)
        .canary(Canary::new().deadline("30s"))
        .provider(
            Provider::starttls("starttls", submit)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca),
        )
        .provider(
            Provider::implicit_tls("implicit", st.port("DX_SMTPS_PORT"))
                .login("sender2@dx.test", "pw-sender2")
                .ca_file(ca)
                .auth(&["login"])
                .min_gap("1500ms"),
        )
        .provider(
            Provider::no_tls("plain", st.port("DX_SMTP_PLAIN_PORT"))
                .login("sender3@dx.test", "pw-sender3")
                .ca_file(ca),
        )
        .provider(
            Provider::starttls("junky", submit)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca)
                .header("X-DX-Junk", "yes"),
        )
        .provider(
            Provider::starttls("baddomain", submit)
                .login("sender2@dx.test", "pw-sender2")
                .from("canary@bad.test")
                .ca_file(ca),
        )
        .seed(
            imaps_seed(&st, "s1")
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1"),
        )
        .seed(
            imaps_seed(&st, "s2")
                .address("seed2@seed.test")
                .login("seed2@seed.test", "pw-seed2"),
        )
        .write();
    let (out, s) = once(&cfg);
    assert!(out.status.success(), "once failed:\n{}", stderr(&out));

    for p in ["starttls", "implicit", "plain"] {
        let l = [("provider", p), ("seed", "s1")];
        assert_eq!(
            s.value("deliverability_canary_sent_total", &l),
            Some(1.0),
            "{p}"
        );
        assert_eq!(
            s.value(
                "deliverability_canary_delivered_total",
                &[l[0], l[1], ("placement", "inbox")]
            ),
            Some(1.0),
            "{p}: {}",
            stderr(&out)
        );
        assert_eq!(
            s.value("deliverability_canary_success", &l),
            Some(1.0),
            "{p}"
        );
        assert!(
            s.value("deliverability_canary_last_success_timestamp_seconds", &l)
                .unwrap()
                > 1.7e9
        );
        // One canary to each of the two seeds.
        assert_eq!(
            s.value(
                "deliverability_canary_provider_delivery_duration_seconds_count",
                &l[..1]
            ),
            Some(2.0)
        );
        // Dovecot holds IDLE notifications back ~500 ms; delivery itself takes milliseconds.
        let latency = s
            .value("deliverability_canary_last_delivery_duration_seconds", &l)
            .unwrap();
        assert!(latency > 0.0 && latency < 5.0, "{p}: latency {latency}");
        assert_eq!(s.value("deliverability_canary_in_flight", &l), Some(0.0));
        for stage in [
            "connect",
            "ehlo",
            "auth",
            "mail_from",
            "rcpt_to",
            "data",
            "body",
        ] {
            assert_eq!(
                s.value(
                    "deliverability_smtp_stage_duration_seconds_count",
                    &[("provider", p), ("stage", stage)]
                ),
                Some(2.0),
                "{p} {stage}: one send per seed"
            );
        }
    }
    assert_eq!(
        s.value(
            "deliverability_smtp_stage_duration_seconds_count",
            &[("provider", "starttls"), ("stage", "starttls")]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "deliverability_smtp_stage_duration_seconds_count",
            &[("provider", "implicit"), ("stage", "tls")]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.value(
            "deliverability_smtp_stage_duration_seconds_count",
            &[("provider", "plain"), ("stage", "starttls")]
        ),
        None
    );
    // TLS facts of the TLS providers, none for the plain one.
    for p in ["starttls", "implicit"] {
        assert_eq!(
            s.value(
                "deliverability_smtp_tls_version_info",
                &[("provider", p), ("version", "TLSv1.3")]
            ),
            Some(1.0),
            "{p}"
        );
        let expiry = s
            .value(
                "deliverability_smtp_tls_certificate_expiry_timestamp_seconds",
                &[("provider", p)],
            )
            .unwrap();
        assert!(expiry > 1.8e9, "{p}: certificate expiry {expiry}");
    }
    assert_eq!(
        s.value(
            "deliverability_smtp_tls_certificate_expiry_timestamp_seconds",
            &[("provider", "plain")]
        ),
        None
    );
    // min_gap: the implicit provider's two routes started at least 1.5 s apart; the others
    // (no min_gap, no jitter in `once`) together.
    let sent_at = |p: &str, seed: &str| {
        s.value(
            "deliverability_canary_last_send_timestamp_seconds",
            &[("provider", p), ("seed", seed)],
        )
        .unwrap()
    };
    let gap = (sent_at("implicit", "s2") - sent_at("implicit", "s1")).abs();
    assert!(gap >= 1.5, "min_gap not kept: {gap}");
    assert!((sent_at("plain", "s2") - sent_at("plain", "s1")).abs() < 1.0);
    // Which AUTH mechanism was used is visible.
    assert_eq!(
        s.value(
            "deliverability_smtp_auth_mechanism_info",
            &[("provider", "implicit"), ("mechanism", "login")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "deliverability_smtp_auth_mechanism_info",
            &[("provider", "starttls"), ("mechanism", "plain")]
        ),
        Some(1.0)
    );

    // The receiver's verdicts: dx.test is signed and published properly, bad.test is not.
    for p in ["starttls", "implicit", "plain"] {
        for method in ["spf", "dkim", "dmarc"] {
            let l = [
                ("provider", p),
                ("seed", "s1"),
                ("method", method),
                ("result", "pass"),
            ];
            assert_eq!(
                s.value("deliverability_canary_auth_results_total", &l),
                Some(1.0),
                "{p} {method}: {}",
                stderr(&out)
            );
        }
    }
    for method in ["spf", "dkim", "dmarc"] {
        let l = [
            ("provider", "baddomain"),
            ("seed", "s1"),
            ("method", method),
            ("result", "fail"),
        ];
        assert_eq!(
            s.value("deliverability_canary_auth_results_total", &l),
            Some(1.0),
            "baddomain {method}: {}",
            s.0
        );
        assert_eq!(
            s.value(
                "deliverability_canary_auth_results_total",
                &[l[0], l[1], l[2], ("result", "pass")]
            ),
            Some(0.0)
        );
    }
    // rspamd's score is recorded; the junk header scores high.
    let junk_score = s
        .value(
            "deliverability_canary_spam_score",
            &[("provider", "junky"), ("seed", "s1"), ("source", "rspamd")],
        )
        .expect("rspamd score");
    let clean_score = s
        .value(
            "deliverability_canary_spam_score",
            &[
                ("provider", "starttls"),
                ("seed", "s1"),
                ("source", "rspamd"),
            ],
        )
        .expect("rspamd score");
    assert!(
        junk_score > 10.0 && clean_score < 5.0,
        "junk {junk_score}, clean {clean_score}"
    );

    // The provider's extra header sends its canary to Junk: spam placement is a failure.
    let j = [("provider", "junky"), ("seed", "s1")];
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[j[0], j[1], ("placement", "spam")]
        ),
        Some(1.0),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.value("deliverability_canary_success", &j), Some(0.0));
    assert_eq!(
        s.value("deliverability_canary_last_success_timestamp_seconds", &j),
        Some(0.0)
    );

    // Canaries are removed from the seed once seen.
    let inbox = st.maildir_new("seed1", "");
    let junk = st.maildir_new("seed1", "Junk");
    let left = |d: &std::path::Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left(&inbox) + left(&junk), 0, "canaries left in the seed");
    let cur = inbox.parent().unwrap().join("cur");
    assert_eq!(left(&cur), 0, "canaries left in cur/");
}

#[test]
fn every_smtp_failure_is_classified_by_stage_class_and_code() {
    let st = Stack::start("canary-fail", &[]);
    let dir = TempDir::new("canary-fail");
    let ca = st.get("DX_CA_FILE");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let submit = st.port("DX_SMTP_SUBMIT_PORT");
    // Every seed logs in as seed1; the other addresses are refused at RCPT TO.
    let seed = |name: &str, address: &str| {
        imaps_seed(&st, name)
            .address(address)
            .login("seed1@seed.test", "pw-seed1")
    };
    let cfg = config(&dir)
        .canary(Canary::new().deadline("20s").smtp_timeout("5s"))
        .provider(
            Provider::starttls("good", submit)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca),
        )
        .provider(
            Provider::starttls("wrongpw", submit)
                .login("sender2@dx.test", "not-the-password")
                .ca_file(ca),
        )
        .provider(
            Provider::starttls("down", closed)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca),
        )
        .provider(
            Provider::starttls("rogue", st.port("DX_SMTP_ROGUE_PORT"))
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca),
        )
        .seed(seed("s1", "seed1@seed.test"))
        .seed(seed("rej550", "reject550@seed.test"))
        .seed(seed("busy450", "busy450@seed.test"))
        .seed(seed("close421", "close421@seed.test"))
        .write();
    let (out, s) = once(&cfg);
    assert_eq!(
        out.status.code(),
        Some(1),
        "once must fail when sends fail:\n{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("check canary failure"), "{err}");

    let fails = |p: &str, seed: &str, stage: &str, class: &str, code: &str| {
        s.value(
            "deliverability_canary_send_failures_total",
            &[
                ("provider", p),
                ("seed", seed),
                ("stage", stage),
                ("class", class),
                ("code", code),
            ],
        )
    };
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[("provider", "good"), ("seed", "s1"), ("placement", "inbox")]
        ),
        Some(1.0),
        "{err}"
    );
    assert_eq!(
        fails("good", "rej550", "rcpt_to", "permanent", "550"),
        Some(1.0),
        "{}",
        s.0
    );
    assert_eq!(
        fails("good", "busy450", "rcpt_to", "transient", "450"),
        Some(1.0)
    );
    assert_eq!(
        fails("good", "close421", "rcpt_to", "transient", "421"),
        Some(1.0)
    );
    for seed in ["s1", "rej550", "busy450", "close421"] {
        assert_eq!(
            fails("wrongpw", seed, "auth", "permanent", "535"),
            Some(1.0),
            "{seed}"
        );
        assert_eq!(
            fails("down", seed, "connect", "network", ""),
            Some(1.0),
            "{seed}"
        );
        assert_eq!(
            fails("rogue", seed, "starttls", "tls", ""),
            Some(1.0),
            "{seed}"
        );
        for p in ["wrongpw", "down", "rogue"] {
            assert_eq!(
                s.value(
                    "deliverability_canary_success",
                    &[("provider", p), ("seed", seed)]
                ),
                Some(0.0),
                "{p}/{seed}"
            );
            assert_eq!(
                s.value(
                    "deliverability_canary_sent_total",
                    &[("provider", p), ("seed", seed)]
                ),
                Some(0.0),
                "{p}/{seed}"
            );
        }
    }
    assert_eq!(
        s.value(
            "deliverability_canary_success",
            &[("provider", "good"), ("seed", "rej550")]
        ),
        Some(0.0)
    );
    // The enhanced status code and the certificate problem are in the log, not in labels.
    assert!(err.contains("enhanced=5.7.8"), "{err}");
    assert!(err.contains("enhanced=5.1.1"), "{err}");
    assert!(err.contains("certificate: unknown issuer"), "{err}");
    // No secret in the output.
    assert!(!err.contains("not-the-password") && !s.0.contains("not-the-password"));
    assert!(!err.contains("pw-sender1") && !err.contains("pw-seed1"));
}

#[test]
fn canaries_in_flight_survive_an_exporter_restart_and_a_dovecot_restart_is_survived() {
    let st = Stack::start("canary-restart", &[]);
    let dir = TempDir::new("canary-restart");
    let ca = st.get("DX_CA_FILE");
    // The MX port takes mail without AUTH, so canaries are accepted while Dovecot is down.
    let cfg = config(&dir)
        .canary(
            Canary::new()
                .interval("3s")
                .jitter(0.0)
                .deadline("60s")
                .imap_timeout("5s"),
        )
        .provider(Provider::starttls("mx", st.port("DX_SMTP_MX_PORT")).ca_file(ca))
        .seed(
            imaps_seed(&st, "s1")
                .address("seed2@seed.test")
                .login("seed2@seed.test", "pw-seed2"),
        )
        .write();

    // Running normally: canaries flow.
    let e = Exporter::start(&cfg, &[]);
    let l = [("provider", "mx"), ("seed", "s1"), ("placement", "inbox")];
    e.wait_for("a first delivery", Duration::from_secs(20), |s| {
        s.value("deliverability_canary_delivered_total", &l) >= Some(1.0)
    });
    assert_eq!(
        e.scrape().value(
            "deliverability_imap_up",
            &[("seed", "s1"), ("folder", "inbox")]
        ),
        Some(1.0)
    );

    // Dovecot restarted under the IDLE connection: the watcher reconnects and the next
    // canary is still detected.
    st.ctl(&["restart", "dovecot"]);
    let after_restart = e
        .scrape()
        .value("deliverability_canary_delivered_total", &l)
        .unwrap();
    let s = e.wait_for(
        "a delivery after the Dovecot restart",
        Duration::from_secs(30),
        |s| {
            s.value("deliverability_canary_delivered_total", &l)
                .unwrap_or(0.0)
                >= after_restart + 1.0
        },
    );
    assert!(
        s.value(
            "deliverability_imap_reconnects_total",
            &[("seed", "s1"), ("folder", "inbox")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        s.value(
            "deliverability_canary_lost_total",
            &[("provider", "mx"), ("seed", "s1")]
        ),
        Some(0.0)
    );

    // Dovecot down: canaries are accepted and queued, not delivered.
    st.ctl(&["stop", "dovecot"]);
    let sent_before = e
        .scrape()
        .value(
            "deliverability_canary_sent_total",
            &[("provider", "mx"), ("seed", "s1")],
        )
        .unwrap();
    e.wait_for(
        "canaries in flight while Dovecot is down",
        Duration::from_secs(20),
        |s| {
            s.value(
                "deliverability_canary_in_flight",
                &[("provider", "mx"), ("seed", "s1")],
            )
            .unwrap_or(0.0)
                >= 1.0
                && s.value(
                    "deliverability_canary_sent_total",
                    &[("provider", "mx"), ("seed", "s1")],
                )
                .unwrap_or(0.0)
                    > sent_before
        },
    );
    assert_eq!(
        e.scrape().value(
            "deliverability_imap_up",
            &[("seed", "s1"), ("folder", "inbox")]
        ),
        Some(0.0)
    );
    // Let the tracker save its state, then kill the exporter hard.
    std::thread::sleep(Duration::from_millis(1500));
    let in_flight = e
        .scrape()
        .value(
            "deliverability_canary_in_flight",
            &[("provider", "mx"), ("seed", "s1")],
        )
        .unwrap();
    e.signal("KILL");
    drop(e);

    // Mail is delivered while no exporter runs; the new exporter finds it at start-up and
    // counts it against the canaries the old one sent.
    st.ctl(&["start", "dovecot"]);
    let e = Exporter::start(&cfg, &[]);
    let s = e.wait_for(
        "the canaries sent before the restart to be counted",
        Duration::from_secs(30),
        |s| {
            s.value("deliverability_canary_delivered_total", &l)
                .unwrap_or(0.0)
                >= in_flight
        },
    );
    assert_eq!(
        s.value(
            "deliverability_canary_lost_total",
            &[("provider", "mx"), ("seed", "s1")]
        ),
        Some(0.0),
        "{}",
        e.log_text()
    );
    assert!(
        e.log_text().contains("canaries in flight restored"),
        "{}",
        e.log_text()
    );
}

#[test]
fn a_canary_delivered_after_its_deadline_is_lost_then_late() {
    let st = Stack::start("canary-late", &[]);
    let dir = TempDir::new("canary-late");
    let ca = st.get("DX_CA_FILE");
    let cfg = config(&dir)
        .canary(
            Canary::new()
                .interval("1h")
                .jitter(0.0)
                .deadline("3s")
                .imap_timeout("5s"),
        )
        .provider(Provider::starttls("mx", st.port("DX_SMTP_MX_PORT")).ca_file(ca))
        .seed(
            imaps_seed(&st, "s1")
                .address("seed3@seed.test")
                .login("seed3@seed.test", "pw-seed3"),
        )
        .write();
    st.ctl(&["stop", "dovecot"]);
    let e = Exporter::start(&cfg, &[]);
    let lbl = [("provider", "mx"), ("seed", "s1")];
    let s = e.wait_for(
        "the canary to be counted lost",
        Duration::from_secs(30),
        |s| s.value("deliverability_canary_lost_total", &lbl) == Some(1.0),
    );
    assert_eq!(s.value("deliverability_canary_success", &lbl), Some(0.0));
    assert_eq!(s.value("deliverability_canary_in_flight", &lbl), Some(0.0));
    st.ctl(&["start", "dovecot"]);
    let s = e.wait_for(
        "the lost canary to be counted late",
        Duration::from_secs(40),
        |s| s.value("deliverability_canary_late_total", &lbl) == Some(1.0),
    );
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[lbl[0], lbl[1], ("placement", "inbox")]
        ),
        Some(0.0),
        "late is not delivered"
    );
    let (code, page) = e.get("/");
    assert_eq!(code, 200);
    assert!(
        page.contains("<td>mx</td><td>s1</td><td>lost</td>"),
        "{page}"
    );
}

#[test]
fn a_server_without_idle_is_polled_and_canaries_are_moved_with_copy_and_expunge() {
    let st = Stack::start("canary-poll", &[("DX_IMAP_IDLE", "no")]);
    let dir = TempDir::new("canary-poll");
    let ca = st.get("DX_CA_FILE");
    let submit = st.port("DX_SMTP_SUBMIT_PORT");
    let cfg = config(&dir)
        .canary(
            Canary::new()
                .deadline("30s")
                .poll_interval("300ms")
                .move_to("Archive")
                .sweep_older_than("1s"),
        )
        .provider(
            Provider::starttls("starttls", submit)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca),
        )
        .provider(
            Provider::starttls("junky", submit)
                .login("sender1@dx.test", "pw-sender1")
                .ca_file(ca)
                .header("X-DX-Junk", "yes"),
        )
        // IMAP with STARTTLS, AUTHENTICATE PLAIN, the spam folder named by hand.
        .seed(
            Seed::starttls("s1", st.port("DX_IMAP_PORT"))
                .address("seed1@seed.test")
                .auth("plain")
                .password("pw-seed1")
                .ca_file(ca)
                .spam_folder("Junk"),
        )
        .write();
    // A canary nobody here sent (another instance's, or a forgotten one), older than
    // sweep_older_than by the time the watcher looks: swept at start-up.
    common::smtp_deliver(
        st.port("DX_SMTP_MX_PORT"),
        "canary@dx.test",
        "seed1@seed.test",
        b"Subject: Delivery check dx-aaaaaaaaaaaaaaaaaaaa\r\nX-Deliverability-Canary: dx-aaaaaaaaaaaaaaaaaaaa\r\n\r\nold\r\n",
    );
    std::thread::sleep(Duration::from_millis(2100));
    let (out, s) = once(&cfg);
    assert!(out.status.success(), "once failed:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("idle=false"),
        "the watcher must notice the missing IDLE: {err}"
    );
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[
                ("provider", "starttls"),
                ("seed", "s1"),
                ("placement", "inbox")
            ]
        ),
        Some(1.0),
        "{err}"
    );
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[("provider", "junky"), ("seed", "s1"), ("placement", "spam")]
        ),
        Some(1.0),
        "{err}"
    );
    // Polled every 300 ms: latency stays well under a few seconds.
    let latency = s
        .value(
            "deliverability_canary_last_delivery_duration_seconds",
            &[("provider", "starttls"), ("seed", "s1")],
        )
        .unwrap();
    assert!(latency < 3.0, "latency {latency}");
    // Both canaries and the swept stranger were moved to Archive (COPY + STORE + EXPUNGE: the
    // server has no MOVE).
    let count = |folder: &str| {
        ["new", "cur"]
            .iter()
            .map(|d| {
                std::fs::read_dir(st.maildir_new("seed1", folder).parent().unwrap().join(d))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    assert_eq!(count("Archive"), 3);
    assert_eq!(count("") + count("Junk"), 0);
}

#[test]
fn a_provider_that_stalls_after_the_message_is_uncertain_then_lost() {
    // The stack's stall port: Postfix takes the whole message, then waits for a before-queue
    // proxy. This listener is that proxy and never answers, so Postfix never replies to the
    // message terminator (Postfix itself stalls; nothing here speaks SMTP).
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().flatten() {
            held.push(s);
        }
    });
    let stall_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let st = Stack::start(
        "canary-stall",
        &[
            ("DX_SMTP_STALL_PORT", &stall_port.to_string()),
            ("DX_STALL_PROXY_PORT", &hole_port.to_string()),
        ],
    );
    let dir = TempDir::new("canary-stall");
    let cfg = config(&dir)
        .canary(Canary::new().smtp_timeout("2s").deadline("4s"))
        .provider(Provider::no_tls("stalling", stall_port).ca_file(st.get("DX_CA_FILE")))
        .seed(
            imaps_seed(&st, "s1")
                .address("seed2@seed.test")
                .login("seed2@seed.test", "pw-seed2"),
        )
        .write();
    let (out, s) = once(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let l = [("provider", "stalling"), ("seed", "s1")];
    assert_eq!(
        s.value(
            "deliverability_canary_send_failures_total",
            &[
                l[0],
                l[1],
                ("stage", "body"),
                ("class", "uncertain"),
                ("code", "")
            ]
        ),
        Some(1.0),
        "{}\n{}",
        s.0,
        stderr(&out)
    );
    assert_eq!(
        s.value("deliverability_canary_uncertain_total", &l[..1]),
        Some(1.0)
    );
    assert_eq!(s.value("deliverability_canary_sent_total", &l), Some(0.0));
    // Still watched for until its deadline; it never arrives, so it is lost.
    assert_eq!(
        s.value("deliverability_canary_lost_total", &l),
        Some(1.0),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.value("deliverability_canary_success", &l), Some(0.0));
}

/// A TCP proxy to `upstream` that holds the server's reply to the end of the message for
/// `hold`, as a slow network path would. A scripted peer: no real server can be made to deliver
/// a message and then be slow to say so. Everything else passes through untouched.
fn slow_final_reply_proxy(upstream: u16, hold: Duration) -> u16 {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let message_ended = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let ended = message_ended.clone();
            std::thread::spawn(move || {
                let mut tail = Vec::new();
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.windows(5).any(|w| w == b"\r\n.\r\n") {
                        ended.store(true, Ordering::SeqCst);
                    }
                    let keep = tail.len().saturating_sub(4);
                    tail.drain(..keep);
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut held = false;
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if !held && message_ended.load(Ordering::SeqCst) {
                        held = true;
                        std::thread::sleep(hold);
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_canary_delivered_before_its_final_reply_is_read_is_still_counted() {
    // Postfix delivers at once, but the "250 queued" reaches the exporter 3 s later: the seed's
    // watcher sees the canary (Dovecot notifies IDLE after ~0.5 s) while its send is still
    // under way. It must wait for the send, not take the message for a stranger's.
    let st = Stack::start("canary-early", &[]);
    let dir = TempDir::new("canary-early");
    let port = slow_final_reply_proxy(st.port("DX_SMTP_MX_PORT"), Duration::from_secs(3));
    let cfg = config(&dir)
        .canary(Canary::new().smtp_timeout("10s").deadline("20s"))
        .provider(Provider::no_tls("slowreply", port).ca_file(st.get("DX_CA_FILE")))
        .seed(
            imaps_seed(&st, "s1")
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1"),
        )
        .write();
    let (out, s) = once(&cfg);
    let l = [("provider", "slowreply"), ("seed", "s1")];
    assert_eq!(
        s.value(
            "deliverability_canary_delivered_total",
            &[l[0], l[1], ("placement", "inbox")]
        ),
        Some(1.0),
        "{}\n{}",
        s.0,
        stderr(&out)
    );
    assert_eq!(s.value("deliverability_canary_lost_total", &l), Some(0.0));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // It was seen before the reply came, so its latency from the final reply is clamped to 0.
    assert!(
        s.value("deliverability_canary_last_delivery_duration_seconds", &l)
            .unwrap()
            < 0.5,
        "{}",
        s.0
    );
    assert!(
        std::fs::read_dir(st.maildir_new("seed1", ""))
            .unwrap()
            .count()
            == 0,
        "the canary was cleaned up"
    );
}

/// A proxy to a real IMAP server (the stack's Dovecot) that makes it a server that never
/// pushes: it drops every untagged `EXISTS` and `RECENT` except in the reply to SELECT, as a
/// server without a notifier does (Cyrus without `idled` stays silent in IDLE for up to a
/// minute). A scripted fault, since Dovecot can't be told to stop notifying; everything else,
/// delivery included, is the real server's.
fn silent_imap_proxy(upstream: u16) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let selecting = Arc::new(AtomicBool::new(false));
            let (c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let sel = selecting.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(c_in);
                let mut line = Vec::new();
                while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line).to_ascii_uppercase();
                    if text
                        .split(' ')
                        .nth(1)
                        .is_some_and(|c| c == "SELECT" || c == "EXAMINE")
                    {
                        sel.store(true, Ordering::SeqCst);
                    }
                    if s_out.write_all(&line).is_err() {
                        break;
                    }
                    line.clear();
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s_in);
                let mut line = Vec::new();
                while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line);
                    let words: Vec<&str> = text.trim_end().split(' ').collect();
                    let announce = words.len() == 3
                        && words[0] == "*"
                        && words[1].parse::<u32>().is_ok()
                        && (words[2].eq_ignore_ascii_case("EXISTS")
                            || words[2].eq_ignore_ascii_case("RECENT"));
                    if !words[0].starts_with(['*', '+']) {
                        selecting.store(false, Ordering::SeqCst);
                    }
                    if (!announce || selecting.load(Ordering::SeqCst))
                        && c_out.write_all(&line).is_err()
                    {
                        break;
                    }
                    line.clear();
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_server_that_never_pushes_still_has_its_canaries_found_by_poll_within_the_verify_interval() {
    // Two seeds on the real Dovecot: `silent` behind a proxy that drops every announcement of
    // new mail (IDLE stays silent), `pushing` direct. The deadline is short: a watcher that
    // waited for the server's push (or the 20 min IDLE refresh) would count `silent`'s canary
    // lost.
    let st = Stack::start("canary-silent", &[]);
    let dir = TempDir::new("canary-silent");
    let ca = st.get("DX_CA_FILE");
    let cfg = config(&dir)
        .canary(
            Canary::new()
                .interval("1h")
                .jitter(0.0)
                .deadline("6s")
                .verify_interval("1s"),
        )
        .provider(Provider::starttls("mx", st.port("DX_SMTP_MX_PORT")).ca_file(ca))
        .seed(
            Seed::no_tls("silent", silent_imap_proxy(st.port("DX_IMAP_PORT")))
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1"),
        )
        .seed(
            imaps_seed(&st, "pushing")
                .address("seed2@seed.test")
                .login("seed2@seed.test", "pw-seed2"),
        )
        .write();
    let (out, s) = once(&cfg);
    let err = stderr(&out);
    assert!(out.status.success(), "once failed:\n{err}");
    let path = |seed: &str, path: &str| {
        s.value(
            "deliverability_canary_detected_total",
            &[("seed", seed), ("path", path)],
        )
    };
    let latency = |seed: &str| {
        s.value(
            "deliverability_canary_last_delivery_duration_seconds",
            &[("provider", "mx"), ("seed", seed)],
        )
        .unwrap()
    };
    for seed in ["silent", "pushing"] {
        let l = [("provider", "mx"), ("seed", seed)];
        assert_eq!(
            s.value("deliverability_canary_lost_total", &l),
            Some(0.0),
            "{err}"
        );
        assert_eq!(
            s.value(
                "deliverability_canary_delivered_total",
                &[l[0], l[1], ("placement", "inbox")]
            ),
            Some(1.0),
            "{seed}: {err}"
        );
        assert_eq!(
            s.value(
                "deliverability_imap_verify_interval_seconds",
                &[("seed", seed)]
            ),
            Some(1.0)
        );
        eprintln!(
            "detection latency {seed}: {:.3} s (push {:?}, poll {:?}, scan {:?})",
            latency(seed),
            path(seed, "push"),
            path(seed, "poll"),
            path(seed, "scan")
        );
    }
    // The silent server announced nothing: found by the watcher's own search, within the
    // cadence (plus the time of one search).
    assert_eq!(path("silent", "poll"), Some(1.0), "{err}");
    assert_eq!(path("silent", "push"), Some(0.0), "{err}");
    assert!(latency("silent") < 1.8, "latency {}", latency("silent"));
    // Dovecot pushes ~0.5 s after delivery; the 1 s cadence may still look first.
    assert_eq!(
        path("pushing", "push").unwrap() + path("pushing", "poll").unwrap(),
        1.0,
        "{err}"
    );
    assert!(latency("pushing") < 1.8, "latency {}", latency("pushing"));
}

#[test]
fn once_exits_1_for_a_lost_canary_and_for_a_refused_seed_login() {
    let st = Stack::start("canary-once", &[]);
    let ca = st.get("DX_CA_FILE");
    let mx = st.port("DX_SMTP_MX_PORT");
    let quick = || Canary::new().deadline("3s").verify_interval("500ms");

    // A canary delivered where the seed's watchers don't look (to seed3, watched: seed2's
    // mailbox): Postfix and Dovecot deliver it, the exporter never sees it: lost.
    let dir = TempDir::new("canary-once-lost");
    let cfg = config(&dir)
        .canary(quick())
        .provider(Provider::starttls("mx", mx).ca_file(ca))
        .seed(
            imaps_seed(&st, "elsewhere")
                .address("seed3@seed.test")
                .login("seed2@seed.test", "pw-seed2"),
        )
        .write();
    let (out, s) = once(&cfg);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a lost canary must fail once:\n{err}"
    );
    let l = [("provider", "mx"), ("seed", "elsewhere")];
    assert_eq!(s.value("deliverability_canary_lost_total", &l), Some(1.0));
    assert_eq!(s.value("deliverability_canary_sent_total", &l), Some(1.0));
    assert_eq!(
        s.value("deliverability_check_success", &[("check", "canary")]),
        Some(0.0)
    );
    assert!(
        err.contains("check canary failure: mx/elsewhere: 1 canary lost"),
        "{err}"
    );
    assert!(!err.contains("not watched"), "{err}");

    // A seed whose login is refused: it cannot be watched, and its canary is lost too.
    let dir = TempDir::new("canary-once-login");
    let cfg = config(&dir)
        .canary(quick())
        .provider(Provider::starttls("mx", mx).ca_file(ca))
        .seed(
            imaps_seed(&st, "refused")
                .address("seed1@seed.test")
                .login("seed1@seed.test", "wrong-password"),
        )
        .write();
    let (out, s) = once(&cfg);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused seed login must fail once:\n{err}"
    );
    for folder in ["inbox", "spam"] {
        assert_eq!(
            s.value(
                "deliverability_imap_up",
                &[("seed", "refused"), ("folder", folder)]
            ),
            Some(0.0)
        );
        assert!(
            err.contains(&format!("seed refused {folder}: not watched: ")),
            "{err}"
        );
    }
    assert!(err.contains("mx/refused: 1 canary lost"), "{err}");

    // The same seed with its password: exit 0.
    let dir = TempDir::new("canary-once-ok");
    let cfg = config(&dir)
        .canary(quick())
        .provider(Provider::starttls("mx", mx).ca_file(ca))
        .seed(
            imaps_seed(&st, "fine")
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1"),
        )
        .write();
    let (out, _) = once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
