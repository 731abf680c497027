//! Sharding on the real stack (issue 16): two instances run one configuration file of
//! 2 providers × 6 seeds as `--shard.count 2 --shard.index 0` and `... --shard.index 1`.
//!
//! What is proven:
//! - every route's canary is sent and delivered by exactly one instance: its series exist on
//!   that one with sent ≥ 1 and delivered ≥ 1, and not at all on the other; together the two
//!   cover every route;
//! - each instance watches (`deliverability_imap_up`) only its own seeds, and the split is the
//!   one Prometheus' `hashmod` gives, computed here independently of the exporter (and checked
//!   against the values Python's hashlib gives);
//! - only shard 0 runs and exports the checks that are not per route (DNS records, reports);
//! - each says which shard it is (`deliverability_shard_info`, the landing page), and shard 1
//!   keeps its state in `state_dir/shard-1`.
//!
//! And, without the stack: bad `--shard.*` flags are refused with the reason, and
//! `check-config` tells what a shard owns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use common::config::{Canary, ConfigBuilder, Dns, Domain, Provider, Reports, Seed};
use common::{Exporter, Scrape, Stack, TempDir, bin};
use md5::{Digest, Md5};

const PROVIDERS: [&str; 2] = ["p1", "p2"];
const SEEDS: usize = 6;
const SHARDS: u64 = 2;

/// Prometheus' relabel `hashmod` (`binary.BigEndian.Uint64(md5(value)[8:]) % modulus`), written
/// again here so that the test does not take the exporter's word for it.
fn hashmod(value: &str, modulus: u64) -> u64 {
    let d = Md5::digest(value.as_bytes());
    let tail: [u8; 8] = d[8..16].try_into().unwrap();
    u64::from_be_bytes(tail) % modulus
}

fn seed_names() -> Vec<String> {
    (1..=SEEDS).map(|k| format!("s{k}")).collect()
}

/// The seeds of each shard, by the hash above.
fn split() -> BTreeMap<u64, BTreeSet<String>> {
    let mut out: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for s in seed_names() {
        out.entry(hashmod(&s, SHARDS)).or_default().insert(s);
    }
    out
}

#[test]
fn the_split_is_prometheus_hashmod_as_python_computes_it() {
    // python3 -c "import hashlib; print([(f's{k}', int.from_bytes(hashlib.md5(f's{k}'.encode()).digest()[8:], 'big') % 2) for k in range(1, 7)])"
    let python = [
        ("s1", 0),
        ("s2", 0),
        ("s3", 1),
        ("s4", 1),
        ("s5", 0),
        ("s6", 1),
    ];
    for (s, shard) in python {
        assert_eq!(hashmod(s, SHARDS), shard, "{s}");
    }
    // Both shards get seeds, so the test below proves something about each.
    assert_eq!(split().len(), 2);
}

/// One configuration for both shards: 2 providers × 6 seeds, a domain whose DNS records are
/// checked, a report directory.
fn config(st: &Stack, dir: &TempDir, reports: &std::path::Path) -> std::path::PathBuf {
    let ca = st.get("DX_CA_FILE");
    let submit = st.port("DX_SMTP_SUBMIT_PORT");
    let mut b = ConfigBuilder::new(dir)
        .instance("shard-test")
        // One round, at once: the next is an hour away.
        .canary(Canary::new().interval("1h").jitter(0.0).deadline("30s"))
        .dns(Dns::local(st.port("DX_DNS_PORT")).interval("1h"))
        .domain(Domain::new("dx.test").mta_sts(false))
        .reports(Reports::new().interval("1h").dir_source("dir", reports));
    for (k, p) in PROVIDERS.iter().enumerate() {
        let n = k + 1;
        b = b.provider(
            Provider::starttls(p, submit)
                .login(&format!("sender{n}@dx.test"), &format!("pw-sender{n}"))
                .ca_file(ca),
        );
    }
    for (k, s) in seed_names().iter().enumerate() {
        let n = k + 1;
        b = b.seed(
            Seed::implicit_tls(s, st.port("DX_IMAPS_PORT"))
                .address(&format!("seed{n}@seed.test"))
                .password(&format!("pw-seed{n}"))
                .ca_file(ca)
                .authserv_id("mx.seed.test"),
        );
    }
    b.write()
}

fn seeds_of(s: &Scrape, name: &str) -> BTreeSet<String> {
    s.samples(name)
        .into_iter()
        .map(|(l, _)| l["seed"].clone())
        .collect()
}

/// The (provider, seed) pairs of `name`'s series whose value is at least 1.
fn routes_at_least_one(s: &Scrape, name: &str) -> BTreeSet<(String, String)> {
    s.samples(name)
        .into_iter()
        .filter(|(_, v)| *v >= 1.0)
        .map(|(l, _)| (l["provider"].clone(), l["seed"].clone()))
        .collect()
}

/// Whether the scrape has any series of the checks that are not per route: a `check` label
/// other than `canary`, or a DNS or report family with labels.
fn shared_check_series(s: &Scrape) -> Vec<String> {
    const PREFIXES: [&str; 8] = [
        "deliverability_dns_",
        "deliverability_spf_",
        "deliverability_dkim_",
        "deliverability_dmarc_",
        "deliverability_mx_",
        "deliverability_mta_sts_",
        "deliverability_dnsbl_",
        "deliverability_tlsrpt_",
    ];
    s.0.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let labelled = l.contains('{');
            (labelled && PREFIXES.iter().any(|p| l.starts_with(p)))
                || (l.contains("check=\"") && !l.contains("check=\"canary\""))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn two_shards_probe_every_route_exactly_once_and_only_shard_0_runs_the_shared_checks() {
    let st = Stack::start("sharding", &[("DX_SEEDS", &SEEDS.to_string())]);
    let dir = TempDir::new("sharding");
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let cfg = config(&st, &dir, &reports);
    let split = split();
    let all_routes: BTreeSet<(String, String)> = PROVIDERS
        .iter()
        .flat_map(|p| seed_names().into_iter().map(move |s| (p.to_string(), s)))
        .collect();

    let shards: Vec<Exporter> = (0..SHARDS)
        .map(|i| {
            Exporter::start(
                &cfg,
                &["--shard.count", "2", "--shard.index", &i.to_string()],
            )
        })
        .collect();

    // Wait for each shard's round to settle: every canary of its own routes delivered, and on
    // shard 0 the first DNS and report runs recorded.
    let mut scrapes = Vec::new();
    for (i, e) in shards.iter().enumerate() {
        let own = split[&(i as u64)].len() * PROVIDERS.len();
        let s = e.wait_for(
            &format!("shard {i}: {own} canaries delivered and its checks run"),
            Duration::from_secs(60),
            |s| {
                let settled = s.sum("deliverability_canary_delivered_total", &[])
                    + s.sum("deliverability_canary_lost_total", &[])
                    + s.sum("deliverability_canary_send_failures_total", &[]);
                let shared_done = i != 0
                    || ["dns", "reports"]
                        .iter()
                        .all(|c| s.sum("deliverability_check_runs_total", &[("check", c)]) >= 1.0);
                settled >= own as f64 && shared_done
            },
        );
        scrapes.push(s);
    }
    let logs = || {
        shards
            .iter()
            .enumerate()
            .map(|(i, e)| format!("--- shard {i} log ---\n{}", e.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    let mut union = BTreeSet::new();
    for (i, s) in scrapes.iter().enumerate() {
        let own_seeds = &split[&(i as u64)];
        let own_routes: BTreeSet<(String, String)> = all_routes
            .iter()
            .filter(|(_, seed)| own_seeds.contains(seed))
            .cloned()
            .collect();

        assert_eq!(
            s.value(
                "deliverability_shard_info",
                &[("index", &i.to_string()), ("count", "2")]
            ),
            Some(1.0),
            "shard {i}: deliverability_shard_info"
        );
        assert_eq!(s.samples("deliverability_shard_info").len(), 1);

        // Watchers: one per folder (INBOX and the spam folder) of its own seeds, all up.
        assert_eq!(
            seeds_of(s, "deliverability_imap_up"),
            *own_seeds,
            "shard {i}: watched seeds\n{}",
            logs()
        );
        assert_eq!(
            s.sum("deliverability_imap_up", &[]),
            (own_seeds.len() * 2) as f64,
            "shard {i}: every watched folder up"
        );

        // Routes: its own sent and delivered, nothing lost; no series of another shard's.
        assert_eq!(
            routes_at_least_one(s, "deliverability_canary_sent_total"),
            own_routes,
            "shard {i}: routes sent"
        );
        assert_eq!(
            routes_at_least_one(s, "deliverability_canary_delivered_total"),
            own_routes,
            "shard {i}: routes delivered\n{}",
            logs()
        );
        assert_eq!(
            s.sum("deliverability_canary_lost_total", &[]) + 0.0,
            0.0,
            "shard {i}: lost"
        );
        let foreign: Vec<String> =
            s.0.lines()
                .filter(|l| l.starts_with("deliverability_"))
                .filter(|l| {
                    split
                        .iter()
                        .filter(|(shard, _)| **shard != i as u64)
                        .flat_map(|(_, seeds)| seeds)
                        .any(|seed| l.contains(&format!("seed=\"{seed}\"")))
                })
                .map(str::to_string)
                .collect();
        assert!(
            foreign.is_empty(),
            "shard {i} exports series of seeds it does not own: {foreign:#?}"
        );
        union.extend(own_routes);
    }
    assert_eq!(union, all_routes, "the shards together cover every route");
    // Disjoint: the routes sent by one are not sent by the other.
    let sent: Vec<_> = scrapes
        .iter()
        .map(|s| routes_at_least_one(s, "deliverability_canary_sent_total"))
        .collect();
    assert!(sent[0].is_disjoint(&sent[1]), "{sent:?}");
    assert_eq!(sent[0].len() + sent[1].len(), all_routes.len());

    // The checks that are not per route: on shard 0, none on shard 1.
    let zero = &scrapes[0];
    assert!(
        zero.value("deliverability_dns_check_success", &[("domain", "dx.test")])
            .is_some(),
        "shard 0 checks the domain's DNS records\n{}",
        zero.0
    );
    assert!(
        zero.value(
            "deliverability_dmarc_report_errors_total",
            &[("source", "dir")]
        )
        .is_some(),
        "shard 0 reads the report source\n{}",
        zero.0
    );
    assert!(!shared_check_series(zero).is_empty());
    let one = shared_check_series(&scrapes[1]);
    assert!(
        one.is_empty(),
        "shard 1 exports series of DNS or report checks: {one:#?}"
    );

    // The landing page says which shard it is; shard 1's state is in its own directory.
    let (code, page) = shards[1].get("/");
    assert_eq!(code, 200);
    assert!(page.contains("shard 1 of 2"), "{page}");
    assert!(
        dir.path().join("state/shard-1").is_dir(),
        "shard 1's state directory"
    );
    for e in shards {
        e.stop();
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_shard_flags_are_refused_with_the_reason() {
    let dir = TempDir::new("shard-flags");
    let cfg = dir.path().join("dx.toml");
    std::fs::write(&cfg, "").unwrap();
    let cfg = cfg.to_str().unwrap();
    for (args, reason) in [
        (
            vec!["--shard.count", "2", "--shard.index", "2"],
            "--shard.index 2 is out of range for --shard.count 2: shards are numbered 0 to 1",
        ),
        (
            vec!["--shard.count", "0"],
            "--shard.count must be at least 1",
        ),
        (vec!["--shard.index", "1"], "shards are numbered 0 to 0"),
        (vec!["--shard.count=-1"], "--shard.count"),
        (vec!["--shard.index", "x"], "--shard.index"),
    ] {
        for sub in [&["check-config"][..], &["once"][..], &[][..]] {
            let mut a = vec!["--config.file", cfg];
            a.extend(&args);
            a.extend(sub);
            let (code, _, err) = run(&a);
            assert_eq!(code, 2, "{a:?}: {err}");
            assert!(err.contains(reason), "{a:?}: {err}");
            assert!(!err.contains("panicked"), "{a:?}: {err}");
        }
    }
    // `once --only dns` on a shard that does not run DNS checks says so.
    let (code, _, err) = run(&[
        "--config.file",
        cfg,
        "once",
        "--only",
        "dns",
        "--shard.count",
        "2",
        "--shard.index",
        "1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "shard 1 of 2 runs canaries only; DNS, DNSBL and report checks run on shard 0"
        ),
        "{err}"
    );
}

#[test]
fn check_config_tells_what_a_shard_owns() {
    let dir = TempDir::new("shard-check");
    let mut text = String::from(
        "[[providers]]\nname = \"p1\"\nhost = \"smtp.example.com\"\nfrom = \"c@example.com\"\n",
    );
    for s in seed_names() {
        text += &format!(
            "[[seeds]]\nname = \"{s}\"\naddress = \"{s}@example.org\"\nhost = \"imap.example.org\"\npassword = \"pw\"\n"
        );
    }
    let cfg = dir.path().join("dx.toml");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let (code, out, err) = run(&[
        "--config.file",
        cfg,
        "--shard.count",
        "2",
        "--shard.index",
        "1",
        "check-config",
    ]);
    assert_eq!(code, 0, "{err}");
    let own: Vec<String> = split()[&1].iter().cloned().collect();
    assert!(
        out.contains(&format!(
            "shard 1 of 2: 3 of 6 seeds [{}], 3 routes; canaries only",
            own.join(", ")
        )),
        "{out}"
    );
    // Unsharded, the line is not printed.
    let (code, out, _) = run(&["--config.file", cfg, "check-config"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(!out.contains(" of 6 seeds"), "{out}");
}
