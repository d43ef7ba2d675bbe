//! The edges through `sauna run`: a LATEST shard handed over before its first checkpoint, a
//! parent shard past the retention period, a standard output nobody reads, a malformed lease
//! row, two processes configured with the same worker id, a dead-letter destination that
//! keeps failing — and the time a shard waits for a new worker after a kill -9 or a SIGTERM
//! with the default timings.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::http::{FakeHttp, Reply};
use common::kinesis::{TestStream, lease_rows, slack_command, texts};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use sauna::lease_manager::{Lease, LeaseStore, LeaseTable};
use sauna::model::Checkpoint;
use serde_json::json;
use uuid::Uuid;

fn commands(prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("key-{i}"), slack_command(&Uuid::new_v4(), &format!("{prefix}{i}")))).collect()
}

/// The texts delivered, once each.
fn delivered(slack: &FakeHttp) -> HashSet<String> {
    texts(&slack.requests()).into_iter().collect()
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_latest_shard_handed_over_before_its_first_checkpoint_loses_nothing() {
    let stream = TestStream::create("latest-handoff", 1).await;
    let slack = FakeHttp::start();
    // The first worker's Slack never answers, so nothing gets an outcome (the lease stays at
    // LATEST); it is stopped with a short drain.
    let hang = Arc::new(AtomicBool::new(true));
    let h = hang.clone();
    slack.behave(
        move |_, _| if h.load(Ordering::SeqCst) { Reply::ok().after(Duration::from_secs(60)) } else { Reply::ok() },
    );
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "shutdownTimeoutMillis": 300 }));
    let config = ConfigDir::new(&stream.name, "LATEST", None, &slack.url("/hook"), &runtime);
    let mut first = Sauna::start(&config, "first");
    first.wait_log("reading from LATEST", 1, Duration::from_secs(20));
    stream.put(commands("a", 5)).await;
    slack.wait_for(1, Duration::from_secs(10));
    first.sigterm();
    assert!(first.wait_exit(Duration::from_secs(20)).success());
    let checkpoints = common::kinesis::checkpoints(&stream.clients, &config.observer_id).await;
    assert!(checkpoints.values().all(|c| c == "LATEST"), "no record had an outcome: {checkpoints:?}");

    // Written while no worker runs, then a new worker: everything since the first read arrives.
    stream.put(commands("b", 5)).await;
    hang.store(false, Ordering::SeqCst);
    let before = slack.count();
    let mut second = Sauna::start(&config, "second");
    let want: HashSet<String> = (0..5).flat_map(|i| [format!("a{i}"), format!("b{i}")]).collect();
    let start = Instant::now();
    loop {
        let got: HashSet<String> = texts(&slack.requests()[before..]).into_iter().collect();
        if want.is_subset(&got) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the second worker delivered only {got:?}\n{}",
            second.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.wait_log("reading from AT_TIMESTAMP", 1, Duration::from_secs(1));
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(20)).success());
}

/// The lease table of `observer`, created as sauna creates it.
async fn table(stream: &TestStream, observer: &str) -> LeaseTable {
    let table = LeaseTable::new(stream.clients.dynamodb.clone(), observer);
    table.ensure_exists().await.expect("lease table");
    table
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_shard_past_the_retention_period_ends_and_its_child_starts() {
    let stream = TestStream::create("retention", 1).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fast_runtime());
    // The table as a stream that was resharded long ago leaves it: the parent's lease is still
    // there (not finished), the parent shard itself is gone from the stream.
    let t = table(&stream, &config.observer_id).await;
    let child = stream.shards().await[0].shard_id().to_owned();
    let parent = "shardId-000000009999";
    t.create_if_absent(&Lease::new(parent, Checkpoint::TrimHorizon)).await.expect("parent lease");
    let mut lease = Lease::new(child.clone(), Checkpoint::TrimHorizon);
    lease.parent_shard_ids = vec![parent.to_owned()];
    t.create_if_absent(&lease).await.expect("child lease");
    stream.put(commands("r", 3)).await;

    let mut sauna = Sauna::start(&config, "retention");
    slack.wait_for(3, Duration::from_secs(30));
    assert_eq!(delivered(&slack), ["r0", "r1", "r2"].map(String::from).into());
    let log = sauna.log_text();
    assert!(log.contains(&format!("shard {parent}: the stream no longer has this shard")), "said loudly:\n{log}");
    let rows = lease_rows(&stream.clients, &config.observer_id).await;
    let parent_row = rows.iter().find(|r| r["leaseKey"].as_s().ok().map(String::as_str) == Some(parent));
    assert!(
        parent_row.is_none_or(|r| r["checkpoint"].as_s().ok().map(String::as_str) == Some("SHARD_END")),
        "the parent is finished (or cleaned up): {parent_row:?}"
    );
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standard_output_nobody_reads_holds_up_no_lease() {
    let stream = TestStream::create("stdout-blocked", 2).await;
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "retrieval": { "maxInFlightPerShard": 2000 } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/unused", &runtime);
    std::fs::remove_file(config.path().join("slack.json")).expect("no Slack here");
    config.write(
        "stdout.json",
        &json!({"schema": "iglu:rs.sauna.responders/StdoutConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "stdout", "parameters": {"commands": ["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*"]}}}),
    );
    // ~1.2 MB of output for a pipe of 64 KiB that is never read.
    stream.put(commands("p", 2000)).await;
    let mut sauna = Sauna::start_with_unread_stdout(&config, "stdout");
    sauna.wait_log("reading from TRIM_HORIZON", 2, Duration::from_secs(20));
    let counters = || async {
        let rows = lease_rows(&stream.clients, &config.observer_id).await;
        rows.iter()
            .map(|r| {
                (
                    r["leaseKey"].as_s().cloned().unwrap_or_default(),
                    r["leaseCounter"].as_n().cloned().unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<String, String>>()
    };
    // Three failover times with the pipe full: the leases are renewed all along.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = counters().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = counters().await;
    println!("lease counters with a full pipe: {before:?} -> {after:?}");
    assert_eq!(before.len(), 2);
    for (k, c) in &before {
        let (c0, c1): (u64, u64) = (c.parse().expect("N"), after[k].parse().expect("N"));
        assert!(c1 >= c0 + 4, "{k} renewed while the pipe was full: {c0} -> {c1}");
    }
    let log = sauna.log_text();
    assert!(!log.contains("lost ("), "no lease lost:\n{}", sauna.log_tail(20));
    sauna.kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_lease_row_is_reported_not_skipped_in_silence() {
    let stream = TestStream::create("malformed", 1).await;
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/unused", &fast_runtime());
    table(&stream, &config.observer_id).await;
    let shard = stream.shards().await[0].shard_id().to_owned();
    // Another program wrote the counter as a string.
    stream
        .clients
        .dynamodb
        .put_item()
        .table_name(&config.observer_id)
        .item("leaseKey", AttributeValue::S(shard.clone()))
        .item("leaseCounter", AttributeValue::S("seven".into()))
        .item("checkpoint", AttributeValue::S("TRIM_HORIZON".into()))
        .send()
        .await
        .expect("put");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
        .args(["leases", "--config-dir"])
        .arg(config.path())
        .output()
        .expect("sauna leases runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains(&shard) && text.contains("MALFORMED") && text.contains("leaseCounter"), "{text}");

    let mut sauna = Sauna::start(&config, "malformed");
    sauna.wait_log("is not a lease this program can read", 1, Duration::from_secs(20));
    let log = sauna.log_text();
    let line = log.lines().find(|l| l.contains("is not a lease this program can read")).unwrap_or_default();
    assert!(line.contains("ERROR") && line.contains(&shard) && line.contains("leaseCounter"), "{line}");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_with_the_same_worker_id_are_two_workers() {
    let stream = TestStream::create("same-id", 4).await;
    let slack = FakeHttp::start();
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "leases": { "workerId": "same" } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    let mut a = Sauna::start(&config, "a");
    let mut b = Sauna::start(&config, "b");
    let owners = || async {
        let rows = lease_rows(&stream.clients, &config.observer_id).await;
        rows.iter().filter_map(|r| r.get("leaseOwner")?.as_s().ok().cloned()).collect::<Vec<String>>()
    };
    wait_until("4 leases, 2 owners", Duration::from_secs(30), async || {
        let o = owners().await;
        o.len() == 4 && o.iter().collect::<HashSet<_>>().len() == 2
    })
    .await;
    let o = owners().await;
    println!("owners: {o:?}");
    assert!(o.iter().all(|w| w.starts_with("same:")), "the configured id is the prefix: {o:?}");
    stream.put(commands("s", 400)).await;
    slack.wait_for(400, Duration::from_secs(60));
    assert_eq!(slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(10)), 400, "each command once");
    assert_eq!(delivered(&slack).len(), 400);
    a.sigterm();
    b.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).success() && b.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_that_cannot_be_written_is_logged_without_the_record() {
    let stream = TestStream::create("dlq-fallback", 1).await;
    let slack = FakeHttp::start();
    slack.behave(|_, _| Reply::status(400));
    let mut runtime = fast_runtime();
    // The dead-letter "file" is a directory: every write fails.
    merge(&mut runtime, &json!({ "deadLetters": { "file": "dead-letters" } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    std::fs::create_dir(config.path().join("dead-letters")).expect("mkdir");
    let secret = "xoxb-0000-SECRET-TOKEN";
    let record = slack_command(&Uuid::new_v4(), secret);
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &record);
    stream.put(vec![("k".into(), record)]).await;
    let mut sauna = Sauna::start(&config, "dlq");
    sauna.wait_log("dead letter not written", 1, Duration::from_secs(30));
    let log = sauna.log_text();
    println!("{}", log.lines().find(|l| l.contains("dead letter not written")).unwrap_or_default());
    assert!(!log.contains(secret) && !log.contains(&encoded[..40]), "the record's data is never logged");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

/// The ERROR lines of a log that contain `needle`, with their times (ms since the first).
fn error_lines(log: &str, needle: &str) -> Vec<(u64, String)> {
    let at = |l: &str| {
        chrono::DateTime::parse_from_rfc3339(l.get(1..25).unwrap_or_default()).map(|t| t.timestamp_millis()).ok()
    };
    let lines: Vec<(i64, String)> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains(needle))
        .filter_map(|l| at(l).map(|t| (t, l.to_owned())))
        .collect();
    let first = lines.first().map(|(t, _)| *t).unwrap_or_default();
    lines.into_iter().map(|(t, l)| ((t - first) as u64, l)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_start_says_why_in_one_line_and_retries_ever_less_often() {
    // A stream that does not exist (yet).
    let config = ConfigDir::new(
        &common::unique_name("not-created"),
        "TRIM_HORIZON",
        None,
        "http://127.0.0.1:9/",
        &fast_runtime(),
    );
    let mut sauna = Sauna::start(&config, "no-stream");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let lines = error_lines(&sauna.log_text(), "does not exist in this region and account");
    println!("missing stream, 8 s: {:?}", lines.iter().map(|(t, _)| t).collect::<Vec<_>>());
    assert!((3..=6).contains(&lines.len()), "said, and less and less often: {lines:?}");
    assert!(lines[0].1.contains("cannot start") && lines[0].1.contains("retrying in"), "{}", lines[0].1);
    let gaps: Vec<u64> = lines.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps[gaps.len() - 1] > gaps[0], "the retries back off: {gaps:?}");
    assert!(sauna.child.try_wait().expect("wait").is_none(), "it keeps running, waiting for the stream");
    sauna.kill9();

    // No credentials anywhere.
    let stream = TestStream::create("no-credentials", 1).await;
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/", &fast_runtime());
    let unset = common::sauna::UNSET;
    let env = [
        ("AWS_ACCESS_KEY_ID", unset),
        ("AWS_SECRET_ACCESS_KEY", unset),
        ("AWS_PROFILE", unset),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut sauna = Sauna::start_with_env(&config, "no-credentials", &env);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = sauna.log_text();
    let lines = error_lines(&log, "no AWS credentials found");
    println!(
        "no credentials, 6 s: {} lines; first: {}",
        lines.len(),
        lines.first().map(|l| l.1.as_str()).unwrap_or("")
    );
    assert!(!lines.is_empty(), "said:\n{log}");
    assert!(lines.iter().all(|(_, l)| !l.contains("DispatchFailure")), "no SDK debug text: {}", lines[0].1);
    // Core restarts back off from 100 ms: a handful in 6 s, not one a second for ever.
    assert!(lines.len() <= 20, "{} lines in 6 s", lines.len());
    assert!(sauna.child.try_wait().expect("wait").is_none(), "it keeps retrying");
    sauna.kill9();
}
