//! Sauna commands: one Kinesis record's bytes → a routable command, or the reason it is not one.
//!
//! A record is UTF-8 JSON `iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-*`
//! holding two self-describing JSONs: the `envelope` (id, creation time, time to live, tags) and
//! the `command`, whose schema selects the responder. Classification never panics and never
//! fails: every input gets exactly one class, and every class but `Routable` carries a one-line
//! reason that names the field at fault.

pub mod schemas;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::iglu::{SchemaCriterion, SchemaKey};
pub use schemas::SchemaRegistry;

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
    pub tags: BTreeMap<String, String>,
}

/// A valid command, ready for its responder.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub envelope: Envelope,
    /// The command's own schema (`command.schema`), e.g. `…/send_message/jsonschema/1-0-0`.
    pub schema: SchemaKey,
    /// The command's `data`, valid against `schema`.
    pub data: Value,
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
        let invalid = |reason: String, command_id: Option<Uuid>| Classified::Invalid { reason, command_id };

        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return invalid(format!("record data: not UTF-8 (invalid byte at offset {})", e.valid_up_to()), None);
            }
        };
        // Parsed as text, not as bytes: `from_slice` checks each string's UTF-8 again as it reads
        // it, and took half as much CPU again as this check of the whole record and `from_str`.
        let mut json: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return invalid(format!("record data: not JSON: {e}"), None),
        };
        let (key, data) = match self.self_describing(&json, "") {
            Ok(kd) => kd,
            Err(reason) => return invalid(reason, None),
        };
        if !self.command.matches(&key) {
            return invalid(format!("schema: expected a Sauna command ({}), found {key}", self.command), None);
        }
        if let Err(reason) = self.schemas.validate(&key, data, "data") {
            return invalid(reason, find_command_id(data));
        }

        // The envelope.
        let (env_key, env_data) = match self.self_describing(&data["envelope"], "data.envelope.") {
            Ok(kd) => kd,
            Err(reason) => return invalid(reason, None),
        };
        if !self.envelope.matches(&env_key) {
            return invalid(format!("data.envelope.schema: expected {}, found {env_key}", self.envelope), None);
        }
        if let Err(reason) = self.schemas.validate(&env_key, env_data, "data.envelope.data") {
            return invalid(reason, find_command_id(data));
        }
        let mut envelope = match envelope(env_data) {
            Ok(e) => e,
            Err(reason) => return invalid(reason, find_command_id(data)),
        };
        let command_id = envelope.command_id;

        // The command.
        let (cmd_key, cmd_data) = match self.self_describing(&data["command"], "data.command.") {
            Ok(kd) => kd,
            Err(reason) => return invalid(reason, Some(command_id)),
        };
        let Some(route) = self.routes.iter().position(|criteria| criteria.iter().any(|c| c.matches(&cmd_key))) else {
            return Classified::Unroutable {
                reason: format!("data.command.schema: no enabled responder takes {cmd_key}"),
                command_id,
            };
        };
        if let Err(reason) = self.schemas.validate(&cmd_key, cmd_data, "data.command.data") {
            return invalid(reason, Some(command_id));
        }

        if let Some(reason) = expired(&envelope, now) {
            return Classified::Expired { reason, command_id };
        }

        let schema = cmd_key.into_owned();
        // Validated: the command's data and the envelope's tags are taken out of the record's
        // JSON, not copied. (`pointer_mut` would unescape each of the path's parts into a
        // string of its own.)
        let mut take = |path: &[&str]| {
            path.iter().try_fold(&mut json, |json, field| json.get_mut(*field)).map(Value::take).unwrap_or_default()
        };
        let data = take(&["data", "command", "data"]);
        envelope.tags = take_tags(take(&["data", "envelope", "data", "tags"]));
        Classified::Routable { command: Arc::new(Command { envelope, schema, data }), route }
    }

    /// Splits a self-describing JSON into its key and data; `prefix` names where it sits. The
    /// key of a known schema is the registry's (nothing parsed, nothing copied).
    fn self_describing<'v>(&self, json: &'v Value, prefix: &str) -> Result<(Cow<'_, SchemaKey>, &'v Value), String> {
        let (schema, data) = split_self_describing(json, prefix)?;
        let key = match self.schemas.key_of(schema) {
            Some(key) => Cow::Borrowed(key),
            None => Cow::Owned(schema.parse().map_err(|e| format!("{prefix}schema: {e}"))?),
        };
        let Some(data) = data else {
            return Err(format!("{prefix}data: missing"));
        };
        Ok((key, data))
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

/// Splits a self-describing JSON into its schema URI and data (if it has any); `prefix` names
/// where it sits.
fn split_self_describing<'v>(json: &'v Value, prefix: &str) -> Result<(&'v str, Option<&'v Value>), String> {
    let Some(obj) = json.as_object() else {
        return Err(format!(
            "{}: expected a self-describing JSON object {{\"schema\": \"iglu:…\", \"data\": …}}, found {}",
            if prefix.is_empty() { "record data".to_owned() } else { prefix.trim_end_matches('.').to_owned() },
            crate::config::avro_json::found(json)
        ));
    };
    let Some(schema) = obj.get("schema").and_then(Value::as_str) else {
        return Err(format!(
            "{prefix}schema: expected a string holding an Iglu URI, found {}",
            obj.get("schema").map_or_else(|| "nothing".to_owned(), crate::config::avro_json::found)
        ));
    };
    Ok((schema, obj.get("data")))
}

/// The envelope's typed fields; the schema has already checked shapes and formats, so the
/// errors here are a second line of defence for custom envelope revisions.
fn envelope(data: &Value) -> Result<Envelope, String> {
    let at = |f: &str| format!("data.envelope.data.{f}");
    let command_id = data["commandId"]
        .as_str()
        .and_then(schemas::parse_uuid)
        .ok_or_else(|| format!("{}: expected a UUID such as 9dadfc92-9311-43c7-9cee-61ab590a6e81", at("commandId")))?;
    let when_created = data["whenCreated"]
        .as_str()
        .and_then(schemas::parse_date_time)
        .ok_or_else(|| format!("{}: expected an ISO 8601 date-time such as 2017-01-02T19:14:42Z", at("whenCreated")))?;
    let execution = &data["execution"];
    let semantics = match execution["semantics"].as_str() {
        Some("AT_LEAST_ONCE") => Semantics::AtLeastOnce,
        _ => {
            return Err(format!("{}: expected \"AT_LEAST_ONCE\"", at("execution.semantics")));
        }
    };
    let time_to_live = match &execution["timeToLive"] {
        Value::Null => None,
        v => match v.as_u64() {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => {
                return Err(format!(
                    "{}: expected null or a non-negative integer of milliseconds, found {}",
                    at("execution.timeToLive"),
                    crate::config::avro_json::found(v)
                ));
            }
        },
    };
    // Checked here; built by `take_tags` once the command is known to be routable, from the
    // record's own strings.
    match data.get("tags").and_then(Value::as_object) {
        Some(obj) => {
            if let Some((k, _)) = obj.iter().find(|(_, v)| !v.is_string()) {
                return Err(format!("{}: expected a string", at(&format!("tags.{k}"))));
            }
        }
        None => {
            return Err(format!("{}: expected an object of strings (it may be empty)", at("tags")));
        }
    }
    Ok(Envelope { command_id, when_created, semantics, time_to_live, tags: BTreeMap::new() })
}

/// An envelope's tags that [`envelope`] has checked, their strings moved, not copied.
fn take_tags(tags: Value) -> BTreeMap<String, String> {
    let Value::Object(tags) = tags else { return BTreeMap::new() };
    tags.into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect()
}

/// The commandId, when an otherwise broken record still has a readable one (for the logs).
fn find_command_id(data: &Value) -> Option<Uuid> {
    data.pointer("/envelope/data/commandId").and_then(Value::as_str).and_then(schemas::parse_uuid)
}
