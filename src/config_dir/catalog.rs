//! The config schemas this build knows, embedded at compile time, keyed by Iglu key: Sauna's
//! observer and logger, the runtime config, those of every responder module, and the Sauna
//! schemas this program recognises only to refuse them with an explanation.

use std::sync::OnceLock;

use apache_avro::Schema;

use crate::config::{logger, observer, runtime};
use crate::iglu::SchemaKey;
use crate::responders::{self, ResponderModule};

/// What a config file of a schema configures.
#[derive(Clone, Copy)]
pub enum ConfigKind {
    KinesisObserver,
    DynamodbLogger,
    Runtime,
    Responder(&'static ResponderModule),
    /// A Sauna schema this program recognises but will not run: enabled, it is an error with
    /// this explanation; disabled, it is ignored like any disabled config.
    Refused(&'static str),
}

/// One known config schema.
pub struct KnownSchema {
    pub key: SchemaKey,
    pub kind: ConfigKind,
    /// `None` for refused schemas (they are never decoded).
    pub avro: Option<Schema>,
    /// Whether a config that omits `enabled` runs. Sauna's own configs require `enabled: true`;
    /// the runtime config has a default for every field, `enabled` included.
    pub enabled_by_default: bool,
}

const HIPCHAT_RETIRED: &str = "HipChat was retired by Atlassian in February 2019 and its API no longer answers; remove this file or set \"enabled\": false (Slack or the webhook responder can take its place)";
const BATCH_ONLY: &str = "this is one of Sauna's batch (file) components, which are not part of the Kinesis observer; remove this file or set \"enabled\": false";

const REFUSED: &[(&str, &str)] = &[
    ("iglu:com.snowplowanalytics.sauna.responders/HipchatConfig/avro/1-0-0", HIPCHAT_RETIRED),
    ("iglu:com.snowplowanalytics.sauna.loggers/HipchatConfig/avro/1-0-0", HIPCHAT_RETIRED),
    ("iglu:com.snowplowanalytics.sauna.responders/OptimizelyConfig/avro/1-0-0", BATCH_ONLY),
    ("iglu:com.snowplowanalytics.sauna.observers/AmazonS3Config/avro/1-0-0", BATCH_ONLY),
    ("iglu:com.snowplowanalytics.sauna.observers/LocalFilesystemConfig/avro/1-0-0", BATCH_ONLY),
];

fn parse(key: &str, avro: Option<&str>, kind: ConfigKind, enabled_by_default: bool) -> KnownSchema {
    KnownSchema {
        key: key.parse().unwrap_or_else(|e| panic!("embedded config key {key}: {e}")),
        kind,
        avro: avro.map(|text| Schema::parse_str(text).unwrap_or_else(|e| panic!("embedded Avro schema {key}: {e}"))),
        enabled_by_default,
    }
}

/// The config schemas one build (or one embedding program) knows: the built-in ones plus
/// those of its responder modules.
pub struct Catalog {
    schemas: Vec<KnownSchema>,
}

impl Catalog {
    /// The built-in schemas with these responder modules.
    pub fn new(modules: &[&'static ResponderModule]) -> Self {
        let mut all = vec![
            parse(observer::KEY, Some(observer::AVRO_SCHEMA), ConfigKind::KinesisObserver, false),
            parse(logger::KEY, Some(logger::AVRO_SCHEMA), ConfigKind::DynamodbLogger, false),
            parse(runtime::KEY, Some(runtime::AVRO_SCHEMA), ConfigKind::Runtime, true),
        ];
        for module in modules {
            for schema in module.config_schemas {
                all.push(parse(schema.key, Some(schema.avro), ConfigKind::Responder(module), false));
            }
        }
        for (key, why) in REFUSED {
            all.push(parse(key, None, ConfigKind::Refused(why), false));
        }
        Catalog { schemas: all }
    }

    /// The built-in schemas and responders of this build.
    pub fn standard() -> &'static Catalog {
        static STANDARD: OnceLock<Catalog> = OnceLock::new();
        STANDARD.get_or_init(|| Catalog::new(responders::MODULES))
    }

    /// The built-in responders plus `extra` ones (an embedding program's own).
    pub fn with(extra: &[&'static ResponderModule]) -> Catalog {
        let mut modules: Vec<&'static ResponderModule> = responders::MODULES.to_vec();
        modules.extend_from_slice(extra);
        Catalog::new(&modules)
    }

    pub fn known(&self) -> &[KnownSchema] {
        &self.schemas
    }

    pub fn lookup(&self, key: &SchemaKey) -> Option<&KnownSchema> {
        self.schemas.iter().find(|k| &k.key == key)
    }

    /// Finds a known schema by the full name of its Avro record (how a binary `.avro` file
    /// without Iglu metadata names its schema).
    pub fn lookup_by_avro_name(&self, fullname: &str) -> Option<&KnownSchema> {
        self.schemas
            .iter()
            .find(|k| k.avro.as_ref().and_then(|s| s.name()).is_some_and(|n| n.fullname(None) == fullname))
    }

    /// The keys of every schema that can be enabled, for "expected one of" messages.
    pub fn supported_keys(&self) -> Vec<String> {
        self.schemas.iter().filter(|k| !matches!(k.kind, ConfigKind::Refused(_))).map(|k| k.key.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_parses_and_is_found_by_name() {
        let c = Catalog::standard();
        for k in c.known() {
            if let Some(schema) = &k.avro {
                let name = schema.name().expect("records are named").fullname(None);
                assert!(c.lookup_by_avro_name(&name).is_some(), "{name}");
            }
            assert!(c.lookup(&k.key).is_some());
        }
    }
}
