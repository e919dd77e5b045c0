//! libFuzzer entry point; the checks live in [`fuzz::ltx_file`] so the corpus replay runs the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::ltx_file(data));
