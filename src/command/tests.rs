//! The two ways of classifying a record side by side: whatever the tape way answers, the
//! `Value` way answers the same (and so `classify`, which takes the tape's answer when it has
//! one, answers every record as the `Value` way alone would).

use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const SLACK: &str = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*";
const PAGERDUTY: &str = "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*";

fn parser() -> CommandParser {
    let criterion = |s: &str| s.parse().expect("criterion");
    CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![vec![criterion(SLACK)], vec![criterion(PAGERDUTY)]])
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).single().expect("a date")
}

fn slack() -> Value {
    json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {
                "schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {
                    "commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81",
                    "whenCreated": "2026-11-26T12:59:00+01:00",
                    "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": 3_600_000 },
                    "tags": { "source": "tests", "é": "✓" }
                }
            },
            "command": {
                "schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                "data": { "username": "sauna", "channel": "#ops", "text": "the \"load\" is done ✓",
                          "attachments": [{ "fallback": "f", "fields": [{ "title": "t", "value": "1.5", "short": true }] }] }
            }
        }
    })
}

/// Classifies `text` both ways and checks that the tape's answer, if it has one, is the
/// `Value` way's; returns whether the tape answered.
#[track_caller]
fn agree(parser: &CommandParser, text: &str) -> bool {
    let by_value = parser.classify_value(text, now());
    let by_tape = parser.classify_tape(&mut Tape::default(), text, now());
    if let Some(by_tape) = &by_tape {
        assert_eq!(by_tape, &by_value, "{text}");
    }
    assert_eq!(parser.classify(text.as_bytes(), now()), by_value, "{text}");
    by_tape.is_some()
}

#[test]
fn a_valid_command_is_answered_by_the_tape_as_by_the_value() {
    let parser = parser();
    let command = slack();
    assert!(agree(&parser, &command.to_string()), "compact");
    assert!(agree(&parser, &serde_json::to_string_pretty(&command).expect("prints")), "pretty");
    let escaped = command.to_string().replace("#ops", "\\u0023ops").replace("sauna\"", "sa\\u0075na\"");
    assert!(agree(&parser, &escaped), "escaped");
    let Classified::Routable { command: made, route } = parser.classify(command.to_string().as_bytes(), now()) else {
        panic!("routable");
    };
    assert_eq!(route, 0);
    assert_eq!(made.data.to_value(), command["data"]["command"]["data"]);
    assert_eq!(made.data.as_str(), command["data"]["command"]["data"].to_string(), "the text a Value prints");
    assert_eq!(made.envelope.tags.get("é"), Some("✓"));
}

#[test]
fn expired_commands_are_answered_by_the_tape_as_by_the_value() {
    let mut command = slack();
    command["data"]["envelope"]["data"]["execution"]["timeToLive"] = json!(1000);
    assert!(agree(&parser(), &command.to_string()));
    assert!(matches!(parser().classify(command.to_string().as_bytes(), now()), Classified::Expired { .. }));
}

#[test]
fn what_the_tape_leaves_is_classified_by_the_value() {
    let parser = parser();
    let mut unroutable = slack();
    unroutable["data"]["command"]["schema"] = json!("iglu:com.sendgrid.sauna.commands/send_email/jsonschema/1-0-0");
    let mut invalid = slack();
    invalid["data"]["command"]["data"]["channel"] = json!(7);
    let mut other_form = slack();
    other_form["data"]["command"]["schema"] = json!("iglu:com.slack.sauna.commands/send_message/jsonschema/01-0-0");
    let duplicate =
        slack().to_string().replacen("\"channel\":\"#ops\"", "\"channel\":\"#ops\",\"channel\":\"#dev\"", 1);
    for text in [unroutable.to_string(), invalid.to_string(), other_form.to_string(), duplicate, "{\"a\":".into()] {
        assert!(!agree(&parser, &text), "the tape left it: {text}");
    }
}

/// A JSON value of any shape, with Sauna-ish keys and strings so that some reach deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(1.0)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("AT_LEAST_ONCE")),
        Just(json!("iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0")),
        Just(json!("iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0")),
        Just(json!("9dadfc92-9311-43c7-9cee-61ab590a6e81")),
        Just(json!("2026-11-26T11:00:00Z")),
    ];
    let key = prop_oneof![
        Just("schema".to_owned()),
        Just("data".to_owned()),
        Just("text".to_owned()),
        Just("channel".to_owned()),
        Just("semantics".to_owned()),
        Just("timeToLive".to_owned()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn any_field_of_a_command_replaced_is_answered_alike(
        pointer in prop_oneof![
            Just("/data/envelope/data/commandId"), Just("/data/envelope/data/whenCreated"),
            Just("/data/envelope/data/execution/timeToLive"), Just("/data/envelope/data/execution/semantics"),
            Just("/data/envelope/data/execution"), Just("/data/envelope/data/tags"),
            Just("/data/envelope/data/tags/source"), Just("/data/envelope"), Just("/data/envelope/schema"),
            Just("/data/command/schema"), Just("/data/command/data"), Just("/data/command/data/text"),
            Just("/data/command/data/attachments"), Just("/data/command"), Just("/schema"), Just("/data"),
        ],
        replacement in arb_json(),
        pretty in any::<bool>(),
    ) {
        let mut command = slack();
        if let Some(slot) = command.pointer_mut(pointer) {
            *slot = replacement;
        }
        let text = if pretty { serde_json::to_string_pretty(&command).expect("prints") } else { command.to_string() };
        agree(&parser(), &text);
    }

    #[test]
    fn a_member_added_anywhere_is_answered_alike(
        pointer in prop_oneof![
            Just(""), Just("/data"), Just("/data/envelope"), Just("/data/envelope/data"),
            Just("/data/envelope/data/execution"), Just("/data/envelope/data/tags"), Just("/data/command"),
            Just("/data/command/data"), Just("/data/command/data/attachments/0"),
        ],
        name in prop_oneof![Just("schema".to_owned()), Just("data".to_owned()), "[a-z]{1,6}"],
        value in arb_json(),
    ) {
        let mut command = slack();
        if let Some(Value::Object(members)) = command.pointer_mut(pointer) {
            members.insert(name, value);
        }
        agree(&parser(), &command.to_string());
    }
}
