//! DNS lookups as the record checks see them: a small [`Lookup`] trait answering "which records
//! of this type are at this name", with every failure classified ([`LookupError`]: NXDOMAIN,
//! no data, timeout, SERVFAIL, REFUSED, ...) and the TTL of the answer.
//!
//! [`Resolver`] implements it with hickory-resolver pointed at `dns.nameservers` (or, when that
//! list is empty, the `nameserver` lines of `/etc/resolv.conf`); never anything else. Tests of
//! the pure logic use the in-memory `FakeDns` of this module instead. Every name is queried as a
//! fully qualified name, so no search domain is ever appended, and `/etc/hosts` is not read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::client::{Client, ClientHandle};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{DNSClass, Name, RData, RecordType};

use crate::config::DnsConfig;
use crate::schedule::BoxFuture;

/// The record types the checks ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RType {
    A,
    Aaaa,
    Txt,
    Mx,
    Ptr,
}

impl RType {
    fn hickory(self) -> RecordType {
        match self {
            RType::A => RecordType::A,
            RType::Aaaa => RecordType::AAAA,
            RType::Txt => RecordType::TXT,
            RType::Mx => RecordType::MX,
            RType::Ptr => RecordType::PTR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RType::A => "A",
            RType::Aaaa => "AAAA",
            RType::Txt => "TXT",
            RType::Mx => "MX",
            RType::Ptr => "PTR",
        }
    }
}

/// One record of an answer. Names are lower-cased, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rr {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The character-strings of one TXT record, as sent (not yet concatenated).
    Txt(Vec<Vec<u8>>),
    Mx {
        preference: u16,
        exchange: String,
    },
    Ptr(String),
}

impl Rr {
    /// The strings of a TXT record concatenated (RFC 7208 3.3), lossily decoded as UTF-8.
    pub fn txt_joined(&self) -> Option<String> {
        match self {
            Rr::Txt(parts) => Some(String::from_utf8_lossy(&parts.concat()).into_owned()),
            _ => None,
        }
    }
}

/// A successful answer: the records of the asked type (never empty), the CNAMEs followed to
/// reach them, and the smallest TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub records: Vec<Rr>,
    /// Targets of the CNAMEs followed, in order (empty when the name had the data itself).
    pub cnames: Vec<String>,
    pub ttl: u32,
}

impl Answer {
    /// The TXT records, each concatenated.
    pub fn txts(&self) -> Vec<String> {
        self.records.iter().filter_map(Rr::txt_joined).collect()
    }

    pub fn ips(&self) -> Vec<IpAddr> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Rr::A(a) => Some(IpAddr::V4(*a)),
                Rr::Aaaa(a) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .collect()
    }
}

/// Why a lookup has no answer. `NxDomain` and `NoData` are answers from the server; the rest
/// mean the question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{name}: the name does not exist (NXDOMAIN)")]
    NxDomain {
        name: String,
        /// How long the server says the absence may be cached.
        negative_ttl: Option<u32>,
    },
    #[error("{name}: no {rtype} record (the name exists)")]
    NoData {
        name: String,
        rtype: &'static str,
        negative_ttl: Option<u32>,
    },
    #[error("{name}: no answer from the nameservers in time")]
    Timeout { name: String },
    #[error("{name}: the nameserver failed to answer (SERVFAIL)")]
    ServFail { name: String },
    #[error("{name}: the nameserver refused the query (REFUSED)")]
    Refused { name: String },
    #[error("{name}: {detail}")]
    Other { name: String, detail: String },
    #[error("{0:?} is not a valid DNS name")]
    BadName(String),
}

impl LookupError {
    /// NXDOMAIN or NODATA: the DNS says there is nothing (a "void lookup" in SPF terms).
    pub fn is_void(&self) -> bool {
        matches!(
            self,
            LookupError::NxDomain { .. } | LookupError::NoData { .. }
        )
    }

    /// A short, fixed reason for metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            LookupError::NxDomain { .. } => "nxdomain",
            LookupError::NoData { .. } => "nodata",
            LookupError::Timeout { .. } => "timeout",
            LookupError::ServFail { .. } => "servfail",
            LookupError::Refused { .. } => "refused",
            LookupError::Other { .. } | LookupError::BadName(_) => "dns_error",
        }
    }

    /// The negative-caching TTL of an NXDOMAIN or NODATA answer.
    pub fn negative_ttl(&self) -> Option<u32> {
        match self {
            LookupError::NxDomain { negative_ttl, .. }
            | LookupError::NoData { negative_ttl, .. } => *negative_ttl,
            _ => None,
        }
    }
}

/// `192.0.2.1` → `1.2.0.192.<zone>`; IPv6 as 32 reversed nibbles (RFC 5782 section 2.4).
pub fn reverse_name(ip: IpAddr, zone: &str) -> String {
    let mut out = String::with_capacity(72 + zone.len());
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            for b in o.iter().rev() {
                out.push_str(&b.to_string());
                out.push('.');
            }
        }
        IpAddr::V6(v6) => {
            for b in v6.octets().iter().rev() {
                for nibble in [b & 0x0f, b >> 4] {
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    out.push('.');
                }
            }
        }
    }
    out.push_str(zone);
    out
}

/// Anything that answers DNS questions: the real [`Resolver`], or a fake in tests.
/// The TXT records at `name` that `keep` accepts (each record's strings joined); none when the
/// name or the record type doesn't exist (a void lookup).
pub async fn txt_records(
    dns: &dyn Lookup,
    name: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, LookupError> {
    match dns.lookup(name, RType::Txt).await {
        Ok(a) => Ok(a.txts().into_iter().filter(|t| keep(t)).collect()),
        Err(e) if e.is_void() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

pub trait Lookup: Send + Sync {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: RType,
    ) -> BoxFuture<'a, Result<Answer, LookupError>>;
}

/// Errors building the resolver from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error(
        "dns.nameservers is empty and /etc/resolv.conf lists no nameserver; set dns.nameservers"
    )]
    NoNameservers,
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// hickory-resolver pointed at the configured nameservers.
pub struct Resolver {
    inner: TokioResolver,
    /// Bound on one lookup including retries (hickory's own timeout is per attempt).
    overall: Duration,
    /// Per query and nameserver (`dns.timeout`).
    timeout: Duration,
    nameservers: Vec<SocketAddr>,
}

/// The `nameserver` lines of a resolv.conf text, on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then_some(())?;
            let ip: IpAddr = w.next()?.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

impl Resolver {
    /// Builds the resolver from `[dns]`. With `cache_size` 0 hickory keeps no cache of its own
    /// (callers that cache, like the DNSBL check, keep theirs).
    pub fn new(cfg: &DnsConfig, concurrency: usize) -> Result<Resolver, ResolverError> {
        let nameservers = if cfg.nameservers.is_empty() {
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            parse_resolv_conf(&text)
        } else {
            cfg.nameservers.clone()
        };
        if nameservers.is_empty() {
            return Err(ResolverError::NoNameservers);
        }
        let servers = nameservers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.timeout.get();
        opts.attempts = usize::from(cfg.attempts.max(1));
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.max_active_requests = concurrency.max(32);
        opts.preserve_intermediates = true;
        // Every check asks the nameserver afresh: a record changed or a nameserver gone shows at
        // the next run, not after the record's TTL (hickory caches 8,192 answers by default).
        opts.cache_size = 0;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| ResolverError::Build(e.to_string()))?;
        let overall =
            cfg.timeout.get() * u32::from(cfg.attempts.max(1)) + Duration::from_millis(500);
        Ok(Resolver {
            inner,
            overall,
            timeout: cfg.timeout.get(),
            nameservers,
        })
    }

    /// The nameservers queried.
    pub fn nameservers(&self) -> &[SocketAddr] {
        &self.nameservers
    }

    async fn query(&self, name: &str, rtype: RType) -> Result<Answer, LookupError> {
        let fqdn = to_fqdn(name)?;
        if loopback_reverse(&fqdn) {
            return tokio::time::timeout(self.overall, self.query_direct(name, fqdn, rtype))
                .await
                .map_err(|_| LookupError::Timeout {
                    name: name.to_string(),
                })?;
        }
        let result = tokio::time::timeout(self.overall, self.inner.lookup(fqdn, rtype.hickory()))
            .await
            .map_err(|_| LookupError::Timeout {
                name: name.to_string(),
            })?;
        match result {
            Ok(lookup) => answer(name, rtype, lookup.answers()),
            Err(e) => Err(classify(name, rtype, e)),
        }
    }

    /// Asks the nameservers in turn over UDP, bypassing hickory's resolver, which answers the
    /// loopback reverse zones itself (RFC 6761: `localhost` for every 127.0.0.0/8 address).
    /// The configured nameserver is the authority the operator chose; the local test stack
    /// publishes reverse data for 127.0.0.x there.
    async fn query_direct(
        &self,
        name: &str,
        fqdn: Name,
        rtype: RType,
    ) -> Result<Answer, LookupError> {
        let mut last = LookupError::Timeout {
            name: name.to_string(),
        };
        for ns in &self.nameservers {
            let stream = UdpClientStream::builder(*ns, TokioRuntimeProvider::default())
                .with_timeout(Some(self.timeout))
                .build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            let bg = tokio::spawn(bg);
            let response = client
                .query(fqdn.clone(), DNSClass::IN, rtype.hickory())
                .await;
            bg.abort();
            match response {
                Ok(m) => match m.metadata.response_code {
                    ResponseCode::NoError => return answer(name, rtype, &m.answers),
                    ResponseCode::NXDomain => {
                        return Err(LookupError::NxDomain {
                            name: name.to_string(),
                            negative_ttl: None,
                        });
                    }
                    ResponseCode::ServFail => {
                        last = LookupError::ServFail {
                            name: name.to_string(),
                        }
                    }
                    ResponseCode::Refused => {
                        last = LookupError::Refused {
                            name: name.to_string(),
                        }
                    }
                    other => {
                        last = LookupError::Other {
                            name: name.to_string(),
                            detail: other.to_string(),
                        }
                    }
                },
                Err(e) => last = classify(name, rtype, e),
            }
        }
        Err(last)
    }
}

/// Whether hickory's resolver would answer `name` itself: the reverse zones of 127.0.0.0/8
/// and ::1.
fn loopback_reverse(name: &Name) -> bool {
    let n = name.to_ascii().to_ascii_lowercase();
    n.ends_with(".127.in-addr.arpa.")
        || n == "127.in-addr.arpa."
        || n.starts_with("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa")
}

/// The records of the asked type in an answer section; NODATA when there are none.
fn answer(
    name: &str,
    rtype: RType,
    answers: &[hickory_resolver::proto::rr::Record],
) -> Result<Answer, LookupError> {
    let mut records = Vec::new();
    let mut cnames = Vec::new();
    let mut ttl = u32::MAX;
    for r in answers {
        ttl = ttl.min(r.ttl);
        match &r.data {
            RData::A(a) if rtype == RType::A => records.push(Rr::A(a.0)),
            RData::AAAA(a) if rtype == RType::Aaaa => records.push(Rr::Aaaa(a.0)),
            RData::TXT(t) if rtype == RType::Txt => {
                records.push(Rr::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()))
            }
            RData::MX(mx) if rtype == RType::Mx => records.push(Rr::Mx {
                preference: mx.preference,
                exchange: name_str(&mx.exchange),
            }),
            RData::PTR(p) if rtype == RType::Ptr => records.push(Rr::Ptr(name_str(&p.0))),
            RData::CNAME(c) => cnames.push(name_str(&c.0)),
            _ => {}
        }
    }
    if records.is_empty() {
        return Err(LookupError::NoData {
            name: name.to_string(),
            rtype: rtype.as_str(),
            negative_ttl: None,
        });
    }
    Ok(Answer {
        records,
        cnames,
        ttl: if ttl == u32::MAX { 0 } else { ttl },
    })
}

impl Lookup for Resolver {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: RType,
    ) -> BoxFuture<'a, Result<Answer, LookupError>> {
        Box::pin(self.query(name, rtype))
    }
}

/// `name` as an absolute hickory name; rejects what DNS can't carry.
fn to_fqdn(name: &str) -> Result<Name, LookupError> {
    let bad = || LookupError::BadName(name.chars().take(300).collect());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 || !trimmed.is_ascii() {
        return Err(bad());
    }
    let mut n = Name::from_ascii(trimmed).map_err(|_| bad())?;
    n.set_fqdn(true);
    Ok(n)
}

fn name_str(n: &Name) -> String {
    let s = n.to_ascii().to_ascii_lowercase();
    match s.strip_suffix('.') {
        Some(t) => t.to_string(),
        None => s,
    }
}

fn classify(name: &str, rtype: RType, e: NetError) -> LookupError {
    let name = name.to_string();
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            if nr.response_code == ResponseCode::NXDomain {
                LookupError::NxDomain {
                    name,
                    negative_ttl: nr.negative_ttl,
                }
            } else {
                LookupError::NoData {
                    name,
                    rtype: rtype.as_str(),
                    negative_ttl: nr.negative_ttl,
                }
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            LookupError::ServFail { name }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            LookupError::Refused { name }
        }
        NetError::Timeout => LookupError::Timeout { name },
        other => LookupError::Other {
            name,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
pub use fake::FakeDns;

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# c\nsearch example\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(t),
            vec![
                "192.0.2.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn names_are_checked_before_querying() {
        assert!(to_fqdn("example.com").unwrap().is_fqdn());
        assert!(to_fqdn("_dmarc.example.com.").is_ok());
        assert!(to_fqdn("").is_err());
        assert!(to_fqdn(&"a.".repeat(200)).is_err());
        assert!(to_fqdn("ex ample..com").is_err());
        assert!(to_fqdn("exämple.com").is_err());
    }
}
