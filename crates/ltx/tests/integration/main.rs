//! The codec's integration tests, one test binary (one link instead of nine).

mod checksum;
mod common;
mod compact;
mod corruption;
mod encoder;
mod fuzz;
mod legacy;
mod roundtrip;
mod streaming;
mod vectors;
