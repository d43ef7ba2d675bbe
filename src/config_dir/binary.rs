//! Binary Avro object container files (`Obj\x01…`) as config files.
//!
//! The container carries its writer schema, so the file is self-describing without the JSON
//! wrapper: its Iglu key comes from the `iglu.schema` metadata entry when the writer set one,
//! otherwise from the full name of its record (`com.snowplowanalytics.sauna.observers.
//! AmazonKinesisConfig_1_0_0` is the Sauna convention for `…observers/AmazonKinesisConfig/avro/1-0-0`).
//! The datum is then resolved against the embedded schema of that key, like any Avro reader.

use apache_avro::Reader;
use apache_avro::types::Value as AvroValue;

use super::catalog::{Catalog, ConfigKind};
use crate::config::FieldError;
use crate::iglu::SchemaKey;

/// The metadata key under which a writer may record the Iglu key.
pub const IGLU_SCHEMA_METADATA: &str = "iglu.schema";

const MAGIC: &[u8] = b"Obj\x01";

pub fn is_avro_container(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

pub fn decode(bytes: &[u8], catalog: &Catalog) -> Result<(SchemaKey, ConfigKind, AvroValue), FieldError> {
    let header = Reader::new(bytes)
        .map_err(|e| FieldError::new("(file)", format!("expected a readable Avro object container file: {e}")))?;
    let known = match header.user_metadata().get(IGLU_SCHEMA_METADATA) {
        Some(raw) => {
            let text = String::from_utf8_lossy(raw);
            let key: SchemaKey = text
                .parse()
                .map_err(|e| FieldError::new(format!("(metadata {IGLU_SCHEMA_METADATA})"), format!("{e}")))?;
            catalog.lookup(&key).ok_or_else(|| {
                FieldError::new(
                    format!("(metadata {IGLU_SCHEMA_METADATA})"),
                    format!("unknown schema {key}; expected one of: {}", catalog.supported_keys().join(", ")),
                )
            })?
        }
        None => {
            let name =
                header.writer_schema().name().map(|n| n.fullname(None)).unwrap_or_else(|| "(unnamed)".to_owned());
            catalog.lookup_by_avro_name(&name).ok_or_else(|| {
                FieldError::new(
                    "(writer schema)",
                    format!(
                        "unknown record {name}; expected a Sauna config record such as com.snowplowanalytics.sauna.observers.AmazonKinesisConfig_1_0_0, or an \"{IGLU_SCHEMA_METADATA}\" metadata entry"
                    ),
                )
            })?
        }
    };
    let Some(reader_schema) = &known.avro else {
        return Ok((known.key.clone(), known.kind, AvroValue::Record(vec![])));
    };
    let reader = Reader::builder(bytes)
        .reader_schema(reader_schema)
        .build()
        .map_err(|e| FieldError::new("(file)", format!("expected a readable Avro object container file: {e}")))?;
    let mut values = vec![];
    for v in reader {
        let v = v.map_err(|e| FieldError::new("data", format!("expected a record of {}: {e}", known.key)))?;
        values.push(v);
    }
    match values.len() {
        1 => Ok((known.key.clone(), known.kind, values.remove(0))),
        n => Err(FieldError::new("data", format!("expected exactly one config record in the container, found {n}"))),
    }
}
