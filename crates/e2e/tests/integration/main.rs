//! The end-to-end tests, one test binary (each binary links the whole engine, SQLite and the
//! test servers; one link instead of thirteen). The tests that change the process's
//! environment are in `tests/process_env`.

mod apps;
mod common;
mod conformance;
mod errors;
mod faults;
mod host;
mod hydration;
mod interop;
mod packages;
mod security;
mod setup;
mod source_rules;
mod sql_golden;
mod write;
