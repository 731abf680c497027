//! MX records (RFC 5321 section 5.1) and null MX (RFC 7505).
//!
//! A sending domain needs a working MX: receivers check that bounces and replies can reach it,
//! and may refuse mail from a domain that publishes a null MX (`MX 0 .`). Every exchange must
//! resolve to at least one A or AAAA address.

use std::net::IpAddr;

use crate::resolver::{Lookup, RType, Rr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    pub preference: u16,
    pub exchange: String,
    pub addrs: Vec<IpAddr>,
}

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        NoMx = "no_mx",
        NullMx = "null_mx",
        UnresolvableExchange = "unresolvable_exchange",
        DnsError = "dns_error",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MxReport {
    /// Real MX records (a null MX is not counted), by preference.
    pub hosts: Vec<MxHost>,
    pub null_mx: bool,
    /// A canonical text of the records, for change detection.
    pub text: Option<String>,
    pub problems: Vec<(Reason, String)>,
}

/// Looks up the MX records of `domain` and the addresses of every exchange.
pub async fn check(dns: &dyn Lookup, domain: &str) -> MxReport {
    let mut rep = MxReport::default();
    let ans = match dns.lookup(domain, RType::Mx).await {
        Ok(a) => a,
        Err(e) if e.is_void() => {
            rep.problems.push((
                Reason::NoMx,
                format!(
                    "{domain} has no MX record; bounces and replies to it rely on its A record"
                ),
            ));
            return rep;
        }
        Err(e) => {
            rep.problems.push((Reason::DnsError, e.to_string()));
            return rep;
        }
    };
    let mut mxs: Vec<(u16, String)> = ans
        .records
        .iter()
        .filter_map(|r| match r {
            Rr::Mx {
                preference,
                exchange,
            } => Some((*preference, exchange.clone())),
            _ => None,
        })
        .collect();
    mxs.sort();
    mxs.dedup();
    rep.text = Some(
        mxs.iter()
            .map(|(p, e)| format!("{p} {e}."))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if mxs.iter().any(|(_, e)| e.is_empty()) {
        rep.null_mx = true;
        let msg = if mxs.len() == 1 {
            format!(
                "{domain} publishes a null MX (accepts no mail); receivers may refuse mail from it"
            )
        } else {
            format!("{domain} mixes a null MX with other MX records (invalid, RFC 7505)")
        };
        rep.problems.push((Reason::NullMx, msg));
        mxs.retain(|(_, e)| !e.is_empty());
    }
    for (preference, exchange) in mxs.into_iter().take(50) {
        let mut addrs = Vec::new();
        let mut failed = None;
        for t in [RType::A, RType::Aaaa] {
            match dns.lookup(&exchange, t).await {
                Ok(a) => addrs.extend(a.ips()),
                Err(e) if e.is_void() => {}
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if addrs.is_empty() {
            match failed {
                Some(e) => rep.problems.push((Reason::DnsError, e)),
                None => rep.problems.push((
                    Reason::UnresolvableExchange,
                    format!("MX {exchange} of {domain} has no A or AAAA record"),
                )),
            }
        }
        rep.hosts.push(MxHost {
            preference,
            exchange,
            addrs,
        });
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::FakeDns;

    #[tokio::test]
    async fn resolves_every_exchange() {
        let dns = FakeDns::new()
            .mx("example.com", 20, "mx2.example.com")
            .mx("example.com", 10, "mx1.example.com")
            .a("mx1.example.com", "192.0.2.1")
            .a("mx1.example.com", "2001:db8::1")
            .mx("half.example", 10, "mx1.example.com")
            .mx("half.example", 20, "gone.example.com");
        let r = check(&dns, "example.com").await;
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(r.hosts[0].exchange, "mx1.example.com");
        assert_eq!(r.hosts[0].addrs.len(), 2);
        assert_eq!(
            r.problems[0].0,
            Reason::UnresolvableExchange,
            "mx2 has no address"
        );
        assert_eq!(
            r.text.as_deref(),
            Some("10 mx1.example.com.\n20 mx2.example.com.")
        );
        let h = check(&dns, "half.example").await;
        assert_eq!(h.problems.len(), 1);
    }

    #[tokio::test]
    async fn null_and_missing_mx() {
        let dns = FakeDns::new()
            .mx("null.example", 0, "")
            .a("nomx.example", "192.0.2.1");
        let r = check(&dns, "null.example").await;
        assert!(r.null_mx);
        assert!(r.hosts.is_empty());
        assert_eq!(r.problems[0].0, Reason::NullMx);
        assert_eq!(
            check(&dns, "nomx.example").await.problems[0].0,
            Reason::NoMx
        );
        assert_eq!(check(&dns, "nx.example").await.problems[0].0, Reason::NoMx);
    }
}
