//! What the enabled files of a directory add up to: the observers, responders, logger and
//! runtime config, with the rules that span files (unique ids, one responder per command
//! type, at most one logger and one runtime config).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ConfigError;
use super::catalog::ConfigKind;
use super::file::Decoded;
use crate::config::{DynamodbLoggerConfig, KinesisObserverConfig, RuntimeConfig};
use crate::responders::{Responder, ResponderConfigFile};

/// The enabled configs seen so far, each with the file it came from.
#[derive(Default)]
pub(super) struct Assembly {
    pub observers: Vec<KinesisObserverConfig>,
    pub responders: Vec<(PathBuf, Arc<dyn Responder>)>,
    pub loggers: Vec<(PathBuf, DynamodbLoggerConfig)>,
    pub runtime: Option<(PathBuf, RuntimeConfig)>,
    pub warnings: Vec<String>,
    ids: HashMap<String, PathBuf>,
}

impl Assembly {
    /// Adds one enabled, schema-checked file; returns its id.
    pub fn add(&mut self, path: &Path, dir: &Path, d: &Decoded) -> Result<String, ConfigError> {
        let id = d.id();
        if let Some(first) = self.ids.get(&id) {
            return Err(ConfigError::at(
                path,
                "data.id",
                format!("expected ids to be unique, but {id:?} is already the id of {}", first.display()),
            ));
        }
        let field = |e| ConfigError::from_field(path, e);
        match d.kind {
            ConfigKind::KinesisObserver => {
                let observer = KinesisObserverConfig::from_avro(&d.value).map_err(field)?;
                if let Some(w) = crate::config::observer::region_warning(&observer.region) {
                    self.warnings.push(format!("{}: {w}", path.display()));
                }
                self.observers.push(observer)
            }
            ConfigKind::DynamodbLogger => {
                let c = DynamodbLoggerConfig::from_avro(&d.value).map_err(field)?;
                if let Some((first, _)) = self.loggers.first() {
                    return Err(one_only(path, "DynamoDB outcome logger", first));
                }
                self.loggers.push((path.to_path_buf(), c));
            }
            ConfigKind::Runtime => {
                let c = RuntimeConfig::from_avro(&d.value, dir).map_err(field)?;
                if let Some((first, _)) = &self.runtime {
                    return Err(one_only(path, "RuntimeConfig", first));
                }
                self.runtime = Some((path.to_path_buf(), c));
            }
            ConfigKind::Responder(module) => {
                let configured =
                    (module.configure)(&ResponderConfigFile { key: &d.key, value: &d.value }).map_err(field)?;
                for r in configured.responders {
                    self.check_no_clash(path, &*r)?;
                    self.responders.push((path.to_path_buf(), r));
                }
                self.warnings.extend(configured.warnings.into_iter().map(|w| format!("{}: {w}", path.display())));
            }
            ConfigKind::Refused(why) => {
                return Err(ConfigError::at(
                    path,
                    "schema",
                    format!("{} is not supported: {why}; expected one of the supported schemas", d.key),
                ));
            }
        }
        self.ids.insert(id.clone(), path.to_path_buf());
        Ok(id)
    }

    /// One responder per command type.
    fn check_no_clash(&self, path: &Path, r: &dyn Responder) -> Result<(), ConfigError> {
        for c in r.criteria() {
            if let Some((other_path, other)) =
                self.responders.iter().find(|(_, other)| other.criteria().iter().any(|oc| oc == &c))
            {
                return Err(ConfigError::at(
                    path,
                    "schema",
                    format!(
                        "expected one responder per command type, but {c} is already taken by {:?} in {}",
                        other.id(),
                        other_path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn one_only(path: &Path, what: &str, first: &Path) -> ConfigError {
    ConfigError::at(path, "schema", format!("expected one enabled {what}, but {} enables one too", first.display()))
}
