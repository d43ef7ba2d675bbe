//! The `sauna` binary: the command line of the library with its built-in responders.

use std::process::ExitCode;

fn main() -> ExitCode {
    sauna::cli::main(&[])
}
