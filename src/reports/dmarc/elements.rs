//! The elements of a DMARC aggregate report the reader knows, and where each may stand
//! (RFC 7489 appendix C, RFC 9990): the parser's table of names.

/// The elements the reader knows, by position in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum El {
    Unknown,
    /// An element around `<feedback>` (or the root of a document that has none).
    Wrapper,
    Feedback,
    Version,
    Metadata,
    OrgName,
    Email,
    ExtraContact,
    ReportId,
    DateRange,
    Begin,
    End,
    MetaError,
    Generator,
    Policy,
    PDomain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Testing,
    Discovery,
    Fo,
    Record,
    Row,
    SourceIp,
    Count,
    Evaluated,
    Disposition,
    EvalDkim,
    EvalSpf,
    Reason,
    ReasonType,
    ReasonComment,
    Identifiers,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    AuthResults,
    Dkim,
    DkimDomain,
    Selector,
    DkimResult,
    HumanResult,
    Spf,
    SpfDomain,
    Scope,
    SpfResult,
}

impl El {
    /// The element `name` inside `parent`.
    pub(super) fn child(parent: El, name: &[u8]) -> El {
        use El::*;
        match (parent, name) {
            (Feedback, b"version") => Version,
            (Feedback, b"report_metadata") => Metadata,
            (Feedback, b"policy_published") => Policy,
            (Feedback, b"record") => Record,
            (Metadata, b"org_name") => OrgName,
            (Metadata, b"email") => Email,
            (Metadata, b"extra_contact_info") => ExtraContact,
            (Metadata, b"report_id") => ReportId,
            (Metadata, b"date_range") => DateRange,
            (Metadata, b"error") => MetaError,
            (Metadata, b"generator") => Generator,
            (DateRange, b"begin") => Begin,
            (DateRange, b"end") => End,
            (Policy, b"domain") => PDomain,
            (Policy, b"adkim") => Adkim,
            (Policy, b"aspf") => Aspf,
            (Policy, b"p") => P,
            (Policy, b"sp") => Sp,
            (Policy, b"np") => Np,
            (Policy, b"pct") => Pct,
            (Policy, b"testing") => Testing,
            (Policy, b"discovery_method") => Discovery,
            (Policy, b"fo") => Fo,
            (Record, b"row") => Row,
            (Record, b"identifiers") => Identifiers,
            (Record, b"auth_results") => AuthResults,
            (Row, b"source_ip") => SourceIp,
            (Row, b"count") => Count,
            (Row, b"policy_evaluated") => Evaluated,
            (Evaluated, b"disposition") => Disposition,
            (Evaluated, b"dkim") => EvalDkim,
            (Evaluated, b"spf") => EvalSpf,
            (Evaluated, b"reason") => Reason,
            (Reason, b"type") => ReasonType,
            (Reason, b"comment") => ReasonComment,
            (Identifiers, b"header_from") => HeaderFrom,
            (Identifiers, b"envelope_from") => EnvelopeFrom,
            (Identifiers, b"envelope_to") => EnvelopeTo,
            (AuthResults, b"dkim") => Dkim,
            (AuthResults, b"spf") => Spf,
            (Dkim, b"domain") => DkimDomain,
            (Dkim, b"selector") => Selector,
            (Dkim, b"result") => DkimResult,
            (Dkim, b"human_result") => HumanResult,
            (Spf, b"domain") => SpfDomain,
            (Spf, b"scope") => Scope,
            (Spf, b"result") => SpfResult,
            _ => Unknown,
        }
    }

    /// Whether the element holds a value (its text is collected).
    pub(super) fn is_leaf(self) -> bool {
        use El::*;
        !matches!(
            self,
            Unknown
                | Wrapper
                | Feedback
                | Metadata
                | DateRange
                | Policy
                | Record
                | Row
                | Evaluated
                | Reason
                | Identifiers
                | AuthResults
                | Dkim
                | Spf
        )
    }
}
