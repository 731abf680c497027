//! DNSBL benchmark: 1,000 IPs × 10 zones against the local Unbound of a stack instance (run by
//! scripts/bench-dns, which starts the instance and passes its DNS port). Prints the time of a
//! cold round, of a second round served by the answer cache, of a round with a fresh cache
//! (Unbound warm), the query count and the process's peak memory. Queries go to 127.0.0.1
//! only; the IPs are from 198.18.0.0/15 (benchmarking range) and only appear in query names.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use deliverability_exporter::config::{CustomZone, DnsConfig, Dur, Name, ZoneKind};
use deliverability_exporter::dns::dnsbl::{self, Cache, Target, catalogue};
use deliverability_exporter::resolver::Resolver;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo test --all-targets` runs this too (without --bench): there is nothing to test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/dnsbl: a benchmark; run it with scripts/bench-dns");
        return;
    }
    let port: u16 = std::env::var("DX_DNS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("DX_DNS_PORT: run the benchmark through scripts/bench-dns");
    let concurrency: usize = std::env::var("DX_BENCH_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let cfg = DnsConfig {
            nameservers: vec![format!("127.0.0.1:{port}").parse().unwrap()],
            timeout: Dur(Duration::from_secs(2)),
            attempts: 2,
            interval: Dur(Duration::from_secs(900)),
        };
        let dns = Resolver::new(&cfg, concurrency).expect("resolver");
        let zones: Vec<_> = (0..10)
            .map(|i| {
                catalogue::custom(&CustomZone {
                    name: Name(format!("bench-{i}")),
                    zone: format!("bench-{i}.bl-bench.test"),
                    kind: ZoneKind::Ip,
                    codes: Default::default(),
                    test_entry: true,
                })
            })
            .collect();
        let targets: Vec<Target> = (1..=1000u32)
            .map(|i| {
                let a = 0xC612_0000u32 + i; // 198.18.0.0 + i
                Target::Ip(IpAddr::V4(Ipv4Addr::from(a)))
            })
            .collect();
        let rss0 = status_kib("VmRSS:");
        let cache = Cache::default();
        let mut results = Vec::new();
        for (label, fresh) in [("cold", false), ("cached", false), ("no answer cache, warm resolvers", true)] {
            let fresh_cache = Cache::default();
            let c = if fresh { &fresh_cache } else { &cache };
            let t = Instant::now();
            let round = dnsbl::run(&dns, c, &zones, &targets, concurrency).await;
            let took = t.elapsed();
            let listed = round.verdicts.iter().filter(|v| v.outcome.is_listed()).count();
            let errors = round.verdicts.iter().filter(|v| v.outcome.error_reason().is_some()).count();
            results.push((label, took, round.verdicts.len(), listed, errors, c.len()));
        }
        println!("DNSBL benchmark: {} IPs x {} zones, concurrency {concurrency}, Unbound on 127.0.0.1:{port}", targets.len(), zones.len());
        for (label, took, n, listed, errors, cached) in results {
            println!(
                "  {label:<27} {:>8.1} ms  {n} verdicts ({:.0}/s), {listed} listed, {errors} errors, {cached} cached answers",
                took.as_secs_f64() * 1000.0,
                n as f64 / took.as_secs_f64()
            );
        }
        println!(
            "  memory: RSS before {} KiB, after {} KiB, peak (VmHWM) {} KiB",
            rss0,
            status_kib("VmRSS:"),
            status_kib("VmHWM:")
        );
    });
}
