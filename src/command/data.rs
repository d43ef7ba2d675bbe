//! A command's `data`: the JSON its responder acts on, held as text rather than as a tree.
//!
//! Most responders only pass the data on (the body of an HTTP request, a line on standard
//! output), so the record's JSON is not turned into a `serde_json::Value` for them: the parser
//! writes the data's text once, in serde_json's form of a `Value` (no whitespace, object keys in
//! order). Serialising it streams that text into the serializer, token by token, with no tree
//! (serde_json then writes the same text again); the stdout responder writes the text itself
//! ([`CommandData::as_str`]). A responder that looks inside deserialises what it needs
//! ([`CommandData::deserialize`]) or takes the tree ([`CommandData::to_value`]).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A command's data, valid against its schema: JSON text as serde_json prints the `Value` of
/// it, so that two commands with equal data have equal text.
#[derive(Clone)]
pub struct CommandData(Box<str>);

impl CommandData {
    /// The data of a JSON value.
    pub fn from_value(value: &Value) -> Self {
        CommandData(value.to_string().into_boxed_str())
    }

    /// The data of JSON text that is already in the form serde_json prints a `Value` (as
    /// [`TapeNode::write_canonical`](super::tape::TapeNode::write_canonical) writes it); `None`
    /// if it is not JSON.
    pub(crate) fn from_canonical(text: &[u8]) -> Option<Self> {
        let text = simdutf8::basic::from_utf8(text).ok()?;
        Some(CommandData(text.into()))
    }

    /// The JSON text: no whitespace, object members in the order of their names.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The data as a `serde_json::Value` (built on each call).
    pub fn to_value(&self) -> Value {
        // The text was printed by serde_json from a JSON value: it parses.
        serde_json::from_str(self.as_str()).unwrap_or(Value::Null)
    }

    /// The data read into a type of the responder's own (e.g. a struct of the fields it uses).
    pub fn deserialize<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.as_str())
    }
}

impl From<Value> for CommandData {
    fn from(value: Value) -> Self {
        CommandData::from_value(&value)
    }
}

/// Serialised as the JSON it holds: its text read token by token into `serializer`.
impl Serialize for CommandData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = serde_json::Deserializer::from_str(&self.0);
        serde_transcode::transcode(&mut text, serializer)
    }
}

impl PartialEq for CommandData {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for CommandData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CommandData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::CommandData;
    use crate::command::tape::tests::arb_json;

    proptest! {
        /// Serialised, the data prints as its `Value` prints, and reads back as that `Value`.
        #[test]
        fn data_serialises_as_its_value(value in arb_json()) {
            let data = CommandData::from_value(&value);
            prop_assert_eq!(data.as_str(), value.to_string());
            prop_assert_eq!(serde_json::to_string(&data).expect("serialises"), value.to_string());
            prop_assert_eq!(serde_json::to_value(&data).expect("serialises"), value.clone());
            prop_assert_eq!(data.to_value(), value);
        }
    }
}
