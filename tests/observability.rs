//! The exporter's public interface against a real scrape: the metrics reference
//! (docs/metrics.md) lists exactly the families a full scrape holds, with their type, labels
//! and help.
//!
//! The scenario is the demo's (examples/local-stack.toml.in on a private stack: canaries
//! through four providers, DNS and blacklist checks, reports mailed into the rua mailbox) plus
//! a provider with a wrong password, so every family shows at least one series.
//!
//! `DX_WRITE_METRICS_DOC=1 cargo test --test observability` rewrites docs/metrics.md from the
//! scrape instead of comparing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::{Stack, repo};

/// name → (type, labels, help) of every family in a scrape.
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>, String)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>, String)> = BTreeMap::new();
    let mut helps = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            helps.insert(
                name.to_string(),
                help.replace("\\\\", "\\").replace("\\n", "\n"),
            );
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, ""));
            out.insert(
                name.to_string(),
                (
                    ty.to_string(),
                    BTreeSet::new(),
                    helps.get(name).cloned().unwrap_or_default(),
                ),
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let series = line.rsplit_once(' ').map(|(s, _)| s).unwrap_or(line);
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| out.get(*f).is_some_and(|(t, _, _)| t == "histogram"))
                .unwrap_or(name);
            if let Some((_, set, _)) = out.get_mut(family) {
                for kv in labels
                    .trim_end_matches('}')
                    .split("\",")
                    .filter(|s| !s.is_empty())
                {
                    if let Some((k, _)) = kv.split_once('=')
                        && k != "le"
                    {
                        set.insert(k.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Families the scenario can't produce (the demo domains publish no MTA-STS policy: the stack
/// has no HTTPS policy host), documented by hand.
const NOT_IN_THE_SCENARIO: &[&str] = &[
    "| `deliverability_mta_sts_max_age_seconds` | gauge | `domain` | The max_age of the domain's MTA-STS policy. |",
    "| `deliverability_mta_sts_mx_mismatch` | gauge | `domain`, `mx` | Whether this MX host of the domain matches no mx: pattern of the domain's MTA-STS policy (1), so senders applying the policy in enforce mode will not deliver to it; 0 when it matches. Only while a policy in testing or enforce mode is known; kept at its last value while the policy cannot be fetched. |",
];

fn doc_rows(f: &BTreeMap<String, (String, BTreeSet<String>, String)>) -> Vec<String> {
    let mut rows: Vec<String> = f
        .iter()
        .filter(|(name, _)| name.starts_with("deliverability_"))
        .map(|(name, (ty, labels, help))| {
            let labels: Vec<String> = labels.iter().map(|l| format!("`{l}`")).collect();
            format!(
                "| `{name}` | {ty} | {} | {} |",
                if labels.is_empty() {
                    "–".to_string()
                } else {
                    labels.join(", ")
                },
                help.replace('|', "\\|")
            )
        })
        .collect();
    rows.extend(NOT_IN_THE_SCENARIO.iter().map(|r| r.to_string()));
    rows.sort();
    rows
}

/// Every full metric name written in src/metrics/ (the one place families are defined).
fn declared() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in std::fs::read_dir(repo().join("src/metrics")).unwrap() {
        let path = f.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for (at, _) in text.match_indices("\"deliverability_") {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.ends_with('_') {
                out.insert(name);
            }
        }
    }
    out
}

const DOC_HEAD: &str = "# Metrics reference

Every metric family the exporter exposes, with its type, labels and help text. Checked against a
real scrape by `tests/observability.rs` (no family missing here, none listed that doesn't
exist); `DX_WRITE_METRICS_DOC=1 cargo test --test observability` writes this file. Besides
these, the `process_*` metrics of the exporter process. `/probe` answers with the families of
its module (`deliverability_dns_*`, `deliverability_spf_*`, `deliverability_dkim_*`,
`deliverability_dmarc_*` of the records, `deliverability_mx_records`, `deliverability_mta_sts_*`,
or `deliverability_dnsbl_*`) plus `deliverability_probe_success` and
`deliverability_probe_duration_seconds`.

Label values are bounded: `provider`, `seed`, `check`, `zone`, `source` and `domain` come from
the configuration (`domain=\"other\"` for report domains not configured), `stage`, `class`,
`placement`, `path`, `method`, `result`, `reason`, `policy`, `mode`, `qualifier`, `type`,
`disposition` from fixed sets; `code` is a three-digit SMTP reply code or empty; `reporter` and
report `source` are capped by `reports.label_limit`.

`reporter` names who sent a report, one value per receiver however its reports spell their
organization's name: the organizational domain of the report's contact address, lower case
(`microsoft.com` for reports signed `Outlook.com` or `Microsoft Corporation`), else of the
organization's name when that is a domain, else `unknown`. `parse-report --json` prints the same
value as `reporter` (and the name as written as `org_name`).

## Series

What a configuration costs the Prometheus that scrapes it, with P providers, S seeds and
R = P × S routes, once every route has delivered a canary (counted on the real stack by
`tests/scale.rs` with 50 × 20 routes: 16.00 per route, 233 per provider, 27 per seed):

    series ≈ 233·P + 27·S + 16·R + the exporter's own (34 there, with canaries only)

- **Per route, 16**: sent, send success, in flight, success, last send, last success, last
  delivery time, lost, late (9), delivered by placement (3), the SPF, DKIM and DMARC `pass`
  verdicts (3), and the spam score of the receiver's filter (1 on most receivers, once a canary
  arrived). Each other verdict (a DKIM `fail`, an `arc` result), second spam filter and send
  failure (stage, class, reply code) adds one when it first happens.
- **Per provider, 233**: every SMTP stage × failure class (63, present from the first scrape so
  one failure shows in `increase()`), the SMTP stage histograms (18 per stage seen), the
  delivery histogram over all seeds (18), retries, uncertain sends, the AUTH mechanism, TLS
  version and certificate expiry; and, once a canary was judged (after that count was taken),
  the sender requirements: 8, or 9 with one-click unsubscribe.
- **Bounces**: 16 unattributed-bounce series (class × reason) in all; a route's bounce counter
  appears with its first bounce (one per class and reason seen).
- `canary.route_requirements = true` adds up to 9 per route.
- **Per seed, 27**: the delivery histogram over all providers (18), the detection paths (3),
  the verify cadence, and per watched folder (INBOX and the spam folder) `imap_up` and
  reconnects.
- `canary.route_histograms = true` adds the per-route delivery histogram,
  `deliverability_canary_delivery_duration_seconds{provider,seed}`: 18 more per route.

At 10,000 routes (100 × 100): about 186,000 series; before the per-route histogram, detection
paths, retries and uncertain counters moved to providers and seeds, 41.5 per route made it
about 415,000.

| metric | type | labels | help |
| --- | --- | --- | --- |
";

#[test]
fn the_metrics_reference_matches_a_full_scrape() {
    let (_st, _dir, e) = common::demo_scenario("observability");
    let s = e.scrape();
    let mut fams = families(&s.0);
    // The probe families come from /probe.
    let (code, probe) = e.get("/probe?module=dnsbl&target=192.0.2.10");
    assert_eq!(code, 200);
    for (k, v) in families(&probe) {
        fams.entry(k).or_insert(v);
    }
    let rows = doc_rows(&fams);
    let doc_path = repo().join("docs/metrics.md");
    if std::env::var("DX_WRITE_METRICS_DOC").is_ok() {
        std::fs::write(&doc_path, format!("{DOC_HEAD}{}\n", rows.join("\n"))).unwrap();
        return;
    }
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    let documented: BTreeSet<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `deliverability_"))
        .collect();
    let scraped: BTreeSet<&str> = rows.iter().map(String::as_str).collect();
    let missing: Vec<_> = scraped.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&scraped).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/metrics.md is out of date (DX_WRITE_METRICS_DOC=1 cargo test --test observability rewrites it)\nnot documented:\n{}\ndocumented but not exported as such:\n{}",
        missing
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        stale
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every family defined in src/metrics/ is documented, even one this scenario can't produce.
    for name in declared() {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} is defined in src/metrics/ but not in docs/metrics.md"
        );
    }
    assert!(Path::new(&doc_path).exists());
}

/// GET on the Prometheus HTTP API; the JSON body.
fn prom(st: &Stack, path_and_query: &str) -> serde_json::Value {
    let (code, body) = common::http(
        &format!("127.0.0.1:{}", st.port("DX_PROM_PORT")),
        "GET",
        path_and_query,
    );
    assert_eq!(code, 200, "{path_and_query}: {body}");
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{path_and_query}: not JSON ({e}): {body}"))
}

fn encode(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// Every query of every panel and template variable of a dashboard, variables substituted
/// with "All" (`.*`).
fn dashboard_queries(path: &Path) -> Vec<(String, String)> {
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or("");
        if let Some(inner) = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
        {
            // label_values(expr, label): the expression must select series.
            let expr = inner
                .rsplit_once(',')
                .map(|(e, _)| e.trim())
                .unwrap_or(inner);
            out.push((
                format!("variable {}", v["name"].as_str().unwrap_or("?")),
                expr.to_string(),
            ));
        }
    }
    out.into_iter()
        .map(|(t, e)| {
            (
                t,
                e.replace("$provider", ".*")
                    .replace("$seed", ".*")
                    .replace("$domain", ".*"),
            )
        })
        .collect()
}

#[test]
fn dashboards_and_alert_rules_work_against_a_real_prometheus() {
    let (st, _dir, e) = common::demo_scenario("prometheus");
    // Prometheus scrapes the exporter (file_sd) and loads the shipped alert rules.
    let targets = Path::new(st.get("DX_PROM_TARGETS_DIR"));
    std::fs::write(
        targets.join(".x.tmp"),
        format!("[{{\"targets\":[\"{}\"]}}]", e.addr),
    )
    .unwrap();
    std::fs::rename(targets.join(".x.tmp"), targets.join("exporter.json")).unwrap();
    let rules = Path::new(st.get("DX_PROM_RULES_DIR"));
    for f in std::fs::read_dir(repo().join("alerts")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|x| x == "yml") {
            std::fs::copy(&f, rules.join(f.file_name().unwrap())).unwrap();
        }
    }
    let (code, body) = common::http(
        &format!("127.0.0.1:{}", st.port("DX_PROM_PORT")),
        "POST",
        "/-/reload",
    );
    assert_eq!(code, 200, "Prometheus reload: {body}");
    // Prometheus has the exporter's data (new file_sd targets take up to 5 s in 2.42).
    let start = std::time::Instant::now();
    loop {
        let r = prom(
            &st,
            &format!(
                "/api/v1/query?query={}",
                encode(
                    "sum(deliverability_dmarc_reports_total) > 0 and sum(deliverability_canary_delivered_total) > 3"
                )
            ),
        );
        if r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus never had the exporter's data: {r}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));

    // Every dashboard query returns at least one series.
    let scrape = e.scrape().0;
    let mut empty = Vec::new();
    let mut count = 0;
    for f in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let f = f.unwrap().path();
        for (title, expr) in dashboard_queries(&f) {
            count += 1;
            let r = prom(&st, &format!("/api/v1/query?query={}", encode(&expr)));
            assert_eq!(
                r["status"],
                "success",
                "{}: {title}: {expr}: {r}",
                f.display()
            );
            if r["data"]["result"].as_array().is_none_or(|a| a.is_empty()) {
                empty.push(format!(
                    "{}: {title}: {expr}",
                    f.file_name().unwrap().to_string_lossy()
                ));
            }
            // Every metric a query names is one the exporter exports.
            for (at, _) in expr.match_indices("deliverability_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    scrape.contains(&format!("# TYPE {name} "))
                        || scrape.contains(&format!("# TYPE {base} histogram"))
                        || name == "deliverability_probe_success",
                    "{}: {title}: {name} is not exported",
                    f.display()
                );
            }
        }
    }
    assert!(count > 50, "only {count} dashboard queries found");
    assert!(
        empty.is_empty(),
        "dashboard queries without a series:\n{}",
        empty.join("\n")
    );

    // Every rule evaluates without error.
    std::thread::sleep(Duration::from_secs(2));
    let r = prom(&st, "/api/v1/rules");
    let mut rules_seen = 0;
    for g in r["data"]["groups"].as_array().unwrap() {
        for rule in g["rules"].as_array().unwrap() {
            rules_seen += 1;
            assert_eq!(
                rule["health"], "ok",
                "rule {} in {}: {}",
                rule["name"], g["file"], rule["lastError"]
            );
        }
    }
    assert!(rules_seen >= 28, "only {rules_seen} rules loaded");

    // The runbook_url of every active alert, as Prometheus expands it, opens the exporter's
    // own /runbooks page at the alert's section.
    let alerts = prom(&st, "/api/v1/alerts");
    let mut opened = 0;
    for a in alerts["data"]["alerts"].as_array().unwrap() {
        let url = a["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let name = a["labels"]["alertname"].as_str().unwrap_or_default();
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?}"));
        let (addr, path) = rest.split_once('/').unwrap();
        let (path, anchor) = path.split_once('#').unwrap();
        assert_eq!(addr, e.addr, "{name}: the link names the exporter");
        assert_eq!(path, "runbooks", "{name}: {url}");
        assert_eq!(anchor, name.to_lowercase(), "{name}: {url}");
        let (code, page) = e.get("/runbooks");
        assert_eq!(code, 200);
        assert!(
            page.contains(&format!("id=\"{anchor}\"")),
            "{name}: no section #{anchor} on /runbooks"
        );
        opened += 1;
    }
    assert!(
        opened >= 3,
        "the demo's faults make alerts pending; {opened} checked: {alerts}"
    );
}
