//! Configuration: the TOML file, read strictly and checked before anything runs.
//!
//! Loading goes in three steps. The file is parsed into the schema of [`schema`] (unknown
//! fields are errors, secrets are read from where they live); presets fill in what a user left
//! out ([`presets`]); then every rule that serde can't express is checked. Every problem is
//! reported as `file:line:column: field.path: what is expected`, and all problems of the
//! validation step are reported at once. A loaded [`Config`] is complete: later code never
//! needs a default or a fallback.

pub mod dnsbl_lists;
pub mod presets;
pub mod schema;
pub mod values;

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

pub use schema::{
    AuthMechanism, CanaryConfig, Cleanup, CustomZone, DnsConfig, DnsblConfig, DomainConfig,
    ExporterConfig, ImapAuth, OAuth2Config, ProviderPreset, ReportSourceSpec, ReportsConfig,
    SourceKind, SourceMapEntry, TlsMode, UnknownDomains, ZoneKind,
};
pub use values::{Dur, Name, Secret};

use presets::UsernameRule;

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
    pub domains: Vec<DomainConfig>,
    pub dnsbl: DnsblConfig,
    pub reports: ReportsConfig,
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
        let err = |problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        };
        let tree = match toml::de::DeTable::parse(text) {
            Ok(t) => {
                let span = t.span();
                toml::Spanned::new(span, DeValue::Table(t.into_inner()))
            }
            Err(e) => {
                return Err(err(vec![Problem::at_span(
                    text,
                    e.span(),
                    String::new(),
                    e.message().to_string(),
                )]));
            }
        };
        let de = match toml::de::Deserializer::parse(text) {
            Ok(d) => d,
            Err(e) => {
                return Err(err(vec![Problem::at_span(
                    text,
                    e.span(),
                    String::new(),
                    e.message().to_string(),
                )]));
            }
        };
        let spec: schema::FileSpec = match serde_path_to_error::deserialize(de) {
            Ok(s) => s,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let path = if path == "." { String::new() } else { path };
                let span = inner.span().or_else(|| span_of(&tree, &path));
                return Err(err(vec![Problem::at_span(
                    text,
                    span,
                    path,
                    inner.message().to_string(),
                )]));
            }
        };
        let mut v = Validator {
            text,
            tree: &tree,
            problems: Vec::new(),
        };
        let config = v.resolve(path, spec);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            let mut problems = v.problems;
            problems.sort_by_key(|p| (p.line, p.column));
            Err(err(problems))
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

/// Why a configuration was refused: one or more problems, each with its position.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column of the offending value, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field path, e.g. `providers[1].port`; empty for the document itself.
    pub field: String,
    pub message: String,
}

impl Problem {
    fn whole_file(message: String) -> Problem {
        Problem {
            line: None,
            column: None,
            field: String::new(),
            message,
        }
    }

    fn at_span(
        text: &str,
        span: Option<std::ops::Range<usize>>,
        field: String,
        message: String,
    ) -> Problem {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Problem {
            line,
            column,
            field,
            message: tidy_message(&message),
        }
    }
}

/// toml's messages sometimes end in a newline or repeat the "invalid value" preamble.
fn tidy_message(m: &str) -> String {
    m.trim().to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let (Some(l), Some(c)) = (p.line, p.column) {
                write!(f, ":{l}:{c}")?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Finds the span of a field path like `providers[1].port` in the parsed document. When the
/// field itself is absent, the closest enclosing table's span is returned.
fn span_of(tree: &toml::Spanned<DeValue<'_>>, path: &str) -> Option<std::ops::Range<usize>> {
    let mut cur = tree;
    let mut best = None;
    for seg in path_segments(path) {
        let next = match seg {
            Seg::Key(k) => cur.get_ref().as_table().and_then(|t| {
                t.iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| {
                        // Point at the key for tables (their own span is the whole table).
                        if v.get_ref().is_table() {
                            (key.span(), v)
                        } else {
                            (v.span(), v)
                        }
                    })
            }),
            Seg::Index(i) => cur
                .get_ref()
                .as_array()
                .and_then(|a| a.get(i))
                .map(|v| (v.span(), v)),
        };
        match next {
            Some((span, v)) => {
                best = Some(span);
                cur = v;
            }
            None => break,
        }
    }
    best
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part
            .split_once('[')
            .map(|(k, r)| (k, Some(r)))
            .unwrap_or((part, None));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest {
            let (idx, after) = r.split_once(']').unwrap_or((r, ""));
            if let Ok(i) = idx.parse() {
                out.push(Seg::Index(i));
            }
            rest = after.strip_prefix('[');
        }
    }
    out
}

/// Collects the problems of the validation step with their positions.
struct Validator<'t> {
    text: &'t str,
    tree: &'t toml::Spanned<DeValue<'t>>,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        let span = span_of(self.tree, &field);
        self.problems
            .push(Problem::at_span(self.text, span, field, message.into()));
    }

    fn resolve(&mut self, path: &Path, spec: schema::FileSpec) -> Config {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.check_exporter(&spec.exporter);
        self.check_dns(&spec.dns);
        self.check_canary(&spec.canary);
        let providers = self.resolve_providers(&base, spec.providers);
        let seeds = self.resolve_seeds(&base, spec.seeds);
        self.check_domains(&spec.domains);
        self.check_dnsbl(&spec.dnsbl);
        self.check_reports(&base, &spec.reports);
        Config {
            path: path.to_path_buf(),
            exporter: spec.exporter,
            dns: spec.dns,
            canary: spec.canary,
            providers,
            seeds,
            domains: spec.domains,
            dnsbl: spec.dnsbl,
            reports: spec.reports,
        }
    }

    fn check_exporter(&mut self, e: &ExporterConfig) {
        if e.state_dir.as_os_str().is_empty() {
            self.problem("exporter.state_dir", "expected a directory path");
        }
        if let Some(i) = &e.instance
            && (i.is_empty() || i.len() > 128 || i.chars().any(char::is_control))
        {
            self.problem("exporter.instance", "expected 1-128 printable characters");
        }
    }

    fn check_dns(&mut self, d: &DnsConfig) {
        if d.timeout.get() < Duration::from_millis(10) || d.timeout.get() > Duration::from_secs(60)
        {
            self.problem("dns.timeout", "expected a duration between 10ms and 60s");
        }
        if d.attempts == 0 || d.attempts > 10 {
            self.problem("dns.attempts", "expected an integer 1-10");
        }
        if d.interval.get() < Duration::from_secs(10) {
            self.problem("dns.interval", "expected at least 10s");
        }
    }

    fn check_canary(&mut self, c: &CanaryConfig) {
        if c.interval.get() < Duration::from_secs(1) {
            self.problem("canary.interval", "expected at least 1s");
        }
        if c.deadline.get() < Duration::from_secs(1) {
            self.problem("canary.deadline", "expected at least 1s");
        }
        if !(0.0..=1.0).contains(&c.jitter) {
            self.problem(
                "canary.jitter",
                "expected a fraction of the interval between 0 and 1",
            );
        }
        if !c.subject.contains("{token}") {
            self.problem(
                "canary.subject",
                "must contain {token}: the canary is found by it when a provider drops its headers",
            );
        }
        if c.subject.contains(['\r', '\n']) {
            self.problem("canary.subject", "must be one line");
        }
        if c.cleanup == Cleanup::Move && c.move_to.as_deref().is_none_or(str::is_empty) {
            self.problem(
                "canary.move_to",
                "cleanup = \"move\" needs the folder name in move_to",
            );
        }
        for (field, d) in [
            ("canary.smtp_timeout", c.smtp_timeout),
            ("canary.imap_timeout", c.imap_timeout),
        ] {
            if d.get() < Duration::from_millis(100) {
                self.problem(field, "expected at least 100ms");
            }
        }
        if c.idle_refresh.get() < Duration::from_secs(10)
            || c.idle_refresh.get() > Duration::from_secs(29 * 60)
        {
            self.problem(
                "canary.idle_refresh",
                "expected between 10s and 29m (servers end IDLE after 30 minutes)",
            );
        }
        if c.poll_interval.get() < Duration::from_millis(100) {
            self.problem("canary.poll_interval", "expected at least 100ms");
        }
        if c.verify_interval.get() < Duration::from_millis(100) {
            self.problem("canary.verify_interval", "expected at least 100ms");
        } else if c.verify_interval.get() >= c.deadline.get() {
            self.problem(
                "canary.verify_interval",
                "must be shorter than canary.deadline: a canary must be looked for before it can be counted lost",
            );
        }
    }

    fn check_file(
        &mut self,
        field: String,
        base: &Path,
        file: &Option<PathBuf>,
    ) -> Option<PathBuf> {
        let f = file.as_ref()?;
        let full = if f.is_absolute() {
            f.clone()
        } else {
            base.join(f)
        };
        if let Err(e) = std::fs::metadata(&full) {
            self.problem(
                field,
                format!("cannot read {}: {}", full.display(), values::io_reason(&e)),
            );
        }
        Some(full)
    }

    fn resolve_providers(
        &mut self,
        base: &Path,
        specs: Vec<schema::ProviderSpec>,
    ) -> Vec<Provider> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, p) in specs.into_iter().enumerate() {
            let at = |f: &str| format!("providers[{i}].{f}");
            if !names.insert(p.name.0.clone()) {
                self.problem(
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
                    self.problem(at("region"), msg);
                    None
                }
                None => {
                    if p.region.is_some() {
                        self.problem(at("region"), "`region` is only used with a preset");
                    }
                    None
                }
            };
            let tls = p
                .tls
                .or(defaults.as_ref().map(|d| d.tls))
                .unwrap_or(match p.port {
                    Some(values::Port(465)) => TlsMode::Implicit,
                    Some(values::Port(25)) => TlsMode::None,
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
            let host = match p.host.clone().or(defaults.as_ref().map(|d| d.host.clone())) {
                Some(h) => {
                    if let Err(e) = check_host(&h) {
                        self.problem(at("host"), e);
                    }
                    h
                }
                None => {
                    self.problem(
                        at("host"),
                        "expected the SMTP server's host name (or a preset)",
                    );
                    String::new()
                }
            };
            let from_domain = match check_address(&p.from) {
                Ok(d) => d,
                Err(e) => {
                    self.problem(at("from"), e);
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
                self.problem(
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
                    self.problem(
                        at("username"),
                        "expected the SMTP login (the preset does not imply one)",
                    );
                    None
                }
                (Some(_), None, None) => {
                    self.problem(at("password"), "a username needs a password (a string, { env = \"NAME\" } or { file = \"/path\" })");
                    None
                }
            };
            if p.oauth2.is_some() && !auth.contains(&AuthMechanism::Xoauth2) {
                self.problem(at("auth"), "an [oauth2] section needs \"xoauth2\" in auth");
            }
            if let Some(o) = &p.oauth2 {
                self.check_oauth2(&at("oauth2"), o);
            }
            let ca_file = self.check_file(at("ca_file"), base, &p.ca_file);
            for (k, v) in &p.headers {
                if !is_header_name(k) {
                    self.problem(
                        format!("providers[{i}].headers.{k}"),
                        "expected a header name of printable ASCII without ':' or spaces",
                    );
                } else if v.contains(['\r', '\n']) {
                    self.problem(
                        format!("providers[{i}].headers.{k}"),
                        "header values must be one line",
                    );
                }
            }
            if let Some(h) = &p.helo_name
                && let Err(e) = check_host(h)
            {
                self.problem(at("helo_name"), e);
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
                oauth2: p.oauth2,
                from: p.from,
                from_domain,
                ca_file,
                insecure_skip_verify: p.insecure_skip_verify,
                min_gap: p.min_gap.map(Dur::get).unwrap_or(Duration::ZERO),
                helo_name: p.helo_name,
                headers: p.headers.into_iter().collect(),
            });
        }
        out
    }

    fn check_oauth2(&mut self, at: &str, o: &OAuth2Config) {
        if !(o.token_url.starts_with("https://")
            || o.token_url.starts_with("http://127.")
            || o.token_url.starts_with("http://[::1]"))
        {
            self.problem(format!("{at}.token_url"), "expected an https:// URL");
        }
        if o.client_id.is_empty() {
            self.problem(format!("{at}.client_id"), "expected the OAuth2 client id");
        }
    }

    fn resolve_seeds(&mut self, base: &Path, specs: Vec<schema::SeedSpec>) -> Vec<Seed> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, s) in specs.into_iter().enumerate() {
            let at = |f: &str| format!("seeds[{i}].{f}");
            if !names.insert(s.name.0.clone()) {
                self.problem(at("name"), format!("duplicate seed name {:?}", s.name.0));
            }
            if let Err(e) = check_address(&s.address) {
                self.problem(at("address"), e);
            }
            let preset = s.preset.map(presets::seed);
            let tls = s.tls.or(preset.map(|p| p.2)).unwrap_or(match s.port {
                Some(values::Port(143)) => TlsMode::Starttls,
                _ => TlsMode::Implicit,
            });
            let port = s
                .port
                .map(|p| p.0)
                .or(preset.map(|p| p.1))
                .unwrap_or(match tls {
                    TlsMode::Implicit => 993,
                    _ => 143,
                });
            let host = match s.host.clone().or(preset.map(|p| p.0.to_string())) {
                Some(h) => {
                    if let Err(e) = check_host(&h) {
                        self.problem(at("host"), e);
                    }
                    h
                }
                None => {
                    self.problem(
                        at("host"),
                        "expected the IMAP server's host name (or a preset)",
                    );
                    String::new()
                }
            };
            let auth = s.auth.unwrap_or(if s.oauth2.is_some() {
                ImapAuth::Xoauth2
            } else {
                ImapAuth::Login
            });
            if s.password.is_none() && s.oauth2.is_none() {
                self.problem(at("password"), "expected the IMAP password (a string, { env = \"NAME\" } or { file = \"/path\" }) or an oauth2 section");
            }
            if auth == ImapAuth::Xoauth2 && s.password.is_none() && s.oauth2.is_none() {
                self.problem(
                    at("auth"),
                    "xoauth2 needs an access token in password or an oauth2 section",
                );
            }
            if let Some(o) = &s.oauth2 {
                self.check_oauth2(&at("oauth2"), o);
            }
            let spam_folder = match s.spam_folder.as_str() {
                "auto" => SpamFolder::Auto,
                "" => {
                    self.problem(at("spam_folder"), "expected \"auto\" or a folder name");
                    SpamFolder::Auto
                }
                name => SpamFolder::Named(name.to_string()),
            };
            let ca_file = self.check_file(at("ca_file"), base, &s.ca_file);
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
                oauth2: s.oauth2,
                ca_file,
                insecure_skip_verify: s.insecure_skip_verify,
                spam_folder,
                authserv_id: s.authserv_id,
            });
        }
        out
    }

    fn check_domains(&mut self, domains: &[DomainConfig]) {
        let mut names = HashSet::new();
        for (i, d) in domains.iter().enumerate() {
            if let Err(e) = check_host(&d.name) {
                self.problem(format!("domains[{i}].name"), e);
            }
            if !names.insert(d.name.to_ascii_lowercase()) {
                self.problem(
                    format!("domains[{i}].name"),
                    format!("duplicate domain {:?}", d.name),
                );
            }
            for (j, sel) in d.dkim_selectors.iter().enumerate() {
                if check_host(sel).is_err() {
                    self.problem(
                        format!("domains[{i}].dkim_selectors[{j}]"),
                        format!("expected a DKIM selector (DNS labels), got {sel:?}"),
                    );
                }
            }
        }
    }

    fn check_dnsbl(&mut self, d: &DnsblConfig) {
        if d.interval.get() < Duration::from_secs(10) {
            self.problem("dnsbl.interval", "expected at least 10s");
        }
        if d.concurrency == 0 || d.concurrency > 1024 {
            self.problem("dnsbl.concurrency", "expected an integer 1-1024");
        }
        for (i, dom) in d.domains.iter().enumerate() {
            if let Err(e) = check_host(dom) {
                self.problem(format!("dnsbl.domains[{i}]"), e);
            }
        }
        for (i, l) in d.lists.iter().enumerate() {
            if !dnsbl_lists::is_known(l) {
                self.problem(
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
                self.problem(format!("dnsbl.custom[{i}].zone"), e);
            }
            if !names.insert(z.name.0.clone()) {
                self.problem(
                    format!("dnsbl.custom[{i}].name"),
                    format!("duplicate zone name {:?}", z.name.0),
                );
            }
            for code in z.codes.keys() {
                if code.parse::<std::net::Ipv4Addr>().is_err() {
                    self.problem(
                        format!("dnsbl.custom[{i}].codes"),
                        format!(
                            "expected IPv4 answer codes like \"127.0.0.2\" as keys, got {code:?}"
                        ),
                    );
                }
            }
        }
    }

    fn check_reports(&mut self, base: &Path, r: &ReportsConfig) {
        if r.interval.get() < Duration::from_secs(1) {
            self.problem("reports.interval", "expected at least 1s");
        }
        if r.max_decompressed_bytes < 1024 {
            self.problem("reports.max_decompressed_bytes", "expected at least 1024");
        }
        if r.max_archive_members == 0 {
            self.problem("reports.max_archive_members", "expected at least 1");
        }
        if r.label_limit == 0 {
            self.problem("reports.label_limit", "expected at least 1");
        }
        let mut names = HashSet::new();
        for (i, s) in r.sources.iter().enumerate() {
            let at = |f: &str| format!("reports.sources[{i}].{f}");
            if !names.insert(s.name.0.clone()) {
                self.problem(at("name"), format!("duplicate source name {:?}", s.name.0));
            }
            match s.kind {
                SourceKind::Dir => {
                    match &s.path {
                        None => {
                            self.problem(at("path"), "kind = \"dir\" needs the directory in path")
                        }
                        Some(p) => {
                            let full = if p.is_absolute() {
                                p.clone()
                            } else {
                                base.join(p)
                            };
                            if !full.is_dir() {
                                self.problem(
                                    at("path"),
                                    format!("{} is not a directory", full.display()),
                                );
                            }
                        }
                    }
                    for f in ["host", "username"] {
                        let set = if f == "host" {
                            s.host.is_some()
                        } else {
                            s.username.is_some()
                        };
                        if set {
                            self.problem(at(f), "is only used with kind = \"imap\"");
                        }
                    }
                }
                SourceKind::Imap => {
                    if s.host.as_deref().is_none_or(|h| check_host(h).is_err()) {
                        self.problem(
                            at("host"),
                            "kind = \"imap\" needs the IMAP server's host name",
                        );
                    }
                    if s.username.is_none() {
                        self.problem(at("username"), "kind = \"imap\" needs the IMAP login");
                    }
                    if s.password.is_none() {
                        self.problem(at("password"), "kind = \"imap\" needs the IMAP password");
                    }
                    if s.path.is_some() {
                        self.problem(at("path"), "is only used with kind = \"dir\"");
                    }
                    self.check_file(at("ca_file"), base, &s.ca_file);
                }
            }
        }
        for (i, m) in r.source_map.iter().enumerate() {
            for (j, c) in m.cidrs.iter().enumerate() {
                if parse_cidr(c).is_none() {
                    self.problem(format!("reports.source_map[{i}].cidrs[{j}]"), format!("expected a network like \"192.0.2.0/24\" or \"2001:db8::/32\", got {c:?}"));
                }
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

#[cfg(test)]
mod tests;
