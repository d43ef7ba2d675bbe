//! Outcomes end to end through `sauna run` on a stream: retries (500, 429 + Retry-After, a
//! server that never answers), permanent failures (400), dead letters to a file and to another
//! Kinesis stream, the DynamoDB outcome log, and a stalled responder that must not hold up
//! another responder's commands on the same shard.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::http::{FakeHttp, Reply};
use common::kinesis::{TestStream, checkpoints, command, slack_command};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::{Value, json};
use uuid::Uuid;

fn last_seq(puts: &[common::kinesis::Put]) -> String {
    puts.iter().map(|p| p.seq.clone()).max_by(|a, b| (a.len(), a).cmp(&(b.len(), b))).expect("puts")
}

async fn wait_checkpoint(stream: &TestStream, table: &str, seq: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let cps = checkpoints(&stream.clients, table).await;
        if cps.values().any(|c| c == seq) {
            return;
        }
        assert!(start.elapsed() < timeout, "checkpoint {seq} not reached: {cps:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every record of a (one-shard) stream.
async fn read_all(stream: &TestStream) -> Vec<Vec<u8>> {
    let shard = stream.shards().await[0].shard_id().to_owned();
    let mut it = stream
        .clients
        .kinesis
        .get_shard_iterator()
        .stream_name(&stream.name)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let mut out = vec![];
    loop {
        let r = stream.clients.kinesis.get_records().shard_iterator(&it).send().await.expect("GetRecords");
        if r.records().is_empty() {
            return out;
        }
        out.extend(r.records().iter().map(|rec| rec.data().as_ref().to_vec()));
        match r.next_shard_iterator() {
            Some(n) => it = n.to_owned(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_failures_dead_letters_and_the_outcome_log_end_to_end() {
    let stream = TestStream::create("outcomes", 1).await;
    let dlq = TestStream::create("dlq", 1).await;
    let slack = FakeHttp::start();
    // Each command's text says how the stand-in for Slack answers it, attempt by attempt.
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let a = attempts.clone();
    slack.behave(move |r, _| {
        let text = r.json()["text"].as_str().unwrap_or_default().to_owned();
        let n = {
            let mut a = a.lock().expect("lock");
            let n = a.entry(text.clone()).or_default();
            *n += 1;
            *n
        };
        match (text.as_str(), n) {
            ("flaky", 1) => Reply::status(500),
            ("bad", _) => Reply::status(400),
            ("busy", 1) => Reply::status(429).header("Retry-After", "2"),
            ("silent", _) => Reply::ok().after(Duration::from_secs(5)),
            _ => Reply::ok(),
        }
    });
    let mut runtime = fast_runtime();
    merge(
        &mut runtime,
        &json!({
            // Retry-After is honoured up to maxBackoffMillis (above it, capped: a unit test of the
            // responder actor shows that).
            "retry": { "maxAttempts": 3, "initialBackoffMillis": 100, "maxBackoffMillis": 2500, "requestTimeoutMillis": 800 },
            "deadLetters": { "file": "dead-letters.jsonl", "stream": dlq.name }
        }),
    );
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    let outcome_table = common::unique_name("outcomes");
    config.write(
        "logger.json",
        &json!({"schema": "iglu:com.snowplowanalytics.sauna.loggers/AmazonDynamodbConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "outcome-log", "parameters": {"awsRegion": "us-east-1",
                     "awsAccessKeyId": "default", "awsSecretAccessKey": "default", "dynamodbTableName": outcome_table}}}),
    );

    let pagerduty = command(
        &Uuid::new_v4(),
        "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
        json!({"service_key": "k", "event_type": "trigger", "description": "no PagerDuty responder here"}),
        None,
        "2026-01-01T00:00:00Z",
    );
    let expired = command(
        &Uuid::new_v4(),
        "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
        json!({"text": "too late"}),
        Some(1000),
        "2020-01-01T00:00:00Z",
    );
    let records: Vec<(String, Vec<u8>)> = vec![
        ("k-ok".into(), slack_command(&Uuid::new_v4(), "ok")),
        ("k-flaky".into(), slack_command(&Uuid::new_v4(), "flaky")),
        ("k-bad".into(), slack_command(&Uuid::new_v4(), "bad")),
        ("k-busy".into(), slack_command(&Uuid::new_v4(), "busy")),
        ("k-silent".into(), slack_command(&Uuid::new_v4(), "silent")),
        ("k-invalid".into(), vec![0xff, b'{', 0x00]),
        ("k-unroutable".into(), pagerduty),
        ("k-expired".into(), expired),
    ];
    let puts = stream.put(records.clone()).await;
    let mut sauna = Sauna::start(&config, "outcomes");
    wait_checkpoint(&stream, &config.observer_id, &last_seq(&puts), Duration::from_secs(30)).await;
    // The outcome log writes its rows in batches: give it a moment before the stop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());

    // Attempts per command: 200 once; 500 then 200; 400 once; 429 then 200; never answering: all 3.
    let counts = attempts.lock().expect("lock").clone();
    let expected: HashMap<String, u32> =
        [("ok", 1), ("flaky", 2), ("bad", 1), ("busy", 2), ("silent", 3)].map(|(k, v)| (k.to_owned(), v)).into();
    assert_eq!(counts, expected);
    let busy: Vec<Instant> = slack.requests().iter().filter(|r| r.json()["text"] == "busy").map(|r| r.at).collect();
    let waited = busy[1].duration_since(busy[0]);
    println!("429 with Retry-After: 2 -> retried after {waited:?}");
    assert!(waited >= Duration::from_secs(2), "Retry-After honoured: {waited:?}");

    // Outcomes in the log: once per record, with attempts.
    let log = sauna.log_text();
    let line = |text: &str| -> String {
        let id = String::from_utf8_lossy(&records.iter().find(|(k, _)| k == &format!("k-{text}")).expect("record").1)
            .split("\"commandId\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(str::to_owned)
            .expect("commandId");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("sauna::outcome") && l.contains(&id)).collect();
        assert_eq!(lines.len(), 1, "one outcome line for {text}: {lines:?}");
        lines[0].to_owned()
    };
    assert!(line("ok").contains("] done ") && line("ok").contains("attempts=1"));
    assert!(line("flaky").contains("] done ") && line("flaky").contains("attempts=2"));
    assert!(line("busy").contains("] done ") && line("busy").contains("attempts=2"));
    assert!(
        line("bad").contains("] failed ") && line("bad").contains("attempts=1") && line("bad").contains("HTTP 400")
    );
    let silent = line("silent");
    assert!(silent.contains("] failed ") && silent.contains("attempts=3") && silent.contains("timed out"), "{silent}");

    // Dead letters: each failed, invalid, unroutable and expired record exactly once, in the file
    // and in the stream, with its original bytes and reason.
    let file = std::fs::read_to_string(config.path().join("dead-letters.jsonl")).expect("dead-letter file");
    let letters: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let by_key: HashMap<String, &Value> =
        letters.iter().map(|l| (l["partitionKey"].as_str().expect("key").to_owned(), l)).collect();
    assert_eq!(letters.len(), 5, "{file}");
    assert_eq!(
        by_key.keys().cloned().collect::<HashSet<_>>(),
        ["k-bad", "k-silent", "k-invalid", "k-unroutable", "k-expired"].map(str::to_owned).into()
    );
    for (key, outcome, reason, attempts) in [
        ("k-bad", "failed", "HTTP 400", 1),
        ("k-silent", "failed", "gave up after 3 attempts", 3),
        ("k-invalid", "invalid", "record data: not UTF-8", 0),
        ("k-unroutable", "unroutable", "no enabled responder takes", 0),
        ("k-expired", "expired", "expired", 0),
    ] {
        let l = by_key[key];
        assert_eq!(l["outcome"], outcome, "{l}");
        assert!(l["reason"].as_str().expect("reason").contains(reason), "{l}");
        assert_eq!(l["attempts"], attempts, "{l}");
        let put = puts.iter().find(|p| p.key == key).expect("put");
        assert_eq!(
            (l["shard"].as_str(), l["sequenceNumber"].as_str()),
            (Some(put.shard.as_str()), Some(put.seq.as_str()))
        );
        let original = &records.iter().find(|(k, _)| k == key).expect("record").1;
        let data = base64::engine::general_purpose::STANDARD.decode(l["data"].as_str().expect("data")).expect("base64");
        assert_eq!(&data, original, "the original bytes");
    }
    let in_stream: Vec<Value> =
        read_all(&dlq).await.iter().map(|b| serde_json::from_slice(b).expect("JSON record")).collect();
    assert_eq!(in_stream.len(), 5);
    assert_eq!(
        in_stream.iter().collect::<HashSet<_>>(),
        letters.iter().collect::<HashSet<_>>(),
        "file and stream agree"
    );

    // The outcome log: one row per command.
    let rows = stream.clients.dynamodb.scan().table_name(&outcome_table).send().await.expect("outcome table");
    let statuses: HashMap<String, String> = rows
        .items()
        .iter()
        .map(|r| {
            let sq = r["sequenceNumber"].as_s().expect("S").clone();
            let key = puts.iter().find(|p| p.seq == sq).map(|p| p.key.clone()).unwrap_or(sq);
            (key, r["status"].as_s().expect("S").clone())
        })
        .collect();
    println!("outcome log rows: {statuses:?}");
    assert_eq!(rows.items().len(), 8, "one row per command");
    for (k, s) in [
        ("k-ok", "done"),
        ("k-flaky", "done"),
        ("k-busy", "done"),
        ("k-bad", "failed"),
        ("k-silent", "failed"),
        ("k-invalid", "invalid"),
        ("k-unroutable", "unroutable"),
        ("k-expired", "expired"),
    ] {
        assert_eq!(statuses.get(k).map(String::as_str), Some(s), "{k}");
    }
    let ok_row =
        rows.items().iter().find(|r| r["status"].as_s().ok().map(String::as_str) == Some("done")).expect("row");
    for attribute in ["uid", "name", "commandId", "responder", "status", "description", "time", "lastModified"] {
        assert!(ok_row.contains_key(attribute), "{attribute} in {ok_row:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_responder_does_not_hold_up_another_responders_commands_on_the_same_shard() {
    const STALL: Duration = Duration::from_secs(30);
    const IN_FLIGHT: usize = 10;
    let stream = TestStream::create("stall", 1).await;
    let server = FakeHttp::start();
    server.behave(|r, _| if r.path == "/slack" { Reply::ok().after(STALL) } else { Reply::ok() });
    let mut runtime = fast_runtime();
    merge(
        &mut runtime,
        &json!({ "retrieval": { "maxInFlightPerShard": IN_FLIGHT },
                 "retry": { "maxAttempts": 1, "requestTimeoutMillis": 40000 } }),
    );
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &server.url("/slack"), &runtime);
    config.write(
        "webhook.json",
        &json!({"schema": "iglu:rs.sauna.responders/WebhookConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "hook", "parameters": {"url": server.url("/hook"),
                     "commands": ["iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*"]}}}),
    );
    let mut records: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("slack-{i}"), slack_command(&Uuid::new_v4(), &format!("stalled {i}")))).collect();
    for i in 0..40 {
        records.push((
            format!("pd-{i}"),
            command(
                &Uuid::new_v4(),
                "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
                json!({"service_key": "k", "event_type": "trigger", "description": format!("event {i}")}),
                None,
                "2026-01-01T00:00:00Z",
            ),
        ));
    }
    let puts = stream.put(records).await;
    let mut sauna = Sauna::start(&config, "stall");
    let requests = server.wait_for(43, Duration::from_secs(20));
    let first_slack = requests.iter().filter(|r| r.path == "/slack").map(|r| r.at).min().expect("slack");
    let last_hook = requests.iter().filter(|r| r.path == "/hook").map(|r| r.at).max().expect("hook");
    let delay = last_hook.saturating_duration_since(first_slack);
    println!(
        "3 Slack commands stalled for {STALL:?}; the 40 webhook commands behind them on the same shard were all delivered {delay:?} after the first stalled one (in-flight bound {IN_FLIGHT})"
    );
    assert!(delay < Duration::from_secs(5), "held up by the stalled responder: {delay:?}");
    // The stalled ones end when the server answers; then the checkpoint passes everything.
    wait_checkpoint(&stream, &config.observer_id, &last_seq(&puts), STALL + Duration::from_secs(15)).await;
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    let log = sauna.log_text();
    assert_eq!(log.lines().filter(|l| l.contains("sauna::outcome") && l.contains("] done ")).count(), 43);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stdout_responder_prints_one_json_line_per_command() {
    let stream = TestStream::create("stdout", 1).await;
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/unused", &fast_runtime());
    config.write(
        "stdout.json",
        &json!({"schema": "iglu:rs.sauna.responders/StdoutConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "print", "parameters": {
                "commands": ["iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-*-*"]}}}),
    );
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let puts = stream
        .put(
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    let data =
                        json!({"service_key": "k", "event_type": "trigger", "description": format!("event {i}")});
                    let cmd = command(
                        id,
                        "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
                        data,
                        None,
                        "2026-01-01T00:00:00+02:00",
                    );
                    ("same-key".to_owned(), cmd)
                })
                .collect(),
        )
        .await;
    let mut sauna = Sauna::start_capturing_stdout(&config, "stdout");
    wait_checkpoint(&stream, &config.observer_id, &last_seq(&puts), Duration::from_secs(20)).await;
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    let out = std::fs::read_to_string(config.path().join("stdout.out")).expect("stdout");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, (line, id)) in lines.iter().zip(&ids).enumerate() {
        assert_eq!(line["commandId"], id.to_string(), "in order");
        assert_eq!(line["schema"], "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0");
        assert_eq!(line["data"]["description"], format!("event {i}"));
        assert_eq!(line["whenCreated"], "2026-01-01T00:00:00+02:00");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_slack_responder_keeps_to_its_pace_and_holds_up_no_other_responder() {
    let stream = TestStream::create("rate", 1).await;
    let server = FakeHttp::start();
    // Slack's side: after a burst of two (and the one the burst's refill allows), a message
    // within 400 ms of the one before gets a 429.
    let seen: Arc<Mutex<Vec<Instant>>> = Default::default();
    let s = seen.clone();
    server.behave(move |r, _| {
        if r.path != "/slack" {
            return Reply::ok();
        }
        let mut seen = s.lock().expect("lock");
        seen.push(r.at);
        let n = seen.len();
        let too_fast = n > 3 && r.at.duration_since(seen[n - 2]) < Duration::from_millis(400);
        if too_fast { Reply::status(429) } else { Reply::ok() }
    });
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "rateLimits": { "slack": { "perSecond": 2, "burst": 2 } } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &server.url("/slack"), &runtime);
    config.write(
        "webhook.json",
        &json!({"schema": "iglu:rs.sauna.responders/WebhookConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "hook", "parameters": {"url": server.url("/hook"),
                     "commands": ["iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*"]}}}),
    );
    let mut records = vec![];
    for i in 0..20 {
        records.push((format!("slack-{i}"), slack_command(&Uuid::new_v4(), &format!("paced {i}"))));
        records.push((
            format!("pd-{i}"),
            command(
                &Uuid::new_v4(),
                "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
                json!({"service_key": "k", "event_type": "trigger", "description": format!("event {i}")}),
                None,
                "2026-01-01T00:00:00Z",
            ),
        ));
    }
    stream.put(records).await;
    let mut sauna = Sauna::start(&config, "rate");
    let requests = server.wait_for(40, Duration::from_secs(40));
    let slack: Vec<_> = requests.iter().filter(|r| r.path == "/slack").map(|r| r.at).collect();
    let hooks: Vec<_> = requests.iter().filter(|r| r.path == "/hook").map(|r| r.at).collect();
    // After the burst (two at once, then the third half a second after the first).
    let gaps: Vec<Duration> = slack.windows(2).skip(2).map(|w| w[1] - w[0]).collect();
    let slack_span = slack[slack.len() - 1] - slack[0];
    let hook_span = hooks.iter().max().copied().expect("hooks") - slack[0];
    println!(
        "rateLimit 2/s burst 2: 20 Slack commands over {slack_span:?} (smallest gap after the burst {:?}); the 20 webhook commands on the same shard all delivered {hook_span:?} after the first Slack one",
        gaps.iter().min()
    );
    assert_eq!(slack.len(), 20, "one request per Slack command: no 429, nothing retried");
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(450)), "at most 2 a second after the burst: {gaps:?}");
    assert!(hook_span < Duration::from_secs(3), "the webhook responder is not slowed: {hook_span:?}");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}
