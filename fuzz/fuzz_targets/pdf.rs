//! libFuzzer target: `extract` on `.pdf` input (`cargo fuzz run pdf`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.pdf", data));
