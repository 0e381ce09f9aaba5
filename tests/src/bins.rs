//! Locates the two binaries under test next to the test executable: cargo puts
//! test executables in `target/<profile>/deps/` and binaries in
//! `target/<profile>/`. Building them is left to `scripts/test`.

use std::path::PathBuf;

/// Path of the binary `name` built in the same target profile as this test.
///
/// # Panics
/// When the binary is missing: the tests do not build it themselves.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("test exe has a parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first (scripts/test does this)",
        path.display()
    );
    path
}
