//! The canaries in flight: sent, not yet seen in their seed, not yet lost.
//!
//! Kept in memory and in the state directory (`canaries.json`, replaced atomically), so after a
//! restart the canaries sent before it are still awaited: not lost, not forgotten. Writes are
//! coalesced (a flush at most every second, and at shutdown). Tokens of canaries counted lost
//! are remembered for a day so a late arrival is counted late; tokens of delivered canaries are
//! remembered for an hour so a second sighting (another folder, a restart before cleanup) is
//! not counted twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::state::StateDir;

pub const FILE: &str = "canaries.json";
const KEEP_LOST_SECONDS: f64 = 86_400.0;
const KEEP_DONE_SECONDS: f64 = 3_600.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub token: String,
    pub provider: String,
    pub seed: String,
    /// Unix time the send started.
    pub sent_at: f64,
    /// Unix time of the final reply to the message: latency is measured from here.
    pub data_done: f64,
    /// Unix time after which the canary is lost.
    pub deadline: f64,
    /// The final reply never came; the canary may or may not arrive.
    pub uncertain: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Gone {
    provider: String,
    seed: String,
    at: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    in_flight: Vec<InFlight>,
    lost: Vec<(String, Gone)>,
    done: Vec<(String, Gone)>,
}

/// What a sighting of a token means.
#[derive(Debug, Clone, PartialEq)]
pub enum Sighting {
    /// First sighting of a canary in flight; `latency` in seconds from its final reply.
    Delivered { flight: InFlight, latency: f64 },
    /// Seen after it had been counted lost.
    Late { provider: String, seed: String },
    /// Ours, but its send has not finished yet (the receiver can deliver a message before
    /// the sender has read the final reply): look again shortly.
    Sending,
    /// Already counted.
    Duplicate,
    /// Not ours (another instance's, or older than memory).
    Unknown,
}

/// What a bounce for a token means; see [`Tracker::bounced`].
#[derive(Debug, Clone, PartialEq)]
pub enum Bounced {
    /// A canary in flight: it ends as bounced.
    Ended(InFlight),
    /// Already counted lost (the bounce came after its deadline).
    AfterLoss { provider: String, seed: String },
    /// Delivered or bounced before.
    Done,
    /// Not one of ours.
    Unknown,
}

/// What ending a token found; see [`Tracker::end`].
enum Ended {
    InFlight(InFlight),
    Lost(Gone),
    Done,
    Unknown,
}

#[derive(Default)]
struct Inner {
    /// Tokens whose send is under way (not persisted: a canary whose send did not finish
    /// before a crash is neither delivered nor lost).
    sending: HashMap<String, String>,
    in_flight: HashMap<String, InFlight>,
    /// Canaries in flight per route and per seed, kept with `in_flight` (so neither the
    /// gauges nor the watchers' "anything awaited?" sweep over every canary).
    by_route: HashMap<(String, String), i64>,
    by_seed: HashMap<String, usize>,
    lost: HashMap<String, Gone>,
    done: HashMap<String, Gone>,
    dirty: bool,
}

impl Inner {
    fn insert(&mut self, f: InFlight) {
        if let Some(old) = self.in_flight.remove(&f.token) {
            self.uncount(&old);
        }
        *self
            .by_route
            .entry((f.provider.clone(), f.seed.clone()))
            .or_insert(0) += 1;
        *self.by_seed.entry(f.seed.clone()).or_insert(0) += 1;
        self.in_flight.insert(f.token.clone(), f);
    }

    fn remove(&mut self, token: &str) -> Option<InFlight> {
        let f = self.in_flight.remove(token)?;
        self.uncount(&f);
        Some(f)
    }

    fn uncount(&mut self, f: &InFlight) {
        let key = (f.provider.clone(), f.seed.clone());
        if let Some(n) = self.by_route.get_mut(&key) {
            *n -= 1;
            if *n <= 0 {
                self.by_route.remove(&key);
            }
        }
        if let Some(n) = self.by_seed.get_mut(&f.seed) {
            *n -= 1;
            if *n == 0 {
                self.by_seed.remove(&f.seed);
            }
        }
    }
}

/// A send under way; see [`Tracker::sending`].
pub struct Sending<'a> {
    tracker: &'a Tracker,
    token: String,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.tracker.lock().sending.remove(&self.token);
    }
}

pub struct Tracker {
    state: StateDir,
    inner: Mutex<Inner>,
    changed: Notify,
    /// Per seed: notified when a send to it starts (see [`Tracker::signal`]).
    signals: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Tracker {
    /// Loads the canaries in flight from the state directory. A damaged file is set aside
    /// (renamed with a `.damaged` suffix) and reported, never fatal.
    pub fn load(state: StateDir) -> Tracker {
        let mut inner = Inner::default();
        match state.read(FILE) {
            Ok(Some(bytes)) => match serde_json::from_slice::<Persisted>(&bytes) {
                Ok(p) => {
                    for f in p.in_flight {
                        inner.insert(f);
                    }
                    inner.lost = p.lost.into_iter().collect();
                    inner.done = p.done.into_iter().collect();
                    tracing::info!(
                        in_flight = inner.in_flight.len(),
                        "canaries in flight restored from the state directory"
                    );
                }
                Err(e) => {
                    let bad = state.path().join(FILE);
                    let aside = state.path().join(format!("{FILE}.damaged"));
                    let _ = std::fs::rename(&bad, &aside);
                    tracing::error!(file = %bad.display(), error = %e, set_aside = %aside.display(), "canary state file is damaged; starting without it");
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read the canary state file; starting without it")
            }
        }
        Tracker {
            state,
            inner: Mutex::new(inner),
            changed: Notify::new(),
            signals: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `token` as being sent until [`Tracker::add`] is called for it or the returned
    /// guard is dropped (a send that failed, or was cancelled, before the message was
    /// accepted). Call it before the first byte of the message goes out.
    pub fn sending(&self, token: &str, seed: &str) -> Sending<'_> {
        self.lock()
            .sending
            .insert(token.to_string(), seed.to_string());
        self.signal(seed).notify_waiters();
        Sending {
            tracker: self,
            token: token.to_string(),
        }
    }

    pub fn add(&self, f: InFlight) {
        let mut i = self.lock();
        i.sending.remove(&f.token);
        i.insert(f);
        i.dirty = true;
        drop(i);
        self.changed.notify_waiters();
    }

    /// Records a sighting of `token`: estimated to have arrived at unix time `at`, and seen
    /// for certain by `seen` (see [`latency`]).
    pub fn sighted(&self, token: &str, at: f64, seen: f64) -> Sighting {
        match self.end(token, at) {
            Ended::InFlight(f) => {
                let latency = latency(f.data_done, at, seen);
                Sighting::Delivered { flight: f, latency }
            }
            Ended::Lost(g) => Sighting::Late {
                provider: g.provider,
                seed: g.seed,
            },
            Ended::Done => Sighting::Duplicate,
            Ended::Unknown if self.lock().sending.contains_key(token) => Sighting::Sending,
            Ended::Unknown => Sighting::Unknown,
        }
    }

    /// Records a bounce for `token` at unix time `at`: a canary in flight ends here (it is not
    /// lost at its deadline); one already counted lost is reported as such; one delivered or
    /// bounced before is [`Bounced::Done`]; a token not ours is [`Bounced::Unknown`].
    pub fn bounced(&self, token: &str, at: f64) -> Bounced {
        match self.end(token, at) {
            Ended::InFlight(f) => Bounced::Ended(f),
            Ended::Lost(g) => Bounced::AfterLoss {
                provider: g.provider,
                seed: g.seed,
            },
            Ended::Done => Bounced::Done,
            Ended::Unknown => Bounced::Unknown,
        }
    }

    /// Ends `token` at `at` (a sighting or a bounce): moves it from in flight, or from lost, to
    /// done.
    fn end(&self, token: &str, at: f64) -> Ended {
        let mut i = self.lock();
        if let Some(f) = i.remove(token) {
            let gone = Gone {
                provider: f.provider.clone(),
                seed: f.seed.clone(),
                at,
            };
            i.done.insert(token.to_string(), gone);
            i.dirty = true;
            drop(i);
            self.changed.notify_waiters();
            return Ended::InFlight(f);
        }
        if let Some(g) = i.lost.remove(token) {
            i.done.insert(token.to_string(), Gone { at, ..g.clone() });
            i.dirty = true;
            return Ended::Lost(g);
        }
        if i.done.contains_key(token) {
            return Ended::Done;
        }
        Ended::Unknown
    }

    /// Whether a token is one of ours (in flight, lost or done): its message may be removed.
    pub fn is_known(&self, token: &str) -> bool {
        let i = self.lock();
        i.in_flight.contains_key(token) || i.lost.contains_key(token) || i.done.contains_key(token)
    }

    /// Moves canaries past their deadline to lost and returns them; forgets old tokens. A
    /// canary is lost only once `looked` says its seed has been searched since its deadline:
    /// one that sits in a watched folder is found, never counted lost.
    pub fn expire(&self, now: f64, looked: impl Fn(&InFlight) -> bool) -> Vec<InFlight> {
        let mut i = self.lock();
        let expired: Vec<String> = i
            .in_flight
            .values()
            .filter(|f| f.deadline <= now && looked(f))
            .map(|f| f.token.clone())
            .collect();
        let mut lost = Vec::with_capacity(expired.len());
        for t in expired {
            if let Some(f) = i.remove(&t) {
                i.lost.insert(
                    t,
                    Gone {
                        provider: f.provider.clone(),
                        seed: f.seed.clone(),
                        at: now,
                    },
                );
                lost.push(f);
            }
        }
        let before = (i.lost.len(), i.done.len());
        i.lost.retain(|_, g| now - g.at < KEEP_LOST_SECONDS);
        i.done.retain(|_, g| now - g.at < KEEP_DONE_SECONDS);
        if !lost.is_empty() || before != (i.lost.len(), i.done.len()) {
            i.dirty = true;
        }
        drop(i);
        if !lost.is_empty() {
            self.changed.notify_waiters();
        }
        lost
    }

    /// The routes (provider, seed) of the canaries counted lost at or after unix time `since`,
    /// one entry per canary (a lost canary seen late since is not in it).
    pub fn lost_since(&self, since: f64) -> Vec<(String, String)> {
        self.lock()
            .lost
            .values()
            .filter(|g| g.at >= since)
            .map(|g| (g.provider.clone(), g.seed.clone()))
            .collect()
    }

    /// Canaries in flight on the route (provider, seed).
    pub fn in_flight_of(&self, provider: &str, seed: &str) -> i64 {
        // One lookup per call; the key is built only to look up.
        let key = (provider.to_string(), seed.to_string());
        self.lock().by_route.get(&key).copied().unwrap_or(0)
    }

    /// The seed's signal: notified whenever a send to it starts, so its watchers can sleep
    /// while nothing to it is awaited.
    pub fn signal(&self, seed: &str) -> Arc<Notify> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(seed.to_string())
            .or_default()
            .clone()
    }

    /// Whether a canary to `seed` is in flight or being sent.
    pub fn awaiting(&self, seed: &str) -> bool {
        let i = self.lock();
        i.by_seed.contains_key(seed) || i.sending.values().any(|s| s == seed)
    }

    pub fn in_flight_count(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Drops canaries of routes no longer configured (after a reload).
    pub fn retain_routes(&self, routes: &HashSet<(String, String)>) {
        let mut i = self.lock();
        let gone: Vec<String> = i
            .in_flight
            .values()
            .filter(|f| !routes.contains(&(f.provider.clone(), f.seed.clone())))
            .map(|f| f.token.clone())
            .collect();
        for t in &gone {
            i.remove(t);
        }
        if !gone.is_empty() {
            i.dirty = true;
        }
    }

    /// The earliest deadline of the canaries in flight.
    pub fn next_deadline(&self) -> Option<f64> {
        self.lock()
            .in_flight
            .values()
            .map(|f| f.deadline)
            .min_by(f64::total_cmp)
    }

    /// Whether the state file is behind what is in memory.
    pub fn dirty(&self) -> bool {
        self.lock().dirty
    }

    /// Resolves at the next change: a canary added, delivered or lost.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Writes the state file if anything changed since the last flush.
    pub fn flush(&self) {
        let snapshot = {
            let mut i = self.lock();
            if !i.dirty {
                return;
            }
            i.dirty = false;
            let mut in_flight: Vec<InFlight> = i.in_flight.values().cloned().collect();
            in_flight.sort_by(|a, b| a.sent_at.total_cmp(&b.sent_at));
            Persisted {
                in_flight,
                lost: i.lost.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                done: i.done.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            }
        };
        let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        if let Err(e) = self.state.write_atomic(FILE, &bytes) {
            tracing::error!(error = %e, "cannot save the canaries in flight; will retry");
            self.lock().dirty = true;
        }
    }

    /// Waits until no canary is in flight (used by `once`).
    pub async fn settled(&self) {
        loop {
            let notified = self.changed.notified();
            if self.in_flight_count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The latency of a canary whose final reply came at `data_done`, estimated to have arrived at
/// `at` and certainly there by `seen` (all unix seconds). An arrival estimate at or before the
/// final reply (an INTERNALDATE, truncated to the second, from a server whose clock is behind)
/// tells nothing: the time it was seen bounds the latency instead. A canary noticed the moment
/// it arrived has `at == seen`; one seen before its final reply was read has latency 0.
pub fn latency(data_done: f64, at: f64, seen: f64) -> f64 {
    if at > data_done {
        at - data_done
    } else {
        (seen - data_done).max(0.0)
    }
}

#[cfg(test)]
mod tests;
