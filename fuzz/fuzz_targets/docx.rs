//! libFuzzer target: `extract` on `.docx` input (`cargo fuzz run docx`, see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| content_sync_fuzz::check("fuzz.docx", data));
