#!/usr/bin/env bash
# `make bench`: the read, write-mode and scale benchmark (crates/bench). Builds the driver and the
# runner, makes sure Python's matplotlib is there for the charts, then runs the driver, which
# generates or reuses the datasets in .bench/, runs every workload of the suites in BENCH_SUITES
# (default: read and write; `scale` on request) on our VFS, the Go VFS and local SQLite, and writes
# docs/benchmarks.md, docs/benchmarks.png and (scale) docs/benchmarks-scale.png. Knobs
# (environment): see docs/benchmarks.md.
#   BENCH_TARGET_DIR  cargo target directory for the bench crate (default: $CARGO_TARGET_DIR or target/)
#   BENCH_PYTHON      a Python 3 for the chart (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_T0=${BENCH_T0:-$(date +%s.%N)}

# The exact command, as the report shows it: the BENCH_* settings given, then `make bench`.
if [ -z "${BENCH_COMMAND:-}" ]; then
  settings=$(env | grep -E '^BENCH_' | grep -vE '^BENCH_(T0|COMMAND|PYTHON)=' | sort | tr '\n' ' ' || true)
  export BENCH_COMMAND="${settings}make bench"
fi

PY=${BENCH_PYTHON:-python3}
if ! "$PY" -c 'import matplotlib' >/dev/null 2>&1; then
  echo "bench: installing matplotlib for the chart (pip)"
  "$PY" -m pip install -q --disable-pip-version-check matplotlib
fi
export BENCH_PYTHON=$PY

TARGET_DIR=${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}}
CARGO_TARGET_DIR=$TARGET_DIR ${CARGO:-cargo} build --release -p bench
exec "$TARGET_DIR/release/bench"
