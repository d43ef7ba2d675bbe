//! The tape as an instance representation of `jsonschema`: a schema compiled with
//! `jsonschema::options_for::<TapeJson>()` validates a [`TapeNode`] in place.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, NodeIdentity, Object, cmp};
use serde_json::{Number, Value};

use super::{Entry, Span, Tape, TapeElements, TapeMembers, TapeNode};

/// The tape as a representation `jsonschema` validates (`jsonschema::options_for::<TapeJson>()`).
pub struct TapeJson;

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    /// A tape of one string, for the names `propertyNames` checks.
    type StringBuffer = Tape;

    const KEYS_PER_LOOKUP: usize = 2;
    /// A node's members come after it on the tape: none is its own descendant.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(buffer: &mut Tape, string: &str, f: impl FnOnce(TapeNode<'_>) -> T) -> T {
        buffer.entries.clear();
        buffer.unescaped.clear();
        buffer.unescaped.push_str(string);
        buffer.push(Entry::Str(Span { at: 0, len: string.len() as u32, unescaped: true }));
        f(TapeNode { tape: buffer, text: "", at: 0 })
    }
}

impl<'a> jsonschema::json::Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeObject<'a>;
    type Array = TapeArray<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<TapeObject<'a>> {
        matches!(self.entry(), Entry::Object { .. }).then_some(TapeObject(*self))
    }

    fn as_array(&self) -> Option<TapeArray<'a>> {
        matches!(self.entry(), Entry::Array { .. }).then_some(TapeArray(*self))
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
        match self.entry() {
            Entry::Number(n) => Some(n.clone()),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry() {
            Entry::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.is_null_value()
    }

    fn is_number(&self) -> bool {
        matches!(self.entry(), Entry::Number(_))
    }

    fn json_type(&self) -> JsonType {
        match self.entry() {
            Entry::Null | Entry::Key { .. } => JsonType::Null,
            Entry::Bool(_) => JsonType::Boolean,
            Entry::Number(_) => JsonType::Number,
            Entry::Str(_) => JsonType::String,
            Entry::Array { .. } => JsonType::Array,
            Entry::Object { .. } => JsonType::Object,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let string = self.str()?;
        // A code point takes one to four bytes: the byte length often decides without counting.
        let bytes = string.len() as u64;
        if bytes < min || bytes.div_ceil(4) > max {
            return Some(false);
        }
        if min <= bytes.div_ceil(4) && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(string.chars().count() as u64)))
    }

    /// `enum` and `const`: scalars compared in place, containers through a `Value`.
    fn equals_value(&self, expected: &Value) -> bool {
        match (self.entry(), expected) {
            (Entry::Null | Entry::Key { .. }, Value::Null) => true,
            (Entry::Bool(a), Value::Bool(b)) => a == b,
            (Entry::Str(span), Value::String(b)) => self.str_of(*span) == b,
            (Entry::Number(a), Value::Number(b)) => cmp::equal_numbers(a, b),
            (Entry::Object { .. }, Value::Object(_)) | (Entry::Array { .. }, Value::Array(_)) => {
                cmp::equal(&self.to_json(), expected)
            }
            _ => false,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.to_json())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(std::ptr::from_ref(self.tape) as usize, self.at))
    }
}

/// An object node, for `jsonschema`.
#[derive(Clone, Copy)]
pub struct TapeObject<'a>(TapeNode<'a>);

impl<'a> Object<'a, TapeJson> for TapeObject<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = TapeMembers<'a>;

    fn len(&self) -> usize {
        self.members().remaining as usize
    }

    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.0.member(key)
    }

    fn members(&self) -> TapeMembers<'a> {
        self.0.object().unwrap_or(TapeMembers { node: self.0, remaining: 0 })
    }
}

/// An array node, for `jsonschema`.
#[derive(Clone, Copy)]
pub struct TapeArray<'a>(TapeNode<'a>);

impl<'a> Array<'a, TapeJson> for TapeArray<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = TapeElements<'a>;

    fn len(&self) -> usize {
        self.elements().remaining as usize
    }

    fn elements(&self) -> TapeElements<'a> {
        self.0.array().unwrap_or(TapeElements { node: self.0, remaining: 0 })
    }
}
