# The README's two commands are `make demo` and `make test`; both install what they need.
CARGO   ?= cargo
SO      := target/release/liblitestream_vfs.so
export LITESTREAM_VFS_SO := $(CURDIR)/$(SO)

.PHONY: setup build test demo lint fmt clean

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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
