//! The routes: what each path answers (`/metrics`, `/probe`, `/runbooks`, the landing page,
//! `/-/healthy`, `/-/ready`, `/-/reload`), the error answers (short, plain text, the input
//! quoted at most 100 characters) and the security headers of the HTML pages. The connection
//! handling that leads here is the parent module's.

use super::*;

pub(super) fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `s` quoted for an error answer: escaped, and cut after 100 characters so an answer never
/// echoes much of what a client sent.
pub fn quote(s: &str) -> String {
    const MAX: usize = 100;
    match s.char_indices().nth(MAX) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} characters)", &s[..cut], s.chars().count()),
    }
}

pub(super) async fn handle(
    shared: &Shared,
    settings: Option<&WebSettings>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Resp {
    let state = &shared.state;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let denied = match (&state.web, settings) {
        (Some(web), Some(s)) => {
            let header = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            web.authorize(s, header).await.err()
        }
        _ => None,
    };
    let mut resp = match denied {
        Some(why) => {
            state.metrics.http.auth_failed(why);
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
        None if path == "/probe" => route(shared, &req, &path, &method).await,
        None => {
            let _work = shared
                .work
                .acquire()
                .await
                .expect("the semaphore is never closed");
            route(shared, &req, &path, &method).await
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(s) = settings {
        for (k, v) in &s.headers {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
    }
    tracing::debug!(peer = %peer, method = %method, path = %path, status = resp.status().as_u16(), "request");
    resp
}

/// The landing page of the running configuration.
pub(super) fn landing_page(state: &AppState) -> String {
    let config = state.config();
    let sections = state
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    crate::landing::render(&crate::landing::Page {
        config: &config,
        telemetry_path: &state.telemetry_path,
        enable_lifecycle: state.enable_lifecycle,
        sections: &sections,
        runs: &state.history.recent(),
    })
}

pub(super) async fn route(
    shared: &Shared,
    req: &Request<Incoming>,
    path: &str,
    method: &Method,
) -> Resp {
    let state = &*shared.state;
    let get_only = |m: &Method| *m == Method::GET || *m == Method::HEAD;
    if path == state.telemetry_path {
        if !get_only(method) {
            return method_not_allowed("GET");
        }
        return metrics_response(state.metrics.encode(), req);
    }
    match path {
        "/" if get_only(method) => html(landing_page(state)),
        "/runbooks" if get_only(method) => html(crate::runbooks::page().to_string()),
        "/-/healthy" if get_only(method) => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if get_only(method) => {
            if state.ready.load(Ordering::SeqCst) {
                text(StatusCode::OK, "Ready.\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not ready: checks are not scheduled yet.\n",
                )
            }
        }
        "/-/reload" => {
            if *method != Method::POST && *method != Method::PUT {
                return method_not_allowed("POST");
            }
            if !state.enable_lifecycle {
                return text(
                    StatusCode::FORBIDDEN,
                    "Lifecycle API is not enabled: start with --web.enable-lifecycle, or send SIGHUP.\n",
                );
            }
            let (tx, rx) = oneshot::channel();
            if state.reload.send(tx).await.is_err() {
                return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            }
            match rx.await {
                Ok(Ok(())) => text(StatusCode::OK, "Configuration reloaded.\n"),
                Ok(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Configuration refused; the previous one keeps running:\n{e}\n"),
                ),
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            }
        }
        "/probe" if get_only(method) => probe(shared, req).await,
        "/" | "/runbooks" | "/-/healthy" | "/-/ready" | "/probe" => method_not_allowed("GET"),
        _ => text(
            StatusCode::NOT_FOUND,
            "Not found. See / for the endpoints.\n",
        ),
    }
}

pub(super) fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method not allowed; use {allow}.\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// What the HTML pages may load: nothing but their own inline `<style>`; no scripts, no
/// frames, no forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn html(body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The exposition, gzip'd when the scraper accepts it (Prometheus does).
pub(super) fn metrics_response(body: Vec<u8>, req: &Request<Incoming>) -> Resp {
    let gzip = req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().split(';').next() == Some("gzip"));
    let mut r = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        let _ = enc.write_all(&body);
        let mut r = Response::new(Full::new(Bytes::from(enc.finish().unwrap_or_default())));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    r
}

/// Parses `a=b&c=d` with percent-decoding.
pub fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prometheus sends its scrape timeout in this header; the probe uses a little less.
pub(super) fn probe_timeout(req: &Request<Incoming>) -> Duration {
    req.headers()
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64((s - 0.5).max(0.5)))
        .unwrap_or(Duration::from_secs(9))
}

pub(super) async fn probe(shared: &Shared, req: &Request<Incoming>) -> Resp {
    let Some(prober) = &shared.state.prober else {
        return text(StatusCode::NOT_FOUND, "No probe modules are available.\n");
    };
    let params = query_params(req.uri().query().unwrap_or(""));
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(module) = get("module") else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Module parameter is missing; one of: {}\n",
                prober.modules().join(", ")
            ),
        );
    };
    if !prober.modules().contains(&module) {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Unknown module {}; one of: {}\n",
                quote(module),
                prober.modules().join(", ")
            ),
        );
    }
    let Some(target) = get("target").filter(|t| !t.is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "Target parameter is missing\n");
    };
    let Ok(_running) = shared.probes.try_acquire() else {
        shared.state.metrics.http.probes_rejected.inc();
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Too many probes running (--web.max-probes {}); try again shortly.\n",
                shared.max_probes
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    match prober.probe(module, target, probe_timeout(req)).await {
        Ok(body) => metrics_response(body, req),
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{}\n", short(&e))),
    }
}

/// An error message for an answer: at most 300 characters (its quoted input is cut at 100
/// by [`quote`]; this bounds the rest).
pub(super) fn short(s: &str) -> &str {
    match s.char_indices().nth(300) {
        None => s,
        Some((cut, _)) => &s[..cut],
    }
}
