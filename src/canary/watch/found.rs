//! What a watcher reports: the folder's role, the path that found a canary, the canary found,
//! and the verdict of the handler that receives it.

use super::*;

/// Which folder of the seed: its role decides the placement of what is found there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Inbox,
    Spam,
}

impl Role {
    /// The `folder` label and the `placement` of canaries found here.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inbox => "inbox",
            Role::Spam => "spam",
        }
    }
}

/// Which path found a canary: the `path` label of `deliverability_canary_detected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The server announced new mail (`EXISTS` in IDLE or in the reply to a command).
    Push,
    /// The watcher looked on its own: every `canary.verify_interval` while canaries are in
    /// flight, at an IDLE refresh, or polling a server without IDLE.
    Poll,
    /// The scan at start-up or after a reconnect.
    Scan,
}

impl Via {
    /// One of [`crate::metrics::canary::DETECTION_PATHS`].
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Push => "push",
            Via::Poll => "poll",
            Via::Scan => "scan",
        }
    }
}

/// How a canary was noticed, which decides its arrival time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noticed {
    /// At start-up (or after a reconnect): it may have arrived while nobody watched, so its
    /// INTERNALDATE is the best arrival time (see [`scan_arrival`]).
    Scan,
    /// Right after the IDLE notification (or poll) at this unix time, by this path.
    At(f64, Via),
}

/// A canary found in a folder.
#[derive(Debug, Clone)]
pub struct Found {
    pub seed: String,
    pub role: Role,
    pub token: String,
    /// Unix time it arrived (see [`Noticed`]).
    pub arrived: f64,
    /// Unix time by which it had arrived for certain: when the watcher saw it (the same as
    /// `arrived` unless found by a scan).
    pub seen: f64,
    /// The server's INTERNALDATE, unix seconds.
    pub internal_date: Option<i64>,
    /// The path that found it.
    pub via: Via,
    /// What its headers say: token, the receiver's verdicts, spam scores, Received chain.
    pub headers: CanaryHeaders,
}

/// What the watcher should do with a canary it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ours: remove it (or move it, per `canary.cleanup`).
    Remove,
    /// Not ours and young: leave it alone (another exporter instance may be waiting for it).
    Keep,
    /// Ours, but its send has not finished: report it again at the next scan, which comes
    /// shortly (see [`RETRY_EVERY`]).
    Retry,
}
