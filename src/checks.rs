//! The registry of check kinds: builds the scheduled checks a configuration asks for.
//!
//! Each kind lives in its own module behind the [`Check`] interface; this file only decides
//! which of them run, so adding a kind is one line here.

use std::sync::Arc;

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

/// The checks to schedule for `config`, optionally only those of one kind.
pub fn build(config: &Arc<Config>, only: Option<Kind>) -> Vec<Arc<dyn Check>> {
    let wanted = |k: Kind| only.is_none_or(|o| o == k);
    let mut checks: Vec<Arc<dyn Check>> = Vec::new();
    if wanted(Kind::Reports)
        && let Some(c) = crate::reports::ReportsCheck::from_config(config)
    {
        checks.push(Arc::new(c));
    }
    checks
}
