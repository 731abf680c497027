//! What the landing page shows of the DNS, blacklist, report and mailbox-provider checks: each
//! domain's record checks with their last finding, the current listings and blacklist errors,
//! the most recent reports read, and what Gmail (Postmaster Tools) and Outlook.com (SNDS) say of
//! each domain and sending IP. The checks write here; the page reads. Everything shown that came from
//! outside (reporter names, report ids) is escaped by the page and bounded here.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::landing::{StatusSection, esc};

fn when(t: f64) -> String {
    crate::clock::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0)))
}

fn clip(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

/// When a domain was checked, and each check with its first finding (`None`: in order).
type DomainRows = (f64, Vec<(&'static str, Option<String>)>);
/// When the blacklists were checked, and (target, list, state) of every listing and error.
type DnsblRows = (f64, Vec<(String, String, String)>);

/// The last DNS record check of each domain, and the blacklist state of each target.
#[derive(Default)]
pub struct DomainBoard {
    domains: Mutex<BTreeMap<String, DomainRows>>,
    dnsbl: Mutex<DnsblRows>,
}

impl DomainBoard {
    /// Records one domain's checks: each check and its first finding, if any.
    pub fn domain(
        &self,
        domain: &str,
        at: f64,
        checks: &[&'static str],
        findings: &[(&'static str, String)],
    ) {
        let rows = checks
            .iter()
            .map(|c| {
                (
                    *c,
                    findings
                        .iter()
                        .find(|(fc, _)| fc == c)
                        .map(|(_, m)| clip(m, 300)),
                )
            })
            .collect();
        self.domains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(domain.to_string(), (at, rows));
    }

    /// Keeps only the configured domains (after a reload).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.domains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d, _| keep(d));
    }

    /// Records a blacklist round: (target, zone, state) for every listing and error.
    pub fn dnsbl(&self, at: f64, notable: Vec<(String, String, String)>) {
        *self.dnsbl.lock().unwrap_or_else(|e| e.into_inner()) = (at, notable);
    }
}

impl StatusSection for DomainBoard {
    fn html(&self) -> String {
        let domains = self
            .domains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (at, notable) = self.dnsbl.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut h = String::new();
        if !domains.is_empty() {
            h.push_str("<h2>Domains</h2>\n<table id=\"domains\"><tr><th>Domain</th><th>Checked</th><th>Check</th><th>Result</th></tr>\n");
            for (d, (t, rows)) in &domains {
                for (i, (c, problem)) in rows.iter().enumerate() {
                    let (class, text) = match problem {
                        None => ("ok", "ok".to_string()),
                        Some(p) => ("bad", esc(p)),
                    };
                    let head = if i == 0 {
                        format!(
                            "<td rowspan=\"{}\">{}</td><td rowspan=\"{}\">{}</td>",
                            rows.len(),
                            esc(d),
                            rows.len(),
                            when(*t)
                        )
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        h,
                        "<tr class=\"{class}\">{head}<td>{c}</td><td>{text}</td></tr>"
                    );
                }
            }
            h.push_str("</table>\n");
        }
        if at > 0.0 {
            let _ = writeln!(
                h,
                "<h2>Blacklists</h2>\n<p class=\"muted\">Last checked {}.</p>",
                when(at)
            );
            if notable.is_empty() {
                h.push_str("<p class=\"ok\">No target is listed and every list answered.</p>\n");
            } else {
                h.push_str(
                    "<table id=\"dnsbl\"><tr><th>Target</th><th>List</th><th>State</th></tr>\n",
                );
                for (target, zone, state) in &notable {
                    let class = if state == "listed" { "bad" } else { "warn" };
                    let _ = writeln!(
                        h,
                        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(target),
                        esc(zone),
                        esc(state)
                    );
                }
                h.push_str("</table>\n");
            }
        }
        h
    }
}

/// One report read.
#[derive(Debug, Clone)]
pub struct ReportLine {
    pub at: f64,
    pub kind: &'static str,
    pub reporter: String,
    pub domain: String,
    pub id: String,
    pub messages: u64,
}

/// The most recent reports read.
#[derive(Default)]
pub struct ReportBoard {
    recent: Mutex<VecDeque<ReportLine>>,
}

impl ReportBoard {
    pub const KEEP: usize = 20;

    pub fn push(&self, mut r: ReportLine) {
        r.reporter = clip(&r.reporter, 100);
        r.domain = clip(&r.domain, 100);
        r.id = clip(&r.id, 100);
        let mut q = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == Self::KEEP {
            q.pop_front();
        }
        q.push_back(r);
    }
}

impl StatusSection for ReportBoard {
    fn html(&self) -> String {
        let q = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if q.is_empty() {
            return String::new();
        }
        let mut h = String::from(
            "<h2>Recent reports</h2>\n<table id=\"reports\"><tr><th>Read</th><th>Kind</th><th>Reporter</th><th>Domain</th><th>Report id</th><th>Messages / sessions</th></tr>\n",
        );
        for r in q.iter().rev() {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(r.at),
                r.kind,
                esc(&r.reporter),
                esc(&r.domain),
                esc(&r.id),
                r.messages
            );
        }
        h.push_str("</table>\n");
        h
    }
}

/// One line of the mailbox providers' signals: when it was polled, the poll's state, whether
/// it needs attention, and what the provider says (numbers and closed names only).
#[derive(Debug, Clone)]
pub struct SignalLine {
    pub at: f64,
    pub state: &'static str,
    pub bad: bool,
    pub says: String,
}

/// The last poll of each Postmaster Tools domain and the notable SNDS IPs.
#[derive(Default)]
pub struct SignalBoard {
    /// ("Gmail" or "Outlook.com", domain or IP) → line.
    lines: Mutex<BTreeMap<(&'static str, String), SignalLine>>,
    /// Outlook.com IPs with nothing to say (green, no traps, not blocked), not listed one by one.
    quiet: Mutex<usize>,
}

impl SignalBoard {
    /// Lines kept for one source; past it the rest are counted as quiet.
    pub const KEEP: usize = 50;

    /// Replaces every line of `source` (`Gmail` or `Outlook.com`) with `lines`; `quiet` is how
    /// many subjects had nothing to say (shown as a count).
    pub fn set(&self, source: &'static str, lines: Vec<(String, SignalLine)>, quiet: usize) {
        let mut all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(s, _), _| *s != source);
        let extra = lines.len().saturating_sub(Self::KEEP);
        for (subject, mut line) in lines.into_iter().take(Self::KEEP) {
            line.says = clip(&line.says, 300);
            all.insert((source, clip(&subject, 255)), line);
        }
        if source == "Outlook.com" {
            *self.quiet.lock().unwrap_or_else(|e| e.into_inner()) = quiet + extra;
        }
    }

    /// Marks every line of `source` with a failed poll's state (the last data stays shown).
    pub fn failed(&self, source: &'static str, at: f64, state: &'static str) {
        let mut all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        for ((s, _), line) in all.iter_mut() {
            if *s == source {
                line.at = at;
                line.state = state;
                line.bad = true;
            }
        }
    }
}

impl StatusSection for SignalBoard {
    fn html(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let quiet = *self.quiet.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() && quiet == 0 {
            return String::new();
        }
        let mut h = String::from(
            "<h2>Mailbox providers</h2>\n<table id=\"signals\"><tr><th>Provider</th><th>Domain or IP</th><th>Polled</th><th>State</th><th>What it says</th></tr>\n",
        );
        for ((source, subject), l) in &lines {
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td>{source}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if l.bad { "bad" } else { "ok" },
                esc(subject),
                when(l.at),
                l.state,
                esc(&l.says)
            );
        }
        if quiet > 0 {
            let _ = writeln!(
                h,
                "<tr class=\"ok\"><td>Outlook.com</td><td colspan=\"4\">{quiet} more IPs: green, no trap hits, not blocked</td></tr>"
            );
        }
        h.push_str("</table>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_render_escaped_and_bounded() {
        let d = DomainBoard::default();
        d.domain(
            "example.com",
            1.0,
            &["spf", "dmarc"],
            &[("dmarc", "no <DMARC> record".into())],
        );
        let h = d.html();
        assert!(
            h.contains("<td>spf</td><td>ok</td>") && h.contains("no &lt;DMARC&gt; record"),
            "{h}"
        );
        d.dnsbl(
            2.0,
            vec![("192.0.2.1".into(), "zen".into(), "listed".into())],
        );
        assert!(
            d.html()
                .contains("<td>192.0.2.1</td><td>zen</td><td>listed</td>")
        );
        let r = ReportBoard::default();
        for i in 0..30 {
            r.push(ReportLine {
                at: 1.0,
                kind: "dmarc",
                reporter: format!("<b>evil{i}</b>"),
                domain: "d".into(),
                id: "x".repeat(500),
                messages: 1,
            });
        }
        let h = r.html();
        assert_eq!(h.matches("<tr><td>").count(), ReportBoard::KEEP);
        assert!(
            h.contains("&lt;b&gt;evil29") && !h.contains("<b>evil"),
            "{h}"
        );
        assert!(!h.contains(&"x".repeat(101)));
    }

    #[test]
    fn the_signal_board_keeps_the_last_data_and_bounds_the_lines() {
        let b = SignalBoard::default();
        assert_eq!(b.html(), "");
        let line = |bad: bool, says: &str| SignalLine {
            at: 1.0,
            state: "ok",
            bad,
            says: says.into(),
        };
        b.set(
            "Gmail",
            vec![("example.com".into(), line(true, "spam rate 0.42% <high>"))],
            0,
        );
        let ips: Vec<(String, SignalLine)> = (0..60)
            .map(|i| (format!("192.0.2.{i}"), line(true, "red")))
            .collect();
        b.set("Outlook.com", ips, 7);
        let h = b.html();
        assert!(h.contains("spam rate 0.42% &lt;high&gt;"), "{h}");
        assert_eq!(
            h.matches("<td>Outlook.com</td><td>192.0.2.").count(),
            SignalBoard::KEEP
        );
        assert!(h.contains("17 more IPs"), "{h}");
        b.failed("Gmail", 2.0, "denied");
        let h = b.html();
        assert!(
            h.contains("<td>example.com</td>") && h.contains("<td>denied</td><td>spam rate"),
            "the last data stays, with the state: {h}"
        );
    }
}
