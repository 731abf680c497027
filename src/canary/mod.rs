//! Canaries: a uniquely tagged message sent on a schedule through every provider to every seed
//! mailbox, then found again over IMAP to measure delivery latency, placement and the
//! receiver's verdicts.
//!
//! - [`message`]: builds the canary message.
//! - [`send`]: the SMTP stages, timed and classified.

pub mod message;
pub mod send;
