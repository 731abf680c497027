//! What happens after a send: the watchers' sightings recorded as deliveries (placement,
//! latency, the receiver's verdicts) and the deadline loop that counts canaries lost.

use super::*;

/// How long after its deadline a canary waits at most for its seed's watchers to search once
/// more before it is counted lost (a watcher stuck in a command must not hold it forever).
pub(super) fn loss_grace(c: &crate::config::CanaryConfig) -> Duration {
    c.verify_interval.get() + c.imap_timeout.get()
}

/// Counts canaries lost at their deadline, keeps the in-flight gauges true, and saves the
/// tracker's state at most once a second. A canary past its deadline is counted lost once
/// every watched folder of its seed has been searched since the deadline (within
/// `verify_interval`, as its watchers look that often while it is in flight), or after
/// `grace`.
///
/// It wakes for the next deadline, for a state file to save, or for the first change after a
/// quiet spell, never on a fixed tick: with nothing in flight it sleeps, whatever the number
/// of routes. While canaries past their deadline wait for a search it looks twice a second.
pub(super) async fn deadlines(
    ctx: Context,
    tracker: Arc<Tracker>,
    board: Arc<RouteBoard>,
    ready: Arc<Readiness>,
    grace: Duration,
) {
    const FLUSH_EVERY: Duration = Duration::from_secs(1);
    const OVERDUE_EVERY: Duration = Duration::from_millis(500);
    const LONGEST_SLEEP: Duration = Duration::from_secs(60);
    let grace = grace.as_secs_f64();
    let mut last_flush = Instant::now();
    loop {
        // Taken before the state is read, so a change made while this round looks is not missed.
        let changed = tracker.changed();
        let now = ctx.clock.unix();
        let m = &ctx.metrics.canary;
        let looked =
            |f: &InFlight| now >= f.deadline + grace || ready.searched_since(&f.seed, f.deadline);
        for f in tracker.expire(now, looked) {
            let labels = [f.provider.as_str(), f.seed.as_str()];
            m.lost.with_label_values(&labels).inc();
            m.success.with_label_values(&labels).set(0);
            m.in_flight
                .with_label_values(&labels)
                .set(tracker.in_flight_of(&f.provider, &f.seed));
            tracing::warn!(provider = %f.provider, seed = %f.seed, token = %f.token, "canary lost: not seen by its deadline");
            board.lost(&f.provider, &f.seed, now);
        }
        let dirty = tracker.dirty();
        if dirty && last_flush.elapsed() >= FLUSH_EVERY {
            tracker.flush();
            last_flush = Instant::now();
        }
        let dirty = tracker.dirty();
        // The next wake: the earliest deadline, a save that is due, or (with neither) the next
        // change. While a save is pending, changes are not waited for: they are saved with it.
        let mut wake = tracker.next_deadline().map(|d| {
            if d <= now {
                OVERDUE_EVERY
            } else {
                Duration::from_secs_f64(d - now).min(LONGEST_SLEEP)
            }
        });
        if dirty {
            let due = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            wake = Some(wake.map_or(due, |w| w.min(due)));
        }
        tokio::select! {
            _ = async {
                match wake {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = changed, if !dirty => {}
            _ = ctx.shutdown.cancelled() => {
                tracker.flush();
                return;
            }
        }
    }
}

/// Records what the watchers find.
pub(super) struct Arrivals {
    pub(super) ctx: Context,
    pub(super) tracker: Arc<Tracker>,
    pub(super) board: Arc<RouteBoard>,
    pub(super) routes: HashSet<(String, String)>,
    /// `canary.route_histograms`: the per-route histogram is observed too.
    pub(super) route_histograms: bool,
    /// Judges each delivered canary on the mailbox providers' sender requirements.
    pub(super) judge: Arc<Judge>,
}

impl Sightings for Arrivals {
    fn found(&self, f: Found) -> Verdict {
        let m = &self.ctx.metrics.canary;
        match self.tracker.sighted(&f.token, f.arrived, f.seen) {
            Sighting::Delivered { flight, latency } => {
                if !self
                    .routes
                    .contains(&(flight.provider.clone(), flight.seed.clone()))
                {
                    return Verdict::Remove;
                }
                let labels = [flight.provider.as_str(), flight.seed.as_str()];
                m.in_flight
                    .with_label_values(&labels)
                    .set(self.tracker.in_flight_of(&flight.provider, &flight.seed));
                let placement = f.role.as_str();
                m.delivered
                    .with_label_values(&[labels[0], labels[1], placement])
                    .inc();
                m.provider_delivery_duration
                    .with_label_values(&[labels[0]])
                    .observe(latency);
                m.seed_delivery_duration
                    .with_label_values(&[labels[1]])
                    .observe(latency);
                m.last_delivery_duration
                    .with_label_values(&labels)
                    .set(latency);
                if self.route_histograms {
                    m.delivery_duration
                        .with_label_values(&labels)
                        .observe(latency);
                }
                m.detected
                    .with_label_values(&[labels[1], f.via.as_str()])
                    .inc();
                let inbox = f.role == Role::Inbox;
                m.success.with_label_values(&labels).set(i64::from(inbox));
                if inbox {
                    m.last_success.with_label_values(&labels).set(f.arrived);
                }
                if flight.seed != f.seed {
                    tracing::warn!(token = %f.token, expected = %flight.seed, found_in = %f.seed, "canary found in another seed than it was sent to");
                }
                crate::canary::analyze::record(
                    &self.ctx,
                    &flight.provider,
                    &flight.seed,
                    &f.headers,
                );
                // The DNS facts are looked up off the watcher's task.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let judge = self.judge.clone();
                    let (p, s) = (flight.provider.clone(), flight.seed.clone());
                    let headers = f.headers.clone();
                    let now = self.ctx.clock.unix() as i64;
                    rt.spawn(async move { judge.judge(&p, &s, &headers, now).await });
                }
                tracing::info!(
                    provider = %flight.provider,
                    seed = %flight.seed,
                    placement,
                    path = f.via.as_str(),
                    latency_seconds = latency,
                    token = %f.token,
                    noticed_at = f.arrived,
                    recorded_at = self.ctx.clock.unix(),
                    "canary delivered"
                );
                self.board.delivered(
                    &flight.provider,
                    &flight.seed,
                    f.arrived,
                    latency,
                    placement,
                );
                Verdict::Remove
            }
            Sighting::Late { provider, seed } => {
                m.late.with_label_values(&[&provider, &seed]).inc();
                tracing::warn!(provider = %provider, seed = %seed, token = %f.token, "canary arrived after it was counted lost");
                Verdict::Remove
            }
            Sighting::Duplicate => Verdict::Remove,
            Sighting::Sending => Verdict::Retry,
            Sighting::Unknown => Verdict::Keep,
        }
    }

    fn awaiting(&self, seed: &str) -> bool {
        self.tracker.awaiting(seed)
    }

    fn signal(&self, seed: &str) -> Arc<tokio::sync::Notify> {
        self.tracker.signal(seed)
    }
}

/// Ties the bounces the reports check read to their canaries: a canary in flight ends as
/// bounced at once (not lost at its deadline); a bounce for no canary of ours is counted as
/// unattributed, never given to a route.
pub(super) async fn bounces(
    ctx: Context,
    tracker: Arc<Tracker>,
    board: Arc<RouteBoard>,
    routes: HashSet<(String, String)>,
) {
    loop {
        for b in ctx.observed.take_bounces() {
            bounce(&ctx, &tracker, &board, &routes, &b);
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.observed.bounce_signal().notified() => {}
        }
    }
}

fn bounce(
    ctx: &Context,
    tracker: &Tracker,
    board: &RouteBoard,
    routes: &HashSet<(String, String)>,
    b: &crate::observed::BounceEvent,
) {
    let m = &ctx.metrics.canary;
    let now = ctx.clock.unix();
    let (class, reason) = (b.class.as_str(), b.reason.as_str());
    let why = format!("bounced: {} {reason} ({})", b.status, b.diagnostic);
    for token in &b.tokens {
        let (provider, seed, ended) = match tracker.bounced(token, now) {
            Bounced::Ended(f) => (f.provider, f.seed, true),
            Bounced::AfterLoss { provider, seed } => (provider, seed, false),
            Bounced::Done => return,
            Bounced::Unknown => continue,
        };
        if !routes.contains(&(provider.clone(), seed.clone())) {
            return;
        }
        m.bounced
            .with_label_values(&[&provider, &seed, class, reason])
            .inc();
        m.in_flight
            .with_label_values(&[&provider, &seed])
            .set(tracker.in_flight_of(&provider, &seed));
        if ended {
            m.success.with_label_values(&[&provider, &seed]).set(0);
            board.bounced(&provider, &seed, now, &why);
        }
        tracing::warn!(
            provider = %provider,
            seed = %seed,
            token = %token,
            status = %b.status,
            class,
            reason,
            reporting_mta = %b.reporting_mta,
            diagnostic = %b.diagnostic,
            after_loss = !ended,
            "canary bounced"
        );
        return;
    }
    m.bounces_unattributed
        .with_label_values(&[class, reason])
        .inc();
    tracing::info!(status = %b.status, reason, reporting_mta = %b.reporting_mta, "a bounce for no canary of this exporter (not attributed)");
}
