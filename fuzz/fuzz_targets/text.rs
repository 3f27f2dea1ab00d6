//! libFuzzer target: `extract` on `.txt` input (`cargo fuzz run text`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.txt", data));
