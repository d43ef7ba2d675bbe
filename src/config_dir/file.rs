//! One config file: read, recognised by its Iglu key, and its `data` decoded into an Avro value
//! checked against the embedded schema (JSON in either encoding, or a binary container).

use std::path::{Path, PathBuf};

use apache_avro::types::Value as AvroValue;
use serde_json::Value as JsonValue;

use super::ConfigError;
use super::binary;
use super::catalog::{Catalog, ConfigKind, KnownSchema};
use crate::config::avro_json;
use crate::iglu::SchemaKey;

/// A file's schema key and its `data`, decoded into an Avro value.
pub(super) struct Decoded {
    pub key: SchemaKey,
    pub kind: ConfigKind,
    pub value: AvroValue,
}

impl Decoded {
    /// The config's `enabled` field (binary files carry it in the record).
    pub fn is_enabled(&self) -> bool {
        match &self.value {
            AvroValue::Record(fields) => {
                fields.iter().find(|(n, _)| n == "enabled").is_none_or(|(_, v)| matches!(v, AvroValue::Boolean(true)))
            }
            _ => true,
        }
    }

    /// The config's `id` (empty if it has none).
    pub fn id(&self) -> String {
        match &self.value {
            AvroValue::Record(fields) => fields.iter().find_map(|(n, v)| match (n.as_str(), v) {
                ("id", AvroValue::String(s)) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        }
        .unwrap_or_default()
    }
}

/// The regular `*.json` / `*.avro` files of `dir`, sorted by name; other files are ignored.
pub(super) fn config_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::at(dir, "(directory)", format!("expected a readable config directory: {e}")))?;
    let mut files = vec![];
    for entry in entries {
        let entry = entry
            .map_err(|e| ConfigError::at(dir, "(directory)", format!("expected a readable config directory: {e}")))?;
        let path = entry.path();
        let ext_ok = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "json" || e == "avro");
        if ext_ok && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one file. `Ok(None)`: a JSON config whose `enabled` is false or absent, ignored
/// before any schema check, as Sauna does.
pub(super) fn decode_file(path: &Path, catalog: &Catalog) -> Result<Option<Decoded>, ConfigError> {
    let bytes =
        std::fs::read(path).map_err(|e| ConfigError::at(path, "(file)", format!("expected a readable file: {e}")))?;
    if binary::is_avro_container(&bytes) {
        return binary::decode(&bytes, catalog)
            .map(|(key, kind, value)| Some(Decoded { key, kind, value }))
            .map_err(|e| ConfigError::from_field(path, e));
    }

    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ConfigError::at(
            path,
            "(file)",
            format!("expected UTF-8 JSON or a binary Avro container file; invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    let json: JsonValue = serde_json::from_str(text).map_err(|e| {
        ConfigError::at(path, format!("line {} column {}", e.line(), e.column()), format!("expected valid JSON: {e}"))
    })?;
    let not_sd = |field: &str, found: &str| {
        ConfigError::at(
            path,
            field,
            format!(
                "expected a self-describing JSON {{\"schema\": \"iglu:vendor/name/avro/1-0-0\", \"data\": {{…}}}}, found {found}"
            ),
        )
    };
    let Some(obj) = json.as_object() else {
        return Err(not_sd("(root)", &avro_json::found(&json)));
    };
    let schema = match obj.get("schema") {
        Some(JsonValue::String(s)) => s,
        Some(other) => return Err(not_sd("schema", &avro_json::found(other))),
        None => return Err(not_sd("schema", "no \"schema\"")),
    };
    let data = match obj.get("data") {
        Some(d @ JsonValue::Object(_)) => d,
        Some(other) => return Err(not_sd("data", &avro_json::found(other))),
        None => return Err(not_sd("data", "no \"data\"")),
    };
    if let Some(extra) = obj.keys().find(|k| *k != "schema" && *k != "data") {
        return Err(ConfigError::at(path, extra.as_str(), "unknown field; expected only \"schema\" and \"data\""));
    }
    let key: SchemaKey =
        schema.parse().map_err(|e: crate::iglu::IgluParseError| ConfigError::at(path, "schema", e.to_string()))?;
    let known = catalog.lookup(&key);
    // Checked before `enabled` is read: a misspelled `enabled` (`"enable": true`) would
    // otherwise disable the file in silence.
    check_top_level_fields(path, data, known)?;

    let enabled = match data.get("enabled") {
        Some(JsonValue::Bool(b)) => *b,
        None => known.is_some_and(|k| k.enabled_by_default),
        Some(other) => {
            return Err(ConfigError::at(
                path,
                "data.enabled",
                format!("expected a boolean (true or false), found {}", avro_json::found(other)),
            ));
        }
    };
    if !enabled {
        return Ok(None);
    }
    let Some(known) = known else {
        return Err(ConfigError::at(
            path,
            "schema",
            format!("unknown schema {key}; expected one of: {}", catalog.supported_keys().join(", ")),
        ));
    };
    let Some(avro) = &known.avro else {
        // Refused schemas are reported by the caller with their explanation.
        return Ok(Some(Decoded { key, kind: known.kind, value: AvroValue::Record(vec![]) }));
    };
    let value = avro_json::json_to_avro(data, avro, "data").map_err(|e| ConfigError::from_field(path, e))?;
    Ok(Some(Decoded { key, kind: known.kind, value }))
}

/// Every top-level field of `data` is one the schema knows.
fn check_top_level_fields(path: &Path, data: &JsonValue, known: Option<&KnownSchema>) -> Result<(), ConfigError> {
    let Some(apache_avro::Schema::Record(record)) = known.and_then(|k| k.avro.as_ref()) else { return Ok(()) };
    let Some(unknown) = data.as_object().and_then(|d| d.keys().find(|k| !record.lookup.contains_key(*k))) else {
        return Ok(());
    };
    let mut fields: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
    fields.sort();
    Err(ConfigError::at(
        path,
        format!("data.{unknown}"),
        format!("unknown field; expected one of: {}", fields.join(", ")),
    ))
}
