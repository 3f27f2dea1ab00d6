//! libFuzzer target: `extract` on `.xls` input (`cargo fuzz run xls`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.xls", data));
