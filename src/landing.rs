//! The landing page on `/`: links to the endpoints, the configured routes, domains and report
//! sources, and the most recent check runs. Plain HTML, no scripts: it is what an operator
//! opens first when paged, so it must render anywhere.

use std::fmt::Write as _;

use std::sync::Arc;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::schedule::{RunRecord, RunResult};

/// A section of the landing page, rendered as an HTML fragment: the view a check keeps of its
/// own results (routes, domains, reports). Text from outside must go through [`esc`].
pub trait StatusSection: Send + Sync {
    fn html(&self) -> String;
}

/// What the page shows: the running configuration, the checks' sections, the recent runs.
pub struct Page<'a> {
    pub config: &'a Config,
    pub telemetry_path: &'a str,
    pub enable_lifecycle: bool,
    pub sections: &'a [Arc<dyn StatusSection>],
    /// Oldest first.
    pub runs: &'a [RunRecord],
}

/// One point of a [`sparkline`]: a value, or a missing one (drawn as a red mark).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spark {
    Value(f64),
    Missing,
}

/// A sparkline's size in CSS pixels, fixed so that a table of them stays compact.
pub const SPARK_WIDTH: u32 = 120;
pub const SPARK_HEIGHT: u32 = 24;
/// The box's fill, the line's colour and the missing marks' colour (tests/landing_page.rs finds
/// the boxes in a screenshot by the fill).
pub const SPARK_FILL: &str = "#f4f7fb";
pub const SPARK_LINE: &str = "#1f5fbf";
pub const SPARK_MISSING: &str = "#d42a2a";
const SPARK_BASE: &str = "#d5dce6";

/// How the page draws sparklines: set once in its style sheet rather than on every shape
/// (about 1 kB of HTML less per route with a full history).
fn spark_css() -> String {
    format!(
        "svg.spark{{display:block}} .spark .bg{{fill:{SPARK_FILL}}} .spark .base{{fill:{SPARK_BASE}}} \
         .spark polyline{{fill:none;stroke:{SPARK_LINE};stroke-width:1.5;stroke-linejoin:round}} \
         .spark circle{{fill:{SPARK_LINE}}} .spark .missing{{fill:{SPARK_MISSING}}}"
    )
}

/// A small inline SVG (no script; drawn by the page's style sheet) of `points`, oldest first, in `slots` fixed positions with the
/// newest at the right edge, so lines of different lengths line up in a column. Values (>= 0,
/// such as latencies) are scaled from zero (the baseline) to their maximum (the top), so noise
/// stays flat and a spike stands out; consecutive values are joined, a lone one is a dot, the
/// newest one has a larger dot; a missing point is a red bar across the box and breaks the
/// line. `title` (escaped here) is the tooltip. No points: no SVG (an empty string).
pub fn sparkline(points: &[Spark], slots: usize, title: &str) -> String {
    let slots = slots.max(2);
    let points = &points[points.len().saturating_sub(slots)..];
    if points.is_empty() {
        return String::new();
    }
    let (w, h) = (f64::from(SPARK_WIDTH), f64::from(SPARK_HEIGHT));
    // Whole-pixel steps where they fit, so the red bars fall on pixel edges.
    let step = ((w - 2.0) / (slots - 1) as f64).floor().max(0.5);
    let pad_x = (w - step * (slots - 1) as f64) / 2.0;
    let pad_y = 4.0;
    let first = slots - points.len();
    let x = |i: usize| pad_x + (first + i) as f64 * step;
    let value = |p: &Spark| match p {
        Spark::Value(v) if v.is_finite() => Some(*v),
        _ => None,
    };
    let hi = points.iter().filter_map(value).fold(0.0, f64::max);
    let base = h - pad_y;
    let y = |v: f64| {
        if hi > 0.0 {
            base - (h - 2.0 * pad_y) * v.clamp(0.0, hi) / hi
        } else {
            base
        }
    };
    let mut s = format!(
        "<svg class=\"spark\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\" role=\"img\"><title>{}</title><rect class=\"bg\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\"/><rect class=\"base\" y=\"{base}\" width=\"{SPARK_WIDTH}\" height=\"1\"/>",
        esc(title)
    );
    // Each run of consecutive values is a polyline (a lone value a dot); a missing point is a
    // red bar, and ends the run.
    let last = points.len() - 1;
    let mut i = 0;
    while i <= last {
        let Some(v) = value(&points[i]) else {
            let _ = write!(
                s,
                "<rect class=\"missing\" x=\"{:.1}\" y=\"2\" width=\"3\" height=\"{}\"/>",
                x(i) - 1.5,
                SPARK_HEIGHT - 4
            );
            i += 1;
            continue;
        };
        let mut run = vec![(x(i), y(v))];
        while let Some(v) = points.get(i + run.len()).and_then(value) {
            run.push((x(i + run.len()), y(v)));
        }
        if let [(cx, cy)] = run[..] {
            if i == last {
                break; // drawn below, larger
            }
            let _ = write!(s, "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"1.5\"/>");
        } else {
            let pts: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(s, "<polyline points=\"{}\"/>", pts.join(" "));
        }
        i += run.len();
    }
    // The newest delivery stands out.
    if let Some(v) = value(&points[last]) {
        let _ = write!(
            s,
            "<circle class=\"last\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
            x(last),
            y(v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub fn render(page: &Page) -> String {
    let cfg = page.config;
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Deliverability Exporter</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}} table{{border-collapse:collapse;margin:.5em 0 1.5em}}
th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}} th{{background:#f3f3f3}}
.ok{{background:#e3f6e3}} .bad{{background:#fbe1e1}} .warn{{background:#fff4d6}} .muted{{color:#777}} code{{font-size:.95em}}
td.spark{{padding:.15em .4em;vertical-align:middle}} {spark} th .muted{{font-weight:normal;font-size:.8em}} .nw,#routes td:nth-child(-n+2){{white-space:nowrap}}
</style></head><body>
<h1>Deliverability Exporter</h1>
<p class="muted">Instance <b>{instance}</b>{shard} · version {version} · configuration <code>{path}</code></p>
<ul>
<li><a href="{metrics}">Metrics</a> ({metrics})</li>
<li><a href="/runbooks">Runbooks</a>: what each alert means and what to do</li>
<li><a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></li>
<li>Probe one target: <a href="/probe?module=dns&amp;target=example.com">/probe?module=dns&amp;target=DOMAIN</a>, <a href="/probe?module=dnsbl&amp;target=192.0.2.1">/probe?module=dnsbl&amp;target=IP-or-DOMAIN</a></li>
<li>Reload: <code>POST /-/reload</code> ({lifecycle}) or <code>SIGHUP</code></li>
</ul>
"#,
        spark = spark_css(),
        instance = esc(&cfg.instance()),
        shard = shard_note(cfg),
        version = crate::metrics::VERSION,
        path = esc(&cfg.path.display().to_string()),
        metrics = esc(page.telemetry_path),
        lifecycle = if page.enable_lifecycle {
            "enabled"
        } else {
            "disabled; start with --web.enable-lifecycle"
        },
    );

    if page.sections.is_empty() {
        routes_table(&mut h, cfg);
    }
    for s in page.sections {
        h.push_str(&s.html());
    }

    h.push_str("<h2>Recent check runs</h2>\n");
    let runs = page.runs;
    if runs.is_empty() {
        h.push_str("<p class=\"muted\">No check has run yet.</p>\n");
    } else {
        h.push_str("<table><tr><th>Finished</th><th>Check</th><th>Result</th><th>Duration</th><th>Message</th></tr>\n");
        for r in runs.iter().rev() {
            let class = if r.result == RunResult::Success {
                "ok"
            } else {
                "bad"
            };
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{:.3}s</td><td>{}</td></tr>",
                rfc3339(r.finished),
                r.check,
                r.result.as_str(),
                r.duration.as_secs_f64(),
                esc(&r.message)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// " · shard I of N (…)" when the configuration is one of several shards, else nothing.
fn shard_note(cfg: &Config) -> String {
    let shard = cfg.shard;
    if shard.count() <= 1 {
        return String::new();
    }
    let n = cfg.seeds.len();
    format!(
        " · <b>{shard}</b> ({n} seed{}: {})",
        if n == 1 { "" } else { "s" },
        if shard.runs_shared_checks() {
            "canaries, DNS, DNSBL and reports"
        } else {
            "canaries only; DNS, DNSBL and reports run on shard 0"
        }
    )
}

/// The configured routes (provider × seed), shown until the canary check provides its own,
/// richer view.
fn routes_table(h: &mut String, cfg: &crate::config::Config) {
    h.push_str("<h2>Routes</h2>\n");
    if cfg.providers.is_empty() || cfg.seeds.is_empty() {
        h.push_str("<p class=\"muted\">No routes: configure [[providers]] and [[seeds]].</p>\n");
        return;
    }
    h.push_str("<table><tr><th>Provider \\ Seed</th>");
    for s in &cfg.seeds {
        let _ = write!(
            h,
            "<th>{}<br><span class=\"muted\">{}</span></th>",
            esc(&s.name),
            esc(&s.address)
        );
    }
    h.push_str("</tr>\n");
    for p in &cfg.providers {
        let _ = write!(
            h,
            "<tr><th>{}<br><span class=\"muted\">{}:{} ({})</span></th>",
            esc(&p.name),
            esc(&p.host),
            p.port,
            p.tls.as_str()
        );
        for _ in &cfg.seeds {
            h.push_str("<td class=\"muted\">configured</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::{
        SPARK_FILL, SPARK_HEIGHT, SPARK_LINE, SPARK_MISSING, SPARK_WIDTH, Spark, esc, shard_note,
        spark_css, sparkline,
    };
    use crate::config::{Config, Shard};

    type Points = Vec<(f64, f64)>;

    /// The (x, y) pairs of every polyline, and the circles' centres, of a sparkline.
    fn shapes(svg: &str) -> (Vec<Points>, Points) {
        let attr = |el: &str, name: &str| -> f64 {
            let at = el.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            el[at..el[at..].find('"').unwrap() + at].parse().unwrap()
        };
        let lines = svg
            .split("<polyline points=\"")
            .skip(1)
            .map(|p| {
                p[..p.find('"').unwrap()]
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        let dots = svg
            .split("<circle")
            .skip(1)
            .map(|c| (attr(c, "cx"), attr(c, "cy")))
            .collect();
        (lines, dots)
    }

    #[test]
    fn a_sparkline_scales_its_points_from_zero_into_the_box_newest_at_the_right() {
        let pts = [1.0, 3.0, 2.0, 5.0].map(Spark::Value);
        let svg = sparkline(&pts, 24, "t");
        assert!(
            svg.starts_with("<svg class=\"spark\" width=\"120\" height=\"24\"")
                && svg.ends_with("</svg>"),
            "{svg}"
        );
        let (lines, dots) = shapes(&svg);
        assert_eq!(lines.len(), 1, "{svg}");
        let l = &lines[0];
        assert_eq!(l.len(), 4);
        for &(x, y) in l {
            assert!((0.0..=f64::from(SPARK_WIDTH)).contains(&x), "{svg}");
            assert!((0.0..=f64::from(SPARK_HEIGHT)).contains(&y), "{svg}");
        }
        // Equal steps, the newest in the last of 24 slots, near the right edge.
        assert!(
            l.windows(2).all(|w| (w[1].0 - w[0].0 - 5.0).abs() < 1e-9),
            "{l:?}"
        );
        assert!((l[3].0 - 117.5).abs() < 1e-9, "{l:?}");
        // The maximum at the top of the drawing area (y 4), zero at its bottom (y 20).
        assert_eq!(l[3].1, 4.0, "{l:?}");
        assert!((l[0].1 - (20.0 - 16.0 / 5.0)).abs() < 0.05, "{l:?}");
        assert!(l[1].1 < l[2].1 && l[2].1 < l[0].1, "{l:?}");
        // The newest value is marked with a dot.
        assert_eq!(dots, vec![l[3]]);
    }

    #[test]
    fn a_single_point_is_a_dot_and_equal_values_a_level_line_at_the_top() {
        let svg = sparkline(&[Spark::Value(0.7)], 24, "one");
        let (lines, dots) = shapes(&svg);
        assert!(lines.is_empty(), "{svg}");
        assert_eq!(dots, vec![(117.5, 4.0)], "{svg}");

        let svg = sparkline(&[Spark::Value(2.5); 5], 24, "flat");
        let (lines, _) = shapes(&svg);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].iter().all(|&(_, y)| y == 4.0), "{svg}");
        // All zero (or below): on the baseline, no division by zero.
        let svg = sparkline(&[Spark::Value(0.0), Spark::Value(-1.0)], 24, "zero");
        let (lines, _) = shapes(&svg);
        assert!(lines[0].iter().all(|&(_, y)| y == 20.0), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn a_missing_point_is_a_red_bar_that_breaks_the_line() {
        let pts = [
            Spark::Value(1.0),
            Spark::Value(2.0),
            Spark::Missing,
            Spark::Value(1.5),
            Spark::Value(1.0),
            Spark::Missing,
        ];
        let svg = sparkline(&pts, 24, "gap");
        let (lines, dots) = shapes(&svg);
        assert_eq!(lines.len(), 2, "{svg}");
        assert_eq!((lines[0].len(), lines[1].len()), (2, 2));
        assert!(lines[0][1].0 < lines[1][0].0);
        assert_eq!(svg.matches("class=\"missing\"").count(), 2, "{svg}");
        // The newest canary was lost: no dot for it.
        assert!(dots.is_empty(), "{svg}");
        // Only missing points: bars, no line, no NaN.
        let svg = sparkline(&[Spark::Missing, Spark::Missing], 24, "lost");
        assert_eq!(svg.matches("class=\"missing\"").count(), 2, "{svg}");
        assert!(!svg.contains("polyline") && !svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn the_page_style_sheet_draws_the_sparklines_classes() {
        let css = spark_css();
        for rule in [
            format!(".spark .bg{{fill:{SPARK_FILL}}}"),
            format!(".spark circle{{fill:{SPARK_LINE}}}"),
            format!(".spark .missing{{fill:{SPARK_MISSING}}}"),
            format!("polyline{{fill:none;stroke:{SPARK_LINE};"),
        ] {
            assert!(css.contains(&rule), "{rule} in {css}");
        }
    }

    #[test]
    fn no_points_no_svg_and_only_the_last_slots_are_drawn() {
        assert_eq!(sparkline(&[], 24, "x"), "");
        let pts: Vec<Spark> = (0..30).map(|i| Spark::Value(f64::from(i))).collect();
        let (lines, _) = shapes(&sparkline(&pts, 24, "x"));
        assert_eq!(lines[0].len(), 24);
        assert!((lines[0][0].0 - 2.5).abs() < 1e-9, "{:?}", lines[0]);
        let svg = sparkline(&[Spark::Value(1.0)], 24, "<b>&\"x\"");
        assert!(
            svg.contains("<title>&lt;b&gt;&amp;&quot;x&quot;</title>"),
            "{svg}"
        );
    }

    #[test]
    fn the_shard_is_shown_only_when_there_are_several() {
        let cfg = Config::from_str(
            std::path::Path::new("/etc/dx.toml"),
            "[[seeds]]\nname = \"seed1\"\naddress = \"s@example.org\"\nhost = \"h\"\npassword = \"pw\"\n",
        )
        .unwrap();
        assert_eq!(shard_note(&cfg), "");
        let one = Shard::new(1, 2).unwrap().apply(cfg.clone());
        assert_eq!(
            shard_note(&one),
            " · <b>shard 1 of 2</b> (1 seed: canaries only; DNS, DNSBL and reports run on shard 0)"
        );
        let zero = Shard::new(0, 2).unwrap().apply(cfg);
        assert_eq!(
            shard_note(&zero),
            " · <b>shard 0 of 2</b> (0 seeds: canaries, DNS, DNSBL and reports)"
        );
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
