//! DNS checks: the published records of every sending domain and DNS blacklists.
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod mta_sts;
pub mod mx;
pub mod records;
pub mod resolver;
pub mod spf;
pub mod tags;
pub mod tlsrpt;
