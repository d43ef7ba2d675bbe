//! The config directory: every `*.json` / `*.avro` file of one folder (not recursive), each a
//! self-describing config `{"schema": "iglu:…", "data": {…}}` (or a binary Avro container file),
//! checked against its embedded Avro schema and decoded into typed config.
//!
//! Three encodings of the same config are accepted (see [`avro_json`] and [`binary`]): the
//! natural JSON of Sauna's setup guide, Avro's strict JSON encoding, and a binary Avro object
//! container file. Every error is one line: the file, the field path, what was expected.

pub mod avro_json;
mod binary;
pub mod logger;
pub mod observer;
pub mod runtime;
pub mod schemas;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use serde_json::Value as JsonValue;

use crate::command::SchemaRegistry;
use crate::iglu::SchemaKey;
use crate::responders::{Responder, ResponderConfigFile};
pub use avro_json::FieldError;
pub use logger::DynamodbLoggerConfig;
pub use observer::{AwsCredentials, InitialPosition, KinesisObserverConfig};
pub use runtime::RuntimeConfig;
pub use schemas::Catalog;
use schemas::ConfigKind;
pub use secret::Secret;

/// One problem with the config directory, as one line: where, which field, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {field}: {message}")]
pub struct ConfigError {
    /// The file (or the directory, for problems of the directory as a whole).
    pub location: String,
    /// The field path within the file, e.g. `data.parameters.kinesis.maxRecords`.
    pub field: String,
    /// What was expected, and what was found.
    pub message: String,
}

impl ConfigError {
    fn at(location: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { location: location.display().to_string(), field: field.into(), message: message.into() }
    }

    fn from_field(location: &Path, e: FieldError) -> Self {
        ConfigError::at(location, e.path, e.message)
    }
}

/// All the problems of a directory, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Everything a valid config directory configures.
#[derive(Debug, Clone)]
pub struct Configuration {
    pub dir: PathBuf,
    pub observers: Vec<KinesisObserverConfig>,
    pub responders: Vec<Arc<dyn Responder>>,
    pub loggers: Vec<DynamodbLoggerConfig>,
    pub runtime: RuntimeConfig,
    /// Embedded command schemas plus the runtime config's Iglu repositories.
    pub command_schemas: Arc<SchemaRegistry>,
    pub warnings: Vec<String>,
}

/// What happened to one file.
#[derive(Debug)]
pub enum FileStatus {
    /// Valid and enabled.
    Loaded {
        schema: SchemaKey,
        id: String,
    },
    /// `enabled` is false (or absent): ignored, as Sauna does.
    Disabled {
        schema: Option<SchemaKey>,
    },
    Failed(ConfigError),
}

#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub status: FileStatus,
}

/// The per-file verdicts and the whole-directory checks, for `sauna validate`.
#[derive(Debug)]
pub struct DirReport {
    pub files: Vec<FileReport>,
    /// Problems no single file owns (unreadable directory, no enabled observer), and
    /// cross-file conflicts (duplicate ids) attributed to the later file.
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    pub configuration: Option<Configuration>,
}

impl DirReport {
    pub fn all_errors(&self) -> Vec<ConfigError> {
        self.files
            .iter()
            .filter_map(|f| match &f.status {
                FileStatus::Failed(e) => Some(e.clone()),
                _ => None,
            })
            .chain(self.errors.iter().cloned())
            .collect()
    }
}

/// Loads a config directory with the built-in responders, or says everything that is wrong
/// with it.
pub fn load_dir(dir: &Path) -> Result<Configuration, ConfigErrors> {
    load_dir_with(dir, Catalog::standard())
}

/// Loads a config directory with the schemas of `catalog` (built-in responders plus an
/// embedding program's own, see [`Catalog::with`]).
pub fn load_dir_with(dir: &Path, catalog: &Catalog) -> Result<Configuration, ConfigErrors> {
    let report = inspect_dir_with(dir, catalog);
    match report.configuration {
        Some(c) => Ok(c),
        None => Err(ConfigErrors(report.all_errors())),
    }
}

/// A file's schema key and its `data`, decoded into an Avro value.
struct Decoded {
    key: SchemaKey,
    kind: ConfigKind,
    value: AvroValue,
}

/// Checks every file of `dir` and the directory as a whole, with the built-in responders.
pub fn inspect_dir(dir: &Path) -> DirReport {
    inspect_dir_with(dir, Catalog::standard())
}

/// Checks every file of `dir` and the directory as a whole, with the schemas of `catalog`.
pub fn inspect_dir_with(dir: &Path, catalog: &Catalog) -> DirReport {
    let mut report = DirReport { files: vec![], errors: vec![], warnings: vec![], configuration: None };
    let paths = match config_files(dir) {
        Ok(p) => p,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };

    let mut observers = vec![];
    let mut responders: Vec<(PathBuf, Arc<dyn Responder>)> = vec![];
    let mut loggers: Vec<(PathBuf, DynamodbLoggerConfig)> = vec![];
    let mut runtime: Option<(PathBuf, RuntimeConfig)> = None;
    let mut ids: HashMap<String, PathBuf> = HashMap::new();

    for path in paths {
        let status = match decode_file(&path, catalog) {
            Err(e) => FileStatus::Failed(e),
            Ok(None) => FileStatus::Disabled { schema: None },
            Ok(Some(d)) if !is_enabled(&d) => FileStatus::Disabled { schema: Some(d.key) },
            Ok(Some(d)) => {
                let id = match &d.value {
                    AvroValue::Record(fields) => fields.iter().find_map(|(n, v)| match (n.as_str(), v) {
                        ("id", AvroValue::String(s)) => Some(s.clone()),
                        _ => None,
                    }),
                    _ => None,
                }
                .unwrap_or_default();
                let result: Result<(), ConfigError> = (|| {
                    if let Some(first) = ids.get(&id) {
                        return Err(ConfigError::at(
                            &path,
                            "data.id",
                            format!("expected ids to be unique, but {id:?} is already the id of {}", first.display()),
                        ));
                    }
                    match d.kind {
                        ConfigKind::KinesisObserver => {
                            let c = KinesisObserverConfig::from_avro(&d.value)
                                .map_err(|e| ConfigError::from_field(&path, e))?;
                            observers.push(c);
                        }
                        ConfigKind::DynamodbLogger => {
                            let c = DynamodbLoggerConfig::from_avro(&d.value)
                                .map_err(|e| ConfigError::from_field(&path, e))?;
                            if let Some((first, _)) = loggers.first() {
                                return Err(ConfigError::at(
                                    &path,
                                    "schema",
                                    format!(
                                        "expected one enabled DynamoDB outcome logger, but {} enables one too",
                                        first.display()
                                    ),
                                ));
                            }
                            loggers.push((path.clone(), c));
                        }
                        ConfigKind::Runtime => {
                            let c = RuntimeConfig::from_avro(&d.value, dir)
                                .map_err(|e| ConfigError::from_field(&path, e))?;
                            if let Some((first, _)) = &runtime {
                                return Err(ConfigError::at(
                                    &path,
                                    "schema",
                                    format!(
                                        "expected one enabled RuntimeConfig, but {} enables one too",
                                        first.display()
                                    ),
                                ));
                            }
                            runtime = Some((path.clone(), c));
                        }
                        ConfigKind::Responder(module) => {
                            let configured = (module.configure)(&ResponderConfigFile { key: &d.key, value: &d.value })
                                .map_err(|e| ConfigError::from_field(&path, e))?;
                            for r in configured.responders {
                                for c in r.criteria() {
                                    let clash =
                                        responders.iter().find(|(_, other)| other.criteria().iter().any(|oc| oc == &c));
                                    if let Some((other_path, other)) = clash {
                                        return Err(ConfigError::at(
                                            &path,
                                            "schema",
                                            format!(
                                                "expected one responder per command type, but {c} is already taken by {:?} in {}",
                                                other.id(),
                                                other_path.display()
                                            ),
                                        ));
                                    }
                                }
                                responders.push((path.clone(), r));
                            }
                            report
                                .warnings
                                .extend(configured.warnings.into_iter().map(|w| format!("{}: {w}", path.display())));
                        }
                        ConfigKind::Refused(why) => {
                            return Err(ConfigError::at(
                                &path,
                                "schema",
                                format!("{} is not supported: {why}; expected one of the supported schemas", d.key),
                            ));
                        }
                    }
                    Ok(())
                })();
                match result {
                    Ok(()) => {
                        ids.insert(id.clone(), path.clone());
                        FileStatus::Loaded { schema: d.key, id }
                    }
                    Err(e) => FileStatus::Failed(e),
                }
            }
        };
        report.files.push(FileReport { path, status });
    }

    if observers.is_empty() {
        report.errors.push(ConfigError::at(
            dir,
            "(directory)",
            format!(
                "expected at least one enabled observer ({}), found none",
                catalog
                    .known()
                    .iter()
                    .find(|k| matches!(k.kind, ConfigKind::KinesisObserver))
                    .map(|k| k.key.to_string())
                    .unwrap_or_default()
            ),
        ));
    }

    let (runtime_path, runtime) = match runtime {
        Some((p, r)) => (Some(p), r),
        None => (None, RuntimeConfig::default()),
    };
    let command_schemas = match SchemaRegistry::with_repositories(&runtime.iglu_repositories) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            let location = runtime_path.unwrap_or_else(|| dir.to_path_buf());
            report.errors.push(ConfigError::at(
                &location,
                "data.igluRepositories",
                format!("expected readable static Iglu repositories: {e}"),
            ));
            None
        }
    };

    let failed = report.files.iter().any(|f| matches!(f.status, FileStatus::Failed(_)));
    if !failed && report.errors.is_empty() {
        if let Some(command_schemas) = command_schemas {
            report.configuration = Some(Configuration {
                dir: dir.to_path_buf(),
                observers,
                responders: responders.into_iter().map(|(_, r)| r).collect(),
                loggers: loggers.into_iter().map(|(_, l)| l).collect(),
                runtime,
                command_schemas,
                warnings: report.warnings.clone(),
            });
        }
    }
    report
}

/// The regular `*.json` / `*.avro` files of `dir`, sorted by name; other files are ignored.
fn config_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
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
fn decode_file(path: &Path, catalog: &Catalog) -> Result<Option<Decoded>, ConfigError> {
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

/// A decoded config's `enabled` field (binary files carry it in the record).
fn is_enabled(d: &Decoded) -> bool {
    match &d.value {
        AvroValue::Record(fields) => {
            fields.iter().find(|(n, _)| n == "enabled").is_none_or(|(_, v)| matches!(v, AvroValue::Boolean(true)))
        }
        _ => true,
    }
}
