//! The fault matrix on the real stack: SMTP, IMAP, DNS and state-directory faults. In every
//! case the exporter keeps serving /metrics, the failing part shows in its metrics, and it
//! recovers by itself when the fault ends.
//!
//! Scripted peers are used only where no real server can be made to produce the fault on
//! demand, and each says so: an SMTP server that answers 421 to the connection, one that cuts
//! the connection in the middle of the message, an IMAP server that sends garbage, one that
//! announces new mail in the middle of a command, and a nameserver that never answers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, Dns, Dnsbl, Domain, Provider, Reports, Seed};
use common::{Exporter, Scrape, Stack, TempDir, bin};

/// Accepts connections and never says a word (a server that hangs before its banner).
fn sink() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// Scripted SMTP peer (Postfix can't be told to do these on demand): `greeting421` answers the
/// connection with 421; `cut_at_data` closes the connection when DATA comes, without a reply;
/// `close_after_message` reads the whole message and closes without the final reply.
fn scripted_smtp(mode: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                if mode == "greeting421" {
                    let _ = w.write_all(
                        b"421 4.3.2 Service not available, closing transmission channel\r\n",
                    );
                    return;
                }
                let _ = w.write_all(b"220 scripted.test ESMTP\r\n");
                let mut r = BufReader::new(s);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-scripted.test\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") && mode == "cut_at_data" {
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    } else if cmd.starts_with("DATA") {
                        let _ = w.write_all(b"354 go ahead\r\n");
                        let mut l = String::new();
                        while r.read_line(&mut l).unwrap_or(0) > 0 && l != ".\r\n" {
                            l.clear();
                        }
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    } else if cmd.starts_with("QUIT") {
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if w.write_all(reply).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

/// Scripted IMAP peer (Dovecot never sends garbage): a greeting, then noise for every command.
fn scripted_imap_garbage() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.write_all(b"* OK garbage server ready\r\n");
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    if s.write_all(b"\x00\xff}}}} NOT IMAP {99999999}\r\n)))\r\n")
                        .is_err()
                    {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

/// Scripted IMAP peer for a race no real server produces on demand: mail that arrives while
/// the watcher is between commands. Its INBOX holds one message; the reply to the watcher's
/// UID FETCH carries `* 2 EXISTS` (a second message arrived meanwhile), and in IDLE it stays
/// silent, as Dovecot does for a change it has already reported. Every later UID SEARCH reply
/// repeats `* 2 EXISTS` (servers may), which must not make the watcher search in a loop.
/// Returns the port and the commands received on the INBOX connection.
fn scripted_imap_exists_during_fetch() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let inbox_log = log.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let log = inbox_log.clone();
            std::thread::spawn(move || {
                let _ = s.write_all(b"* OK scripted IMAP ready\r\n");
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut inbox = false;
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let (tag, rest) = line.trim_end().split_once(' ').unwrap_or(("*", ""));
                    let (tag, cmd) = (tag.to_string(), rest.to_ascii_uppercase());
                    if inbox {
                        log.lock().unwrap().push(cmd.clone());
                    }
                    let reply = if cmd.starts_with("CAPABILITY") {
                        format!("* CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE\r\n{tag} OK done\r\n")
                    } else if cmd.starts_with("LIST") {
                        format!("* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n{tag} OK done\r\n")
                    } else if cmd.starts_with("SELECT") {
                        inbox = cmd.contains("INBOX");
                        let n = if inbox { 1 } else { 0 };
                        format!(
                            "* {n} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n"
                        )
                    } else if cmd.starts_with("UID SEARCH") {
                        let first = inbox
                            && log
                                .lock()
                                .unwrap()
                                .iter()
                                .filter(|c| c.starts_with("UID SEARCH"))
                                .count()
                                == 1;
                        if first {
                            format!("* SEARCH 1\r\n{tag} OK done\r\n")
                        } else {
                            format!("* SEARCH\r\n* 2 EXISTS\r\n{tag} OK done\r\n")
                        }
                    } else if cmd.starts_with("UID FETCH") {
                        let header = "X-Deliverability-Canary: dx-abcdefghijklmnop\r\nSubject: dx-abcdefghijklmnop\r\n\r\n";
                        format!(
                            "* 1 FETCH (UID 1 INTERNALDATE \"29-Nov-2026 09:00:00 +0000\" BODY[HEADER] {{{}}}\r\n{header})\r\n* 2 EXISTS\r\n{tag} OK done\r\n",
                            header.len()
                        )
                    } else if cmd.starts_with("IDLE") {
                        let _ = s.write_all(b"+ idling\r\n");
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        format!("{tag} OK idle done\r\n")
                    } else if cmd.starts_with("LOGOUT") {
                        let _ = s.write_all(format!("* BYE\r\n{tag} OK done\r\n").as_bytes());
                        return;
                    } else {
                        format!("{tag} OK done\r\n")
                    };
                    if s.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    (port, log)
}

fn fails(s: &Scrape, p: &str, stage: &str, class: &str, code: &str) -> f64 {
    s.sum(
        "deliverability_canary_send_failures_total",
        &[
            ("provider", p),
            ("stage", stage),
            ("class", class),
            ("code", code),
        ],
    )
}

#[test]
fn smtp_faults_are_classified_and_a_stopped_postfix_recovers() {
    let st = Stack::start("faults-smtp", &[]);
    let dir = TempDir::new("faults-smtp");
    let ca = st.get("DX_CA_FILE");
    let cfg = ConfigBuilder::new(&dir)
        .canary(
            Canary::new()
                .interval("2s")
                .jitter(0.0)
                .deadline("30s")
                .smtp_timeout("1s"),
        )
        .provider(Provider::no_tls("hang", sink()).ca_file(ca))
        .provider(Provider::no_tls("refuse421", scripted_smtp("greeting421")).ca_file(ca))
        .provider(Provider::no_tls("cut", scripted_smtp("cut_at_data")).ca_file(ca))
        .provider(Provider::no_tls("noreply", scripted_smtp("close_after_message")).ca_file(ca))
        .provider(Provider::starttls("postfix", st.port("DX_SMTP_MX_PORT")).ca_file(ca))
        .seed(
            Seed::implicit_tls("s1", st.port("DX_IMAPS_PORT"))
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1")
                .ca_file(ca),
        )
        .write();
    let e = Exporter::start(&cfg, &[]);
    let s = e.wait_for(
        "every SMTP fault classified",
        Duration::from_secs(30),
        |s| {
            fails(s, "hang", "ehlo", "timeout", "") >= 1.0
                && fails(s, "refuse421", "ehlo", "transient", "421") >= 1.0
                && fails(s, "cut", "data", "network", "") >= 1.0
                && fails(s, "noreply", "body", "uncertain", "") >= 1.0
                && s.value(
                    "deliverability_canary_uncertain_total",
                    &[("provider", "noreply")],
                ) >= Some(1.0)
                && s.value(
                    "deliverability_canary_delivered_total",
                    &[
                        ("provider", "postfix"),
                        ("seed", "s1"),
                        ("placement", "inbox"),
                    ],
                ) >= Some(1.0)
        },
    );
    for p in ["hang", "refuse421", "cut", "noreply"] {
        assert_eq!(
            s.value(
                "deliverability_canary_success",
                &[("provider", p), ("seed", "s1")]
            ),
            Some(0.0),
            "{p}"
        );
    }

    // Postfix stops: connections are refused, the exporter says so and keeps serving.
    st.ctl(&["stop", "postfix"]);
    let s = e.wait_for(
        "connect failures while Postfix is down",
        Duration::from_secs(20),
        |s| fails(s, "postfix", "connect", "network", "") >= 1.0,
    );
    assert_eq!(
        s.value(
            "deliverability_canary_success",
            &[("provider", "postfix"), ("seed", "s1")]
        ),
        Some(0.0)
    );
    let delivered = s
        .value(
            "deliverability_canary_delivered_total",
            &[
                ("provider", "postfix"),
                ("seed", "s1"),
                ("placement", "inbox"),
            ],
        )
        .unwrap();
    // Postfix is back: the next canary goes through, nothing to do by hand.
    st.ctl(&["start", "postfix"]);
    let s = e.wait_for(
        "a delivery after Postfix is back",
        Duration::from_secs(30),
        |s| {
            s.value(
                "deliverability_canary_delivered_total",
                &[
                    ("provider", "postfix"),
                    ("seed", "s1"),
                    ("placement", "inbox"),
                ],
            )
            .unwrap_or(0.0)
                > delivered
        },
    );
    assert_eq!(
        s.value(
            "deliverability_canary_success",
            &[("provider", "postfix"), ("seed", "s1")]
        ),
        Some(1.0)
    );
}

#[test]
fn imap_faults_show_in_the_watchers_and_a_deleted_folder_comes_back() {
    let st = Stack::start("faults-imap", &[]);
    let dir = TempDir::new("faults-imap");
    let ca = st.get("DX_CA_FILE");
    let imaps = st.port("DX_IMAPS_PORT");
    let cfg = ConfigBuilder::new(&dir)
        .canary(Canary::new().interval("1h").imap_timeout("2s"))
        .provider(Provider::starttls("postfix", st.port("DX_SMTP_MX_PORT")).ca_file(ca))
        .seed(
            Seed::implicit_tls("good", imaps)
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw-seed1")
                .ca_file(ca),
        )
        .seed(
            Seed::implicit_tls("refused", imaps)
                .address("seed2@seed.test")
                .login("denied@seed.test", "pw-denied")
                .ca_file(ca),
        )
        .seed(
            Seed::no_tls("garbage", scripted_imap_garbage())
                .address("seed3@seed.test")
                .login("seed3@seed.test", "pw-seed3")
                .ca_file(ca),
        )
        .write();
    let e = Exporter::start(&cfg, &[]);
    let up = |s: &Scrape, seed: &str, folder: &str| {
        s.value(
            "deliverability_imap_up",
            &[("seed", seed), ("folder", folder)],
        )
    };
    let reconnects = |s: &Scrape, seed: &str, folder: &str| {
        s.value(
            "deliverability_imap_reconnects_total",
            &[("seed", seed), ("folder", folder)],
        )
        .unwrap_or(0.0)
    };
    let s = e.wait_for(
        "the faulty seeds to be retried",
        Duration::from_secs(30),
        |s| {
            up(s, "good", "inbox") == Some(1.0)
                && up(s, "good", "spam") == Some(1.0)
                && reconnects(s, "refused", "inbox") >= 1.0
                && reconnects(s, "garbage", "inbox") >= 1.0
        },
    );
    assert_eq!(up(&s, "refused", "inbox"), Some(0.0));
    assert_eq!(up(&s, "garbage", "inbox"), Some(0.0));
    let log = e.log_text();
    assert!(log.contains("login as denied@seed.test refused"), "{log}");

    // The spam folder is deleted under its watcher: the watcher notices, reconnects, and
    // Dovecot (auto = subscribe) creates the folder again at the next login.
    let before = reconnects(&s, "good", "spam");
    let py = format!(
        "import imaplib, ssl\nc = ssl.create_default_context(cafile='{ca}')\nm = imaplib.IMAP4_SSL('127.0.0.1', {imaps}, ssl_context=c)\nm.login('seed1@seed.test', 'pw-seed1')\nprint(m.delete('Junk'))\nm.logout()\n"
    );
    let out = Command::new("python3").arg("-c").arg(&py).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = e.wait_for(
        "the spam watcher to reconnect after its folder was deleted",
        Duration::from_secs(40),
        |s| reconnects(s, "good", "spam") > before && up(s, "good", "spam") == Some(1.0),
    );
    assert_eq!(
        up(&s, "good", "inbox"),
        Some(1.0),
        "the inbox watcher is not affected"
    );
    assert_eq!(e.get("/-/healthy").0, 200);
}

#[test]
fn mail_announced_during_a_scan_is_looked_for_at_once_not_at_the_next_idle_refresh() {
    let dir = TempDir::new("faults-exists");
    let (imap, commands) = scripted_imap_exists_during_fetch();
    let cfg = ConfigBuilder::new(&dir)
        .canary(Canary::new().interval("1h").imap_timeout("2s"))
        .provider(Provider::no_tls("nowhere", sink()))
        .seed(
            Seed::no_tls("s", imap)
                .address("seed1@seed.test")
                .login("seed1@seed.test", "pw"),
        )
        .write();
    let e = Exporter::start(&cfg, &[]);
    let start = std::time::Instant::now();
    let searches = || {
        commands
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("UID SEARCH"))
            .count()
    };
    let idles = || {
        commands
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("IDLE"))
    };
    while !idles() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time for a watcher that searches in a loop to show it.
    std::thread::sleep(Duration::from_secs(1));
    let seen = commands.lock().unwrap().clone();
    assert_eq!(
        searches(),
        2,
        "one search for the announced mail, then IDLE, even though the server repeats its EXISTS: {seen:?}"
    );
    let second = seen
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("UID SEARCH"))
        .nth(1)
        .map(|(i, _)| i);
    let first_idle = seen.iter().position(|c| c.starts_with("IDLE"));
    assert!(
        second.is_some(),
        "the EXISTS in the FETCH reply was not followed by a new search (commands: {seen:?})"
    );
    assert!(
        first_idle.is_none_or(|i| i > second.unwrap()),
        "the watcher went to IDLE before looking for the announced mail (commands: {seen:?})"
    );
    assert!(
        seen[second.unwrap()].contains("UID 2:*"),
        "the second search starts after the message already seen: {seen:?}"
    );
    drop(e);
}

#[test]
fn dns_faults_servfail_and_truncated_answers() {
    let st = Stack::start("faults-dns", &[]);
    let dir = TempDir::new("faults-dns");
    let cfg = ConfigBuilder::new(&dir)
        .dns(Dns::local(st.port("DX_DNS_PORT")).timeout("2s"))
        .domain(Domain::new("bigspf.faults.test").mta_sts(false))
        .domain(Domain::new("servfail.test").mta_sts(false))
        .dnsbl(
            Dnsbl::new()
                .ips(&["192.0.2.10"])
                .custom("servfail-list", "servfail.test", "ip"),
        )
        .write();
    let run = |only: &str| {
        let out = Command::new(bin())
            .args(["--config.file"])
            .arg(&cfg)
            .args(["once", "--only", only])
            .output()
            .unwrap();
        Scrape(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let s = run("dns");
    // A 2 kB SPF record: the UDP answer comes back truncated and is fetched again over TCP.
    assert_eq!(
        s.value(
            "deliverability_dns_check_success",
            &[("domain", "bigspf.faults.test"), ("check", "spf")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
    assert_eq!(
        s.value(
            "deliverability_spf_dns_lookups",
            &[("domain", "bigspf.faults.test")]
        ),
        Some(0.0)
    );
    // SERVFAIL: an error with its reason, never a verdict on the record.
    assert_eq!(
        s.value(
            "deliverability_dns_check_success",
            &[("domain", "servfail.test"), ("check", "spf")]
        ),
        Some(0.0)
    );
    assert!(
        s.sum(
            "deliverability_dns_check_errors_total",
            &[("domain", "servfail.test"), ("reason", "dns_error")]
        ) >= 1.0,
        "{}",
        s.0
    );
    let s = run("dnsbl");
    assert_eq!(
        s.value(
            "deliverability_dnsbl_listed",
            &[("target", "192.0.2.10"), ("zone", "servfail-list")]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.value(
            "deliverability_dnsbl_zone_healthy",
            &[("zone", "servfail-list")]
        ),
        Some(0.0)
    );
    assert!(
        s.sum(
            "deliverability_dnsbl_error",
            &[("target", "192.0.2.10"), ("zone", "servfail-list")]
        ) >= 1.0,
        "{}",
        s.0
    );
}

#[test]
fn dns_a_nameserver_that_stops_answering_then_comes_back() {
    let st = Stack::start("faults-dnsdown", &[]);
    let dir = TempDir::new("faults-dnsdown");
    let dns = st.port("DX_DNS_PORT");
    let cfg = ConfigBuilder::new(&dir)
        .dns(Dns::local(dns).timeout("1s").attempts(1).interval("10s"))
        .domain(Domain::new("dx.test").mta_sts(false))
        .write();
    let e = Exporter::start(&cfg, &[]);
    let spf = |s: &Scrape| {
        s.value(
            "deliverability_dns_check_success",
            &[("domain", "dx.test"), ("check", "spf")],
        )
    };
    let errors = |s: &Scrape| {
        s.sum(
            "deliverability_dns_check_errors_total",
            &[("domain", "dx.test"), ("reason", "dns_error")],
        )
    };
    e.wait_for("a first good run", Duration::from_secs(20), |s| {
        spf(s) == Some(1.0)
    });

    // Unbound stops, and a scripted peer takes its port and never says a word (no real
    // nameserver can be made to stay silent on demand): every query times out.
    st.ctl(&["stop", "unbound"]);
    let silent_udp = std::net::UdpSocket::bind(("127.0.0.1", dns)).unwrap();
    let silent_tcp = TcpListener::bind(("127.0.0.1", dns)).unwrap();
    let s = e.wait_for(
        "errors while the nameserver is silent",
        Duration::from_secs(30),
        |s| spf(s) == Some(0.0) && errors(s) >= 1.0,
    );
    let during = errors(&s);
    let log = e.log_text();
    assert!(
        log.contains("dx.test: no answer from the nameservers in time"),
        "the log says the queries timed out: {log}"
    );
    assert_eq!(e.get("/-/healthy").0, 200, "the exporter keeps serving");

    // The nameserver answers again: the next run is clean, with nothing to do by hand.
    drop(silent_udp);
    drop(silent_tcp);
    st.ctl(&["start", "unbound"]);
    let s = e.wait_for(
        "a good run after the nameserver is back",
        Duration::from_secs(30),
        |s| spf(s) == Some(1.0),
    );
    assert!(errors(&s) >= during);
    assert_eq!(
        s.value(
            "deliverability_dns_check_success",
            &[("domain", "dx.test"), ("check", "mx")]
        ),
        Some(1.0),
        "{}",
        s.0
    );
}

fn dmarc(id: u32) -> String {
    format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>r.example</org_name><email>d@r.example</email><report_id>k{id}</report_id><date_range><begin>1795900000</begin><end>1795986399</end></date_range></report_metadata><policy_published><domain>dx.test</domain><p>reject</p></policy_published><record><row><source_ip>127.0.0.1</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>dx.test</header_from></identifiers><auth_results><dkim><domain>dx.test</domain><result>pass</result></dkim></auth_results></record></feedback>"
    )
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
                .count()
        })
        .unwrap_or(0)
}

fn ledger_reports(state: &Path) -> usize {
    let text = std::fs::read_to_string(state.join("reports-ledger.json")).unwrap_or_default();
    text.matches("dx.test").count()
}

/// A configuration that reads DMARC reports from the directory `inbox` every second.
fn reports_dir_config(dir: &TempDir, inbox: &Path) -> std::path::PathBuf {
    ConfigBuilder::new(dir)
        .domain(Domain::new("dx.test").mta_sts(false))
        .dns(Dns::local(9).interval("1h"))
        .reports(Reports::new().interval("1s").dir_source("dir", inbox))
        .write()
}

/// Unmounts the tmpfs of [`tmpfs`] when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts a small tmpfs on `dir` (a disk that can be filled or turned read-only on demand).
fn tmpfs(dir: &Path, size: &str) -> Unmount {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(
        mounted,
        "this test needs to mount a small tmpfs (it runs as root in CI)"
    );
    Unmount(dir.to_path_buf())
}

#[test]
fn sigkill_in_the_middle_of_reports_counts_nothing_twice() {
    let dir = TempDir::new("faults-kill");
    let inbox = dir.path().join("reports");
    std::fs::create_dir_all(&inbox).unwrap();
    let n = 600;
    for i in 0..n {
        std::fs::write(inbox.join(format!("r{i:04}.xml")), dmarc(i)).unwrap();
    }
    let cfg = reports_dir_config(&dir, &inbox);
    let e = Exporter::start(&cfg, &[]);
    // Kill it as soon as it has started moving files.
    let processed = inbox.join("processed");
    let start = std::time::Instant::now();
    while files(&processed) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no file processed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    e.signal("KILL");
    drop(e);
    let state = dir.path().join("state");
    let known = ledger_reports(&state);
    assert!(
        known > 0 && known < n as usize,
        "the kill should land mid-way (ledger knows {known} of {n})"
    );
    // Restarted, it counts exactly the reports the ledger did not know: none twice.
    let e = Exporter::start(&cfg, &[]);
    let s = e.wait_for("every file processed", Duration::from_secs(60), |_| {
        files(&processed) == n as usize && files(&inbox) == 0
    });
    let s2 = e.wait_for("the counts of the run", Duration::from_secs(10), |s| {
        s.sum("deliverability_dmarc_reports_total", &[]) >= (n as usize - known) as f64
    });
    let counted = s2.sum("deliverability_dmarc_reports_total", &[]);
    assert_eq!(
        counted as usize,
        n as usize - known,
        "counted after the restart: {counted}, ledger knew {known} of {n}"
    );
    assert_eq!(ledger_reports(&state), n as usize);
    drop(s);
}

#[test]
fn a_full_disk_during_a_ledger_write_counts_nothing_and_recovers() {
    let dir = TempDir::new("faults-full");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _guard = tmpfs(&state, "256k");
    let inbox = dir.path().join("reports");
    std::fs::create_dir_all(&inbox).unwrap();
    for i in 0..20 {
        std::fs::write(inbox.join(format!("r{i:02}.xml")), dmarc(i)).unwrap();
    }
    let cfg = reports_dir_config(&dir, &inbox);
    let e = Exporter::start(&cfg, &[]);
    // Fill the state directory's disk.
    let filler = state.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 512 * 1024]);
    let s = e.wait_for("a failed report run", Duration::from_secs(20), |s| {
        s.value(
            "deliverability_check_runs_total",
            &[("check", "reports"), ("result", "failure")],
        ) >= Some(1.0)
    });
    assert_eq!(
        s.sum("deliverability_dmarc_reports_total", &[]),
        0.0,
        "nothing is counted before the ledger is saved"
    );
    assert_eq!(files(&inbox), 20, "nothing is moved either");
    assert_eq!(
        s.value(
            "deliverability_state_write_failing",
            &[("file", "reports-ledger.json")]
        ),
        Some(1.0)
    );
    assert!(
        e.log_text().contains("No space left on device") || e.log_text().contains("ledger"),
        "{}",
        e.log_text()
    );
    // Space again: the next run counts each report once.
    std::fs::remove_file(&filler).unwrap();
    let s = e.wait_for(
        "the reports counted once the disk has room",
        Duration::from_secs(20),
        |s| s.sum("deliverability_dmarc_reports_total", &[]) == 20.0,
    );
    assert_eq!(
        s.value(
            "deliverability_state_write_failing",
            &[("file", "reports-ledger.json")]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.value("deliverability_check_success", &[("check", "reports")]),
        Some(1.0)
    );
    assert_eq!(files(&inbox), 0);
}

#[test]
fn a_state_directory_turned_read_only_counts_nothing_and_recovers() {
    let dir = TempDir::new("faults-ro");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _guard = tmpfs(&state, "1m");
    let remount = |mode: &str| {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&state)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {mode}");
    };
    let inbox = dir.path().join("reports");
    std::fs::create_dir_all(&inbox).unwrap();
    let cfg = reports_dir_config(&dir, &inbox);
    let e = Exporter::start(&cfg, &[]);
    let failing = |s: &Scrape| {
        s.value(
            "deliverability_state_write_failing",
            &[("file", "reports-ledger.json")],
        )
    };
    let s = e.wait_for("a first report run", Duration::from_secs(20), |s| {
        s.value(
            "deliverability_check_runs_total",
            &[("check", "reports"), ("result", "success")],
        ) >= Some(1.0)
    });
    assert_eq!(failing(&s), Some(0.0));

    // The file system of the state directory turns read-only (as after an I/O error), then
    // reports arrive.
    remount("ro");
    for i in 0..10 {
        std::fs::write(inbox.join(format!("r{i:02}.xml")), dmarc(i)).unwrap();
    }
    let s = e.wait_for(
        "failed ledger writes while the state is read-only",
        Duration::from_secs(20),
        |s| {
            failing(s) == Some(1.0)
                && s.value(
                    "deliverability_state_write_errors_total",
                    &[("file", "reports-ledger.json")],
                ) >= Some(2.0)
                && s.value("deliverability_check_success", &[("check", "reports")]) == Some(0.0)
        },
    );
    assert_eq!(
        s.sum("deliverability_dmarc_reports_total", &[]),
        0.0,
        "nothing is counted before the ledger is saved"
    );
    assert_eq!(files(&inbox), 10, "nothing is moved either");
    assert!(
        e.log_text().contains("Read-only file system"),
        "the log names the cause: {}",
        e.log_text()
    );
    assert_eq!(e.get("/-/healthy").0, 200, "the exporter keeps serving");

    // Writable again: the next run counts each report once, and the gauge clears.
    remount("rw");
    let s = e.wait_for(
        "the reports counted once the state is writable",
        Duration::from_secs(20),
        |s| s.sum("deliverability_dmarc_reports_total", &[]) == 10.0 && failing(s) == Some(0.0),
    );
    assert_eq!(
        s.value("deliverability_check_success", &[("check", "reports")]),
        Some(1.0)
    );
    assert_eq!(files(&inbox), 0);
    assert_eq!(ledger_reports(&state), 10);
    // Later runs find nothing new: the count stays.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        e.scrape().sum("deliverability_dmarc_reports_total", &[]),
        10.0
    );
}
