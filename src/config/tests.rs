//! Configuration tests: a good file, each kind of bad file and the message it gets.

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(Path::new("deliverability.toml"), text)
}

fn err(text: &str) -> String {
    load(text)
        .expect_err("config should be refused")
        .to_string()
}

const GOOD: &str = r#"
[exporter]
state_dir = "/var/lib/dx"
instance = "eu-1"

[dns]
nameservers = ["127.0.0.1:5353"]
timeout = "2s"

[canary]
interval = "5m"
deadline = "15m"

[[providers]]
name = "brevo"
preset = "brevo"
username = "me@example.com"
password = "s3cret-brevo"
from = "canary@example.com"

[[providers]]
name = "sendgrid"
preset = "sendgrid"
password = "SG.key"
from = "canary@example.com"
port = 2525
tls = "none"

[[providers]]
name = "postmark"
preset = "postmark"
password = "pm-token"
from = "canary@example.com"

[[providers]]
name = "own"
host = "mail.example.com"
port = 465
username = "canary"
password = "pw"
from = "canary@example.com"
headers = { "X-Test" = "1" }

[[seeds]]
name = "gmail-1"
address = "seed@gmail.com"
preset = "gmail"
password = "app-password"

[[seeds]]
name = "local"
address = "seed1@seed.test"
host = "127.0.0.1"
port = 143
password = "pw-seed1"
spam_folder = "Spam"

[[domains]]
name = "example.com"
dkim_selectors = ["s1", "brevo1"]
expected_ips = ["192.0.2.1"]

[dnsbl]
ips = ["192.0.2.1", "2001:db8::1"]

[reports]
max_decompressed_bytes = 1048576
"#;

#[test]
fn good_config_loads_with_presets_applied() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.exporter.state_dir, PathBuf::from("/var/lib/dx"));
    assert_eq!(c.instance(), "eu-1");
    assert_eq!(c.dns.timeout.get(), Duration::from_secs(2));
    assert_eq!(c.providers.len(), 4);
    let brevo = &c.providers[0];
    assert_eq!(
        (brevo.host.as_str(), brevo.port, brevo.tls),
        ("smtp-relay.brevo.com", 587, TlsMode::Starttls)
    );
    assert_eq!(brevo.credentials.as_ref().unwrap().0, "me@example.com");
    assert_eq!(
        brevo.credentials.as_ref().unwrap().1.expose(),
        "s3cret-brevo"
    );
    let sg = &c.providers[1];
    assert_eq!(sg.credentials.as_ref().unwrap().0, "apikey");
    // Keys set by hand override the preset.
    assert_eq!((sg.port, sg.tls), (2525, TlsMode::None));
    let pm = &c.providers[2];
    assert_eq!(pm.credentials.as_ref().unwrap().0, "pm-token");
    let own = &c.providers[3];
    assert_eq!((own.port, own.tls), (465, TlsMode::Implicit));
    assert_eq!(own.headers, vec![("X-Test".to_string(), "1".to_string())]);
    assert_eq!(own.from_domain, "example.com");
    let gmail = &c.seeds[0];
    assert_eq!(
        (gmail.host.as_str(), gmail.port, gmail.tls),
        ("imap.gmail.com", 993, TlsMode::Implicit)
    );
    assert_eq!(gmail.username, "seed@gmail.com");
    let local = &c.seeds[1];
    assert_eq!((local.port, local.tls), (143, TlsMode::Starttls));
    assert_eq!(local.spam_folder, SpamFolder::Named("Spam".into()));
    assert_eq!(c.routes().count(), 8);
    assert_eq!(c.reports.max_decompressed_bytes, 1 << 20);
}

#[test]
fn empty_config_is_valid_and_uses_defaults() {
    let c = load("").unwrap();
    assert_eq!(c.canary.interval.get(), Duration::from_secs(300));
    assert_eq!(c.canary.deadline.get(), Duration::from_secs(900));
    assert_eq!(c.dns.interval.get(), Duration::from_secs(600));
    assert_eq!(c.dnsbl.interval.get(), Duration::from_secs(900));
    assert_eq!(c.reports.max_decompressed_bytes, 64 << 20);
    assert_eq!(c.routes().count(), 0);
}

#[test]
fn verify_interval_defaults_to_seconds_and_must_be_shorter_than_the_deadline() {
    let c = load("").unwrap();
    assert_eq!(c.canary.verify_interval.get(), Duration::from_secs(2));
    let e = err("[canary]\ndeadline = \"3s\"\nverify_interval = \"3s\"\n");
    assert!(e.contains("canary.verify_interval"), "{e}");
    assert!(e.contains("shorter than canary.deadline"), "{e}");
    let e = err("[canary]\nverify_interval = \"10ms\"\n");
    assert!(e.contains("at least 100ms"), "{e}");
}

#[test]
fn bad_port_names_file_line_column_and_field() {
    let text = "[[providers]]\nname = \"a\"\nhost = \"h\"\nfrom = \"a@b.c\"\n\n[[providers]]\nname = \"b\"\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 70000\n";
    assert_eq!(
        err(text),
        "deliverability.toml:10:8: providers[1].port: expected an integer 1-65535, got 70000"
    );
}

#[test]
fn unknown_field_is_an_error_with_its_position() {
    let e = err("[dns]\ntimeout = \"1s\"\nnameserver = [\"127.0.0.1:53\"]\n");
    assert!(e.starts_with("deliverability.toml:3:1: dns"), "{e}");
    assert!(e.contains("unknown field `nameserver`"), "{e}");
    assert!(
        e.contains("nameservers"),
        "the message lists the valid fields: {e}"
    );
    let e = err("[exportr]\n");
    assert!(e.starts_with("deliverability.toml:1:2:"), "{e}");
    assert!(e.contains("unknown field `exportr`"), "{e}");
}

#[test]
fn bad_duration_says_what_is_expected() {
    let e = err("[canary]\ninterval = \"5 minutes\"\n");
    assert_eq!(
        e,
        "deliverability.toml:2:12: canary.interval: expected a duration like \"30s\", \"5m\" or \"1h30m\", got \"5 minutes\""
    );
    let e = err("[canary]\ninterval = 300\n");
    assert!(
        e.contains("canary.interval: expected a duration string with a unit"),
        "{e}"
    );
}

#[test]
fn wrong_type_and_bad_enum_values() {
    let e = err("[[providers]]\nname = \"a\"\nhost = \"h\"\nfrom = \"a@b.c\"\ntls = \"ssl\"\n");
    assert!(
        e.starts_with("deliverability.toml:5:7: providers[0].tls:"),
        "{e}"
    );
    assert!(e.contains("`starttls`, `implicit`, `none`"), "{e}");
    let e = err("[dns]\nattempts = \"two\"\n");
    assert!(
        e.starts_with("deliverability.toml:2:12: dns.attempts:"),
        "{e}"
    );
}

#[test]
fn syntax_error_points_at_the_line() {
    let e = err("[dns]\ntimeout = \"1s\nattempts = 2\n");
    assert!(e.starts_with("deliverability.toml:2:"), "{e}");
}

#[test]
fn validation_reports_every_problem_with_positions() {
    let text = r#"
[canary]
subject = "no token here"
jitter = 2.0

[[providers]]
name = "x"
from = "not-an-address"

[[providers]]
name = "x"
host = "smtp.example.com"
from = "a@example.com"
username = "u"
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.contains(&"deliverability.toml:3:11: canary.subject: must contain {token}: the canary is found by it when a provider drops its headers"), "{e}");
    assert!(lines.contains(&"deliverability.toml:4:10: canary.jitter: expected a fraction of the interval between 0 and 1"), "{e}");
    assert!(
        lines.iter().any(|l| l.starts_with(
            "deliverability.toml:6:1: providers[0].host: expected the SMTP server's host name"
        )),
        "{e}"
    );
    assert!(lines.contains(&"deliverability.toml:8:8: providers[0].from: expected an e-mail address like user@example.com, got \"not-an-address\""), "{e}");
    assert!(
        lines.contains(
            &"deliverability.toml:11:8: providers[1].name: duplicate provider name \"x\""
        ),
        "{e}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "deliverability.toml:10:1: providers[1].password: a username needs a password"
        )),
        "{e}"
    );
    assert_eq!(lines.len(), 6, "{e}");
    // Sorted by position, so the file reads top to bottom.
    assert!(
        lines[0].starts_with("deliverability.toml:3:11:")
            && lines[5].starts_with("deliverability.toml:11:8:"),
        "{e}"
    );
}

#[test]
fn presets_need_their_region_and_login() {
    let e = err(
        "[[providers]]\nname = \"ses\"\npreset = \"ses\"\nfrom = \"a@example.com\"\nusername = \"AKIA\"\npassword = \"x\"\n",
    );
    assert!(
        e.contains("providers[0].region: preset \"ses\" needs `region`"),
        "{e}"
    );
    let e = err(
        "[[providers]]\nname = \"b\"\npreset = \"brevo\"\nfrom = \"a@example.com\"\npassword = \"x\"\n",
    );
    assert!(
        e.contains("providers[0].username: expected the SMTP login"),
        "{e}"
    );
    let ok = load("[[providers]]\nname = \"ses\"\npreset = \"ses\"\nregion = \"eu-west-1\"\nfrom = \"a@example.com\"\nusername = \"AKIA\"\npassword = \"x\"\n").unwrap();
    assert_eq!(ok.providers[0].host, "email-smtp.eu-west-1.amazonaws.com");
}

#[test]
fn secrets_from_env_and_file_never_appear_in_errors_or_debug() {
    let dir = std::env::temp_dir().join(format!("dx-secret-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("pw");
    std::fs::write(&f, "file-secret-value\n").unwrap();
    // SAFETY: the variable name is unique to this test and read only by it.
    unsafe { std::env::set_var("DX_TEST_SECRET_ENV_1", "env-secret-value") };
    let text = format!(
        "[[providers]]\nname = \"a\"\nhost = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"\npassword = {{ env = \"DX_TEST_SECRET_ENV_1\" }}\n\n[[seeds]]\nname = \"s\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = {{ file = \"{}\" }}\n",
        f.display()
    );
    let c = load(&text).unwrap();
    assert_eq!(
        c.providers[0].credentials.as_ref().unwrap().1.expose(),
        "env-secret-value"
    );
    assert_eq!(
        c.seeds[0].password.as_ref().unwrap().expose(),
        "file-secret-value"
    );
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("env-secret-value") && !debug.contains("file-secret-value"),
        "{debug}"
    );

    let e = err(
        "[[seeds]]\nname = \"s\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = { env = \"DX_TEST_SURELY_UNSET_VAR\" }\n",
    );
    assert_eq!(
        e,
        "deliverability.toml:5:12: seeds[0].password: environment variable DX_TEST_SURELY_UNSET_VAR is not set"
    );
    let e = err(
        "[[seeds]]\nname = \"s\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = { file = \"/nonexistent/dx\" }\n",
    );
    assert!(
        e.ends_with("seeds[0].password: cannot read secret file /nonexistent/dx: no such file"),
        "{e}"
    );
    let e = err(
        "[[seeds]]\nname = \"s\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = { vault = \"x\" }\n",
    );
    assert!(
        e.contains("expected a string, { env = \"NAME\" } or { file = \"/path\" }"),
        "{e}"
    );
    // A secret of the wrong type is not echoed.
    let e =
        err("[[seeds]]\nname = \"s\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = 987654321\n");
    assert!(
        e.contains("seeds[0].password: expected a string") && !e.contains("987654321"),
        "{e}"
    );
    // A wrong field next to a plain-text secret must not echo the secret.
    let e = err(
        "[[providers]]\nname = \"a\"\nhost = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"\npassword = \"plain-secret-xyz\"\nport = 0\n",
    );
    assert!(!e.contains("plain-secret-xyz"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_names_and_addresses() {
    let e =
        err("[[seeds]]\nname = \"my seed\"\naddress = \"s@b.c\"\nhost = \"h\"\npassword = \"x\"\n");
    assert!(
        e.starts_with("deliverability.toml:2:8: seeds[0].name: expected a name of letters"),
        "{e}"
    );
    let e = err("[[domains]]\nname = \"exa mple.com\"\n");
    assert!(e.contains("domains[0].name: expected a host name"), "{e}");
    let e = err("[reports]\n[[reports.source_map]]\nname = \"x\"\ncidrs = [\"10.0.0.0/33\"]\n");
    assert!(
        e.contains("reports.source_map[0].cidrs[0]: expected a network"),
        "{e}"
    );
}

#[test]
fn report_sources_are_checked_by_kind() {
    let e = err("[[reports.sources]]\nname = \"r\"\nkind = \"imap\"\n");
    assert!(
        e.contains("reports.sources[0].host: kind = \"imap\" needs"),
        "{e}"
    );
    assert!(e.contains("reports.sources[0].password"), "{e}");
    let e = err("[[reports.sources]]\nname = \"r\"\nkind = \"dir\"\npath = \"/nonexistent-dx\"\n");
    assert!(
        e.contains("reports.sources[0].path: /nonexistent-dx is not a directory"),
        "{e}"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = Config::load(Path::new("/nonexistent/deliverability.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "/nonexistent/deliverability.toml: cannot read the configuration: no such file"
    );
}

#[test]
fn cidrs_parse() {
    assert_eq!(
        parse_cidr("192.0.2.0/24"),
        Some(("192.0.2.0".parse().unwrap(), 24))
    );
    assert_eq!(parse_cidr("2001:db8::/32").map(|c| c.1), Some(32));
    assert_eq!(parse_cidr("192.0.2.1").map(|c| c.1), Some(32));
    assert_eq!(parse_cidr("192.0.2.0/40"), None);
    assert_eq!(parse_cidr("x/1"), None);
}

#[test]
fn the_shipped_example_is_valid() {
    let vars = [
        "BREVO_SMTP_KEY",
        "SES_SMTP_PASSWORD",
        "SENDGRID_API_KEY",
        "POSTFIX_CANARY_PASSWORD",
        "GMAIL_SEED_APP_PASSWORD",
        "OUTLOOK_SEED_PASSWORD",
    ];
    for v in vars {
        // SAFETY: these names are only used by this test.
        unsafe { std::env::set_var(v, format!("example-{v}")) };
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deliverability.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // The example's CA file does not exist here; point it at a file that does.
    let text = text.replace("/etc/ssl/internal-ca.pem", path.to_str().unwrap());
    let c = Config::from_str(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.providers.len(), 4);
    assert_eq!(c.routes().count(), 8);
    assert_eq!(c.providers[2].credentials.as_ref().unwrap().0, "apikey");
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("dx-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn paths_are_relative_to_the_configuration_file() {
    let file = Path::new("/etc/dx/deliverability.toml");
    assert_eq!(
        relative_to(file, Path::new("ca.pem")),
        Path::new("/etc/dx/ca.pem")
    );
    assert_eq!(
        relative_to(file, Path::new("../ca.pem")),
        Path::new("/etc/dx/../ca.pem")
    );
    assert_eq!(
        relative_to(file, Path::new("/srv/ca.pem")),
        Path::new("/srv/ca.pem")
    );
    assert_eq!(
        relative_to(Path::new("deliverability.toml"), Path::new("ca.pem")),
        Path::new("ca.pem"),
        "a file in the working directory"
    );
}

#[test]
fn report_directories_are_resolved_against_the_configuration_file() {
    let d = TempDir::new("dir-source");
    std::fs::create_dir_all(d.0.join("inbox")).unwrap();
    let text = format!(
        "[[reports.sources]]\nname = \"rel\"\nkind = \"dir\"\npath = \"inbox\"\n\n\
         [[reports.sources]]\nname = \"abs\"\nkind = \"dir\"\npath = \"{}\"\nmove_files = false\n",
        d.0.join("inbox").display()
    );
    let c = Config::from_str(&d.0.join("deliverability.toml"), &text).unwrap();
    let dirs: Vec<(&Path, bool)> = c
        .reports
        .sources
        .iter()
        .map(|s| match s {
            ReportSource::Dir(r) => (r.path.as_path(), r.move_files),
            other => panic!("{other:?}"),
        })
        .collect();
    let inbox = d.0.join("inbox");
    assert_eq!(
        dirs,
        vec![(inbox.as_path(), true), (inbox.as_path(), false)]
    );
    // Relative to the file, not to the working directory: from elsewhere it is not found.
    let e = Config::from_str(Path::new("/nonexistent-dx/deliverability.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reports.sources[0].path: /nonexistent-dx/inbox is not a directory"),
        "{e}"
    );
}

fn mailbox(c: &Config, i: usize) -> &ReportMailbox {
    match &c.reports.sources[i] {
        ReportSource::Imap(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn report_mailboxes_are_resolved_completely() {
    let d = TempDir::new("imap-source");
    std::fs::write(d.0.join("ca.pem"), "").unwrap();
    let source = |name: &str, extra: &str| {
        format!(
            "[[reports.sources]]\nname = \"{name}\"\nkind = \"imap\"\nhost = \"imap.example.com\"\nusername = \"dmarc\"\npassword = \"pw\"\n{extra}\n"
        )
    };
    let text = [
        "[canary]\nimap_timeout = \"7s\"\n\n".to_string(),
        source("default", "ca_file = \"ca.pem\""),
        source("starttls", "tls = \"starttls\""),
        source("plain", "tls = \"none\""),
        source("implicit", "tls = \"implicit\""),
        source(
            "port",
            "port = 10993\nfolder = \"Reports\"\nprocessed_folder = \"Done\"",
        ),
    ]
    .concat();
    let c = Config::from_str(&d.0.join("deliverability.toml"), &text).unwrap();
    let ports: Vec<(&str, u16, TlsMode)> = (0..5)
        .map(|i| mailbox(&c, i))
        .map(|m| (m.name.as_str(), m.port, m.tls))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("default", 993, TlsMode::Implicit),
            ("starttls", 143, TlsMode::Starttls),
            ("plain", 143, TlsMode::None),
            ("implicit", 993, TlsMode::Implicit),
            ("port", 10993, TlsMode::Implicit),
        ]
    );
    let m = mailbox(&c, 0);
    assert_eq!(m.ca_file.as_deref(), Some(d.0.join("ca.pem").as_path()));
    assert_eq!(
        (m.host.as_str(), m.username.as_str(), m.password.expose()),
        ("imap.example.com", "dmarc", "pw")
    );
    assert_eq!((m.auth, m.insecure_skip_verify), (ImapAuth::Login, false));
    assert_eq!(m.timeout, Duration::from_secs(7), "canary.imap_timeout");
    assert_eq!(
        (m.folder.as_str(), m.processed_folder.as_deref()),
        ("INBOX", None)
    );
    let m = mailbox(&c, 4);
    assert_eq!(
        (m.folder.as_str(), m.processed_folder.as_deref()),
        ("Reports", Some("Done"))
    );
    assert_eq!(m.ca_file, None);
}

#[test]
fn domains_get_their_mta_sts_options() {
    let c = Config::from_str(
        Path::new("/etc/dx/deliverability.toml"),
        "[[domains]]\nname = \"a.example\"\n\n\
         [[domains]]\nname = \"b.example\"\nmta_sts_port = 8443\nmta_sts_ca_file = \"sts-ca.pem\"\n\n\
         [[domains]]\nname = \"c.example\"\nmta_sts = false\nmta_sts_port = 8443\n",
    )
    .unwrap();
    let sts: Vec<Option<MtaSts>> = c.domains.iter().map(|d| d.mta_sts.clone()).collect();
    assert_eq!(
        sts,
        vec![
            Some(MtaSts {
                port: 443,
                ca_file: None
            }),
            Some(MtaSts {
                port: 8443,
                ca_file: Some(PathBuf::from("/etc/dx/sts-ca.pem"))
            }),
            None,
        ]
    );
    assert_eq!(
        Domain::unconfigured("d.example".into()).mta_sts,
        sts[0],
        "a probed domain is checked like a configured one with only its name"
    );
}

#[test]
fn oauth2_ca_files_are_relative_to_the_configuration_file_too() {
    let oauth2 = "oauth2 = { token_url = \"https://oauth2.example.com/token\", client_id = \"id\", refresh_token = \"rt\", ca_file = \"token-ca.pem\" }";
    let text = format!(
        "[[providers]]\nname = \"p\"\nhost = \"smtp.example.com\"\nusername = \"u\"\nfrom = \"a@example.com\"\n{oauth2}\n\n\
         [[seeds]]\nname = \"s\"\naddress = \"s@example.com\"\nhost = \"imap.example.com\"\n{oauth2}\n"
    );
    let c = Config::from_str(Path::new("/etc/dx/deliverability.toml"), &text).unwrap();
    let ca = Some(PathBuf::from("/etc/dx/token-ca.pem"));
    assert_eq!(c.providers[0].oauth2.as_ref().unwrap().ca_file, ca);
    assert_eq!(c.seeds[0].oauth2.as_ref().unwrap().ca_file, ca);
}
