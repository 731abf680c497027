//! Canaries: a uniquely tagged message sent on a schedule through every provider to every seed
//! mailbox, then found again over IMAP to measure delivery latency, placement and the
//! receiver's verdicts.
//!
//! - [`check`]: the scheduled check: a send round per interval, watchers, deadlines.
//! - [`date`]: dates as mail writes them (RFC 5322, IMAP INTERNALDATE), to Unix seconds.
//! - [`analyze`]: the receiver's verdicts in a delivered canary's headers.
//! - [`headers`]: the pure parsers of those headers: authentication results, DKIM signatures,
//!   spam scores, the Received chain, the token.
//! - [`message`]: builds the canary message and its token.
//! - [`requirements`]: the mailbox providers' bulk-sender requirements, judged on every
//!   delivered canary.
//! - [`send`]: the SMTP stages, timed and classified.
//! - [`token`]: the canary token: its format, a new one, finding it in a header or Subject.
//! - [`tracker`]: the canaries in flight, persisted across restarts.
//! - [`status`]: the routes board of the landing page.
//! - `text`: string helpers shared by the pure parsers (cutting at a character boundary).
//! - [`watch`]: the IMAP watcher of one seed folder.

pub mod analyze;
pub mod check;
pub mod date;
pub mod headers;
pub mod message;
pub mod requirements;
pub mod send;
pub mod status;
mod text;
pub mod token;
pub mod tracker;
pub mod watch;
