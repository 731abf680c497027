//! Sends one canary through one provider, stage by stage, timing each and classifying any
//! failure.
//!
//! - `session`: the send itself ([`send`]): every SMTP stage under its own timeout (lettre
//!   has no read timeout), what it produced ([`SendOutcome`]), QUIT.
//! - `wire`: the socket lettre speaks SMTP over, which sees what lettre doesn't tell: the TLS
//!   version a STARTTLS handshake negotiated, and whether the message terminator had been
//!   sent when the body stage timed out (then the failure is `uncertain`).
//! - `failure`: the stages and failure classes (the `stage` and `class` labels), and
//!   lettre's errors and SMTP replies classified into a [`SendFailure`].
//!
//! The public items are re-exported here: callers name `send::send`, `send::Stage`,
//! `send::FailureClass` and so on.

mod failure;
mod session;
mod wire;

pub use failure::{FailureClass, SendFailure, Stage, enhanced_code};
pub use session::{SendOutcome, SendRequest, TlsInfo, send};
