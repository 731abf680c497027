//! Records what the receiver said about a delivered canary: its SPF/DKIM/DMARC/ARC verdicts
//! (from the trusted Authentication-Results), the spam scores of its filters, and what other
//! checks learn from it: the provider's public sending IP and the DKIM selectors it signs with.

use crate::canary::headers::{CanaryHeaders, Method};
use crate::schedule::Context;

/// Records the receiver's verdicts on a delivered canary of route (provider, seed).
pub fn record(ctx: &Context, provider: &str, seed: &str, h: &CanaryHeaders) {
    let m = &ctx.metrics.canary;
    let mut verdicts = Vec::new();
    for r in &h.auth.results {
        if matches!(
            r.method,
            Method::Spf | Method::Dkim | Method::Dmarc | Method::Arc
        ) {
            m.auth_results
                .with_label_values(&[provider, seed, r.method.as_str(), r.result.as_str()])
                .inc();
            verdicts.push(format!("{}={}", r.method.as_str(), r.result.as_str()));
        }
    }
    for v in &h.spam {
        if let Some(score) = v.score.filter(|s| s.is_finite()) {
            m.spam_score
                .with_label_values(&[provider, seed, v.source.as_str()])
                .set(score);
        }
    }
    if let Some(ip) = h.sending_ip() {
        ctx.observed.add_sending_ip(provider, ip);
    }
    for sig in &h.dkim_signatures {
        ctx.observed.add_dkim_selector(&sig.domain, &sig.selector);
    }
    tracing::debug!(
        provider,
        seed,
        authserv_id = h.auth.authserv_id.as_deref().unwrap_or(""),
        verdicts = %verdicts.join(" "),
        sending_ip = ?h.sending_ip(),
        "receiver's verdicts"
    );
}
