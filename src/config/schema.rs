//! The TOML schema as written by users: every section, its fields and their defaults.
//!
//! Unknown fields are errors everywhere (`deny_unknown_fields`). Providers, seeds, domains and
//! report sources are read here as written (`...Spec`: host, port and TLS may come from a
//! preset or a default, paths may be relative) and completed by `super::resolve`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::ReportSource;
use super::values::{Dur, Name, Port, Secret};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    #[serde(default)]
    pub exporter: ExporterConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub canary: CanaryConfig,
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    #[serde(default)]
    pub seeds: Vec<SeedSpec>,
    #[serde(default)]
    pub domains: Vec<DomainSpec>,
    #[serde(default)]
    pub dnsbl: DnsblConfig,
    #[serde(default)]
    pub reports: ReportsConfig<ReportSourceSpec>,
    pub postmaster: Option<PostmasterConfig>,
    pub snds: Option<SndsConfig>,
}

/// `[exporter]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterConfig {
    /// What must survive a restart (in-flight canaries, the report ledger) is kept here.
    pub state_dir: PathBuf,
    /// A name for this exporter instance, shown on the landing page and in canary messages.
    pub instance: Option<String>,
    /// How long a graceful shutdown may take before remaining work is abandoned.
    pub shutdown_timeout: Dur,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            state_dir: PathBuf::from("data"),
            instance: None,
            shutdown_timeout: Dur::secs(10),
        }
    }
}

/// `[dns]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Resolvers as `"127.0.0.1:53"`; the system resolver (`/etc/resolv.conf`) when empty.
    pub nameservers: Vec<SocketAddr>,
    /// Timeout of one query.
    pub timeout: Dur,
    /// Attempts per query (UDP retries).
    pub attempts: u8,
    /// How often the records of every `[[domains]]` entry are checked.
    pub interval: Dur,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Dur::secs(5),
            attempts: 2,
            interval: Dur::secs(600),
        }
    }
}

/// `[canary]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    pub enabled: bool,
    /// Every route (provider × seed) sends one canary per interval.
    pub interval: Dur,
    /// A canary not seen in a seed by then is lost.
    pub deadline: Dur,
    /// Fraction of the interval by which each route's start is spread (0-1).
    pub jitter: f64,
    /// Subject template; `{token}`, `{provider}`, `{seed}` and `{instance}` are replaced.
    pub subject: String,
    /// Plain-text body template, same placeholders.
    pub body: String,
    /// What happens to a canary once seen: `delete` or `move` (to `move_to`).
    pub cleanup: Cleanup,
    pub move_to: Option<String>,
    /// Canaries older than this found in a seed at start-up are removed.
    pub sweep_older_than: Dur,
    /// Timeout of each SMTP stage.
    pub smtp_timeout: Dur,
    /// Timeout of each IMAP command.
    pub imap_timeout: Dur,
    /// IDLE is re-issued after this long (servers drop IDLE after 29 minutes).
    pub idle_refresh: Dur,
    /// Polling interval for folders of servers without IDLE.
    pub poll_interval: Dur,
    /// While canaries of a seed are in flight, its folders are searched this often whatever
    /// the server announces (push is not relied on alone).
    pub verify_interval: Dur,
    /// Also export the delivery-time histogram per route (18 series per route); by default
    /// it is per provider and per seed, with the route's last delivery time as a gauge.
    pub route_histograms: bool,
    /// Also export the sender requirements per route (up to 9 series per route); by default
    /// they are per provider.
    pub route_requirements: bool,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            enabled: true,
            interval: Dur::secs(300),
            deadline: Dur::secs(900),
            jitter: 0.2,
            subject: "Delivery check {token}".into(),
            body: "This is an automated delivery check sent by {instance} through {provider} to {seed}.\r\nIt is removed automatically; no action is needed.\r\n\r\nToken: {token}\r\n".into(),
            cleanup: Cleanup::Delete,
            move_to: None,
            sweep_older_than: Dur::secs(3600),
            smtp_timeout: Dur::secs(30),
            imap_timeout: Dur::secs(30),
            idle_refresh: Dur::secs(20 * 60),
            poll_interval: Dur::secs(15),
            verify_interval: Dur::secs(2),
            route_histograms: false,
            route_requirements: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    Delete,
    Move,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (submission, 587; IMAP 143).
    Starttls,
    /// TLS from the first byte (465; IMAP 993).
    Implicit,
    /// No TLS at all (25/2525 relays inside a trusted network).
    None,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMechanism {
    Plain,
    Login,
    Xoauth2,
}

impl AuthMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "plain",
            AuthMechanism::Login => "login",
            AuthMechanism::Xoauth2 => "xoauth2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderPreset {
    Brevo,
    Ses,
    Sendgrid,
    Mailgun,
    Postmark,
    Gmail,
    Microsoft365,
}

/// `[[providers]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: Name,
    pub preset: Option<ProviderPreset>,
    /// Region for presets that have one: `ses` (e.g. `eu-west-1`), `mailgun` (`us` or `eu`).
    pub region: Option<String>,
    pub host: Option<String>,
    pub port: Option<Port>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Mechanisms to try, in order of preference; the first the server offers is used.
    pub auth: Option<Vec<AuthMechanism>>,
    pub oauth2: Option<OAuth2Config>,
    /// Envelope sender and From address of the canaries.
    pub from: String,
    /// The envelope sender (return path) of the canaries, with `{token}` (VERP), so that a
    /// bounce names the canary it is for: `bounces+{token}@example.com`. Unset: `from`.
    pub bounce_address: Option<String>,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// No two canaries through this provider start closer together than this.
    pub min_gap: Option<Dur>,
    /// Name sent in EHLO; the exporter's host name when unset.
    pub helo_name: Option<String>,
    /// Extra headers added to every canary sent through this provider.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// XOAUTH2 credentials: a fixed access token (`password`), or a refresh token exchanged at
/// `token_url` before each send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub refresh_token: Secret,
    pub scope: Option<String>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedPreset {
    Gmail,
    Outlook,
    Yahoo,
    Fastmail,
    Icloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapAuth {
    Login,
    Plain,
    Xoauth2,
}

/// `[[seeds]]` as written: a mailbox canaries are sent to and watched in over IMAP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSpec {
    pub name: Name,
    pub address: String,
    pub preset: Option<SeedPreset>,
    pub host: Option<String>,
    pub port: Option<Port>,
    pub tls: Option<TlsMode>,
    /// The IMAP login; the seed's address when unset.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub auth: Option<ImapAuth>,
    pub oauth2: Option<OAuth2Config>,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `"auto"` (SPECIAL-USE \Junk, then well-known names) or the folder's name.
    #[serde(default = "auto")]
    pub spam_folder: String,
    /// The receiving server's authserv-id (e.g. `mx.google.com`): only Authentication-Results
    /// headers with it are trusted. Unset: the topmost header is.
    pub authserv_id: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// `[[domains]]` as written: a sending domain whose DNS records are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    pub name: String,
    #[serde(default)]
    pub dkim_selectors: Vec<String>,
    /// IPs that must pass SPF for this domain (besides sending hosts seen in canaries).
    #[serde(default)]
    pub expected_ips: Vec<IpAddr>,
    #[serde(default = "yes")]
    pub mta_sts: bool,
    /// CA file trusted for fetching the MTA-STS policy (besides the web PKI).
    pub mta_sts_ca_file: Option<PathBuf>,
    /// Port of the MTA-STS policy host (443); tests use another.
    pub mta_sts_port: Option<Port>,
}

/// `[dnsbl]`: DNS blacklists checked for the configured IPs and domains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsblConfig {
    pub enabled: bool,
    pub interval: Dur,
    /// Catalogue names (`spamhaus-zen`, `spamcop`, ...) or zone names of the built-in catalogue.
    pub lists: Vec<String>,
    pub custom: Vec<CustomZone>,
    pub ips: Vec<IpAddr>,
    pub domains: Vec<String>,
    /// Spamhaus Data Query Service key: queries go to `<key>.zen.dq.spamhaus.net`.
    pub dqs_key: Option<Secret>,
    /// Also check the public IPs of the providers' sending hosts seen in canaries.
    pub include_provider_ips: bool,
    /// Queries in flight at once.
    pub concurrency: usize,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            enabled: true,
            interval: Dur::secs(900),
            lists: Vec::new(),
            custom: Vec::new(),
            ips: Vec::new(),
            domains: Vec::new(),
            dqs_key: None,
            include_provider_ips: true,
            concurrency: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    Ip,
    Domain,
}

/// A user-defined DNS blacklist zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomZone {
    pub name: Name,
    pub zone: String,
    pub kind: ZoneKind,
    /// Meaning of each answer, e.g. `"127.0.0.2" = "listed"`; any other 127.0.0.0/8 answer
    /// counts as listed with meaning `listed`.
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// Whether the zone answers the RFC 5782 test entry (127.0.0.2 / `test`).
    #[serde(default = "yes")]
    pub test_entry: bool,
}

/// `[reports]`. A source is held as written ([`ReportSourceSpec`]) while the file is read, and
/// resolved ([`ReportSource`]) in a loaded configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig<S = ReportSource> {
    pub enabled: bool,
    pub interval: Dur,
    pub sources: Vec<S>,
    pub source_map: Vec<SourceMapEntry>,
    /// Cap on the decompressed size of one report.
    pub max_decompressed_bytes: u64,
    pub max_records: u64,
    pub max_archive_members: u32,
    /// Reports for domains not in `[[domains]]`: `other` (counted under domain="other") or
    /// `ignore`.
    pub unknown_domains: UnknownDomains,
    /// Cap on distinct label sets of the report metrics.
    pub label_limit: usize,
    /// How long a report's identity is remembered to refuse duplicates.
    pub ledger_retention: Dur,
}

impl<S> Default for ReportsConfig<S> {
    fn default() -> Self {
        ReportsConfig {
            enabled: true,
            interval: Dur::secs(300),
            sources: Vec::new(),
            source_map: Vec::new(),
            max_decompressed_bytes: 64 << 20,
            max_records: 1_000_000,
            max_archive_members: 64,
            unknown_domains: UnknownDomains::Other,
            label_limit: 10_000,
            ledger_retention: Dur::secs(90 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownDomains {
    Other,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Imap,
    Dir,
    Https,
}

/// `[[reports.sources]]` as written: where reports arrive. `kind = "dir"` uses `path`;
/// `kind = "imap"` uses the IMAP fields; `kind = "https"` (TLS-RPT reports POSTed, RFC 8460
/// §3) uses `listen_address`, `url_path`, `tls_cert_file`, `tls_key_file`, `max_body_bytes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSourceSpec {
    pub name: Name,
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    /// `dir`: move files to `processed/` and `failed/` (true) or leave them in place.
    #[serde(default = "yes")]
    pub move_files: bool,
    pub host: Option<String>,
    pub port: Option<Port>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    #[serde(default = "inbox")]
    pub folder: String,
    pub processed_folder: Option<String>,
    pub error_folder: Option<String>,
    pub listen_address: Option<String>,
    pub url_path: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub max_body_bytes: Option<u64>,
}

/// `[[reports.source_map]]`: names a sending source by its networks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceMapEntry {
    pub name: Name,
    pub cidrs: Vec<String>,
}

fn yes() -> bool {
    true
}
fn auto() -> String {
    "auto".into()
}
fn inbox() -> String {
    "INBOX".into()
}

/// `[postmaster]`: Google Postmaster Tools API v2, daily data polled on `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmasterConfig {
    pub enabled: bool,
    pub interval: Dur,
    /// Each request's timeout (token exchange included).
    pub timeout: Dur,
    /// The API's origin; a test or a proxy may replace it.
    pub base_url: String,
    /// A service account's JSON key (JWT bearer grant, RFC 7523).
    pub credentials_file: Option<PathBuf>,
    /// Or the OAuth2 refresh-token flow of a user who has access to the domains.
    pub oauth2: Option<OAuth2Config>,
    /// Replaces the key file's `token_uri`.
    pub token_url: Option<String>,
    /// The domains to query; empty: every domain the API lists for the account.
    pub domains: Vec<String>,
    /// How many days back each poll asks for (the newest day with data is exported).
    pub days: u32,
    /// Cap on the domains exported (a label value each).
    pub max_domains: usize,
    /// CA certificates to trust instead of the system's (a private proxy, the tests).
    pub ca_file: Option<PathBuf>,
}

impl Default for PostmasterConfig {
    fn default() -> Self {
        PostmasterConfig {
            enabled: true,
            interval: Dur::secs(3600),
            timeout: Dur::secs(30),
            base_url: "https://gmailpostmastertools.googleapis.com".into(),
            credentials_file: None,
            oauth2: None,
            token_url: None,
            domains: Vec::new(),
            days: 7,
            max_domains: 100,
            ca_file: None,
        }
    }
}

/// `[snds]`: Microsoft SNDS automated data access, with the account's key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SndsConfig {
    pub enabled: bool,
    pub interval: Dur,
    pub timeout: Dur,
    /// Where `data.aspx` and `ipStatus.aspx` are.
    pub base_url: String,
    /// The automated data access key (a secret: it is the only credential).
    pub key: Option<Secret>,
    /// Cap on the IP addresses exported (a label value each).
    pub max_ips: usize,
    pub ca_file: Option<PathBuf>,
}

impl Default for SndsConfig {
    fn default() -> Self {
        SndsConfig {
            enabled: true,
            interval: Dur::secs(3600),
            timeout: Dur::secs(30),
            base_url: "https://sendersupport.olc.protection.outlook.com/snds".into(),
            key: None,
            max_ips: 1024,
            ca_file: None,
        }
    }
}
