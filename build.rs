// Nothing to generate. Naming this file as the only input keeps cargo from re-running the script,
// and relinking the library, whenever any file under the package root (the whole repository:
// docs, benchmark results) changes.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
