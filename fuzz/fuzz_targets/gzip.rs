//! libFuzzer target: `extract` on `.txt.gz` input (`cargo fuzz run gzip`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.txt.gz", data));
