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
pub(super) async fn deadlines(
    ctx: Context,
    tracker: Arc<Tracker>,
    board: Arc<RouteBoard>,
    ready: Arc<Readiness>,
    grace: Duration,
) {
    let grace = grace.as_secs_f64();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => {
                tracker.flush();
                return;
            }
        }
        let now = ctx.clock.unix();
        let m = &ctx.metrics.canary;
        let looked =
            |f: &InFlight| now >= f.deadline + grace || ready.searched_since(&f.seed, f.deadline);
        for f in tracker.expire(now, looked) {
            let labels = [f.provider.as_str(), f.seed.as_str()];
            m.lost.with_label_values(&labels).inc();
            m.success.with_label_values(&labels).set(0);
            tracing::warn!(provider = %f.provider, seed = %f.seed, token = %f.token, "canary lost: not seen by its deadline");
            board.lost(&f.provider, &f.seed, now);
        }
        let counts = tracker.in_flight_by_route();
        for (p, s) in board.routes() {
            m.in_flight
                .with_label_values(&[&p, &s])
                .set(counts.get(&(p.clone(), s.clone())).copied().unwrap_or(0));
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            tracker.flush();
            last_flush = Instant::now();
        }
    }
}

/// Records what the watchers find.
pub(super) struct Arrivals {
    pub(super) ctx: Context,
    pub(super) tracker: Arc<Tracker>,
    pub(super) board: Arc<RouteBoard>,
    pub(super) routes: HashSet<(String, String)>,
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
                let still = self
                    .tracker
                    .in_flight_by_route()
                    .get(&(flight.provider.clone(), flight.seed.clone()))
                    .copied()
                    .unwrap_or(0);
                m.in_flight.with_label_values(&labels).set(still);
                let placement = f.role.as_str();
                m.delivered
                    .with_label_values(&[labels[0], labels[1], placement])
                    .inc();
                m.delivery_duration
                    .with_label_values(&labels)
                    .observe(latency);
                m.detected
                    .with_label_values(&[labels[0], labels[1], f.via.as_str()])
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
}
