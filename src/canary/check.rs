//! The canary check: every `canary.interval`, one canary per route (provider × seed), and the
//! seed watchers that find them again.
//!
//! A run sends one message per route, each route starting at a random offset within
//! `canary.jitter` × interval so routes don't fire together, and no two sends through one
//! provider closer than its `min_gap`. A send's outcome is recorded at once (stage timings,
//! failures with stage, class and code, TLS facts); delivery is recorded when a watcher sees the
//! canary, or as lost at its deadline. The run succeeds when every send was accepted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::canary::requirements::Judge;
use crate::canary::send::{self, FailureClass, SendRequest};
use crate::canary::tracker::{Bounced, InFlight, Sighting, Tracker};
use crate::canary::watch::{Found, Readiness, Role, Sightings, Verdict, Watcher};
use crate::canary::{message, status::RouteBoard};
use crate::config::{Config, Provider, Secret, Seed};
use crate::imap::Endpoint;
use crate::oauth2::{OAuthError, TokenSource};
use crate::schedule::{BoxFuture, Check, CheckError, Context};

mod arrivals;
use arrivals::{Arrivals, bounces, deadlines, loss_grace};

/// When a failed send is tried again: after each of these, while within 90 % of the interval.
pub const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
];

/// A send that failed: what to report, and whether trying again is safe (no message can
/// have reached the seed).
struct Failed {
    message: String,
    retry: bool,
}

/// A provider and its routes' seeds, each with its start offset in the round.
type ProviderRoutes<'a> = (&'a Provider, Vec<(Duration, &'a Seed)>);

pub struct CanaryCheck {
    config: Arc<Config>,
    /// `once`: send at once, no jitter.
    oneshot: bool,
    last_send: tokio::sync::Mutex<HashMap<String, Instant>>,
    board: Arc<RouteBoard>,
    /// The canaries in flight; outlives reloads so none is forgotten.
    tracker: Arc<Tracker>,
    ready: Arc<Readiness>,
    /// XOAUTH2 token sources of the providers that refresh their access tokens.
    tokens: HashMap<String, Arc<TokenSource>>,
    first_run: std::sync::atomic::AtomicBool,
    /// Unix time of the first run: canaries lost since are this process's to report.
    started: std::sync::OnceLock<f64>,
}

impl CanaryCheck {
    pub fn new(
        config: Arc<Config>,
        oneshot: bool,
        board: Arc<RouteBoard>,
        tracker: Arc<Tracker>,
    ) -> CanaryCheck {
        CanaryCheck {
            tokens: config
                .providers
                .iter()
                .filter_map(|p| {
                    Some((
                        p.name.clone(),
                        Arc::new(TokenSource::new(p.oauth2.clone()?)),
                    ))
                })
                .collect(),
            config,
            oneshot,
            last_send: Default::default(),
            board,
            tracker,
            ready: Default::default(),
            first_run: true.into(),
            started: Default::default(),
        }
    }

    fn helo_name(&self, p: &Provider) -> String {
        p.helo_name.clone().unwrap_or_else(|| {
            let h = self.config.instance();
            if crate::config::check_host(&h).is_ok() {
                h
            } else {
                "localhost".into()
            }
        })
    }

    /// Sends the canaries of one provider's routes, in offset order, minding `min_gap`. A
    /// send that failed (and certainly left no message behind) is tried again after each of
    /// [`RETRY_BACKOFF`] while the retry still starts within 90 % of the interval, so an outage
    /// is confirmed and a repair seen within minutes, not a whole interval later. The result of
    /// each route is that of its last attempt.
    async fn provider_round(
        &self,
        ctx: &Context,
        provider: &Provider,
        routes: Vec<(Duration, &Seed)>,
    ) -> Vec<Result<(), String>> {
        let start = Instant::now();
        let horizon = start + self.interval().mul_f64(0.9);
        let mut results: Vec<Result<(), String>> = vec![Ok(()); routes.len()];
        // (when, route index, seed, attempts so far)
        let mut queue: Vec<(Instant, usize, &Seed, usize)> = routes
            .into_iter()
            .enumerate()
            .map(|(i, (offset, seed))| (start + offset, i, seed, 0))
            .collect();
        while let Some(k) = (0..queue.len()).min_by_key(|&k| (queue[k].0, queue[k].1)) {
            let (mut at, i, seed, attempt) = queue.swap_remove(k);
            {
                let last = self.last_send.lock().await;
                if let Some(prev) = last.get(&provider.name) {
                    at = at.max(*prev + provider.min_gap);
                }
            }
            tokio::time::sleep_until(at).await;
            self.last_send
                .lock()
                .await
                .insert(provider.name.clone(), Instant::now());
            if attempt > 0 {
                ctx.metrics
                    .canary
                    .retries
                    .with_label_values(&[&provider.name])
                    .inc();
                tracing::info!(provider = %provider.name, seed = %seed.name, attempt, "retrying a failed canary send");
            }
            results[i] = match self.send_one(ctx, provider, seed).await {
                Ok(()) => Ok(()),
                Err(Failed { message, retry }) => {
                    if retry
                        && !self.oneshot
                        && let Some(backoff) = RETRY_BACKOFF.get(attempt)
                        && Instant::now() + *backoff < horizon
                    {
                        queue.push((Instant::now() + *backoff, i, seed, attempt + 1));
                    }
                    Err(message)
                }
            };
        }
        results
    }

    async fn send_one(&self, ctx: &Context, p: &Provider, seed: &Seed) -> Result<(), Failed> {
        let cfg = &self.config.canary;
        let m = &ctx.metrics.canary;
        let labels = [p.name.as_str(), seed.name.as_str()];
        let token = message::new_token();
        let sent_at = ctx.clock.now();
        let instance = self.config.instance();
        let bytes = message::build(&message::CanarySpec {
            token: &token,
            from: &p.from,
            from_domain: &p.from_domain,
            to: &seed.address,
            subject_template: &cfg.subject,
            body_template: &cfg.body,
            provider: &p.name,
            seed: &seed.name,
            instance: &instance,
            extra_headers: &p.headers,
            date: sent_at,
        })
        .map_err(|e| Failed {
            message: e.to_string(),
            retry: false,
        })?;
        let helo = self.helo_name(p);
        let access_token = match self.tokens.get(&p.name) {
            None => None,
            Some(src) => match src.token(cfg.smtp_timeout.get()).await {
                Ok(t) => Some(t),
                Err(e) => {
                    let class = match e {
                        OAuthError::Refused { .. } => FailureClass::Permanent,
                        OAuthError::Unreachable { .. } => FailureClass::Network,
                        OAuthError::BadResponse { .. } => FailureClass::Protocol,
                    };
                    m.send_failures
                        .with_label_values(&[&p.name, &seed.name, "auth", class.as_str(), ""])
                        .inc();
                    m.smtp_failures
                        .with_label_values(&[&p.name, "auth", class.as_str()])
                        .inc();
                    m.success.with_label_values(&labels).set(0);
                    m.send_success.with_label_values(&labels).set(0);
                    m.last_send
                        .with_label_values(&labels)
                        .set(crate::clock::unix_seconds(sent_at));
                    let msg = format!("auth failed ({}): OAuth2 {e}", class.as_str());
                    tracing::warn!(provider = %p.name, seed = %seed.name, error = %msg, "canary send failed");
                    self.board.failed(
                        &p.name,
                        &seed.name,
                        crate::clock::unix_seconds(sent_at),
                        &msg,
                    );
                    return Err(Failed {
                        message: format!("{}/{}: {msg}", p.name, seed.name),
                        retry: true,
                    });
                }
            },
        };
        // Known as ours from before the first byte: the seed may receive the message before
        // the final reply has been read, and its watcher must not take it for a stranger's.
        let _sending = self.tracker.sending(&token, &seed.name);
        let outcome = send::send(SendRequest {
            provider: p,
            rcpt: &seed.address,
            message: &bytes,
            stage_timeout: cfg.smtp_timeout.get(),
            helo_name: &helo,
            access_token,
            token: &token,
        })
        .await;

        m.last_send
            .with_label_values(&labels)
            .set(crate::clock::unix_seconds(sent_at));
        for (stage, d) in &outcome.stages {
            m.stage_duration
                .with_label_values(&[&p.name, stage.as_str()])
                .observe(d.as_secs_f64());
        }
        if let Some(tls) = &outcome.tls {
            m.tls_version
                .with_label_values(&[&p.name, tls.version])
                .set(1);
            for v in ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "other"] {
                if v != tls.version {
                    let _ = m.tls_version.remove_label_values(&[&p.name, v]);
                }
            }
            if let Some(t) = tls.cert_not_after {
                m.cert_expiry.with_label_values(&[&p.name]).set(t as f64);
            }
        }
        if let Some(mech) = outcome.auth_mechanism {
            for other in ["plain", "login", "xoauth2"] {
                m.auth_mechanism
                    .with_label_values(&[&p.name, other])
                    .set(i64::from(other == mech.as_str()));
            }
        }
        // From here on the canary is awaited in its seed until its deadline.
        let track = |done: std::time::SystemTime, uncertain: bool| {
            let done = crate::clock::unix_seconds(done);
            self.tracker.add(InFlight {
                token: token.clone(),
                provider: p.name.clone(),
                seed: seed.name.clone(),
                sent_at: crate::clock::unix_seconds(sent_at),
                data_done: done,
                deadline: done + cfg.deadline.get().as_secs_f64(),
                uncertain,
            });
            m.in_flight
                .with_label_values(&labels)
                .set(self.tracker.in_flight_of(&p.name, &seed.name));
        };
        match (&outcome.failure, outcome.data_done) {
            (None, Some(done)) => {
                m.sent.with_label_values(&labels).inc();
                m.send_success.with_label_values(&labels).set(1);
                track(done, false);
                tracing::debug!(provider = %p.name, seed = %seed.name, token = %token, reply = outcome.accepted.as_deref().unwrap_or(""), "canary sent");
                self.board
                    .sent(&p.name, &seed.name, crate::clock::unix_seconds(sent_at));
                Ok(())
            }
            (Some(f), _) => {
                let code = f.code.map(|c| c.to_string()).unwrap_or_default();
                if f.stage == send::Stage::Auth
                    && let Some(src) = self.tokens.get(&p.name)
                {
                    // The server refused the access token: fetch a new one next time.
                    src.invalidate().await;
                }
                m.send_failures
                    .with_label_values(&[
                        &p.name,
                        &seed.name,
                        f.stage.as_str(),
                        f.class.as_str(),
                        &code,
                    ])
                    .inc();
                m.smtp_failures
                    .with_label_values(&[&p.name, f.stage.as_str(), f.class.as_str()])
                    .inc();
                m.success.with_label_values(&labels).set(0);
                m.send_success.with_label_values(&labels).set(0);
                if f.class == FailureClass::Uncertain
                    && let Some(done) = outcome.data_done
                {
                    m.uncertain.with_label_values(&[&p.name]).inc();
                    track(done, true);
                }
                tracing::warn!(provider = %p.name, seed = %seed.name, stage = f.stage.as_str(), class = f.class.as_str(), code = %code, enhanced = f.enhanced.as_deref().unwrap_or(""), error = %f.message, "canary send failed");
                self.board.failed(
                    &p.name,
                    &seed.name,
                    crate::clock::unix_seconds(sent_at),
                    &f.to_string(),
                );
                Err(Failed {
                    message: format!("{}/{}: {f}", p.name, seed.name),
                    // The message may have arrived: never send it twice.
                    retry: f.class != FailureClass::Uncertain,
                })
            }
            (None, None) => Err(Failed {
                message: format!("{}/{}: the send ended without a result", p.name, seed.name),
                retry: false,
            }),
        }
    }
}

impl Check for CanaryCheck {
    fn name(&self) -> &'static str {
        "canary"
    }

    fn interval(&self) -> Duration {
        self.config.canary.interval.get()
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
        Box::pin(async move {
            let _ = self.started.set(ctx.clock.unix());
            if self
                .first_run
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                let watchers = self
                    .config
                    .seeds
                    .iter()
                    .filter(|s| s.password.is_some())
                    .count()
                    * 2;
                self.ready
                    .wait_for(watchers, self.config.canary.imap_timeout.get())
                    .await;
                if self.ready.count() < watchers {
                    tracing::warn!(
                        up = self.ready.count(),
                        expected = watchers,
                        "not every seed folder is watched yet; sending anyway"
                    );
                }
            }
            let spread = if self.oneshot {
                Duration::ZERO
            } else {
                self.interval().mul_f64(self.config.canary.jitter)
            };
            let mut by_provider: BTreeMap<&str, ProviderRoutes> = BTreeMap::new();
            for (p, s) in self.config.routes() {
                let offset = if spread.is_zero() {
                    Duration::ZERO
                } else {
                    spread.mul_f64(rand::rng().random_range(0.0..1.0))
                };
                by_provider
                    .entry(&p.name)
                    .or_insert((p, Vec::new()))
                    .1
                    .push((offset, s));
            }
            let rounds = by_provider
                .into_values()
                .map(|(p, routes)| self.provider_round(ctx, p, routes));
            let results: Vec<Result<(), String>> = futures::future::join_all(rounds)
                .await
                .into_iter()
                .flatten()
                .collect();
            let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            if failed.is_empty() {
                Ok(format!("{} canaries sent", results.len()))
            } else {
                Err(CheckError(format!(
                    "{} of {} sends failed; first: {}",
                    failed.len(),
                    results.len(),
                    failed[0]
                )))
            }
        })
    }

    fn background(&self, ctx: &Context) -> Vec<BoxFuture<'static, ()>> {
        let cfg = &self.config;
        let routes: HashSet<(String, String)> = cfg
            .routes()
            .map(|(p, s)| (p.name.clone(), s.name.clone()))
            .collect();
        self.tracker.retain_routes(&routes);
        for p in &cfg.providers {
            ctx.metrics
                .canary
                .init_provider(&p.name, &send::Stage::NAMES, &FailureClass::NAMES);
        }
        for s in &cfg.seeds {
            ctx.metrics.canary.init_seed(&s.name);
        }
        for (p, s) in cfg.routes() {
            ctx.metrics
                .canary
                .init_route(&p.name, &s.name, cfg.canary.route_histograms);
            // Canaries restored from the state directory are in flight from the start.
            ctx.metrics
                .canary
                .in_flight
                .with_label_values(&[&p.name, &s.name])
                .set(self.tracker.in_flight_of(&p.name, &s.name));
            self.board.init(&p.name, &s.name);
        }
        let arrivals: Arc<dyn Sightings> = Arc::new(Arrivals {
            ctx: ctx.clone(),
            tracker: self.tracker.clone(),
            board: self.board.clone(),
            routes: routes.clone(),
            route_histograms: cfg.canary.route_histograms,
            judge: Arc::new(Judge::from_config(cfg, ctx.metrics.clone())),
        });
        let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
        for seed in &cfg.seeds {
            let tokens = seed.oauth2.clone().map(|o| Arc::new(TokenSource::new(o)));
            let Some(secret) = seed
                .password
                .clone()
                .or_else(|| tokens.as_ref().map(|_| Secret::new("")))
            else {
                tracing::error!(seed = %seed.name, "seed has no password or access token; it cannot be watched");
                continue;
            };
            for role in [Role::Inbox, Role::Spam] {
                let w = Watcher {
                    ready: self.ready.clone(),
                    authserv_id: seed.authserv_id.clone(),
                    seed: seed.name.clone(),
                    role,
                    endpoint: seed_endpoint(seed, secret.clone()),
                    spam_folder: seed.spam_folder.clone(),
                    cfg: cfg.canary.clone(),
                    metrics: ctx.metrics.clone(),
                    clock: ctx.clock.clone(),
                    sightings: arrivals.clone(),
                    tokens: tokens.clone(),
                };
                tasks.push(Box::pin(w.run(ctx.shutdown.clone())));
            }
        }
        tasks.push(Box::pin(deadlines(
            ctx.clone(),
            self.tracker.clone(),
            self.board.clone(),
            self.ready.clone(),
            loss_grace(&cfg.canary),
        )));
        // Bounces come from the report sources (on shard 0, which reads them).
        ctx.metrics.canary.init_bounces(
            &crate::observed::BounceClass::NAMES,
            &crate::observed::BounceReason::NAMES,
        );
        tasks.push(Box::pin(bounces(
            ctx.clone(),
            self.tracker.clone(),
            self.board.clone(),
            routes.clone(),
        )));
        for p in &cfg.providers {
            if p.insecure_skip_verify {
                tracing::warn!(provider = %p.name, "insecure_skip_verify is set: the provider's TLS certificate is not verified");
            }
        }
        tasks
    }

    fn settle<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async move {
            let limit = self.config.canary.deadline.get()
                + loss_grace(&self.config.canary)
                + Duration::from_secs(2);
            let _ = tokio::time::timeout(limit, self.tracker.settled()).await;
            let since = self.started.get().copied().unwrap_or(f64::MIN);
            let mut problems = Vec::new();
            let mut lost: BTreeMap<(String, String), usize> = BTreeMap::new();
            for route in self.tracker.lost_since(since) {
                *lost.entry(route).or_default() += 1;
            }
            for ((p, s), n) in lost {
                problems.push(format!(
                    "{p}/{s}: {n} canary lost (not seen in the seed by canary.deadline)"
                ));
            }
            for (p, s) in self.board.routes() {
                if let Some(r) = self.board.get(&p, &s)
                    && r.state == "bounced"
                    && r.at.is_some_and(|at| at >= since)
                {
                    problems.push(format!(
                        "{p}/{s}: {}",
                        r.last_error.as_deref().unwrap_or("bounced")
                    ));
                }
            }
            let pending = self.tracker.in_flight_count();
            if pending > 0 {
                problems.push(format!("{pending} canaries still in flight"));
            }
            for seed in &self.config.seeds {
                if seed.password.is_none() && seed.oauth2.is_none() {
                    problems.push(format!(
                        "seed {}: not watched (no password or access token)",
                        seed.name
                    ));
                    continue;
                }
                for role in [Role::Inbox, Role::Spam] {
                    if let Some(why) = self.ready.not_watching(&seed.name, role) {
                        problems.push(format!(
                            "seed {} {}: not watched: {why}",
                            seed.name,
                            role.as_str()
                        ));
                    }
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(CheckError(problems.join("; ")))
            }
        })
    }
}

pub fn seed_endpoint(seed: &Seed, secret: crate::config::Secret) -> Endpoint {
    Endpoint {
        host: seed.host.clone(),
        port: seed.port,
        tls: seed.tls,
        username: seed.username.clone(),
        secret,
        auth: seed.auth,
        ca_file: seed.ca_file.clone(),
        insecure_skip_verify: seed.insecure_skip_verify,
    }
}
