//! The last outcome of every route and requirement, and the metrics made of them:
//! `deliverability_sender_requirement_met{provider,requirement}` is 1 when the last canary of
//! every route of the provider that could be judged met the requirement, 0 when one did not;
//! with `canary.route_requirements` also per route. A change of a route's outcome is logged
//! with its reason, so a page names the seed and the cause.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{Outcome, Requirement};
use crate::metrics::Metrics;

/// The routes' last outcomes, and per provider and requirement how many of its routes fail it
/// (kept as outcomes change, so a delivery costs the same at 10 or 10,000 routes).
#[derive(Default)]
struct Routes {
    /// (provider, seed) → requirement → (met, why).
    last: BTreeMap<(String, String), BTreeMap<Requirement, (bool, String)>>,
    failing: HashMap<(String, Requirement), usize>,
}

pub struct Board {
    metrics: Arc<Metrics>,
    route_series: bool,
    routes: Mutex<Routes>,
}

impl Board {
    pub fn new(metrics: Arc<Metrics>, route_series: bool) -> Board {
        Board {
            metrics,
            route_series,
            routes: Mutex::new(Routes::default()),
        }
    }

    /// Records the outcomes of a route's latest canary and updates the provider's series.
    pub fn record(&self, provider: &str, seed: &str, outcomes: &[Outcome]) {
        let mut guard = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let Routes { last, failing } = &mut *guard;
        let route = last
            .entry((provider.to_string(), seed.to_string()))
            .or_default();
        for o in outcomes {
            let before = route
                .insert(o.requirement, (o.met, o.why.clone()))
                .map(|(m, _)| m);
            let count = failing
                .entry((provider.to_string(), o.requirement))
                .or_insert(0);
            match (before, o.met) {
                (Some(true) | None, false) => *count += 1,
                (Some(false), true) => *count = count.saturating_sub(1),
                _ => {}
            }
            let met = *count == 0;
            if before != Some(o.met) && !o.met {
                tracing::warn!(provider, seed, requirement = o.requirement.as_str(), why = %o.why, "sender requirement not met");
            } else if before == Some(false) && o.met {
                tracing::info!(provider, seed, requirement = o.requirement.as_str(), why = %o.why, "sender requirement met again");
            }
            let m = &self.metrics.canary;
            if self.route_series {
                m.route_requirement_met
                    .with_label_values(&[provider, seed, o.requirement.as_str()])
                    .set(i64::from(o.met));
            }
            m.requirement_met
                .with_label_values(&[provider, o.requirement.as_str()])
                .set(i64::from(met));
        }
    }

    /// The last outcomes of a route.
    #[cfg(test)]
    pub fn route(&self, provider: &str, seed: &str) -> Vec<(Requirement, bool, String)> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes
            .last
            .get(&(provider.to_string(), seed.to_string()))
            .map(|reqs| reqs.iter().map(|(r, (m, w))| (*r, *m, w.clone())).collect())
            .unwrap_or_default()
    }
}
