//! The benchmark behind `make bench`: our `litestream` VFS against Litestream's Go VFS and
//! local SQLite, reading replicas written by the real Go `litestream replicate`, and writing in
//! write mode (issue #4).
//!
//! * [`gen`]: the deterministic database generator and the cached replicas (`.bench/`);
//! * [`spec`]: what the driver and the runner agree on (targets, workloads, JSON, checksums);
//! * [`config`]: the settings (`BENCH_*` environment variables);
//! * [`driver`]: the S3 server, one runner process per run, the passes;
//! * [`report`]: medians, the targets, `docs/benchmarks.md` and the chart, for both
//!   suites;
//! * [`write`], [`write_runner`]: the write suite (issue #4) and its runner side;
//! * [`scale`]: the scale suite (issue #14), 1 M to 26 M pages following a live primary.
//!
//! Two binaries: `bench` (the driver) and `bench-runner` (one workload, one target, one
//! process). `scripts/bench-run.sh` (what `make bench` calls) builds and runs them; the
//! settings are environment variables, listed at the end of the generated `docs/benchmarks.md`.

pub mod bigtx;
pub mod config;
pub mod driver;
pub mod gen;
pub mod report;
pub mod scale;
pub mod spec;
pub mod write;
pub mod write_runner;
