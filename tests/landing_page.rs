//! The landing page in a real browser (Debian's headless Chromium, flags for a closed network):
//! it renders without scripts, and shows the routes matrix with each route's latency sparkline,
//! the domains' DNS and blacklist state, the recent reports and check runs of the exporter
//! running on the local stack.

mod common;

use std::collections::HashSet;
use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use common::{Scrape, repo};
use deliverability_exporter::landing::{
    SPARK_FILL, SPARK_HEIGHT, SPARK_LINE, SPARK_MISSING, SPARK_WIDTH,
};

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium (scripts/test installs Debian's chromium)")
}

const PROVIDERS: [&str; 5] = [
    "postfix-starttls",
    "postfix-implicit",
    "misconfigured",
    "spammy",
    "wrong-password",
];

#[test]
fn the_landing_page_renders_the_routes_domains_and_reports() {
    let (_st, dir, e) = common::demo_scenario("landing");
    // A line needs deliveries to join: wait for a route's third (one canary per 10 s).
    let route = [("provider", "postfix-starttls"), ("seed", "seed1")];
    e.wait_for("a route's third delivery", Duration::from_secs(90), |s| {
        s.sum("deliverability_canary_delivered_total", &route) >= 3.0
    });
    let url = format!("http://{}/", e.addr);
    let profile = dir.path().join("chromium-profile");
    let before = e.scrape();
    let out = chromium(&["--dump-dom", &url], &profile);
    let after = e.scrape();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The routes matrix: every provider × seed with its last result.
    assert!(dom.contains("<table id=\"routes\">"), "{dom}");
    for p in PROVIDERS {
        assert!(dom.contains(&format!("<td>{p}</td>")), "{p} missing: {dom}");
    }
    assert!(dom.contains("<td>delivered</td><td>inbox</td>"), "{dom}");
    assert!(dom.contains("<td>delivered</td><td>spam</td>"), "{dom}");
    assert!(dom.contains("auth failed (permanent, 535 5.7.8)"), "{dom}");
    let sparks = check_sparklines(&dom, &before, &after);
    // The domains' DNS checks, the blacklist state, the reports read, the check runs.
    assert!(
        dom.contains("<table id=\"domains\">") && dom.contains("<td>dx.test</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<table id=\"dnsbl\">")
            && dom.contains("<td>192.0.2.10</td><td>dnsbl-test</td><td>listed</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<table id=\"reports\">") && dom.contains("<td>receiver.example</td>"),
        "{dom}"
    );
    // The TLS-RPT report POSTed over HTTPS is among the recent reports.
    assert!(dom.contains("<td>posting.example</td>"), "{dom}");
    // What Gmail and Outlook.com say (the stack's replay of Postmaster Tools and SNDS).
    assert!(dom.contains("<table id=\"signals\">"), "{dom}");
    assert!(
        dom.contains("<td>Gmail</td><td>dx.test</td>")
            && dom.contains("spam rate 0.21%")
            && dom.contains("needs work: dmarc_alignment"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>Outlook.com</td><td>198.51.100.7</td>")
            && dom.contains("red, complaints up to 1.2%, 57 trap hits"),
        "{dom}"
    );
    assert!(dom.contains("Recent check runs"), "{dom}");
    // And it draws: a screenshot of the page (kept in target/ for a look), in which every
    // sparkline's box is found and holds its line or its red marks.
    let shot = repo().join("target/landing-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &[
            "--window-size=1400,2400",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
        &profile,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot of {} bytes",
        png.len()
    );
    check_screenshot(&decode_png(&png), &sparks);
}

/// What a route's sparkline holds, in the routes table's order.
#[derive(Debug)]
struct Spark {
    route: (String, String),
    /// Points of each polyline.
    lines: Vec<usize>,
    missing: usize,
}

/// Every route that has ended a canary has a sparkline: one line through all its deliveries
/// when it only delivered, red marks only when it never did; a route without any has none.
fn check_sparklines(dom: &str, before: &Scrape, after: &Scrape) -> Vec<Spark> {
    let table = &dom[dom.find("<table id=\"routes\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let count = |s: &Scrape, name: &str, p: &str, seed: &str| {
        s.sum(name, &[("provider", p), ("seed", seed)]) as usize
    };
    let mut sparks = Vec::new();
    for row in table.split("<tr").skip(2) {
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()])
            .collect();
        let (p, seed, spark) = (cells[0], cells[1], cells[5]);
        let delivered = [before, after]
            .map(|s| count(s, "deliverability_canary_delivered_total", p, seed).min(24));
        let not_delivered = |s: &Scrape| {
            [
                "deliverability_canary_lost_total",
                "deliverability_canary_bounced_total",
                "deliverability_canary_send_failures_total",
            ]
            .iter()
            .map(|n| count(s, n, p, seed))
            .sum::<usize>()
        };
        let ended_otherwise = not_delivered(after);
        if delivered[1] + ended_otherwise == 0 {
            assert_eq!(spark, "–", "{p}/{seed} has no canary yet: {row}");
            continue;
        }
        if delivered[0] + not_delivered(before) == 0 && spark == "–" {
            continue; // its first canary ended while the page was read
        }
        assert!(
            spark.starts_with(&format!(
                "<svg class=\"spark\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\""
            )),
            "{p}/{seed}: {row}"
        );
        let lines: Vec<usize> = spark
            .split("<polyline points=\"")
            .skip(1)
            .map(|l| l[..l.find('"').unwrap()].split(' ').count())
            .collect();
        let missing = spark.matches("class=\"missing\"").count();
        if ended_otherwise == 0 {
            // Only deliveries: one line through them all (a dot for a single one).
            let n = lines
                .iter()
                .sum::<usize>()
                .max(spark.contains("<circle") as usize);
            assert!(
                lines.len() <= 1 && missing == 0 && (delivered[0]..=delivered[1]).contains(&n),
                "{p}/{seed}: {n} points, {delivered:?} deliveries: {spark}"
            );
        }
        if p == "wrong-password" || seed == "refuses" {
            assert!(lines.is_empty() && missing >= 1, "{p}/{seed}: {spark}");
        }
        sparks.push(Spark {
            route: (p.to_string(), seed.to_string()),
            lines,
            missing,
        });
    }
    let main = sparks
        .iter()
        .find(|s| s.route == ("postfix-starttls".into(), "seed1".into()))
        .unwrap();
    assert!(main.lines.first().is_some_and(|&n| n >= 3), "{main:?}");
    assert!(sparks.len() >= 10, "{sparks:?}");
    sparks
}

/// Finds the sparklines' boxes (their fill colour) in the screenshot, one per sparkline in the
/// table's order, and checks each holds drawn pixels: the line's blue for a route that has
/// delivered, red for one with missing canaries.
fn check_screenshot(img: &Image, sparks: &[Spark]) {
    let fill = rgb(SPARK_FILL);
    // Rows of the box free of any mark (its top and bottom) are long runs of the fill.
    let mut boxes: Vec<[usize; 4]> = Vec::new(); // x0, y0, x1, y1
    for y in 0..img.h {
        let mut x = 0;
        while x < img.w {
            if img.px(x, y) != fill {
                x += 1;
                continue;
            }
            let start = x;
            while x < img.w && img.px(x, y) == fill {
                x += 1;
            }
            if x - start < SPARK_WIDTH as usize - 6 {
                continue;
            }
            match boxes
                .iter_mut()
                .find(|b| b[0].abs_diff(start) <= 2 && y - b[1] <= SPARK_HEIGHT as usize)
            {
                Some(b) => {
                    b[0] = b[0].min(start);
                    b[2] = b[2].max(x);
                    b[3] = y + 1;
                }
                None => boxes.push([start, y, x, y + 1]),
            }
        }
    }
    boxes.sort_by_key(|b| (b[1], b[0]));
    assert_eq!(
        boxes.len(),
        sparks.len(),
        "sparkline boxes found: {boxes:?}, sparklines: {sparks:?}"
    );
    // Drawn pixels, anti-aliased into the fill: the line's blue, the marks' red.
    let [lr, _, lb] = rgb(SPARK_LINE).map(i32::from);
    let [mr, _, mb] = rgb(SPARK_MISSING).map(i32::from);
    assert!(lb - lr > 100 && mr - mb > 100);
    let bluish = |p: [u8; 3]| i32::from(p[2]) - i32::from(p[0]) > 50;
    let reddish = |p: [u8; 3]| i32::from(p[0]) - i32::from(p[2]) > 50;
    for (b, s) in boxes.iter().zip(sparks) {
        let (w, h) = (b[2] - b[0], b[3] - b[1]);
        assert!(
            w.abs_diff(SPARK_WIDTH as usize) <= 2 && h.abs_diff(SPARK_HEIGHT as usize) <= 2,
            "box {b:?} of {s:?}"
        );
        // The newest point's dot is in the last 7 columns; the line runs left of it.
        let dot = b[2] - 7;
        let (mut fill_n, mut line_cols, mut red_n) = (0, HashSet::new(), 0);
        for y in b[1]..b[3] {
            for x in b[0]..b[2] {
                let p = img.px(x, y);
                fill_n += usize::from(p == fill);
                if bluish(p) && x < dot {
                    line_cols.insert(x);
                }
                red_n += usize::from(reddish(p));
            }
        }
        assert!(fill_n > w * h / 2, "{s:?}: {fill_n} px of fill");
        // A line of n points crosses 5 (n - 1) columns, 5 of them under the dot.
        let want = s
            .lines
            .iter()
            .map(|n| 5 * (n - 1))
            .sum::<usize>()
            .saturating_sub(5);
        assert!(
            line_cols.len() >= want,
            "{s:?}: the line shows in {} columns, not {want}",
            line_cols.len()
        );
        // A red bar is 3 by 20 pixels.
        assert!(
            red_n >= 30 * s.missing,
            "{s:?}: {red_n} red pixels for {} marks",
            s.missing
        );
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

struct Image {
    w: usize,
    h: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.w + x]
    }
}

/// A PNG as Chromium writes it (8-bit RGB or RGBA, not interlaced), decoded with flate2.
fn decode_png(png: &[u8]) -> Image {
    let be = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
    let (mut w, mut h, mut channels, mut idat) = (0, 0, 0, Vec::new());
    let mut at = 8;
    while at + 8 <= png.len() {
        let (len, kind) = (be(&png[at..]), &png[at + 4..at + 8]);
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                (w, h) = (be(data), be(&data[4..]));
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * channels;
    assert_eq!(raw.len(), h * (stride + 1));
    let mut prev = vec![0u8; stride];
    let mut rgb = Vec::with_capacity(w * h);
    for row in raw.chunks(stride + 1) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let (b, c) = (prev[i], if i >= channels { prev[i - channels] } else { 0 });
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            cur[i] = line[i].wrapping_add(pred);
        }
        rgb.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    Image { w, h, rgb }
}
