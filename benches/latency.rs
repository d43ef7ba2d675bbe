//! Latency benchmark: put → action, polling against enhanced fan-out.
//!
//! A producer puts 800 commands at a steady 100 per second on a 2-shard kinesis-mock stream
//! while the observer (in this process) reads it; a responder notes, for each command, how long
//! after its put it was actioned. Run once by polling with the default
//! `idleTimeBetweenReadsMillis` (1000) and once by fan-out (`SubscribeToShard`), each with a
//! stream of its own, and the p50 / p99 / max of each are printed.
//!
//! What bounds each here: polling waits up to the idle time between reads of a caught-up shard;
//! kinesis-mock pushes a subscription's events once a second (the real service pushes within
//! tens of milliseconds), so on the emulator both are bound by about a second.
//!
//! Run: `scripts/bench.sh --bench latency`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use sauna::command::Command;
use sauna::iglu::SchemaCriterion;
use sauna::responders::{Attempt, AttemptFuture, Responder, ResponderContext};
use serde_json::json;

const SHARDS: i32 = 2;
const COMMANDS: usize = 800;
const PER_TICK: usize = 10;
const TICK: Duration = Duration::from_millis(100);

/// When this process started measuring: put times are written into the commands relative to it.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Notes how long after its put each command was actioned.
#[derive(Debug, Default)]
struct Stopwatch {
    latencies: Mutex<Vec<Duration>>,
}

impl Responder for Stopwatch {
    fn id(&self) -> &str {
        "stopwatch"
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")]
    }

    fn execute<'a>(&'a self, command: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
        let now = origin().elapsed();
        let put_at = command.data.to_value()["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("put at "))
            .and_then(|m| m.parse().ok());
        if let Some(micros) = put_at {
            let latency = now.saturating_sub(Duration::from_micros(micros));
            self.latencies.lock().unwrap_or_else(|p| p.into_inner()).push(latency);
        }
        Box::pin(async { Attempt::Done("noted".into()) })
    }
}

fn command(put_at: Duration) -> Vec<u8> {
    json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {
                "schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {
                    "commandId": uuid::Uuid::new_v4().to_string(),
                    "whenCreated": "2026-11-26T10:00:00Z",
                    "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": null },
                    "tags": {}
                }
            },
            "command": {
                "schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                "data": { "channel": "#ops", "username": "sauna-bench", "text": format!("put at {}", put_at.as_micros()) }
            }
        }
    })
    .to_string()
    .into_bytes()
}

async fn put(client: &aws_sdk_kinesis::Client, stream: &str, n: usize) {
    let entries: Vec<_> = (0..n)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}-{}", uuid::Uuid::new_v4()))
                .data(Blob::new(command(origin().elapsed())))
                .build()
                .expect("entry")
        })
        .collect();
    let out = client.put_records().stream_name(stream).set_records(Some(entries)).send().await.expect("PutRecords");
    assert_eq!(out.failed_record_count(), Some(0), "every record put");
}

async fn create_stream(client: &aws_sdk_kinesis::Client) -> String {
    let stream = format!("latency-{}", uuid::Uuid::new_v4().simple());
    client.create_stream().stream_name(&stream).shard_count(SHARDS).send().await.expect("CreateStream");
    loop {
        let d = client.describe_stream_summary().stream_name(&stream).send().await.expect("describe");
        if d.stream_description_summary().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// p50, p99 and max of one mode.
async fn measure(client: &aws_sdk_kinesis::Client, mode: &str) -> [Duration; 3] {
    let stream = create_stream(client).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, v: serde_json::Value| std::fs::write(dir.path().join(name), v.to_string()).expect("write");
    write(
        "kinesis.json",
        json!({
            "schema": "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0",
            "data": { "enabled": true, "id": format!("{stream}-app"), "parameters": {
                "aws": { "accessKeyId": "default", "secretAccessKey": "default" },
                "kinesis": { "region": "us-east-1", "streamName": stream, "maxRecords": 10000,
                             "initialPosition": "TRIM_HORIZON", "initialPositionModifiers": null } } }
        }),
    );
    write(
        "runtime.json",
        json!({ "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": { "retrieval": { "mode": mode } } }),
    );
    let mut configuration = sauna::config_dir::load_dir(dir.path()).expect("config");
    let stopwatch = Arc::new(Stopwatch::default());
    configuration.responders = vec![stopwatch.clone()];
    let observers = sauna::Observers::start(configuration).await;
    // Warm-up: one command per shard's worth, delivered, so every shard is being read.
    put(client, &stream, 20).await;
    while stopwatch.latencies.lock().expect("lock").len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stopwatch.latencies.lock().expect("lock").clear();
    let mut next = tokio::time::Instant::now();
    for _ in 0..COMMANDS / PER_TICK {
        put(client, &stream, PER_TICK).await;
        next += TICK;
        tokio::time::sleep_until(next).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stopwatch.latencies.lock().expect("lock").len() < COMMANDS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    observers.shutdown().await;
    let mut l = stopwatch.latencies.lock().expect("lock").clone();
    assert_eq!(l.len(), COMMANDS, "{mode}: every command actioned");
    l.sort();
    let at = |q: usize| l[(l.len() * q / 100).min(l.len() - 1)];
    [at(50), at(99), l[l.len() - 1]]
}

fn main() {
    if std::env::var("AWS_ENDPOINT_URL_KINESIS").is_err() {
        eprintln!("AWS_ENDPOINT_URL_KINESIS is not set: run scripts/bench.sh --bench latency");
        std::process::exit(2);
    }
    origin();
    let system = actix::System::new();
    system.block_on(async move {
        let clients = sauna::AwsClients::for_observer("us-east-1", &sauna::config::AwsCredentials::DefaultChain).await;
        let polling = measure(&clients.kinesis, "POLLING").await;
        let fan_out = measure(&clients.kinesis, "FAN_OUT").await;
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!();
        println!("put → action, {COMMANDS} commands at {} per second on {SHARDS} kinesis-mock shards", PER_TICK * 10);
        println!();
        println!("| mode | p50 | p99 | max |");
        println!("|---|---|---|---|");
        println!(
            "| polling (idleTimeBetweenReadsMillis 1000) | {} | {} | {} |",
            ms(polling[0]),
            ms(polling[1]),
            ms(polling[2])
        );
        println!("| enhanced fan-out | {} | {} | {} |", ms(fan_out[0]), ms(fan_out[1]), ms(fan_out[2]));
    });
}
