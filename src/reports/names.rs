//! Bounded label values from attacker-controlled reports.
//!
//! Anyone can mail a report, so nothing in one becomes a label as written: a source IP is
//! named by the configured `[[reports.source_map]]` networks or by the sending IPs the
//! canaries observed for each provider (else `unknown`); a reporter is reduced to the
//! organizational domain of its contact address (else of its name, else `unknown`); and a
//! policy domain is kept only when it is one of the configured `[[domains]]`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::align::{normalize_domain, organizational_domain};
use super::model::{AggregateReport, Report, TlsReport};
use crate::config::{SourceMapEntry, UnknownDomains, parse_cidr};

/// Label of a source no network or observed IP names.
pub const UNKNOWN: &str = "unknown";
/// Label of values folded together: unconfigured domains and values past the label limit.
pub const OTHER: &str = "other";

/// Names sending sources by their IP.
#[derive(Debug, Clone)]
pub struct SourceNames {
    /// Index 0 is `unknown`.
    names: Vec<String>,
    /// Networks in configuration order: (network, prefix length, name index).
    nets: Vec<(IpAddr, u8, u16)>,
    exact: HashMap<IpAddr, u16>,
}

impl Default for SourceNames {
    fn default() -> Self {
        SourceNames::new(&[], &[])
    }
}

impl SourceNames {
    /// From the configured map (first match wins) and the providers' observed sending IPs
    /// (exact addresses, used when no network matches).
    pub fn new(map: &[SourceMapEntry], observed: &[(String, IpAddr)]) -> SourceNames {
        let mut s = SourceNames {
            names: vec![UNKNOWN.to_string()],
            nets: Vec::new(),
            exact: HashMap::new(),
        };
        for entry in map {
            let idx = s.index_of(&entry.name.0);
            for c in &entry.cidrs {
                if let Some((ip, len)) = parse_cidr(c) {
                    s.nets.push((canonical_ip(ip), len, idx));
                }
            }
        }
        for (provider, ip) in observed {
            let idx = s.index_of(provider);
            s.exact.entry(canonical_ip(*ip)).or_insert(idx);
        }
        s
    }

    fn index_of(&mut self, name: &str) -> u16 {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i as u16,
            None if self.names.len() < usize::from(u16::MAX) => {
                self.names.push(name.to_string());
                (self.names.len() - 1) as u16
            }
            None => 0,
        }
    }

    /// The index of the source `ip` belongs to (0 = unknown).
    pub fn lookup(&self, ip: Option<IpAddr>) -> u16 {
        let Some(ip) = ip.map(canonical_ip) else {
            return 0;
        };
        for &(net, len, idx) in &self.nets {
            if in_net(ip, net, len) {
                return idx;
            }
        }
        self.exact.get(&ip).copied().unwrap_or(0)
    }

    /// The label of a source index.
    pub fn name(&self, idx: u16) -> &str {
        self.names
            .get(usize::from(idx))
            .map_or(UNKNOWN, String::as_str)
    }
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether `s` is a plausible DNS domain with at least two labels.
fn domain_like(s: &str) -> bool {
    s.contains('.') && crate::config::check_host(s).is_ok() && s.parse::<IpAddr>().is_err()
}

/// The `reporter` label: the organizational domain of the reporter's contact (an address,
/// `mailto:` or `https://` URL), else of its name when that is a domain, else `unknown`.
pub fn reporter_label(contact: &str, name: &str) -> String {
    let contact = contact.trim();
    let host = if let Some(rest) = contact
        .strip_prefix("https://")
        .or_else(|| contact.strip_prefix("http://"))
    {
        rest.split(['/', ':', '?', '#']).next().unwrap_or("")
    } else {
        let c = contact.strip_prefix("mailto:").unwrap_or(contact);
        c.rsplit_once('@').map_or("", |(_, d)| d)
    };
    let host = normalize_domain(host.trim_end_matches('>'));
    if domain_like(&host) {
        return organizational_domain(&host).to_string();
    }
    let name = normalize_domain(name);
    if domain_like(&name) {
        return organizational_domain(&name).to_string();
    }
    UNKNOWN.to_string()
}

/// The reporter of a report: the one definition used by the `reporter` label, `parse-report`
/// and the landing page (see [`reporter_label`]).
impl Report {
    pub fn reporter(&self) -> String {
        match self {
            Report::Dmarc(r) => r.reporter(),
            Report::Tls(r) => r.reporter(),
            Report::Bounce(d) => d.reporting_mta.clone(),
            Report::Feedback(f) => f.reporter.clone(),
        }
    }

    /// The organization's name as the report writes it (`Outlook.com`, `WEB.DE`).
    pub fn org_name(&self) -> &str {
        match self {
            Report::Dmarc(r) => &r.org_name,
            Report::Tls(r) => &r.organization_name,
            Report::Bounce(d) => &d.reporting_mta,
            Report::Feedback(f) => &f.reporter,
        }
    }
}

impl AggregateReport {
    /// Who sent the report, as one value however the receiver spells its name: the
    /// organizational domain of the report's contact address (`<email>`), lower case
    /// (`noreply@dmarc.microsoft.com` → `microsoft.com`, whether `<org_name>` says `Outlook.com`
    /// or `Microsoft Corporation`); else of `<org_name>` when that is a domain; else `unknown`.
    pub fn reporter(&self) -> String {
        reporter_label(&self.email, &self.org_name)
    }
}

impl TlsReport {
    /// Who sent the report: the organizational domain of `contact-info` (an address or URL),
    /// else of `organization-name` when that is a domain, else `unknown` (as for DMARC).
    pub fn reporter(&self) -> String {
        reporter_label(
            self.contact_info.as_deref().unwrap_or(""),
            &self.organization_name,
        )
    }
}

/// Maps policy domains to the `domain` label.
#[derive(Debug, Clone, Default)]
pub struct Domains {
    configured: HashSet<String>,
    ignore_unknown: bool,
}

impl Domains {
    pub fn new<'a>(
        configured: impl IntoIterator<Item = &'a str>,
        unknown: UnknownDomains,
    ) -> Domains {
        Domains {
            configured: configured.into_iter().map(normalize_domain).collect(),
            ignore_unknown: unknown == UnknownDomains::Ignore,
        }
    }

    /// The label for `domain`: itself when configured, `other` for the rest, or `None` when
    /// reports for unconfigured domains are ignored.
    pub fn label(&self, domain: &str) -> Option<String> {
        let d = normalize_domain(domain);
        if self.configured.contains(&d) {
            Some(d)
        } else if self.ignore_unknown {
            None
        } else {
            Some(OTHER.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Name;

    fn entry(name: &str, cidrs: &[&str]) -> SourceMapEntry {
        SourceMapEntry {
            name: Name(name.into()),
            cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn sources_by_network_then_observed_ip() {
        let observed = vec![
            ("ses".to_string(), "198.51.100.7".parse().unwrap()),
            ("brevo".to_string(), "192.0.2.99".parse().unwrap()),
        ];
        let s = SourceNames::new(
            &[
                entry("brevo", &["192.0.2.0/24", "2001:db8::/32"]),
                entry("office", &["203.0.113.5"]),
            ],
            &observed,
        );
        let name = |ip: &str| s.name(s.lookup(ip.parse().ok()));
        assert_eq!(name("192.0.2.200"), "brevo");
        assert_eq!(name("::ffff:192.0.2.1"), "brevo");
        assert_eq!(name("2001:db8:1::5"), "brevo");
        assert_eq!(name("203.0.113.5"), "office");
        assert_eq!(name("203.0.113.6"), "unknown");
        assert_eq!(name("198.51.100.7"), "ses");
        assert_eq!(name("not an ip"), "unknown");
        assert_eq!(s.lookup(None), 0);
    }

    #[test]
    fn reporters_are_reduced_to_organizational_domains() {
        assert_eq!(
            reporter_label("noreply-dmarc-support@google.com", "google.com"),
            "google.com"
        );
        assert_eq!(
            reporter_label("noreply-dmarc@sicher.GMX.net", "GMX"),
            "gmx.net"
        );
        assert_eq!(reporter_label("", "Mail.Ru"), "mail.ru");
        assert_eq!(reporter_label("mailto:tls@corp.mail.ru", "x"), "mail.ru");
        assert_eq!(
            reporter_label("https://reports.example.co.uk/x", "x"),
            "example.co.uk"
        );
        assert_eq!(reporter_label("<bad-xml@bad-xml.net>", "x"), "bad-xml.net");
        assert_eq!(reporter_label("", "Google Inc."), "unknown");
        assert_eq!(reporter_label("x@1.2.3.4", "<script>"), "unknown");
    }

    #[test]
    fn unconfigured_domains_are_other_or_ignored() {
        let d = Domains::new(["Example.com"], UnknownDomains::Other);
        assert_eq!(d.label("EXAMPLE.COM.").as_deref(), Some("example.com"));
        assert_eq!(d.label("stranger.example").as_deref(), Some("other"));
        let d = Domains::new(["example.com"], UnknownDomains::Ignore);
        assert_eq!(d.label("stranger.example"), None);
    }
}
