//! SMTP TLS Reporting policy records (RFC 8460): the `_smtp._tls.<domain>` TXT record,
//! `v=TLSRPTv1; rua=<uri>[,<uri>]`, where `rua` URIs are `mailto:` or `https:`.

use crate::dns::tags::{self, TagError};
use crate::resolver::{Lookup, txt_records};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsRptError {
    #[error("{0}")]
    Tags(#[from] TagError),
    #[error("the record must start with v=TLSRPTv1")]
    Version,
    #[error("no rua= tag (where reports go)")]
    NoRua,
    #[error("rua={0:?}: expected mailto: or https: URIs separated by commas")]
    BadUri(String),
}

/// Is this TXT string a TLS-RPT record?
pub fn is_tlsrpt(txt: &str) -> bool {
    txt.split(';')
        .next()
        .and_then(|f| f.split_once('='))
        .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("v") && v.trim() == "TLSRPTv1")
}

/// Parses a TLS-RPT record; returns its report URIs.
pub fn parse(txt: &str) -> Result<Vec<String>, TlsRptError> {
    let t = tags::parse(txt)?;
    if t.first().map(|(n, v)| (n.as_str(), v.as_str())) != Some(("v", "TLSRPTv1")) {
        return Err(TlsRptError::Version);
    }
    let rua = tags::get(&t, "rua").ok_or(TlsRptError::NoRua)?;
    let uris: Vec<String> = rua.split(',').map(|u| u.trim().to_string()).collect();
    for u in &uris {
        let lower = u.to_ascii_lowercase();
        let ok = match (
            lower.strip_prefix("mailto:"),
            lower.strip_prefix("https://"),
        ) {
            (Some(addr), _) => addr.rsplit_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && crate::config::check_host(d).is_ok()
            }),
            (_, Some(rest)) => !rest.is_empty() && !rest.starts_with('/'),
            _ => false,
        };
        if !ok {
            return Err(TlsRptError::BadUri(tags::short(u)));
        }
    }
    Ok(uris)
}

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        NoRecord = "no_record",
        MultipleRecords = "multiple_records",
        Syntax = "syntax",
        DnsError = "dns_error",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsRptReport {
    pub record: Option<String>,
    pub rua: Vec<String>,
    pub problem: Option<(Reason, String)>,
}

/// Fetches and checks `_smtp._tls.<domain>`.
pub async fn check(dns: &dyn Lookup, domain: &str) -> TlsRptReport {
    let name = format!("_smtp._tls.{domain}");
    let mut rep = TlsRptReport::default();
    let recs = match txt_records(dns, &name, is_tlsrpt).await {
        Ok(r) => r,
        Err(e) => {
            rep.problem = Some((Reason::DnsError, e.to_string()));
            return rep;
        }
    };
    match recs.len() {
        0 => rep.problem = Some((Reason::NoRecord, format!("no TLS-RPT record at {name}"))),
        1 => {
            let text = recs.into_iter().next().unwrap_or_default();
            match parse(&text) {
                Ok(rua) => rep.rua = rua,
                Err(e) => rep.problem = Some((Reason::Syntax, format!("{name}: {e}"))),
            }
            rep.record = Some(text);
        }
        n => {
            rep.problem = Some((
                Reason::MultipleRecords,
                format!("{name} has {n} TLS-RPT records; exactly one is allowed"),
            ))
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::FakeDns;

    #[test]
    fn parses_records() {
        assert_eq!(
            parse("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/v1").unwrap(),
            vec!["mailto:tls@example.com", "https://r.example.com/v1"]
        );
        assert_eq!(parse("v=TLSRPTv1"), Err(TlsRptError::NoRua));
        assert_eq!(
            parse("rua=mailto:a@b.c; v=TLSRPTv1"),
            Err(TlsRptError::Version)
        );
        assert!(matches!(
            parse("v=TLSRPTv1; rua=ftp://x"),
            Err(TlsRptError::BadUri(_))
        ));
        assert!(matches!(
            parse("v=TLSRPTv1; rua=mailto:nobody"),
            Err(TlsRptError::BadUri(_))
        ));
        assert!(is_tlsrpt("v=TLSRPTv1;rua=mailto:a@b.c"));
        assert!(!is_tlsrpt("v=STSv1; id=1"));
    }

    #[tokio::test]
    async fn checks_the_record() {
        let dns = FakeDns::new()
            .txt(
                "_smtp._tls.example.com",
                "v=TLSRPTv1; rua=mailto:tls@example.com",
            )
            .txt(
                "_smtp._tls.two.example",
                "v=TLSRPTv1; rua=mailto:a@example.com",
            )
            .txt(
                "_smtp._tls.two.example",
                "v=TLSRPTv1; rua=mailto:b@example.com",
            );
        let r = check(&dns, "example.com").await;
        assert_eq!(r.problem, None);
        assert_eq!(r.rua, vec!["mailto:tls@example.com"]);
        assert_eq!(
            check(&dns, "two.example").await.problem.unwrap().0,
            Reason::MultipleRecords
        );
        assert_eq!(
            check(&dns, "none.example").await.problem.unwrap().0,
            Reason::NoRecord
        );
    }
}
