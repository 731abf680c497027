//! Report reader benchmark: a generated DMARC aggregate report of 100,000 records (about
//! 54 MB), read plain and gzip'd through the same path the `dir` source uses, each in a child
//! process so its peak RSS (VmHWM) is the reader's alone. Prints MB/s (of XML) and peak RSS.
//!
//! `cargo bench --bench reports` (release profile). Goals from the issue: at least 150 MB/s
//! and at most 48 MB peak RSS.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use deliverability_exporter::reports::{Limits, Report, names::SourceNames, read_path};

const RECORDS: u32 = 100_000;

fn write_report(w: &mut dyn Write) -> std::io::Result<()> {
    write!(
        w,
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>bench-{RECORDS}</report_id>
    <date_range>
      <begin>1718236800</begin>
      <end>1718323199</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>reject</p>
    <sp>reject</sp>
    <pct>100</pct>
    <np>reject</np>
  </policy_published>
"#
    )?;
    for i in 0..RECORDS {
        let (a, b) = ((i >> 8) & 0xff, i & 0xff);
        let (disp, dkim, spf) = match i % 4 {
            0 | 1 => ("none", "pass", "pass"),
            2 => ("quarantine", "fail", "pass"),
            _ => ("reject", "fail", "fail"),
        };
        write!(
            w,
            r#"  <record>
    <row>
      <source_ip>203.{a}.{b}.{c}</source_ip>
      <count>{count}</count>
      <policy_evaluated>
        <disposition>{disp}</disposition>
        <dkim>{dkim}</dkim>
        <spf>{spf}</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>mail.example.com</domain>
        <result>{dkim}</result>
      </dkim>
      <spf>
        <domain>example.com</domain>
        <result>{spf}</result>
      </spf>
    </auth_results>
  </record>
"#,
            c = i % 250 + 1,
            count = i % 17 + 1,
        )?;
    }
    w.write_all(b"</feedback>\n")
}

fn generate(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let xml = dir.join("bench-100k.xml");
    let gz = dir.join("bench-100k.xml.gz");
    if !xml.exists() {
        let mut w = BufWriter::new(File::create(&xml)?);
        write_report(&mut w)?;
        w.flush()?;
    }
    if !gz.exists() {
        let f = BufWriter::new(File::create(&gz)?);
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        write_report(&mut e)?;
        e.finish()?.flush()?;
    }
    Ok((xml, gz))
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: reads one file `runs` times and prints "seconds xml_bytes records messages rss_kib".
fn child(path: &Path, xml_bytes: u64, runs: u32) {
    let limits = Limits::default();
    let sources = SourceNames::default();
    let mut best = f64::MAX;
    let mut records = 0;
    let mut messages = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = read_path(path, "bench", &limits, &sources);
        best = best.min(t.elapsed().as_secs_f64());
        match out.reports.first().map(|f| &f.report) {
            Some(Report::Dmarc(r)) => {
                records = r.records;
                messages = r.messages;
            }
            _ => {
                eprintln!("no report: {:?}", out.errors);
                std::process::exit(1);
            }
        }
    }
    println!("{best} {xml_bytes} {records} {messages} {}", peak_rss_kib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let path = PathBuf::from(&args[i + 1]);
        let xml_bytes: u64 = args[i + 2].parse().unwrap_or(0);
        child(&path, xml_bytes, 5);
        return;
    }
    let dir = std::env::temp_dir().join("dx-bench-reports");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (xml, gz) = generate(&dir).expect("generate the report");
    let xml_bytes = std::fs::metadata(&xml).map(|m| m.len()).unwrap_or(0);
    let gz_bytes = std::fs::metadata(&gz).map(|m| m.len()).unwrap_or(0);
    println!(
        "aggregate report: {RECORDS} records, {:.1} MB XML, {:.1} MB gzip'd",
        xml_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6
    );
    let exe = std::env::current_exe().expect("own path");
    for (label, file) in [("plain", &xml), ("gzip", &gz)] {
        let out = Command::new(&exe)
            .arg("--child")
            .arg(file)
            .arg(xml_bytes.to_string())
            .output()
            .expect("run the child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if !out.status.success() || f.len() != 5 {
            eprintln!(
                "{label}: child failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::process::exit(1);
        }
        println!(
            "{label:>5}: {:.0} MB/s of XML ({:.3} s best of 5), {} records, {} messages, peak RSS {:.1} MB",
            f[1] / f[0] / 1e6,
            f[0],
            f[2],
            f[3],
            f[4] * 1024.0 / 1e6
        );
    }
}
