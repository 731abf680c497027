//! The canaries in flight: sent, not yet seen in their seed, not yet lost.
//!
//! Kept in memory and in the state directory (`canaries.json`, replaced atomically), so after a
//! restart the canaries sent before it are still awaited: not lost, not forgotten. Writes are
//! coalesced (a flush at most every second, and at shutdown). Tokens of canaries counted lost
//! are remembered for a day so a late arrival is counted late; tokens of delivered canaries are
//! remembered for an hour so a second sighting (another folder, a restart before cleanup) is
//! not counted twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

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

#[derive(Default)]
struct Inner {
    /// Tokens whose send is under way (not persisted: a canary whose send did not finish
    /// before a crash is neither delivered nor lost).
    sending: HashMap<String, String>,
    in_flight: HashMap<String, InFlight>,
    lost: HashMap<String, Gone>,
    done: HashMap<String, Gone>,
    dirty: bool,
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
}

impl Tracker {
    /// Loads the canaries in flight from the state directory. A damaged file is set aside
    /// (renamed with a `.damaged` suffix) and reported, never fatal.
    pub fn load(state: StateDir) -> Tracker {
        let mut inner = Inner::default();
        match state.read(FILE) {
            Ok(Some(bytes)) => match serde_json::from_slice::<Persisted>(&bytes) {
                Ok(p) => {
                    inner.in_flight = p
                        .in_flight
                        .into_iter()
                        .map(|f| (f.token.clone(), f))
                        .collect();
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
        Sending {
            tracker: self,
            token: token.to_string(),
        }
    }

    pub fn add(&self, f: InFlight) {
        let mut i = self.lock();
        i.sending.remove(&f.token);
        i.in_flight.insert(f.token.clone(), f);
        i.dirty = true;
        drop(i);
        self.changed.notify_waiters();
    }

    /// Records a sighting of `token`: estimated to have arrived at unix time `at`, and seen
    /// for certain by `seen` (see [`latency`]).
    pub fn sighted(&self, token: &str, at: f64, seen: f64) -> Sighting {
        let mut i = self.lock();
        if let Some(f) = i.in_flight.remove(token) {
            i.done.insert(
                token.to_string(),
                Gone {
                    provider: f.provider.clone(),
                    seed: f.seed.clone(),
                    at,
                },
            );
            i.dirty = true;
            drop(i);
            self.changed.notify_waiters();
            let latency = latency(f.data_done, at, seen);
            return Sighting::Delivered { flight: f, latency };
        }
        if let Some(g) = i.lost.remove(token) {
            i.done.insert(token.to_string(), Gone { at, ..g.clone() });
            i.dirty = true;
            return Sighting::Late {
                provider: g.provider,
                seed: g.seed,
            };
        }
        if i.done.contains_key(token) {
            return Sighting::Duplicate;
        }
        if i.sending.contains_key(token) {
            return Sighting::Sending;
        }
        Sighting::Unknown
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
            if let Some(f) = i.in_flight.remove(&t) {
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

    /// Canaries in flight per (provider, seed).
    pub fn in_flight_by_route(&self) -> HashMap<(String, String), i64> {
        let mut m = HashMap::new();
        for f in self.lock().in_flight.values() {
            *m.entry((f.provider.clone(), f.seed.clone())).or_insert(0) += 1;
        }
        m
    }

    /// Whether a canary to `seed` is in flight or being sent.
    pub fn awaiting(&self, seed: &str) -> bool {
        let i = self.lock();
        i.sending.values().any(|s| s == seed) || i.in_flight.values().any(|f| f.seed == seed)
    }

    pub fn in_flight_count(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Drops canaries of routes no longer configured (after a reload).
    pub fn retain_routes(&self, routes: &HashSet<(String, String)>) {
        let mut i = self.lock();
        let before = i.in_flight.len();
        i.in_flight
            .retain(|_, f| routes.contains(&(f.provider.clone(), f.seed.clone())));
        if i.in_flight.len() != before {
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
mod tests {
    use super::*;

    fn dir(tag: &str) -> StateDir {
        let d = std::env::temp_dir().join(format!("dx-tracker-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        StateDir::open(&d).unwrap()
    }

    fn flight(token: &str, deadline: f64) -> InFlight {
        InFlight {
            token: token.into(),
            provider: "p".into(),
            seed: "s".into(),
            sent_at: 100.0,
            data_done: 101.0,
            deadline,
            uncertain: false,
        }
    }

    #[test]
    fn delivered_once_then_duplicate() {
        let t = Tracker::load(dir("dup"));
        t.add(flight("a", 1000.0));
        assert_eq!(
            t.sighted("a", 103.5, 103.5),
            Sighting::Delivered {
                flight: flight("a", 1000.0),
                latency: 2.5
            }
        );
        assert_eq!(t.sighted("a", 104.0, 104.0), Sighting::Duplicate);
        assert_eq!(t.sighted("zzz", 104.0, 104.0), Sighting::Unknown);
        assert!(t.is_known("a") && !t.is_known("zzz"));
    }

    #[test]
    fn latency_is_never_zero_for_a_canary_that_arrived_after_its_reply() {
        // Noticed as it arrived.
        assert_eq!(latency(100.25, 100.75, 100.75), 0.5);
        // Seen before its final reply was read: it was there at once.
        assert_eq!(latency(100.25, 100.0, 100.0), 0.0);
        // A scan's INTERNALDATE estimate (end of its second) after the reply: that.
        assert_eq!(latency(100.25, 101.0, 160.0), 0.75);
        // One at or before the reply (server clock behind) says nothing: the time seen.
        assert_eq!(latency(100.25, 100.0, 160.0), 59.75);
        assert_eq!(latency(100.25, 100.25, 160.0), 59.75);
    }

    #[test]
    fn lost_after_deadline_then_late() {
        let t = Tracker::load(dir("late"));
        t.add(flight("a", 200.0));
        t.add(flight("b", 300.0));
        assert_eq!(t.expire(199.0, |_| true), vec![]);
        assert_eq!(t.next_deadline(), Some(200.0));
        assert_eq!(t.expire(200.0, |_| true), vec![flight("a", 200.0)]);
        assert_eq!(t.in_flight_count(), 1);
        assert_eq!(t.lost_since(200.0), vec![("p".into(), "s".into())]);
        assert_eq!(t.lost_since(200.5), vec![]);
        // Not lost until its seed has been looked at since the deadline.
        t.add(flight("d", 210.0));
        assert_eq!(t.expire(215.0, |_| false), vec![]);
        assert_eq!(
            t.expire(216.0, |f| f.token == "d"),
            vec![flight("d", 210.0)]
        );
        assert_eq!(
            t.sighted("a", 250.0, 250.0),
            Sighting::Late {
                provider: "p".into(),
                seed: "s".into()
            }
        );
        assert_eq!(t.sighted("a", 251.0, 251.0), Sighting::Duplicate);
        // Lost tokens are forgotten after a day.
        t.expire(300.0, |_| true);
        t.add(flight("c", 400.0));
        t.expire(400.0, |_| true);
        t.expire(400.0 + KEEP_LOST_SECONDS, |_| true);
        assert_eq!(
            t.sighted(
                "c",
                400.0 + KEEP_LOST_SECONDS + 1.0,
                400.0 + KEEP_LOST_SECONDS + 1.0
            ),
            Sighting::Unknown
        );
    }

    #[test]
    fn survives_a_restart() {
        let d = dir("restart");
        let t = Tracker::load(d.clone());
        t.add(flight("a", 1000.0));
        t.add(flight("b", 1000.0));
        assert_eq!(
            t.sighted("b", 105.0, 105.0),
            Sighting::Delivered {
                flight: flight("b", 1000.0),
                latency: 4.0
            }
        );
        t.flush();
        drop(t);
        let t = Tracker::load(d);
        assert_eq!(t.in_flight_count(), 1);
        assert!(matches!(
            t.sighted("a", 110.0, 110.0),
            Sighting::Delivered { .. }
        ));
        assert_eq!(
            t.sighted("b", 110.0, 110.0),
            Sighting::Duplicate,
            "done tokens survive too"
        );
    }

    #[test]
    fn damaged_state_is_set_aside() {
        let d = dir("damaged");
        d.write_atomic(FILE, b"{not json").unwrap();
        let t = Tracker::load(d.clone());
        assert_eq!(t.in_flight_count(), 0);
        assert!(d.path().join("canaries.json.damaged").exists());
    }

    #[tokio::test]
    async fn settled_waits_for_the_last_canary() {
        let t = std::sync::Arc::new(Tracker::load(dir("settle")));
        t.add(flight("a", 1000.0));
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.settled().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        t.sighted("a", 101.0, 101.0);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_canary_seen_while_being_sent_is_ours_and_counted_once_added() {
        let t = Tracker::load(dir("sending"));
        let f = flight("tok-s", 1000.0);
        {
            let _guard = t.sending("tok-s", "s");
            assert_eq!(t.sighted("tok-s", 99.0, 99.0), Sighting::Sending);
            assert!(t.awaiting("s") && !t.awaiting("other"));
            assert_eq!(t.in_flight_count(), 0, "not in flight before the send ends");
            t.add(f.clone());
        }
        match t.sighted("tok-s", 102.0, 102.0) {
            Sighting::Delivered { flight, latency } => {
                assert_eq!(flight, f);
                assert_eq!(latency, 1.0);
            }
            other => panic!("{other:?}"),
        }
        // A send that ends without the message accepted forgets the token.
        drop(t.sending("tok-f", "s"));
        assert_eq!(t.sighted("tok-f", 1.0, 1.0), Sighting::Unknown);
        assert!(!t.is_known("tok-f"));
    }
}
