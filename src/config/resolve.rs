//! From the file as written ([`FileSpec`]) to a complete [`Config`]: presets and defaults
//! filled in, every path made relative to the configuration file (by [`relative_to`], the one
//! place that does it), timeouts taken from where they are configured.
//!
//! The rules that depend on what was filled in (a provider's host may come from its preset, its
//! login from the preset's convention) are checked here as it is filled in; the rest are in
//! `super::validate`. Disabled providers and seeds are checked, then left out. When any problem
//! was found the resolved configuration is thrown away, so a value resolved from a refused
//! field only needs to be a placeholder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Problems;
use super::presets::{self, UsernameRule};
use super::schema::{
    AuthMechanism, DomainSpec, FileSpec, ImapAuth, OAuth2Config, ProviderSpec, ReportSourceSpec,
    ReportsConfig, SeedSpec, SourceKind, TlsMode,
};
use super::validate::{self, check_address, check_host};
use super::values::{self, Dur, Port, Secret};
use super::{
    Config, Domain, MtaSts, Provider, ReportDir, ReportMailbox, ReportSource, Seed, SpamFolder,
};

/// Port of the MTA-STS policy host when `mta_sts_port` is not set.
const MTA_STS_PORT: u16 = 443;

pub use super::values::relative_to;

/// Resolves every section of `spec`, read from `file`, adding what is wrong to `problems`.
pub(super) fn config(file: &Path, spec: FileSpec, problems: &mut Problems) -> Config {
    validate::exporter(problems, &spec.exporter);
    validate::dns(problems, &spec.dns);
    validate::canary(problems, &spec.canary);
    let providers = providers(problems, file, spec.providers);
    let seeds = seeds(problems, file, spec.seeds);
    validate::domains(problems, &spec.domains);
    validate::dnsbl(problems, &spec.dnsbl);
    let reports = reports(problems, file, spec.reports, spec.canary.imap_timeout.get());
    let postmaster = super::signals::postmaster(problems, file, spec.postmaster);
    let snds = super::signals::snds(problems, file, spec.snds);
    Config {
        path: file.to_path_buf(),
        exporter: spec.exporter,
        dns: spec.dns,
        canary: spec.canary,
        providers,
        seeds,
        domains: spec.domains.into_iter().map(|d| domain(file, d)).collect(),
        dnsbl: spec.dnsbl,
        reports,
        postmaster,
        snds,
        shard: Default::default(),
    }
}

/// A file named in the configuration, which must exist; `None` when none is named.
fn existing_file(
    problems: &mut Problems,
    field: String,
    file: &Path,
    path: Option<&Path>,
) -> Option<PathBuf> {
    let full = relative_to(file, path?);
    if let Err(e) = std::fs::metadata(&full) {
        problems.add(
            field,
            format!("cannot read {}: {}", full.display(), values::io_reason(&e)),
        );
    }
    Some(full)
}

/// An `oauth2` section with its CA file relative to the configuration file.
fn oauth2(file: &Path, o: Option<OAuth2Config>) -> Option<OAuth2Config> {
    o.map(|o| OAuth2Config {
        ca_file: o.ca_file.map(|f| relative_to(file, &f)),
        ..o
    })
}

/// A server's host as written or filled in by a preset; a problem at `field` when there is none
/// (`missing` says what is expected) or it is not a host name.
fn server_host(
    problems: &mut Problems,
    field: String,
    host: Option<String>,
    missing: &str,
) -> String {
    let Some(h) = host else {
        problems.add(field, missing);
        return String::new();
    };
    if let Err(e) = check_host(&h) {
        problems.add(field, e);
    }
    h
}

/// The IMAP port of a TLS mode: 993 for implicit TLS, else 143.
fn imap_port(tls: TlsMode) -> u16 {
    match tls {
        TlsMode::Implicit => 993,
        _ => 143,
    }
}

fn providers(problems: &mut Problems, file: &Path, specs: Vec<ProviderSpec>) -> Vec<Provider> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, p) in specs.into_iter().enumerate() {
        let at = |f: &str| format!("providers[{i}].{f}");
        if !names.insert(p.name.0.clone()) {
            problems.add(
                at("name"),
                format!("duplicate provider name {:?}", p.name.0),
            );
        }
        let defaults = match p
            .preset
            .map(|pr| presets::provider(pr, p.region.as_deref()))
        {
            Some(Ok(d)) => Some(d),
            Some(Err((_, msg))) => {
                problems.add(at("region"), msg);
                None
            }
            None => {
                if p.region.is_some() {
                    problems.add(at("region"), "`region` is only used with a preset");
                }
                None
            }
        };
        let tls = p
            .tls
            .or(defaults.as_ref().map(|d| d.tls))
            .unwrap_or(match p.port {
                Some(Port(465)) => TlsMode::Implicit,
                Some(Port(25)) => TlsMode::None,
                _ => TlsMode::Starttls,
            });
        let port = p
            .port
            .map(|p| p.0)
            .or(defaults.as_ref().map(|d| d.port))
            .unwrap_or(match tls {
                TlsMode::Starttls => 587,
                TlsMode::Implicit => 465,
                TlsMode::None => 25,
            });
        let host = server_host(
            problems,
            at("host"),
            p.host.clone().or(defaults.as_ref().map(|d| d.host.clone())),
            "expected the SMTP server's host name (or a preset)",
        );
        let from_domain = match check_address(&p.from) {
            Ok(d) => d,
            Err(e) => {
                problems.add(at("from"), e);
                String::new()
            }
        };
        let username =
            p.username
                .clone()
                .or_else(|| match defaults.as_ref().map(|d| &d.username) {
                    Some(UsernameRule::Literal(l)) => Some(l.to_string()),
                    Some(UsernameRule::SameAsPassword) => {
                        p.password.as_ref().map(|s| s.expose().to_string())
                    }
                    Some(UsernameRule::FromAddress) => Some(p.from.clone()),
                    Some(UsernameRule::Required) | None => None,
                });
        let auth = p
            .auth
            .clone()
            .or(defaults.as_ref().map(|d| d.auth.clone()))
            .unwrap_or_else(|| {
                let mut a = vec![AuthMechanism::Plain, AuthMechanism::Login];
                if p.oauth2.is_some() {
                    a.insert(0, AuthMechanism::Xoauth2);
                }
                a
            });
        if auth.is_empty() {
            problems.add(
                at("auth"),
                "expected at least one of \"plain\", \"login\", \"xoauth2\"",
            );
        }
        let credentials = match (username, p.password.clone(), &p.oauth2) {
            (Some(u), Some(pw), _) => Some((u, pw)),
            // With OAuth2 the access token is fetched before each send.
            (Some(u), None, Some(_)) => Some((u, Secret::new(""))),
            (None, None, _) if p.preset.is_none() => None,
            (None, _, _) => {
                problems.add(
                    at("username"),
                    "expected the SMTP login (the preset does not imply one)",
                );
                None
            }
            (Some(_), None, None) => {
                problems.add(at("password"), "a username needs a password (a string, { env = \"NAME\" } or { file = \"/path\" })");
                None
            }
        };
        if p.oauth2.is_some() && !auth.contains(&AuthMechanism::Xoauth2) {
            problems.add(at("auth"), "an [oauth2] section needs \"xoauth2\" in auth");
        }
        if let Some(o) = &p.oauth2 {
            validate::oauth2(problems, &at("oauth2"), o);
        }
        let ca_file = existing_file(problems, at("ca_file"), file, p.ca_file.as_deref());
        validate::headers(problems, i, &p.headers);
        if let Some(b) = &p.bounce_address {
            let filled = b.replace("{token}", "dx-abcdefghijklmnopqrst");
            if !b.contains("{token}") {
                problems.add(
                    at("bounce_address"),
                    "must contain {token}, so that a bounce names its canary (bounces+{token}@example.com)",
                );
            } else if filled.parse::<lettre::Address>().is_err() {
                problems.add(
                    at("bounce_address"),
                    format!("{b:?} is not an address once {{token}} is filled in"),
                );
            }
        }
        if let Some(h) = &p.helo_name
            && let Err(e) = check_host(h)
        {
            problems.add(at("helo_name"), e);
        }
        if !p.enabled {
            continue;
        }
        out.push(Provider {
            name: p.name.0,
            preset: p.preset,
            host,
            port,
            tls,
            credentials,
            auth,
            oauth2: oauth2(file, p.oauth2),
            from: p.from,
            from_domain,
            bounce_address: p.bounce_address,
            ca_file,
            insecure_skip_verify: p.insecure_skip_verify,
            min_gap: p.min_gap.map(Dur::get).unwrap_or(Duration::ZERO),
            helo_name: p.helo_name,
            headers: p.headers.into_iter().collect(),
        });
    }
    out
}

fn seeds(problems: &mut Problems, file: &Path, specs: Vec<SeedSpec>) -> Vec<Seed> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in specs.into_iter().enumerate() {
        let at = |f: &str| format!("seeds[{i}].{f}");
        if !names.insert(s.name.0.clone()) {
            problems.add(at("name"), format!("duplicate seed name {:?}", s.name.0));
        }
        if let Err(e) = check_address(&s.address) {
            problems.add(at("address"), e);
        }
        let preset = s.preset.map(presets::seed);
        let tls = s.tls.or(preset.map(|p| p.2)).unwrap_or(match s.port {
            Some(Port(143)) => TlsMode::Starttls,
            _ => TlsMode::Implicit,
        });
        let port = s
            .port
            .map(|p| p.0)
            .or(preset.map(|p| p.1))
            .unwrap_or(imap_port(tls));
        let host = server_host(
            problems,
            at("host"),
            s.host.clone().or(preset.map(|p| p.0.to_string())),
            "expected the IMAP server's host name (or a preset)",
        );
        let auth = s.auth.unwrap_or(if s.oauth2.is_some() {
            ImapAuth::Xoauth2
        } else {
            ImapAuth::Login
        });
        if s.password.is_none() && s.oauth2.is_none() {
            problems.add(at("password"), "expected the IMAP password (a string, { env = \"NAME\" } or { file = \"/path\" }) or an oauth2 section");
        }
        if auth == ImapAuth::Xoauth2 && s.password.is_none() && s.oauth2.is_none() {
            problems.add(
                at("auth"),
                "xoauth2 needs an access token in password or an oauth2 section",
            );
        }
        if let Some(o) = &s.oauth2 {
            validate::oauth2(problems, &at("oauth2"), o);
        }
        let spam_folder = match s.spam_folder.as_str() {
            "auto" => SpamFolder::Auto,
            "" => {
                problems.add(at("spam_folder"), "expected \"auto\" or a folder name");
                SpamFolder::Auto
            }
            name => SpamFolder::Named(name.to_string()),
        };
        let ca_file = existing_file(problems, at("ca_file"), file, s.ca_file.as_deref());
        if !s.enabled {
            continue;
        }
        out.push(Seed {
            name: s.name.0,
            username: s.username.unwrap_or_else(|| s.address.clone()),
            address: s.address,
            host,
            port,
            tls,
            password: s.password,
            auth,
            oauth2: oauth2(file, s.oauth2),
            ca_file,
            insecure_skip_verify: s.insecure_skip_verify,
            spam_folder,
            authserv_id: s.authserv_id,
        });
    }
    out
}

/// A `[[domains]]` entry (checked by `validate::domains`).
pub(super) fn domain(file: &Path, d: DomainSpec) -> Domain {
    let mta_sts = d.mta_sts.then(|| MtaSts {
        port: d.mta_sts_port.map_or(MTA_STS_PORT, |p| p.0),
        ca_file: d.mta_sts_ca_file.as_deref().map(|f| relative_to(file, f)),
    });
    Domain {
        name: d.name,
        dkim_selectors: d.dkim_selectors,
        expected_ips: d.expected_ips,
        mta_sts,
    }
}

/// `[reports]`; IMAP sources use the canary's `imap_timeout` for each command.
fn reports(
    problems: &mut Problems,
    file: &Path,
    r: ReportsConfig<ReportSourceSpec>,
    imap_timeout: Duration,
) -> ReportsConfig {
    validate::reports(problems, &r);
    let ReportsConfig {
        enabled,
        interval,
        sources,
        source_map,
        max_decompressed_bytes,
        max_records,
        max_archive_members,
        unknown_domains,
        label_limit,
        ledger_retention,
    } = r;
    let mut names = HashSet::new();
    let mut listen = HashSet::new();
    let sources = sources
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| {
            if !names.insert(s.name.0.clone()) {
                problems.add(
                    format!("reports.sources[{i}].name"),
                    format!("duplicate source name {:?}", s.name.0),
                );
            }
            if let Some(a) = s
                .listen_address
                .as_ref()
                .filter(|_| s.kind == SourceKind::Https)
                && !listen.insert(a.clone())
            {
                problems.add(
                    format!("reports.sources[{i}].listen_address"),
                    format!("{a:?} is already the address of another https source"),
                );
            }
            report_source(problems, file, i, s, imap_timeout)
        })
        .collect();
    ReportsConfig {
        enabled,
        interval,
        sources,
        source_map,
        max_decompressed_bytes,
        max_records,
        max_archive_members,
        unknown_domains,
        label_limit,
        ledger_retention,
    }
}

/// `reports.sources[i]`; `None` when a field it needs is missing.
fn report_source(
    problems: &mut Problems,
    file: &Path,
    i: usize,
    s: ReportSourceSpec,
    imap_timeout: Duration,
) -> Option<ReportSource> {
    let at = |f: &str| format!("reports.sources[{i}].{f}");
    super::endpoint::misplaced(problems, i, &s);
    if s.kind == SourceKind::Https {
        return super::endpoint::resolve(problems, file, i, s).map(ReportSource::Https);
    }
    match s.kind {
        SourceKind::Https => None,
        SourceKind::Dir => {
            let path = match &s.path {
                None => {
                    problems.add(at("path"), "kind = \"dir\" needs the directory in path");
                    None
                }
                Some(p) => {
                    let full = relative_to(file, p);
                    if !full.is_dir() {
                        problems.add(at("path"), format!("{} is not a directory", full.display()));
                    }
                    Some(full)
                }
            };
            for (f, set) in [
                ("host", s.host.is_some()),
                ("username", s.username.is_some()),
            ] {
                if set {
                    problems.add(at(f), "is only used with kind = \"imap\"");
                }
            }
            Some(ReportSource::Dir(ReportDir {
                name: s.name.0,
                path: path?,
                move_files: s.move_files,
            }))
        }
        SourceKind::Imap => {
            let host = s.host.filter(|h| check_host(h).is_ok());
            if host.is_none() {
                problems.add(
                    at("host"),
                    "kind = \"imap\" needs the IMAP server's host name",
                );
            }
            if s.username.is_none() {
                problems.add(at("username"), "kind = \"imap\" needs the IMAP login");
            }
            if s.password.is_none() {
                problems.add(at("password"), "kind = \"imap\" needs the IMAP password");
            }
            if s.path.is_some() {
                problems.add(at("path"), "is only used with kind = \"dir\"");
            }
            let ca_file = existing_file(problems, at("ca_file"), file, s.ca_file.as_deref());
            let tls = s.tls.unwrap_or(TlsMode::Implicit);
            Some(ReportSource::Imap(ReportMailbox {
                name: s.name.0,
                host: host?,
                port: s.port.map_or(imap_port(tls), |p| p.0),
                tls,
                username: s.username?,
                password: s.password?,
                auth: ImapAuth::Login,
                ca_file,
                insecure_skip_verify: false,
                folder: s.folder,
                processed_folder: s.processed_folder,
                error_folder: s.error_folder,
                timeout: imap_timeout,
            }))
        }
    }
}
