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
    use super::{esc, shard_note};
    use crate::config::{Config, Shard};

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
