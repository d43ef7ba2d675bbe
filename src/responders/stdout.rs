//! Prints commands on standard output, one JSON line each (`rs.sauna.responders/StdoutConfig`
//! 1-0-0): for local runs, demos, and piping commands into another program.
//!
//! Standard output is written by a thread of its own: a reader that is slow to empty the pipe
//! (or never does) holds up only the commands waiting to be printed — they wait in a bounded
//! queue, their responder's permits fill, their shards' reading pauses — and never an actor
//! thread (a blocking write there would stop lease renewals and lose every lease). Lines
//! queued together are written with one `write` and one flush; each is acknowledged only once
//! written and flushed.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use serde::{Deserialize, Serialize};

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

    /// As many as the writer's queue holds: printing sends no request anywhere, and the more
    /// lines are queued, the more go out in each `write` (64 at a time cost half its CPU again).
    fn concurrency(&self) -> Option<usize> {
        Some(QUEUE)
    }

    fn execute<'a>(&'a self, command: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
        let bytes = line_of(command);
        Box::pin(async move {
            match print(bytes).await {
                Ok(()) => Attempt::Done("printed".into()),
                Err(e) => Attempt::Retry { reason: format!("cannot write to standard output: {e}"), retry_after: None },
            }
        })
    }
}

/// A command as its line prints it. The fields are in the order of their names, as a JSON object
/// built of them printed them (serde_json sorts an object's keys), and they borrow from the
/// command instead of copying its data into a tree of their own.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrintedCommand<'a> {
    command_id: &'a uuid::Uuid,
    data: &'a serde_json::Value,
    #[serde(serialize_with = "as_text")]
    schema: &'a crate::iglu::SchemaKey,
    tags: &'a std::collections::BTreeMap<String, String>,
    when_created: String,
}

/// A field printed as its `Display` text (written straight into the line).
fn as_text<S: serde::Serializer>(value: &impl std::fmt::Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// The line printed for `command`, its newline included.
fn line_of(command: &Command) -> Vec<u8> {
    let printed = PrintedCommand {
        // A UUID serialises as its hyphenated text, as `to_string` prints it.
        command_id: &command.envelope.command_id,
        data: &command.data,
        schema: &command.schema,
        tags: &command.envelope.tags,
        when_created: command.envelope.when_created.to_rfc3339(),
    };
    let mut bytes = Vec::with_capacity(256);
    // Serializing borrowed JSON values and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut bytes, &printed);
    bytes.push(b'\n');
    bytes
}

/// One line to print, and who waits for it.
type Line = (Vec<u8>, oneshot::Sender<std::io::Result<()>>);

/// Lines waiting for the writer thread; a full queue makes the printing command wait.
const QUEUE: usize = 4096;
/// The most lines written with one `write`.
const BATCH: usize = 512;

/// Hands a line to the writer thread and waits until it is written and flushed.
async fn print(line: Vec<u8>) -> std::io::Result<()> {
    static WRITER: OnceLock<Option<mpsc::Sender<Line>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Line>(QUEUE);
        std::thread::Builder::new().name("sauna-stdout".into()).spawn(move || write_lines(rx)).ok().map(|_| tx)
    });
    let Some(writer) = writer else {
        return Err(std::io::Error::other("the standard output writer thread could not start"));
    };
    let (done, written) = oneshot::channel();
    writer.send((line, done)).await.map_err(|_| std::io::Error::other("the standard output writer is gone"))?;
    written.await.unwrap_or_else(|_| Err(std::io::Error::other("the standard output writer is gone")))
}

/// The writer thread: whatever is queued goes out in one write and one flush.
fn write_lines(mut rx: mpsc::Receiver<Line>) {
    let mut buffer = Vec::new();
    let mut waiting = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        buffer.clear();
        waiting.clear();
        buffer.extend_from_slice(&first.0);
        waiting.push(first.1);
        while waiting.len() < BATCH {
            match rx.try_recv() {
                Ok((line, done)) => {
                    buffer.extend_from_slice(&line);
                    waiting.push(done);
                }
                Err(_) => break,
            }
        }
        let mut out = std::io::stdout().lock();
        let result = out.write_all(&buffer).and_then(|_| out.flush());
        drop(out);
        for done in waiting.drain(..) {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The line is byte for byte what printing a JSON object of the same fields gave (the
    /// form earlier releases printed, which downstream programs parse).
    #[test]
    fn a_line_is_the_json_object_of_the_command_and_a_newline() {
        let command = Command {
            envelope: crate::command::Envelope {
                command_id: uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
                when_created: chrono::DateTime::parse_from_rfc3339("2017-01-02T03:04:05.678+01:00").expect("time"),
                semantics: crate::command::Semantics::AtLeastOnce,
                time_to_live: None,
                tags: [("z".to_owned(), "last".to_owned()), ("a \"quoted\"".to_owned(), "é\n".to_owned())].into(),
            },
            schema: "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0".parse().expect("key"),
            data: serde_json::json!({ "text": "hi ✓", "channel": "#ops", "attachments": [{ "b": 1, "a": null }] }),
        };
        let expected = serde_json::json!({
            "commandId": command.envelope.command_id.to_string(),
            "whenCreated": command.envelope.when_created.to_rfc3339(),
            "tags": command.envelope.tags,
            "schema": command.schema.to_string(),
            "data": command.data,
        });
        assert_eq!(String::from_utf8(line_of(&command)).expect("UTF-8"), format!("{expected}\n"));
    }
}
