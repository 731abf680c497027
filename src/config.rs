//! Configuration: the TOML file, read strictly and checked before anything runs.
//!
//! Loading goes in three steps. The file is parsed into the schema of [`schema`] (unknown
//! fields are errors, secrets are read from where they live); `resolve` completes every section
//! (presets of [`presets`], defaults, paths relative to the file by [`relative_to`]) while it and
//! `validate` check every rule that serde can't express. Every problem is reported as
//! `file:line:column: field.path: what is expected` (`error`), and all problems of the
//! validation step are reported at once. A loaded [`Config`] is complete: later code never
//! needs a default or a fallback.
//!
//! The modules:
//! - [`schema`]: every section as written, with the defaults of its fields.
//! - [`values`]: durations, ports, label-safe names and secrets, each with its own message.
//! - [`presets`]: host, port, TLS and login conventions of well-known providers and mailboxes.
//! - [`dnsbl_lists`]: the catalogue of DNS blacklists known by name.
//! - `error`: [`ConfigError`] and the position of each [`Problem`].
//! - `validate`: the checks of each section as written.
//! - `resolve`: the schema turned into the resolved types below.
//! - [`shard`]: the share of the seeds one of several instances owns (`--shard.*`).

pub mod dnsbl_lists;
mod endpoint;
mod error;
pub mod presets;
mod resolve;
pub mod schema;
pub mod shard;
mod signals;
mod validate;
pub mod values;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Problem};
pub use resolve::relative_to;
pub use schema::{
    AuthMechanism, CanaryConfig, Cleanup, CustomZone, DnsConfig, DnsblConfig, DomainSpec,
    ExporterConfig, ImapAuth, OAuth2Config, ProviderPreset, ReportSourceSpec, ReportsConfig,
    SourceKind, SourceMapEntry, TlsMode, UnknownDomains, ZoneKind,
};
pub use shard::Shard;
pub use validate::{check_address, check_host, parse_cidr};
pub use values::{Dur, Name, Secret};

use error::Problems;

/// The whole configuration, validated and complete.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub exporter: ExporterConfig,
    pub dns: DnsConfig,
    pub canary: CanaryConfig,
    pub providers: Vec<Provider>,
    pub seeds: Vec<Seed>,
    pub domains: Vec<Domain>,
    pub dnsbl: DnsblConfig,
    pub reports: ReportsConfig,
    /// `[postmaster]`, when configured (Google Postmaster Tools).
    pub postmaster: Option<PostmasterConfig>,
    /// `[snds]`, when configured (Microsoft SNDS).
    pub snds: Option<SndsConfig>,
    /// The share of the seeds this instance owns; the whole configuration unless cut down by
    /// [`Shard::apply`] (`seeds` then holds only the owned ones).
    pub shard: Shard,
}

/// An SMTP provider canaries are sent through.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub preset: Option<ProviderPreset>,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Login and password (or access token); no AUTH when `None`.
    pub credentials: Option<(String, Secret)>,
    pub auth: Vec<AuthMechanism>,
    pub oauth2: Option<OAuth2Config>,
    pub from: String,
    pub from_domain: String,
    /// The envelope sender template, with `{token}` (VERP); `None`: `from`.
    pub bounce_address: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub min_gap: Duration,
    pub helo_name: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// A seed mailbox watched over IMAP.
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub address: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Option<Secret>,
    pub auth: ImapAuth,
    pub oauth2: Option<OAuth2Config>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub spam_folder: SpamFolder,
    pub authserv_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpamFolder {
    /// SPECIAL-USE `\Junk`, else a well-known name.
    Auto,
    Named(String),
}

/// A sending domain whose DNS records are checked.
#[derive(Debug, Clone)]
pub struct Domain {
    /// As written.
    pub name: String,
    pub dkim_selectors: Vec<String>,
    /// IPs that must pass SPF for this domain (besides sending hosts seen in canaries).
    pub expected_ips: Vec<IpAddr>,
    /// Where the MTA-STS policy is fetched from; `None` when `mta_sts = false`.
    pub mta_sts: Option<MtaSts>,
}

/// How a domain's MTA-STS policy host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaSts {
    pub port: u16,
    /// CA certificates trusted besides the web PKI.
    pub ca_file: Option<PathBuf>,
}

impl Domain {
    /// A domain that is not in the configuration, checked as a `[[domains]]` entry with only
    /// its name would be (the `dns` module of `/probe`).
    pub fn unconfigured(name: String) -> Domain {
        let spec = DomainSpec {
            name,
            dkim_selectors: Vec::new(),
            expected_ips: Vec::new(),
            mta_sts: true,
            mta_sts_ca_file: None,
            mta_sts_port: None,
        };
        resolve::domain(Path::new(""), spec)
    }
}

/// Where reports arrive: a `[[reports.sources]]` entry.
#[derive(Debug, Clone)]
pub enum ReportSource {
    Dir(ReportDir),
    Imap(ReportMailbox),
    Https(ReportEndpoint),
}

pub use endpoint::ReportEndpoint;
pub use schema::{PostmasterConfig, SndsConfig};

/// A directory scanned for report files (`kind = "dir"`).
#[derive(Debug, Clone)]
pub struct ReportDir {
    pub name: String,
    /// Relative to the current directory only when the configuration file's path is.
    pub path: PathBuf,
    /// Move read files to `processed/` and `failed/`, or leave them in place.
    pub move_files: bool,
}

/// A mailbox folder read for report e-mails over IMAP (`kind = "imap"`).
#[derive(Debug, Clone)]
pub struct ReportMailbox {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Secret,
    pub auth: ImapAuth,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub folder: String,
    pub processed_folder: Option<String>,
    pub error_folder: Option<String>,
    /// Timeout of each IMAP command.
    pub timeout: Duration,
}

impl Config {
    /// Every (provider, seed) pair that sends canaries.
    pub fn routes(&self) -> impl Iterator<Item = (&Provider, &Seed)> {
        self.providers
            .iter()
            .flat_map(move |p| self.seeds.iter().map(move |s| (p, s)))
    }

    /// The instance name: configured, else the host name.
    pub fn instance(&self) -> String {
        self.exporter.instance.clone().unwrap_or_else(hostname)
    }

    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            problems: vec![Problem::whole_file(format!(
                "cannot read the configuration: {}",
                values::io_reason(&e)
            ))],
        })?;
        Config::from_str(path, &text)
    }

    /// Parses configuration text; `path` is used in messages and for relative paths.
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let refuse = |problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        };
        let tree = error::spanned_tree(text).map_err(|p| refuse(vec![p]))?;
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| refuse(vec![Problem::syntax(text, &e)]))?;
        let spec: schema::FileSpec = serde_path_to_error::deserialize(de)
            .map_err(|e| refuse(vec![Problem::refused(text, &tree, e)]))?;
        let mut problems = Problems::new(text, &tree);
        let config = resolve::config(path, spec, &mut problems);
        let problems = problems.into_sorted();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(refuse(problems))
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests;
