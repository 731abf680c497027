//! The routes board: the last result of every route (provider × seed) for the landing page,
//! the first thing an operator opens when paged, with a sparkline of its recent canaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::landing::{Spark, StatusSection, esc, sparkline};

/// How many of a route's most recent canaries its sparkline shows.
pub const HISTORY: usize = 24;

/// A route's last [`HISTORY`] canary outcomes in a fixed ring: a delivery's latency in seconds,
/// or a canary that never arrived (lost, bounced, or its send failed). 100 bytes inline in the
/// route's [`RouteStatus`], no allocation: 1 MB for 10,000 routes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Latency in seconds (>= 0), or [`LOST`] / [`FAILED`].
    ring: [f32; HISTORY],
    /// Index of the oldest entry.
    start: u8,
    len: u8,
}

const LOST: f32 = -1.0;
const FAILED: f32 = -2.0;

/// One entry of a [`History`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Delivered(f32),
    Lost,
    /// Bounced, or the send failed.
    Failed,
}

impl Default for History {
    fn default() -> Self {
        History {
            ring: [0.0; HISTORY],
            start: 0,
            len: 0,
        }
    }
}

impl History {
    fn push(&mut self, v: f32) {
        let len = usize::from(self.len);
        if len < HISTORY {
            self.ring[(usize::from(self.start) + len) % HISTORY] = v;
            self.len += 1;
        } else {
            self.ring[usize::from(self.start)] = v;
            self.start = ((usize::from(self.start) + 1) % HISTORY) as u8;
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Outcome> + '_ {
        (0..self.len()).map(|i| {
            let v = self.ring[(usize::from(self.start) + i) % HISTORY];
            if v == LOST {
                Outcome::Lost
            } else if v == FAILED {
                Outcome::Failed
            } else {
                Outcome::Delivered(v)
            }
        })
    }

    /// The sparkline of the landing page's routes table; empty without history.
    fn sparkline(&self) -> String {
        let (mut n, mut lo, mut hi, mut lost, mut failed) = (0, f32::INFINITY, 0f32, 0, 0);
        let points: Vec<Spark> = self
            .iter()
            .map(|o| match o {
                Outcome::Delivered(v) => {
                    (n, lo, hi) = (n + 1, lo.min(v), hi.max(v));
                    Spark::Value(f64::from(v))
                }
                Outcome::Lost => {
                    lost += 1;
                    Spark::Missing
                }
                Outcome::Failed => {
                    failed += 1;
                    Spark::Missing
                }
            })
            .collect();
        let mut title = format!("last {} canaries: {n} delivered", self.len());
        if n > 0 {
            let _ = write!(title, " in {lo:.2}–{hi:.2} s");
        }
        if lost > 0 {
            let _ = write!(title, ", {lost} lost");
        }
        if failed > 0 {
            let _ = write!(title, ", {failed} bounced or not sent");
        }
        sparkline(&points, HISTORY, &title)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteStatus {
    pub last_send: Option<f64>,
    /// `delivered`, `failed`, `bounced`, `lost`, or `sent` (awaiting delivery).
    pub state: &'static str,
    pub placement: Option<&'static str>,
    pub latency: Option<f64>,
    pub last_error: Option<String>,
    pub at: Option<f64>,
    /// The route's recent canaries, for the sparkline.
    pub history: History,
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
            r.history.push(FAILED);
        });
    }

    pub fn delivered(&self, p: &str, s: &str, at: f64, latency: f64, placement: &'static str) {
        self.with(p, s, |r| {
            r.state = "delivered";
            r.placement = Some(placement);
            r.latency = Some(latency);
            r.at = Some(at);
            r.history.push(latency.max(0.0) as f32);
        });
    }

    /// A bounce ended the route's canary; `why` is its status, reason and diagnostic.
    pub fn bounced(&self, p: &str, s: &str, at: f64, why: &str) {
        self.with(p, s, |r| {
            r.state = "bounced";
            r.last_error = Some(why.to_string());
            r.at = Some(at);
            r.history.push(FAILED);
        });
    }

    pub fn lost(&self, p: &str, s: &str, at: f64) {
        self.with(p, s, |r| {
            r.state = "lost";
            r.last_error = Some("not seen by the deadline".into());
            r.at = Some(at);
            r.history.push(LOST);
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
        let _ = writeln!(
            h,
            "<table id=\"routes\"><tr><th>Provider</th><th>Seed</th><th>Last result</th><th>Placement</th><th>Latency</th><th>Last {HISTORY} canaries<br><span class=\"muted\">delivery latency, newest right; red: lost, bounced or not sent</span></th><th>Last send</th><th>Last error</th></tr>"
        );
        for ((p, s), r) in routes {
            let class = match (r.state, r.placement) {
                ("delivered", Some("inbox")) => "ok",
                ("delivered", _) | ("sent", _) => "warn",
                ("", _) => "muted",
                _ => "bad",
            };
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"spark\">{}</td><td class=\"nw\">{}</td><td>{}</td></tr>",
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
                if r.history.is_empty() {
                    "–".to_string()
                } else {
                    r.history.sparkline()
                },
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

    #[test]
    fn the_history_keeps_the_last_canaries_in_a_fixed_ring() {
        assert_eq!(std::mem::size_of::<History>(), 100);
        let mut h = History::default();
        assert!(h.is_empty() && h.iter().next().is_none());
        for i in 0..30 {
            h.push(i as f32);
        }
        assert_eq!(h.len(), HISTORY);
        let got: Vec<Outcome> = h.iter().collect();
        assert_eq!(got[0], Outcome::Delivered(6.0));
        assert_eq!(got[HISTORY - 1], Outcome::Delivered(29.0));
        h.push(LOST);
        h.push(FAILED);
        let got: Vec<Outcome> = h.iter().collect();
        assert_eq!(got.len(), HISTORY);
        assert_eq!(got[0], Outcome::Delivered(8.0));
        assert_eq!(&got[HISTORY - 2..], &[Outcome::Lost, Outcome::Failed]);
    }

    #[test]
    fn every_ending_of_a_canary_goes_into_the_routes_sparkline() {
        let b = RouteBoard::default();
        b.init("p", "s");
        b.init("p", "quiet");
        b.delivered("p", "s", 1.0, 0.5, "inbox");
        b.delivered("p", "s", 2.0, 1.5, "spam");
        b.lost("p", "s", 3.0);
        b.bounced("p", "s", 4.0, "5.1.1");
        b.failed("p", "s", 5.0, "auth");
        b.delivered("p", "s", 6.0, -0.1, "inbox");
        let r = b.get("p", "s").unwrap();
        assert_eq!(
            r.history.iter().collect::<Vec<_>>(),
            [
                Outcome::Delivered(0.5),
                Outcome::Delivered(1.5),
                Outcome::Lost,
                Outcome::Failed,
                Outcome::Failed,
                Outcome::Delivered(0.0),
            ]
        );
        // Sending alone records nothing.
        b.sent("p", "s", 7.0);
        assert_eq!(b.get("p", "s").unwrap().history.len(), 6);
        let html = b.html();
        assert_eq!(html.matches("<svg class=\"spark\"").count(), 1, "{html}");
        assert!(
            html.contains("<title>last 6 canaries: 3 delivered in 0.00–1.50 s, 1 lost, 2 bounced or not sent</title>"),
            "{html}"
        );
        assert_eq!(html.matches("class=\"missing\"").count(), 3, "{html}");
        // The route with no canary yet has no sparkline.
        let quiet = html.lines().find(|l| l.contains("<td>quiet</td>")).unwrap();
        assert!(
            quiet.contains("<td class=\"spark\">–</td>") && !quiet.contains("<svg"),
            "{quiet}"
        );
    }
}
