# The README's two commands are `make demo` and `make test`; both install what they need.
CARGO   ?= cargo
SO      := target/release/liblitestream_vfs.so
export LITESTREAM_VFS_SO := $(CURDIR)/$(SO)

.PHONY: setup build test demo bench lint fmt clean

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release -p litestream-vfs

# Unit, property, engine (file:// and a real S3 server on 127.0.0.1), golden sql-tests through
# the sqlite3 shell, and interop with the Go litestream 0.5.17 tools.
test: build
	$(CARGO) test --release --workspace --no-fail-fast

demo: build
	@scripts/demo.sh

# Read benchmark: our VFS vs the Go VFS vs local SQLite on ~10 MB and ~200 MB replicas written by
# the Go `litestream replicate` (cached in .bench/), then docs/benchmarks.md and .png.
# BENCH_SIZES=10,200,1000 adds ~1 GB; see docs/benchmarks.md for the other knobs.
bench:
	@t0=$$(date +%s.%N); $(MAKE) --no-print-directory build && BENCH_T0=$$t0 scripts/bench-run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
