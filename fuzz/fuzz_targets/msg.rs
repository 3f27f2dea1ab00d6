//! libFuzzer target: `extract` on `.msg` input (`cargo fuzz run msg`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.msg", data));
