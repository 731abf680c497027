//! Watches one folder of one seed mailbox over IMAP and reports every canary that appears.
//!
//! One long-lived connection per watched folder (INBOX, and the spam folder), not one per
//! canary: the cost grows with seeds, not with canaries. The folder is watched with IDLE,
//! re-issued every `canary.idle_refresh` (well inside the 29 minutes after which servers drop
//! it) and followed by a NOOP as a keepalive; a server without IDLE is polled. Push is not
//! trusted alone: while canaries of the seed are in flight the watcher also leaves IDLE every
//! `canary.verify_interval` and searches for new messages itself, so a server that announces
//! nothing (Cyrus without `idled`, or one that only re-checks every minute) delays detection by
//! at most that cadence instead of turning canaries into lost ones. Each canary found says which
//! path found it ([`Via`]). After any error
//! the watcher reconnects with exponential backoff and jitter. Every IMAP command runs under
//! `canary.imap_timeout`.
//!
//! Canaries are found by `UID SEARCH` on the `X-Deliverability-Canary` header, or the token in
//! the Subject where a provider dropped the header. Each one found is handed to the
//! [`Sightings`] handler with its headers, and removed (or moved) when the handler says it is
//! ours. At start-up every canary in the folder is looked at: the ones that arrived while the
//! exporter was down are counted with their INTERNALDATE as arrival time, and unknown ones older
//! than `canary.sweep_older_than` are swept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::{NameAttribute, UnsolicitedResponse};
use futures::StreamExt;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::canary::headers::{self, CanaryHeaders};
use crate::clock::Clock;
use crate::config::{CanaryConfig, Cleanup, SpamFolder};
use crate::imap::{self, Endpoint, Filing, ImapError, ImapErrorKind, ImapSession, step};
use crate::metrics::Metrics;

mod found;
mod readiness;
pub use found::*;
pub use readiness::*;

/// How soon a folder is scanned again when a canary in it was still being sent.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Receives the canaries watchers find.
pub trait Sightings: Send + Sync {
    fn found(&self, f: Found) -> Verdict;

    /// Whether canaries to this seed are in flight (or being sent): its watchers then look
    /// every `canary.verify_interval` whatever the server announces.
    fn awaiting(&self, seed: &str) -> bool;

    /// Notified when a canary to this seed starts being sent: its watchers sleep on it while
    /// nothing is awaited, rather than waking every beat to ask.
    fn signal(&self, seed: &str) -> Arc<tokio::sync::Notify>;
}

pub struct Watcher {
    pub ready: Arc<Readiness>,
    /// The receiver's authserv-id: only its Authentication-Results are trusted.
    pub authserv_id: Option<String>,
    pub seed: String,
    pub role: Role,
    pub endpoint: Endpoint,
    pub spam_folder: SpamFolder,
    pub cfg: CanaryConfig,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub sightings: Arc<dyn Sightings>,
    /// XOAUTH2 with a refresh token: a fresh access token before each login.
    pub tokens: Option<Arc<crate::oauth2::TokenSource>>,
}

/// Names a spam folder commonly has, when the server doesn't mark one `\Junk`.
const SPAM_NAMES: [&str; 7] = [
    "Junk",
    "Spam",
    "[Gmail]/Spam",
    "Junk Email",
    "Junk E-mail",
    "Bulk",
    "Bulk Mail",
];

impl Watcher {
    fn label(&self) -> [&str; 2] {
        [&self.seed, self.role.as_str()]
    }

    /// Resolves when a look of our own is due: a beat while canaries to the seed are awaited.
    /// With none awaited it sleeps until the seed's signal (a send to it starts), then waits a
    /// full beat: idle watchers cost nothing, however many seeds.
    async fn verify_due(&self, beat: &mut tokio::time::Interval, signal: &tokio::sync::Notify) {
        loop {
            let notified = signal.notified();
            if self.sightings.awaiting(&self.seed) {
                beat.tick().await;
                if self.sightings.awaiting(&self.seed) {
                    return;
                }
            } else {
                notified.await;
                beat.reset();
            }
        }
    }

    /// Runs until `shutdown`, reconnecting after errors.
    pub async fn run(self, shutdown: CancellationToken) {
        self.metrics
            .canary
            .init_seed_folder(&self.seed, self.role.as_str());
        let mut backoff = Duration::from_secs(1);
        let mut first = true;
        loop {
            if !first {
                self.metrics
                    .canary
                    .imap_reconnects
                    .with_label_values(&self.label())
                    .inc();
            }
            first = false;
            let started = tokio::time::Instant::now();
            let result = self.session(&shutdown).await;
            self.metrics
                .canary
                .imap_up
                .with_label_values(&self.label())
                .set(0);
            self.ready.set(&self.seed, self.role, false);
            let e = match result {
                Ok(()) => return,
                Err(e) => e,
            };
            if shutdown.is_cancelled() {
                return;
            }
            self.ready.failed(&self.seed, self.role, e.to_string());
            // A session that lasted a while resets the backoff.
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            let wait = backoff.mul_f64(rand::rng().random_range(0.5..1.5));
            tracing::warn!(seed = %self.seed, folder = self.role.as_str(), error = %e, retry_in_seconds = wait.as_secs_f64(), "IMAP watcher lost its session");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(300));
        }
    }

    async fn session(&self, shutdown: &CancellationToken) -> Result<(), ImapError> {
        let limit = self.cfg.imap_timeout.get();
        let mut s = tokio::select! {
            r = self.login(limit) => r?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let folder = match self.role {
            Role::Inbox => "INBOX".to_string(),
            Role::Spam => self.spam_folder_name(&mut s, limit).await?,
        };
        let caps = step("CAPABILITY", limit, s.capabilities()).await?;
        let idle = caps.has_str("IDLE");
        let filing = Filing::of(&caps);
        step("SELECT", limit, s.select(&folder)).await?;
        self.metrics
            .canary
            .imap_up
            .with_label_values(&self.label())
            .set(1);
        let verify = self.cadence(idle);
        self.metrics
            .canary
            .verify_interval
            .with_label_values(&[&self.seed])
            .set(verify.as_secs_f64());
        // A fixed beat, not a sleep restarted after each search: the time searches take does
        // not stretch the cadence.
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + verify, verify);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let signal = self.sightings.signal(&self.seed);
        tracing::info!(seed = %self.seed, folder = %folder, idle, "watching seed folder");

        let mut last_uid = 0u32;
        // Canaries found while still being sent, by UID, with the time and path that first
        // saw them.
        let mut held = HashMap::new();
        let started = self.clock.unix();
        self.scan(&mut s, &mut last_uid, &mut held, Noticed::Scan, filing)
            .await?;
        self.ready.looked(&self.seed, self.role, started);
        let mut hinted = new_mail_hinted(&mut s);
        self.ready.set(&self.seed, self.role, true);
        loop {
            let rescan = hinted;
            let noticed = if hinted {
                // Mail arrived while the last scan ran, and the server said so in a reply to one
                // of its commands: it will not say it again in IDLE, so look now.
                Noticed::At(self.clock.unix(), Via::Push)
            } else if !held.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                    _ = shutdown.cancelled() => {
                        let _ = tokio::time::timeout(limit, s.logout()).await;
                        return Ok(());
                    }
                }
                // Keeps the path that first saw the held canary.
                Noticed::At(self.clock.unix(), Via::Poll)
            } else if idle {
                let mut handle = s.idle();
                step("IDLE", limit, handle.init()).await?;
                let outcome = {
                    let (wait, _stop) = handle.wait_with_timeout(self.cfg.idle_refresh.get());
                    let mut wait = std::pin::pin!(wait);
                    // While canaries are in flight, leave IDLE every `verify` and look: the
                    // server may never announce them.
                    tokio::select! {
                        r = &mut wait => Woke::Idle(r),
                        _ = shutdown.cancelled() => Woke::Shutdown,
                        _ = self.verify_due(&mut beat, &signal) => Woke::Verify,
                    }
                };
                let at = self.clock.unix();
                s = step("DONE", limit, handle.done()).await?;
                match outcome {
                    Woke::Shutdown => {
                        let _ = tokio::time::timeout(limit, s.logout()).await;
                        return Ok(());
                    }
                    Woke::Verify => Noticed::At(at, Via::Poll),
                    Woke::Idle(Err(e)) => return Err(imap::command_error("IDLE", e)),
                    Woke::Idle(Ok(IdleResponse::ManualInterrupt)) => {
                        return Err(ImapError {
                            kind: ImapErrorKind::Network,
                            message: "connection closed during IDLE".into(),
                        });
                    }
                    Woke::Idle(Ok(IdleResponse::Timeout)) => {
                        // Refresh IDLE; the NOOP keeps NATs and the server's timers happy.
                        step("NOOP", limit, s.noop()).await?;
                        Noticed::At(at, Via::Poll)
                    }
                    Woke::Idle(Ok(IdleResponse::NewData(resp))) => {
                        if let Response::MailboxData(MailboxDatum::Exists(_)) = resp.parsed() {
                            Noticed::At(at, Via::Push)
                        } else {
                            // Flags or expunges: nothing new to look for.
                            continue;
                        }
                    }
                }
            } else {
                // Every `poll_interval`, or every `verify` while canaries are in flight.
                let until = tokio::time::Instant::now() + self.cfg.poll_interval.get();
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = self.verify_due(&mut beat, &signal) => {}
                    _ = shutdown.cancelled() => {
                        let _ = tokio::time::timeout(limit, s.logout()).await;
                        return Ok(());
                    }
                }
                step("NOOP", limit, s.noop()).await?;
                Noticed::At(self.clock.unix(), Via::Poll)
            };
            // Hints of mail that came before this scan: the scan finds that mail anyway.
            while s.unsolicited_responses.try_recv().is_ok() {}
            let started = self.clock.unix();
            let found = self
                .scan(&mut s, &mut last_uid, &mut held, noticed, filing)
                .await?;
            self.ready.looked(&self.seed, self.role, started);
            // A server announces new mail before the command that sees it runs, so a scan made
            // for a hint finds something. One that found nothing means the server repeats
            // itself: go back to IDLE rather than scan in a loop.
            hinted = new_mail_hinted(&mut s) && (found > 0 || !rescan);
        }
    }

    /// How often the folder is looked at while canaries are in flight: `canary.verify_interval`,
    /// or `poll_interval` on a server without IDLE when that is shorter.
    fn cadence(&self, idle: bool) -> Duration {
        let verify = self.cfg.verify_interval.get();
        if idle {
            verify
        } else {
            verify.min(self.cfg.poll_interval.get())
        }
    }

    /// Connects and logs in, with a fresh OAuth2 access token when the seed uses one.
    async fn login(&self, limit: Duration) -> Result<ImapSession, ImapError> {
        let Some(tokens) = &self.tokens else {
            return imap::connect(&self.endpoint, limit).await;
        };
        let token = tokens.token(limit).await.map_err(|e| ImapError {
            kind: ImapErrorKind::Auth,
            message: e.to_string(),
        })?;
        let ep = Endpoint {
            secret: token,
            ..self.endpoint.clone()
        };
        let r = imap::connect(&ep, limit).await;
        if matches!(&r, Err(e) if e.kind == ImapErrorKind::Auth) {
            tokens.invalidate().await;
        }
        r
    }

    /// Finds the spam folder: the configured name, else SPECIAL-USE `\Junk`, else a
    /// well-known name.
    async fn spam_folder_name(
        &self,
        s: &mut ImapSession,
        limit: Duration,
    ) -> Result<String, ImapError> {
        let names: Vec<(String, bool)> = {
            let stream = step("LIST", limit, s.list(Some(""), Some("*"))).await?;
            let all: Vec<_> = tokio::time::timeout(limit, stream.collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError {
                    kind: ImapErrorKind::Timeout,
                    message: "LIST: no answer in time".into(),
                })?;
            all.into_iter()
                .filter_map(Result::ok)
                .map(|n| {
                    (
                        n.name().to_string(),
                        n.attributes()
                            .iter()
                            .any(|a| matches!(a, NameAttribute::Junk)),
                    )
                })
                .collect()
        };
        if let SpamFolder::Named(want) = &self.spam_folder {
            return names
                .iter()
                .find(|(n, _)| n == want)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| ImapError {
                    kind: ImapErrorKind::Protocol,
                    message: format!("spam folder {want:?} does not exist in seed {}", self.seed),
                });
        }
        if let Some((n, _)) = names.iter().find(|(_, junk)| *junk) {
            return Ok(n.clone());
        }
        for candidate in SPAM_NAMES {
            if let Some((n, _)) = names.iter().find(|(n, _)| {
                n.eq_ignore_ascii_case(candidate)
                    || n.rsplit(['/', '.'])
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(candidate))
            }) {
                return Ok(n.clone());
            }
        }
        Err(ImapError {
            kind: ImapErrorKind::Protocol,
            message: format!(
                "seed {} has no folder marked \\Junk nor one of the usual spam folder names; set spam_folder",
                self.seed
            ),
        })
    }

    /// Looks for canaries with a UID above `last_uid` and reports them; returns how many
    /// messages it found above `last_uid`. A canary still being sent is kept in `held` (with
    /// the time it was first seen) and `last_uid` stays below it, so that the next scan
    /// reports it again.
    async fn scan(
        &self,
        s: &mut ImapSession,
        last_uid: &mut u32,
        held: &mut HashMap<u32, (f64, Via)>,
        noticed: Noticed,
        filing: Filing,
    ) -> Result<usize, ImapError> {
        let limit = self.cfg.imap_timeout.get();
        let query = format!(
            "UID {}:* OR HEADER {} \"dx-\" SUBJECT \"dx-\"",
            *last_uid + 1,
            crate::canary::token::TOKEN_HEADER
        );
        let mut uids: Vec<u32> = step("UID SEARCH", limit, s.uid_search(&query))
            .await?
            .into_iter()
            .filter(|u| *u > *last_uid)
            .collect();
        // A held message that is gone (expunged by someone else) is not waited for.
        held.retain(|u, _| uids.contains(u));
        if uids.is_empty() {
            return Ok(0);
        }
        let found = uids.len();
        uids.sort_unstable();
        // Bound one round's work; the rest is picked up by the next scan.
        uids.truncate(500);
        let set = imap::uid_set(&uids);
        let fetched: Vec<_> = {
            let stream = step(
                "UID FETCH",
                limit,
                s.uid_fetch(&set, "(UID INTERNALDATE BODY.PEEK[HEADER])"),
            )
            .await?;
            tokio::time::timeout(limit, stream.collect::<Vec<_>>())
                .await
                .map_err(|_| ImapError {
                    kind: ImapErrorKind::Timeout,
                    message: "UID FETCH: no answer in time".into(),
                })?
        };
        let now = self.clock.unix();
        let mut remove = Vec::new();
        for f in fetched {
            let f = f.map_err(|e| imap::command_error("UID FETCH", e))?;
            let Some(uid) = f.uid else { continue };
            *last_uid = (*last_uid).max(uid);
            let headers =
                headers::parse(f.header().unwrap_or_default(), self.authserv_id.as_deref());
            let internal_date = f.internal_date().map(|d| d.timestamp());
            let Some(token) = headers.token.clone() else {
                continue;
            };
            let (arrived, via) = match (held.get(&uid), noticed) {
                (Some(first), _) => *first,
                (None, Noticed::At(t, via)) => (t, via),
                (None, Noticed::Scan) => (scan_arrival(internal_date, now), Via::Scan),
            };
            let verdict = self.sightings.found(Found {
                seed: self.seed.clone(),
                role: self.role,
                token,
                arrived,
                // Only a scan estimates the arrival; the other paths saw it then.
                seen: if via == Via::Scan { now } else { arrived },
                internal_date,
                via,
                headers,
            });
            let old = internal_date
                .is_some_and(|d| now - d as f64 > self.cfg.sweep_older_than.get().as_secs_f64());
            if verdict == Verdict::Retry {
                held.insert(uid, (arrived, via));
            } else {
                held.remove(&uid);
                if verdict == Verdict::Remove || old {
                    remove.push(uid);
                }
            }
        }
        *last_uid = (*last_uid).max(*uids.last().unwrap_or(&0));
        if let Some(first_held) = held.keys().min() {
            *last_uid = (*last_uid).min(first_held - 1);
        }
        if !remove.is_empty() {
            self.remove(s, &remove, filing).await?;
        }
        Ok(found)
    }

    /// Deletes (or moves, with `cleanup = "move"`) the given messages.
    async fn remove(
        &self,
        s: &mut ImapSession,
        uids: &[u32],
        filing: Filing,
    ) -> Result<(), ImapError> {
        let dest = match self.cfg.cleanup {
            Cleanup::Move => self.cfg.move_to.as_deref(),
            Cleanup::Delete => None,
        };
        imap::file_away(s, uids, dest, filing, self.cfg.imap_timeout.get()).await
    }
}

/// The arrival time of a canary found by a scan, seen at `now`: the end of the second of its
/// INTERNALDATE (which has one-second resolution: the message arrived within that second, so
/// the latency is an upper bound accurate to a second, never 0), but never later than `now`;
/// `now` when the server gave no INTERNALDATE.
pub fn scan_arrival(internal_date: Option<i64>, now: f64) -> f64 {
    internal_date.map_or(now, |d| (d as f64 + 1.0).min(now))
}

/// Why an IDLE ended.
enum Woke<R> {
    Idle(R),
    /// Time to look for the canaries in flight.
    Verify,
    Shutdown,
}

/// Empties the session's unsolicited responses and says whether one of them announced new
/// mail (EXISTS or RECENT). A full channel counts as a hint too: async-imap drops what does not
/// fit (it holds 100; moving many canaries brings one EXPUNGE each).
fn new_mail_hinted(s: &mut ImapSession) -> bool {
    let mut hinted = s.unsolicited_responses.is_full();
    while let Ok(r) = s.unsolicited_responses.try_recv() {
        hinted |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    hinted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_counts_as_searched_once_every_watched_folder_was_searched_after_the_time() {
        let r = Readiness::default();
        // Not watched at all: nothing to wait for.
        assert!(r.searched_since("s", 100.0));
        r.set("s", Role::Inbox, true);
        r.set("s", Role::Spam, true);
        assert!(!r.searched_since("s", 100.0));
        r.looked("s", Role::Inbox, 101.0);
        assert!(!r.searched_since("s", 100.0), "the spam folder not yet");
        r.looked("s", Role::Spam, 99.0);
        assert!(
            !r.searched_since("s", 100.0),
            "a search begun before the time"
        );
        r.looked("s", Role::Spam, 100.0);
        assert!(r.searched_since("s", 100.0));
        // A folder whose watcher went down has nothing more to show.
        r.set("s", Role::Inbox, false);
        r.looked("s", Role::Spam, 103.0);
        assert!(
            r.searched_since("s", 102.0),
            "the inbox, down, last looked at 101"
        );
        assert!(r.not_watching("s", Role::Inbox).is_some());
    }

    #[test]
    fn a_scan_dates_a_canary_by_the_end_of_its_internaldate_second_never_after_it_was_seen() {
        // INTERNALDATE 1000 means arrived in [1000, 1001): at the latest 1001.
        assert_eq!(scan_arrival(Some(1000), 5000.0), 1001.0);
        // Found within that same second: not later than seen.
        assert_eq!(scan_arrival(Some(1000), 1000.4), 1000.4);
        assert_eq!(scan_arrival(None, 1234.5), 1234.5);
        // A canary sent at 999.6 (final reply) whose INTERNALDATE second is 999 gets 0.4 s,
        // not the 0.0 the truncated date alone would give.
        let l = crate::canary::tracker::latency(999.6, scan_arrival(Some(999), 2000.0), 2000.0);
        assert!((l - 0.4).abs() < 1e-9, "{l}");
    }
}
