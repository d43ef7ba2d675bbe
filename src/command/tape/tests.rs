//! The tape against a `serde_json::Value` of the same text: the same JSON read, the same text
//! printed, the same answer from every schema.

use jsonschema::json::{JsonNumber, Node};
use proptest::prelude::*;
use serde_json::json;

use super::*;

/// JSON of any shape, keys of any text (escapes included), numbers of every kind (also what
/// `CommandData`'s tests print).
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        Just(json!(1.0)),
        Just(json!(-0.0)),
        ".{0,12}".prop_map(Value::String),
        "[\"\\\\/\u{0}-\u{1f}é✓😀]{0,6}".prop_map(Value::String),
    ];
    let key = prop_oneof!["[a-e]{0,3}", ".{0,6}", "[\"\\\\\u{0}-\u{1f}é]{1,3}"];
    leaf.prop_recursive(5, 80, 12, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..12).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The ways a producer might write a value: compact, pretty, and with every non-ASCII character
/// and `/` escaped.
fn writings(value: &Value) -> Vec<String> {
    let compact = value.to_string();
    let escaped: String = compact
        .chars()
        .flat_map(|c| match c {
            '/' => vec!['\\', '/'],
            c if !c.is_ascii() => {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .flat_map(|u| format!("\\u{u:04x}").chars().collect::<Vec<_>>())
                    .collect()
            }
            c => vec![c],
        })
        .collect();
    // Escaping outside strings would break the JSON: only keep it when it still reads the same.
    let escaped = serde_json::from_str::<Value>(&escaped).ok().filter(|v| v == value).map(|_| escaped);
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    [Some(compact), Some(pretty), escaped].into_iter().flatten().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_tape_reads_what_a_value_reads_and_prints_what_it_prints(value in arb_json()) {
        let mut tape = Tape::default();
        for text in writings(&value) {
            let root = tape.parse(&text).expect("JSON without duplicate keys");
            prop_assert_eq!(root.to_json(), value.clone(), "{}", text);
            let mut printed = Vec::new();
            root.write_canonical(&mut printed);
            prop_assert_eq!(String::from_utf8(printed).expect("UTF-8"), value.to_string(), "{}", text);
        }
    }

    /// `members` (one pass for several names) finds what `member` finds for each name: the
    /// object's own keys, in any order, and names it does not have.
    #[test]
    fn members_finds_what_member_finds_name_by_name(value in arb_json(), other in ".{0,4}") {
        let mut tape = Tape::default();
        let text = value.to_string();
        let root = tape.parse(&text).expect("JSON without duplicate keys");
        let mut names: Vec<String> = value.as_object().map(|o| o.keys().rev().cloned().collect()).unwrap_or_default();
        names.push(other);
        for pair in names.windows(2).chain([&names[..1]]) {
            let (a, b) = (pair[0].as_str(), pair.get(1).map_or("", String::as_str));
            let found = root.members([a, b]);
            if value.is_object() {
                let found = found.expect("an object");
                prop_assert_eq!(found[0].map(|n| n.to_json()), root.member(a).map(|n| n.to_json()));
                prop_assert_eq!(found[1].map(|n| n.to_json()), root.member(b).map(|n| n.to_json()));
                prop_assert_eq!(found[0].map(|n| n.to_json()), value.get(a).cloned());
            } else {
                prop_assert!(found.is_none());
            }
        }
    }

    #[test]
    fn every_embedded_schema_answers_a_tape_as_it_answers_a_value(value in arb_json()) {
        let registry = crate::command::SchemaRegistry::embedded();
        let mut tape = Tape::default();
        let text = value.to_string();
        let root = tape.parse(&text).expect("parses");
        for known in registry.all() {
            let by_value = registry.get(&known.key).expect("known").is_valid(&value);
            prop_assert_eq!(known.is_valid(root), by_value, "{} on {}", known.key, text);
        }
    }
}

#[test]
fn commands_near_the_schemas_are_answered_alike() {
    let registry = crate::command::SchemaRegistry::embedded();
    let instances = [
        json!({"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81", "whenCreated": "2017-01-02T19:14:42Z",
               "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": null}, "tags": {"a": "b"}}),
        json!({"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81", "whenCreated": "2017-01-02T19:14:42Z",
               "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": 1.0}, "tags": {}}),
        json!({"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e8", "whenCreated": "2017-01-02T19:14:42Z",
               "execution": {"semantics": "AT_MOST_ONCE", "timeToLive": 5}, "tags": {"a": 1}}),
        json!({"envelope": {"schema": "iglu:a/b/jsonschema/1-0-0", "data": {}}, "command": {"schema": "iglu:a/b/c/1-0", "data": 1}}),
        json!({"envelope": {"schema": "iglu:a/b/jsonschema/1-0-0", "data": {}}, "command": {"schema": "iglu:a/b/c/1-0-0", "data": 1}}),
        json!({"channel": "#ops", "text": "hi", "attachments": [{"fallback": "x", "fields": [{"title": "t", "value": "v", "short": true}]}]}),
        json!({"channel": "#ops", "text": "hi", "attachments": [{"fields": [{"short": "yes"}]}]}),
        json!({"service_key": "k", "event_type": "trigger", "description": "d", "details": {"a": [1, 2]}}),
        json!({"service_key": "k", "event_type": "page", "description": "d"}),
    ];
    for value in instances {
        let text = value.to_string();
        let mut tape = Tape::default();
        let root = tape.parse(&text).expect("parses");
        for known in registry.all() {
            let by_value = registry.get(&known.key).expect("known").is_valid(&value);
            assert_eq!(known.is_valid(root), by_value, "{} on {text}", known.key);
        }
    }
}

#[test]
fn an_object_naming_a_key_twice_is_refused_at_any_depth_and_size() {
    let mut tape = Tape::default();
    for text in [
        r#"{"a": 1, "a": 2}"#,
        r#"{"x": [{"b": 1, "c": 2, "b": 3}]}"#,
        r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":10}"#,
        r#"{"é": 1, "\u00e9": 2}"#,
    ] {
        assert!(tape.parse(text).is_err(), "{text}");
    }
    let many: String = format!("{{{}}}", (0..40).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
    assert_eq!(
        tape.parse(&many).expect("distinct keys").to_json(),
        serde_json::from_str::<Value>(&many).expect("JSON")
    );
}

#[test]
fn not_json_is_refused_as_serde_json_refuses_it() {
    let mut tape = Tape::default();
    for text in ["", "{", r#"{"a": }"#, "[1, 2", "nul", "1 2", r#""\x""#, "{\"a\":1}garbage"] {
        let by_value = serde_json::from_str::<Value>(text).expect_err("not JSON").to_string();
        let by_tape = tape.parse(text).expect_err("not JSON").to_string();
        assert_eq!(by_tape, by_value, "{text:?}");
    }
}

#[test]
fn numbers_are_read_as_a_value_reads_them() {
    let mut tape = Tape::default();
    let text =
        r#"[0, -0, 18446744073709551615, 18446744073709551616, -9223372036854775808, 1.0, 1e2, -0.0, 1.5e-7, 0.1]"#;
    let root = tape.parse(text).expect("parses");
    let value: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(root.to_json(), value);
    let mut printed = Vec::new();
    root.write_canonical(&mut printed);
    assert_eq!(String::from_utf8(printed).expect("UTF-8"), value.to_string());
    let integers: Vec<bool> =
        root.array().expect("array").map(|n| n.as_number().expect("number").is_written_as_integer()).collect();
    let by_value: Vec<bool> = value
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n.as_number().expect("number").is_written_as_integer())
        .collect();
    assert_eq!(integers, by_value);
}

#[test]
fn property_names_are_checked_through_a_string_node() {
    let schema = json!({"propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}});
    let tape_validator = jsonschema::options_for::<TapeJson>().build(&schema).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema");
    let mut tape = Tape::default();
    for text in [r#"{"abc": 1}"#, r#"{"abcd": 1}"#, r#"{"aB": 1}"#, r#"{"a\u0062": {"Z": 1}}"#, "{}"] {
        let value: Value = serde_json::from_str(text).expect("JSON");
        let root = tape.parse(text).expect("parses");
        assert_eq!(tape_validator.is_valid(root), validator.is_valid(&value), "{text}");
    }
}

#[test]
fn a_big_tape_gives_its_memory_back() {
    let mut tape = Tape::default();
    let big = format!("[{}]", vec!["1"; 100_000].join(","));
    tape.parse(&big).expect("parses");
    tape.shrink_above(16 * 1024);
    assert_eq!(tape.entries.capacity(), 0);
    assert_eq!(tape.parse("[1]").expect("parses").to_json(), json!([1]));
}

/// The tape each path builds of `text`: the fast path's (`None` when it gives up) and
/// serde_json's (its error as text).
type Built = (Vec<Entry>, String);

fn by_both_paths(text: &str) -> (Option<Built>, Result<Built, String>) {
    let mut fast = Tape::default();
    let by_scan = scan::fill(&mut fast, text).map(|()| (fast.entries.clone(), fast.unescaped.clone()));
    let mut slow = Tape::default();
    let by_serde =
        slow.parse_with_serde(text).map(|()| (slow.entries, slow.unescaped)).map_err(|error| error.to_string());
    (by_scan, by_serde)
}

/// Pieces that make JSON go wrong, or right in ways the fast path must not misread.
const SPLICES: &[&str] = &[
    "\"",
    "\\",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "-",
    "0",
    "1",
    ".",
    "e",
    "E",
    "+",
    " ",
    "\u{0}",
    "\n",
    "\u{7f}",
    "é",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\u00e9",
    "\\n",
    "\\\"",
    "tru",
    "true",
    "nul",
    "null",
    "fals",
    "-0",
    "01",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "1e400",
    "\"a\":1",
    "\"a\"",
];

/// A text with a few edits: characters removed or pieces put in, at character boundaries.
fn edited(text: &str, edits: &[(usize, Option<usize>)]) -> String {
    let mut chars: Vec<String> = text.chars().map(String::from).collect();
    for &(at, splice) in edits {
        let at = if chars.is_empty() { 0 } else { at % (chars.len() + 1) };
        match splice {
            Some(piece) => chars.insert(at, SPLICES[piece % SPLICES.len()].to_owned()),
            None if at < chars.len() => {
                chars.remove(at);
            }
            None => {}
        }
    }
    chars.concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Whatever text the fast path reads, it builds the tape serde_json builds, entry for
    /// entry (spans and unescaped text included): on JSON of every shape, in every writing,
    /// and on the same with edits that break it or change what it means.
    #[test]
    fn the_fast_path_builds_the_tape_serde_json_builds_or_gives_up(
        value in arb_json(),
        edits in prop::collection::vec((any::<usize>(), prop::option::of(any::<usize>())), 0..4),
    ) {
        for written in writings(&value) {
            let (by_scan, by_serde) = by_both_paths(&written);
            if let Some(built) = by_scan {
                prop_assert_eq!(Ok(built), by_serde, "{}", written);
            }
            let text = edited(&written, &edits);
            let (by_scan, by_serde) = by_both_paths(&text);
            if let Some(built) = by_scan {
                prop_assert_eq!(Ok(built), by_serde, "{:?}", text);
            }
        }
    }

    /// The eight-bytes-at-a-time search finds what a byte-by-byte one finds, from any start.
    #[test]
    fn special_byte_finds_the_first_quote_backslash_or_control_character(
        bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(0x7f), Just(0xa2)], 0..40)
            .prop_flat_map(|noise| (Just(noise.clone()), prop::collection::vec(0x20u8..=0xff, 0..40), 0..8usize)),
    ) {
        let (noise, plain, from) = bytes;
        // Plain bytes first, then noise: the first special byte lands at every offset of a word.
        let text: Vec<u8> = plain.into_iter().filter(|b| *b != b'"' && *b != b'\\').chain(noise).collect();
        let expected = (from..text.len()).find(|&i| text[i] == b'"' || text[i] == b'\\' || text[i] < 0x20).unwrap_or(text.len().max(from));
        prop_assert_eq!(scan::special_byte(&text, from), expected);
    }
}

/// The fast path reads the commands sauna sees (so their cost stays what the README says): the
/// benchmarks' command, and one with escapes, negative numbers, literals and nesting.
#[test]
fn the_fast_path_reads_commands_as_producers_write_them() {
    let commands = [
        r##"{"data":{"command":{"data":{"channel":"#ops","text":"benchmark command 7: the nightly load finished","username":"sauna-bench"},"schema":"iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0"},"envelope":{"data":{"commandId":"6f1d4c5e-0d6e-4c53-9d55-0b8b0c0e9a51","execution":{"semantics":"AT_LEAST_ONCE","timeToLive":null},"tags":{"source":"bench"},"whenCreated":"2026-11-26T10:00:00Z"},"schema":"iglu:com.snowplowanalytics.sauna.envelope/jsonschema/1-0-0"}},"schema":"iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0"}"##,
        "{\"data\": {\"text\": \"line one\\nline \\\"two\\\" caf\\u00e9 \\ud83d\\ude00\", \"n\": [-1, 0, 42, -9223372036854775808, 18446744073709551615],\n \"flags\": [true, false, null, {}, []], \"deep\": {\"a\": {\"b\": [[{\"c\": \"\\\\\"}]]}}}}",
    ];
    for text in commands {
        let (by_scan, by_serde) = by_both_paths(text);
        assert_eq!(by_scan.ok_or_else(|| "the fast path gave up".to_owned()), by_serde, "{text}");
    }
}

/// Nesting: the fast path reads what is under its depth, and leaves deeper documents to
/// serde_json (which refuses them past 127 levels, as `parse` does).
#[test]
fn the_fast_path_leaves_deep_documents_to_serde_json() {
    for depth in [1, 50, 99, 100, 101, 127, 128, 500] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let object = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        for text in [text, object] {
            let (by_scan, by_serde) = by_both_paths(&text);
            match by_scan {
                Some(built) => assert_eq!(Ok(built), by_serde, "depth {depth}"),
                None => assert!(depth > 99, "depth {depth}: the fast path gave up"),
            }
            let by_value = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
            let by_tape = Tape::default().parse(&text).map(|root| root.to_json()).map_err(|e| e.to_string());
            assert_eq!(by_tape, by_value, "depth {depth}");
        }
    }
}

/// What the fast path leaves to serde_json, serde_json reads (or refuses) through `parse`.
#[test]
fn what_the_fast_path_gives_up_on_parse_still_reads() {
    let mut tape = Tape::default();
    for text in ["[1.5, -0, 1e3, 18446744073709551616]", r#"{"a": 1, "a": 2}"#, r#""\ud800""#, "[01]"] {
        let mut fast = Tape::default();
        assert!(scan::fill(&mut fast, text).is_none(), "{text}");
        let by_value = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        let by_tape = tape.parse(text).map(|root| root.to_json()).map_err(|e| e.to_string());
        match (by_value, by_tape) {
            (Ok(value), Ok(read)) => assert_eq!(read, value, "{text}"),
            (_, Err(error)) => assert!(!error.is_empty(), "{text}"),
            (Err(error), Ok(read)) => panic!("{text}: serde_json refuses it ({error}), the tape read {read}"),
        }
    }
}
