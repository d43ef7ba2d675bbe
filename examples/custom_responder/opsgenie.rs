//! An OpsGenie responder, as a user of the library writes one: it turns
//! `com.opsgenie.sauna.commands/create_alert/jsonschema/1-0-*` commands into alerts through
//! OpsGenie's Alert API.
//!
//! Everything a responder is lives here: its config schema (Avro, self-describing like Sauna's
//! own), the command types it takes, and one attempt at a command. Mailbox, concurrency,
//! timeouts, retries with backoff (429 honouring `Retry-After`, 5xx, timeouts), dead letters,
//! outcome log and metrics come from the shared responder actor.

use std::sync::Arc;

use sauna::command::Command;
use sauna::config::{FieldError, Secret};
use sauna::iglu::SchemaCriterion;
use sauna::responders::{
    AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use serde::Deserialize;

/// The registration: config schemas and how to build the responder from a config file.
pub static MODULE: ResponderModule = ResponderModule {
    name: "OpsGenie",
    config_schemas: &[ConfigSchema { key: "iglu:com.acme.sauna.responders/OpsgenieConfig/avro/1-0-0", avro: CONFIG }],
    configure,
};

/// The config: `{"enabled", "id", "parameters": {"apiKey", "apiUrl"}}`.
const CONFIG: &str = r#"{
  "namespace": "com.acme.sauna.responders",
  "name": "OpsgenieConfig_1_0_0",
  "type": "record",
  "fields": [
    { "name": "enabled", "type": "boolean" },
    { "name": "id", "type": "string" },
    { "name": "parameters", "type": {
      "name": "OpsgenieConfigParameters_1_0_0", "type": "record",
      "fields": [
        { "name": "apiKey", "type": "string" },
        { "name": "apiUrl", "type": "string", "default": "https://api.opsgenie.com" }
      ]
    }}
  ]
}"#;

/// The command types it takes: any addition of revision 0 of model 1.
pub const CREATE_ALERT: &str = "iglu:com.opsgenie.sauna.commands/create_alert/jsonschema/1-0-*";

#[derive(Debug)]
pub struct OpsgenieResponder {
    id: String,
    /// `Secret`: never printed by `Debug` or the logs.
    api_key: Secret,
    api_url: String,
}

impl Responder for OpsgenieResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec![CREATE_ALERT.parse().expect("a valid criterion")]
    }

    /// One attempt: the command's data is the create-alert request as it stands.
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a> {
        let request = ctx
            .http()
            .post(format!("{}/v2/alerts", self.api_url.trim_end_matches('/')))
            .header("Authorization", format!("GenieKey {}", self.api_key.expose()))
            .json(&command.data);
        // 2xx: done; 429 / 5xx / timeouts: retried; other 4xx: failed.
        Box::pin(sauna::responders::http::send(request))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    api_key: String,
    api_url: String,
}

/// Builds the responder from an enabled config file (already checked against `CONFIG`).
fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = sauna::responders::decode::<RawParameters>(file.value)?;
    if raw.parameters.api_key.trim().is_empty() {
        return Err(FieldError::new("data.parameters.apiKey", "expected an OpsGenie API key, found an empty string"));
    }
    Ok(Configured {
        responders: vec![Arc::new(OpsgenieResponder {
            id: raw.id,
            api_key: Secret::new(raw.parameters.api_key),
            api_url: raw.parameters.api_url,
        })],
        warnings: vec![],
    })
}
