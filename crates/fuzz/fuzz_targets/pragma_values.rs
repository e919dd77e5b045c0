//! libFuzzer entry point; the checks live in [`fuzz::pragma_values`] so the corpus replay runs the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::pragma_values(data));
