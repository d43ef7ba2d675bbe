//! Sauna commands: one Kinesis record's bytes → a routable command, or the reason it is not one.
//!
//! A record is UTF-8 JSON `iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-*`
//! holding two self-describing JSONs: the `envelope` (id, creation time, time to live, tags) and
//! the `command`, whose schema selects the responder. Classification never panics and never
//! fails: every input gets exactly one class, and every class but `Routable` carries a one-line
//! reason that names the field at fault.
//!
//! Two ways to the same answer: a record is first read into a [`tape`] and checked there, which
//! allocates nothing but the command it makes (`from_tape.rs`); whatever that way does not take
//! to the end (a record that is not a live, valid, routable command, or that is unusual, such as
//! an object naming a key twice) is classified again as a `serde_json::Value` tree
//! (`from_value.rs`), which words every reason. The tape way only ever answers what the tree way
//! would have (the tests hold the two side by side).

mod data;
mod from_tape;
mod from_value;
mod last_parsed;
pub mod schemas;
mod tags;
pub mod tape;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use uuid::Uuid;

use crate::iglu::{SchemaCriterion, SchemaKey};
pub use data::CommandData;
pub use schemas::SchemaRegistry;
pub use tags::Tags;
use tape::Tape;

/// The outer schema family every command belongs to.
pub const COMMAND_CRITERION: &str = "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-*";
/// The envelope schema family.
pub const ENVELOPE_CRITERION: &str = "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-*";

/// `execution.semantics`. Only at-least-once exists in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    AtLeastOnce,
}

/// A command's envelope: what the producer says about the command, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub command_id: Uuid,
    /// With the producer's offset, so the TTL is judged on the true instant.
    pub when_created: DateTime<FixedOffset>,
    pub semantics: Semantics,
    /// `None`: the command never expires.
    pub time_to_live: Option<Duration>,
    pub tags: Tags,
}

/// A valid command, ready for its responder.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub envelope: Envelope,
    /// The command's own schema (`command.schema`), e.g. `…/send_message/jsonschema/1-0-0`
    /// (shared with the schema registry: each command holds a reference, not a copy).
    pub schema: Arc<SchemaKey>,
    /// The command's `data`, valid against `schema`.
    pub data: CommandData,
}

/// What a record is.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// A valid, live command and the index of the route (responder) that takes it.
    Routable { command: Arc<Command>, route: usize },
    /// Not a command: not UTF-8, not JSON, wrong schema, fails a schema…
    Invalid { reason: String, command_id: Option<Uuid> },
    /// A valid envelope, but no configured responder takes this command type.
    Unroutable { reason: String, command_id: Uuid },
    /// Its time to live had passed when it was read.
    Expired { reason: String, command_id: Uuid },
}

impl Classified {
    pub fn command_id(&self) -> Option<Uuid> {
        match self {
            Classified::Routable { command, .. } => Some(command.envelope.command_id),
            Classified::Invalid { command_id, .. } => *command_id,
            Classified::Unroutable { command_id, .. } | Classified::Expired { command_id, .. } => Some(*command_id),
        }
    }
}

/// Classifies records. Cheap to share: one per observer, used from several threads.
#[derive(Debug)]
pub struct CommandParser {
    schemas: Arc<SchemaRegistry>,
    /// Route `i` takes the commands its criteria match; the first match wins.
    routes: Vec<Vec<SchemaCriterion>>,
    command: SchemaCriterion,
    envelope: SchemaCriterion,
}

impl CommandParser {
    pub fn new(schemas: Arc<SchemaRegistry>, routes: Vec<Vec<SchemaCriterion>>) -> Self {
        CommandParser {
            schemas,
            routes,
            command: COMMAND_CRITERION.parse().expect("constant criterion"),
            envelope: ENVELOPE_CRITERION.parse().expect("constant criterion"),
        }
    }

    /// Classifies one record's bytes as read at `now`.
    pub fn classify(&self, bytes: &[u8], now: DateTime<Utc>) -> Classified {
        // The standard library's check only to word the error (simdutf8's `basic` does not say
        // where).
        let text = match simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes)) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("record data: not UTF-8 (invalid byte at offset {})", e.valid_up_to());
                return Classified::Invalid { reason, command_id: None };
            }
        };
        thread_local! {
            /// Each parsing thread's tape, its memory kept from one record to the next.
            static TAPE: RefCell<Tape> = RefCell::default();
        }
        let on_tape = TAPE.with(|tape| match tape.try_borrow_mut() {
            Ok(mut tape) => self.classify_tape(&mut tape, text, now),
            Err(_) => self.classify_tape(&mut Tape::default(), text, now),
        });
        on_tape.unwrap_or_else(|| self.classify_value(text, now))
    }

    /// The index of the route that takes commands of `key`: the first whose criteria match.
    fn route_of(&self, key: &SchemaKey) -> Option<usize> {
        self.routes.iter().position(|criteria| criteria.iter().any(|c| c.matches(key)))
    }
}

/// Why a command read at `now` is past its time to live, if it is.
fn expired(envelope: &Envelope, now: DateTime<Utc>) -> Option<String> {
    let ttl = envelope.time_to_live?;
    let age = now.signed_duration_since(envelope.when_created);
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    (age.num_milliseconds() > ttl_ms).then(|| {
        format!(
            "data.envelope.data.execution.timeToLive: expired; created {} ({} UTC), time to live {} ms, read {} ms after creation",
            envelope.when_created.to_rfc3339(),
            envelope.when_created.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            ttl_ms,
            age.num_milliseconds()
        )
    })
}

#[cfg(test)]
mod tests;
