//! Classification of record bytes into commands: the fixtures of each responder, every class of
//! bad input with its reason, TTLs with offsets, local Iglu repositories, and a property test
//! that no input panics.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use sauna::command::{Classified, CommandParser, SchemaRegistry};
use sauna::iglu::SchemaCriterion;
use serde_json::{Value, json};

const SLACK: &str = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*";
const PAGERDUTY: &str = "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*";
const SENDGRID: &str = "iglu:com.sendgrid.sauna.commands/send_email/jsonschema/1-0-*";

fn criterion(s: &str) -> SchemaCriterion {
    s.parse().expect("valid criterion")
}

fn parser() -> CommandParser {
    CommandParser::new(
        Arc::new(SchemaRegistry::embedded()),
        vec![vec![criterion(SLACK)], vec![criterion(PAGERDUTY)], vec![criterion(SENDGRID)]],
    )
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/commands").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).single().expect("valid date")
}

fn classify(value: &Value) -> Classified {
    parser().classify(value.to_string().as_bytes(), now())
}

#[track_caller]
fn assert_invalid(value: &Value, field: &str) -> String {
    match classify(value) {
        Classified::Invalid { reason, .. } => {
            assert!(reason.starts_with(field), "reason {reason:?} should start with {field:?}");
            reason
        }
        other => panic!("expected Invalid at {field}, got {other:?}"),
    }
}

#[test]
fn fixtures_of_each_responder_are_routed_to_it() {
    for (file, route) in [("slack.json", 0), ("pagerduty.json", 1), ("sendgrid.json", 2)] {
        match classify(&fixture(file)) {
            Classified::Routable { command, route: r } => {
                assert_eq!(r, route, "{file}");
                assert_eq!(command.schema.version.to_string(), "1-0-0");
            }
            other => panic!("{file}: expected Routable, got {other:?}"),
        }
    }
    let Classified::Routable { command, .. } = classify(&fixture("slack.json")) else {
        panic!("routable");
    };
    assert_eq!(command.envelope.command_id.to_string(), "9dadfc92-9311-43c7-9cee-61ab590a6e81");
    assert_eq!(command.data.to_value()["channel"], "#devops");
    assert!(command.envelope.time_to_live.is_none());
}

fn with_command_version(version: &str) -> Value {
    let mut v = fixture("slack.json");
    v["data"]["command"]["schema"] = json!(format!("iglu:com.slack.sauna.commands/send_message/jsonschema/{version}"));
    v
}

#[test]
fn other_models_and_revisions_are_unroutable() {
    for version in ["1-1-0", "2-0-0"] {
        match classify(&with_command_version(version)) {
            Classified::Unroutable { reason, command_id } => {
                assert!(reason.starts_with("data.command.schema: no enabled responder takes"), "{reason}");
                assert!(reason.contains(version));
                assert_eq!(command_id.to_string(), "9dadfc92-9311-43c7-9cee-61ab590a6e81");
            }
            other => panic!("{version}: expected Unroutable, got {other:?}"),
        }
    }
}

#[test]
fn a_later_addition_needs_its_schema_and_is_routed_with_a_local_iglu_repository() {
    // 1-0-3 matches the responder's 1-0-* criterion, but only validates once its schema is known.
    let reason = assert_invalid(&with_command_version("1-0-3"), "data.command.data");
    assert!(reason.contains("1-0-3 is not among the embedded schemas"), "{reason}");

    let repo = tempfile::tempdir().expect("tempdir");
    let dir = repo.path().join("schemas/com.slack.sauna.commands/send_message/jsonschema");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut schema: Value = serde_json::from_str(include_str!(
        "../resources/iglu/schemas/com.slack.sauna.commands/send_message/jsonschema/1-0-0"
    ))
    .expect("json");
    schema["self"]["version"] = json!("1-0-3");
    schema["properties"]["thread_ts"] = json!({"type": "string"});
    std::fs::write(dir.join("1-0-3"), schema.to_string()).expect("write");
    let registry = SchemaRegistry::with_repositories(&[repo.path().to_path_buf()]).expect("repo loads");
    let parser = CommandParser::new(Arc::new(registry), vec![vec![criterion(SLACK)]]);

    let mut command = with_command_version("1-0-3");
    command["data"]["command"]["data"]["thread_ts"] = json!("1503435956.000247");
    match parser.classify(command.to_string().as_bytes(), now()) {
        Classified::Routable { command, route } => {
            assert_eq!(route, 0);
            assert_eq!(command.schema.version.addition, 3);
        }
        other => panic!("expected Routable, got {other:?}"),
    }
}

#[test]
fn a_repository_schema_whose_self_disagrees_with_its_path_is_refused() {
    let repo = tempfile::tempdir().expect("tempdir");
    let dir = repo.path().join("com.acme/thing/jsonschema");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("1-0-0"),
        json!({"self": {"vendor": "com.acme", "name": "other", "format": "jsonschema", "version": "1-0-0"}, "type": "object"}).to_string(),
    )
    .expect("write");
    let err = SchemaRegistry::with_repositories(&[repo.path().to_path_buf()]).expect_err("mismatch");
    assert!(err.message.contains("its \"self\" says iglu:com.acme/other"), "{err}");
}

fn with_ttl(when_created: &str, ttl_ms: u64) -> Value {
    let mut v = fixture("pagerduty.json");
    v["data"]["envelope"]["data"]["whenCreated"] = json!(when_created);
    v["data"]["envelope"]["data"]["execution"]["timeToLive"] = json!(ttl_ms);
    v
}

#[test]
fn ttl_is_judged_in_utc_honouring_the_offset() {
    let hour = 3_600_000;
    let at = |h, m| Utc.with_ymd_and_hms(2020, 1, 1, h, m, 0).single().expect("date");
    let p = parser();
    // 12:00+02:00 is 10:00Z: read at 10:30Z it is 30 minutes old, within its hour.
    let v = with_ttl("2020-01-01T12:00:00+02:00", hour);
    assert!(matches!(p.classify(v.to_string().as_bytes(), at(10, 30)), Classified::Routable { .. }));
    // Read at 11:30Z it is 90 minutes old: expired. (Reading the offset away would make it
    // look 30 minutes *younger* than creation and never expire.)
    match p.classify(v.to_string().as_bytes(), at(11, 30)) {
        Classified::Expired { reason, command_id } => {
            assert!(reason.starts_with("data.envelope.data.execution.timeToLive: expired"), "{reason}");
            assert!(reason.contains("2020-01-01T10:00:00.000Z"), "{reason}");
            assert!(reason.contains("5400000 ms after creation"), "{reason}");
            assert_eq!(command_id.to_string(), "3f2c8d0e-7a57-4c8e-9a43-2b1f0e6d5c71");
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    // A Z timestamp and an exact boundary: age == ttl is still live.
    let v = with_ttl("2020-01-01T10:00:00Z", hour);
    assert!(matches!(p.classify(v.to_string().as_bytes(), at(11, 0)), Classified::Routable { .. }));
    assert!(matches!(p.classify(v.to_string().as_bytes(), at(11, 1)), Classified::Expired { .. }));
    // A null TTL never expires.
    assert!(matches!(classify(&fixture("slack.json")), Classified::Routable { .. }));
}

#[test]
fn bad_records_are_invalid_with_a_reason_naming_the_field() {
    let p = parser();
    match p.classify(b"\xff\xfe not utf-8", now()) {
        Classified::Invalid { reason, command_id } => {
            assert_eq!(reason, "record data: not UTF-8 (invalid byte at offset 0)");
            assert!(command_id.is_none());
        }
        other => panic!("{other:?}"),
    }
    match p.classify(b"{\"schema\": ", now()) {
        Classified::Invalid { reason, .. } => {
            assert!(reason.starts_with("record data: not JSON"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match p.classify(b"[1, 2]", now()) {
        Classified::Invalid { reason, .. } => {
            assert!(reason.starts_with("record data: expected a self-describing JSON"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    let mut v = fixture("slack.json");
    v["schema"] = json!("iglu:com.acme/event/jsonschema/1-0-0");
    assert_invalid(&v, "schema: expected a Sauna command");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["schema"] = json!("iglu:com.acme.sauna.commands/envelope/jsonschema/1-0-0");
    assert_invalid(&v, "data.envelope.schema: expected iglu:com.snowplowanalytics.sauna.commands/envelope");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["data"].as_object_mut().expect("object").remove("tags");
    let reason = assert_invalid(&v, "data.envelope.data");
    assert!(reason.contains("\"tags\" is a required property"), "{reason}");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["data"]["commandId"] = json!("not-a-uuid");
    let reason = assert_invalid(&v, "data.envelope.data.commandId");
    assert!(reason.contains("uuid"), "{reason}");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["data"]["whenCreated"] = json!("last tuesday");
    assert_invalid(&v, "data.envelope.data.whenCreated");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["data"]["execution"]["semantics"] = json!("EXACTLY_ONCE");
    assert_invalid(&v, "data.envelope.data.execution.semantics");

    let mut v = fixture("slack.json");
    v["data"]["envelope"]["data"]["tags"] = json!({"team": 7});
    assert_invalid(&v, "data.envelope.data.tags.team");

    // The command fails its own schema: the reason names the field and keeps the commandId.
    let mut v = fixture("slack.json");
    v["data"]["command"]["data"]["attachments"] = json!([{"color": "good"}]);
    match classify(&v) {
        Classified::Invalid { reason, command_id } => {
            assert!(reason.starts_with("data.command.data.attachments[0]"), "{reason}");
            assert!(reason.contains("fallback"), "{reason}");
            assert_eq!(command_id.map(|u| u.to_string()).as_deref(), Some("9dadfc92-9311-43c7-9cee-61ab590a6e81"));
        }
        other => panic!("{other:?}"),
    }

    let mut v = fixture("slack.json");
    v["data"]["extra"] = json!(1);
    assert_invalid(&v, "data: Additional properties are not allowed");
}

/// A JSON value of any shape, with Sauna-ish keys so that some reach deep into the parser.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0")),
        Just(json!("iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0")),
        Just(json!("iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0")),
        Just(json!("9dadfc92-9311-43c7-9cee-61ab590a6e81")),
        Just(json!("2017-01-02T19:14:42+02:00")),
    ];
    let key = prop_oneof![
        Just("schema".to_owned()),
        Just("data".to_owned()),
        Just("envelope".to_owned()),
        Just("command".to_owned()),
        Just("commandId".to_owned()),
        Just("whenCreated".to_owned()),
        Just("execution".to_owned()),
        Just("timeToLive".to_owned()),
        Just("tags".to_owned()),
        "[a-z]{1,8}",
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parser().classify(&bytes, now());
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let _ = parser().classify(value.to_string().as_bytes(), now());
    }

    #[test]
    fn any_field_of_a_valid_command_replaced_never_panics(
        pointer in prop_oneof![
            Just("/data/envelope/data/commandId"), Just("/data/envelope/data/whenCreated"),
            Just("/data/envelope/data/execution/timeToLive"), Just("/data/envelope/data/tags"),
            Just("/data/envelope"), Just("/data/command/schema"), Just("/data/command/data"),
            Just("/data/command"), Just("/schema"), Just("/data"),
        ],
        replacement in arb_json(),
    ) {
        let mut v = fixture("slack.json");
        if let Some(slot) = v.pointer_mut(pointer) {
            *slot = replacement;
        }
        let _ = parser().classify(v.to_string().as_bytes(), now());
    }
}
