//! libFuzzer target: `extract` on `.html` input (`cargo fuzz run html`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.html", data));
