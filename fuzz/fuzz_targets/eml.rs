//! libFuzzer target: `extract` on `.eml` input (`cargo fuzz run eml`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.eml", data));
