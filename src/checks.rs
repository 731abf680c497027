//! The registry of check kinds: builds the scheduled checks a configuration asks for.
//!
//! Each kind lives in its own module behind the [`Check`] interface; this file only decides
//! which of them run, so adding a kind is one line here.

use std::sync::Arc;

use crate::canary::check::CanaryCheck;
use crate::canary::status::RouteBoard;
use crate::canary::tracker::Tracker;
use crate::config::Config;
use crate::landing::StatusSection;
use crate::schedule::Check;
use crate::state::StateDir;

/// The kinds of checks, as named by `once --only KIND` and the `check` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Canary,
    Dns,
    Dnsbl,
    Reports,
    Postmaster,
    Snds,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Canary => "canary",
            Kind::Dns => "dns",
            Kind::Dnsbl => "dnsbl",
            Kind::Reports => "reports",
            Kind::Postmaster => "postmaster",
            Kind::Snds => "snds",
        }
    }
}

/// How the checks will be run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The exporter: on intervals.
    Serve,
    /// `once`: everything now.
    Once,
}

/// Every file the checks keep in the state directory (the `file` label of
/// `deliverability_state_write_errors_total`, whose series exist from the first scrape).
pub const STATE_FILES: [&str; 3] = [
    crate::canary::tracker::FILE,
    crate::reports::ledger::FILE_NAME,
    crate::dns::check::STATE_FILE,
];

/// The files of [`STATE_FILES`] that the checks of `config` can write: all of them on shard 0
/// (and a single instance), only the canaries' on the other shards, which run nothing else.
pub fn state_files(config: &Config) -> &'static [&'static str] {
    if config.shard.runs_shared_checks() {
        &STATE_FILES
    } else {
        &STATE_FILES[..1]
    }
}

/// What the checks keep across reloads: the landing page's views of their results, and the
/// canaries in flight (so none is forgotten when the configuration changes).
#[derive(Clone)]
pub struct Boards {
    pub routes: Arc<RouteBoard>,
    pub domains: Arc<crate::status::DomainBoard>,
    pub reports: Arc<crate::status::ReportBoard>,
    /// What Gmail and Outlook.com say (Postmaster Tools, SNDS).
    pub signals: Arc<crate::status::SignalBoard>,
    pub canaries: Arc<Tracker>,
}

impl Boards {
    /// Loads the canaries in flight from `state`.
    pub fn new(state: &StateDir) -> Boards {
        Boards {
            routes: Default::default(),
            domains: Default::default(),
            reports: Default::default(),
            signals: Default::default(),
            canaries: Arc::new(Tracker::load(state.clone())),
        }
    }

    /// The landing page's sections, in page order.
    pub fn sections(&self) -> Vec<Arc<dyn StatusSection>> {
        vec![
            self.routes.clone(),
            self.domains.clone(),
            self.reports.clone(),
            self.signals.clone(),
        ]
    }
}

/// The checks to schedule for `config`, optionally only those of one kind. On a shard other
/// than 0 (`config.shard`), only the canaries of the seeds it owns: the checks that are not per
/// route run on shard 0 alone, so that every report is counted once.
pub fn build(
    config: &Arc<Config>,
    only: Option<Kind>,
    mode: Mode,
    boards: &Boards,
) -> Vec<Arc<dyn Check>> {
    let wanted = |k: Kind| only.is_none_or(|o| o == k);
    let mut checks: Vec<Arc<dyn Check>> = Vec::new();
    if wanted(Kind::Canary)
        && config.canary.enabled
        && !config.providers.is_empty()
        && !config.seeds.is_empty()
    {
        checks.push(Arc::new(CanaryCheck::new(
            config.clone(),
            mode == Mode::Once,
            boards.routes.clone(),
            boards.canaries.clone(),
        )));
    }
    if !config.shard.runs_shared_checks() {
        return checks;
    }
    if wanted(Kind::Reports)
        && let Some(c) = crate::reports::ReportsCheck::from_config(config)
            .map(|c| c.with_board(boards.reports.clone()))
    {
        checks.push(Arc::new(c));
    }
    if wanted(Kind::Postmaster)
        && let Some(c) = config.postmaster.as_ref().filter(|c| c.enabled)
    {
        checks.push(Arc::new(crate::postmaster::check::PostmasterCheck::new(
            c.clone(),
            boards.signals.clone(),
        )));
    }
    if wanted(Kind::Snds)
        && let Some(c) = config.snds.as_ref().filter(|c| c.enabled)
    {
        checks.push(Arc::new(crate::snds::check::SndsCheck::new(
            c.clone(),
            boards.signals.clone(),
        )));
    }
    checks.extend(crate::dns::check::build(
        config,
        wanted(Kind::Dns),
        wanted(Kind::Dnsbl),
        boards.domains.clone(),
    ));
    checks
}

/// After a reload, drops the series of the mailbox providers' checks `config` no longer runs
/// (their gauges hold the last data, which would otherwise stay, and alert, forever).
pub fn forget_removed(metrics: &crate::metrics::Metrics, config: &Config) {
    let shared = config.shard.runs_shared_checks();
    if !shared || !config.postmaster.as_ref().is_some_and(|c| c.enabled) {
        metrics.signals.reset_postmaster();
    }
    if !shared || !config.snds.as_ref().is_some_and(|c| c.enabled) {
        metrics.signals.reset_snds();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Shard;

    /// A configuration with every kind of check: two seeds, a domain, a DNSBL, a report
    /// directory; the state directory; and the scratch directory both are in.
    fn everything(tag: &str) -> (Config, StateDir, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!("dx-checks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("reports")).unwrap();
        let text = format!(
            "[exporter]\nstate_dir = \"{state}\"\n\
             [[providers]]\nname = \"p1\"\nhost = \"smtp.example.com\"\nfrom = \"c@example.com\"\n\
             [[seeds]]\nname = \"seed1\"\naddress = \"seed1@example.org\"\nhost = \"imap.example.org\"\npassword = \"pw\"\n\
             [[seeds]]\nname = \"seed3\"\naddress = \"seed3@example.org\"\nhost = \"imap.example.org\"\npassword = \"pw\"\n\
             [[domains]]\nname = \"example.com\"\n\
             [dnsbl]\nlists = [\"spamcop\"]\nips = [\"192.0.2.1\"]\n\
             [[reports.sources]]\nname = \"dir\"\nkind = \"dir\"\npath = \"{reports}\"\n\
             [snds]\nkey = \"k-1\"\n",
            state = d.join("state").display(),
            reports = d.join("reports").display(),
        );
        let config = Config::from_str(&d.join("dx.toml"), &text).unwrap();
        let state = StateDir::open(&d.join("state")).unwrap();
        (config, state, d)
    }

    fn names(checks: &[Arc<dyn Check>]) -> Vec<&str> {
        checks.iter().map(|c| c.name()).collect()
    }

    #[tokio::test]
    async fn shard_0_schedules_every_check_and_the_others_only_canaries() {
        let (whole, state, dir) = everything("shards");
        let boards = Boards::new(&state);
        let all = ["canary", "reports", "snds", "dns", "dnsbl"];
        let whole = Arc::new(whole);
        assert_eq!(names(&build(&whole, None, Mode::Serve, &boards)), all);
        assert_eq!(state_files(&whole), STATE_FILES);

        // seed1 hashes to 1 and seed3 to 0 of 2 (Python's hashlib), so each shard has a seed.
        let zero = Arc::new(Shard::new(0, 2).unwrap().apply((*whole).clone()));
        assert_eq!(zero.seeds.len(), 1);
        assert_eq!(names(&build(&zero, None, Mode::Serve, &boards)), all);
        assert_eq!(state_files(&zero), STATE_FILES);

        let one = Arc::new(Shard::new(1, 2).unwrap().apply((*whole).clone()));
        assert_eq!(one.seeds[0].name, "seed1");
        assert_eq!(names(&build(&one, None, Mode::Serve, &boards)), ["canary"]);
        assert_eq!(names(&build(&one, None, Mode::Once, &boards)), ["canary"]);
        let dns_only = build(&one, Some(Kind::Dns), Mode::Once, &boards);
        assert!(dns_only.is_empty(), "{:?}", names(&dns_only));
        assert_eq!(state_files(&one), [crate::canary::tracker::FILE]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
