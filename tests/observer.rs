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
    (from..from + n).map(|i| (format!("key-{}", i % keys), slack_command(&Uuid::new_v4(), &format!("c{i}")))).collect()
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
async fn wait_checkpoints(stream: &TestStream, table: &str, expected: &HashMap<String, String>, timeout: Duration) {
    let start = Instant::now();
    loop {
        let cps = checkpoints(&stream.clients, table).await;
        if expected.iter().all(|(shard, seq)| cps.get(shard) == Some(seq)) {
            return;
        }
        assert!(start.elapsed() < timeout, "checkpoints {cps:?} did not reach {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_of_four_shards_reaches_slack_exactly_once_and_checkpoints_are_kcl_rows() {
    let stream = TestStream::create("e2e", 4).await;
    let puts = stream.put(commands(0, 2000, 97)).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/services/T0/B0/XYZ"), &fast_runtime());
    let started = Instant::now();
    let mut sauna = Sauna::start(&config, "worker");

    let requests = slack.wait_for(2000, Duration::from_secs(90));
    println!("2000 commands delivered in {:?}", started.elapsed());
    let table = config.observer_id.clone();
    wait_checkpoints(&stream, &table, &last_per_shard(&puts), Duration::from_secs(10)).await;
    sauna.sigterm();
    let status = sauna.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "clean exit on SIGTERM: {status:?}\n{}", sauna.log_tail(30));
    assert_eq!(slack.wait_quiet(Duration::from_millis(300), Duration::from_secs(5)), 2000, "exactly once");

    let delivered = texts(&requests);
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), 2000, "no duplicates");
    assert!(requests.iter().all(|r| r.method == "POST" && r.path == "/services/T0/B0/XYZ"));
    assert!(requests.iter().all(|r| r.header("content-type") == Some("application/json")));

    // The lease table: one row per shard, the Java KCL's attribute names and types.
    let rows = lease_rows(&stream.clients, &table).await;
    assert_eq!(rows.len(), 4);
    let last = last_per_shard(&puts);
    for row in &rows {
        let key = row["leaseKey"].as_s().expect("leaseKey is S");
        assert!(row["leaseCounter"].as_n().is_ok(), "leaseCounter is N");
        assert_eq!(row["checkpoint"].as_s().expect("checkpoint is S"), &last[key]);
        assert_eq!(row["checkpointSubSequenceNumber"].as_n().expect("N"), "0");
        assert!(row["ownerSwitchesSinceCheckpoint"].as_n().is_ok());
        assert!(row["startingHashKey"].as_s().is_ok() && row["endingHashKey"].as_s().is_ok());
        assert!(!row.contains_key("leaseOwner"), "released on shutdown: {row:?}");
        assert!(!row.contains_key("parentShardId"), "root shards have no parents");
    }
}

/// Index of a "c<i>" text.
fn index_of(text: &str) -> usize {
    text.trim_start_matches('c').parse().expect("c<i>")
}

fn seq_gt(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_restart_delivers_nothing_again_and_kill_9_loses_nothing() {
    let stream = TestStream::create("restart", 4).await;
    let mut puts = stream.put(commands(0, 500, 31)).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fast_runtime());
    let table = config.observer_id.clone();

    // Run 1: everything, then SIGTERM.
    let mut sauna = Sauna::start(&config, "run-1");
    slack.wait_for(500, Duration::from_secs(60));
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());

    // Run 2, clean restart: reads every shard again from its checkpoint; delivers nothing.
    let mut sauna = Sauna::start(&config, "run-2");
    sauna.wait_log("reading from", 4, Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.count(), 500, "nothing delivered again after a clean stop");
    println!("clean restart: 0 duplicates");

    // Run 2 goes on with 1,000 more, slowly, and is killed with -9 in the middle.
    slack.behave(|_, _| common::http::Reply::ok().after(Duration::from_millis(15)));
    puts.extend(stream.put(commands(500, 1000, 31)).await);
    slack.wait_for(500 + 300, Duration::from_secs(60));
    sauna.kill9();
    let at_kill = checkpoints(&stream.clients, &table).await;
    let delivered_before = slack.wait_quiet(Duration::from_millis(300), Duration::from_secs(10));
    println!("killed with -9 after {} of 1000 new commands; checkpoints then: {at_kill:?}", delivered_before - 500);

    // Run 3: nothing lost; duplicates only after the checkpoints of the moment of the kill.
    slack.behave(|_, _| common::http::Reply::ok());
    let mut sauna = Sauna::start(&config, "run-3");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = texts(&slack.requests()).into_iter().collect();
        if seen.len() == 1500 {
            break;
        }
        assert!(Instant::now() < deadline, "only {} of 1500 distinct commands delivered", seen.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_checkpoints(&stream, &table, &last_per_shard(&puts), Duration::from_secs(10)).await;
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());

    let all = texts(&slack.requests());
    let mut count: HashMap<&str, usize> = HashMap::new();
    for t in &all {
        *count.entry(t.as_str()).or_default() += 1;
    }
    let duplicates: Vec<&str> = count.iter().filter(|(_, n)| **n > 1).map(|(t, _)| *t).collect();
    for t in &duplicates {
        let put = &puts[index_of(t)];
        let cp = at_kill.get(&put.shard).map(String::as_str).unwrap_or("TRIM_HORIZON");
        assert!(
            cp == "TRIM_HORIZON" || seq_gt(&put.seq, cp),
            "{t} (shard {}, seq {}) was delivered again although the checkpoint {cp} covered it",
            put.shard,
            put.seq
        );
    }
    println!(
        "kill -9 then restart: 0 lost, {} duplicates, all after the checkpoints of the moment of the kill",
        duplicates.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_positions_start_where_they_should_and_checkpoints_win_on_the_second_run() {
    let slack = FakeHttp::start();
    let runtime = fast_runtime();

    // LATEST: only what is written after the consumers started.
    let stream = TestStream::create("latest", 2).await;
    stream.put(commands(0, 50, 13)).await;
    let config = ConfigDir::new(&stream.name, "LATEST", None, &slack.url("/latest"), &runtime);
    let mut sauna = Sauna::start(&config, "latest-1");
    sauna.wait_log("reading from LATEST", 2, Duration::from_secs(20));
    stream.put(commands(50, 50, 13)).await;
    slack.wait_for(50, Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(10));
    let got: HashSet<usize> = texts(&slack.requests()).iter().map(|t| index_of(t)).collect();
    assert_eq!(got, (50..100).collect(), "LATEST delivers exactly the records written after the start");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    // Second run, now configured TRIM_HORIZON: the checkpoints win; only the 30 new ones.
    stream.put(commands(100, 30, 13)).await;
    config.write_observer(&stream.name, "TRIM_HORIZON", None);
    let mut sauna = Sauna::start(&config, "latest-2");
    slack.wait_for(80, Duration::from_secs(30));
    sauna.wait_log("reading from", 2, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got: Vec<usize> = texts(&slack.requests()).iter().map(|t| index_of(t)).collect();
    assert_eq!(got.len(), 80, "the checkpoint wins over initialPosition");
    assert_eq!(got[50..].iter().copied().collect::<HashSet<_>>(), (100..130).collect());
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());

    // AT_TIMESTAMP: only what arrived at or after the instant.
    let slack = FakeHttp::start();
    let stream = TestStream::create("attimestamp", 2).await;
    stream.put(commands(0, 40, 11)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let at = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stream.put(commands(40, 40, 11)).await;
    let config = ConfigDir::new(&stream.name, "AT_TIMESTAMP", Some(at), &slack.url("/ts"), &runtime);
    let mut sauna = Sauna::start(&config, "ts-1");
    slack.wait_for(40, Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(10));
    let got: HashSet<usize> = texts(&slack.requests()).iter().map(|t| index_of(t)).collect();
    assert_eq!(got, (40..80).collect(), "AT_TIMESTAMP skips what came before the instant");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    stream.put(commands(80, 20, 11)).await;
    let mut sauna = Sauna::start(&config, "ts-2");
    slack.wait_for(60, Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(10));
    let got: Vec<usize> = texts(&slack.requests()).iter().map(|t| index_of(t)).collect();
    assert_eq!(got.len(), 60, "second run resumes from the checkpoints");
    assert_eq!(got[40..].iter().copied().collect::<HashSet<_>>(), (80..100).collect());
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_and_a_merge_while_consuming_lose_nothing_and_keep_parents_before_children() {
    let stream = TestStream::create("reshard", 2).await;
    let slack = FakeHttp::start();
    let mut runtime = fast_runtime();
    // Keep finished parents in the table so the test can see their SHARD_END.
    common::sauna::merge(&mut runtime, &serde_json::json!({ "leases": { "cleanupLeasesUponShardCompletion": false } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/reshard"), &runtime);
    let table = config.observer_id.clone();
    let mut sauna = Sauna::start(&config, "reshard");

    const KEYS: usize = 20;
    const ROUNDS: usize = 60;
    let parent = stream.open_shards().await[0].shard_id().to_owned();
    let mut children = vec![];
    for round in 0..ROUNDS {
        let batch: Vec<(String, Vec<u8>)> = (0..KEYS)
            .map(|k| (format!("key-{k}"), slack_command(&Uuid::new_v4(), &format!("k{k}-r{round}"))))
            .collect();
        stream.put(batch).await;
        if round == ROUNDS / 3 {
            stream.split(&parent).await;
            children = stream
                .open_shards()
                .await
                .into_iter()
                .filter(|s| s.parent_shard_id() == Some(parent.as_str()))
                .map(|s| s.shard_id().to_owned())
                .collect();
            println!("split {parent} into {children:?}");
        }
        if round == 2 * ROUNDS / 3 {
            stream.merge(&children[0], &children[1]).await;
            println!("merged {children:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slack.wait_for(KEYS * ROUNDS, Duration::from_secs(90));
    slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(10));

    // Every key: every round exactly once, in order (parent records before child records).
    let mut per_key: HashMap<usize, Vec<usize>> = HashMap::new();
    for t in texts(&slack.requests()) {
        let (k, r) = t.trim_start_matches('k').split_once("-r").expect("k<k>-r<r>");
        per_key.entry(k.parse().expect("k")).or_default().push(r.parse().expect("r"));
    }
    assert_eq!(per_key.len(), KEYS);
    for (k, rounds) in &per_key {
        assert_eq!(rounds, &(0..ROUNDS).collect::<Vec<_>>(), "key {k}: delivered out of order, lost or twice");
    }

    // Finished parents end at SHARD_END with their children recorded.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = lease_rows(&stream.clients, &table).await;
        let at_end: Vec<String> = rows
            .iter()
            .filter(|r| r.get("checkpoint").and_then(|c| c.as_s().ok()).map(String::as_str) == Some("SHARD_END"))
            .map(|r| r["leaseKey"].as_s().expect("S").clone())
            .collect();
        if at_end.len() == 3 {
            let parent_row = rows.iter().find(|r| r["leaseKey"].as_s().ok() == Some(&parent)).expect("parent row");
            let mut recorded = parent_row["childShardIds"].as_ss().expect("childShardIds is SS").clone();
            recorded.sort();
            let mut expected = children.clone();
            expected.sort();
            assert_eq!(recorded, expected);
            let merged = rows
                .iter()
                .find(|r| r.get("parentShardId").and_then(|p| p.as_ss().ok()).is_some_and(|p| p.len() == 2))
                .expect("the merged shard's lease names both parents");
            assert!(merged["checkpoint"].as_s().expect("S").chars().all(|c| c.is_ascii_digit()));
            break;
        }
        assert!(Instant::now() < deadline, "parents at SHARD_END: {at_end:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_of_one_partition_key_go_one_at_a_time_in_order_without_holding_up_other_keys() {
    let stream = TestStream::create("ordering", 1).await;
    let slack = FakeHttp::start();
    const SLOW: Duration = Duration::from_millis(600);
    slack.behave(|r, _| {
        let slow = r.json()["text"].as_str().is_some_and(|t| t.starts_with("slow"));
        common::http::Reply::ok().after(if slow { SLOW } else { Duration::ZERO })
    });
    let mut records = vec![];
    for i in 0..5 {
        records.push(("the-incident".to_owned(), slack_command(&Uuid::new_v4(), &format!("slow-{i}"))));
        for j in 0..4 {
            records.push((format!("other-{i}-{j}"), slack_command(&Uuid::new_v4(), &format!("fast-{i}-{j}"))));
        }
    }
    stream.put(records).await;
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/order"), &fast_runtime());
    let mut sauna = Sauna::start(&config, "ordering");
    let requests = slack.wait_for(25, Duration::from_secs(30));
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());

    let slow: Vec<_> =
        requests.iter().filter(|r| r.json()["text"].as_str().is_some_and(|t| t.starts_with("slow"))).collect();
    let order: Vec<String> = slow.iter().filter_map(|r| r.json()["text"].as_str().map(str::to_owned)).collect();
    assert_eq!(order, ["slow-0", "slow-1", "slow-2", "slow-3", "slow-4"], "one key: sequence order");
    for pair in slow.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= SLOW - Duration::from_millis(20),
            "the next command of a key waits for the previous answer ({gap:?})"
        );
    }
    let last_fast = requests
        .iter()
        .filter(|r| r.json()["text"].as_str().is_some_and(|t| t.starts_with("fast")))
        .map(|r| r.at)
        .max()
        .expect("fast ones");
    let second_slow = slow[1].at;
    println!(
        "slow key: {:?} per command; every other key done {:?} before the slow key's second command",
        SLOW,
        second_slow.saturating_duration_since(last_fast)
    );
    assert!(last_fast < second_slow, "other keys are not held up by the slow one");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_get_their_outcome_and_never_stall_the_shard() {
    let stream = TestStream::create("bad", 1).await;
    let slack = FakeHttp::start();
    let id = Uuid::new_v4;
    let pagerduty = common::kinesis::command(
        &id(),
        "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0",
        serde_json::json!({"service_key": "k", "event_type": "trigger", "description": "d"}),
        None,
        "2026-01-01T00:00:00Z",
    );
    let expired = common::kinesis::command(
        &id(),
        "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
        serde_json::json!({"text": "too late"}),
        Some(1000),
        "2017-01-02T19:14:42+02:00",
    );
    let no_text = common::kinesis::command(
        &id(),
        "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
        serde_json::json!({"channel": "#ops"}),
        None,
        "2026-01-01T00:00:00Z",
    );
    let k = |s: &str| s.to_owned();
    let puts = stream
        .put(vec![
            (k("a"), slack_command(&id(), "c0")),
            (k("a"), b"{not json".to_vec()),
            (k("a"), vec![0xff, 0xfe, 0x00]),
            (k("a"), pagerduty),
            (k("a"), expired),
            (k("a"), slack_command(&id(), "c1")),
            (k("a"), no_text),
            (k("a"), slack_command(&id(), "c2")),
            (k("a"), b"trailing garbage".to_vec()),
        ])
        .await;
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/bad"), &fast_runtime());
    let table = config.observer_id.clone();
    let mut sauna = Sauna::start(&config, "bad");
    slack.wait_for(3, Duration::from_secs(30));
    wait_checkpoints(&stream, &table, &last_per_shard(&puts), Duration::from_secs(10)).await;
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    assert_eq!(texts(&slack.requests()), vec!["c0", "c1", "c2"]);

    // Each outcome is logged once, with shard, sequence number and commandId.
    let log = sauna.log_text();
    let count = |outcome: &str| {
        log.lines().filter(|l| l.contains("sauna::outcome") && l.contains(&format!("] {outcome} shard="))).count()
    };
    assert_eq!(
        (count("done"), count("invalid"), count("unroutable"), count("expired")),
        (3, 4, 1, 1),
        "outcome log lines:\n{}",
        log.lines().filter(|l| l.contains("sauna::outcome")).collect::<Vec<_>>().join("\n")
    );
    for p in &puts {
        assert_eq!(log.matches(&format!("seq={} ", p.seq)).count(), 1, "one outcome line for {}", p.seq);
    }
    assert!(log.contains("reason: record data: not JSON"));
    assert!(log.contains("reason: data.command.schema: no enabled responder takes iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-0"));
    assert!(log.contains("reason: data.envelope.data.execution.timeToLive: expired"));
}
