//! Sauna's Amazon Kinesis observer, in Rust.
//!
//! Reads Sauna commands from every shard of a Kinesis stream, hands each to the responder for
//! its command type, and checkpoints progress in a KCL-compatible DynamoDB lease table.
//!
//! Module map (the actor map of the design, one concept per module):
//! - [`config`]: the config directory (self-describing Avro configs) and the runtime tuning;
//! - [`command`]: a record's bytes → a routable command or the reason it is not one;
//! - [`iglu`]: schema keys and criteria;
//! - [`responders`]: one module per external service;
//! - [`aws`]: SDK clients from an observer's config.

pub mod aws;
pub mod command;
pub mod config;
pub mod iglu;
pub mod responders;

/// Why the observers stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the observer runtime is not part of this build yet")]
    NotBuilt,
}

/// Runs every observer of a loaded configuration until SIGTERM/SIGINT.
pub fn run(configuration: config::Configuration) -> Result<(), RunError> {
    for o in &configuration.observers {
        log::info!(
            "observer {} on stream {} ({})",
            o.id,
            o.stream_name,
            o.region
        );
    }
    Err(RunError::NotBuilt)
}
