//! libFuzzer entry point; the checks live in [`fuzz::ltx_page_frame`] so the corpus replay runs the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::ltx_page_frame(data));
