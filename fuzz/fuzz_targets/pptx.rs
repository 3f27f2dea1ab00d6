//! libFuzzer target: `extract` on `.pptx` input (`cargo fuzz run pptx`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.pptx", data));
