//! The rules serde can't express, section by section: ranges of durations and counts, host names,
//! addresses, networks, header names, duplicate names.
//!
//! Each check adds what is wrong to [`Problems`] and goes on, so one run reports every problem
//! of a file. The checks here read a section as written; the rules that depend on what a preset
//! or default filled in (a provider's host, its login) are checked by `super::resolve` while it
//! fills them in, with the helpers of this module ([`check_host`], [`check_address`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::dnsbl_lists;
use super::error::Problems;
use super::schema::{
    CanaryConfig, Cleanup, DnsConfig, DnsblConfig, DomainSpec, ExporterConfig, OAuth2Config,
    ReportSourceSpec, ReportsConfig,
};

pub(super) fn exporter(problems: &mut Problems, e: &ExporterConfig) {
    if e.state_dir.as_os_str().is_empty() {
        problems.add("exporter.state_dir", "expected a directory path");
    }
    if let Some(i) = &e.instance
        && (i.is_empty() || i.len() > 128 || i.chars().any(char::is_control))
    {
        problems.add("exporter.instance", "expected 1-128 printable characters");
    }
}

pub(super) fn dns(problems: &mut Problems, d: &DnsConfig) {
    if d.timeout.get() < Duration::from_millis(10) || d.timeout.get() > Duration::from_secs(60) {
        problems.add("dns.timeout", "expected a duration between 10ms and 60s");
    }
    if d.attempts == 0 || d.attempts > 10 {
        problems.add("dns.attempts", "expected an integer 1-10");
    }
    if d.interval.get() < Duration::from_secs(10) {
        problems.add("dns.interval", "expected at least 10s");
    }
}

pub(super) fn canary(problems: &mut Problems, c: &CanaryConfig) {
    if c.interval.get() < Duration::from_secs(1) {
        problems.add("canary.interval", "expected at least 1s");
    }
    if c.deadline.get() < Duration::from_secs(1) {
        problems.add("canary.deadline", "expected at least 1s");
    }
    if !(0.0..=1.0).contains(&c.jitter) {
        problems.add(
            "canary.jitter",
            "expected a fraction of the interval between 0 and 1",
        );
    }
    if !c.subject.contains("{token}") {
        problems.add(
            "canary.subject",
            "must contain {token}: the canary is found by it when a provider drops its headers",
        );
    }
    if c.subject.contains(['\r', '\n']) {
        problems.add("canary.subject", "must be one line");
    }
    if c.cleanup == Cleanup::Move && c.move_to.as_deref().is_none_or(str::is_empty) {
        problems.add(
            "canary.move_to",
            "cleanup = \"move\" needs the folder name in move_to",
        );
    }
    for (field, d) in [
        ("canary.smtp_timeout", c.smtp_timeout),
        ("canary.imap_timeout", c.imap_timeout),
    ] {
        if d.get() < Duration::from_millis(100) {
            problems.add(field, "expected at least 100ms");
        }
    }
    if c.idle_refresh.get() < Duration::from_secs(10)
        || c.idle_refresh.get() > Duration::from_secs(29 * 60)
    {
        problems.add(
            "canary.idle_refresh",
            "expected between 10s and 29m (servers end IDLE after 30 minutes)",
        );
    }
    if c.poll_interval.get() < Duration::from_millis(100) {
        problems.add("canary.poll_interval", "expected at least 100ms");
    }
    if c.verify_interval.get() < Duration::from_millis(100) {
        problems.add("canary.verify_interval", "expected at least 100ms");
    } else if c.verify_interval.get() >= c.deadline.get() {
        problems.add(
            "canary.verify_interval",
            "must be shorter than canary.deadline: a canary must be looked for before it can be counted lost",
        );
    }
}

/// The `oauth2` section of the provider or seed at `at`.
pub(super) fn oauth2(problems: &mut Problems, at: &str, o: &OAuth2Config) {
    if !(o.token_url.starts_with("https://")
        || o.token_url.starts_with("http://127.")
        || o.token_url.starts_with("http://[::1]"))
    {
        problems.add(format!("{at}.token_url"), "expected an https:// URL");
    }
    if o.client_id.is_empty() {
        problems.add(format!("{at}.client_id"), "expected the OAuth2 client id");
    }
}

/// The extra headers of `providers[i]`.
pub(super) fn headers<'a>(
    problems: &mut Problems,
    i: usize,
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    for (k, v) in headers {
        if !is_header_name(k) {
            problems.add(
                format!("providers[{i}].headers.{k}"),
                "expected a header name of printable ASCII without ':' or spaces",
            );
        } else if v.contains(['\r', '\n']) {
            problems.add(
                format!("providers[{i}].headers.{k}"),
                "header values must be one line",
            );
        }
    }
}

pub(super) fn domains(problems: &mut Problems, domains: &[DomainSpec]) {
    let mut names = HashSet::new();
    for (i, d) in domains.iter().enumerate() {
        if let Err(e) = check_host(&d.name) {
            problems.add(format!("domains[{i}].name"), e);
        }
        if !names.insert(d.name.to_ascii_lowercase()) {
            problems.add(
                format!("domains[{i}].name"),
                format!("duplicate domain {:?}", d.name),
            );
        }
        for (j, sel) in d.dkim_selectors.iter().enumerate() {
            if check_host(sel).is_err() {
                problems.add(
                    format!("domains[{i}].dkim_selectors[{j}]"),
                    format!("expected a DKIM selector (DNS labels), got {sel:?}"),
                );
            }
        }
    }
}

pub(super) fn dnsbl(problems: &mut Problems, d: &DnsblConfig) {
    if d.interval.get() < Duration::from_secs(10) {
        problems.add("dnsbl.interval", "expected at least 10s");
    }
    if d.concurrency == 0 || d.concurrency > 1024 {
        problems.add("dnsbl.concurrency", "expected an integer 1-1024");
    }
    for (i, dom) in d.domains.iter().enumerate() {
        if let Err(e) = check_host(dom) {
            problems.add(format!("dnsbl.domains[{i}]"), e);
        }
    }
    for (i, l) in d.lists.iter().enumerate() {
        if !dnsbl_lists::is_known(l) {
            problems.add(
                format!("dnsbl.lists[{i}]"),
                format!(
                    "unknown list {l:?}; one of: {} (other zones go in [[dnsbl.custom]])",
                    dnsbl_lists::names().join(", ")
                ),
            );
        }
    }
    let mut names = HashSet::new();
    for (i, z) in d.custom.iter().enumerate() {
        if let Err(e) = check_host(&z.zone) {
            problems.add(format!("dnsbl.custom[{i}].zone"), e);
        }
        if !names.insert(z.name.0.clone()) {
            problems.add(
                format!("dnsbl.custom[{i}].name"),
                format!("duplicate zone name {:?}", z.name.0),
            );
        }
        for code in z.codes.keys() {
            if code.parse::<Ipv4Addr>().is_err() {
                problems.add(
                    format!("dnsbl.custom[{i}].codes"),
                    format!("expected IPv4 answer codes like \"127.0.0.2\" as keys, got {code:?}"),
                );
            }
        }
    }
}

/// `[reports]` but its sources, which `super::resolve` checks as it resolves them.
pub(super) fn reports(problems: &mut Problems, r: &ReportsConfig<ReportSourceSpec>) {
    if r.interval.get() < Duration::from_secs(1) {
        problems.add("reports.interval", "expected at least 1s");
    }
    if r.max_decompressed_bytes < 1024 {
        problems.add("reports.max_decompressed_bytes", "expected at least 1024");
    }
    if r.max_archive_members == 0 {
        problems.add("reports.max_archive_members", "expected at least 1");
    }
    if r.label_limit == 0 {
        problems.add("reports.label_limit", "expected at least 1");
    }
    for (i, m) in r.source_map.iter().enumerate() {
        for (j, c) in m.cidrs.iter().enumerate() {
            if parse_cidr(c).is_none() {
                problems.add(
                    format!("reports.source_map[{i}].cidrs[{j}]"),
                    format!(
                        "expected a network like \"192.0.2.0/24\" or \"2001:db8::/32\", got {c:?}"
                    ),
                );
            }
        }
    }
}

/// Parses `"192.0.2.0/24"`, `"2001:db8::/32"` or a bare address.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?),
        None => {
            let ip: IpAddr = s.parse().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Checks a DNS host name: labels of letters, digits, '-' and '_', at most 253 characters.
pub fn check_host(h: &str) -> Result<(), String> {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if h.is_empty() || h.len() > 253 {
        return Err(format!("expected a host name, got {h:?}"));
    }
    for label in h.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "expected a host name with labels of 1-63 characters, got {h:?}"
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "expected a host name of letters, digits and '-', got {h:?}"
            ));
        }
    }
    Ok(())
}

/// Checks an address `local@domain` and returns its domain, lower-cased.
pub fn check_address(a: &str) -> Result<String, String> {
    let (local, domain) = a
        .rsplit_once('@')
        .ok_or_else(|| format!("expected an e-mail address like user@example.com, got {a:?}"))?;
    if local.is_empty()
        || local.len() > 64
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(format!(
            "expected an e-mail address like user@example.com, got {a:?}"
        ));
    }
    check_host(domain)
        .map_err(|_| format!("expected an e-mail address like user@example.com, got {a:?}"))?;
    Ok(domain.to_ascii_lowercase())
}

fn is_header_name(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}
