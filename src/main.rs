//! The `trengo-sync` binary: a thin shell over the library's command line.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    trengo_sync::cli::main()
}
