//! libFuzzer target: `extract` on `.xls` input (`cargo fuzz run xls`, see fuzz/README.md).
#![no_main]

use content_sync::extract::{ExtractError, Limits, extract};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_chars: 10_000,
        max_decompressed_bytes: 16 << 20,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(5),
    };
    match extract("fuzz.xls", data, &limits) {
        Err(ExtractError::Panicked(msg)) => panic!("extractor panicked: {msg}"),
        Ok(text) => assert!(text.chars().count() <= limits.max_chars),
        Err(_) => {}
    }
});
