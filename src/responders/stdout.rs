//! Prints commands on standard output, one JSON line each (`rs.sauna.responders/StdoutConfig`
//! 1-0-0): for local runs, demos, and piping commands into another program.
//!
//! Standard output is written by a thread of its own: a reader that is slow to empty the pipe
//! (or never does) holds up only the commands waiting to be printed — they wait in a bounded
//! queue, their responder's permits fill, their shards' reading pauses — and never an actor
//! thread (a blocking write there would stop lease renewals and lose every lease). The lines of
//! the commands a consumer sends together are queued as one; lines queued together are written
//! with one `write` and one flush; each is acknowledged only once written and flushed.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use serde::Deserialize;

use super::{
    Attempt, AttemptFuture, AttemptsFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext,
    ResponderModule,
};
use crate::command::Command;
use crate::config::FieldError;
use crate::iglu::{SchemaCriterion, SchemaKey};

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
        let mut lines = Lines::with_capacity(256);
        lines.write(command);
        Box::pin(async move { attempt_of(print(lines.out).await) })
    }

    /// A batch's lines go to the writer together, and are acknowledged together.
    fn takes_batches(&self) -> bool {
        true
    }

    fn execute_batch<'a>(&'a self, commands: Vec<&'a Command>, _: &'a ResponderContext) -> AttemptsFuture<'a> {
        let mut lines = Lines::with_capacity(256 * commands.len());
        for command in &commands {
            lines.write(command);
        }
        Box::pin(async move { vec![attempt_of(print(lines.out).await); commands.len()] })
    }
}

/// What writing a command's line (or a batch's lines) came to.
fn attempt_of(written: std::io::Result<()>) -> Attempt {
    match written {
        Ok(()) => Attempt::Done("printed".into()),
        Err(e) => Attempt::Retry { reason: format!("cannot write to standard output: {e}"), retry_after: None },
    }
}

/// Commands' lines, written one after the other.
struct Lines {
    out: Vec<u8>,
    /// The schema of the last command written and how it prints: the commands written together
    /// mostly share their schema, and printing an Iglu URI took a third of writing a line.
    schema: Option<(Arc<SchemaKey>, Vec<u8>)>,
}

impl Lines {
    fn with_capacity(bytes: usize) -> Self {
        Lines { out: Vec::with_capacity(bytes), schema: None }
    }

    /// Writes the line printed for `command`, its newline included: the JSON object of its
    /// `commandId`, `data`, `schema`, `tags` and `whenCreated`, in the order of their names, as
    /// serde_json prints such an object (the form downstream programs parse). Written piece by
    /// piece: the data is JSON text already, and a UUID, an Iglu URI and an RFC 3339 time hold
    /// no character that JSON escapes, so only the tags go through serde_json's escaping.
    fn write(&mut self, command: &Command) {
        let (lines, envelope) = (&mut self.out, &command.envelope);
        lines.extend_from_slice(b"{\"commandId\":\"");
        lines.extend_from_slice(
            envelope.command_id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes(),
        );
        lines.extend_from_slice(b"\",\"data\":");
        lines.extend_from_slice(command.data.as_str().as_bytes());
        lines.extend_from_slice(b",\"schema\":");
        match &self.schema {
            Some((schema, printed)) if Arc::ptr_eq(schema, &command.schema) => lines.extend_from_slice(printed),
            _ => {
                let mut printed = Vec::with_capacity(80);
                write_plain_string(&mut printed, &command.schema);
                lines.extend_from_slice(&printed);
                self.schema = Some((command.schema.clone(), printed));
            }
        }
        lines.extend_from_slice(b",\"tags\":");
        // Serializing a map of strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *lines, &envelope.tags);
        // RFC 3339 as chrono prints it: digits, `-`, `:`, `.`, `T`, `+` and `Z` only.
        lines.extend_from_slice(b",\"whenCreated\":\"");
        lines.extend_from_slice(envelope.when_created.to_rfc3339().as_bytes());
        lines.extend_from_slice(b"\"}\n");
    }
}

/// Writes `value`'s text as a JSON string: as it is when no character of it needs an escape
/// (the usual case for the values this is used for), through serde_json otherwise.
fn write_plain_string(lines: &mut Vec<u8>, value: &impl std::fmt::Display) {
    let start = lines.len();
    lines.push(b'"');
    // Writing to a Vec cannot fail.
    let _ = write!(lines, "{value}");
    if lines[start + 1..].iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        lines.truncate(start);
        let _ = serde_json::to_writer(&mut *lines, &value.to_string());
    } else {
        lines.push(b'"');
    }
}

/// Lines to print (one command's, or a batch's), and who waits for them.
type Queued = (Vec<u8>, oneshot::Sender<std::io::Result<()>>);

/// The most commands printing at once (the permits of the responder), and so the most lines
/// waiting for the writer thread: a command waits for a permit before its line is queued.
const QUEUE: usize = 4096;
/// The most bytes written with one `write`, unless one batch's lines are more.
const WRITE: usize = 256 * 1024;

/// Hands lines to the writer thread and waits until they are written and flushed.
async fn print(lines: Vec<u8>) -> std::io::Result<()> {
    static WRITER: OnceLock<Option<mpsc::Sender<Queued>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Queued>(QUEUE);
        std::thread::Builder::new().name("sauna-stdout".into()).spawn(move || write_lines(rx)).ok().map(|_| tx)
    });
    let Some(writer) = writer else {
        return Err(std::io::Error::other("the standard output writer thread could not start"));
    };
    let (done, written) = oneshot::channel();
    writer.send((lines, done)).await.map_err(|_| std::io::Error::other("the standard output writer is gone"))?;
    written.await.unwrap_or_else(|_| Err(std::io::Error::other("the standard output writer is gone")))
}

/// The writer thread: whatever is queued (up to [`WRITE`] bytes) goes out in one write and one
/// flush.
fn write_lines(mut rx: mpsc::Receiver<Queued>) {
    let mut buffer = Vec::new();
    let mut waiting = Vec::new();
    while let Some((first, done)) = rx.blocking_recv() {
        buffer.clear();
        waiting.clear();
        buffer.extend_from_slice(&first);
        waiting.push(done);
        while buffer.len() < WRITE {
            match rx.try_recv() {
                Ok((lines, done)) => {
                    buffer.extend_from_slice(&lines);
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
                tags: [("z".to_owned(), "last".to_owned()), ("a \"quoted\"".to_owned(), "é\n".to_owned())]
                    .into_iter()
                    .collect(),
            },
            schema: Arc::new("iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0".parse().expect("key")),
            data: serde_json::json!({ "text": "hi ✓", "channel": "#ops", "attachments": [{ "b": 1, "a": null }] })
                .into(),
        };
        let expected = serde_json::json!({
            "commandId": command.envelope.command_id.to_string(),
            "whenCreated": command.envelope.when_created.to_rfc3339(),
            "tags": command.envelope.tags,
            "schema": command.schema.to_string(),
            "data": command.data.to_value(),
        });
        let mut lines = Lines::with_capacity(0);
        lines.write(&command);
        lines.write(&command);
        assert_eq!(String::from_utf8(lines.out).expect("UTF-8"), format!("{expected}\n{expected}\n"));
    }

    /// A key made in code may hold any text: a character JSON escapes is escaped as serde_json
    /// escapes it.
    #[test]
    fn text_that_needs_escapes_is_escaped() {
        let mut line = Vec::new();
        for text in ["plain", "a \"quote\"", "back\\slash", "tab\t", "é✓"] {
            line.clear();
            write_plain_string(&mut line, &text);
            assert_eq!(String::from_utf8(line.clone()).expect("UTF-8"), serde_json::to_string(text).expect("JSON"));
        }
    }
}
