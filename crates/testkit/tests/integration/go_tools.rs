//! The Go oracle tools can be located.

use testkit::golitestream::{go_vfs_so, litestream_bin};

#[test]
fn go_tools_are_found() {
    let bin = litestream_bin().expect("litestream binary");
    assert!(bin.is_file(), "{}", bin.display());
    let so = go_vfs_so().expect("litestream-vfs.so");
    assert!(so.ends_with("litestream-vfs.so"), "{}", so.display());
    eprintln!("litestream: {}\nGo VFS: {}", bin.display(), so.display());
}
