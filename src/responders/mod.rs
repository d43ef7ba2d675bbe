//! Responders: the actors that action commands, one module per external service.
//!
//! A responder module provides three things: the config schemas it is configured by, the
//! command criteria it accepts, and `execute`. Registering it is one line in [`MODULES`].

use std::fmt;
use std::sync::Arc;

use apache_avro::types::Value as AvroValue;

use crate::config::avro_json::FieldError;
use crate::iglu::{SchemaCriterion, SchemaKey};

pub mod pagerduty;
pub mod sendgrid;
pub mod slack;

/// An Avro config schema embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSchema {
    /// The Iglu key config files name it by.
    pub key: &'static str,
    /// The Avro schema text.
    pub avro: &'static str,
}

/// One enabled config file of a responder, already checked against its Avro schema.
pub struct ResponderConfigFile<'a> {
    pub key: &'a SchemaKey,
    pub value: &'a AvroValue,
}

/// What one config file configures.
#[derive(Debug, Default)]
pub struct Configured {
    pub responders: Vec<Arc<dyn Responder>>,
    /// Things the user should know but that do not stop the program (a batch-only action
    /// enabled in a config, say).
    pub warnings: Vec<String>,
}

/// A responder module's registration.
pub struct ResponderModule {
    /// Human name, for logs.
    pub name: &'static str,
    pub config_schemas: &'static [ConfigSchema],
    /// Builds the responders one enabled config file asks for.
    pub configure: fn(&ResponderConfigFile<'_>) -> Result<Configured, FieldError>,
}

/// Every responder this build knows. Adding a responder: write its module, add one line here.
pub static MODULES: &[&ResponderModule] = &[&slack::MODULE, &pagerduty::MODULE, &sendgrid::MODULE];

/// A configured responder. `Debug` must not print secrets (hold them in
/// [`crate::config::Secret`]).
pub trait Responder: Send + Sync + fmt::Debug {
    /// The config id, unique in the config directory.
    fn id(&self) -> &str;
    /// The command types this responder actions.
    fn criteria(&self) -> Vec<SchemaCriterion>;
}

/// Parses a criterion written in a responder module; a bad literal is a programming error.
pub(crate) fn criterion(s: &'static str) -> SchemaCriterion {
    s.parse()
        .unwrap_or_else(|e| panic!("responder criterion literal {s:?}: {e}"))
}

/// Decodes a responder config value into its raw serde struct.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(value: &AvroValue) -> Result<T, FieldError> {
    apache_avro::from_value(value)
        .map_err(|e| FieldError::new("data", format!("cannot decode: {e}")))
}
