//! Effectively once, through `sauna run`: a command is claimed by its `commandId` before its
//! first attempt, so a crash repeats at most the attempts in flight, a producer's retries are
//! actioned once, and a frozen worker's commands are not actioned by the worker that took over.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::http::{FakeHttp, Reply};
use common::kinesis::{TestStream, all_rows, slack_command};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::json;
use uuid::Uuid;

fn commands(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("key-{}", i % 53), slack_command(&Uuid::new_v4(), &format!("c{i}")))).collect()
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

fn wait_all(slack: &FakeHttp, n: usize, timeout: Duration) -> BTreeMap<String, usize> {
    let start = Instant::now();
    loop {
        let d = deliveries(slack);
        if d.len() >= n {
            return d;
        }
        assert!(start.elapsed() < timeout, "only {} of {n} commands delivered", d.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Claims in state `claimed` by workers whose id starts with `prefix`.
async fn open_claims(stream: &TestStream, table: &str, prefix: &str) -> usize {
    all_rows(&stream.clients, table)
        .await
        .iter()
        .filter(|r| r.get("state").and_then(|s| s.as_s().ok()).map(String::as_str) == Some("claimed"))
        .filter(|r| r.get("owner").and_then(|s| s.as_s().ok()).is_some_and(|o| o.starts_with(prefix)))
        .count()
}

/// One `kill -9` mid-stream and a second worker taking over; returns (duplicates, claims open
/// at the kill).
async fn kill_9_mid_stream(dedup: bool) -> (usize, usize) {
    let stream = TestStream::create(if dedup { "kill9-dedup" } else { "kill9-nodedup" }, 4).await;
    let slack = FakeHttp::start();
    slack.behave(|_, _| Reply::ok().after(Duration::from_millis(20)));
    let mut runtime = fast_runtime();
    let settings = json!({ "dedup": { "enabled": dedup }, "checkpoint": { "intervalMillis": 1000 }, "leases": { "workerId": "first" } });
    merge(&mut runtime, &settings);
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    stream.put(commands(2000)).await;
    let mut first = Sauna::start(&config, "first");
    let start = Instant::now();
    while deliveries(&slack).len() < 600 {
        assert!(start.elapsed() < Duration::from_secs(60), "the first worker delivers");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill9();
    let table = format!("{}-claims", config.observer_id);
    let open = if dedup { open_claims(&stream, &table, "first").await } else { 0 };
    let mut merged = runtime.clone();
    merge(&mut merged, &json!({ "leases": { "workerId": "second" } }));
    config.write("runtime.json", &json!({ "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": merged }));
    let mut second = Sauna::start(&config, "second");
    wait_all(&slack, 2000, Duration::from_secs(120));
    slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(10));
    let twice = deliveries(&slack).values().filter(|n| **n > 1).count();
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(30)).success());
    (twice, open)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_repeats_at_most_the_commands_in_flight() {
    let (without, _) = kill_9_mid_stream(false).await;
    let (with, in_flight) = kill_9_mid_stream(true).await;
    println!(
        "kill -9 mid-stream, 2000 commands, 20 ms webhook: dedup off: {without} actioned twice; dedup on: {with} actioned twice, {in_flight} claims in flight at the kill"
    );
    assert!(with <= in_flight, "duplicates {with} > claims in flight at the kill {in_flight}");
    assert!(without > with, "the claims make a difference: {without} vs {with}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_written_three_times_by_its_producer_is_actioned_once() {
    let stream = TestStream::create("producer-dups", 2).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fast_runtime());
    let id = Uuid::new_v4();
    let record = slack_command(&id, "once");
    // Three records, on two partition keys (so possibly two shards at once).
    stream.put(vec![("a".into(), record.clone()), ("b".into(), record.clone()), ("a".into(), record)]).await;
    let mut sauna = Sauna::start(&config, "dups");
    sauna.wait_log("] duplicate ", 2, Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(5));
    assert_eq!(deliveries(&slack).get("once"), Some(&1), "actioned once");
    let log = sauna.log_text();
    let lines: Vec<&str> =
        log.lines().filter(|l| l.contains("sauna::outcome") && l.contains(&id.to_string())).collect();
    println!("{}", lines.join("\n"));
    assert_eq!(lines.iter().filter(|l| l.contains("] done ")).count(), 1);
    assert_eq!(lines.iter().filter(|l| l.contains("] duplicate ")).count(), 2);
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_worker_s_claimed_commands_are_not_actioned_by_the_worker_that_took_over() {
    let stream = TestStream::create("frozen-claims", 2).await;
    let slack = FakeHttp::start();
    // Slow answers: many commands are in flight when the worker is frozen.
    slack.behave(|_, _| Reply::ok().after(Duration::from_millis(400)));
    // The attempt timeout is longer than the freeze: a frozen worker that resumes reads the
    // answers that came meanwhile and records its commands done. (Frozen for longer than an
    // attempt can last, its commands are taken over: possible duplicates, by design.)
    let runtime = |name: &str| {
        let mut r = fast_runtime();
        merge(&mut r, &json!({ "leases": { "workerId": name }, "retry": { "requestTimeoutMillis": 10000 } }));
        r
    };
    let a_config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/a"), &runtime("a"));
    let mut a = Sauna::start(&a_config, "a");
    a.wait_log("reading from", 2, Duration::from_secs(20));
    stream.put(commands(300)).await;
    let start = Instant::now();
    while deliveries(&slack).len() < 50 {
        assert!(start.elapsed() < Duration::from_secs(30), "a delivers");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.sigstop();
    let frozen_at = Instant::now();
    let b_config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/b"), &runtime("b"));
    std::fs::write(
        b_config.path().join("kinesis.json"),
        std::fs::read(a_config.path().join("kinesis.json")).expect("read"),
    )
    .expect("same observer");
    let mut b = Sauna::start(&b_config, "b");
    // Past the failover time (2 s): b takes the leases; then a resumes.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(frozen_at.elapsed()));
    a.sigcont();
    wait_all(&slack, 300, Duration::from_secs(90));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(20));
    let mut by: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for r in slack.requests() {
        if let Some(t) = r.json()["text"].as_str() {
            by.entry(t.to_owned()).or_default().insert(r.path.clone());
        }
    }
    let both: Vec<&String> = by.iter().filter(|(_, w)| w.len() > 1).map(|(t, _)| t).collect();
    let twice: Vec<(String, usize)> = deliveries(&slack).into_iter().filter(|(_, n)| *n > 1).collect();
    println!("frozen worker: 300 commands; actioned by both workers: {both:?}; actioned twice: {twice:?}");
    assert!(both.is_empty(), "actioned by both: {both:?}");
    b.sigterm();
    a.sigterm();
    assert!(b.wait_exit(Duration::from_secs(30)).success());
    let _ = a.wait_exit(Duration::from_secs(30));
}
