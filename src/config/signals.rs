//! `[postmaster]` and `[snds]`: the mailbox providers' own signals, fetched from their APIs
//! (Google Postmaster Tools v2, Microsoft SNDS automated data access). Both are read as
//! written and resolved at load: the base URL parsed, files made absolute and checked.

use std::path::{Path, PathBuf};

use super::error::Problems;
use super::schema::{PostmasterConfig, SndsConfig};
use super::values::relative_to;

fn base_url(problems: &mut Problems, field: String, url: &str) {
    match crate::http_client::Target::parse(url) {
        Ok(t) if !t.https && !is_loopback(&t.host) => problems.add(
            field,
            "must be https:// (plain http only to a loopback address, e.g. a local proxy)",
        ),
        Ok(_) => {}
        Err(e) => problems.add(field, e),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn ca_file(
    problems: &mut Problems,
    field: String,
    file: &Path,
    ca: Option<PathBuf>,
) -> Option<PathBuf> {
    let full = relative_to(file, &ca?);
    if !full.is_file() {
        problems.add(field, format!("{} is not a readable file", full.display()));
    }
    Some(full)
}

/// Checks `[postmaster]` and makes its files absolute.
pub(super) fn postmaster(
    problems: &mut Problems,
    file: &Path,
    c: Option<PostmasterConfig>,
) -> Option<PostmasterConfig> {
    let mut c = c?;
    base_url(problems, "postmaster.base_url".into(), &c.base_url);
    match (&c.credentials_file, &c.oauth2) {
        (Some(f), None) => {
            let full = relative_to(file, f);
            if !full.is_file() {
                problems.add(
                    "postmaster.credentials_file",
                    format!("{} is not a readable file (a service account's JSON key)", full.display()),
                );
            }
            c.credentials_file = Some(full);
        }
        (None, Some(_)) => {}
        (Some(_), Some(_)) => problems.add(
            "postmaster.oauth2",
            "give either credentials_file (a service account) or oauth2, not both",
        ),
        (None, None) => problems.add(
            "postmaster.credentials_file",
            "[postmaster] needs credentials: a service account's JSON key in credentials_file, or oauth2",
        ),
    }
    if let Some(t) = &c.token_url
        && let Err(e) = crate::http_client::Target::parse(t)
    {
        problems.add("postmaster.token_url", e);
    }
    // One domainStats:query covers at most 62 days (src/postmaster/api.rs MAX_DAYS).
    if !(1..=62).contains(&c.days) {
        problems.add("postmaster.days", "expected 1 to 62 days");
    }
    for (i, d) in c.domains.iter_mut().enumerate() {
        *d = d.trim_end_matches('.').to_ascii_lowercase();
        if let Err(e) = super::validate::check_host(d) {
            problems.add(format!("postmaster.domains[{i}]"), e);
        }
    }
    c.ca_file = ca_file(
        problems,
        "postmaster.ca_file".into(),
        file,
        c.ca_file.take(),
    );
    if let Some(o) = &mut c.oauth2 {
        o.ca_file = o.ca_file.take().map(|f| relative_to(file, &f));
    }
    Some(c)
}

/// Checks `[snds]` and makes its files absolute.
pub(super) fn snds(
    problems: &mut Problems,
    file: &Path,
    c: Option<SndsConfig>,
) -> Option<SndsConfig> {
    let mut c = c?;
    base_url(problems, "snds.base_url".into(), &c.base_url);
    match &c.key {
        Some(k)
            if k.expose().is_empty()
                || !k
                    .expose()
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-') =>
        {
            problems.add(
                "snds.key",
                "expected the automated data access key (letters, digits and -)",
            )
        }
        Some(_) => {}
        None => problems.add("snds.key", "[snds] needs the automated data access key"),
    }
    c.ca_file = ca_file(problems, "snds.ca_file".into(), file, c.ca_file.take());
    Some(c)
}
