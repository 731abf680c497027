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
