//! An envelope's tags: a few short names and values, read with every command.
//!
//! Held as one string (each name, then its value) and the places where they end: two
//! allocations however many tags (none for none). A `BTreeMap<String, String>` made a node and
//! two strings per tag, and since a command is made on a parsing thread and dropped on its
//! consumer's, freed them across threads (~500 instructions a command with one tag, README:
//! Performance). Lookups are by binary search, as the map's were.

use std::fmt;

use serde::ser::{Serialize, Serializer};

/// Names and values, by name; a name is there at most once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// Each tag's name then its value, in the order of the names.
    text: String,
    /// For each tag, where its name ends and where its value ends, in `text`.
    ends: Vec<usize>,
}

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Tags::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of the tag `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let (entry, value) = self.entry(middle);
            match entry.cmp(name) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(value),
            }
        }
        None
    }

    /// The tags in the order of their names.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// Entry `i`'s name and value.
    fn entry(&self, i: usize) -> (&str, &str) {
        let start = match i {
            0 => 0,
            _ => self.ends.get(2 * i - 1).copied().unwrap_or(0),
        };
        let name_end = self.ends.get(2 * i).copied().unwrap_or(start);
        let value_end = self.ends.get(2 * i + 1).copied().unwrap_or(name_end);
        (self.text.get(start..name_end).unwrap_or(""), self.text.get(name_end..value_end).unwrap_or(""))
    }
}

/// Tags from names and values in any order; of a name given twice, the last value counts (as a
/// map's `insert` would have it).
impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let pairs = pairs.into_iter();
        let mut tags = Tags { text: String::new(), ends: Vec::with_capacity(2 * pairs.size_hint().0) };
        // Written as they come: commands' tags are few, and usually in order already.
        let mut in_order = true;
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            in_order &= tags.iter().next_back().is_none_or(|(last, _)| last < name);
            tags.text.reserve(name.len() + value.len());
            tags.text.push_str(name);
            tags.ends.push(tags.text.len());
            tags.text.push_str(value);
            tags.ends.push(tags.text.len());
        }
        if in_order { tags } else { tags.sorted() }
    }
}

impl Tags {
    /// The same tags in the order of their names, the last of each name kept.
    fn sorted(&self) -> Tags {
        let mut entries: Vec<(&str, &str)> = self.iter().collect();
        // Stable: of equal names, the last one given stays last.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        // `dedup_by` keeps the first of a run: move each later value into it.
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        entries.into_iter().collect()
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON object of strings, its members in the order of their names.
impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever names and values, in whatever order and with repeats: the tags are the map
        /// the same pairs make, entry for entry, looked up alike, printed alike.
        #[test]
        fn tags_are_what_a_map_of_the_pairs_is(
            pairs in prop::collection::vec(("[a-c\u{e9}]{0,3}", ".{0,4}"), 0..8),
            probes in prop::collection::vec("[a-c\u{e9}]{0,3}", 0..6),
        ) {
            let map: BTreeMap<String, String> = pairs.iter().cloned().collect();
            let tags: Tags = pairs.iter().cloned().collect();
            prop_assert_eq!(tags.len(), map.len());
            prop_assert_eq!(tags.is_empty(), map.is_empty());
            let entries: Vec<(&str, &str)> = tags.iter().collect();
            let expected: Vec<(&str, &str)> = map.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(entries, expected);
            for probe in probes.iter().chain(map.keys()) {
                prop_assert_eq!(tags.get(probe), map.get(probe).map(String::as_str), "{:?}", probe);
            }
            prop_assert_eq!(serde_json::to_string(&tags).ok(), serde_json::to_string(&map).ok());
            prop_assert_eq!(format!("{tags:?}"), format!("{map:?}"));
            let again: Tags = map.iter().collect();
            prop_assert_eq!(again, tags);
        }
    }

    #[test]
    fn no_tags() {
        let tags = Tags::new();
        assert_eq!(tags.get(""), None);
        assert_eq!(tags.iter().count(), 0);
        assert_eq!(serde_json::to_string(&tags).ok().as_deref(), Some("{}"));
        assert_eq!(Tags::from_iter(Vec::<(String, String)>::new()), tags);
    }
}
