//! DNS checks: the published records of every sending domain, and DNS blacklists.
//!
//! Every lookup goes through [`crate::resolver::Lookup`] (the base layer's), answered by hickory-resolver pointed at
//! `dns.nameservers` (tests of the pure logic use an in-memory fake). One file per record
//! kind parses and judges it: [`spf`], [`dkim`], [`dmarc`], [`mx`], [`mta_sts`], [`tlsrpt`]
//! ([`tags`] reads the `k=v;` lists they share); [`records`] runs them all for a domain and
//! records the metrics; [`dnsbl`] (with the list catalogue of `crate::config::dnsbl_lists`) checks blacklists. The
//! scheduled checks `dns` and `dnsbl` live in [`check`], `/probe` in [`probe`].
pub mod check;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod mta_sts;
pub mod mx;
pub mod probe;
pub mod records;
pub mod spf;
pub mod tags;
pub mod tlsrpt;
