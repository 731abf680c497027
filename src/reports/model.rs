//! What a report says, as plain values: the DMARC aggregate report's metadata, published
//! policy and records, the TLS-RPT report, and the small closed sets their fields take.
//!
//! Reporters are sloppy, so every enumerated field is read case-insensitively and anything
//! unknown becomes `Other` instead of an error; that keeps label values bounded too. These
//! types are produced by [`super::dmarc`] and [`super::tlsrpt`] and consumed by the counting in
//! [`super::count`] and the `parse-report` command.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One report found in an input: a DMARC aggregate report or an SMTP TLS report.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Dmarc(AggregateReport),
    Tls(TlsReport),
    /// A delivery status notification (a bounce), see [`super::dsn`].
    Bounce(super::dsn::Dsn),
    /// A complaint or a DMARC failure report (ARF), see [`super::feedback`].
    Feedback(super::feedback::FeedbackReport),
}

impl Report {
    /// `dmarc-aggregate` or `tls-rpt`, as `parse-report --json` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Report::Dmarc(_) => "dmarc-aggregate",
            Report::Tls(_) => "tls-rpt",
            Report::Bounce(_) => "dsn",
            Report::Feedback(_) => "arf",
        }
    }
}

/// A DMARC aggregate report (RFC 7489 appendix C, RFC 9990), summarised while streaming: the
/// records themselves are not kept, only their number, their message total and the tallies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregateReport {
    /// `<version>`; absent in the old drafts.
    pub version: Option<String>,
    /// `<org_name>`, or the domain of `<email>` when the reporter left it out.
    pub org_name: String,
    pub email: String,
    pub extra_contact_info: Option<String>,
    pub report_id: String,
    /// `<date_range>` in Unix seconds (0 when missing).
    pub begin: u64,
    pub end: u64,
    /// `<error>` lines of the metadata.
    pub errors: Vec<String>,
    pub generator: Option<String>,
    pub policy: PolicyPublished,
    /// Number of `<record>` elements.
    pub records: u64,
    /// Sum of the records' `<count>`.
    pub messages: u64,
    /// Messages per (source, disposition, DMARC result, alignment), filled by the reader from
    /// each record as it streams by.
    pub tallies: BTreeMap<TallyKey, u64>,
}

/// `<policy_published>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyPublished {
    /// The policy domain, lower-cased, without a trailing dot.
    pub domain: String,
    pub adkim: AlignmentMode,
    pub aspf: AlignmentMode,
    pub p: Policy,
    pub sp: Option<Policy>,
    /// RFC 9990: policy for non-existent subdomains.
    pub np: Option<Policy>,
    pub pct: Option<u8>,
    /// RFC 9990 `<testing>`: `y` means the policy was in test mode.
    pub testing: Option<bool>,
    /// RFC 9990 `<discovery_method>`: `psl` or `treewalk` (as written, lower-cased).
    pub discovery_method: Option<String>,
    pub fo: Option<String>,
}

/// One `<record>`: a source IP and what the receiver saw and did for its messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `None` when the value was not an IP address.
    pub source_ip: Option<IpAddr>,
    pub count: u64,
    pub disposition: Disposition,
    /// `<policy_evaluated>`: the reporter's own DMARC-aligned DKIM and SPF verdicts.
    pub eval_dkim: Verdict,
    pub eval_spf: Verdict,
    pub reasons: Vec<Reason>,
    pub header_from: String,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub dkim: Vec<DkimAuth>,
    pub spf: Vec<SpfAuth>,
}

/// A `<reason>` the receiver gave for overriding the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `None` for the empty `<reason><type/></reason>` some reporters send.
    pub kind: Option<ReasonType>,
    pub comment: Option<String>,
}

/// `<auth_results><dkim>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: Option<String>,
    pub result: DkimResult,
    pub human_result: Option<String>,
}

/// `<auth_results><spf>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfAuth {
    pub domain: String,
    /// `mfrom` or `helo` (lower-cased); absent in many reports.
    pub scope: Option<String>,
    pub result: SpfResult,
}

/// Tally of messages: a named source and what happened to its mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyKey {
    /// Index into the source names the reader was given (0 = `unknown`).
    pub source: u16,
    pub disposition: Disposition,
    pub dmarc_pass: bool,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
}

/// Parses a value case-insensitively after trimming; `Other` when unknown.
macro_rules! closed_set {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal $(| $alias:literal)*),+ $(,)? } default $default:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant,)+ Other }

        impl $name {
            /// Reads a report value: case and surrounding space don't matter; anything
            /// unknown is `Other`.
            pub fn parse(s: &str) -> $name {
                let s = s.trim();
                $(
                    if s.eq_ignore_ascii_case($text) $(|| s.eq_ignore_ascii_case($alias))* {
                        return $name::$variant;
                    }
                )+
                $name::Other
            }

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ $name::Other => "other" }
            }

            /// Every value, `Other` last.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+ $name::Other];
        }

        impl Default for $name {
            fn default() -> Self { $name::$default }
        }
    };
}

closed_set!(
    /// `<disposition>`: what the receiver did. RFC 9990 adds `pass`.
    Disposition { None = "none", Quarantine = "quarantine", Reject = "reject", Pass = "pass" } default None
);
closed_set!(
    /// `<p>`, `<sp>`, `<np>`.
    Policy { None = "none", Quarantine = "quarantine", Reject = "reject" } default None
);
closed_set!(
    /// `<policy_evaluated>` `<dkim>` and `<spf>`.
    Verdict { Pass = "pass", Fail = "fail" } default Fail
);
closed_set!(
    /// DKIM results (RFC 8601).
    DkimResult {
        None = "none", Pass = "pass", Fail = "fail", Policy = "policy", Neutral = "neutral",
        TempError = "temperror", PermError = "permerror"
    } default None
);
closed_set!(
    /// SPF results (RFC 7208).
    SpfResult {
        None = "none", Neutral = "neutral", Pass = "pass", Fail = "fail", SoftFail = "softfail",
        TempError = "temperror", PermError = "permerror"
    } default None
);
closed_set!(
    /// Override reasons (RFC 7489 `PolicyOverrideType`, RFC 9990 adds `policy_test_mode`).
    ReasonType {
        Forwarded = "forwarded", SampledOut = "sampled_out", TrustedForwarder = "trusted_forwarder",
        MailingList = "mailing_list", LocalPolicy = "local_policy", PolicyTestMode = "policy_test_mode"
    } default Other
);

/// `adkim` / `aspf`: `r` (relaxed, the default) or `s` (strict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlignmentMode {
    #[default]
    Relaxed,
    Strict,
}

impl AlignmentMode {
    pub fn parse(s: &str) -> AlignmentMode {
        let s = s.trim();
        if s.eq_ignore_ascii_case("s") || s.eq_ignore_ascii_case("strict") {
            AlignmentMode::Strict
        } else {
            AlignmentMode::Relaxed
        }
    }
}

/// An SMTP TLS report (RFC 8460), reduced to what is counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsReport {
    pub organization_name: String,
    pub contact_info: Option<String>,
    pub report_id: String,
    /// `date-range` in Unix seconds.
    pub begin: u64,
    pub end: u64,
    pub policies: Vec<TlsPolicy>,
}

impl TlsReport {
    pub fn successful(&self) -> u64 {
        self.policies
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.successful))
    }
    pub fn failed(&self) -> u64 {
        self.policies
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.failed))
    }
    /// The first policy's domain (what `parse-report` shows as the report's domain).
    pub fn domain(&self) -> &str {
        self.policies
            .first()
            .map(|p| p.domain.as_str())
            .unwrap_or("")
    }
}

/// One `policies[]` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsPolicy {
    /// `policy-type`: `sts`, `tlsa`, `no-policy-found` (as written, lower-cased).
    pub policy_type: String,
    /// `policy-domain`, lower-cased, without a trailing dot.
    pub domain: String,
    pub mx_hosts: Vec<String>,
    pub successful: u64,
    pub failed: u64,
    /// The first failure details (at most [`super::tlsrpt::KEEP_DETAILS`]).
    pub failures: Vec<TlsFailure>,
    /// Failed sessions per result type, over every failure detail.
    pub failed_by_type: BTreeMap<TlsResultType, u64>,
}

/// One `failure-details[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFailure {
    pub result_type: TlsResultType,
    /// The `result-type` as written (for `parse-report` and logs, never a label).
    pub result_type_raw: String,
    pub sessions: u64,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_ip: Option<String>,
    pub failure_reason_code: Option<String>,
}

closed_set!(
    /// RFC 8460 section 4.3 result types.
    TlsResultType {
        StarttlsNotSupported = "starttls-not-supported",
        CertificateHostMismatch = "certificate-host-mismatch",
        CertificateExpired = "certificate-expired",
        CertificateNotTrusted = "certificate-not-trusted",
        ValidationFailure = "validation-failure",
        TlsaInvalid = "tlsa-invalid",
        DnssecInvalid = "dnssec-invalid",
        DaneRequired = "dane-required",
        StsPolicyFetchError = "sts-policy-fetch-error",
        StsPolicyInvalid = "sts-policy-invalid",
        StsWebpkiInvalid = "sts-webpki-invalid"
    } default Other
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_are_case_insensitive_and_keep_unknowns_as_other() {
        assert_eq!(SpfResult::parse(" Pass "), SpfResult::Pass);
        assert_eq!(SpfResult::parse("hardfail"), SpfResult::Other);
        assert_eq!(SpfResult::Other.as_str(), "other");
        assert_eq!(Disposition::parse("None"), Disposition::None);
        assert_eq!(Disposition::parse("QUARANTINE"), Disposition::Quarantine);
        assert_eq!(ReasonType::parse("local_policy"), ReasonType::LocalPolicy);
        assert_eq!(
            TlsResultType::parse("sts-policy-fetch-error").as_str(),
            "sts-policy-fetch-error"
        );
        assert_eq!(
            TlsResultType::parse("bad https response code: 404"),
            TlsResultType::Other
        );
        assert_eq!(AlignmentMode::parse("S"), AlignmentMode::Strict);
        assert_eq!(AlignmentMode::parse("bogus"), AlignmentMode::Relaxed);
        assert_eq!(*Policy::ALL.last().unwrap(), Policy::Other);
    }
}
