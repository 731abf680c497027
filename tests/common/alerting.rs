//! The alerting end of the stack: what a test needs to follow an alert from Prometheus through
//! the stack's Alertmanager to a notification.
//!
//! - [`Webhook`]: Alertmanager's receiver, a tiny HTTP/1.1 server on 127.0.0.1 that records
//!   every POST body (parsed JSON) with the time it arrived, and waits (bounded) for a
//!   notification about a given alert.
//! - [`MetricsTarget`]: a scrape target whose samples the test sets (a condition it controls),
//!   and [`prometheus_scrape`] to point the stack's Prometheus at it (or at an exporter).
//! - [`am_alerts`] / [`wait_am_alert`]: Alertmanager's `/api/v2/alerts` (state, inhibitedBy).
//!
//! The stack's Alertmanager posts to `DX_AM_WEBHOOK_URL`: start the webhook first and give its
//! port to `Stack::start` as `DX_AM_WEBHOOK_PORT`, or write an Alertmanager config naming
//! [`Webhook::url`] and give it as `DX_AM_CONFIG` (see tests/alertmanager_path.rs).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::Stack;

pub type Labels = BTreeMap<String, String>;

// ---------------------------------------------------------------- a tiny HTTP/1.1 server

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

struct Response {
    code: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

type Handler = dyn Fn(Request) -> Response + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1:0: a thread accepting, a thread per connection,
/// keep-alive, Content-Length or chunked request bodies. Stops accepting on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(handler: impl Fn(Request) -> Response + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(conn, &*handler);
                });
            }
        });
        Server { addr, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop so it sees the flag
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve_connection(conn: TcpStream, handler: &Handler) -> std::io::Result<()> {
    // an idle keep-alive connection ends after a minute (its thread with it)
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            continue; // stray CRLF between requests
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let version = parts.next().unwrap_or("HTTP/1.0").to_string();
        let mut length = 0usize;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse().unwrap_or(0),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" if v == "close" => close = true,
                "connection" if v == "keep-alive" => close = false,
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                let mut chunk = vec![0; size + 2]; // data + CRLF
                r.read_exact(&mut chunk)?;
                if size == 0 {
                    break; // (no trailers from the clients here)
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            r.read_exact(&mut body)?;
        }
        let resp = handler(Request { method, path, body });
        let reason = match resp.code {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Status",
        };
        write!(
            out,
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
            resp.code,
            resp.content_type,
            resp.body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )?;
        out.write_all(&resp.body)?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------- the webhook receiver

/// One POST the webhook received: when, where, and its body (JSON; a body that is not JSON is
/// kept as a JSON string).
#[derive(Clone, Debug)]
pub struct Notification {
    pub at: Instant,
    pub wall: SystemTime,
    pub path: String,
    pub body: serde_json::Value,
}

/// One alert of a received notification: the notification's arrival time, the alert's own
/// status (`firing`/`resolved`) and labels, and the whole notification.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub status: String,
    pub labels: Labels,
    pub fingerprint: String,
    pub notification: serde_json::Value,
}

type Log = Arc<(Mutex<Vec<Notification>>, Condvar)>;

/// Alertmanager's webhook receiver on 127.0.0.1 (any path; answers 200 to a JSON POST).
pub struct Webhook {
    server: Server,
    log: Log,
}

impl Webhook {
    pub fn start() -> Webhook {
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let log2 = log.clone();
        let server = Server::start(move |req| {
            if req.method != "POST" {
                return Response {
                    code: 404,
                    content_type: "text/plain",
                    body: b"POST only\n".to_vec(),
                };
            }
            let (body, code) = match serde_json::from_slice(&req.body) {
                Ok(v) => (v, 200),
                Err(_) => (
                    serde_json::Value::String(String::from_utf8_lossy(&req.body).into_owned()),
                    400,
                ),
            };
            let (m, cv) = &*log2;
            m.lock().unwrap().push(Notification {
                at: Instant::now(),
                wall: SystemTime::now(),
                path: req.path,
                body,
            });
            cv.notify_all();
            Response {
                code,
                content_type: "text/plain",
                body: Vec::new(),
            }
        });
        Webhook { server, log }
    }

    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }

    /// `http://127.0.0.1:PORT/`, what an Alertmanager `webhook_configs` entry names.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    /// Everything received so far, in arrival order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.log.0.lock().unwrap().clone()
    }

    /// Every alert received (in arrival order) whose labels include all of `labels` and, when
    /// given, whose status is `status`.
    pub fn alerts(&self, labels: &[(&str, &str)], status: Option<&str>) -> Vec<Received> {
        matching(&self.log.0.lock().unwrap(), labels, status, None)
    }

    /// Waits (at most `timeout`) for a notification of alert `alertname` with `status`
    /// (`firing` or `resolved`); panics with everything received when none came.
    pub fn wait_for(&self, alertname: &str, status: &str, timeout: Duration) -> Received {
        self.wait_for_labels(&[("alertname", alertname)], status, None, timeout)
    }

    /// Waits (at most `timeout`) for an alert whose labels include `labels` with `status`,
    /// in a notification that arrived after `after` (any time when `None`); panics with
    /// everything received when none came.
    pub fn wait_for_labels(
        &self,
        labels: &[(&str, &str)],
        status: &str,
        after: Option<Instant>,
        timeout: Duration,
    ) -> Received {
        self.try_wait(labels, status, after, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "no {status} notification for {labels:?} within {timeout:?}; the webhook received:\n{}",
                    self.dump()
                )
            })
    }

    /// Like [`Webhook::wait_for_labels`], `None` on timeout.
    pub fn try_wait(
        &self,
        labels: &[(&str, &str)],
        status: &str,
        after: Option<Instant>,
        timeout: Duration,
    ) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(r) = matching(&g, labels, Some(status), after).into_iter().next() {
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// The received bodies, one per line, with their arrival time (for failure messages).
    pub fn dump(&self) -> String {
        let g = self.log.0.lock().unwrap();
        if g.is_empty() {
            return "(nothing)".to_string();
        }
        g.iter()
            .map(|n| {
                format!(
                    "{:?} {} {}",
                    n.wall
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default(),
                    n.path,
                    n.body
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn labels_of(v: &serde_json::Value) -> Labels {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn has_labels(have: &Labels, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
}

fn matching(
    log: &[Notification],
    labels: &[(&str, &str)],
    status: Option<&str>,
    after: Option<Instant>,
) -> Vec<Received> {
    let mut out = Vec::new();
    for n in log {
        if after.is_some_and(|a| n.at < a) {
            continue;
        }
        for a in n.body["alerts"].as_array().into_iter().flatten() {
            let l = labels_of(&a["labels"]);
            let st = a["status"].as_str().unwrap_or_default();
            if has_labels(&l, labels) && status.is_none_or(|s| s == st) {
                out.push(Received {
                    at: n.at,
                    status: st.to_string(),
                    labels: l,
                    fingerprint: a["fingerprint"].as_str().unwrap_or_default().to_string(),
                    notification: n.body.clone(),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------- a scrape target

/// A scrape target on 127.0.0.1 whose samples the test sets: `GET /metrics` answers one line
/// per series (`name{labels} value`, untyped).
pub struct MetricsTarget {
    server: Server,
    samples: Arc<Mutex<BTreeMap<String, f64>>>,
    scrapes: Arc<AtomicU64>,
}

impl MetricsTarget {
    pub fn start() -> MetricsTarget {
        let samples: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s2, n2) = (samples.clone(), scrapes.clone());
        let server = Server::start(move |req| {
            if req.method != "GET" || !req.path.starts_with("/metrics") {
                return Response {
                    code: 404,
                    content_type: "text/plain",
                    body: b"GET /metrics only\n".to_vec(),
                };
            }
            n2.fetch_add(1, Ordering::SeqCst);
            let text: String = s2
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect();
            Response {
                code: 200,
                content_type: "text/plain; version=0.0.4",
                body: text.into_bytes(),
            }
        });
        MetricsTarget {
            server,
            samples,
            scrapes,
        }
    }

    /// `127.0.0.1:PORT`, for a file_sd target.
    pub fn addr(&self) -> String {
        self.server.addr.to_string()
    }

    /// Sets the sample of `series` (`name` or `name{label="v",...}`).
    pub fn set(&self, series: &str, value: f64) {
        self.samples
            .lock()
            .unwrap()
            .insert(series.to_string(), value);
    }

    /// How many scrapes it answered.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::SeqCst)
    }
}

/// Points the stack's Prometheus (job `deliverability`, file_sd) at `addr` with a file
/// `NAME.json` in `DX_PROM_TARGETS_DIR` (written under a temporary name, then renamed).
/// Prometheus 2.42 passes a new target to its scrape loop within ~5 s.
pub fn prometheus_scrape(st: &Stack, name: &str, addr: &str) {
    let dir = Path::new(st.get("DX_PROM_TARGETS_DIR"));
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, format!("[{{\"targets\":[\"{addr}\"]}}]")).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.json"))).unwrap();
}

/// GET on the stack's Prometheus HTTP API (`path_and_query` already encoded); the JSON body.
pub fn prom_api(st: &Stack, path_and_query: &str) -> serde_json::Value {
    let (code, body) = super::http(
        &format!("127.0.0.1:{}", st.port("DX_PROM_PORT")),
        "GET",
        path_and_query,
    );
    assert_eq!(code, 200, "Prometheus {path_and_query}: {body}");
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{path_and_query}: not JSON ({e}): {body}"))
}

/// The result vector of an instant query on the stack's Prometheus.
pub fn prom_query(st: &Stack, query: &str) -> Vec<serde_json::Value> {
    let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let r = prom_api(st, &format!("/api/v1/query?query={q}"));
    r["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most `timeout`) until the instant query `query` returns a non-empty result.
pub fn wait_prom_query(st: &Stack, query: &str, timeout: Duration) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let r = prom_query(st, query);
        if !r.is_empty() {
            return r;
        }
        if start.elapsed() > timeout {
            panic!(
                "Prometheus never answered {query:?} within {timeout:?}\n{}",
                alerting_state(st)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------- Alertmanager's view

/// An alert as Alertmanager's `/api/v2/alerts` shows it.
#[derive(Clone, Debug)]
pub struct AmAlert {
    pub labels: Labels,
    pub fingerprint: String,
    /// `active`, `suppressed` (inhibited or silenced) or `unprocessed`
    pub state: String,
    /// fingerprints of the alerts inhibiting this one
    pub inhibited_by: Vec<String>,
    /// ids of the silences muting this one
    pub silenced_by: Vec<String>,
    pub receivers: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
}

/// Every alert Alertmanager holds (active, suppressed and unprocessed; resolved ones are not
/// listed).
pub fn am_alerts(st: &Stack) -> Vec<AmAlert> {
    let (code, body) = super::http(
        &format!("127.0.0.1:{}", st.port("DX_AM_PORT")),
        "GET",
        "/api/v2/alerts",
    );
    assert_eq!(code, 200, "Alertmanager /api/v2/alerts: {body}");
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("Alertmanager /api/v2/alerts: not JSON ({e}): {body}"));
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    v.as_array()
        .into_iter()
        .flatten()
        .map(|a| AmAlert {
            labels: labels_of(&a["labels"]),
            fingerprint: a["fingerprint"].as_str().unwrap_or_default().to_string(),
            state: a["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            inhibited_by: strings(&a["status"]["inhibitedBy"]),
            silenced_by: strings(&a["status"]["silencedBy"]),
            receivers: a["receivers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect(),
            starts_at: a["startsAt"].as_str().unwrap_or_default().to_string(),
            ends_at: a["endsAt"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Waits (at most `timeout`) until Alertmanager holds an alert whose labels include `labels`
/// and for which `ok` holds; panics with what Prometheus and Alertmanager hold otherwise.
pub fn wait_am_alert(
    st: &Stack,
    labels: &[(&str, &str)],
    ok: impl Fn(&AmAlert) -> bool,
    what: &str,
    timeout: Duration,
) -> AmAlert {
    let start = Instant::now();
    loop {
        if let Some(a) = am_alerts(st)
            .into_iter()
            .find(|a| has_labels(&a.labels, labels) && ok(a))
        {
            return a;
        }
        if start.elapsed() > timeout {
            panic!(
                "Alertmanager never held {labels:?} {what} within {timeout:?}\n{}",
                alerting_state(st)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Prometheus `/metrics`-style sample of Alertmanager's own metrics (e.g.
/// `alertmanager_notifications_total{integration="webhook"}`), summed over series with the
/// labels given.
pub fn am_metric(st: &Stack, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (code, body) = super::http(
        &format!("127.0.0.1:{}", st.port("DX_AM_PORT")),
        "GET",
        "/metrics",
    );
    assert_eq!(code, 200, "Alertmanager /metrics: {body}");
    super::Scrape(body).sum(name, labels)
}

/// What Prometheus and Alertmanager hold about alerts, and the tails of their logs (for
/// failure messages).
pub fn alerting_state(st: &Stack) -> String {
    let get = |port: &str, path: &str| {
        super::http(&format!("127.0.0.1:{}", st.port(port)), "GET", path).1
    };
    let tail = |key: &str| {
        let text = std::fs::read_to_string(st.get(key)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    format!(
        "--- Prometheus /api/v1/alerts ---\n{}\n--- Prometheus /api/v1/targets?state=active ---\n{}\n--- Alertmanager /api/v2/alerts ---\n{}\n--- prometheus log ---\n{}\n--- alertmanager log ---\n{}",
        get("DX_PROM_PORT", "/api/v1/alerts"),
        get("DX_PROM_PORT", "/api/v1/targets?state=active"),
        get("DX_AM_PORT", "/api/v2/alerts"),
        tail("DX_PROMETHEUS_LOG"),
        tail("DX_ALERTMANAGER_LOG"),
    )
}
