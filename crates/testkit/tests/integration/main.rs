//! The test kit's own tests, one test binary (one link instead of three).

mod go_tools;
mod replicate_restore;
mod s3_server;
