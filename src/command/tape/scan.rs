//! The tape's fast path: a reader for the JSON that commands are written in, which fills a tape
//! in one pass over the text, without serde's visitor between the bytes and the tape.
//!
//! Why: serde_json's parser, driven through the tape's visitor, cost ~9,200 instructions for a
//! ~560-byte command, a quarter of all a command cost sauna. This reader takes ~5,500 (README,
//! Performance): it finds a string's end sixteen bytes a step instead of one, it keeps its
//! place in a register and its open containers on a stack the tape reuses, with no visitor
//! call per value, and it tells most objects' names apart by a bit per name instead of
//! comparing them.
//!
//! It reads only the common case: strings, integers that fit in 64 bits, `true`, `false`,
//! `null`, objects and arrays, nested less than [`MAX_DEPTH`] deep. At anything else it gives
//! up: a float, a `-0`, a number written some other way, invalid JSON of any kind, an object
//! naming a key twice. [`Tape::parse`] then reads the document again with serde_json. So a
//! document either gets the tape serde_json would have built, or serde_json's own answer.
//! `tests.rs` compares the two paths' tapes, entry for entry, on generated and broken JSON.
//! A string written with escapes is unescaped by serde_json itself (see [`read_escaped`]), so
//! escapes keep serde_json's exact rules for surrogates and invalid sequences.

use std::fmt;

use serde::de::{self, Deserializer as _, Visitor};
use serde_json::Number;
use wide::u8x16;

use super::{Entry, NAMES_COMPARED, Span, Tape, TapeNode, has_duplicate_keys};

/// Deeper documents are left to serde_json, which refuses them past 127 levels.
const MAX_DEPTH: usize = 100;

/// A container being read: the index of its head entry, the members or elements read so far,
/// and (objects) the index of the current member's name and a sketch of the names read so far.
#[derive(Debug, Clone, Copy)]
pub(super) struct Open {
    head: u32,
    len: u32,
    key: u32,
    object: bool,
    /// Two bits per name read, set by [`name_bits`] (a Bloom filter): a name whose two bits
    /// were both set already may have been read before, and has the object's names compared
    /// when it closes.
    names: u64,
    maybe_twice: bool,
}

/// Fills `tape` (empty) from `text`. `None` when the text is not a document this path reads;
/// the tape then holds a part of it, to be cleared.
pub(super) fn fill(tape: &mut Tape, text: &str) -> Option<()> {
    // Indices into the text are kept as u32s (see `Span`).
    u32::try_from(text.len()).ok()?;
    let mut open = std::mem::take(&mut tape.open);
    open.clear();
    let read = read_document(tape, &mut open, text);
    tape.open = open;
    read
}

/// Reads the document's value and everything in it: each pass of the loop reads a scalar or
/// opens a container, then closes the containers that end after it. Its place in the text is
/// a local, not a field, so that it stays in a register; the helpers it calls for each value
/// are `#[inline(always)]` for the same reason (a call each cost ~30 instructions a value).
fn read_document(tape: &mut Tape, open: &mut Vec<Open>, text: &str) -> Option<()> {
    let bytes = text.as_bytes();
    let mut at = 0;
    loop {
        at = skip_whitespace(bytes, at);
        match *bytes.get(at)? {
            bracket @ (b'{' | b'[') => {
                let object = bracket == b'{';
                let head = next_index(&tape.entries);
                at = skip_whitespace(bytes, at + 1);
                if bytes.get(at) == Some(if object { &b'}' } else { &b']' }) {
                    at += 1;
                    tape.entries.push(container(object, 0, head + 1));
                } else {
                    tape.entries.push(container(object, 0, 0));
                    if open.len() == MAX_DEPTH {
                        return None;
                    }
                    open.push(Open { head, len: 0, key: 0, object, names: 0, maybe_twice: false });
                    if object {
                        at = read_key(tape, open, text, at)?;
                    }
                    continue;
                }
            }
            b'"' => {
                let (span, end) = read_string(&mut tape.unescaped, text, at)?;
                tape.entries.push(Entry::Str(span));
                at = end;
            }
            b't' => at = read_literal(&mut tape.entries, bytes, at, b"true", Entry::Bool(true))?,
            b'f' => at = read_literal(&mut tape.entries, bytes, at, b"false", Entry::Bool(false))?,
            b'n' => at = read_literal(&mut tape.entries, bytes, at, b"null", Entry::Null)?,
            _ => at = read_number(&mut tape.entries, bytes, at)?,
        }
        // A value is complete: count it in its container, and close the containers that end
        // with it, up to one that goes on (or to the document's end).
        loop {
            let next = next_index(&tape.entries);
            let Some(current) = open.last_mut() else {
                return (skip_whitespace(bytes, at) == bytes.len()).then_some(());
            };
            current.len += 1;
            if current.object
                && let Some(Entry::Key { next: slot, .. }) = tape.entries.get_mut(current.key as usize)
            {
                *slot = next;
            }
            at = skip_whitespace(bytes, at);
            match (bytes.get(at)?, current.object) {
                (b',', true) => {
                    at = read_key(tape, open, text, at + 1)?;
                    break;
                }
                (b',', false) => {
                    at += 1;
                    break;
                }
                (b'}', true) | (b']', false) => {
                    at += 1;
                    let closed = *current;
                    open.pop();
                    close(tape, text, closed)?;
                }
                _ => return None,
            }
        }
    }
}

#[inline(always)]
fn container(object: bool, len: u32, end: u32) -> Entry {
    if object { Entry::Object { len, end } } else { Entry::Array { len, end } }
}

/// The index the next entry will take (see [`Tape::next_index`]).
#[inline(always)]
fn next_index(entries: &[Entry]) -> u32 {
    u32::try_from(entries.len()).unwrap_or(u32::MAX)
}

/// Reads an object member's name from `at` (whitespace first) and the colon after it, and
/// notes the name in the innermost open object; the index past the colon.
#[inline(always)]
fn read_key(tape: &mut Tape, open: &mut [Open], text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let at = skip_whitespace(bytes, at);
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let (name, end) = read_string(&mut tape.unescaped, text, at)?;
    let key = next_index(&tape.entries);
    tape.entries.push(Entry::Key { name, next: 0 });
    let current = open.last_mut()?;
    current.key = key;
    let source = if name.unescaped { tape.unescaped.as_bytes() } else { bytes };
    let bits = name_bits(source.get(name.at as usize..).unwrap_or_default(), name.len);
    current.maybe_twice |= current.names & bits == bits;
    current.names |= bits;
    let end = skip_whitespace(bytes, end);
    (bytes.get(end) == Some(&b':')).then_some(end + 1)
}

/// A name's two bits in [`Open::names`], from its length, first and last bytes (which tell
/// apart the names of most objects: an object of four names is compared in ~1 % of cases, where
/// one bit from the length and first byte had a command's envelope compared every time), read
/// from its unescaped text (`name_onwards` starts with it): the same name has the same bits
/// however it was written.
#[inline(always)]
fn name_bits(name_onwards: &[u8], len: u32) -> u64 {
    let byte = |i: u32| if len == 0 { 0 } else { name_onwards.get(i as usize).map_or(0, |b| u64::from(*b)) };
    let mixed =
        (u64::from(len) | byte(0) << 32 | byte(len.saturating_sub(1)) << 40).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    1 << (mixed >> 58) | 1 << ((mixed >> 52) & 63)
}

/// Completes a container's head; an object that names a key twice ends the fast path.
fn close(tape: &mut Tape, text: &str, closed: Open) -> Option<()> {
    let end = next_index(&tape.entries);
    let (len, head) = (closed.len, closed.head);
    *tape.entries.get_mut(head as usize)? = container(closed.object, len, end);
    if closed.maybe_twice && names_a_key_twice(TapeNode { tape: &*tape, text, at: head }, len) {
        return None;
    }
    Some(())
}

#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

fn read_literal(entries: &mut Vec<Entry>, bytes: &[u8], at: usize, word: &[u8], entry: Entry) -> Option<usize> {
    if !bytes.get(at..)?.starts_with(word) {
        return None;
    }
    entries.push(entry);
    Some(at + word.len())
}

/// An integer as serde_json reads it into a `Number`: a `u64`, or a negative `i64`. A
/// fraction, an exponent, `-0` (serde_json's `-0.0`), a leading zero (an error) or more
/// digits than 64 bits hold (a float) are left to serde_json.
fn read_number(entries: &mut Vec<Entry>, bytes: &[u8], mut at: usize) -> Option<usize> {
    let negative = bytes.get(at) == Some(&b'-');
    if negative {
        at += 1;
    }
    let start = at;
    let mut significand: u64 = 0;
    while let Some(&digit @ b'0'..=b'9') = bytes.get(at) {
        significand = significand.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
        at += 1;
    }
    if at == start || (at - start > 1 && bytes.get(start) == Some(&b'0')) {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = bytes.get(at) {
        return None;
    }
    let number = if negative {
        // As serde_json: a magnitude past i64's is a float, and so is zero.
        let negated = (significand as i64).wrapping_neg();
        if negated >= 0 {
            return None;
        }
        Number::from(negated)
    } else {
        Number::from(significand)
    };
    entries.push(Entry::Number(number));
    Some(at)
}

/// A string from its opening quote at `at`: where its text is (in the document, or, written
/// with escapes, unescaped in `unescaped`) and the index past its closing quote.
#[inline(always)]
fn read_string(unescaped: &mut String, text: &str, at: usize) -> Option<(Span, usize)> {
    let bytes = text.as_bytes();
    let start = at + 1;
    let end = special_byte(bytes, start);
    match bytes.get(end)? {
        b'"' => {
            // Under 4 GiB (`fill`): every index fits in a u32.
            let span = Span { at: start as u32, len: (end - start) as u32, unescaped: false };
            Some((span, end + 1))
        }
        b'\\' => read_escaped(unescaped, text, at, end),
        _ => None,
    }
}

/// A string from its opening quote at `at`, with an escape at `escape`: finds its closing
/// quote, then has serde_json unescape it into `unescaped`.
fn read_escaped(unescaped: &mut String, text: &str, at: usize, mut escape: usize) -> Option<(Span, usize)> {
    let bytes = text.as_bytes();
    let quote = loop {
        // The escaped byte is passed over: a quote or backslash there does not end anything.
        let next = special_byte(bytes, escape + 2);
        match bytes.get(next)? {
            b'"' => break next,
            b'\\' => escape = next,
            _ => return None,
        }
    };
    let written = text.get(at..=quote)?;
    let start = unescaped.len();
    serde_json::Deserializer::from_str(written).deserialize_str(AppendTo(unescaped)).ok()?;
    let len = unescaped.len() - start;
    Some((Span { at: u32::try_from(start).ok()?, len: u32::try_from(len).ok()?, unescaped: true }, quote + 1))
}

/// Whether an object names a key twice: a small one's names compared pair by pair, without the
/// sorted copy [`has_duplicate_keys`] makes of a big one's.
fn names_a_key_twice(object: TapeNode<'_>, len: u32) -> bool {
    if len as usize > NAMES_COMPARED {
        return has_duplicate_keys(object);
    }
    let mut names = [""; NAMES_COMPARED];
    for (i, (name, _)) in object.object().into_iter().flatten().enumerate() {
        if names.get(..i).is_some_and(|before| before.contains(&name)) {
            return true;
        }
        if let Some(slot) = names.get_mut(i) {
            *slot = name;
        }
    }
    false
}

/// The index of the first byte from `at` that a string cannot hold as it is: a quote, a
/// backslash or a control character; `bytes.len()` if none. Sixteen bytes a step in one vector
/// register (`wide`: SSE2 on x86-64, NEON on ARM, plain code elsewhere), then eight a step in
/// a `u64` ([`special_byte_in_words`]) for the last few.
#[inline(always)]
pub(super) fn special_byte(bytes: &[u8], mut at: usize) -> usize {
    let quote = u8x16::splat(b'"');
    let backslash = u8x16::splat(b'\\');
    let control = u8x16::splat(0x1f);
    while let Some(chunk) = bytes.get(at..at + 16).and_then(|chunk| <[u8; 16]>::try_from(chunk).ok()) {
        let lanes = u8x16::new(chunk);
        // A byte is a control character when the smaller of it and 0x1f is itself.
        let found = lanes.cmp_eq(quote) | lanes.cmp_eq(backslash) | lanes.min(control).cmp_eq(lanes);
        let marks = found.move_mask() as u32;
        if marks != 0 {
            return at + marks.trailing_zeros() as usize;
        }
        at += 16;
    }
    special_byte_in_words(bytes, at)
}

/// [`special_byte`] eight bytes at a time in a `u64`: each test marks the high bit of the
/// bytes it finds (and only of bytes at or past the first it finds, when a borrow carries), so
/// the lowest mark is the first such byte.
#[inline(always)]
pub(super) fn special_byte_in_words(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = bytes.get(at..at + 8).and_then(|chunk| <[u8; 8]>::try_from(chunk).ok()) {
        let word = u64::from_le_bytes(word);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let marks = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let marks = marks & HIGH;
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        at += 1;
    }
    at
}

/// Appends the string serde_json reads to a buffer.
struct AppendTo<'b>(&'b mut String);

impl Visitor<'_> for AppendTo<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}
