//! Settings types: what each config file means once it has been read and checked, and the Avro
//! schema each is checked against. Nothing here reads a directory or knows a responder: the
//! loader that turns a config directory into these (and into live responders) is
//! [`crate::config_dir`], a layer above.
//!
//! - [`observer`]: `AmazonKinesisConfig` 1-0-0, one Kinesis stream to observe;
//! - [`logger`]: `AmazonDynamodbConfig` 1-0-0, Sauna's outcome log;
//! - [`runtime`]: `rs.sauna.config/RuntimeConfig` 1-0-0, the tuning knobs (every field defaulted);
//! - [`avro_json`]: the natural-or-strict JSON → Avro conversion with field-path errors;
//! - [`Secret`]: a credential that never reaches a log.

pub mod avro_json;
pub mod logger;
pub mod observer;
pub mod runtime;
mod secret;

pub use avro_json::FieldError;
pub use logger::DynamodbLoggerConfig;
pub use observer::{AwsCredentials, InitialPosition, KinesisObserverConfig};
pub use runtime::RuntimeConfig;
pub use secret::Secret;
