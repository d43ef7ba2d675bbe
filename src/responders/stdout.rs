//! Prints commands on standard output, one JSON line each (`rs.sauna.responders/StdoutConfig`
//! 1-0-0): for local runs, demos, and piping commands into another program.

use std::io::Write;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Attempt, AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use crate::command::Command;
use crate::config::FieldError;
use crate::iglu::SchemaCriterion;

pub static MODULE: ResponderModule = ResponderModule {
    name: "Stdout",
    config_schemas: &[ConfigSchema {
        key: "iglu:rs.sauna.responders/StdoutConfig/avro/1-0-0",
        avro: include_str!("../../resources/iglu/schemas/rs.sauna.responders/StdoutConfig/avro/1-0-0"),
    }],
    configure,
};

#[derive(Debug)]
pub struct StdoutResponder {
    pub id: String,
    pub criteria: Vec<SchemaCriterion>,
}

impl Responder for StdoutResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        self.criteria.clone()
    }

    fn execute<'a>(&'a self, command: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
        let line = serde_json::json!({
            "commandId": command.envelope.command_id.to_string(),
            "whenCreated": command.envelope.when_created.to_rfc3339(),
            "tags": command.envelope.tags,
            "schema": command.schema.to_string(),
            "data": command.data,
        });
        let written = {
            // One write of the whole line under the lock: lines never interleave.
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}").and_then(|_| out.flush())
        };
        Box::pin(async move {
            match written {
                Ok(()) => Attempt::Done("printed".into()),
                Err(e) => Attempt::Retry { reason: format!("cannot write to standard output: {e}"), retry_after: None },
            }
        })
    }
}

#[derive(Deserialize)]
struct RawParameters {
    commands: Vec<String>,
}

fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = super::decode::<RawParameters>(file.value)?;
    let criteria = super::parse_criteria(&raw.parameters.commands, "data.parameters.commands")?;
    Ok(Configured { responders: vec![Arc::new(StdoutResponder { id: raw.id, criteria })], warnings: vec![] })
}
