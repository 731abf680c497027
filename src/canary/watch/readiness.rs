//! Which watchers are up (and which searched when), so the first send round can wait for them
//! and a canary is counted lost only after its folders were searched past its deadline.

use super::*;

/// Which watchers are up, so the first send round can wait for them: a canary that arrives
/// before its folder is watched is only found by the start-up scan, with a coarser arrival
/// time.
#[derive(Default)]
pub struct Readiness {
    state: std::sync::Mutex<ReadyState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct ReadyState {
    /// Watching now.
    up: HashSet<(String, Role)>,
    /// Watching now or has tried and failed: waiting longer for it won't help.
    settled: HashSet<(String, Role)>,
    /// The last error of each watcher not up now.
    errors: HashMap<(String, Role), String>,
    /// When each watcher's last completed search started: anything delivered before then
    /// has been seen.
    looked: HashMap<(String, Role), f64>,
}

impl Readiness {
    pub(super) fn set(&self, seed: &str, role: Role, up: bool) {
        let key = (seed.to_string(), role);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if up {
            s.errors.remove(&key);
            s.up.insert(key.clone())
        } else {
            s.up.remove(&key)
        };
        let settled = s.settled.insert(key);
        drop(s);
        if changed || settled {
            self.changed.notify_waiters();
        }
    }

    /// Records why the watcher of `seed`'s folder is not up.
    pub(super) fn failed(&self, seed: &str, role: Role, error: String) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .insert((seed.to_string(), role), error);
    }

    /// Records that a search of `seed`'s folder, started at unix time `at`, completed.
    pub(super) fn looked(&self, seed: &str, role: Role, at: f64) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .looked
            .insert((seed.to_string(), role), at);
    }

    /// Whether every folder of `seed` that is watched now has been searched by a search that
    /// started at or after unix time `t` (a folder not watched has nothing to wait for).
    pub fn searched_since(&self, seed: &str, t: f64) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        [Role::Inbox, Role::Spam].into_iter().all(|role| {
            let key = (seed.to_string(), role);
            !s.up.contains(&key) || s.looked.get(&key).is_some_and(|at| *at >= t)
        })
    }

    /// Why the watcher of `seed`'s folder is not watching now; `None` when it is.
    pub fn not_watching(&self, seed: &str, role: Role) -> Option<String> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (seed.to_string(), role);
        if s.up.contains(&key) {
            return None;
        }
        Some(
            s.errors
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "not connected yet".into()),
        )
    }

    /// Watchers up now.
    pub fn count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .up
            .len()
    }

    pub(super) fn settled(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .settled
            .len()
    }

    /// Waits until `n` watchers are up or have failed their first attempt, or `limit` has
    /// passed: one broken seed must not hold back every route's first canary.
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if self.settled() >= n {
                return;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return;
            }
        }
    }
}
