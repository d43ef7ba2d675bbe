//! `sauna run` end to end on one worker, as a real process against kinesis-mock, dynalite and
//! moto, with a local HTTP server standing in for Slack.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::http::FakeHttp;
use common::kinesis::{Put, TestStream, checkpoints, lease_rows, slack_command, texts};
use common::sauna::{ConfigDir, Sauna, fast_runtime};
use uuid::Uuid;

/// `n` Slack commands "c<i>" over `keys` partition keys.
fn commands(from: usize, n: usize, keys: usize) -> Vec<(String, Vec<u8>)> {
    (from..from + n)
        .map(|i| {
            (
                format!("key-{}", i % keys),
                slack_command(&Uuid::new_v4(), &format!("c{i}")),
            )
        })
        .collect()
}

/// The last sequence number put on each shard.
fn last_per_shard(puts: &[Put]) -> HashMap<String, String> {
    let mut last: HashMap<String, String> = HashMap::new();
    for p in puts {
        let e = last.entry(p.shard.clone()).or_default();
        if e.is_empty() || (p.seq.len(), &p.seq) > (e.len(), &*e) {
            *e = p.seq.clone();
        }
    }
    last
}

/// Waits until every shard's lease checkpoint is `expected`.
async fn wait_checkpoints(
    stream: &TestStream,
    table: &str,
    expected: &HashMap<String, String>,
    timeout: Duration,
) {
    let start = Instant::now();
    loop {
        let cps = checkpoints(&stream.clients, table).await;
        if expected
            .iter()
            .all(|(shard, seq)| cps.get(shard) == Some(seq))
        {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "checkpoints {cps:?} did not reach {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_of_four_shards_reaches_slack_exactly_once_and_checkpoints_are_kcl_rows() {
    let stream = TestStream::create("e2e", 4).await;
    let puts = stream.put(commands(0, 2000, 97)).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(
        &stream.name,
        "TRIM_HORIZON",
        None,
        &slack.url("/services/T0/B0/XYZ"),
        &fast_runtime(),
    );
    let started = Instant::now();
    let mut sauna = Sauna::start(&config, "worker");

    let requests = slack.wait_for(2000, Duration::from_secs(90));
    println!("2000 commands delivered in {:?}", started.elapsed());
    let table = config.observer_id.clone();
    wait_checkpoints(
        &stream,
        &table,
        &last_per_shard(&puts),
        Duration::from_secs(10),
    )
    .await;
    sauna.sigterm();
    let status = sauna.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        sauna.log_tail(30)
    );
    assert_eq!(
        slack.wait_quiet(Duration::from_millis(300), Duration::from_secs(5)),
        2000,
        "exactly once"
    );

    let delivered = texts(&requests);
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), 2000, "no duplicates");
    assert!(
        requests
            .iter()
            .all(|r| r.method == "POST" && r.path == "/services/T0/B0/XYZ")
    );
    assert!(
        requests
            .iter()
            .all(|r| r.header("content-type") == Some("application/json"))
    );

    // The lease table: one row per shard, the Java KCL's attribute names and types.
    let rows = lease_rows(&stream.clients, &table).await;
    assert_eq!(rows.len(), 4);
    let last = last_per_shard(&puts);
    for row in &rows {
        let key = row["leaseKey"].as_s().expect("leaseKey is S");
        assert!(row["leaseCounter"].as_n().is_ok(), "leaseCounter is N");
        assert_eq!(
            row["checkpoint"].as_s().expect("checkpoint is S"),
            &last[key]
        );
        assert_eq!(row["checkpointSubSequenceNumber"].as_n().expect("N"), "0");
        assert!(row["ownerSwitchesSinceCheckpoint"].as_n().is_ok());
        assert!(row["startingHashKey"].as_s().is_ok() && row["endingHashKey"].as_s().is_ok());
        assert!(
            !row.contains_key("leaseOwner"),
            "released on shutdown: {row:?}"
        );
        assert!(
            !row.contains_key("parentShardId"),
            "root shards have no parents"
        );
    }
}
