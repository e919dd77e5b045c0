//! The read benchmark behind `make bench`: our `litestream` VFS against Litestream's Go VFS and
//! local SQLite, on replicas written by the real Go `litestream replicate`.
//!
//! * [`gen`]: the deterministic database generator and the cached replicas (`.bench/`);
//! * [`spec`]: what the driver and the runner agree on (targets, workloads, JSON, checksums);
//! * [`driver`]: the S3 server, one runner process per run, the passes;
//! * [`report`]: medians, the targets, `docs/benchmarks.md` and the chart.
//!
//! Two binaries: `bench` (the driver) and `bench-runner` (one workload, one target, one
//! process). `scripts/bench-run.sh` (what `make bench` calls) builds and runs them; the
//! settings are environment variables, listed at the end of the generated `docs/benchmarks.md`.

pub mod driver;
pub mod gen;
pub mod report;
pub mod spec;
