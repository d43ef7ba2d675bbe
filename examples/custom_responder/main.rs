//! `sauna` with one more responder: the whole program. Run it like `sauna`:
//!
//! ```sh
//! cargo run --example custom_responder -- run --config-dir examples/custom_responder/config
//! ```

mod opsgenie;

fn main() -> std::process::ExitCode {
    // The one line of registration.
    sauna::cli::main(&[&opsgenie::MODULE])
}
