//! The JSON Schemas commands are validated against: Iglu Central's Sauna schemas embedded in the
//! binary, plus the user's local static Iglu repositories for custom command types.
//!
//! Sauna fetched every schema from iglucentral.com at run time; this build never goes to the
//! network for a schema, so a command is validated the same way on every machine.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::{Draft, Validator};
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::last_parsed::{LastParsed, parse_remembered};
use super::tape::{TapeJson, TapeNode};
use crate::iglu::{SchemaKey, is_iglu_uri};

/// `instance-iglu-only`, which the command schema `$ref`s for its `envelope` and `command`.
/// Iglu Central's copy checks `schema` with the pattern
/// `^iglu:[a-zA-Z0-9-_.]+/[a-zA-Z0-9-_]+/[a-zA-Z0-9-_]+/[0-9]+-[0-9]+-[0-9]+$`; this one with the
/// format `iglu-uri`, [`crate::iglu::is_iglu_uri`], which accepts the same strings at a tenth of the cost of
/// running the pattern (twice per command, it was a tenth of what parsing a command cost).
const INSTANCE_IGLU_ONLY_URI: &str =
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/instance-iglu-only/jsonschema/1-0-0";
const INSTANCE_IGLU_ONLY: &str = r#"{
  "type": "object",
  "properties": {
    "schema": { "type": "string", "format": "iglu-uri" },
    "data": {}
  },
  "required": ["schema", "data"],
  "additionalProperties": false
}"#;

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../resources/iglu/schemas/", $path)))),*]
    };
}

/// The command schemas of Iglu Central that Sauna's responders use.
const EMBEDDED: &[(&str, &str)] = embedded![
    "com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
    "com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
    "com.slack.sauna.commands/send_message/jsonschema/1-0-0",
    "com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
    "com.sendgrid.sauna.commands/send_email/jsonschema/1-0-0",
    "com.hipchat.sauna.commands/send_room_notification/jsonschema/1-0-0",
];

/// A schema that cannot be used: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SchemaError {
    pub location: String,
    pub message: String,
}

/// Compiled JSON Schemas by exact key.
pub struct SchemaRegistry {
    schemas: FxHashMap<SchemaKey, Arc<KnownSchema>>,
    /// Each schema by its URI as written (`iglu:…`): a record naming a known schema costs a
    /// lookup, not a parse (three for every command).
    uris: FxHashMap<Box<str>, Arc<KnownSchema>>,
}

/// One schema of the registry, compiled twice: for instances held as `serde_json::Value`s and
/// for records read into a [`Tape`](super::tape::Tape) (the same schema, the same formats).
pub struct KnownSchema {
    pub key: Arc<SchemaKey>,
    validator: Validator,
    tape_validator: Validator<TapeJson>,
    /// Where the schema came from, for messages.
    source: String,
}

impl KnownSchema {
    /// Whether a value read into a tape is valid against this schema.
    pub fn is_valid(&self, instance: TapeNode<'_>) -> bool {
        self.tape_validator.is_valid(instance)
    }
}

impl fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<String> = self.schemas.keys().map(ToString::to_string).collect();
        keys.sort();
        f.debug_struct("SchemaRegistry").field("schemas", &keys).finish()
    }
}

impl SchemaRegistry {
    /// The embedded schemas only.
    pub fn embedded() -> Self {
        Self::with_repositories(&[]).expect("embedded schemas compile")
    }

    /// The embedded schemas plus every `jsonschema` schema of the given static Iglu repositories
    /// (a folder holding `schemas/<vendor>/<name>/jsonschema/<version>`, or that `schemas`
    /// folder itself). A local schema with the key of an embedded one replaces it.
    pub fn with_repositories(repositories: &[PathBuf]) -> Result<Self, SchemaError> {
        let mut registry = SchemaRegistry { schemas: FxHashMap::default(), uris: FxHashMap::default() };
        for (path, text) in EMBEDDED {
            let key: SchemaKey = format!("iglu:{path}").parse().expect("embedded schema paths are Iglu keys");
            let json: Value = serde_json::from_str(text).expect("embedded schemas are JSON");
            registry.add(key, json, format!("embedded {path}")).expect("embedded schemas compile");
        }
        for repo in repositories {
            registry.add_repository(repo)?;
        }
        Ok(registry)
    }

    fn add_repository(&mut self, repo: &Path) -> Result<(), SchemaError> {
        let root = if repo.join("schemas").is_dir() { repo.join("schemas") } else { repo.to_path_buf() };
        let err = |location: &Path, message: String| SchemaError { location: location.display().to_string(), message };
        let list = |dir: &Path| -> Result<Vec<PathBuf>, SchemaError> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| err(dir, format!("cannot read the Iglu repository folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            Ok(entries)
        };
        for vendor in list(&root)?.into_iter().filter(|p| p.is_dir()) {
            for name in list(&vendor)?.into_iter().filter(|p| p.is_dir()) {
                let format_dir = name.join("jsonschema");
                if !format_dir.is_dir() {
                    continue;
                }
                for file in list(&format_dir)?.into_iter().filter(|p| p.is_file()) {
                    let rel = |p: &Path| p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    let key: SchemaKey = format!("iglu:{}/{}/jsonschema/{}", rel(&vendor), rel(&name), rel(&file))
                        .parse()
                        .map_err(|e| err(&file, format!("the path is not an Iglu schema path: {e}")))?;
                    let text = std::fs::read_to_string(&file).map_err(|e| err(&file, format!("cannot read: {e}")))?;
                    let json: Value =
                        serde_json::from_str(&text).map_err(|e| err(&file, format!("not valid JSON: {e}")))?;
                    if let Some(declared) = self_key(&json)
                        && declared != key
                    {
                        return Err(err(&file, format!("its \"self\" says {declared}, but its path says {key}")));
                    }
                    self.add(key, json, file.display().to_string()).map_err(|m| err(&file, m))?;
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, key: SchemaKey, mut schema: Value, source: String) -> Result<(), String> {
        // The Iglu meta-schema URI is not a JSON Schema draft; Iglu schemas are draft 4.
        if let Some(obj) = schema.as_object_mut() {
            obj.remove("$schema");
            obj.remove("self");
        }
        let registry = jsonschema::Registry::new()
            .add(INSTANCE_IGLU_ONLY_URI, serde_json::from_str::<Value>(INSTANCE_IGLU_ONLY).expect("constant JSON"))
            .and_then(|r| r.prepare())
            .map_err(|e| format!("cannot prepare schema references: {e}"))?;
        let validator = options(jsonschema::options(), &registry)
            .build(&schema)
            .map_err(|e| format!("not a usable JSON Schema: {e}"))?;
        let tape_validator = options(jsonschema::options_for::<TapeJson>(), &registry)
            .build(&schema)
            .map_err(|e| format!("not a usable JSON Schema: {e}"))?;
        let known = Arc::new(KnownSchema { key: Arc::new(key.clone()), validator, tape_validator, source });
        self.uris.insert(key.to_string().into_boxed_str(), known.clone());
        self.schemas.insert(key, known);
        Ok(())
    }

    pub fn get(&self, key: &SchemaKey) -> Option<&Validator> {
        self.schemas.get(key).map(|known| &known.validator)
    }

    /// The key of a schema of this registry, by its URI exactly as it prints (`None`: an
    /// unknown schema, or one written some other way: parse it).
    pub fn key_of(&self, uri: &str) -> Option<&SchemaKey> {
        self.known(uri).map(|known| &*known.key)
    }

    /// A schema of this registry, by its URI exactly as it prints.
    pub fn known(&self, uri: &str) -> Option<&KnownSchema> {
        self.uris.get(uri).map(|known| &**known)
    }

    /// Every schema of the registry, in no order.
    pub fn all(&self) -> impl Iterator<Item = &KnownSchema> {
        self.schemas.values().map(|known| &**known)
    }

    /// Where the schema of `key` came from (a file, or "embedded …").
    pub fn source(&self, key: &SchemaKey) -> Option<&str> {
        self.schemas.get(key).map(|known| known.source.as_str())
    }

    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }

    /// Validates `instance` (found at `path`, e.g. `data.command.data`) against the schema of
    /// `key`; the error is one line naming the first failing field.
    pub fn validate(&self, key: &SchemaKey, instance: &Value, path: &str) -> Result<(), String> {
        let Some(validator) = self.get(key) else {
            return Err(format!(
                "{path}: cannot be validated: {key} is not among the embedded schemas or the configured Iglu repositories"
            ));
        };
        // The valid case first: no error is put together for it.
        if validator.is_valid(instance) {
            return Ok(());
        }
        let mut errors = validator.iter_errors(instance);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let more = errors.count();
        let field = pointer_to_path(path, first.instance_path().as_str());
        let mut line = format!("{field}: {} (schema {key})", first.masked());
        if more > 0 {
            line.push_str(&format!(" and {more} more error{}", if more == 1 { "" } else { "s" }));
        }
        Err(line)
    }
}

/// The options every schema is compiled with, for either representation of instances: Iglu
/// schemas are draft 4; formats are checked, with sauna's own checks of the three Iglu uses.
fn options<'r, F: jsonschema::json::Json>(
    options: jsonschema::ValidationOptions<'r, Arc<dyn jsonschema::Retrieve>, F>,
    registry: &'r jsonschema::Registry,
) -> jsonschema::ValidationOptions<'r, Arc<dyn jsonschema::Retrieve>, F> {
    options
        .with_draft(Draft::Draft4)
        .with_registry(registry)
        .should_validate_formats(true)
        .with_format("date-time", |s: &str| parse_date_time(s).is_some())
        .with_format("uuid", |s: &str| parse_uuid(s).is_some())
        .with_format("iglu-uri", is_iglu_uri_remembered)
}

/// How many of the Iglu URIs it accepted each thread remembers.
const URIS_REMEMBERED: usize = 8;

/// [`is_iglu_uri`], answered from the last few URIs this thread found valid when it is one of
/// them. A stream's commands name the same few schemas over and over (three URIs a command),
/// and comparing a URI with a remembered one costs a fifth of checking it (~250 instructions
/// saved each). Only URIs found valid are remembered, by their text: the answer is the same.
fn is_iglu_uri_remembered(uri: &str) -> bool {
    thread_local! {
        /// The URIs found valid, and the slot the next one takes.
        static VALID: RefCell<([Option<Box<str>>; URIS_REMEMBERED], usize)> =
            RefCell::default();
    }
    VALID.with(|valid| {
        let Ok(mut valid) = valid.try_borrow_mut() else { return is_iglu_uri(uri) };
        if valid.0.iter().flatten().any(|known| **known == *uri) {
            return true;
        }
        if !is_iglu_uri(uri) {
            return false;
        }
        let next = valid.1;
        if let Some(slot) = valid.0.get_mut(next) {
            *slot = Some(uri.into());
        }
        valid.1 = (next + 1) % URIS_REMEMBERED;
        true
    })
}

/// `data.command.data` + `/attachments/0/fallback` → `data.command.data.attachments[0].fallback`.
fn pointer_to_path(base: &str, pointer: &str) -> String {
    let mut out = base.to_owned();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

fn self_key(schema: &Value) -> Option<SchemaKey> {
    let s = schema.get("self")?;
    let field = |n: &str| s.get(n).and_then(Value::as_str);
    format!("iglu:{}/{}/{}/{}", field("vendor")?, field("name")?, field("format")?, field("version")?).parse().ok()
}

/// An envelope's `whenCreated`: RFC 3339, or an ISO 8601 local date-time without offset, which
/// Sauna accepted and which is read as UTC. Answered from the last text this thread parsed when
/// it is the same (`last_parsed.rs`).
pub fn parse_date_time(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    thread_local! {
        static LAST: RefCell<LastParsed<chrono::DateTime<chrono::FixedOffset>>> =
            const { RefCell::new(LastParsed::new()) };
    }
    parse_remembered(&LAST, s, parse_date_time_text)
}

fn parse_date_time_text(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc().fixed_offset())
}

/// A UUID in its canonical hyphenated form (`8-4-4-4-12` hex digits). Answered from the last
/// text this thread parsed when it is the same (`last_parsed.rs`).
pub fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    thread_local! {
        static LAST: RefCell<LastParsed<uuid::Uuid>> = const { RefCell::new(LastParsed::new()) };
    }
    parse_remembered(&LAST, s, parse_uuid_text)
}

fn parse_uuid_text(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembered or not, the answer is `is_iglu_uri`'s: for URIs seen again, for more URIs
    /// than are remembered, and for texts that are not URIs (the empty one included, which an
    /// empty slot must not match).
    #[test]
    fn remembered_uris_answer_as_the_check_does() {
        let valid: Vec<String> =
            (0..URIS_REMEMBERED * 2 + 1).map(|i| format!("iglu:com.acme/event_{i}/jsonschema/1-0-{i}")).collect();
        let invalid = ["", "iglu:", "iglu:com.acme/a/jsonschema/1-0", "iglu:com.acme/a/jsonschema/1-0-0 ", "x"];
        for round in 0..3 {
            for uri in valid.iter().map(String::as_str).chain(invalid).chain(valid.iter().take(3).map(String::as_str)) {
                assert_eq!(is_iglu_uri_remembered(uri), is_iglu_uri(uri), "round {round}: {uri:?}");
            }
        }
    }

    #[test]
    fn embedded_schemas_compile() {
        let r = SchemaRegistry::embedded();
        assert_eq!(r.len(), EMBEDDED.len());
    }

    #[test]
    fn paths_from_pointers() {
        assert_eq!(pointer_to_path("data", ""), "data");
        assert_eq!(
            pointer_to_path("data.command.data", "/attachments/0/fallback"),
            "data.command.data.attachments[0].fallback"
        );
    }

    #[test]
    fn date_times() {
        assert!(parse_date_time("2017-01-02T19:14:42Z").is_some());
        assert!(parse_date_time("2017-01-02T19:14:42.123+02:00").is_some());
        assert!(parse_date_time("2017-01-02T19:14:42").is_some());
        assert!(parse_date_time("2017-01-02").is_none());
        assert!(parse_date_time("yesterday").is_none());
    }
}
