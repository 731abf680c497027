//! deliverability_exporter: tells whether e-mail really arrives, as Prometheus metrics.
//!
//! The module map (one line each):
//! - [`app`]: the running exporter: start-up, reload, shutdown.
//! - [`canary`]: canary messages: sending, watching seeds, headers.
//! - [`checks`]: which checks a configuration schedules.
//! - [`config`]: the TOML file, presets, validation with positions, secrets.
//! - [`der`]: a minimal DER element reader (certificate expiry, RSA key size).
//! - [`domains`]: domain names normalised, organizational domains, the first address of a
//!   header.
//! - [`dns`]: SPF, DKIM, DMARC, MX, MTA-STS and TLS-RPT records, and DNS blacklists.
//! - [`clock`]: the one wall-clock handle, and date formatting.
//! - [`http_client`]: outgoing HTTP/1.1 (MTA-STS policies, OAuth2 token refresh).
//! - [`imap`]: IMAP connections and login (seeds, report mailboxes).
//! - [`labels`]: `label_enum!`, closed sets of label values.
//! - [`landing`]: the HTML landing page.
//! - [`logging`]: tracing to stderr as logfmt or JSON.
//! - [`metrics`]: every metric family, in one place.
//! - [`oauth2`]: XOAUTH2 access tokens refreshed at a token endpoint.
//! - [`postmaster`]: Google Postmaster Tools v2: daily domain statistics, compliance.
//! - [`observed`]: sending IPs and DKIM selectors learned from canaries, for other checks.
//! - [`runbooks`]: `/runbooks`, docs/runbooks.md served as HTML.
//! - [`resolver`]: DNS lookups (hickory-resolver), failures classified; the DNS checks' and
//!   the sender requirements'.
//! - [`reports`]: DMARC aggregate and TLS-RPT reports read from sources, counted once.
//! - [`schedule`]: the `Check` interface and the scheduler that runs checks on intervals.
//! - [`server`]: HTTP endpoints on hyper.
//! - [`snds`]: Microsoft SNDS: per-IP filter verdicts, complaints, trap hits, blocks.
//! - [`state`]: the state directory, with atomic file replacement.
//! - [`status`]: the landing page's views of the DNS, blacklist and report checks.
//! - [`tls`]: rustls client configuration, certificate expiry, handshake failure reasons.
//! - [`web_config`]: `--web.config.file`: TLS and basic auth for the endpoints.

pub mod app;
pub mod canary;
pub mod checks;
pub mod clock;
pub mod config;
pub mod der;
pub mod dns;
pub mod domains;
pub mod http_client;
pub mod imap;
pub mod labels;
pub mod landing;
pub mod logging;
pub mod metrics;
pub mod oauth2;
pub mod observed;
pub mod postmaster;
pub mod reports;
pub mod resolver;
pub mod runbooks;
pub mod schedule;
pub mod server;
pub mod snds;
pub mod state;
pub mod status;
pub mod tls;
pub mod web_config;
