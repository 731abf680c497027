//! Scrape benchmark: the cost of `/metrics` for P providers × S seeds in steady state (every
//! route has delivered a canary), without a stack: the metric families are filled the way the
//! canary check fills them. Prints the series, the body size (plain and gzip), and per-series
//! times of the exporter's encoder against the floor (the same families written by the
//! plainest loop over the same gathered data, so what is left is the encoder's own cost).
//!
//! `cargo bench --bench scrape` (or scripts/bench-scrape); `DX_ROUTES=PxS` picks the size
//! (default 100x100 = 10,000 routes).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use deliverability_exporter::canary::send::{FailureClass, Stage};
use deliverability_exporter::metrics::Metrics;

fn fill(m: &Metrics, providers: usize, seeds: usize) {
    let c = &m.canary;
    let seed_names: Vec<String> = (0..seeds).map(|s| format!("seed-{s:03}")).collect();
    for s in &seed_names {
        c.init_seed(s);
        for folder in ["inbox", "spam"] {
            c.init_seed_folder(s, folder);
            c.imap_up.with_label_values(&[s, folder]).set(1);
        }
        c.verify_interval.with_label_values(&[s]).set(2.0);
    }
    for p in 0..providers {
        let p = format!("provider-{p:03}");
        c.init_provider(&p, &Stage::NAMES, &FailureClass::NAMES);
        for stage in [
            "connect",
            "ehlo",
            "starttls",
            "auth",
            "mail_from",
            "rcpt_to",
            "data",
        ] {
            c.stage_duration
                .with_label_values(&[&p, stage])
                .observe(0.003);
        }
        c.auth_mechanism.with_label_values(&[&p, "plain"]).set(1);
        c.tls_version.with_label_values(&[&p, "TLSv1.3"]).set(1);
        c.cert_expiry.with_label_values(&[&p]).set(1.9e9);
        for s in &seed_names {
            c.init_route(&p, s, false);
            let l = [p.as_str(), s.as_str()];
            c.sent.with_label_values(&l).inc();
            c.send_success.with_label_values(&l).set(1);
            c.success.with_label_values(&l).set(1);
            c.last_send.with_label_values(&l).set(1.8e9);
            c.last_success.with_label_values(&l).set(1.8e9 + 0.5);
            c.last_delivery_duration.with_label_values(&l).set(0.505);
            c.delivered.with_label_values(&[&p, s, "inbox"]).inc();
            for method in ["spf", "dkim", "dmarc"] {
                c.auth_results
                    .with_label_values(&[&p, s, method, "pass"])
                    .inc();
            }
            c.spam_score.with_label_values(&[&p, s, "rspamd"]).set(-0.1);
            c.provider_delivery_duration
                .with_label_values(&[&p])
                .observe(0.505);
            c.seed_delivery_duration
                .with_label_values(&[s])
                .observe(0.505);
        }
    }
}

/// The floor: the same lines written from a list of (label set as bytes, value), one number
/// formatted per series and nothing looked up: what any encoder must at least do.
fn floor(lines: &[(&[u8], f64)], out: &mut Vec<u8>) {
    let mut v = String::new();
    for (head, value) in lines {
        out.extend_from_slice(head);
        v.clear();
        let _ = write!(v, "{value}");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/scrape: a benchmark; run it with cargo bench --bench scrape");
        return;
    }
    let (providers, seeds) = std::env::var("DX_ROUTES")
        .ok()
        .and_then(|v| {
            let (p, s) = v.split_once('x')?;
            Some((p.parse().ok()?, s.parse().ok()?))
        })
        .unwrap_or((100, 100));
    let m = Metrics::bare();
    fill(&m, providers, seeds);
    let body = m.encode();
    let series = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    println!(
        "routes {} ({providers} x {seeds}), series {series}, body {:.2} MB plain, {:.2} MB gzip",
        providers * seeds,
        body.len() as f64 / 1e6,
        gz.len() as f64 / 1e6
    );
    let rounds = 20;
    let per_series = |f: &mut dyn FnMut()| {
        let mut t = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            f();
            t.push(start.elapsed().as_secs_f64() * 1e6 / series as f64);
        }
        (percentile(&mut t.clone(), 0.5), percentile(&mut t, 0.99))
    };
    let (p50, p99) = per_series(&mut || {
        std::hint::black_box(m.encode());
    });
    println!("encode (exporter):        p50 {p50:.3} µs/series, p99 {p99:.3}");
    let text = String::from_utf8(body.clone()).unwrap();
    let lines: Vec<(&[u8], f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (head, v) = l.rsplit_once(' ').unwrap();
            (&l.as_bytes()[..head.len() + 1], v.parse().unwrap_or(0.0))
        })
        .collect();
    let (p50, p99) = per_series(&mut || {
        let mut out = Vec::with_capacity(body.len());
        floor(&lines, &mut out);
        std::hint::black_box(out);
    });
    println!("floor (same lines):       p50 {p50:.3} µs/series, p99 {p99:.3}");
    let (p50, p99) = per_series(&mut || {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(&m.encode()).unwrap();
        std::hint::black_box(g.finish().unwrap());
    });
    println!("encode + gzip:            p50 {p50:.3} µs/series, p99 {p99:.3}");
}
