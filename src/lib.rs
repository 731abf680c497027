//! deliverability_exporter: tells whether e-mail really arrives, as Prometheus metrics.
//!
//! The module map (one line each):
//! - [`config`]: the TOML file, presets, validation with positions, secrets.

pub mod config;
