//! What every fuzz target checks: `extract` on the input, named with the target's extension, must
//! not panic (a caught parser panic counts as a crash here) and must stay within the character cap.
//! Hangs, aborts and memory blow-ups are libFuzzer's to report (`-timeout`, `-rss_limit_mb`).

use content_sync::extract::{ExtractError, Limits, extract};
use std::time::{Duration, Instant};

pub fn check(key: &str, data: &[u8]) {
    let limits = Limits {
        max_chars: 10_000,
        max_decompressed_bytes: 16 << 20,
        deadline: Instant::now() + Duration::from_secs(5),
    };
    match extract(key, data, &limits) {
        Err(ExtractError::Panicked(msg)) => panic!("extractor panicked: {msg}"),
        Ok(text) => assert!(text.chars().count() <= limits.max_chars),
        Err(_) => {}
    }
}
