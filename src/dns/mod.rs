//! DNS checks: the published records of every sending domain and DNS blacklists.
pub mod dkim;
pub mod dnsbl;
pub mod resolver;
pub mod spf;
pub mod tags;
