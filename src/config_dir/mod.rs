//! The config directory loader: every `*.json` / `*.avro` file of one folder (not recursive), each a
//! self-describing config `{"schema": "iglu:…", "data": {…}}` (or a binary Avro container file),
//! checked against its embedded Avro schema and decoded into typed config.
//!
//! Three encodings of the same config are accepted (see [`avro_json`] and [`binary`]): the
//! natural JSON of Sauna's setup guide, Avro's strict JSON encoding, and a binary Avro object
//! container file. Every error is one line: the file, the field path, what was expected.

//! It sits above the settings ([`crate::config`]), the command schemas ([`crate::command`]) and
//! the responders ([`crate::responders`]): what it returns is the assembled application —
//! observers, live responders, the command schema registry — ready for [`crate::app`].

mod assembly;
mod binary;
mod catalog;
mod file;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::command::SchemaRegistry;
use crate::config::{DynamodbLoggerConfig, FieldError, KinesisObserverConfig, RuntimeConfig};
use crate::iglu::SchemaKey;
use crate::responders::Responder;
use assembly::Assembly;
pub use catalog::{Catalog, ConfigKind, KnownSchema};

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

/// Checks every file of `dir` and the directory as a whole, with the built-in responders.
pub fn inspect_dir(dir: &Path) -> DirReport {
    inspect_dir_with(dir, Catalog::standard())
}

/// Checks every file of `dir` and the directory as a whole, with the schemas of `catalog`.
pub fn inspect_dir_with(dir: &Path, catalog: &Catalog) -> DirReport {
    let mut report = DirReport { files: vec![], errors: vec![], warnings: vec![], configuration: None };
    let paths = match file::config_files(dir) {
        Ok(p) => p,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut assembly = Assembly::default();
    for path in paths {
        let status = match file::decode_file(&path, catalog) {
            Err(e) => FileStatus::Failed(e),
            Ok(None) => FileStatus::Disabled { schema: None },
            Ok(Some(d)) if !d.is_enabled() => FileStatus::Disabled { schema: Some(d.key) },
            Ok(Some(d)) => match assembly.add(&path, dir, &d) {
                Ok(id) => FileStatus::Loaded { schema: d.key, id },
                Err(e) => FileStatus::Failed(e),
            },
        };
        report.files.push(FileReport { path, status });
    }
    report.warnings = std::mem::take(&mut assembly.warnings);
    let failed = report.files.iter().any(|f| matches!(f.status, FileStatus::Failed(_)));
    // With a file in error (maybe the observer's), "no observer" would mislead: the errors say
    // what to fix, and once they are fixed this check runs again.
    if assembly.observers.is_empty() && !failed {
        report.errors.push(ConfigError::at(
            dir,
            "(directory)",
            format!("expected at least one enabled observer ({}), found none", crate::config::observer::KEY),
        ));
    }
    let (runtime_path, runtime): (Option<PathBuf>, RuntimeConfig) = match assembly.runtime.take() {
        Some((p, r)) => (Some(p), r),
        None => (None, RuntimeConfig::default()),
    };
    let command_schemas = match SchemaRegistry::with_repositories(&runtime.iglu_repositories) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            let location = runtime_path.clone().unwrap_or_else(|| dir.to_path_buf());
            let error = ConfigError::at(
                &location,
                "data.igluRepositories",
                format!("expected readable static Iglu repositories: {e}"),
            );
            // The runtime file is then not OK: its verdict says so, once.
            match report.files.iter_mut().find(|f| Some(&f.path) == runtime_path.as_ref()) {
                Some(f) => f.status = FileStatus::Failed(error),
                None => report.errors.push(error),
            }
            None
        }
    };
    let runtime_file = runtime_path.as_deref().unwrap_or(dir);
    report.errors.extend(cross_checks(&assembly, &runtime, runtime_file));
    report.warnings.extend(unused_rate_limits(&assembly, &runtime, runtime_file));
    let failed = report.files.iter().any(|f| matches!(f.status, FileStatus::Failed(_)));
    if let (false, true, Some(command_schemas)) = (failed, report.errors.is_empty(), command_schemas) {
        report.configuration = Some(Configuration {
            dir: dir.to_path_buf(),
            observers: assembly.observers,
            responders: assembly.responders.into_iter().map(|(_, r)| r).collect(),
            loggers: assembly.loggers.into_iter().map(|(_, l)| l).collect(),
            runtime,
            command_schemas,
            warnings: report.warnings.clone(),
        });
    }
    report
}

/// The checks of the runtime config against the other files: claim table names.
fn cross_checks(assembly: &Assembly, runtime: &RuntimeConfig, runtime_path: &Path) -> Vec<ConfigError> {
    let mut errors = vec![];
    if runtime.dedup.enabled && runtime.dedup.table.is_none() {
        for o in &assembly.observers {
            let table = runtime.dedup.table_of(&o.id);
            if table.len() > 255 {
                errors.push(ConfigError::at(
                    runtime_path,
                    "data.dedup.table",
                    format!("expected a claim table name for observer {:?}: {table:?} is longer than DynamoDB's 255 characters; set dedup.table", o.id),
                ));
            }
        }
    }
    errors
}

/// `rateLimits` entries that name no enabled responder: warned about, not refused (a responder
/// disabled for a while keeps its pace in the runtime config).
fn unused_rate_limits(assembly: &Assembly, runtime: &RuntimeConfig, runtime_path: &Path) -> Vec<String> {
    let ids: Vec<&str> = assembly.responders.iter().map(|(_, r)| r.id()).collect();
    runtime
        .rate_limits
        .keys()
        .filter(|id| !ids.contains(&id.as_str()))
        .map(|id| {
            format!(
                "{}: data.rateLimits.{id}: no enabled responder has this id (enabled: {}); the limit applies to none",
                runtime_path.display(),
                ids.join(", ")
            )
        })
        .collect()
}
