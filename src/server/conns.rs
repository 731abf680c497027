//! The table of open connections, and who is shed when it is full.
//!
//! Every accepted connection takes a [`Slot`] until it closes. A connection that has not
//! finished its request headers yet (nor, on TLS, its handshake) is *unfinished*: it costs a
//! socket and a few hundred bytes, and it can be shed. When a bound is reached — open
//! connections ([`Table::admit`]), TLS handshakes in progress ([`Slot::start_tls`]) or the
//! process's file descriptors ([`Table::shed_oldest`]) — the unfinished connection that has
//! waited longest is closed to make room, instead of accept stopping: a client that sends its
//! request at once (Prometheus) is never the oldest unfinished one for long.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::metrics::http::{Dropped, HttpMetrics};

pub(super) struct Table {
    inner: Mutex<Inner>,
    max_open: usize,
    max_tls: usize,
    metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// Open connections, those shed excepted (their tasks close them soon).
    open: usize,
    closing: bool,
    /// Unfinished, no TLS state yet; by accept order (oldest first). The value wakes the
    /// connection's task to close.
    waiting: BTreeMap<u64, Arc<Notify>>,
    /// TLS handshake started, request headers not finished.
    tls: BTreeMap<u64, Arc<Notify>>,
}

/// An open connection's place in the table; dropping it closes the place.
pub(super) struct Slot {
    table: Arc<Table>,
    id: u64,
    shed: Arc<Notify>,
    /// Taken out of the table as served (not shed).
    served: AtomicBool,
}

impl Table {
    /// `max_open`: connections open at once; `max_tls`: TLS connections past their
    /// ClientHello that have not finished their request headers.
    pub(super) fn new(
        max_open: usize,
        max_tls: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Table> {
        Arc::new(Table {
            inner: Mutex::default(),
            max_open: max_open.max(1),
            max_tls: max_tls.max(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn http(&self) -> &HttpMetrics {
        &self.metrics.http
    }

    /// A place for a new connection, unfinished. When the table is full the oldest
    /// unfinished connection is shed for it; `None` (the new connection is to be closed) when
    /// there is none, every open connection being served, or when shutting down.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut g = self.lock();
        if g.closing {
            return None;
        }
        if g.open >= self.max_open && !self.shed_oldest_locked(&mut g) {
            self.http().dropped(Dropped::Refused);
            return None;
        }
        let id = g.next;
        g.next += 1;
        g.open += 1;
        self.http().connections_open.set(g.open as i64);
        let shed = Arc::new(Notify::new());
        g.waiting.insert(id, shed.clone());
        Some(Slot {
            table: self.clone(),
            id,
            shed,
            served: AtomicBool::new(false),
        })
    }

    /// Sheds the oldest unfinished connection (TLS or not); `false` when there is none.
    pub(super) fn shed_oldest(&self) -> bool {
        let mut g = self.lock();
        self.shed_oldest_locked(&mut g)
    }

    fn shed_oldest_locked(&self, g: &mut Inner) -> bool {
        let oldest_plain = g.waiting.keys().next().copied();
        let oldest_tls = g.tls.keys().next().copied();
        let victim = match (oldest_plain, oldest_tls) {
            (Some(p), Some(t)) if t < p => g.tls.remove(&t),
            (Some(p), _) => g.waiting.remove(&p),
            (None, Some(t)) => g.tls.remove(&t),
            (None, None) => None,
        };
        match victim {
            Some(n) => {
                self.shed_locked(g, n);
                true
            }
            None => false,
        }
    }

    /// `n`'s connection, already out of the maps, is shed: it no longer counts as open.
    fn shed_locked(&self, g: &mut Inner, n: Arc<Notify>) {
        n.notify_one();
        g.open -= 1;
        self.http().connections_open.set(g.open as i64);
        self.http().dropped(Dropped::Shed);
    }

    /// Shutting down: every unfinished connection is closed (they have no request to
    /// finish) and no new one is admitted.
    pub(super) fn close_unfinished(&self) {
        let mut g = self.lock();
        g.closing = true;
        for (_, n) in std::mem::take(&mut g.waiting)
            .into_iter()
            .chain(std::mem::take(&mut g.tls))
        {
            n.notify_one();
            g.open -= 1;
        }
        self.http().connections_open.set(g.open as i64);
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize, usize) {
        let g = self.lock();
        (g.open, g.waiting.len(), g.tls.len())
    }
}

impl Slot {
    /// Resolves when the connection was shed (or the server is shutting down): the
    /// connection is to be closed.
    pub(super) async fn shed(&self) {
        self.shed.notified().await
    }

    /// The connection sent its ClientHello and the (costlier) TLS handshake starts. When
    /// `max_tls` handshakes are already under way the oldest of them is shed. `false` when
    /// this connection itself was shed meanwhile.
    pub(super) fn start_tls(&self) -> bool {
        let t = &self.table;
        let mut g = t.lock();
        let Some(n) = g.waiting.remove(&self.id) else {
            return false;
        };
        if g.tls.len() >= t.max_tls
            && let Some((_, oldest)) = g.tls.pop_first()
        {
            t.shed_locked(&mut g, oldest);
        }
        g.tls.insert(self.id, n);
        true
    }

    /// The request headers are complete: the connection is being served and is no longer
    /// shed. `false` when it was shed meanwhile.
    pub(super) fn served(&self) -> bool {
        let mut g = self.table.lock();
        let was_there = g.waiting.remove(&self.id).is_some() || g.tls.remove(&self.id).is_some();
        if was_there {
            self.served.store(true, Ordering::Relaxed);
        }
        was_there
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let t = &self.table;
        let mut g = t.lock();
        let unfinished = g.waiting.remove(&self.id).is_some() || g.tls.remove(&self.id).is_some();
        // A shed connection was counted out when it was shed.
        if unfinished || self.served.load(Ordering::Relaxed) {
            g.open -= 1;
            t.http().connections_open.set(g.open as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_open: usize, max_tls: usize) -> Arc<Table> {
        Table::new(max_open, max_tls, Arc::new(crate::metrics::Metrics::bare()))
    }

    fn is_shed(s: &Slot) -> bool {
        use std::future::Future;
        let mut f = std::pin::pin!(s.shed());
        let waker = std::task::Waker::noop();
        f.as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
    }

    #[test]
    fn a_full_table_sheds_the_oldest_unfinished_connection() {
        let t = table(3, 8);
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        let c = t.admit().unwrap();
        assert!(a.served(), "a is being served: never shed");
        let d = t.admit().unwrap();
        assert!(!is_shed(&a));
        assert!(is_shed(&b), "the oldest unfinished one makes room");
        assert!(!is_shed(&c) && !is_shed(&d));
        assert!(!b.served(), "a shed connection is not served");
        assert_eq!(t.counts(), (3, 2, 0), "b no longer counts");
        drop(b);
        assert_eq!(t.counts(), (3, 2, 0));
        assert_eq!(t.metrics.http.dropped.with_label_values(&["shed"]).get(), 1);
        // Every open connection served: a new one is refused.
        assert!(c.served() && d.served());
        assert!(t.admit().is_none());
        assert_eq!(
            t.metrics.http.dropped.with_label_values(&["refused"]).get(),
            1
        );
        drop((a, c, d));
        assert_eq!(t.counts(), (0, 0, 0));
        assert_eq!(t.metrics.http.connections_open.get(), 0);
    }

    #[test]
    fn tls_handshakes_in_progress_are_bounded_oldest_shed_first() {
        let t = table(100, 2);
        let s: Vec<Slot> = (0..4).map(|_| t.admit().unwrap()).collect();
        assert!(s[0].start_tls() && s[1].start_tls());
        assert!(s[2].start_tls(), "a third handshake sheds the first");
        assert!(is_shed(&s[0]) && !is_shed(&s[1]) && !is_shed(&s[2]));
        assert!(!s[0].start_tls() && !s[0].served());
        assert_eq!(t.counts(), (3, 1, 2));
        // The open bound sheds the oldest unfinished of either kind.
        assert!(t.shed_oldest());
        assert!(is_shed(&s[1]));
        assert!(t.shed_oldest());
        assert!(is_shed(&s[2]));
        assert!(t.shed_oldest());
        assert!(is_shed(&s[3]));
        assert!(!t.shed_oldest(), "nothing left to shed");
        drop(s);
        assert_eq!(t.counts(), (0, 0, 0));
    }

    #[test]
    fn shutting_down_closes_the_unfinished_and_admits_none() {
        let t = table(10, 10);
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        assert!(b.served());
        t.close_unfinished();
        assert!(is_shed(&a) && !is_shed(&b));
        assert!(t.admit().is_none());
        assert_eq!(t.counts(), (1, 0, 0));
        drop((a, b));
        assert_eq!(t.counts(), (0, 0, 0));
    }
}
