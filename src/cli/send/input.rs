//! `sauna send`'s input: JSON lines → the records to put, each checked exactly as the observer
//! will check it when it reads it.
//!
//! A line is either a full Sauna command (sent byte for byte as written) or a command's own
//! `{"schema", "data"}`, which gets an envelope here: a new commandId, `whenCreated` now, the
//! `--ttl` and the `--tag`s. Every record is then classified by the observer's own
//! [`CommandParser`], so what `send` accepts is what `run` actions; nothing is put unless every
//! line passes, and every error names its line and the field at fault.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::command::{COMMAND_CRITERION, Classified, CommandParser, SchemaRegistry};
use crate::iglu::{SchemaCriterion, SchemaKey};

/// The schemas of the envelope `send` writes.
pub const COMMAND_SCHEMA: &str = "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0";
pub const ENVELOPE_SCHEMA: &str = "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0";

/// Kinesis's limit on one record: its data plus its partition key.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis's limit on a partition key, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// What `--ttl` and `--tag` put in the envelopes `send` writes (full commands keep their own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeDefaults {
    /// `execution.timeToLive`; `None` is `null` (never expires).
    pub time_to_live: Option<Duration>,
    pub tags: BTreeMap<String, String>,
}

/// Where a record's partition key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKey {
    /// The command's `commandId` (the default: records spread evenly over the shards).
    CommandId,
    /// A field of the command's `data`, as a JSON pointer; `spelled` is how the user wrote it.
    Field { pointer: String, spelled: String },
}

impl PartitionKey {
    /// `/a/b/0` (a JSON pointer) or `a.b.0` (a dotted path), into the command's `data`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("expected a JSON pointer such as /channel or a dotted path such as channel".into());
        }
        let pointer = if s.starts_with('/') {
            s.to_owned()
        } else {
            s.split('.')
                .map(|segment| {
                    if segment.is_empty() {
                        Err(format!("{s:?}: a dotted path has no empty segments"))
                    } else {
                        Ok(format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
                    }
                })
                .collect::<Result<String, String>>()?
        };
        Ok(PartitionKey::Field { pointer, spelled: s.to_owned() })
    }

    /// The key of a command with `command_id` and `data` (the command's own data).
    pub fn extract(&self, command_id: &str, data: &Value) -> Result<String, String> {
        let (key, what) = match self {
            PartitionKey::CommandId => (command_id.to_owned(), "the commandId".to_owned()),
            PartitionKey::Field { pointer, spelled } => {
                let what = format!("--partition-key {spelled}");
                let key = match data.pointer(pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    Some(v) => {
                        return Err(format!(
                            "{what}: expected a string, number or boolean in the command's data, found {}",
                            crate::config::avro_json::found(v)
                        ));
                    }
                    None => return Err(format!("{what}: the command's data has no such field")),
                };
                (key, what)
            }
        };
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
            return Err(format!(
                "{what}: a partition key has 1 to {MAX_PARTITION_KEY_CHARS} characters, this one has {chars}"
            ));
        }
        Ok(key)
    }
}

/// One record to put, and the input line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub data: Vec<u8>,
    pub partition_key: String,
}

impl Record {
    /// What the record counts for against Kinesis's limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// A problem with one input line (an error, or with `--allow-unroutable` a warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Every line's record, and the warnings.
#[derive(Debug, Default)]
pub struct Prepared {
    pub records: Vec<Record>,
    pub warnings: Vec<LineError>,
}

/// Turns input lines into records, checking each as the observer will.
pub struct Preparer<'a> {
    pub parser: &'a CommandParser,
    pub schemas: &'a SchemaRegistry,
    pub defaults: &'a EnvelopeDefaults,
    pub partition_key: &'a PartitionKey,
    /// Send commands no enabled responder takes (with a warning) instead of refusing them.
    pub allow_unroutable: bool,
}

impl Preparer<'_> {
    /// Every non-blank line of `input` (numbered from 1), or every line's error.
    pub fn prepare_all(&self, input: &[u8], now: DateTime<Utc>) -> Result<Prepared, Vec<LineError>> {
        let mut out = Prepared::default();
        let mut errors = vec![];
        for (i, raw) in input.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let result = match std::str::from_utf8(raw) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => self.prepare_line(text.trim(), now),
                Err(e) => Err(format!("not UTF-8 (invalid byte at column {})", e.valid_up_to() + 1)),
            };
            match result {
                Ok((record, warning)) => {
                    out.records.push(Record { line, ..record });
                    out.warnings.extend(warning.map(|message| LineError { line, message }));
                }
                Err(message) => errors.push(LineError { line, message }),
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }

    /// One line's record (its `line` is set by the caller), and a warning if any.
    fn prepare_line(&self, text: &str, now: DateTime<Utc>) -> Result<(Record, Option<String>), String> {
        let json: Value = serde_json::from_str(text).map_err(|e| {
            // serde's own position names line 1 of the text; the column is what helps.
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            format!("not JSON: {message} at column {}", e.column())
        })?;
        let schema = json.get("schema").and_then(Value::as_str).ok_or_else(|| {
            "schema: expected a full Sauna command or a command's {\"schema\": \"iglu:…\", \"data\": {…}}".to_owned()
        })?;
        let key: SchemaKey = schema.parse().map_err(|e| format!("schema: {e}"))?;
        let command: SchemaCriterion = COMMAND_CRITERION.parse().expect("constant criterion");
        let (value, data, wrapped) = if command.matches(&key) {
            (json.clone(), text.as_bytes().to_vec(), false)
        } else {
            let value = self.wrap(json, now)?;
            let data = serde_json::to_vec(&value).map_err(|e| format!("cannot be serialized: {e}"))?;
            (value, data, true)
        };
        let warning = match self.parser.classify(&data, now) {
            Classified::Routable { .. } => None,
            Classified::Invalid { reason, .. } | Classified::Expired { reason, .. } => {
                return Err(as_written(&reason, wrapped));
            }
            Classified::Unroutable { reason, .. } => {
                let reason = as_written(&reason, wrapped);
                if !self.allow_unroutable {
                    return Err(format!(
                        "{reason} (the observer would record it as unroutable; --allow-unroutable sends it anyway)"
                    ));
                }
                Some(self.unroutable_warning(&value, reason, wrapped)?)
            }
        };
        let command_id = value.pointer("/data/envelope/data/commandId").and_then(Value::as_str).unwrap_or_default();
        let command_data = value.pointer("/data/command/data").unwrap_or(&Value::Null);
        let partition_key = self.partition_key.extract(command_id, command_data)?;
        let record = Record { line: 0, data, partition_key };
        if record.size() > MAX_RECORD_BYTES {
            return Err(format!(
                "the record is {} bytes (data and partition key), more than Kinesis's limit of {MAX_RECORD_BYTES}",
                record.size()
            ));
        }
        Ok((record, warning))
    }

    /// A command's `{"schema", "data"}` in an envelope of its own.
    fn wrap(&self, json: Value, now: DateTime<Utc>) -> Result<Value, String> {
        let Value::Object(obj) = json else {
            return Err("expected a JSON object".into());
        };
        if let Some(extra) = obj.keys().find(|k| *k != "schema" && *k != "data") {
            return Err(format!(
                "{extra}: unexpected; a line is a full Sauna command ({COMMAND_CRITERION}) or a command's {{\"schema\", \"data\"}} alone"
            ));
        }
        let data = obj.get("data").ok_or("data: missing")?.clone();
        Ok(complete(&obj["schema"], data, self.defaults, now, Uuid::new_v4()))
    }

    /// The warning for an unroutable command sent anyway, once its data passed its schema (if
    /// the schema is known: the observer never validates a command it cannot route).
    fn unroutable_warning(&self, value: &Value, reason: String, wrapped: bool) -> Result<String, String> {
        let schema = value.pointer("/data/command/schema").and_then(Value::as_str).unwrap_or_default();
        let data = value.pointer("/data/command/data").unwrap_or(&Value::Null);
        match schema.parse::<SchemaKey>() {
            Ok(key) if self.schemas.get(&key).is_some() => {
                self.schemas.validate(&key, data, "data.command.data").map_err(|e| as_written(&e, wrapped))?;
                Ok(format!("{reason}; sent anyway (--allow-unroutable)"))
            }
            _ => Ok(format!("{reason}; sent anyway (--allow-unroutable), its data not validated (unknown schema)")),
        }
    }
}

/// The full command for a command's `schema` and `data`, with a new envelope.
pub fn complete(schema: &Value, data: Value, defaults: &EnvelopeDefaults, now: DateTime<Utc>, id: Uuid) -> Value {
    let ttl = defaults.time_to_live.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json!({
        "schema": COMMAND_SCHEMA,
        "data": {
            "envelope": {
                "schema": ENVELOPE_SCHEMA,
                "data": {
                    "commandId": id.to_string(),
                    "whenCreated": now.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": ttl },
                    "tags": defaults.tags,
                }
            },
            "command": { "schema": schema, "data": data }
        }
    })
}

/// A reason about a wrapped line, with the fields named as the user wrote them
/// (`data.command.data.text` → `data.text`).
fn as_written(reason: &str, wrapped: bool) -> String {
    if !wrapped {
        return reason.to_owned();
    }
    if let Some(rest) = reason.strip_prefix("data.command.data") {
        format!("data{rest}")
    } else if let Some(rest) = reason.strip_prefix("data.command.schema") {
        format!("schema{rest}")
    } else {
        reason.to_owned()
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
