//! The `kmsctl` binary: everything lives in `kms_frontend::cli`.

/// mimalloc: fewer cycles per allocation than glibc under many threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kms_frontend::cli::main()
}
