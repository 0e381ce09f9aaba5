//! Locates the binaries under test next to the test executable: cargo puts
//! test executables in `target/<profile>/deps/`, binaries in
//! `target/<profile>/` and examples in `target/<profile>/examples/`.
//! Building them is left to `scripts/test`.

use std::path::PathBuf;

/// Path of the binary `name` built in the same target profile as this test.
///
/// # Panics
/// When the binary is missing: the tests do not build it themselves.
pub fn bin_path(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first (scripts/test does this)",
        path.display()
    );
    path
}

/// Path of the example `name` built in the same target profile as this test.
///
/// # Panics
/// When the example is missing: the tests do not build it themselves.
pub fn example_path(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --examples` first (scripts/test does this)",
        path.display()
    );
    path
}

/// `target/<profile>/` of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("test exe has a parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}
