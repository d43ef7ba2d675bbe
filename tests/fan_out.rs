//! Enhanced fan-out through `sauna run` on kinesis-mock: commands read by `SubscribeToShard`
//! are delivered exactly once, across handoffs, SIGTERM, subscriptions that end (by the
//! service or by `maxSubscriptionMillis`) and `ResourceInUseException`.
//!
//! Kinesis goes through the fault proxy, which records every request: a test proves its
//! reads were subscriptions (no GetRecords) and where each subscription started. Dedup is off
//! in these tests, so a record read twice would show as a command delivered twice: exactly
//! once is then the reader's doing, not the claim table's.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::FakeHttp;
use common::kinesis::{TestStream, slack_command};
use common::proxy::{Fault, FaultProxy, Rule};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::{Value, json};
use uuid::Uuid;

/// These tests start several processes: one at a time keeps their timings meaningful.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fan_out_runtime(extra: Value) -> Value {
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "retrieval": { "mode": "FAN_OUT" }, "dedup": { "enabled": false } }));
    merge(&mut runtime, &extra);
    runtime
}

fn commands(from: usize, n: usize) -> Vec<(String, Vec<u8>)> {
    (from..from + n).map(|i| (format!("key-{}", i % 53), slack_command(&Uuid::new_v4(), &format!("c{i}")))).collect()
}

/// Deliveries by text: how many times each was posted.
fn deliveries(slack: &FakeHttp) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in slack.requests() {
        if let Some(t) = r.json()["text"].as_str() {
            *out.entry(t.to_owned()).or_default() += 1;
        }
    }
    out
}

/// Waits until `n` distinct commands were delivered, then for quiet; returns the deliveries.
fn wait_all(slack: &FakeHttp, n: usize, timeout: Duration) -> BTreeMap<String, usize> {
    let start = Instant::now();
    while deliveries(slack).len() < n {
        assert!(start.elapsed() < timeout, "only {} of {n} commands delivered", deliveries(slack).len());
        std::thread::sleep(Duration::from_millis(100));
    }
    slack.wait_quiet(Duration::from_millis(700), Duration::from_secs(10));
    deliveries(slack)
}

fn assert_exactly_once(d: &BTreeMap<String, usize>, n: usize) {
    let twice: Vec<_> = d.iter().filter(|(_, c)| **c > 1).map(|(t, _)| t.clone()).collect();
    assert_eq!(d.len(), n, "every command delivered");
    assert!(twice.is_empty(), "{} commands delivered twice: {:?}", twice.len(), &twice[..twice.len().min(10)]);
}

/// Each SubscribeToShard the proxy forwarded: (when, shard, starting position type, sequence).
fn subscriptions(proxy: &FaultProxy) -> Vec<(Instant, String, String, Option<String>)> {
    proxy
        .requests()
        .iter()
        .filter(|r| r.op == "SubscribeToShard")
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("a JSON request");
            let pos = &body["StartingPosition"];
            (
                r.at,
                body["ShardId"].as_str().unwrap_or_default().to_owned(),
                pos["Type"].as_str().unwrap_or_default().to_owned(),
                pos["SequenceNumber"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Whether every GetRecords was a probe for the end of a shard (one record at most), not a read.
fn only_end_probes(proxy: &FaultProxy) -> bool {
    proxy.requests().iter().filter(|r| r.op == "GetRecords").all(|r| {
        let body: Value = serde_json::from_slice(&r.body).expect("a JSON request");
        body["Limit"] == 1
    })
}

/// Puts `per_tick` commands every 100 ms from `from` on, until stopped; returns how many.
struct Producer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Producer {
    fn start(stream: &TestStream, from: usize, per_tick: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let stream = TestStream { name: stream.name.clone(), clients: stream.clients.clone() };
        let task = tokio::spawn(async move {
            let mut i = from;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                stream.put(commands(i, per_tick)).await;
                i += per_tick;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            i
        });
        Producer { stop, task }
    }

    async fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("producer")
    }
}

async fn owners(stream: &TestStream, table: &str) -> BTreeMap<String, String> {
    common::kinesis::lease_rows(&stream.clients, table)
        .await
        .iter()
        .filter_map(|r| {
            let key = r.get("leaseKey")?.as_s().ok()?.clone();
            let owner = r.get("leaseOwner").and_then(|o| o.as_s().ok()).cloned().unwrap_or_default();
            Some((key, owner))
        })
        .collect()
}

async fn wait_owners(stream: &TestStream, table: &str, what: &str, ok: impl Fn(&[usize]) -> bool) {
    let start = Instant::now();
    loop {
        let o = owners(stream, table).await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for owner in o.values().filter(|w| !w.is_empty()) {
            *counts.entry(owner.split(':').next().unwrap_or_default().to_owned()).or_default() += 1;
        }
        let mut c: Vec<usize> = counts.values().copied().collect();
        c.sort();
        if ok(&c) {
            println!("{what} after {:?}: {o:?}", start.elapsed());
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "{what}: owners {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_commands_on_four_shards_are_read_by_subscription_exactly_once() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("fanout-2000", 4).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fan_out_runtime(json!({})));
    stream.put(commands(0, 1000)).await;
    let kinesis = FaultProxy::start(&common::emulators().kinesis);
    let mut sauna = Sauna::start_with_env(&config, "fanout", &[("AWS_ENDPOINT_URL_KINESIS", &kinesis.url())]);
    sauna.wait_log("reading by enhanced fan-out as stream consumer", 1, Duration::from_secs(30));
    // Half before the subscriptions (a backlog), half while they are live (pushed).
    stream.put(commands(1000, 1000)).await;
    let d = wait_all(&slack, 2000, Duration::from_secs(90));
    assert_exactly_once(&d, 2000);
    let subscribed = subscriptions(&kinesis);
    println!(
        "fan-out: 2000 commands once; {} SubscribeToShard, {} GetRecords, {} RegisterStreamConsumer",
        subscribed.len(),
        kinesis.forwarded("GetRecords"),
        kinesis.forwarded("RegisterStreamConsumer")
    );
    assert!(only_end_probes(&kinesis), "nothing read by polling");
    assert_eq!(kinesis.forwarded("RegisterStreamConsumer"), 1, "the consumer registered once");
    let shards: std::collections::BTreeSet<_> = subscribed.iter().map(|s| s.1.clone()).collect();
    assert_eq!(shards.len(), 4, "every shard subscribed: {subscribed:?}");

    let consumers = sauna::fan_out::list_stream_consumers(&stream.clients.kinesis, &stream.name).await.expect("list");
    assert_eq!(consumers.len(), 1, "{consumers:?}");
    assert_eq!(consumers[0].name, config.observer_id);
    assert_eq!(consumers[0].status, "ACTIVE");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    let again = sauna::fan_out::list_stream_consumers(&stream.clients.kinesis, &stream.name).await.expect("list");
    assert_eq!(again.len(), 1, "the consumer is not deregistered on shutdown (other workers share it)");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
        .args(["leases", "--config-dir"])
        .arg(config.path())
        .output()
        .expect("sauna leases runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let line = format!("enhanced fan-out: stream consumer {} ACTIVE {}", config.observer_id, consumers[0].arn);
    assert!(text.contains(&line), "sauna leases shows the consumer:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_fan_out_a_handoff_and_a_sigterm_lose_nothing_and_duplicate_nothing() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("fanout-handoff", 4).await;
    let slack = FakeHttp::start();
    let config = |name: &str| {
        let runtime = fan_out_runtime(json!({ "leases": { "workerId": name } }));
        ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime)
    };
    let (c1, c2) = (config("w1"), config("w2"));
    let table = c1.observer_id.clone();
    let producer = Producer::start(&stream, 0, 10);
    let mut w1 = Sauna::start(&c1, "w1");
    wait_owners(&stream, &table, "w1 holds all four", |c| c == [4]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut w2 = Sauna::start(&c2, "w2");
    wait_owners(&stream, &table, "balanced by handoff", |c| c == [2, 2]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w1.sigterm();
    assert!(w1.wait_exit(Duration::from_secs(20)).success(), "w1 stops gracefully");
    wait_owners(&stream, &table, "w2 holds all four after w1's SIGTERM", |c| c == [4]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = producer.stop().await;
    let d = wait_all(&slack, n, Duration::from_secs(60));
    println!(
        "fan-out handoff + SIGTERM: {n} commands, {} delivered, {} twice",
        d.len(),
        d.values().filter(|c| **c > 1).count()
    );
    assert_exactly_once(&d, n);
    assert!(w1.log_text().contains("reading by enhanced fan-out"), "w1 read by fan-out");
    w2.sigterm();
    assert!(w2.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_that_end_resume_from_where_they_ended() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("fanout-renew", 2).await;
    let slack = FakeHttp::start();
    // Our own limit renews every subscription after 1.5 s; the "service" (the proxy) also ends
    // three of them early, after 700 ms.
    let runtime = fan_out_runtime(json!({ "retrieval": { "maxSubscriptionMillis": 1500 } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    let kinesis = FaultProxy::start(&common::emulators().kinesis);
    kinesis.inject(Rule::on(&["SubscribeToShard"], Fault::EndAfter(Duration::from_millis(700))).times(3));
    let producer = Producer::start(&stream, 0, 5);
    let mut sauna = Sauna::start_with_env(&config, "renew", &[("AWS_ENDPOINT_URL_KINESIS", &kinesis.url())]);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let n = producer.stop().await;
    let d = wait_all(&slack, n, Duration::from_secs(60));
    assert_exactly_once(&d, n);
    let subs = subscriptions(&kinesis);
    let mut by_shard: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for (_, shard, kind, seq) in &subs {
        by_shard.entry(shard.clone()).or_default().push((kind.clone(), seq.clone()));
    }
    println!(
        "{n} commands once over {} subscriptions ({} ended early by the proxy): {:?}",
        subs.len(),
        kinesis.injected_count(common::proxy::Kind::EndAfter),
        by_shard.iter().map(|(s, v)| (s, v.len())).collect::<Vec<_>>()
    );
    assert_eq!(kinesis.injected_count(common::proxy::Kind::EndAfter), 3);
    for (shard, subs) in &by_shard {
        assert!(subs.len() >= 4, "{shard}: renewed several times: {subs:?}");
        assert_eq!(subs[0].0, "TRIM_HORIZON", "{shard} starts at the lease's position");
        // Before its first event a renewal starts where the first did; after, always after
        // the last continuation, never going back.
        // Sequence numbers are decimal strings too long for any integer type: by length, then text.
        let mut last: Option<(usize, String)> = None;
        for (kind, seq) in &subs[1..] {
            if last.is_none() && kind == "TRIM_HORIZON" {
                continue;
            }
            assert_eq!(kind, "AFTER_SEQUENCE_NUMBER", "{shard}: renewals continue after a sequence number: {subs:?}");
            let seq = seq.clone().map(|s| (s.len(), s)).expect("a sequence number");
            assert!(last.as_ref().is_none_or(|l| seq >= *l), "{shard}: renewals never go back: {subs:?}");
            last = Some(seq);
        }
        assert!(last.is_some(), "{shard}: renewed after records were read: {subs:?}");
    }
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_in_use_is_retried_with_backoff_and_reads_on() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("fanout-in-use", 1).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fan_out_runtime(json!({})));
    let kinesis = FaultProxy::start(&common::emulators().kinesis);
    let in_use = r#"{"__type":"ResourceInUseException","message":"Another active subscription exists on this consumer and shard."}"#;
    kinesis.inject(Rule::on(&["SubscribeToShard"], Fault::Status(400, in_use.to_owned())).times(6));
    stream.put(commands(0, 20)).await;
    let started = Instant::now();
    let mut sauna = Sauna::start_with_env(&config, "in-use", &[("AWS_ENDPOINT_URL_KINESIS", &kinesis.url())]);
    let d = wait_all(&slack, 20, Duration::from_secs(60));
    assert_exactly_once(&d, 20);
    let at: Vec<Instant> = kinesis.injections().iter().map(|i| i.at).collect();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "ResourceInUseException ×{}: retried after {gaps:?}; all 20 delivered {:?} after start",
        at.len(),
        started.elapsed()
    );
    assert_eq!(at.len(), 6);
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(900)), "never a tight loop: {gaps:?}");
    assert!(gaps[gaps.len() - 1] > gaps[0], "the backoff grows: {gaps:?}");
    assert_eq!(sauna.log_text().matches("subscription is in use").count(), 6, "each one said");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn in_fan_out_a_split_shard_is_read_to_its_end_and_then_its_children() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("fanout-split", 1).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fan_out_runtime(json!({})));
    let kinesis = FaultProxy::start(&common::emulators().kinesis);
    let producer = Producer::start(&stream, 0, 5);
    let mut sauna = Sauna::start_with_env(&config, "split", &[("AWS_ENDPOINT_URL_KINESIS", &kinesis.url())]);
    sauna.wait_log("reading by enhanced fan-out", 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let parent = stream.shards().await[0].shard_id().to_owned();
    stream.split(&parent).await;
    sauna.wait_log(&format!("shard {parent}: end of the closed shard reached"), 1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = producer.stop().await;
    let d = wait_all(&slack, n, Duration::from_secs(60));
    assert_exactly_once(&d, n);
    let subscribed: std::collections::BTreeSet<String> = subscriptions(&kinesis).into_iter().map(|s| s.1).collect();
    let children: Vec<String> = stream.open_shards().await.iter().map(|s| s.shard_id().to_owned()).collect();
    println!("split in fan-out: {n} commands once; subscribed to {subscribed:?}; children {children:?}");
    assert_eq!(children.len(), 2);
    for c in &children {
        assert!(subscribed.contains(c), "child {c} read by subscription: {subscribed:?}");
    }
    assert!(only_end_probes(&kinesis), "nothing read by polling");
    assert!(kinesis.forwarded("GetRecords") >= 1, "the end of the parent was confirmed by a probe");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}
