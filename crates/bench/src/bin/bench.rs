//! `make bench`: see `docs/benchmarks.md` and [`bench::driver`].

fn main() -> anyhow::Result<()> {
    bench::driver::main()
}
