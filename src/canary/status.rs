//! The routes board: the last result of every route (provider × seed) for the landing page,
//! the first thing an operator opens when paged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::landing::{StatusSection, esc};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteStatus {
    pub last_send: Option<f64>,
    /// `delivered`, `failed`, `bounced`, `lost`, or `sent` (awaiting delivery).
    pub state: &'static str,
    pub placement: Option<&'static str>,
    pub latency: Option<f64>,
    pub last_error: Option<String>,
    pub at: Option<f64>,
}

#[derive(Default)]
pub struct RouteBoard {
    routes: Mutex<BTreeMap<(String, String), RouteStatus>>,
}

impl RouteBoard {
    fn with(&self, p: &str, s: &str, f: impl FnOnce(&mut RouteStatus)) {
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        f(r.entry((p.to_string(), s.to_string())).or_default());
    }

    pub fn init(&self, p: &str, s: &str) {
        self.with(p, s, |_| {});
    }

    pub fn routes(&self) -> Vec<(String, String)> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn get(&self, p: &str, s: &str) -> Option<RouteStatus> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(p.to_string(), s.to_string()))
            .cloned()
    }

    pub fn sent(&self, p: &str, s: &str, at: f64) {
        self.with(p, s, |r| {
            r.last_send = Some(at);
            r.state = "sent";
        });
    }

    pub fn failed(&self, p: &str, s: &str, at: f64, error: &str) {
        self.with(p, s, |r| {
            r.last_send = Some(at);
            r.state = "failed";
            r.last_error = Some(error.to_string());
            r.at = Some(at);
        });
    }

    pub fn delivered(&self, p: &str, s: &str, at: f64, latency: f64, placement: &'static str) {
        self.with(p, s, |r| {
            r.state = "delivered";
            r.placement = Some(placement);
            r.latency = Some(latency);
            r.at = Some(at);
        });
    }

    /// A bounce ended the route's canary; `why` is its status, reason and diagnostic.
    pub fn bounced(&self, p: &str, s: &str, at: f64, why: &str) {
        self.with(p, s, |r| {
            r.state = "bounced";
            r.last_error = Some(why.to_string());
            r.at = Some(at);
        });
    }

    pub fn lost(&self, p: &str, s: &str, at: f64) {
        self.with(p, s, |r| {
            r.state = "lost";
            r.last_error = Some("not seen by the deadline".into());
            r.at = Some(at);
        });
    }
}

fn when(t: Option<f64>) -> String {
    t.map(|t| {
        crate::clock::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0)),
        )
    })
    .unwrap_or_else(|| "–".into())
}

impl StatusSection for RouteBoard {
    fn html(&self) -> String {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut h = String::from("<h2>Routes</h2>\n");
        if routes.is_empty() {
            h.push_str(
                "<p class=\"muted\">No routes: configure [[providers]] and [[seeds]].</p>\n",
            );
            return h;
        }
        h.push_str("<table id=\"routes\"><tr><th>Provider</th><th>Seed</th><th>Last result</th><th>Placement</th><th>Latency</th><th>Last send</th><th>Last error</th></tr>\n");
        for ((p, s), r) in routes {
            let class = match (r.state, r.placement) {
                ("delivered", Some("inbox")) => "ok",
                ("delivered", _) | ("sent", _) => "warn",
                ("", _) => "muted",
                _ => "bad",
            };
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p),
                esc(&s),
                if r.state.is_empty() {
                    "not yet sent"
                } else {
                    r.state
                },
                r.placement.unwrap_or("–"),
                r.latency
                    .map(|l| format!("{l:.3}s"))
                    .unwrap_or_else(|| "–".into()),
                when(r.last_send),
                esc(r.last_error.as_deref().unwrap_or(""))
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
    fn board_tracks_the_last_result_and_renders_escaped() {
        let b = RouteBoard::default();
        b.init("p<1>", "s");
        b.sent("p<1>", "s", 100.0);
        assert_eq!(b.get("p<1>", "s").unwrap().state, "sent");
        b.delivered("p<1>", "s", 101.0, 0.5, "spam");
        let r = b.get("p<1>", "s").unwrap();
        assert_eq!(
            (r.state, r.placement, r.latency),
            ("delivered", Some("spam"), Some(0.5))
        );
        b.failed(
            "p<1>",
            "s",
            200.0,
            "rcpt_to failed (permanent, 550 5.1.1): <x>",
        );
        let html = b.html();
        assert!(html.contains("p&lt;1&gt;"), "{html}");
        assert!(html.contains("&lt;x&gt;"), "{html}");
        assert!(html.contains("class=\"bad\""), "{html}");
    }
}
