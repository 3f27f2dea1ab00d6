//! libFuzzer target: `extract` on `.xml` input (`cargo fuzz run xml`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.xml", data));
