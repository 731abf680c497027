//! What the canaries learn that other checks use: the public IPs of each provider's sending
//! hosts (from the Received headers of delivered canaries) and the DKIM selectors seen in
//! their signatures. The DNSBL check lists those IPs, the SPF check evaluates them, the report
//! reader names DMARC sources by them. Bounded: a few recent values per key.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

const PER_KEY: usize = 16;

#[derive(Default)]
pub struct Observed {
    inner: Mutex<Data>,
    bounces: Mutex<VecDeque<BounceEvent>>,
    bounce_signal: tokio::sync::Notify,
}

crate::label_enum! {
    /// Why a message bounced, from the enhanced status code (RFC 3463) and the diagnostic.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum BounceReason {
        /// Refused by the receiver's policy (5.7.1 without a more specific cause).
        Policy = "policy",
        /// The sending IP or domain is on a blocklist.
        Blocklist = "blocklist",
        /// SPF, DKIM or DMARC failed (Gmail's 5.7.26, 5.7.27; "unauthenticated").
        Authentication = "authentication",
        /// The sender's reputation (Gmail's 5.7.28 / 4.7.28 aside: "low reputation").
        Reputation = "reputation",
        /// Too much mail too fast ("rate limited", 4.7.28, 421 4.7.0).
        RateLimit = "rate_limit",
        /// The mailbox is full (x.2.2).
        MailboxFull = "mailbox_full",
        /// No such mailbox (5.1.1).
        UnknownUser = "unknown_user",
        Other = "other",
    }
}

crate::label_enum! {
    /// Whether retrying can help: a 5.x.x status is permanent, a 4.x.x one transient.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum BounceClass {
        Permanent = "permanent",
        Transient = "transient",
    }
}

/// Bounces waiting for the canaries; the oldest are dropped beyond this.
pub const MAX_BOUNCES: usize = 1000;

/// One failed recipient of a bounce (a DSN read by the reports check), for the canaries to tie
/// to the canary that caused it. Label values are from closed sets; no address is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceEvent {
    /// Strings that may be the canary's token, most reliable first.
    pub tokens: Vec<String>,
    /// RFC 3463 status, `5.7.1`.
    pub status: String,
    pub class: BounceClass,
    pub reason: BounceReason,
    pub reporting_mta: String,
    /// The remote server's reply, cut short.
    pub diagnostic: String,
}

#[derive(Default)]
struct Data {
    sending_ips: BTreeMap<String, VecDeque<IpAddr>>,
    dkim_selectors: BTreeMap<String, VecDeque<String>>,
}

fn remember<T: PartialEq>(q: &mut VecDeque<T>, v: T) {
    if let Some(pos) = q.iter().position(|x| *x == v) {
        q.remove(pos);
    }
    if q.len() == PER_KEY {
        q.pop_front();
    }
    q.push_back(v);
}

impl Observed {
    /// Records that `provider` sent from `ip` (only public addresses are kept).
    pub fn add_sending_ip(&self, provider: &str, ip: IpAddr) {
        let mut d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        remember(d.sending_ips.entry(provider.to_string()).or_default(), ip);
    }

    /// Every (provider, ip) seen, ordered by provider.
    pub fn sending_ips(&self) -> Vec<(String, IpAddr)> {
        let d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        d.sending_ips
            .iter()
            .flat_map(|(p, ips)| ips.iter().map(move |ip| (p.clone(), *ip)))
            .collect()
    }

    /// Records a DKIM selector seen signing for `domain` (lower-cased).
    pub fn add_dkim_selector(&self, domain: &str, selector: &str) {
        let mut d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        remember(
            d.dkim_selectors
                .entry(domain.to_ascii_lowercase())
                .or_default(),
            selector.to_ascii_lowercase(),
        );
    }

    /// Hands a bounce to the canaries.
    pub fn push_bounce(&self, b: BounceEvent) {
        let mut q = self.bounces.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == MAX_BOUNCES {
            q.pop_front();
        }
        q.push_back(b);
        drop(q);
        self.bounce_signal.notify_one();
    }

    /// The bounces waiting, oldest first.
    pub fn take_bounces(&self) -> Vec<BounceEvent> {
        let mut q = self.bounces.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }

    /// Notified when a bounce is pushed (a permit is kept when nobody waits).
    pub fn bounce_signal(&self) -> &tokio::sync::Notify {
        &self.bounce_signal
    }

    pub fn dkim_selectors(&self, domain: &str) -> Vec<String> {
        let d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        d.dkim_selectors
            .get(&domain.to_ascii_lowercase())
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_unique_values_per_key() {
        let o = Observed::default();
        for i in 0..20u8 {
            o.add_sending_ip("brevo", IpAddr::from([192, 0, 2, i]));
        }
        o.add_sending_ip("brevo", IpAddr::from([192, 0, 2, 10]));
        let ips = o.sending_ips();
        assert_eq!(ips.len(), PER_KEY);
        assert_eq!(
            ips.last().unwrap().1,
            IpAddr::from([192, 0, 2, 10]),
            "re-seen value moves to the end"
        );
        o.add_dkim_selector("Example.COM", "S1");
        o.add_dkim_selector("example.com", "s1");
        assert_eq!(o.dkim_selectors("example.com"), vec!["s1".to_string()]);
    }
}
