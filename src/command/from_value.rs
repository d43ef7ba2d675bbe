//! The `serde_json::Value` way of classifying a record: the whole record as a tree, each schema
//! checked with the validator that reports the first failing field. Every record that is not a
//! live, valid, routable command comes this way (the [tape](super::from_tape) way leaves it
//! here), so that its reason names where and what.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Classified, Command, CommandData, CommandParser, Envelope, Semantics, Tags, expired, schemas};
use crate::iglu::SchemaKey;

impl CommandParser {
    /// Classifies a record's text as read at `now`, as a `Value` tree: the way that words
    /// every reason a record is not a command.
    pub(super) fn classify_value(&self, text: &str, now: DateTime<Utc>) -> Classified {
        let invalid = |reason: String, command_id: Option<Uuid>| Classified::Invalid { reason, command_id };

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
        let Some(route) = self.route_of(&cmd_key) else {
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

        let schema = match self.schemas.known(&cmd_key.to_string()) {
            Some(known) => known.key.clone(),
            None => Arc::new(cmd_key.into_owned()),
        };
        // Validated: the command's data and the envelope's tags are taken out of the record's
        // JSON, not copied. (`pointer_mut` would unescape each of the path's parts into a
        // string of its own.)
        let mut take = |path: &[&str]| {
            path.iter().try_fold(&mut json, |json, field| json.get_mut(*field)).map(Value::take).unwrap_or_default()
        };
        let data = CommandData::from_value(&take(&["data", "command", "data"]));
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
    Ok(Envelope { command_id, when_created, semantics, time_to_live, tags: Tags::new() })
}

/// An envelope's tags that [`envelope`] has checked.
fn take_tags(tags: Value) -> Tags {
    let Value::Object(tags) = tags else { return Tags::new() };
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
