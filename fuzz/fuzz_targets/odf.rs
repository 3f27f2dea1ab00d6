//! libFuzzer target: `extract` on `.odt` input (`cargo fuzz run odf`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.odt", data));
