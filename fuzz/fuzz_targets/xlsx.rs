//! libFuzzer target: `extract` on `.xlsx` input (`cargo fuzz run xlsx`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.xlsx", data));
