//! The last text a thread parsed, and what it parsed to.
//!
//! A command's `commandId` and `whenCreated` are each parsed twice, on one thread, a moment
//! apart: by the `uuid` and `date-time` format checks of the envelope's schema, then when the
//! envelope's fields are read. Parsing an RFC 3339 date-time costs ~300 instructions and a UUID
//! ~100; comparing the text with the one parsed last costs a tenth of that. A parse is a pure
//! function of its text, so answering the second from the first changes nothing.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Texts longer than this are parsed every time (date-times and UUIDs are 20-40 bytes).
const MAX_TEXT: usize = 48;

/// One text and its parse, kept inline (no allocation).
pub(super) struct LastParsed<T> {
    text: [u8; MAX_TEXT],
    /// The text's length in `text`, and what it parsed to; `None` before the first parse.
    last: Option<(usize, Option<T>)>,
}

impl<T: Copy> LastParsed<T> {
    pub const fn new() -> Self {
        LastParsed { text: [0; MAX_TEXT], last: None }
    }

    /// `parse(text)`, answered from the last parse when it was of the same text.
    fn parse(&mut self, text: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
        if let Some((len, parsed)) = self.last
            && self.text.get(..len) == Some(text.as_bytes())
        {
            return parsed;
        }
        let parsed = parse(text);
        if let Some(slot) = self.text.get_mut(..text.len()) {
            slot.copy_from_slice(text.as_bytes());
            self.last = Some((text.len(), parsed));
        }
        parsed
    }
}

/// `parse(text)`, answered from this thread's `last` parse when it was of the same text.
pub(super) fn parse_remembered<T: Copy + 'static>(
    last: &'static LocalKey<RefCell<LastParsed<T>>>,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    last.with(|last| match last.try_borrow_mut() {
        Ok(mut last) => last.parse(text, parse),
        Err(_) => parse(text),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static CALLS: Cell<usize> = const { Cell::new(0) };
    }

    /// A parse that counts its calls: even lengths parse to the length, odd ones fail.
    fn counted(text: &str) -> Option<usize> {
        CALLS.with(|calls| calls.set(calls.get() + 1));
        text.len().is_multiple_of(2).then_some(text.len())
    }

    fn calls() -> usize {
        CALLS.with(Cell::get)
    }

    /// Every answer is the parse's; a text seen last (failures and the empty text included) is
    /// not parsed again, any other text is, and texts too long to keep always are.
    #[test]
    fn answers_as_the_parse_does_and_parses_a_repeat_once() {
        let mut last = LastParsed::new();
        let long = "x".repeat(MAX_TEXT + 2);
        let texts = ["", "", "ab", "ab", "abc", "abc", "ab", "", "abcd", long.as_str(), long.as_str(), "abcd"];
        let mut expected_calls = 0;
        let mut previous: Option<&str> = None;
        for text in texts {
            assert_eq!(last.parse(text, counted), counted(text), "{text:?}");
            let repeat = previous == Some(text) && text.len() <= MAX_TEXT;
            expected_calls += if repeat { 1 } else { 2 };
            assert_eq!(calls(), expected_calls, "after {text:?}");
            if text.len() <= MAX_TEXT {
                previous = Some(text);
            }
        }
    }

    /// A text that shares the kept one's start is not taken for it.
    #[test]
    fn a_prefix_or_an_extension_is_another_text() {
        let mut last = LastParsed::new();
        assert_eq!(last.parse("abcd", counted), Some(4));
        assert_eq!(last.parse("ab", counted), Some(2));
        assert_eq!(last.parse("abcdef", counted), Some(6));
        assert_eq!(last.parse("abcdef", counted), Some(6));
        assert_eq!(calls(), 3);
    }
}
