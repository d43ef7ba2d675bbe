//! The observer in process (so tests can add their own responders and read the actors'
//! snapshots), against kinesis-mock, dynalite and moto: restarts of responders and consumers,
//! checkpoint batching, metrics read back from CloudWatch, and mailbox capacities from config.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kinesis::{TestStream, slack_command};
use common::sauna::{ConfigDir, fast_runtime, merge};
use sauna::ObserverSnapshot;
use sauna::Observers;
use sauna::command::Command;
use sauna::iglu::SchemaCriterion;
use sauna::responders::{Attempt, AttemptFuture, Responder, ResponderContext};
use serde_json::json;
use uuid::Uuid;

/// A responder driven by the command text: "panic-once…" panics on its first attempt,
/// "flaky…" fails twice before succeeding, anything else succeeds (after `delay`).
#[derive(Debug, Default)]
struct Scripted {
    done: Mutex<Vec<String>>,
    attempts: Mutex<HashMap<String, u32>>,
    delay: Duration,
    calls: AtomicU32,
}

impl Responder for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")]
    }

    fn execute<'a>(&'a self, command: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let text = command.data.to_value()["text"].as_str().unwrap_or_default().to_owned();
            let attempt = {
                let mut a = self.attempts.lock().expect("lock");
                let n = a.entry(text.clone()).or_default();
                *n += 1;
                *n
            };
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if text.starts_with("panic-once") && attempt == 1 {
                panic!("scripted panic on {text}");
            }
            if text.starts_with("flaky") && attempt <= 2 {
                return Attempt::Retry { reason: "HTTP 503: try later".into(), retry_after: None };
            }
            self.done.lock().expect("lock").push(text);
            Attempt::Done("ok".into())
        })
    }
}

fn config_with(stream: &TestStream, patch: serde_json::Value) -> (ConfigDir, sauna::config_dir::Configuration) {
    let mut runtime = fast_runtime();
    merge(&mut runtime, &patch);
    let dir = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/unused", &runtime);
    let configuration = sauna::config_dir::load_dir(dir.path()).expect("config loads");
    (dir, configuration)
}

async fn observe(observers: &Observers) -> ObserverSnapshot {
    observers.observe().await.into_iter().next().expect("one observer")
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn failing_responders_and_consumers_are_restarted_and_the_shard_goes_on() {
    let stream = TestStream::create("restarts", 1).await;
    let (_dir, mut configuration) = config_with(&stream, json!({}));
    let scripted = Arc::new(Scripted::default());
    configuration.responders = vec![scripted.clone()];
    let id = configuration.observers[0].id.clone();
    let observers = Observers::start(configuration).await;

    let texts = ["a0", "panic-once-1", "a2", "flaky-3", "a4"];
    stream.put(texts.iter().map(|t| ("k".to_owned(), slack_command(&Uuid::new_v4(), t))).collect()).await;
    let s = scripted.clone();
    wait_until("all five commands done", Duration::from_secs(30), move || s.done.lock().expect("lock").len() == 5)
        .await;
    assert_eq!(*scripted.done.lock().expect("lock"), texts, "same key: in order, the panic and the errors retried");
    // The responder's last answer reaches the consumer (through the claim's finishing write)
    // a moment after the responder saw it done.
    let start = Instant::now();
    let mut snapshot = observe(&observers).await;
    while snapshot.consumers[0].counters.outcomes[0] < 5 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        snapshot = observe(&observers).await;
    }
    let responder = &snapshot.responders[0];
    assert!(responder.restarts >= 1, "the responder was restarted after its panic: {responder:?}");
    let consumer = &snapshot.consumers[0];
    assert_eq!(consumer.counters.outcomes[0], 5, "5 done");
    println!("responder restarts: {}, attempts: {}", responder.restarts, scripted.calls.load(Ordering::Relaxed));

    // A consumer killed by an injected failure, then by an injected panic: each time it is
    // restarted from its checkpoint, and what is written next is delivered exactly once.
    let shard = consumer.shard.clone();
    // Before each failure: every record has its outcome and the Checkpointer knows the
    // watermark (a panicking consumer cannot hand it over itself).
    let settled = || {
        let observers = &observers;
        let shard = shard.clone();
        async move {
            let start = Instant::now();
            loop {
                let s = observe(observers).await;
                let consumer = s.consumers.first().cloned();
                let known = s.checkpointer.as_ref().and_then(|c| c.shards.get(&shard)).and_then(|c| c.latest.clone());
                if let Some(c) = consumer
                    && c.not_done == 0
                    && c.watermark.is_some()
                    && c.watermark == known
                {
                    return;
                }
                assert!(start.elapsed() < Duration::from_secs(10), "settled: {:?}", s.consumers);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for (round, panic) in [(1, false), (2, true)] {
        settled().await;
        assert!(observers.inject_consumer_failure(&id, &shard, panic).await);
        let start = Instant::now();
        loop {
            let s = observe(&observers).await;
            if s.restarts.get("ShardConsumer") == Some(&round) && s.consumers.len() == 1 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "consumer restarted: {:?}", s.restarts);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let more: Vec<String> = (0..3).map(|i| format!("after-{round}-{i}")).collect();
        stream.put(more.iter().map(|t| ("k".to_owned(), slack_command(&Uuid::new_v4(), t))).collect()).await;
        let s = scripted.clone();
        let want = 5 + 3 * round as usize;
        wait_until("the commands after the restart", Duration::from_secs(20), move || {
            s.done.lock().expect("lock").len() >= want
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = scripted.done.lock().expect("lock").clone();
    assert_eq!(done.len(), 11, "nothing lost, nothing twice after the restarts: {done:?}");
    observers.shutdown().await;
}

#[actix_rt::test]
async fn checkpoints_are_written_at_most_once_per_interval_and_metrics_reach_cloudwatch() {
    let stream = TestStream::create("batching", 2).await;
    let (_dir, mut configuration) = config_with(&stream, json!({ "checkpoint": { "intervalMillis": 500 } }));
    let scripted = Arc::new(Scripted { delay: Duration::from_millis(2), ..Scripted::default() });
    configuration.responders = vec![scripted.clone()];
    let namespace = configuration.observers[0].id.clone();
    let records: Vec<_> =
        (0..3000).map(|i| (format!("key-{}", i % 7), slack_command(&Uuid::new_v4(), &format!("c{i}")))).collect();
    stream.put(records).await;
    let started = Instant::now();
    let observers = Observers::start(configuration).await;
    let s = scripted.clone();
    wait_until("3000 commands", Duration::from_secs(90), move || s.done.lock().expect("lock").len() >= 3000).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let snapshot = observe(&observers).await;
    let cp = snapshot.checkpointer.expect("checkpointer snapshot");
    for (shard, s) in &cp.shards {
        let bound = (elapsed.as_millis() + 700) / 500 + 2;
        println!(
            "{shard}: {} checkpoint writes for ~1500 records in {elapsed:?}; shortest gap {:?} ms (interval 500 ms)",
            s.writes, s.min_gap_ms
        );
        assert!(s.writes as u128 <= bound, "{shard}: {} writes > {bound}", s.writes);
        assert!(s.min_gap_ms.unwrap_or(u128::MAX) >= 495, "{shard}: two writes within one interval");
    }
    assert!(cp.shards.len() == 2 && cp.shards.values().all(|s| s.writes >= 1));
    observers.shutdown().await;

    // RecordsProcessed and MillisBehindLatest, read back from the CloudWatch emulator.
    let clients = common::kinesis::clients().await;
    let shards = stream.shards().await;
    let now = std::time::SystemTime::now();
    let mut records_processed = 0.0;
    let mut behind_points = 0;
    for shard in &shards {
        let dims = [
            aws_sdk_cloudwatch::types::Dimension::builder().name("Operation").value("ProcessTask").build(),
            aws_sdk_cloudwatch::types::Dimension::builder().name("ShardId").value(shard.shard_id()).build(),
        ];
        let stats = |metric: &'static str| {
            clients
                .cloudwatch
                .get_metric_statistics()
                .namespace(&namespace)
                .metric_name(metric)
                .set_dimensions(Some(dims.to_vec()))
                .start_time(aws_smithy_types::DateTime::from(now - Duration::from_secs(600)))
                .end_time(aws_smithy_types::DateTime::from(now + Duration::from_secs(600)))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
                .send()
        };
        let rp = stats("RecordsProcessed").await.expect("GetMetricStatistics");
        records_processed += rp.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>();
        let mb = stats("MillisBehindLatest").await.expect("GetMetricStatistics");
        behind_points += mb.datapoints().len();
    }
    println!("CloudWatch: RecordsProcessed = {records_processed}, MillisBehindLatest datapoints = {behind_points}");
    assert_eq!(records_processed, 3000.0);
    assert!(behind_points >= 2, "MillisBehindLatest is published per shard");
}

#[actix_rt::test]
async fn mailbox_capacities_come_from_the_runtime_config() {
    let stream = TestStream::create("mailboxes", 1).await;
    for (base, name) in [(0, "first"), (100, "second")] {
        let (_dir, configuration) = config_with(
            &stream,
            json!({ "mailboxes": {
                "supervisor": 13 + base, "leaseManager": 11 + base, "shardConsumer": 7 + base,
                "checkpointer": 33 + base, "metrics": 99 + base, "responder": 5 + base
            }}),
        );
        let observers = Observers::start(configuration).await;
        let start = Instant::now();
        let snapshot = loop {
            let s = observe(&observers).await;
            if !s.consumers.is_empty() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "a consumer started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let caps = (
            snapshot.supervisor_mailbox_capacity,
            snapshot.lease_manager.as_ref().map(|l| l.mailbox_capacity),
            snapshot.consumers[0].mailbox_capacity,
            snapshot.checkpointer.as_ref().map(|c| c.mailbox_capacity),
            snapshot.metrics.as_ref().map(|m| m.mailbox_capacity),
            snapshot.responders[0].mailbox_capacity,
        );
        println!("{name} run: live mailbox capacities {caps:?}");
        assert_eq!(caps, (13 + base, Some(11 + base), 7 + base, Some(33 + base), Some(99 + base), 5 + base));
        observers.shutdown().await;
    }
}

#[actix_rt::test]
async fn core_restarts_leave_no_actor_behind() {
    let stream = TestStream::create("zombies", 2).await;
    let (_dir, mut configuration) = config_with(&stream, json!({}));
    let scripted = Arc::new(Scripted::default());
    configuration.responders = vec![scripted.clone()];
    let id = configuration.observers[0].id.clone();
    let observers = Observers::start(configuration).await;
    let start = Instant::now();
    while observe(&observers).await.consumers.len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "two consumers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for round in 1..=3u32 {
        assert!(observers.inject_core_failure(&id).await);
        let start = Instant::now();
        loop {
            let s = observe(&observers).await;
            if s.restarts.get("Checkpointer") == Some(&round) && s.consumers.len() == 2 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "round {round}: {:?} {:?}", s.restarts, s.live_children);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every replaced actor is gone, not left renewing and taking beside its successor.
    let start = Instant::now();
    let want: std::collections::BTreeMap<String, usize> =
        [("Checkpointer", 1), ("LeaseManager", 1), ("Metrics", 1), ("Responder", 1), ("ShardConsumer", 2)]
            .map(|(k, n)| (k.to_owned(), n))
            .into();
    loop {
        let live = observe(&observers).await.live_children;
        if live == want {
            println!("after 3 core restarts, alive: {live:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "actors left behind: {live:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<String> = (0..20).map(|i| format!("z{i}")).collect();
    stream.put(texts.iter().map(|t| (t.clone(), slack_command(&Uuid::new_v4(), t))).collect()).await;
    let s = scripted.clone();
    wait_until("the commands", Duration::from_secs(20), move || s.done.lock().expect("lock").len() >= 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scripted.done.lock().expect("lock").len(), 20, "each once, by the one LeaseManager's consumers");
    observers.shutdown().await;
}
