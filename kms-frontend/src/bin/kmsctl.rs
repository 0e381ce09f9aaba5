//! The `kmsctl` binary: everything lives in `kms_frontend::cli`.

fn main() -> std::process::ExitCode {
    kms_frontend::cli::main()
}
