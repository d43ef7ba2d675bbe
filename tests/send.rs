//! `sauna send` as a real process against the emulators: 10,000 commands from a file onto the
//! stream and then actioned once each by `sauna run`; an invalid line that stops the whole send;
//! PutRecords answers that refuse some entries (a [`FaultProxy`] rule, since no emulator
//! throttles) and whole calls throttled, each retried by sauna itself; a final refusal reported.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::http::FakeHttp;
use common::kinesis::{TestStream, slack_command, texts};
use common::proxy::{Fault, FaultProxy, Kind, Rule};
use common::sauna::{ConfigDir, Sauna, fast_runtime};
use serde_json::{Value, json};
use uuid::Uuid;

const SLACK: &str = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0";

/// `sauna send --config-dir DIR ARGS…` with extra environment variables.
async fn send(config: &ConfigDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
        .arg("send")
        .arg("--config-dir")
        .arg(config.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("sauna send runs");
    println!(
        "sauna send {args:?}: {}\nstdout: {}stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A command's schema and data alone: `send` writes its envelope.
fn bare(text: &str, channel: &str) -> String {
    json!({ "schema": SLACK, "data": { "text": text, "channel": channel } }).to_string()
}

fn write_lines(config: &ConfigDir, lines: &[String]) -> PathBuf {
    let path = config.path().join("commands.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the commands");
    path
}

fn config(stream: &TestStream, slack: &FakeHttp) -> ConfigDir {
    ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/slack"), &fast_runtime())
}

/// The Sauna commands on the stream, parsed, with their partition keys.
async fn commands_on(stream: &TestStream) -> Vec<(String, Value)> {
    stream
        .records()
        .await
        .iter()
        .map(|r| {
            (
                r.partition_key().unwrap_or_default().to_owned(),
                serde_json::from_slice(r.data().as_ref()).expect("JSON on the stream"),
            )
        })
        .collect()
}

fn text_of(command: &Value) -> String {
    command["data"]["command"]["data"]["text"].as_str().expect("a text").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_commands_from_a_file_are_on_the_stream_and_actioned_once_each() {
    const N: usize = 10_000;
    let stream = TestStream::create("send-10k", 4).await;
    let slack = FakeHttp::start();
    let config = config(&stream, &slack);
    // Even lines: full commands as a producer writes them; odd lines: schema and data alone.
    let lines: Vec<String> = (0..N)
        .map(|i| {
            let text = format!("c{i}");
            if i % 2 == 0 {
                String::from_utf8(slack_command(&Uuid::new_v4(), &text)).expect("UTF-8")
            } else {
                bare(&text, "#ops")
            }
        })
        .collect();
    let file = write_lines(&config, &lines);
    let started = std::time::Instant::now();
    let out = send(&config, &["--ttl", "1h", "--tag", "source=send-test", file.to_str().expect("path")], &[]).await;
    println!("sent {N} commands in {:?}", started.elapsed());
    assert!(out.status.success());
    assert!(stdout(&out).contains(&format!("{N} sent, 0 rejected, 0 retried, in 20 PutRecords calls")));

    let on_stream = commands_on(&stream).await;
    assert_eq!(on_stream.len(), N);
    let distinct: HashSet<String> = on_stream.iter().map(|(_, c)| text_of(c)).collect();
    assert_eq!(distinct.len(), N);
    for (key, c) in &on_stream {
        let i: usize = text_of(c).trim_start_matches('c').parse().expect("an index");
        let envelope = &c["data"]["envelope"]["data"];
        assert_eq!(key, envelope["commandId"].as_str().expect("an id"), "the default partition key");
        if i % 2 == 1 {
            assert_eq!(envelope["execution"]["timeToLive"], 3_600_000);
            assert_eq!(envelope["tags"], json!({ "source": "send-test" }));
        } else {
            assert_eq!(envelope["whenCreated"], "2026-01-01T00:00:00Z", "a full command is sent as written");
            assert_eq!(envelope["tags"], json!({}));
        }
    }

    let sauna = Sauna::start(&config, "run-after-send");
    slack.wait_for(N, Duration::from_secs(300));
    slack.wait_quiet(Duration::from_secs(2), Duration::from_secs(60));
    let received = texts(&slack.requests());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &received {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    assert_eq!(received.len(), N, "{} deliveries", received.len());
    assert_eq!(counts.len(), N);
    assert!(counts.values().all(|&c| c == 1));
    drop(sauna);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_line_sends_nothing_and_is_named() {
    let stream = TestStream::create("send-invalid", 2).await;
    let slack = FakeHttp::start();
    let config = config(&stream, &slack);
    let lines = vec![
        bare("one", "#ops"),
        String::from_utf8(slack_command(&Uuid::new_v4(), "two")).expect("UTF-8"),
        format!("{{\"schema\": \"{SLACK}\", \"data\": {{\"text\": \"three\""),
        bare("four", "#ops"),
        json!({ "schema": SLACK, "data": { "text": 5 } }).to_string(),
    ];
    let file = write_lines(&config, &lines);
    let out = send(&config, &[file.to_str().expect("path")], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error: line 3: not JSON"), "{err}");
    assert!(err.contains("error: line 5: data.text: value is not of type \"string\""), "{err}");
    assert!(!err.contains("line 1:") && !err.contains("line 2:") && !err.contains("line 4:"));
    assert!(err.contains("2 invalid lines"), "{err}");
    assert!(err.contains(&format!("nothing was sent to stream {}", stream.name)), "{err}");
    assert!(stdout(&out).is_empty());
    assert!(stream.records().await.is_empty(), "the stream stays empty");

    // The valid lines alone, from standard input.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
        .args(["send", "--config-dir"])
        .arg(config.path())
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sauna send runs");
    let valid = [&lines[0], &lines[1], &lines[3]].map(String::as_str).join("\n");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, valid.as_bytes()).await.expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().await.expect("sauna send ends");
    assert!(out.status.success());
    assert!(stdout(&out).contains("3 sent, 0 rejected, 0 retried, in 1 PutRecords call\n"), "{}", stdout(&out));
    let texts: HashSet<String> = commands_on(&stream).await.iter().map(|(_, c)| text_of(c)).collect();
    assert_eq!(texts, ["one", "two", "four"].map(str::to_owned).into());
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_a_put_records_refused_are_retried_by_sauna() {
    let stream = TestStream::create("send-partial", 2).await;
    let slack = FakeHttp::start();
    let config = config(&stream, &slack);
    let proxy = FaultProxy::start(&common::emulators().kinesis);
    // Four answers in a row refuse the call's first 50 entries: the first call's 50, then the
    // same 50 three times more; the fifth attempt puts them.
    proxy.inject(Rule::on(&["PutRecords"], Fault::FailEntries(50)).times(4));
    let lines: Vec<String> = (0..1000).map(|i| bare(&format!("c{i}"), &format!("#c{}", i % 7))).collect();
    let file = write_lines(&config, &lines);
    let env = [("AWS_ENDPOINT_URL_KINESIS", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = send(&config, &["--partition-key", "channel", file.to_str().expect("path")], &env).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("1000 sent, 0 rejected, 50 retried, in 6 PutRecords calls"), "{}", stdout(&out));
    assert_eq!(proxy.injected_count(Kind::FailEntries), 4);
    assert_eq!(proxy.forwarded("PutRecords"), 3, "calls wholly refused reach no stream");

    let on_stream = commands_on(&stream).await;
    assert_eq!(on_stream.len(), 1000, "each once: the refused entries never reached the stream");
    let distinct: HashSet<String> = on_stream.iter().map(|(_, c)| text_of(c)).collect();
    assert_eq!(distinct.len(), 1000);
    for (key, c) in &on_stream {
        assert_eq!(key, c["data"]["command"]["data"]["channel"].as_str().expect("a channel"), "--partition-key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_calls_throttled_past_the_sdk_retries_are_retried_by_sauna() {
    let stream = TestStream::create("send-throttle", 2).await;
    let slack = FakeHttp::start();
    let config = config(&stream, &slack);
    let proxy = FaultProxy::start(&common::emulators().kinesis);
    // Five throttles: more than the SDK's own three attempts of one call.
    proxy.inject(Rule::on(&["PutRecords"], Fault::Throttle).times(5));
    let lines: Vec<String> = (0..600).map(|i| bare(&format!("c{i}"), "#ops")).collect();
    let file = write_lines(&config, &lines);
    let env = [("AWS_ENDPOINT_URL_KINESIS", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = send(&config, &[file.to_str().expect("path")], &env).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("600 sent, 0 rejected, 500 retried, in 3 PutRecords calls"), "{}", stdout(&out));
    assert_eq!(proxy.injected_count(Kind::Throttle), 5);
    let distinct: HashSet<String> = commands_on(&stream).await.iter().map(|(_, c)| text_of(c)).collect();
    assert_eq!(distinct.len(), 600);
    assert_eq!(stream.records().await.len(), 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_refused_at_every_attempt_are_reported_and_fail_the_send() {
    let stream = TestStream::create("send-refused", 1).await;
    let slack = FakeHttp::start();
    let config = config(&stream, &slack);
    let proxy = FaultProxy::start(&common::emulators().kinesis);
    proxy.inject(Rule::on(&["PutRecords"], Fault::FailEntries(10)));
    let lines: Vec<String> = (0..100).map(|i| bare(&format!("c{i}"), "#ops")).collect();
    let file = write_lines(&config, &lines);
    let env = [("AWS_ENDPOINT_URL_KINESIS", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = send(&config, &["--max-attempts", "3", file.to_str().expect("path")], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("90 sent, 10 rejected, 10 retried, in 3 PutRecords calls"), "{}", stdout(&out));
    let err = stderr(&out);
    for line in 1..=10 {
        assert!(
            err.contains(&format!(
                "error: line {line}: not put after 3 attempts: ProvisionedThroughputExceededException"
            )),
            "{err}"
        );
    }
    let on_stream: HashSet<String> = commands_on(&stream).await.iter().map(|(_, c)| text_of(c)).collect();
    assert_eq!(on_stream, (10..100).map(|i| format!("c{i}")).collect::<HashSet<_>>());
}

#[test]
fn several_observers_need_observer_and_an_unknown_one_is_listed() {
    let slack = FakeHttp::start();
    let config = ConfigDir::new("send-stream-a", "LATEST", None, &slack.url("/slack"), &fast_runtime());
    let mut second: Value =
        serde_json::from_slice(&std::fs::read(config.path().join("kinesis.json")).expect("read")).expect("JSON");
    second["data"]["id"] = json!("second-app");
    second["data"]["parameters"]["kinesis"]["streamName"] = json!("send-stream-b");
    config.write("kinesis2.json", &second);
    let file = write_lines(&config, &[bare("x", "#ops")]);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
            .args(["send", "--config-dir"])
            .arg(config.path())
            .args(args)
            .arg(&file)
            .output()
            .expect("sauna send runs")
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("enables 2 observers; choose the stream with --observer ID"), "{err}");
    assert!(
        err.contains("send-stream-a-app (stream send-stream-a)") && err.contains("second-app (stream send-stream-b)")
    );
    let out = run(&["--observer", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no enabled observer with id \"nope\""));
    let out = run(&["--ttl", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
