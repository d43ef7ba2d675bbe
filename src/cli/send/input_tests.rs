//! The input of `sauna send`: envelope completion, the checks of every line, partition keys.

use std::sync::Arc;

use super::*;

const SLACK: &str = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("a date").with_timezone(&Utc)
}

fn parser() -> CommandParser {
    let slack = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion");
    CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![vec![slack]])
}

struct Fixture {
    parser: CommandParser,
    schemas: SchemaRegistry,
    defaults: EnvelopeDefaults,
    key: PartitionKey,
    allow_unroutable: bool,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            parser: parser(),
            schemas: SchemaRegistry::embedded(),
            defaults: EnvelopeDefaults::default(),
            key: PartitionKey::CommandId,
            allow_unroutable: false,
        }
    }

    fn prepare(&self, input: &str) -> Result<Prepared, Vec<LineError>> {
        let p = Preparer {
            parser: &self.parser,
            schemas: &self.schemas,
            defaults: &self.defaults,
            partition_key: &self.key,
            allow_unroutable: self.allow_unroutable,
        };
        p.prepare_all(input.as_bytes(), at("2026-03-01T12:00:00Z"))
    }
}

fn bare(text: &str) -> String {
    json!({ "schema": SLACK, "data": { "text": text, "channel": "#ops" } }).to_string()
}

fn full(id: &str, when: &str, ttl: Option<u64>) -> String {
    json!({
        "schema": COMMAND_SCHEMA,
        "data": {
            "envelope": { "schema": ENVELOPE_SCHEMA, "data": {
                "commandId": id, "whenCreated": when,
                "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": ttl }, "tags": { "from": "file" } } },
            "command": { "schema": SLACK, "data": { "text": "full" } }
        }
    })
    .to_string()
}

#[test]
fn completion_writes_the_envelope_with_ttl_and_tags() {
    let defaults = EnvelopeDefaults {
        time_to_live: Some(Duration::from_secs(3600)),
        tags: [("team".to_owned(), "ops".to_owned()), ("env".to_owned(), "prod".to_owned())].into(),
    };
    let id = Uuid::parse_str("9dadfc92-9311-43c7-9cee-61ab590a6e81").expect("uuid");
    let v = complete(&json!(SLACK), json!({"text": "hi"}), &defaults, at("2026-03-01T12:00:00.5Z"), id);
    assert_eq!(v["schema"], COMMAND_SCHEMA);
    let env = &v["data"]["envelope"];
    assert_eq!(env["schema"], ENVELOPE_SCHEMA);
    assert_eq!(env["data"]["commandId"], "9dadfc92-9311-43c7-9cee-61ab590a6e81");
    assert_eq!(env["data"]["whenCreated"], "2026-03-01T12:00:00.500Z");
    assert_eq!(env["data"]["execution"], json!({ "semantics": "AT_LEAST_ONCE", "timeToLive": 3_600_000 }));
    assert_eq!(env["data"]["tags"], json!({ "team": "ops", "env": "prod" }));
    assert_eq!(v["data"]["command"], json!({ "schema": SLACK, "data": { "text": "hi" } }));

    let none = complete(&json!(SLACK), json!({}), &EnvelopeDefaults::default(), at("2026-03-01T12:00:00Z"), id);
    assert_eq!(none["data"]["envelope"]["data"]["execution"]["timeToLive"], Value::Null);
    assert_eq!(none["data"]["envelope"]["data"]["tags"], json!({}));
}

#[test]
fn a_completed_line_is_a_command_the_observer_routes() {
    let mut f = Fixture::new();
    f.defaults.time_to_live = Some(Duration::from_millis(90_000));
    f.defaults.tags.insert("source".into(), "test".into());
    let prepared = f.prepare(&format!("{}\n{}\n", bare("one"), bare("two"))).expect("valid");
    assert_eq!(prepared.records.len(), 2);
    let mut ids = vec![];
    for (r, text) in prepared.records.iter().zip(["one", "two"]) {
        let Classified::Routable { command, .. } = f.parser.classify(&r.data, at("2026-03-01T12:01:00Z")) else {
            panic!("not routable: {}", String::from_utf8_lossy(&r.data));
        };
        assert_eq!(command.data.to_value()["text"], text);
        assert_eq!(command.envelope.time_to_live, Some(Duration::from_millis(90_000)));
        assert_eq!(command.envelope.tags.get("source"), Some("test"));
        assert_eq!(r.partition_key, command.envelope.command_id.to_string(), "the default key is the commandId");
        ids.push(command.envelope.command_id);
    }
    assert_ne!(ids[0], ids[1], "every completed line gets its own commandId");
}

#[test]
fn a_full_command_is_sent_byte_for_byte_and_keeps_its_envelope() {
    let mut f = Fixture::new();
    f.defaults.time_to_live = Some(Duration::from_secs(1));
    f.defaults.tags.insert("ignored".into(), "yes".into());
    let line = full("9dadfc92-9311-43c7-9cee-61ab590a6e81", "2026-03-01T11:59:00Z", None);
    let prepared = f.prepare(&format!("  {line}  \r\n")).expect("valid");
    assert_eq!(prepared.records[0].data, line.as_bytes());
    assert_eq!(prepared.records[0].partition_key, "9dadfc92-9311-43c7-9cee-61ab590a6e81");
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let f = Fixture::new();
    let prepared = f.prepare(&format!("\n{}\n   \n\n{}", bare("a"), bare("b"))).expect("valid");
    assert_eq!(prepared.records.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
    assert!(f.prepare("").expect("empty input").records.is_empty());
}

#[test]
fn every_bad_line_is_named_with_its_field() {
    let f = Fixture::new();
    let lines = [
        bare("ok"),
        "{\"schema\": ".to_owned(),
        json!({ "schema": SLACK, "data": { "channel": "#ops", "text": 5 } }).to_string(),
        json!({ "schema": SLACK, "data": { "text": "x" }, "extra": 1 }).to_string(),
        json!({ "schema": SLACK }).to_string(),
        json!({ "data": {} }).to_string(),
        json!({ "schema": "not-iglu", "data": {} }).to_string(),
        full("not-a-uuid", "2026-03-01T11:59:00Z", None),
        full("9dadfc92-9311-43c7-9cee-61ab590a6e81", "2017-01-02T19:14:42Z", Some(1000)),
        "[1, 2]".to_owned(),
    ];
    let errors = f.prepare(&lines.join("\n")).expect_err("invalid");
    let by_line: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(by_line.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let message = |line: usize| by_line.iter().find(|(l, _)| *l == line).map(|(_, m)| *m).unwrap_or_default();
    assert!(message(2).starts_with("not JSON: EOF while parsing"), "{}", message(2));
    assert!(message(3).starts_with("data.text: "), "the field as the user wrote it: {}", message(3));
    assert!(message(4).starts_with("extra: unexpected"), "{}", message(4));
    assert_eq!(message(5), "data: missing");
    assert!(message(6).starts_with("schema: expected a full Sauna command"), "{}", message(6));
    assert!(message(7).starts_with("schema: expected an Iglu URI"), "{}", message(7));
    assert!(message(8).starts_with("data.envelope.data.commandId"), "{}", message(8));
    assert!(message(9).contains("expired"), "{}", message(9));
    assert!(message(10).starts_with("schema: "), "{}", message(10));
    assert_eq!(errors[0].to_string(), format!("line 2: {}", message(2)));
}

#[test]
fn non_utf8_is_an_error_of_its_line() {
    let f = Fixture::new();
    let p = Preparer {
        parser: &f.parser,
        schemas: &f.schemas,
        defaults: &f.defaults,
        partition_key: &f.key,
        allow_unroutable: false,
    };
    let mut input = bare("a").into_bytes();
    input.extend_from_slice(b"\n{\"x\xff\"}\n");
    let errors = p.prepare_all(&input, at("2026-03-01T12:00:00Z")).expect_err("invalid");
    assert_eq!(errors, [LineError { line: 2, message: "not UTF-8 (invalid byte at column 4)".into() }]);
}

#[test]
fn unroutable_is_an_error_unless_allowed() {
    let mut f = Fixture::new();
    let acme = json!({ "schema": "iglu:com.acme/notify/jsonschema/1-0-0", "data": { "x": 1 } }).to_string();
    let pagerduty = json!({ "schema": "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
                            "data": { "service_key": 5 } })
    .to_string();
    let errors = f.prepare(&format!("{acme}\n{pagerduty}")).expect_err("unroutable");
    assert!(errors[0].message.starts_with("schema: no enabled responder takes iglu:com.acme/notify"), "{errors:?}");
    assert!(errors[0].message.contains("--allow-unroutable"));

    f.allow_unroutable = true;
    let errors = f.prepare(&format!("{acme}\n{pagerduty}")).expect_err("a known schema is still validated");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].message.starts_with("data"), "{errors:?}");
    let prepared = f.prepare(&acme).expect("sent with a warning");
    assert_eq!(prepared.records.len(), 1);
    assert!(prepared.warnings[0].message.contains("sent anyway"), "{:?}", prepared.warnings);
    assert!(prepared.warnings[0].message.contains("not validated"));
}

#[test]
fn partition_keys_from_pointers_and_dotted_paths() {
    let data = json!({ "channel": "#ops", "n": 42, "b": true, "a/b": "slash", "details": { "hosts": ["h1", "h2"] },
                       "empty": "", "obj": {}, "long": "x".repeat(257) });
    let key = |spec: &str| PartitionKey::parse(spec).expect("spec").extract("id-1", &data);
    assert_eq!(key("channel"), Ok("#ops".into()));
    assert_eq!(key("/channel"), Ok("#ops".into()));
    assert_eq!(key("n"), Ok("42".into()));
    assert_eq!(key("b"), Ok("true".into()));
    assert_eq!(key("details.hosts.1"), Ok("h2".into()));
    assert_eq!(key("/details/hosts/0"), Ok("h1".into()));
    assert_eq!(key("a/b"), Ok("slash".into()), "a dotted segment may hold a slash");
    assert_eq!(key("/a~1b"), Ok("slash".into()));
    assert!(key("missing").expect_err("absent").contains("no such field"));
    assert!(key("obj").expect_err("an object").contains("found an object"));
    assert!(key("empty").expect_err("empty").contains("this one has 0"));
    assert!(key("long").expect_err("too long").contains("this one has 257"));
    assert_eq!(PartitionKey::CommandId.extract("id-1", &data), Ok("id-1".into()));
    assert!(PartitionKey::parse("").is_err());
    assert!(PartitionKey::parse("a..b").is_err());
}

#[test]
fn a_field_partition_key_is_taken_from_each_command() {
    let mut f = Fixture::new();
    f.key = PartitionKey::parse("channel").expect("spec");
    let no_channel = json!({ "schema": SLACK, "data": { "text": "x" } }).to_string();
    let prepared = f.prepare(&bare("a")).expect("valid");
    assert_eq!(prepared.records[0].partition_key, "#ops");
    let errors = f.prepare(&format!("{}\n{no_channel}", bare("a"))).expect_err("no key");
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].message.starts_with("--partition-key channel: "), "{errors:?}");
}

#[test]
fn a_record_over_a_mebibyte_is_refused() {
    let f = Fixture::new();
    let big = bare(&"x".repeat(MAX_RECORD_BYTES));
    let errors = f.prepare(&big).expect_err("too large");
    assert!(errors[0].message.contains("more than Kinesis's limit"), "{errors:?}");
}
