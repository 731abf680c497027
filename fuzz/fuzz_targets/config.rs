//! Configuration text into `Config::from_str` (the TOML reader, presets, validation with
//! positions). Not input from strangers, but cheap to fuzz and a panic would stop a reload.
//! Inputs that could name a secret file (`{ file = ... }`, also spelled with TOML escapes)
//! are skipped: reading /dev/zero or a FIFO would hang the fuzzer, not find a bug.
#![no_main]

use std::path::Path;

use deliverability_exporter::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lower = text.to_ascii_lowercase();
    if lower.contains("file") || lower.contains("\\u") {
        return;
    }
    if let Err(e) = Config::from_str(Path::new("/nonexistent/fuzz.toml"), text) {
        let _ = e.to_string();
    }
});
