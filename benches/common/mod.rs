//! What the benchmarks share: the commands they write, the writer, the plain GetRecords loop
//! they measure sauna against, and this process's CPU time and peak RSS.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use serde_json::json;

/// Creates a kinesalite stream of `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client.create_stream().stream_name(name).shard_count(shards).send().await.expect("CreateStream");
    loop {
        let d = client.describe_stream_summary().stream_name(name).send().await.expect("describe");
        if d.stream_description_summary().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `i`th command of a benchmark: a Slack `send_message` with a tag, ~560 bytes. Each has
/// an id and a creation time of its own (a second apart, a fixed day), as a stream's have:
/// nothing a command repeats of the one before is left for a cache to answer.
pub fn command(i: usize) -> Vec<u8> {
    let when_created = format!("2026-11-26T{:02}:{:02}:{:02}Z", i / 3600 % 24, i / 60 % 60, i % 60);
    json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {
                "schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {
                    "commandId": uuid::Uuid::new_v4().to_string(),
                    "whenCreated": when_created,
                    "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": null },
                    "tags": { "source": "bench" }
                }
            },
            "command": {
                "schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                "data": { "channel": "#ops", "username": "sauna-bench", "text": format!("benchmark command {i}: the nightly load finished") }
            }
        }
    })
    .to_string()
    .into_bytes()
}

/// A size from the environment (`SAUNA_BENCH_RECORDS` and the like), or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The middle value of `v` (of an even count, the upper of the two middle ones).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// User + system CPU time of this process.
pub fn cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// User + system CPU time of this process but its threads named `name` (threads that live
/// as long as the measure: the CPU of a thread that has ended is the process's alone).
#[allow(dead_code)]
pub fn cpu_seconds_but(name: &str) -> f64 {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
    let theirs: f64 = tasks
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name))
        .map(|task| stat_cpu_seconds(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default()))
        .sum();
    cpu_seconds() - theirs
}

/// User + system CPU seconds of a `/proc/…/stat` (utime, stime, in clock ticks of 1/100 s).
pub fn stat_cpu_seconds(stat: &str) -> f64 {
    (stat_field(stat, 11) + stat_field(stat, 12)) / 100.0
}

/// Field `i` after the command name of a `/proc/…/stat` (7: minflt, 11: utime, 12: stime).
pub fn stat_field(stat: &str, i: usize) -> f64 {
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after.split_whitespace().nth(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0)
}

pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak RSS, so the next reading covers only what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn put_all(client: &aws_sdk_kinesis::Client, stream: &str, total: usize) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = vec![];
    for _ in 0..4 {
        let (client, stream, next) = (client.clone(), stream.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(500, Ordering::Relaxed) as usize;
                if start >= total {
                    break;
                }
                let mut pending: Vec<(String, Vec<u8>)> =
                    (start..(start + 500).min(total)).map(|i| (format!("key-{}", i % 1009), command(i))).collect();
                while !pending.is_empty() {
                    let entries: Vec<_> = pending
                        .iter()
                        .map(|(k, d)| {
                            PutRecordsRequestEntry::builder()
                                .partition_key(k)
                                .data(Blob::new(d.clone()))
                                .build()
                                .expect("entry")
                        })
                        .collect();
                    let out = client
                        .put_records()
                        .stream_name(&stream)
                        .set_records(Some(entries))
                        .send()
                        .await
                        .expect("PutRecords");
                    pending = pending
                        .into_iter()
                        .zip(out.records())
                        .filter(|(_, r)| r.error_code().is_some())
                        .map(|(p, _)| p)
                        .collect();
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("put task");
    }
}

/// A TRIM_HORIZON iterator of one shard.
pub async fn trim_horizon(client: &aws_sdk_kinesis::Client, stream: &str, shard: &str) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("iterator")
}

/// The observer config file of the benchmarks: `stream` on kinesalite from TRIM_HORIZON,
/// `maxRecords` 10,000.
pub fn observer_config(stream: &str, id: &str) -> serde_json::Value {
    json!({
        "schema": "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0",
        "data": { "enabled": true, "id": id, "parameters": {
            "aws": { "accessKeyId": "default", "secretAccessKey": "default" },
            "kinesis": { "region": "us-east-1", "streamName": stream, "maxRecords": 10000,
                         "initialPosition": "TRIM_HORIZON", "initialPositionModifiers": null } } }
    })
}

/// The plain loop: every shard read from TRIM_HORIZON to its end, in parallel.
pub async fn plain_drain(client: &aws_sdk_kinesis::Client, stream: &str, total: usize) -> Duration {
    let shards = client.list_shards().stream_name(stream).send().await.expect("ListShards");
    let read = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = vec![];
    for shard in shards.shards() {
        let (client, stream, id, read) = (client.clone(), stream.to_owned(), shard.shard_id().to_owned(), read.clone());
        tasks.push(tokio::spawn(async move {
            let mut it = trim_horizon(&client, &stream, &id).await;
            loop {
                let out = client.get_records().shard_iterator(&it).limit(10_000).send().await.expect("GetRecords");
                let n = out.records().len() as u64;
                let total_read = read.fetch_add(n, Ordering::Relaxed) + n;
                // kinesalite reports MillisBehindLatest 0 always: an empty batch is the end of
                // this shard, and everything read is the end of all of them.
                if n == 0 || total_read >= total as u64 {
                    break;
                }
                match out.next_shard_iterator {
                    Some(next) => it = next,
                    None => break,
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("drain task");
    }
    assert_eq!(read.load(Ordering::Relaxed), total as u64, "the plain loop read everything");
    start.elapsed()
}
