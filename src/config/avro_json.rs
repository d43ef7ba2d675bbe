//! Schema-guided conversion of a config's JSON `data` into an Avro value.
//!
//! apache-avro reads and writes the binary encoding only, and Sauna's published example config
//! is not valid Avro JSON anyway (its union is not wrapped and its `long` timestamp is a
//! string). So this module walks the Avro schema and accepts, at every node, both
//! - the natural JSON people write: a union value given bare, numbers given as numeric strings,
//!   a `timestamp-millis` given as epoch milliseconds or an RFC 3339 string; and
//! - Avro's strict JSON encoding: unions wrapped as `{"<branch>": value}`.
//!
//! Missing fields take their schema default; a field the schema does not know is an error (a
//! typo in a config key must not be silently ignored). Every error names the field path.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema, UnionSchema};
use apache_avro::types::Value as AvroValue;
use serde_json::Value as JsonValue;

/// A config value that does not fit its schema: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Dotted path from the file's root, e.g. `data.parameters.kinesis.maxRecords`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { path: path.into(), message: message.into() }
    }
}

/// Converts `json` (found at `path`) into a value of `schema`.
pub fn json_to_avro(json: &JsonValue, schema: &Schema, path: &str) -> Result<AvroValue, FieldError> {
    let names = named_types(schema);
    Converter { names: &names }.convert(json, schema, path)
}

/// All named types of a schema, so that `Schema::Ref` can be followed.
fn named_types(schema: &Schema) -> HashMap<Name, Schema> {
    fn walk(schema: &Schema, out: &mut HashMap<Name, Schema>) {
        match schema {
            Schema::Record(r) => {
                out.insert(r.name.clone(), schema.clone());
                for f in &r.fields {
                    walk(&f.schema, out);
                }
            }
            Schema::Enum(e) => {
                out.insert(e.name.clone(), schema.clone());
            }
            Schema::Fixed(f) => {
                out.insert(f.name.clone(), schema.clone());
            }
            Schema::Array(a) => walk(&a.items, out),
            Schema::Map(m) => walk(&m.types, out),
            Schema::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(schema, &mut out);
    out
}

struct Converter<'a> {
    names: &'a HashMap<Name, Schema>,
}

impl Converter<'_> {
    fn convert(&self, json: &JsonValue, schema: &Schema, path: &str) -> Result<AvroValue, FieldError> {
        let mismatch = || FieldError::new(path, format!("expected {}, found {}", self.describe(schema), found(json)));
        match schema {
            Schema::Null => json.is_null().then_some(AvroValue::Null).ok_or_else(mismatch),
            Schema::Boolean => json.as_bool().map(AvroValue::Boolean).ok_or_else(mismatch),
            Schema::Int => integer(json).and_then(|n| i32::try_from(n).ok()).map(AvroValue::Int).ok_or_else(mismatch),
            Schema::Long => integer(json).map(AvroValue::Long).ok_or_else(mismatch),
            Schema::Float => number(json).map(|f| AvroValue::Float(f as f32)).ok_or_else(mismatch),
            Schema::Double => number(json).map(AvroValue::Double).ok_or_else(mismatch),
            Schema::String => json.as_str().map(|s| AvroValue::String(s.to_owned())).ok_or_else(mismatch),
            Schema::Bytes => json.as_str().and_then(latin1_bytes).map(AvroValue::Bytes).ok_or_else(mismatch),
            Schema::TimestampMillis => integer(json)
                .or_else(|| {
                    json.as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .map(|t| t.timestamp_millis())
                })
                .map(AvroValue::TimestampMillis)
                .ok_or_else(mismatch),
            Schema::Enum(e) => {
                let s = json.as_str().ok_or_else(mismatch)?;
                e.symbols
                    .iter()
                    .position(|sym| sym == s)
                    .map(|i| AvroValue::Enum(i as u32, s.to_owned()))
                    .ok_or_else(mismatch)
            }
            Schema::Array(a) => {
                let items = json.as_array().ok_or_else(mismatch)?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.convert(item, &a.items, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(AvroValue::Array)
            }
            Schema::Map(m) => {
                let obj = json.as_object().ok_or_else(mismatch)?;
                obj.iter()
                    .map(|(k, v)| Ok((k.clone(), self.convert(v, &m.types, &format!("{path}.{k}"))?)))
                    .collect::<Result<HashMap<_, _>, FieldError>>()
                    .map(AvroValue::Map)
            }
            Schema::Record(r) => self.record(json, r, path).map_err(|e| if json.is_object() { e } else { mismatch() }),
            Schema::Union(u) => self.union(json, u, path),
            Schema::Ref { name } => match self.names.get(name) {
                Some(s) => self.convert(json, s, path),
                None => Err(FieldError::new(path, format!("schema refers to unknown type {name}"))),
            },
            other => Err(FieldError::new(path, format!("the schema type {other:?} is not supported in config files"))),
        }
    }

    fn record(&self, json: &JsonValue, r: &RecordSchema, path: &str) -> Result<AvroValue, FieldError> {
        let Some(obj) = json.as_object() else {
            return Err(FieldError::new(path, "expected an object"));
        };
        if let Some(unknown) = obj.keys().find(|k| !r.lookup.contains_key(*k)) {
            let known: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(FieldError::new(
                format!("{path}.{unknown}"),
                format!("unknown field; expected one of: {}", known.join(", ")),
            ));
        }
        let mut fields = Vec::with_capacity(r.fields.len());
        for field in &r.fields {
            let field_path = format!("{path}.{}", field.name);
            let value = match (obj.get(&field.name), &field.default) {
                (Some(v), _) => self.convert(v, &field.schema, &field_path)?,
                (None, Some(default)) => self.convert(default, &field.schema, &field_path)?,
                (None, None) => {
                    return Err(FieldError::new(
                        field_path,
                        format!("missing required field; expected {}", self.describe(&field.schema)),
                    ));
                }
            };
            fields.push((field.name.clone(), value));
        }
        Ok(AvroValue::Record(fields))
    }

    fn union(&self, json: &JsonValue, u: &UnionSchema, path: &str) -> Result<AvroValue, FieldError> {
        let variants = u.variants();
        let wrap = |i: usize, v: AvroValue| AvroValue::Union(i as u32, Box::new(v));
        if json.is_null()
            && let Some(i) = variants.iter().position(|v| matches!(v, Schema::Null))
        {
            return Ok(wrap(i, AvroValue::Null));
        }
        // Avro's strict JSON encoding: {"<branch name>": value}.
        if let Some((key, inner)) = json.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next())
            && let Some(i) = variants.iter().position(|v| self.branch_names(v).iter().any(|n| n == key))
            && let Ok(v) = self.convert(inner, &variants[i], path)
        {
            return Ok(wrap(i, v));
        }
        // Natural JSON: the first branch the value fits.
        let non_null: Vec<usize> = (0..variants.len()).filter(|&i| !matches!(variants[i], Schema::Null)).collect();
        let mut first_error = None;
        for &i in &non_null {
            match self.convert(json, &variants[i], path) {
                Ok(v) => return Ok(wrap(i, v)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (non_null.len(), first_error) {
            // One real branch (an optional value): its own error is the most precise.
            (1, Some(e)) => Err(e),
            _ => Err(FieldError::new(
                path,
                format!("expected {}, found {}", self.describe(&Schema::Union(u.clone())), found(json)),
            )),
        }
    }

    /// The names a strict Avro JSON encoding may use for a union branch.
    fn branch_names(&self, schema: &Schema) -> Vec<String> {
        let primitive = |n: &str| vec![n.to_owned()];
        match schema {
            Schema::Null => primitive("null"),
            Schema::Boolean => primitive("boolean"),
            Schema::Int => primitive("int"),
            Schema::Long | Schema::TimestampMillis => primitive("long"),
            Schema::Float => primitive("float"),
            Schema::Double => primitive("double"),
            Schema::Bytes => primitive("bytes"),
            Schema::String => primitive("string"),
            Schema::Array(_) => primitive("array"),
            Schema::Map(_) => primitive("map"),
            Schema::Record(RecordSchema { name, .. }) => full_and_short(name),
            Schema::Enum(e) => full_and_short(&e.name),
            Schema::Fixed(f) => full_and_short(&f.name),
            Schema::Ref { name } => full_and_short(name),
            _ => vec![],
        }
    }

    /// "a boolean", "one of \"A\", \"B\"", … for error messages.
    fn describe(&self, schema: &Schema) -> String {
        match schema {
            Schema::Null => "null".into(),
            Schema::Boolean => "a boolean (true or false)".into(),
            Schema::Int => "a 32-bit integer".into(),
            Schema::Long => "a 64-bit integer".into(),
            Schema::Float | Schema::Double => "a number".into(),
            Schema::String => "a string".into(),
            Schema::Bytes => "a string of bytes".into(),
            Schema::TimestampMillis => {
                "a timestamp (epoch milliseconds as a number or numeric string, or RFC 3339)".into()
            }
            Schema::Enum(e) => {
                format!("one of {}", e.symbols.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "))
            }
            Schema::Array(a) => format!("an array of {}", self.describe(&a.items)),
            Schema::Map(m) => format!("an object whose values are {}", self.describe(&m.types)),
            Schema::Record(r) => format!("an object ({})", r.name.name()),
            Schema::Union(u) => u.variants().iter().map(|v| self.describe(v)).collect::<Vec<_>>().join(" or "),
            Schema::Ref { name } => self.names.get(name).map_or_else(|| name.to_string(), |s| self.describe(s)),
            other => format!("{other:?}"),
        }
    }
}

/// A named type may be named by its simple name or its full (namespaced) name.
fn full_and_short(name: &Name) -> Vec<String> {
    let mut v = vec![name.name().to_owned()];
    if name.namespace().is_some_and(|ns| !ns.is_empty()) {
        v.push(name.fullname(None));
    }
    v
}

/// An integer given as a JSON integer or as a string of digits (the setup guide writes its
/// epoch-millisecond timestamp as a string).
fn integer(json: &JsonValue) -> Option<i64> {
    match json {
        JsonValue::Number(n) => n.as_i64(),
        JsonValue::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

fn number(json: &JsonValue) -> Option<f64> {
    match json {
        JsonValue::Number(n) => n.as_f64(),
        JsonValue::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Avro JSON encodes bytes as a string of code points 0–255.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// A short rendering of a JSON value for "found …" in error messages.
pub(crate) fn found(json: &JsonValue) -> String {
    let kind = match json {
        JsonValue::Null => return "null".into(),
        JsonValue::Bool(_) => "a boolean",
        JsonValue::Number(_) => "a number",
        JsonValue::String(_) => "a string",
        JsonValue::Array(_) => return "an array".into(),
        JsonValue::Object(_) => return "an object".into(),
    };
    let mut text = json.to_string();
    if text.len() > 60 {
        let cut = (0..=57).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    format!("{text} ({kind})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(s: JsonValue) -> Schema {
        Schema::parse(&s).expect("valid schema")
    }

    #[test]
    fn natural_and_strict_unions_decode_alike() {
        let s = schema(json!({"type": "record", "name": "R", "namespace": "ns", "fields": [
            {"name": "m", "type": [{"type": "record", "name": "M", "fields": [
                {"name": "t", "type": [{"type": "long", "logicalType": "timestamp-millis"}, "null"]}
            ]}, "null"]}
        ]}));
        let natural = json_to_avro(&json!({"m": {"t": "1486998718968"}}), &s, "data").expect("natural");
        let strict = json_to_avro(&json!({"m": {"ns.M": {"t": {"long": 1486998718968_i64}}}}), &s, "data");
        let short = json_to_avro(&json!({"m": {"M": {"t": {"long": 1486998718968_i64}}}}), &s, "data");
        assert_eq!(Ok(natural.clone()), strict);
        assert_eq!(Ok(natural.clone()), short);
        let rfc = json_to_avro(&json!({"m": {"t": "2017-02-13T15:11:58.968Z"}}), &s, "data");
        assert_eq!(Ok(natural), rfc);
        let null = json_to_avro(&json!({"m": null}), &s, "data").expect("null");
        assert!(null.validate(&s));
    }

    #[test]
    fn errors_name_the_field_and_the_expectation() {
        let s = schema(json!({"type": "record", "name": "R", "fields": [
            {"name": "n", "type": "int"},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
            {"name": "d", "type": "int", "default": 7}
        ]}));
        let err = json_to_avro(&json!({"n": true, "e": "A"}), &s, "data").expect_err("bad");
        assert_eq!(err.path, "data.n");
        assert!(err.message.contains("expected a 32-bit integer, found true"), "{err}");
        let err = json_to_avro(&json!({"n": 1, "e": "C"}), &s, "data").expect_err("bad");
        assert_eq!(err.to_string(), "data.e: expected one of \"A\", \"B\", found \"C\" (a string)");
        let err = json_to_avro(&json!({"e": "A"}), &s, "data").expect_err("bad");
        assert_eq!(err.path, "data.n");
        assert!(err.message.starts_with("missing required field"), "{err}");
        let err = json_to_avro(&json!({"n": 1, "e": "A", "x": 1}), &s, "data").expect_err("bad");
        assert_eq!(err.path, "data.x");
        let ok = json_to_avro(&json!({"n": "12", "e": "B"}), &s, "data").expect("ok");
        assert_eq!(
            ok,
            AvroValue::Record(vec![
                ("n".into(), AvroValue::Int(12)),
                ("e".into(), AvroValue::Enum(1, "B".into())),
                ("d".into(), AvroValue::Int(7)),
            ])
        );
        let err = json_to_avro(&json!({"n": 3_000_000_000_i64, "e": "A"}), &s, "data").expect_err("range");
        assert_eq!(err.path, "data.n");
    }
}
