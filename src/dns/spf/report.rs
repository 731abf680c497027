//! What an SPF walk gives back: the [`SpfResult`] of `check_host()`, the fixed [`Reason`]s
//! a domain's SPF can be wrong for (metric label values), and the [`SpfReport`] of the
//! analysis of a domain's whole tree. Plain data shared by the walk in
//! [`eval`](super::eval) and its callers.

use std::fmt;

use super::record::Qualifier;

/// The result of `check_host()` (RFC 7208 section 2.6), plus `Unsupported` for records this
/// implementation can't evaluate (macros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError(String),
    PermError(String),
    Unsupported(String),
}

impl SpfResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError(_) => "temperror",
            SpfResult::PermError(_) => "permerror",
            SpfResult::Unsupported(_) => "unsupported",
        }
    }
    pub const ALL: [&'static str; 8] = [
        "none",
        "neutral",
        "pass",
        "fail",
        "softfail",
        "temperror",
        "permerror",
        "unsupported",
    ];
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpfResult::TempError(m) | SpfResult::PermError(m) | SpfResult::Unsupported(m) => {
                write!(f, "{}: {m}", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

crate::label_enum! {
    /// What is wrong with a domain's SPF, as a fixed reason (a metric label) and a message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Reason {
        NoRecord = "no_record",
        MultipleRecords = "multiple_records",
        Syntax = "syntax",
        LookupLimit = "lookup_limit",
        VoidLimit = "void_limit",
        MxLimit = "mx_limit",
        IncludeLoop = "include_loop",
        IncludeMissing = "include_missing",
        UnsupportedMacro = "unsupported_macro",
        PassAll = "pass_all",
        DnsError = "dns_error",
        IpNotPermitted = "ip_not_permitted",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub message: String,
}

/// The analysis of a domain's whole SPF tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfReport {
    /// The domain's own record, as published (for change detection).
    pub record: Option<String>,
    /// DNS-querying terms counted through every include and redirect.
    pub lookups: u32,
    pub void_lookups: u32,
    /// The `all` that ends evaluation: the domain's own, or its redirect target's.
    pub all: Option<Qualifier>,
    pub problems: Vec<Problem>,
}

impl SpfReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}
