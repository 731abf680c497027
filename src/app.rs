//! The running exporter: loads the configuration, opens the state directory, starts the HTTP
//! server and the scheduler, and handles reload (SIGHUP, `POST /-/reload`) and shutdown
//! (SIGTERM, SIGINT). A configuration that fails to load on reload is refused: the old one
//! keeps running and `deliverability_config_last_reload_successful` drops to 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::checks;
use crate::clock::Clock;
use crate::config::{Config, Shard};
use crate::metrics::Metrics;
use crate::schedule::{Context, History, Scheduler};
use crate::server::{self, AppState, ServerOptions};
use crate::state::StateDir;

pub struct Options {
    pub config_file: PathBuf,
    pub listen_address: String,
    pub telemetry_path: String,
    pub enable_lifecycle: bool,
    pub max_connections: usize,
    /// `None`: from the file descriptor limit ([`server::default_max_open_connections`]).
    pub max_open_connections: Option<usize>,
    pub max_probes: usize,
    pub header_timeout: Duration,
    pub web_config_file: Option<PathBuf>,
    /// The share of the seeds this instance owns (`--shard.index`, `--shard.count`).
    pub shard: Shard,
}

/// Loads `file` and cuts it down to `shard`'s seeds (logging what the shard owns).
fn load(file: &std::path::Path, shard: Shard) -> Result<Config, String> {
    let whole = Config::load(file).map_err(|e| e.to_string())?;
    let whole_seeds = whole.seeds.len();
    let config = shard.apply(whole);
    log_shard(whole_seeds, &config);
    Ok(config)
}

/// Opens the state directory of `shard` for `config` ([`Shard::state_dir`]), counting the
/// failed writes of the files its checks keep.
fn open_state(config: &Config, metrics: &Metrics) -> Result<StateDir, String> {
    let dir = config.shard.state_dir(&config.exporter.state_dir);
    Ok(StateDir::open(&dir)
        .map_err(|e| e.to_string())?
        .counting_write_errors(
            metrics.state_write_errors.clone(),
            metrics.state_write_failing.clone(),
            checks::state_files(config),
        ))
}

/// Logs which share this instance owns when there are several, and warns when it owns no seed
/// (then it sends no canary; with a shard other than 0 it does nothing at all).
fn log_shard(whole_seeds: usize, config: &Config) {
    let shard = config.shard;
    if shard.count() > 1 {
        tracing::info!(
            shard = shard.index(),
            shards = shard.count(),
            seeds = config.seeds.len(),
            configured_seeds = whole_seeds,
            shared_checks = shard.runs_shared_checks(),
            "sharded: this instance owns the seeds whose name hashes to its index"
        );
    }
    if config.seeds.is_empty() && whole_seeds > 0 {
        tracing::warn!(
            shard = shard.index(),
            shards = shard.count(),
            configured_seeds = whole_seeds,
            "this shard owns none of the configured seeds, so it sends no canary; fewer shards (--shard.count) spread the seeds better"
        );
    }
}

/// Runs until SIGTERM or SIGINT. Errors are start-up failures, already worded for the user.
pub async fn run(opts: Options) -> Result<(), String> {
    let fds = server::raise_fd_limit();
    let default_open = server::default_max_open_connections(fds);
    let max_open_connections = match opts.max_open_connections {
        Some(n) if n > default_open => {
            tracing::warn!(
                requested = n,
                fd_limit = fds,
                using = default_open,
                "--web.max-open-connections is above what the file descriptor limit allows"
            );
            default_open
        }
        Some(n) => n,
        None => default_open,
    };
    let metrics = Arc::new(Metrics::new());
    let clock = Clock::system();
    let config = Arc::new(load(&opts.config_file, opts.shard)?);
    metrics.set_shard(opts.shard.index(), opts.shard.count());
    metrics.config_last_reload_successful.set(1);
    metrics
        .config_last_reload_success_timestamp
        .set(clock.unix());
    let state = open_state(&config, &metrics)?;
    let web = match &opts.web_config_file {
        Some(f) => Some(Arc::new(
            crate::web_config::WebConfig::open(f).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let listener = server::bind(&opts.listen_address).await?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();

    let shutdown = CancellationToken::new();
    let history = Arc::new(History::default());
    let (reload_tx, mut reload_rx) = mpsc::channel::<server::ReloadRequest>(4);
    let dns_prober = Arc::new(crate::dns::probe::DnsProber::new(config.clone()));
    let app = Arc::new(AppState {
        metrics: metrics.clone(),
        config: std::sync::Mutex::new(config.clone()),
        ready: false.into(),
        history: history.clone(),
        reload: reload_tx,
        telemetry_path: opts.telemetry_path.clone(),
        enable_lifecycle: opts.enable_lifecycle,
        prober: Some(dns_prober.clone()),
        web,
        status: Default::default(),
    });
    let grace = config.exporter.shutdown_timeout.get();
    let server = tokio::spawn(server::serve(
        listener,
        app.clone(),
        ServerOptions {
            max_connections: opts.max_connections,
            max_open_connections,
            max_probes: opts.max_probes,
            header_read_timeout: opts.header_timeout,
        },
        shutdown.clone(),
        grace,
    ));

    let boards = checks::Boards::new(&state);
    let ctx = Context {
        metrics: metrics.clone(),
        clock: clock.clone(),
        shutdown: shutdown.clone(),
        state,
        observed: Default::default(),
    };
    app.status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(boards.sections());
    let start = |config: &Arc<Config>| {
        let checks = checks::build(config, None, checks::Mode::Serve, &boards);
        let names: Vec<&str> = checks.iter().map(|c| c.name()).collect();
        tracing::info!(checks = ?names, routes = config.routes().count(), domains = config.domains.len(), "checks scheduled");
        Scheduler::start(checks, ctx.clone(), history.clone())
    };
    let mut scheduler = start(&config);
    app.ready.store(true, Ordering::SeqCst);
    tracing::info!(address = %local, telemetry_path = %opts.telemetry_path, config = %opts.config_file.display(), version = crate::metrics::VERSION, fd_limit = fds, max_open_connections, "listening");

    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| format!("cannot install the SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;
    loop {
        let reply = tokio::select! {
            _ = hup.recv() => None,
            Some(r) = reload_rx.recv() => Some(r),
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let result = reload(&opts, &app, &metrics, &clock);
        if let Ok(new) = &result {
            dns_prober.update(new.clone());
            // Stop first: two schedules must not watch the same seeds or send twice.
            scheduler.stop(grace).await;
            ctx.metrics.reset_checks();
            checks::forget_removed(&ctx.metrics, new);
            scheduler = start(new);
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map(|_| ()));
        }
    }

    tracing::info!(grace_seconds = grace.as_secs_f64(), "shutting down");
    app.ready.store(false, Ordering::SeqCst);
    shutdown.cancel();
    let stop = async {
        scheduler.stop(grace).await;
        boards.canaries.flush();
        let _ = server.await;
    };
    if tokio::time::timeout(grace + Duration::from_secs(1), stop)
        .await
        .is_err()
    {
        tracing::warn!("shutdown took longer than exporter.shutdown_timeout; exiting anyway");
    }
    Ok(())
}

/// Loads the configuration again. On success it becomes the running one; on failure the old
/// one stays and the failure is visible in the metrics and the log.
fn reload(
    opts: &Options,
    app: &AppState,
    metrics: &Metrics,
    clock: &Clock,
) -> Result<Arc<Config>, String> {
    let old = app.config();
    let result = load(&opts.config_file, opts.shard).and_then(|c| {
        if c.exporter.state_dir != old.exporter.state_dir {
            Err(format!(
                "{}: exporter.state_dir cannot change on reload (was {}, now {}); restart the exporter instead",
                opts.config_file.display(),
                old.exporter.state_dir.display(),
                c.exporter.state_dir.display()
            ))
        } else {
            Ok(Arc::new(c))
        }
    });
    match &result {
        Ok(c) => {
            metrics.config_last_reload_successful.set(1);
            metrics
                .config_last_reload_success_timestamp
                .set(clock.unix());
            *app.config.lock().unwrap_or_else(|e| e.into_inner()) = c.clone();
            tracing::info!(config = %opts.config_file.display(), "configuration reloaded");
        }
        Err(e) => {
            metrics.config_last_reload_successful.set(0);
            tracing::error!(error = %e, "configuration reload refused; the previous configuration keeps running");
        }
    }
    result
}

/// `once`: runs the checks of `config_file` (or only those of one kind) once, waits for what
/// they started to settle (canaries delivered or lost), prints the metrics to stdout and each
/// failed check to stderr. A check fails on its run's error and on what its settling found (a
/// canary lost, a seed folder that could not be watched). `Ok(true)` when every check succeeded;
/// `Err` for a configuration or state directory that can't be used (worded for the user).
pub async fn once(
    config_file: &std::path::Path,
    only: Option<checks::Kind>,
    shard: Shard,
) -> Result<bool, String> {
    if let Some(kind) = only.filter(|k| *k != checks::Kind::Canary && !shard.runs_shared_checks()) {
        return Err(format!(
            "once --only {}: {shard} runs canaries only; DNS, DNSBL and report checks run on shard 0",
            kind.as_str()
        ));
    }
    let config = Arc::new(load(config_file, shard)?);
    let metrics = Arc::new(Metrics::bare());
    metrics.set_shard(shard.index(), shard.count());
    let state = open_state(&config, &metrics)?;
    let boards = checks::Boards::new(&state);
    let ctx = Context {
        metrics: metrics.clone(),
        clock: Clock::system(),
        shutdown: CancellationToken::new(),
        state,
        observed: Default::default(),
    };
    let checks = checks::build(&config, only, checks::Mode::Once, &boards);
    let records = crate::schedule::run_once(&checks, &ctx, &History::default()).await;
    boards.canaries.flush();
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(&metrics.encode());
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.result != crate::schedule::RunResult::Success)
        .collect();
    for r in &failed {
        eprintln!("check {} {}: {}", r.check, r.result.as_str(), r.message);
    }
    Ok(failed.is_empty())
}
