//! The last outcome of every route and requirement, and the metrics made of them:
//! `deliverability_sender_requirement_met{provider,requirement}` is 1 when the last canary of
//! every route of the provider that could be judged met the requirement, 0 when one did not;
//! with `canary.route_requirements` also per route. A change of a route's outcome is logged
//! with its reason, so a page names the seed and the cause.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Outcome, Requirement};
use crate::metrics::Metrics;

/// (provider, seed) → requirement → (met, why).
type Routes = BTreeMap<(String, String), BTreeMap<Requirement, (bool, String)>>;

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
            routes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records the outcomes of a route's latest canary and updates the provider's series.
    pub fn record(&self, provider: &str, seed: &str, outcomes: &[Outcome]) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let route = routes
            .entry((provider.to_string(), seed.to_string()))
            .or_default();
        for o in outcomes {
            let before = route.insert(o.requirement, (o.met, o.why.clone()));
            let changed = before.as_ref().map(|(m, _)| *m) != Some(o.met);
            if changed && !o.met {
                tracing::warn!(provider, seed, requirement = o.requirement.as_str(), why = %o.why, "sender requirement not met");
            } else if changed && before.is_some() {
                tracing::info!(provider, seed, requirement = o.requirement.as_str(), why = %o.why, "sender requirement met again");
            }
            if self.route_series {
                self.metrics
                    .canary
                    .route_requirement_met
                    .with_label_values(&[provider, seed, o.requirement.as_str()])
                    .set(i64::from(o.met));
            }
        }
        for r in outcomes.iter().map(|o| o.requirement) {
            let met = routes
                .iter()
                .filter(|((p, _), _)| p == provider)
                .filter_map(|(_, reqs)| reqs.get(&r).map(|(m, _)| *m))
                .all(|m| m);
            self.metrics
                .canary
                .requirement_met
                .with_label_values(&[provider, r.as_str()])
                .set(i64::from(met));
        }
    }

    /// The last outcomes of a route (landing page, tests).
    pub fn route(&self, provider: &str, seed: &str) -> Vec<(Requirement, bool, String)> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes
            .get(&(provider.to_string(), seed.to_string()))
            .map(|reqs| reqs.iter().map(|(r, (m, w))| (*r, *m, w.clone())).collect())
            .unwrap_or_default()
    }
}
