//! deliverability_exporter: flags and subcommands, wired to the library. Nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use deliverability_exporter::config::{Config, Shard};
use deliverability_exporter::{app, checks, logging};

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("DX_GIT_REVISION"),
    ", rustc: ",
    env!("DX_RUSTC_VERSION"),
    ")"
);

/// Tells whether your e-mail really arrives: sends canaries through every SMTP provider to seed
/// inboxes, checks SPF, DKIM, DMARC, MX, MTA-STS and DNS blacklists, reads DMARC and TLS-RPT
/// reports, and serves it all as Prometheus metrics.
#[derive(Parser)]
#[command(name = "deliverability_exporter", version = VERSION)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(
        long = "config.file",
        value_name = "FILE",
        default_value = "deliverability.toml",
        global = true
    )]
    config_file: PathBuf,

    /// Address to listen on for the web interface and telemetry. ":PORT" listens on every
    /// interface. The default port 10587 lies outside 9100-9999, which the Prometheus wiki's
    /// list of exporter ports has fully allocated.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = ":10587"
    )]
    listen_address: String,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,

    /// Web configuration file (TLS and basic auth, exporter-toolkit format).
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,

    /// Enable POST /-/reload (SIGHUP always reloads).
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,

    /// Maximum number of HTTP requests handled at once, and of TLS handshakes in progress at
    /// once (the oldest handshake is dropped for a new one). Idle and slow connections don't
    /// count: see --web.max-open-connections.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_connections: u32,

    /// Maximum number of HTTP connections open at once, served or still sending their
    /// request; past it, the one that has waited longest without finishing its request
    /// headers is closed to make room. Default: the file descriptor limit (raised to the hard
    /// limit at start-up) less 256.
    #[arg(long = "web.max-open-connections", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_open_connections: Option<u32>,

    /// Maximum number of /probe requests running at once; more are answered 503 with
    /// Retry-After at once.
    #[arg(long = "web.max-probes", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_probes: u32,

    /// How long a client may take, from connecting, to send a request's headers (and finish
    /// its TLS handshake) before the connection is closed; also how long it may take to read
    /// the response.
    #[arg(long = "web.header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_timeout: std::time::Duration,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    log_level: logging::LogLevel,

    /// Output format of log messages.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    log_format: logging::LogFormat,

    /// How many instances share the configuration file (sharding by seed). Each owns the
    /// seeds whose name hashes to its --shard.index (Prometheus' hashmod: MD5 of the seed's
    /// name, last 8 bytes, modulo N) and sends canaries through every provider to those only.
    #[arg(
        long = "shard.count",
        value_name = "N",
        default_value_t = 1,
        global = true
    )]
    shard_count: u32,

    /// This instance's shard, 0 to --shard.count - 1. DNS, DNSBL and report checks run on
    /// shard 0 only; the other shards run canaries only.
    #[arg(
        long = "shard.index",
        value_name = "I",
        default_value_t = 0,
        global = true
    )]
    shard_index: u32,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file and exit: 0 when valid, 1 with every problem listed
    /// (file:line:column: field: what is expected) when not.
    CheckConfig,
    /// Run every enabled check once, print the metrics in the Prometheus text format to
    /// stdout, and exit non-zero when any check failed.
    Once {
        /// Only run checks of this kind.
        #[arg(long, value_enum)]
        only: Option<checks::Kind>,
    },
    /// Read DMARC aggregate and TLS-RPT reports from files (.xml, .gz, .zip, .json, .eml,
    /// mbox) and print what they hold.
    ParseReport {
        /// One JSON object per report (or per unreadable file) on its own line.
        #[arg(long)]
        json: bool,
        /// Report files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    deliverability_exporter::config::values::parse_duration(s).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0".into())
        } else {
            Ok(d)
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let shard = match Shard::new(cli.shard_index, cli.shard_count) {
        Ok(s) => s,
        Err(e) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, e)
            .exit(),
    };
    logging::init(cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        None => {
            let opts = app::Options {
                config_file: cli.config_file,
                listen_address: cli.listen_address,
                telemetry_path: cli.telemetry_path,
                enable_lifecycle: cli.enable_lifecycle,
                max_connections: cli.max_connections as usize,
                max_open_connections: cli.max_open_connections.map(|n| n as usize),
                max_probes: cli.max_probes as usize,
                header_timeout: cli.header_timeout,
                web_config_file: cli.web_config_file,
                shard,
            };
            match runtime.block_on(app::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::CheckConfig) => match Config::load(&cli.config_file) {
            Ok(c) => {
                println!(
                    "{}: valid: {} providers, {} seeds, {} routes, {} domains, {} report sources",
                    cli.config_file.display(),
                    c.providers.len(),
                    c.seeds.len(),
                    c.routes().count(),
                    c.domains.len(),
                    c.reports.sources.len()
                );
                if shard.count() > 1 {
                    println!("{}", shard.describe(&c));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Once { only }) => {
            match runtime.block_on(app::once(&cli.config_file, only, shard)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::ParseReport { json, files }) => {
            let ok = deliverability_exporter::reports::cli::run(
                &files,
                json,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
