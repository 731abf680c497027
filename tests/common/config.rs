//! Exporter configurations for the suites, built by name instead of by position:
//!
//! ```ignore
//! let cfg = ConfigBuilder::new(&dir)
//!     .canary(Canary::new().deadline("30s").smtp_timeout("5s"))
//!     .provider(
//!         Provider::starttls("good", st.port("DX_SMTP_SUBMIT_PORT"))
//!             .login("sender1@dx.test", "pw-sender1")
//!             .ca_file(st.get("DX_CA_FILE")),
//!     )
//!     .seed(
//!         Seed::implicit_tls("s1", st.port("DX_IMAPS_PORT"))
//!             .address("seed1@seed.test")
//!             .login("seed1@seed.test", "pw-seed1")
//!             .ca_file(st.get("DX_CA_FILE")),
//!     )
//!     .write();
//! ```
//!
//! Only what a test sets is written; everything else is left to the exporter's defaults. Every
//! server is on 127.0.0.1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Stack, TempDir};

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings.
fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The keys of one table, in the order they were set.
#[derive(Clone, Debug, Default)]
struct Keys(Vec<(&'static str, String)>);

impl Keys {
    fn set(&mut self, key: &'static str, toml_value: String) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, toml_value));
    }

    fn str(&mut self, key: &'static str, value: &str) {
        self.set(key, q(value));
    }

    fn render(&self, out: &mut String) {
        for (k, v) in &self.0 {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

/// TLS on a provider's or a seed's connection (`tls = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Starttls,
    Implicit,
    None,
}

impl Tls {
    fn as_str(self) -> &'static str {
        match self {
            Tls::Starttls => "starttls",
            Tls::Implicit => "implicit",
            Tls::None => "none",
        }
    }
}

/// `[canary]`.
#[derive(Clone, Debug, Default)]
pub struct Canary(Keys);

impl Canary {
    pub fn new() -> Canary {
        Canary::default()
    }
    pub fn interval(mut self, d: &str) -> Self {
        self.0.str("interval", d);
        self
    }
    pub fn jitter(mut self, fraction: f64) -> Self {
        // `{:?}` keeps the decimal point: TOML reads `0` as an integer.
        self.0.set("jitter", format!("{fraction:?}"));
        self
    }
    pub fn deadline(mut self, d: &str) -> Self {
        self.0.str("deadline", d);
        self
    }
    /// `route_requirements`: the sender requirements per route too.
    pub fn route_requirements(mut self, on: bool) -> Self {
        self.0.set("route_requirements", on.to_string());
        self
    }
    pub fn smtp_timeout(mut self, d: &str) -> Self {
        self.0.str("smtp_timeout", d);
        self
    }
    pub fn imap_timeout(mut self, d: &str) -> Self {
        self.0.str("imap_timeout", d);
        self
    }
    pub fn poll_interval(mut self, d: &str) -> Self {
        self.0.str("poll_interval", d);
        self
    }
    pub fn verify_interval(mut self, d: &str) -> Self {
        self.0.str("verify_interval", d);
        self
    }
    /// `cleanup = "move"` with `move_to = folder`.
    pub fn move_to(mut self, folder: &str) -> Self {
        self.0.str("cleanup", "move");
        self.0.str("move_to", folder);
        self
    }
    pub fn sweep_older_than(mut self, d: &str) -> Self {
        self.0.str("sweep_older_than", d);
        self
    }
}

/// One `[[providers]]` entry: an SMTP server on 127.0.0.1, sending as `canary@dx.test` unless
/// told otherwise, without AUTH unless given a login.
#[derive(Clone, Debug)]
pub struct Provider {
    name: String,
    port: u16,
    tls: Tls,
    login: Option<(String, String)>,
    from: String,
    ca_file: Option<String>,
    extra: Keys,
    headers: Vec<(String, String)>,
}

impl Provider {
    pub fn new(name: &str, port: u16, tls: Tls) -> Provider {
        Provider {
            name: name.into(),
            port,
            tls,
            login: None,
            from: "canary@dx.test".into(),
            ca_file: None,
            extra: Keys::default(),
            headers: Vec::new(),
        }
    }
    /// Plain connection upgraded with STARTTLS.
    pub fn starttls(name: &str, port: u16) -> Provider {
        Provider::new(name, port, Tls::Starttls)
    }
    /// TLS from the first byte.
    pub fn implicit_tls(name: &str, port: u16) -> Provider {
        Provider::new(name, port, Tls::Implicit)
    }
    /// No TLS at all.
    pub fn no_tls(name: &str, port: u16) -> Provider {
        Provider::new(name, port, Tls::None)
    }
    /// SMTP AUTH as `username` with `password`.
    pub fn login(mut self, username: &str, password: &str) -> Self {
        self.login = Some((username.into(), password.into()));
        self
    }
    pub fn from(mut self, address: &str) -> Self {
        self.from = address.into();
        self
    }
    pub fn ca_file(mut self, path: &str) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// The AUTH mechanisms allowed, in order of preference (`auth = [...]`).
    pub fn auth(mut self, mechanisms: &[&str]) -> Self {
        let m: Vec<String> = mechanisms.iter().map(|s| s.to_string()).collect();
        self.extra.set("auth", list(&m));
        self
    }
    pub fn min_gap(mut self, d: &str) -> Self {
        self.extra.str("min_gap", d);
        self
    }
    /// The envelope sender with `{token}` (VERP).
    pub fn bounce_address(mut self, template: &str) -> Self {
        self.extra.str("bounce_address", template);
        self
    }
    /// An extra header on every canary sent through this provider.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn render(&self, out: &mut String) {
        out.push_str("[[providers]]\n");
        let mut k = Keys::default();
        k.str("name", &self.name);
        k.str("host", "127.0.0.1");
        k.set("port", self.port.to_string());
        k.str("tls", self.tls.as_str());
        if let Some((u, p)) = &self.login {
            k.str("username", u);
            k.str("password", p);
        }
        k.str("from", &self.from);
        if let Some(ca) = &self.ca_file {
            k.str("ca_file", ca);
        }
        k.render(out);
        self.extra.render(out);
        if !self.headers.is_empty() {
            let h: Vec<String> = self
                .headers
                .iter()
                .map(|(n, v)| format!("{} = {}", q(n), q(v)))
                .collect();
            let _ = writeln!(out, "headers = {{ {} }}", h.join(", "));
        }
        out.push('\n');
    }
}

/// One `[[seeds]]` entry: an IMAP mailbox on 127.0.0.1 receiving the canaries sent to
/// `address`.
#[derive(Clone, Debug)]
pub struct Seed {
    name: String,
    port: u16,
    tls: Tls,
    keys: Keys,
}

impl Seed {
    pub fn new(name: &str, port: u16, tls: Tls) -> Seed {
        Seed {
            name: name.into(),
            port,
            tls,
            keys: Keys::default(),
        }
    }
    /// Plain connection upgraded with STARTTLS.
    pub fn starttls(name: &str, port: u16) -> Seed {
        Seed::new(name, port, Tls::Starttls)
    }
    /// TLS from the first byte.
    pub fn implicit_tls(name: &str, port: u16) -> Seed {
        Seed::new(name, port, Tls::Implicit)
    }
    /// No TLS at all.
    pub fn no_tls(name: &str, port: u16) -> Seed {
        Seed::new(name, port, Tls::None)
    }
    /// The address canaries are sent to.
    pub fn address(mut self, address: &str) -> Self {
        self.keys.str("address", address);
        self
    }
    /// IMAP login as `username` with `password`.
    pub fn login(mut self, username: &str, password: &str) -> Self {
        self.keys.str("username", username);
        self.keys.str("password", password);
        self
    }
    /// The password alone (the login name is then the address).
    pub fn password(mut self, password: &str) -> Self {
        self.keys.str("password", password);
        self
    }
    /// The IMAP authentication (`auth = "plain"` for AUTHENTICATE PLAIN).
    pub fn auth(mut self, method: &str) -> Self {
        self.keys.str("auth", method);
        self
    }
    pub fn ca_file(mut self, path: &str) -> Self {
        self.keys.str("ca_file", path);
        self
    }
    /// The folder spam lands in, named instead of found by SPECIAL-USE.
    pub fn spam_folder(mut self, folder: &str) -> Self {
        self.keys.str("spam_folder", folder);
        self
    }
    /// The receiver whose Authentication-Results headers are trusted.
    pub fn authserv_id(mut self, id: &str) -> Self {
        self.keys.str("authserv_id", id);
        self
    }

    fn render(&self, out: &mut String) {
        out.push_str("[[seeds]]\n");
        let mut k = Keys::default();
        k.str("name", &self.name);
        k.str("host", "127.0.0.1");
        k.set("port", self.port.to_string());
        k.str("tls", self.tls.as_str());
        k.render(out);
        self.keys.render(out);
        out.push('\n');
    }
}

/// `[dns]`: the nameservers and how they are asked.
#[derive(Clone, Debug, Default)]
pub struct Dns(Keys);

impl Dns {
    /// Asks the nameserver on 127.0.0.1:`port` only.
    pub fn local(port: u16) -> Dns {
        let mut k = Keys::default();
        k.set("nameservers", list(&[format!("127.0.0.1:{port}")]));
        Dns(k)
    }
    pub fn timeout(mut self, d: &str) -> Self {
        self.0.str("timeout", d);
        self
    }
    pub fn attempts(mut self, n: u32) -> Self {
        self.0.set("attempts", n.to_string());
        self
    }
    /// How often the `[[domains]]` are checked.
    pub fn interval(mut self, d: &str) -> Self {
        self.0.str("interval", d);
        self
    }
}

/// One `[[domains]]` entry.
#[derive(Clone, Debug)]
pub struct Domain(Keys);

impl Domain {
    pub fn new(name: &str) -> Domain {
        let mut k = Keys::default();
        k.str("name", name);
        Domain(k)
    }
    /// Whether the MTA-STS policy is fetched and checked.
    pub fn mta_sts(mut self, on: bool) -> Self {
        self.0.set("mta_sts", on.to_string());
        self
    }
}

/// `[dnsbl]` and its `[[dnsbl.custom]]` zones.
#[derive(Clone, Debug, Default)]
pub struct Dnsbl {
    keys: Keys,
    custom: Vec<Keys>,
}

impl Dnsbl {
    pub fn new() -> Dnsbl {
        Dnsbl::default()
    }
    /// The IP addresses looked up.
    pub fn ips(mut self, ips: &[&str]) -> Self {
        let v: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        self.keys.set("ips", list(&v));
        self
    }
    /// A list of the operator's own: `name` at `zone`, of `kind` `ip` or `domain`.
    pub fn custom(mut self, name: &str, zone: &str, kind: &str) -> Self {
        let mut k = Keys::default();
        k.str("name", name);
        k.str("zone", zone);
        k.str("kind", kind);
        self.custom.push(k);
        self
    }
}

/// `[reports]` and its `[[reports.sources]]`.
#[derive(Clone, Debug, Default)]
pub struct Reports {
    keys: Keys,
    sources: Vec<Keys>,
}

impl Reports {
    pub fn new() -> Reports {
        Reports::default()
    }
    pub fn interval(mut self, d: &str) -> Self {
        self.keys.str("interval", d);
        self
    }
    /// A source reading the stack's `reports@seed.test` mailbox over IMAPS, moving what it read
    /// to `Reports/processed` (the stack creates it).
    pub fn stack_mailbox_source(mut self, name: &str, st: &Stack) -> Self {
        let mut k = Keys::default();
        k.str("name", name);
        k.str("kind", "imap");
        k.str("host", "127.0.0.1");
        k.set("port", st.port("DX_IMAPS_PORT").to_string());
        k.str("tls", "implicit");
        k.str("username", st.get("DX_REPORTS_USER"));
        k.str("password", st.get("DX_REPORTS_PASSWORD"));
        k.str("ca_file", st.get("DX_CA_FILE"));
        k.str("processed_folder", "Reports/processed");
        self.sources.push(k);
        self
    }
    /// A source reading the report files put into `path`.
    pub fn dir_source(mut self, name: &str, path: &Path) -> Self {
        let mut k = Keys::default();
        k.str("name", name);
        k.str("kind", "dir");
        k.str("path", &path.display().to_string());
        self.sources.push(k);
        self
    }
}

/// The `[dns]` of a configuration that names none: a closed port on 127.0.0.1.
pub const NO_DNS: &str =
    "[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n\n";

/// A whole configuration file, its state directory inside a test's scratch directory.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    dir: PathBuf,
    instance: Option<String>,
    canary: Option<Canary>,
    providers: Vec<Provider>,
    seeds: Vec<Seed>,
    dns: Option<Dns>,
    domains: Vec<Domain>,
    dnsbl: Option<Dnsbl>,
    reports: Option<Reports>,
}

impl ConfigBuilder {
    /// A configuration with `state_dir` = `dir/state`, written to `dir/dx.toml`.
    pub fn new(dir: &TempDir) -> ConfigBuilder {
        ConfigBuilder {
            dir: dir.path().to_path_buf(),
            instance: None,
            canary: None,
            providers: Vec::new(),
            seeds: Vec::new(),
            dns: None,
            domains: Vec::new(),
            dnsbl: None,
            reports: None,
        }
    }
    /// `[exporter] instance`.
    pub fn instance(mut self, name: &str) -> Self {
        self.instance = Some(name.into());
        self
    }
    pub fn canary(mut self, c: Canary) -> Self {
        self.canary = Some(c);
        self
    }
    pub fn provider(mut self, p: Provider) -> Self {
        self.providers.push(p);
        self
    }
    pub fn seed(mut self, s: Seed) -> Self {
        self.seeds.push(s);
        self
    }
    pub fn dns(mut self, d: Dns) -> Self {
        self.dns = Some(d);
        self
    }
    pub fn domain(mut self, d: Domain) -> Self {
        self.domains.push(d);
        self
    }
    pub fn dnsbl(mut self, d: Dnsbl) -> Self {
        self.dnsbl = Some(d);
        self
    }
    pub fn reports(mut self, r: Reports) -> Self {
        self.reports = Some(r);
        self
    }

    /// The state directory the configuration names.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The configuration's text.
    pub fn render(&self) -> String {
        let mut out = String::from("[exporter]\n");
        let mut k = Keys::default();
        k.str("state_dir", &self.state_dir().display().to_string());
        if let Some(i) = &self.instance {
            k.str("instance", i);
        }
        k.render(&mut out);
        out.push('\n');
        if let Some(c) = &self.canary {
            out.push_str("[canary]\n");
            c.0.render(&mut out);
            out.push('\n');
        }
        for p in &self.providers {
            p.render(&mut out);
        }
        for s in &self.seeds {
            s.render(&mut out);
        }
        match &self.dns {
            Some(d) => {
                out.push_str("[dns]\n");
                d.0.render(&mut out);
                out.push('\n');
            }
            // Never the machine's resolver (/etc/resolv.conf may name a server off this host):
            // without a `[dns]` of the test's, lookups (the canaries' sender requirements) go to a
            // closed loopback port and fail at once.
            None => out.push_str(NO_DNS),
        }
        for d in &self.domains {
            out.push_str("[[domains]]\n");
            d.0.render(&mut out);
            out.push('\n');
        }
        if let Some(b) = &self.dnsbl {
            out.push_str("[dnsbl]\n");
            b.keys.render(&mut out);
            out.push('\n');
            for c in &b.custom {
                out.push_str("[[dnsbl.custom]]\n");
                c.render(&mut out);
                out.push('\n');
            }
        }
        if let Some(r) = &self.reports {
            out.push_str("[reports]\n");
            r.keys.render(&mut out);
            out.push('\n');
            for s in &r.sources {
                out.push_str("[[reports.sources]]\n");
                s.render(&mut out);
                out.push('\n');
            }
        }
        out
    }

    /// Writes the configuration to `dir/dx.toml` and returns that path.
    pub fn write(&self) -> PathBuf {
        let p = self.dir.join("dx.toml");
        std::fs::write(&p, self.render())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

/// The stack's correctly signing provider: Postfix submission with STARTTLS as
/// `sender1@dx.test`, From `canary@dx.test` (rspamd signs it; SPF, DKIM and DMARC pass).
pub fn signing_provider(st: &Stack, name: &str) -> Provider {
    Provider::starttls(name, st.port("DX_SMTP_SUBMIT_PORT"))
        .login("sender1@dx.test", "pw-sender1")
        .from("canary@dx.test")
        .ca_file(st.get("DX_CA_FILE"))
}

/// The stack's `seed1@seed.test` over IMAPS.
pub fn imaps_seed1(st: &Stack) -> Seed {
    Seed::implicit_tls("seed1", st.port("DX_IMAPS_PORT"))
        .address("seed1@seed.test")
        .password("pw-seed1")
        .ca_file(st.get("DX_CA_FILE"))
}
