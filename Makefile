# The README's two commands are `make demo` and `make test`; both install what they need.
CARGO   ?= cargo
SO      := target/release/liblitestream_vfs.so
export LITESTREAM_VFS_SO := $(CURDIR)/$(SO)

.PHONY: setup build dist test demo bench fuzz fuzz-smoke lint fmt clean

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release -p litestream-vfs

# The packages: a wheel (import module `litestream_vfs`, the Go package's API) and an npm tarball
# (`getLoadablePath()`), both bundling the release library, in dist/. See packaging/README.md.
dist: build
	@python3 scripts/dist.py

# Unit, property, engine (file:// and a real S3 server on 127.0.0.1), golden sql-tests through
# the sqlite3 shell, interop with the Go litestream 0.5.17 tools, fault injection, corruption,
# security, the fuzz corpus replay (docs/reliability.md), the setup's decisions and the packages of
# `make dist` installed with pip and npm, then a short fuzz run; formatting is checked first and
# clippy's lint wall (Cargo.toml [workspace.lints], the product crates' lib.rs) last. The test
# binaries build with the `ci` profile (release without LTO, Cargo.toml); the extension they load
# is the release build.
test: dist
	$(CARGO) fmt --all -- --check
	$(CARGO) test --profile ci --workspace --no-fail-fast
	@$(MAKE) --no-print-directory fuzz-smoke
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

demo: build
	@scripts/demo.sh

# Benchmark: our VFS vs the Go VFS vs local SQLite, reading ~10 MB and ~200 MB replicas written by
# the Go `litestream replicate` (cached in .bench/), then writing in write mode to a new database
# and to a copy of the 200 MB replica, and one 500 MB transaction on a new database (issue #14;
# BENCH_BIGTX_MB=500,2000 adds 2 GB, empty skips it, BENCH_WRITE_WORKLOADS=bigtx runs it alone);
# then docs/benchmarks.md and .png. BENCH_SUITES=write (or
# read) runs one suite and keeps the others' last figures; BENCH_SIZES=10,200,1000 adds ~1 GB.
# The scale suite (issue #14) is not in the default: BENCH_SUITES=scale follows a live primary on
# 1 M, 8 M and 26 M-page databases (up to 107 GB, generated straight into LTX snapshots: ~4.7 GB
# of replicas in .bench/) for 10 minutes per VFS and size and hydrates the 8 M one (33 GB of disk
# for a while): about 80 min; BENCH_SCALE_FOLLOW_SECS=60 takes ~25 min.
# It writes its section of docs/benchmarks.md and docs/benchmarks-scale.png. See
# docs/benchmarks.md for the other knobs.
bench:
	@t0=$$(date +%s.%N); $(MAKE) --no-print-directory build && BENCH_T0=$$t0 scripts/bench-run.sh

# Coverage-guided fuzzing with libFuzzer on the stable toolchain: sanitizer-coverage is enabled
# with stable -C flags (no -Z, no nightly). Each target runs FUZZ_SECONDS (default 60) from the
# seeds in crates/fuzz/corpus/<target>; new inputs go to target/fuzz/corpus/<target>. A crash
# is copied to crates/fuzz/regressions/<target>/, which `make test` replays from then on.
# No LTO and many codegen units: fuzzing needs coverage counters, not a small fast binary, and
# the link is most of the build.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= ltx_file ltx_page_index ltx_page_frame pragma_values
FUZZ_DIR     := target/fuzz
FUZZ_TRIPLE  := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks
FUZZ_FEATURES ?= --features libfuzzer
fuzz:
	RUSTFLAGS="$(FUZZ_RUSTFLAGS)" CARGO_TARGET_DIR=$(FUZZ_DIR) CARGO_PROFILE_RELEASE_LTO=off \
		CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(CARGO) build --release \
		-p fuzz $(FUZZ_FEATURES) --bins --target $(FUZZ_TRIPLE)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  if ! $(FUZZ_DIR)/$(FUZZ_TRIPLE)/release/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ \
	      $(FUZZ_DIR)/corpus/$$t crates/fuzz/corpus/$$t 2>$(FUZZ_DIR)/$$t.log; then \
	    mkdir -p crates/fuzz/regressions/$$t; cp $(FUZZ_DIR)/artifacts/$$t/* crates/fuzz/regressions/$$t/; \
	    tail -40 $(FUZZ_DIR)/$$t.log; failed="$$failed $$t"; \
	  fi; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)' $(FUZZ_DIR)/$$t.log | tr '\n' ' '; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in$$failed, copied to crates/fuzz/regressions/"; exit 1; fi

# The short run `make test` ends with: the three LTX decoder targets, 20 s each. Without the
# `pragma` feature the build needs only the ltx crate, so it stays quick.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20 FUZZ_TARGETS="ltx_file ltx_page_index ltx_page_frame" \
		FUZZ_FEATURES="--no-default-features --features libfuzzer"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
