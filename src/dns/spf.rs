//! SPF (RFC 7208): parsing a `v=spf1` record, walking it the way a receiver would, and
//! `check_host()` for one IP.
//!
//! [`parse`] turns a record into [`SpfRecord`] with a named [`SyntaxError`] for anything a
//! receiver would call a permerror. [`analyze`] walks the whole tree of a domain (every
//! include and redirect, as if no mechanism matched) and counts what the RFC limits: terms that
//! query DNS (10), void lookups (2) and MX hosts per `mx` (10); it also finds include loops and
//! reports the final `all` qualifier. [`check_host`] evaluates one IP with the same limits and
//! returns pass/fail/... like a receiver. Macros (`%{i}` and friends) are not expanded: a term
//! using one is reported as unsupported, never guessed.
//!
//! The parts: `record` parses the record (pure), `report` holds what a walk gives back
//! ([`SpfResult`], [`Reason`], [`SpfReport`]), and `eval` walks the records over DNS for
//! both [`analyze`] and [`check_host`]. Everything is re-exported here, so callers name
//! `spf::parse`, `spf::analyze`, `spf::SpfResult` and so on.

mod eval;
mod record;
mod report;

pub use eval::{MAX_LOOKUPS, MAX_MX_HOSTS, MAX_VOID_LOOKUPS, analyze, check_host};
pub use record::{
    Directive, Mechanism, Qualifier, SpfRecord, SyntaxError, has_macro, is_spf, parse,
};
pub use report::{Problem, Reason, SpfReport, SpfResult};

#[cfg(test)]
mod tests;
