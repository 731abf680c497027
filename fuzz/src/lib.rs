//! What the fuzz targets share: the limits reports are read under, and the input format of
//! the `spam_headers` target (in `spam.rs`, which the seed builder includes too).

use deliverability_exporter::reports::Limits;

/// Limits for the report targets: the defaults' shape, smaller, so one input stays fast
/// (the budget and member limits are themselves under test).
pub const LIMITS: Limits = Limits {
    max_bytes: 4 * 1024 * 1024,
    max_records: 100,
    max_members: 20,
};

mod spam;
pub use spam::{SPAM_HEADERS, spam_block, spam_input};
