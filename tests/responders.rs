//! The HTTP request each responder makes, against a local server standing in for the service:
//! method, path, auth header, content type and body, for the Iglu example command of each and
//! for one that uses every optional field. Responders are built from config files, as
//! `sauna run` builds them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::http::{FakeHttp, Recorded, Reply};
use sauna::command::{Classified, Command, CommandParser, SchemaRegistry};
use sauna::config::runtime::Endpoints;
use sauna::responders::{Attempt, Responder, ResponderContext};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/commands").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn kinesis_config() -> Value {
    json!({"schema": "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0",
        "data": {"enabled": true, "id": "responders-test", "parameters": {
            "aws": {"accessKeyId": "default", "secretAccessKey": "default"},
            "kinesis": {"region": "us-east-1", "streamName": "s", "maxRecords": 10,
                        "initialPosition": "LATEST", "initialPositionModifiers": null}}}})
}

/// The responders of a config directory holding these files (and an observer).
fn responders(files: &[(&str, Value)]) -> Vec<Arc<dyn Responder>> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kinesis.json"), kinesis_config().to_string()).expect("write");
    for (name, v) in files {
        std::fs::write(dir.path().join(name), v.to_string()).expect("write");
    }
    sauna::config_dir::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")).responders
}

/// The fixture as read one second after its `whenCreated`: its time to live (an hour, a day)
/// must not depend on the day the tests run.
fn command(v: &Value, responder: &Arc<dyn Responder>) -> Command {
    let parser = CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![responder.criteria()]);
    let created = v["data"]["envelope"]["data"]["whenCreated"].as_str().expect("fixture has whenCreated");
    let read_at = chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339").with_timezone(&chrono::Utc)
        + chrono::Duration::seconds(1);
    match parser.classify(v.to_string().as_bytes(), read_at) {
        Classified::Routable { command, .. } => (*command).clone(),
        other => panic!("not routable: {other:?}"),
    }
}

fn context(server: &FakeHttp) -> ResponderContext {
    ResponderContext::new(
        Endpoints {
            pager_duty_events_url: server.url("/generic/2010-04-15/create_event.json"),
            sendgrid_api_url: server.url(""),
        },
        Duration::from_secs(5),
    )
}

/// Runs one attempt and returns the one request it made.
async fn one_request(responder: &Arc<dyn Responder>, fixture: &Value, server: &FakeHttp) -> (Attempt, Recorded) {
    let before = server.count();
    let cmd = command(fixture, responder);
    let attempt = responder.execute(&cmd, &context(server)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), before + 1, "exactly one request");
    (attempt, requests[before].clone())
}

fn data(fixture: &Value) -> Value {
    fixture["data"]["command"]["data"].clone()
}

#[tokio::test]
async fn slack_posts_the_message_to_the_webhook_as_it_stands() {
    let server = FakeHttp::start();
    let slack = &responders(&[(
        "slack.json",
        json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "slack", "parameters": {"sendMessageEnabled": true,
                     "webhookUrl": server.url("/services/T000/B000/XXXX")}}}),
    )])[0];
    for name in ["slack.json", "slack-full.json"] {
        let f = fixture(name);
        let (attempt, r) = one_request(slack, &f, &server).await;
        assert_eq!(attempt, Attempt::Done("HTTP 200".into()));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/services/T000/B000/XXXX"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), None, "the webhook URL is the credential");
        assert_eq!(r.json(), data(&f), "{name}: every field, attachments included, passed through");
    }
    assert!(!format!("{slack:?}").contains("XXXX"), "the webhook URL never shows in Debug");
}

#[tokio::test]
async fn pagerduty_sends_trigger_and_resolve_events_to_the_events_api() {
    let server = FakeHttp::start();
    let pd = &responders(&[(
        "pagerduty.json",
        json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/PagerDutyConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "pagerduty", "parameters": {"createEventEnabled": true}}}),
    )])[0];
    for name in ["pagerduty.json", "pagerduty-full.json", "pagerduty-resolve.json"] {
        let f = fixture(name);
        let (attempt, r) = one_request(pd, &f, &server).await;
        assert_eq!(attempt, Attempt::Done("HTTP 200".into()));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/generic/2010-04-15/create_event.json"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), data(&f), "{name}: the event as the command gives it (contexts included)");
    }
    // The Events API answers 403 when the service key is throttled: retried, not failed.
    server.behave(|_, _| Reply::status(403));
    let (attempt, _) = one_request(pd, &fixture("pagerduty.json"), &server).await;
    assert!(matches!(attempt, Attempt::Retry { .. }), "{attempt:?}");
}

#[tokio::test]
async fn sendgrid_sends_every_field_to_v3_mail_send_with_the_bearer_key() {
    let server = FakeHttp::start();
    server.behave(|_, _| Reply::status(202));
    let sg = &responders(&[(
        "sendgrid.json",
        json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/SendgridConfig/avro/1-0-1",
            "data": {"enabled": true, "id": "sendgrid", "parameters": {"recipientsEnabled": false,
                     "emailsEnabled": true, "apiKeyId": "SG.secret-key"}}}),
    )])[0];
    for name in ["sendgrid.json", "sendgrid-full.json"] {
        let f = fixture(name);
        let (attempt, r) = one_request(sg, &f, &server).await;
        assert_eq!(attempt, Attempt::Done("HTTP 202".into()));
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v3/mail/send"));
        assert_eq!(r.header("authorization"), Some("Bearer SG.secret-key"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), data(&f), "{name}: every field, attachments included");
    }
    assert!(!format!("{sg:?}").contains("SG.secret-key"));
}

#[tokio::test]
async fn the_webhook_sends_what_its_config_says() {
    let server = FakeHttp::start();
    let all = responders(&[
        (
            "hook.json",
            json!({"schema": "iglu:rs.sauna.responders/WebhookConfig/avro/1-0-0",
                "data": {"enabled": true, "id": "hook", "parameters": {
                    "url": server.url("/hooks/sauna?source=kinesis"), "method": "PUT",
                    "headers": {"X-Api-Key": "k-123"}, "timeoutMillis": 2000,
                    "commands": ["iglu:com.slack.sauna.commands/send_message/jsonschema/1-*-*"], "body": "COMMAND"}}}),
        ),
        (
            "data-hook.json",
            json!({"schema": "iglu:rs.sauna.responders/WebhookConfig/avro/1-0-0",
                "data": {"enabled": true, "id": "data-hook", "parameters": {
                    "url": server.url("/data"),
                    "commands": ["iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*"], "body": "DATA"}}}),
        ),
    ]);
    let by_id = |id: &str| all.iter().find(|r| r.id() == id).expect("responder").clone();
    let (hook, data_hook) = (by_id("hook"), by_id("data-hook"));
    let f = fixture("slack.json");
    let (attempt, r) = one_request(&hook, &f, &server).await;
    assert_eq!(attempt, Attempt::Done("HTTP 200".into()));
    assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/hooks/sauna?source=kinesis"));
    assert_eq!(r.header("x-api-key"), Some("k-123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("sauna-command-id"), Some("9dadfc92-9311-43c7-9cee-61ab590a6e81"));
    assert_eq!(r.header("sauna-command-schema"), Some("iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0"));
    assert_eq!(
        r.json(),
        json!({"schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0", "data": data(&f)})
    );
    assert!(!format!("{hook:?}").contains("k-123"), "header values are secrets");

    let f = fixture("pagerduty.json");
    let (_, r) = one_request(&data_hook, &f, &server).await;
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/data"));
    assert_eq!(r.json(), data(&f));
}

#[tokio::test]
async fn answers_are_classified_the_same_for_every_responder() {
    let server = FakeHttp::start();
    let slack = &responders(&[(
        "slack.json",
        json!({"schema": "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "slack", "parameters": {"sendMessageEnabled": true,
                     "webhookUrl": server.url("/hook")}}}),
    )])[0];
    let f = fixture("slack.json");
    for (status, retry) in [(500, true), (503, true), (429, true), (408, true), (400, false), (404, false)] {
        server.behave(move |_, _| Reply::status(status).header("Retry-After", "3"));
        let (attempt, _) = one_request(slack, &f, &server).await;
        match (attempt, retry) {
            (Attempt::Retry { retry_after, .. }, true) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
            (Attempt::Fail(reason), false) => assert!(reason.starts_with(&format!("HTTP {status}")), "{reason}"),
            (other, _) => panic!("HTTP {status}: {other:?}"),
        }
    }
}
