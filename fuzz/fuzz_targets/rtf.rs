//! libFuzzer target: `extract` on `.rtf` input (`cargo fuzz run rtf`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.rtf", data));
