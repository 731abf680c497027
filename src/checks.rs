//! The registry of check kinds: builds the scheduled checks a configuration asks for.
//!
//! Each kind lives in its own module behind the [`Check`] interface; this file only decides
//! which of them run, so adding a kind is one line here.

use std::sync::Arc;

use crate::canary::check::CanaryCheck;
use crate::canary::status::RouteBoard;
use crate::config::Config;
use crate::schedule::Check;

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
    /// The exporter: on intervals, with jitter.
    Serve,
    /// `once`: everything now.
    Once,
}

/// Views the checks keep for the landing page; they outlive reloads.
#[derive(Default, Clone)]
pub struct Boards {
    pub routes: Arc<RouteBoard>,
    pub domains: Arc<crate::status::DomainBoard>,
    pub reports: Arc<crate::status::ReportBoard>,
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
