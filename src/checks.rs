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
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Canary => "canary",
            Kind::Dns => "dns",
            Kind::Dnsbl => "dnsbl",
            Kind::Reports => "reports",
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

/// What the checks keep across reloads: the landing page's views of their results, and the
/// canaries in flight (so none is forgotten when the configuration changes).
#[derive(Clone)]
pub struct Boards {
    pub routes: Arc<RouteBoard>,
    pub domains: Arc<crate::status::DomainBoard>,
    pub reports: Arc<crate::status::ReportBoard>,
    pub canaries: Arc<Tracker>,
}

impl Boards {
    /// Loads the canaries in flight from `state`.
    pub fn new(state: &StateDir) -> Boards {
        Boards {
            routes: Default::default(),
            domains: Default::default(),
            reports: Default::default(),
            canaries: Arc::new(Tracker::load(state.clone())),
        }
    }

    /// The landing page's sections, in page order.
    pub fn sections(&self) -> Vec<Arc<dyn StatusSection>> {
        vec![
            self.routes.clone(),
            self.domains.clone(),
            self.reports.clone(),
        ]
    }
}

/// The checks to schedule for `config`, optionally only those of one kind.
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
    if wanted(Kind::Reports)
        && let Some(c) = crate::reports::ReportsCheck::from_config(config)
            .map(|c| c.with_board(boards.reports.clone()))
    {
        checks.push(Arc::new(c));
    }
    checks.extend(crate::dns::check::build(
        config,
        wanted(Kind::Dns),
        wanted(Kind::Dnsbl),
        boards.domains.clone(),
    ));
    checks
}
