//! The config directory through `sauna validate` and the library loader: the setup guide's
//! example as printed, the same config in strict Avro JSON and binary Avro, and one bad
//! directory per kind of mistake, each failing with one line naming file, field and expectation.

use std::path::{Path, PathBuf};
use std::process::Command;

use apache_avro::types::Value as AvroValue;
use chrono::TimeZone;
use sauna::config::{AwsCredentials, InitialPosition, KinesisObserverConfig};
use sauna::config_dir as config;
use serde_json::{Value, json};

const KINESIS_KEY: &str = "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs")
}

fn guide_example_text() -> String {
    std::fs::read_to_string(fixtures().join("setup-guide-example.json")).expect("fixture")
}

fn guide_example() -> Value {
    serde_json::from_str(&guide_example_text()).expect("the guide's example is JSON")
}

/// Runs `sauna validate --config-dir DIR`: (exit code, stdout).
fn validate(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sauna"))
        .args(["validate", "--config-dir"])
        .arg(dir)
        .env("RUST_LOG", "off")
        .output()
        .expect("sauna runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write");
    }
    dir
}

fn expected_observer() -> KinesisObserverConfig {
    KinesisObserverConfig {
        id: "com.acme.MyStreamObserver".into(),
        credentials: AwsCredentials::from_keys("...", "..."),
        region: "us-west-2".into(),
        stream_name: "acme-sauna-prioritycommands".into(),
        max_records: 100,
        initial_position: InitialPosition::AtTimestamp(
            chrono::Utc.timestamp_millis_opt(1_486_998_718_968).single().expect("instant"),
        ),
    }
}

#[test]
fn the_setup_guide_example_as_printed_is_valid() {
    let text = guide_example_text();
    assert!(text.contains("\"timestamp\": \"1486998718968\""), "the fixture is the guide's text");
    let dir = dir_with(&[("kinesis.json", text.as_bytes())]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK "), "{out}");
    assert!(out.contains(KINESIS_KEY) && out.contains("id=com.acme.MyStreamObserver"), "{out}");

    let loaded = config::load_dir(dir.path()).expect("loads");
    assert_eq!(loaded.observers, vec![expected_observer()]);
    // The example's keys are placeholders, not "default": they are static credentials, and
    // they never appear in Debug output.
    let debug = format!("{loaded:?}");
    assert!(debug.contains("<redacted>") && !debug.contains("\"...\""), "{debug}");
}

#[test]
fn strict_avro_json_decodes_to_the_same_config() {
    let text = std::fs::read(fixtures().join("setup-guide-example-strict-avro.json")).expect("fixture");
    let dir = dir_with(&[("kinesis.avro", &text)]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert_eq!(config::load_dir(dir.path()).expect("loads").observers, vec![expected_observer()]);
}

/// The guide's example as a binary Avro object container file, written by apache-avro.
fn binary_example(with_iglu_metadata: bool) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(include_str!(
        "../resources/iglu/schemas/com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0"
    ))
    .expect("schema");
    let record = AvroValue::Record(vec![
        ("enabled".into(), AvroValue::Boolean(true)),
        ("id".into(), AvroValue::String("com.acme.MyStreamObserver".into())),
        (
            "parameters".into(),
            AvroValue::Record(vec![
                (
                    "aws".into(),
                    AvroValue::Record(vec![
                        ("accessKeyId".into(), AvroValue::String("...".into())),
                        ("secretAccessKey".into(), AvroValue::String("...".into())),
                    ]),
                ),
                (
                    "kinesis".into(),
                    AvroValue::Record(vec![
                        ("region".into(), AvroValue::String("us-west-2".into())),
                        ("streamName".into(), AvroValue::String("acme-sauna-prioritycommands".into())),
                        ("maxRecords".into(), AvroValue::Int(100)),
                        ("initialPosition".into(), AvroValue::Enum(0, "AT_TIMESTAMP".into())),
                        (
                            "initialPositionModifiers".into(),
                            AvroValue::Union(
                                0,
                                Box::new(AvroValue::Record(vec![(
                                    "timestamp".into(),
                                    AvroValue::Union(0, Box::new(AvroValue::TimestampMillis(1_486_998_718_968))),
                                )])),
                            ),
                        ),
                    ]),
                ),
            ]),
        ),
    ]);
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).expect("writer");
    if with_iglu_metadata {
        writer.add_user_metadata("iglu.schema".into(), KINESIS_KEY).expect("metadata");
    }
    writer.append_value(record).expect("append");
    writer.into_inner().expect("flush")
}

#[test]
fn binary_avro_decodes_to_the_same_config() {
    for with_metadata in [false, true] {
        let dir = dir_with(&[("kinesis.avro", &binary_example(with_metadata))]);
        let (code, out) = validate(dir.path());
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(KINESIS_KEY), "{out}");
        assert_eq!(config::load_dir(dir.path()).expect("loads").observers, vec![expected_observer()]);
    }
}

#[test]
fn other_files_are_ignored_and_disabled_configs_are_not_checked() {
    let mut disabled = guide_example();
    disabled["data"]["enabled"] = json!(false);
    disabled["data"]["parameters"]["kinesis"]["maxRecords"] = json!(0);
    let mut no_enabled = guide_example();
    no_enabled["data"].as_object_mut().expect("object").remove("enabled");
    let dir = dir_with(&[
        ("kinesis.json", guide_example_text().as_bytes()),
        ("old.json", disabled.to_string().as_bytes()),
        ("absent.json", no_enabled.to_string().as_bytes()),
        ("README.md", b"not a config"),
        ("kinesis.json.bak", b"{ broken"),
        ("notes.txt", b"{ broken"),
    ]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 3, "three config files, one line each: {out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("DISABLED")).count(), 2, "{out}");
}

#[test]
fn several_observers_and_responders_load_together() {
    let mut second = guide_example();
    second["data"]["id"] = json!("com.acme.Second");
    second["data"]["parameters"]["kinesis"]["initialPosition"] = json!("TRIM_HORIZON");
    second["data"]["parameters"]["kinesis"]["initialPositionModifiers"] = json!(null);
    second["data"]["parameters"]["aws"] = json!({"accessKeyId": "default", "secretAccessKey": "default"});
    let slack = json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
        "data": {"enabled": true, "id": "slack", "parameters": {"sendMessageEnabled": true, "webhookUrl": "https://hooks.slack.com/services/T0/B0/SECRET"}}});
    let runtime = json!({"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0",
        "data": {"mailboxes": {"shardConsumer": 7}, "leases": {"failoverTimeMillis": 2000}, "http": {"listen": "127.0.0.1:9404"}}});
    let dir = dir_with(&[
        ("a.json", guide_example_text().as_bytes()),
        ("b.json", second.to_string().as_bytes()),
        ("slack.json", slack.to_string().as_bytes()),
        ("runtime.json", runtime.to_string().as_bytes()),
    ]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    let c = config::load_dir(dir.path()).expect("loads");
    assert_eq!(c.observers.len(), 2);
    assert_eq!(c.observers[1].credentials, AwsCredentials::DefaultChain);
    assert_eq!(c.observers[1].initial_position, InitialPosition::TrimHorizon);
    assert_eq!(c.responders.len(), 1);
    assert_eq!(c.runtime.mailboxes.shard_consumer, 7);
    assert_eq!(c.runtime.mailboxes.checkpointer, 1024, "unset fields keep their default");
    assert_eq!(c.runtime.leases.failover_time.as_millis(), 2000);
    assert_eq!(c.runtime.leases.renew_interval.as_millis(), 641, "failover / 3 - 25 ms");
    assert_eq!(c.runtime.http.listen, Some("127.0.0.1:9404".parse().expect("an address")));
    assert_eq!(sauna::config::runtime::RuntimeConfig::default().http.listen, None, "no endpoint by default");
    let debug = format!("{c:?}");
    assert!(!debug.contains("SECRET"), "the webhook URL is a secret: {debug}");
}

/// One bad directory: `sauna validate` exits non-zero and prints an ERROR line that starts
/// with `<file>: <field>:` and says what was expected.
#[track_caller]
fn assert_fails(name: &str, files: &[(&str, Vec<u8>)], file: &str, field: &str, expected: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, content) in files {
        std::fs::write(dir.path().join(n), content).expect("write");
    }
    let (code, out) = validate(dir.path());
    assert_ne!(code, 0, "{name}: should fail\n{out}");
    let location =
        if file.is_empty() { dir.path().display().to_string() } else { dir.path().join(file).display().to_string() };
    let prefix = format!("ERROR     {location}: {field}: ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{name}: no line starting with {prefix:?} in\n{out}"));
    assert!(line.contains(expected), "{name}: {line:?} should say {expected:?}");
    assert!(line.contains("expected"), "{name}: {line:?} should say what was expected");
    println!("{name}: {line}");
}

fn example_with(path: &[&str], value: Value) -> Vec<u8> {
    let mut v = guide_example();
    let mut slot = &mut v;
    for p in path {
        slot = &mut slot[*p];
    }
    *slot = value;
    v.to_string().into_bytes()
}

fn kinesis_field(field: &str, value: Value) -> Vec<u8> {
    example_with(&["data", "parameters", "kinesis", field], value)
}

#[test]
fn bad_directories_fail_with_one_line_naming_file_field_and_expectation() {
    let ok = guide_example_text().into_bytes();
    let k = "data.parameters.kinesis";

    assert_fails(
        "malformed JSON",
        &[("bad.json", b"{\n  \"schema\": \n".to_vec())],
        "bad.json",
        "line 3 column 0",
        "expected valid JSON",
    );
    assert_fails(
        "not self-describing",
        &[("bad.json", json!({"enabled": true, "id": "x"}).to_string().into_bytes())],
        "bad.json",
        "schema",
        "expected a self-describing JSON",
    );
    assert_fails(
        "unknown schema",
        &[("a.json", ok.clone()), ("bad.json", example_with(&["schema"], json!("iglu:com.acme/Unknown/avro/1-0-0")))],
        "bad.json",
        "schema",
        "unknown schema iglu:com.acme/Unknown/avro/1-0-0",
    );
    let mut missing = guide_example();
    missing["data"]["parameters"]["kinesis"].as_object_mut().expect("object").remove("streamName");
    assert_fails(
        "missing required field",
        &[("bad.json", missing.to_string().into_bytes())],
        "bad.json",
        &format!("{k}.streamName"),
        "missing required field; expected a string",
    );
    assert_fails(
        "wrong type",
        &[("bad.json", kinesis_field("maxRecords", json!(true)))],
        "bad.json",
        &format!("{k}.maxRecords"),
        "expected a 32-bit integer, found true",
    );
    assert_fails(
        "unknown enum symbol",
        &[("bad.json", kinesis_field("initialPosition", json!("EARLIEST")))],
        "bad.json",
        &format!("{k}.initialPosition"),
        "expected one of \"AT_TIMESTAMP\", \"LATEST\", \"TRIM_HORIZON\", found \"EARLIEST\"",
    );
    for n in [0, 20000] {
        assert_fails(
            &format!("maxRecords {n}"),
            &[("bad.json", kinesis_field("maxRecords", json!(n)))],
            "bad.json",
            &format!("{k}.maxRecords"),
            &format!("expected an integer from 1 to 10000 (the GetRecords limit), found {n}"),
        );
    }
    for modifiers in [json!(null), json!({"timestamp": null})] {
        assert_fails(
            "AT_TIMESTAMP without timestamp",
            &[("bad.json", kinesis_field("initialPositionModifiers", modifiers))],
            "bad.json",
            &format!("{k}.initialPositionModifiers.timestamp"),
            "expected a timestamp (epoch milliseconds), which initialPosition AT_TIMESTAMP needs",
        );
    }
    assert_fails(
        "duplicate ids",
        &[("a.json", ok.clone()), ("b.json", ok.clone())],
        "b.json",
        "data.id",
        "expected ids to be unique, but \"com.acme.MyStreamObserver\" is already the id of",
    );
    let slack = json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
        "data": {"enabled": true, "id": "slack", "parameters": {"sendMessageEnabled": true, "webhookUrl": "https://hooks.slack.com/x"}}});
    assert_fails(
        "no enabled observer",
        &[
            ("slack.json", slack.to_string().into_bytes()),
            ("off.json", example_with(&["data", "enabled"], json!(false))),
        ],
        "",
        "(directory)",
        "expected at least one enabled observer",
    );
    assert_fails(
        "unknown field (a typo)",
        &[("bad.json", kinesis_field("streamname", json!("x")))],
        "bad.json",
        &format!("{k}.streamname"),
        "unknown field; expected one of: region, streamName",
    );
    assert_fails(
        "enabled not a boolean",
        &[("bad.json", example_with(&["data", "enabled"], json!("yes")))],
        "bad.json",
        "data.enabled",
        "expected a boolean",
    );
    assert_fails(
        "id that cannot name a table",
        &[("bad.json", example_with(&["data", "id"], json!("my observer")))],
        "bad.json",
        "data.id",
        "expected 3 to 255 characters",
    );
    let hipchat = json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/HipchatConfig/avro/1-0-0",
        "data": {"enabled": true, "id": "hc", "parameters": {"sendRoomNotificationEnabled": true, "authToken": "t"}}});
    assert_fails(
        "HipChat (retired)",
        &[("a.json", ok.clone()), ("hipchat.json", hipchat.to_string().into_bytes())],
        "hipchat.json",
        "schema",
        "HipChat was retired",
    );
    let mut slack2 = slack.clone();
    slack2["data"]["id"] = json!("slack2");
    assert_fails(
        "two responders for one command type",
        &[
            ("a.json", ok.clone()),
            ("s1.json", slack.to_string().into_bytes()),
            ("s2.json", slack2.to_string().into_bytes()),
        ],
        "s2.json",
        "schema",
        "expected one responder per command type",
    );
    let runtime =
        json!({"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": {"mailboxes": {"shardConsumer": 0}}});
    assert_fails(
        "runtime capacity 0",
        &[("a.json", ok.clone()), ("runtime.json", runtime.to_string().into_bytes())],
        "runtime.json",
        "data.mailboxes.shardConsumer",
        "expected a capacity from 1 to 1000000, found 0",
    );
    for (dedup, field, expected) in [
        (json!({"retentionMillis": 5}), "data.dedup.retentionMillis", "expected milliseconds from 60000"),
        (json!({"maxConcurrentRequests": 0}), "data.dedup.maxConcurrentRequests", "expected 1 to 10000, found 0"),
        (json!({"table": "a b"}), "data.dedup.table", "expected null or a DynamoDB table name"),
    ] {
        let runtime = json!({"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": {"dedup": dedup}});
        assert_fails(
            field,
            &[("a.json", ok.clone()), ("runtime.json", runtime.to_string().into_bytes())],
            "runtime.json",
            field,
            expected,
        );
    }
    // A misspelled `enabled` is an error, not a silently disabled file.
    let mut misspelled = guide_example();
    let data = misspelled["data"].as_object_mut().expect("data");
    data.remove("enabled");
    data.insert("enable".into(), json!(true));
    assert_fails(
        "misspelled enabled",
        &[("a.json", ok.clone()), ("b.json", misspelled.to_string().into_bytes())],
        "b.json",
        "data.enable",
        "unknown field; expected one of: enabled, id, parameters",
    );
    for listen in ["localhost:9404", "127.0.0.1", "9404", ""] {
        let runtime =
            json!({"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": {"http": {"listen": listen}}});
        let (field, expected) = ("data.http.listen", "expected null or an IP address and port to listen on");
        assert_fails(
            field,
            &[("a.json", ok.clone()), ("runtime.json", runtime.to_string().into_bytes())],
            "runtime.json",
            field,
            expected,
        );
    }
    let mut truncated = binary_example(false);
    truncated.truncate(truncated.len() - 8);
    assert_fails("truncated binary Avro", &[("bad.avro", truncated)], "bad.avro", "data", "expected a record of");
}

#[test]
fn missing_or_unreadable_directories_fail() {
    let parent = tempfile::tempdir().expect("tempdir");
    let missing = parent.path().join("nope");
    let (code, out) = validate(&missing);
    assert_ne!(code, 0);
    assert!(
        out.starts_with(&format!("ERROR     {}: (directory): expected a readable config directory", missing.display())),
        "{out}"
    );
    // A file where a directory should be cannot be read as one (tests run as root, so
    // permissions cannot make a directory unreadable here).
    let file = parent.path().join("file.json");
    std::fs::write(&file, "{}").expect("write");
    let (code, out) = validate(&file);
    assert_ne!(code, 0);
    assert!(out.contains("(directory): expected a readable config directory"), "{out}");
}

#[test]
fn example_configs_of_the_repository_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let (code, out) = validate(&dir);
    assert_eq!(code, 0, "{out}");
}

/// What a new user tripped over: each problem said once, on the file it belongs to, and nothing
/// misleading beside it.
#[test]
fn validate_says_each_problem_once_where_it_belongs() {
    let runtime = |data: Value| json!({"schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": data});
    let ok = guide_example_text().into_bytes();

    // An observer file in error: its error, and no "no enabled observer" line beside it.
    let bad_observer = kinesis_field("maxRecords", json!("x"));
    let dir = dir_with(&[("kinesis.json", &bad_observer)]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches("ERROR").count(), 1, "one error:\n{out}");
    assert!(!out.contains("at least one enabled observer"), "nothing misleading:\n{out}");

    // A missing Iglu folder: the runtime file is in ERROR, and not also OK.
    let iglu = runtime(json!({"igluRepositories": ["no-such-folder"]})).to_string().into_bytes();
    let dir = dir_with(&[("kinesis.json", &ok), ("runtime.json", &iglu)]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    let runtime_lines: Vec<&str> = out.lines().filter(|l| l.contains("runtime.json")).collect();
    assert_eq!(runtime_lines.len(), 1, "{out}");
    assert!(runtime_lines[0].starts_with("ERROR") && runtime_lines[0].contains("data.igluRepositories"), "{out}");

    // A dead-letter file in a folder that does not exist fails validate, not the run.
    let dl = runtime(json!({"deadLetters": {"file": "missing/dead.jsonl"}})).to_string().into_bytes();
    let dir = dir_with(&[("kinesis.json", &ok), ("runtime.json", &dl)]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("data.deadLetters.file") && out.contains("is not a folder"), "{out}");

    // A misspelled region: valid, with a warning that suggests the spelling.
    let region = kinesis_field("region", json!("us-eats-1"));
    let dir = dir_with(&[("kinesis.json", &region)]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING") && out.contains("\"us-eats-1\"") && out.contains("did you mean us-east-1"),
        "{out}"
    );
}
