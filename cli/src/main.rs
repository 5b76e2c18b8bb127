//! The `filestore` binary; everything is in the library.

fn main() -> std::process::ExitCode {
    filestore_cli::main()
}
