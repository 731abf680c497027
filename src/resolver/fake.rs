//! An in-memory DNS for unit tests: records by (name, type), NXDOMAIN for unknown names,
//! NODATA for known names without the asked type, and injected failures.
use super::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
pub struct FakeDns {
    records: HashMap<(String, RType), Vec<Rr>>,
    failures: HashMap<(String, RType), LookupError>,
    pub queries: AtomicUsize,
    pub log: Mutex<Vec<String>>,
}

impl FakeDns {
    pub fn new() -> Self {
        Self::default()
    }
    fn key(name: &str, t: RType) -> (String, RType) {
        (name.trim_end_matches('.').to_ascii_lowercase(), t)
    }
    pub fn txt(mut self, name: &str, value: &str) -> Self {
        self.records
            .entry(Self::key(name, RType::Txt))
            .or_default()
            .push(Rr::Txt(vec![value.as_bytes().to_vec()]));
        self
    }
    pub fn a(mut self, name: &str, ip: &str) -> Self {
        let rr = match ip.parse::<IpAddr>().expect("test IP") {
            IpAddr::V4(a) => (RType::A, Rr::A(a)),
            IpAddr::V6(a) => (RType::Aaaa, Rr::Aaaa(a)),
        };
        self.records
            .entry(Self::key(name, rr.0))
            .or_default()
            .push(rr.1);
        self
    }
    pub fn mx(mut self, name: &str, pref: u16, exchange: &str) -> Self {
        self.records
            .entry(Self::key(name, RType::Mx))
            .or_default()
            .push(Rr::Mx {
                preference: pref,
                exchange: exchange.to_string(),
            });
        self
    }
    pub fn ptr(mut self, name: &str, target: &str) -> Self {
        self.records
            .entry(Self::key(name, RType::Ptr))
            .or_default()
            .push(Rr::Ptr(target.to_string()));
        self
    }
    pub fn fail(mut self, name: &str, t: RType, e: LookupError) -> Self {
        self.failures.insert(Self::key(name, t), e);
        self
    }
}

impl Lookup for FakeDns {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: RType,
    ) -> BoxFuture<'a, Result<Answer, LookupError>> {
        Box::pin(async move {
            self.queries.fetch_add(1, Ordering::SeqCst);
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {}", rtype.as_str(), name));
            let key = Self::key(name, rtype);
            if let Some(e) = self.failures.get(&key) {
                return Err(e.clone());
            }
            if let Some(r) = self.records.get(&key) {
                return Ok(Answer {
                    records: r.clone(),
                    cnames: Vec::new(),
                    ttl: 300,
                });
            }
            let exists = self.records.keys().any(|(n, _)| *n == key.0);
            if exists {
                Err(LookupError::NoData {
                    name: name.to_string(),
                    rtype: rtype.as_str(),
                    negative_ttl: Some(60),
                })
            } else {
                Err(LookupError::NxDomain {
                    name: name.to_string(),
                    negative_ttl: Some(60),
                })
            }
        })
    }
}
