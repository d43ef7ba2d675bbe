//! A record's JSON as a flat tape: the document in one `Vec` of entries, its strings pointing
//! into the record's own text, so that classifying a command allocates nothing for its JSON.
//!
//! Why: a `serde_json::Value` tree costs a command two dozen allocations (every object a
//! `BTreeMap`, every string a `String`), and building and dropping it was more than half of
//! what classifying cost. The tape is filled by a reader of the common case ([`scan`]: strings,
//! integers, literals, containers), and by serde_json's own parser when that reader gives up;
//! both build the same tape, with serde_json's grammar, numbers and errors. Each thread keeps
//! one tape and reuses its memory, and the validators read it in place through `jsonschema`'s
//! representation traits. What a responder needs of a command's data is written out of the
//! tape once ([`TapeNode::write_canonical`]), as serde_json prints a `Value` of the same JSON,
//! byte for byte.
//!
//! One difference with a `Value`: an object that names a key twice is refused ([`Tape::parse`]
//! fails). A `Value` keeps the last of the two and a validator sees one member; the tape would
//! show both, so such a record is left to the `Value` path.

mod scan;
mod validation;

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

pub use validation::TapeJson;

/// One entry of a tape: a scalar, a string, an object member's name, or the head of a
/// container whose members follow it.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Null,
    Bool(bool),
    Number(Number),
    Str(Span),
    /// An object member's name; its value is the next entry, and `next` the index just past
    /// the value (the next member's name, if there is one).
    Key {
        name: Span,
        next: u32,
    },
    /// `len` members, each a `Key` followed by its value; `end` is the index just past the
    /// object's last entry.
    Object {
        len: u32,
        end: u32,
    },
    /// `len` elements; `end` as for an object.
    Array {
        len: u32,
        end: u32,
    },
}

/// Where a string's text is: `len` bytes at `at` of the document's text, or of the tape's own
/// buffer when the document wrote it with escapes (`unescaped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    at: u32,
    len: u32,
    unescaped: bool,
}

/// A parsed document's entries. Reused from one document to the next: parsing clears it and
/// keeps its memory.
#[derive(Debug, Default)]
pub struct Tape {
    entries: Vec<Entry>,
    /// The text of the strings that were written with escapes, unescaped.
    unescaped: String,
    /// The fast path's containers being read (kept for its memory).
    open: Vec<scan::Open>,
}

/// Why a text is not a document the tape holds: not JSON (serde_json's own error), or an object
/// with a key written twice.
#[derive(Debug)]
pub struct TapeError(serde_json::Error);

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Tape {
    /// Parses `text` into this tape, replacing what it held; the node returned is the
    /// document's root. The fast path ([`scan`]) reads it if it can, serde_json if not.
    pub fn parse<'a>(&'a mut self, text: &'a str) -> Result<TapeNode<'a>, TapeError> {
        if u32::try_from(text.len()).is_err() {
            return Err(TapeError(de::Error::custom("a document over 4 GiB")));
        }
        self.entries.clear();
        self.unescaped.clear();
        if scan::fill(self, text).is_none() {
            self.parse_with_serde(text)?;
        }
        Ok(TapeNode { tape: self, text, at: 0 })
    }

    /// Fills this tape through serde_json's parser: any JSON, with serde_json's errors.
    fn parse_with_serde(&mut self, text: &str) -> Result<(), TapeError> {
        self.entries.clear();
        self.unescaped.clear();
        let mut parser = serde_json::Deserializer::from_str(text);
        let builder = Builder { tape: &mut *self, text };
        builder.deserialize(&mut parser).map_err(TapeError)?;
        parser.end().map_err(TapeError)
    }

    /// Gives back the memory of a tape that grew past `entries` entries (after a big document),
    /// so that a thread does not keep it for the small ones after it.
    pub fn shrink_above(&mut self, entries: usize) {
        if self.entries.capacity() > entries {
            self.entries = Vec::new();
            self.unescaped = String::new();
        }
    }

    fn push(&mut self, entry: Entry) -> usize {
        self.entries.push(entry);
        self.entries.len() - 1
    }

    /// The index the next entry will take, as a `u32` (a tape of a document under 4 GiB has
    /// fewer entries than that: every entry is at least one byte of it).
    fn next_index(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }
}

/// Fills a tape from serde_json's parser: one value, and (through itself again) its members.
struct Builder<'t, 'de> {
    tape: &'t mut Tape,
    /// The document's text, to tell where a borrowed string sits in it.
    text: &'de str,
}

impl<'de> Builder<'_, 'de> {
    fn again(&mut self) -> Builder<'_, 'de> {
        Builder { tape: &mut *self.tape, text: self.text }
    }

    fn string(self, s: &str, borrowed: bool) {
        let at = (s.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        let span = if borrowed && at.checked_add(s.len()).is_some_and(|end| end <= self.text.len()) {
            Span { at: at as u32, len: s.len() as u32, unescaped: false }
        } else {
            let at = self.tape.unescaped.len() as u32;
            self.tape.unescaped.push_str(s);
            Span { at, len: s.len() as u32, unescaped: true }
        };
        self.tape.push(Entry::Str(span));
    }

    /// The name of the key just read, when the document wrote it without escapes (its text).
    fn last_key(&self) -> Option<&'de str> {
        match self.tape.entries.last() {
            Some(Entry::Str(span)) if !span.unescaped => self.text.get(span.at as usize..(span.at + span.len) as usize),
            _ => None,
        }
    }
}

/// The names of an object's first members, to tell whether a name comes twice as they are read
/// (an object of more, or with a name written with escapes, is checked once complete: see
/// [`has_duplicate_keys`]).
const NAMES_COMPARED: usize = 8;

impl<'de> DeserializeSeed<'de> for Builder<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Builder<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.tape.push(Entry::Null);
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.tape.push(Entry::Bool(v));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.tape.push(Entry::Number(v.into()));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.tape.push(Entry::Number(v.into()));
        Ok(())
    }

    /// As serde_json's `Value` takes a float: a number, or null for one that is not finite.
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.tape.push(Number::from_f64(v).map_or(Entry::Null, Entry::Number));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.string(v, true);
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.string(v, false);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let head = self.tape.push(Entry::Array { len: 0, end: 0 });
        let mut len = 0u32;
        while seq.next_element_seed(self.again())?.is_some() {
            len += 1;
        }
        let end = self.tape.next_index();
        self.tape.entries[head] = Entry::Array { len, end };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let twice = || de::Error::custom("an object names a key twice");
        let head = self.tape.push(Entry::Object { len: 0, end: 0 });
        let mut names: [&'de str; NAMES_COMPARED] = [""; NAMES_COMPARED];
        // Whether every name so far is among `names` (none written with escapes).
        let mut compared = true;
        let mut len = 0u32;
        while map.next_key_seed(self.again())?.is_some() {
            let key = self.tape.entries.len() - 1;
            if compared {
                match self.last_key() {
                    Some(name) if (len as usize) < NAMES_COMPARED => {
                        if names[..len as usize].contains(&name) {
                            return Err(twice());
                        }
                        names[len as usize] = name;
                    }
                    _ => compared = false,
                }
            }
            map.next_value_seed(self.again())?;
            let next = self.tape.next_index();
            if let Some(Entry::Str(name)) = self.tape.entries.get(key) {
                self.tape.entries[key] = Entry::Key { name: *name, next };
            }
            len += 1;
        }
        let end = self.tape.next_index();
        self.tape.entries[head] = Entry::Object { len, end };
        if !compared && has_duplicate_keys(TapeNode { tape: &*self.tape, text: self.text, at: head as u32 }) {
            return Err(twice());
        }
        Ok(())
    }
}

/// Whether an object names a key twice (its names sorted, then compared side by side).
fn has_duplicate_keys(object: TapeNode<'_>) -> bool {
    let Some(members) = object.object() else { return false };
    let mut keys: Vec<&str> = members.map(|(key, _)| key).collect();
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

/// One value of a parsed document. Cheap to copy.
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    tape: &'a Tape,
    text: &'a str,
    at: u32,
}

impl fmt::Debug for TapeNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TapeNode({})", self.to_json())
    }
}

impl<'a> TapeNode<'a> {
    /// The entry of this value. (No node is made of a member's name: a `Key` would read as null.)
    fn entry(&self) -> &'a Entry {
        // Every node is made from an index of an entry of its tape.
        self.tape.entries.get(self.at as usize).unwrap_or(&Entry::Null)
    }

    /// The text a span points into: the document's, or the tape's own buffer of unescaped
    /// strings.
    fn source(&self, span: Span) -> &'a str {
        if span.unescaped { self.tape.unescaped.as_str() } else { self.text }
    }

    fn str_of(&self, span: Span) -> &'a str {
        self.source(span).get(span.at as usize..(span.at + span.len) as usize).unwrap_or_default()
    }

    /// The bytes of a string, to compare with a name: without `str_of`'s checks that the span
    /// starts and ends on characters (a span always does).
    fn bytes_of(&self, span: Span) -> &'a [u8] {
        self.source(span).as_bytes().get(span.at as usize..(span.at + span.len) as usize).unwrap_or_default()
    }

    fn at(&self, at: u32) -> TapeNode<'a> {
        TapeNode { at, ..*self }
    }

    /// The index just past this value's last entry.
    fn end(&self) -> u32 {
        match self.entry() {
            Entry::Object { end, .. } | Entry::Array { end, .. } => *end,
            _ => self.at + 1,
        }
    }

    /// The string this node holds.
    pub fn str(&self) -> Option<&'a str> {
        match self.entry() {
            Entry::Str(span) => Some(self.str_of(*span)),
            _ => None,
        }
    }

    /// The unsigned integer this node holds.
    pub fn u64(&self) -> Option<u64> {
        match self.entry() {
            Entry::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn is_null_value(&self) -> bool {
        matches!(self.entry(), Entry::Null | Entry::Key { .. })
    }

    /// The object's member named `name` (objects only). Names of another length are passed
    /// over without reading them: most lookups (the validators' among them) pass several.
    pub fn member(&self, name: &str) -> Option<TapeNode<'a>> {
        let Entry::Object { len, .. } = self.entry() else { return None };
        let mut at = self.at + 1;
        for _ in 0..*len {
            let Some(Entry::Key { name: key, next }) = self.tape.entries.get(at as usize) else { return None };
            if key.len as usize == name.len() && self.bytes_of(*key) == name.as_bytes() {
                return Some(self.at(at + 1));
            }
            at = *next;
        }
        None
    }

    /// The members named `names` of an object (objects only), in the order of `names`, found
    /// in one pass over its members instead of one lookup each: for code that reads several
    /// fields of one object (a command's envelope, a self-describing JSON).
    pub fn members<const N: usize>(&self, names: [&str; N]) -> Option<[Option<TapeNode<'a>>; N]> {
        let Entry::Object { len, .. } = self.entry() else { return None };
        // Where each value is (0: not found; no member's value is the document's root), so
        // that the loop moves indices rather than nodes; it ends when every name is found (an
        // object of a tape names each key once).
        let mut found = [0u32; N];
        let (mut at, mut missing) = (self.at + 1, N);
        for _ in 0..*len {
            let Some(Entry::Key { name: key, next }) = self.tape.entries.get(at as usize) else { break };
            for (slot, name) in found.iter_mut().zip(names) {
                if key.len as usize == name.len() && *slot == 0 && self.bytes_of(*key) == name.as_bytes() {
                    *slot = at + 1;
                    missing -= 1;
                }
            }
            if missing == 0 {
                break;
            }
            at = *next;
        }
        Some(found.map(|value| (value != 0).then(|| self.at(value))))
    }

    /// An object's members in the order the document wrote them.
    pub fn object(&self) -> Option<TapeMembers<'a>> {
        match self.entry() {
            Entry::Object { len, .. } => Some(TapeMembers { node: self.at(self.at + 1), remaining: *len }),
            _ => None,
        }
    }

    /// An array's elements.
    pub fn array(&self) -> Option<TapeElements<'a>> {
        match self.entry() {
            Entry::Array { len, .. } => Some(TapeElements { node: self.at(self.at + 1), remaining: *len }),
            _ => None,
        }
    }

    /// This value as a `serde_json::Value` (for cold paths: errors, `enum` of containers).
    pub fn to_json(&self) -> Value {
        match self.entry() {
            Entry::Null | Entry::Key { .. } => Value::Null,
            Entry::Bool(b) => Value::Bool(*b),
            Entry::Number(n) => Value::Number(n.clone()),
            Entry::Str(span) => Value::String(self.str_of(*span).to_owned()),
            Entry::Array { .. } => Value::Array(self.array().into_iter().flatten().map(|e| e.to_json()).collect()),
            Entry::Object { .. } => {
                Value::Object(self.object().into_iter().flatten().map(|(k, v)| (k.to_owned(), v.to_json())).collect())
            }
        }
    }
}

/// An object's members: (name, value), in document order.
#[derive(Clone, Copy)]
pub struct TapeMembers<'a> {
    /// The next member's key.
    node: TapeNode<'a>,
    remaining: u32,
}

impl<'a> TapeMembers<'a> {
    /// The members with where each name is in the tape (to tell a name written with escapes).
    fn with_spans(self) -> impl Iterator<Item = (Span, &'a str, TapeNode<'a>)> + Clone {
        let mut members = self;
        std::iter::from_fn(move || members.next_with_span())
    }

    fn next_with_span(&mut self) -> Option<(Span, &'a str, TapeNode<'a>)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let Entry::Key { name, next } = *self.node.entry() else {
            self.remaining = 0;
            return None;
        };
        let member = (name, self.node.str_of(name), self.node.at(self.node.at + 1));
        self.node = self.node.at(next);
        Some(member)
    }
}

impl<'a> Iterator for TapeMembers<'a> {
    type Item = (&'a str, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with_span().map(|(_, name, value)| (name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// An array's elements, in order.
#[derive(Clone, Copy)]
pub struct TapeElements<'a> {
    node: TapeNode<'a>,
    remaining: u32,
}

impl<'a> Iterator for TapeElements<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let element = self.node;
        self.node = self.node.at(element.end());
        Some(element)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl TapeNode<'_> {
    /// Appends this value to `out` as serde_json prints a `Value` of the same JSON: no
    /// whitespace, object members in the order of their names (a `Value`'s map is sorted),
    /// numbers and escaped strings by serde_json itself. Byte for byte
    /// `serde_json::to_string(&node.to_json())`, without the tree.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        match self.entry() {
            Entry::Null | Entry::Key { .. } => out.extend_from_slice(b"null"),
            Entry::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            // Writing JSON to a Vec cannot fail.
            Entry::Number(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Entry::Str(span) => write_string(*span, self.str_of(*span), out),
            Entry::Array { .. } => {
                out.push(b'[');
                for (i, element) in self.array().into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    element.write_canonical(out);
                }
                out.push(b']');
            }
            Entry::Object { .. } => {
                let Some(members) = self.object().map(TapeMembers::with_spans) else { return };
                // Written in the document's order while that is the names' order (producers that
                // sort their keys); at a name out of order, taken back and written sorted.
                let start = out.len();
                if !write_members(members.clone(), out, true) {
                    out.truncate(start);
                    let mut sorted: Vec<(Span, &str, TapeNode<'_>)> = members.collect();
                    // A tape's objects name each key once, so the order is total.
                    sorted.sort_unstable_by(|a, b| a.1.cmp(b.1));
                    write_members(sorted.into_iter(), out, false);
                }
            }
        }
    }
}

/// Appends `text` as serde_json writes a string: quoted, with escapes only when it holds a
/// quote, a backslash or a control character (the only bytes serde_json escapes). A string the
/// document wrote without escapes (`span`) has none of them (a quote or a backslash would have
/// been escaped, a control character refused); one unescaped from escapes is searched for them.
fn write_string(span: Span, text: &str, out: &mut Vec<u8>) {
    if !span.unescaped || scan::special_byte(text.as_bytes(), 0) == text.len() {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Writes an object's members; with `sorted_only`, stops (returning false) at a name that does
/// not come after the one before it.
fn write_members<'n>(
    members: impl Iterator<Item = (Span, &'n str, TapeNode<'n>)>,
    out: &mut Vec<u8>,
    sorted_only: bool,
) -> bool {
    out.push(b'{');
    let mut previous: Option<&str> = None;
    for (span, name, value) in members {
        if let Some(previous) = previous.replace(name) {
            if sorted_only && previous >= name {
                return false;
            }
            out.push(b',');
        }
        write_string(span, name, out);
        out.push(b':');
        value.write_canonical(out);
    }
    out.push(b'}');
    true
}

#[cfg(test)]
pub(crate) mod tests;
