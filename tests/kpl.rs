//! KPL-aggregated records through `sauna run`: aggregates made by a real aggregator of the KPL
//! format (aws-kinesis-agg, run by `tests/fixtures/kpl_aggregate.py` in the emulators' Python
//! venv), each user record one command; a `kill -9` inside an aggregate resumes at the user
//! record after the checkpoint; corrupt aggregates are one `invalid` outcome each.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::http::{FakeHttp, Reply};
use common::kinesis::{Put, TestStream, lease_rows, slack_command};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::{Value, json};
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One aggregated record of `records` (partition key, data), made by aws-kinesis-agg: the
/// partition key to put it with, and its bytes.
fn aggregate(records: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".emulators/moto/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/emulators.sh install", python.display());
    let input = json!({ "records": records.iter().map(|(pk, data)| json!({ "partitionKey": pk, "dataBase64": B64.encode(data) })).collect::<Vec<_>>() });
    let mut child = Command::new(python)
        .arg(root.join("tests/fixtures/kpl_aggregate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the aggregator starts");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("the aggregator runs");
    assert!(out.status.success(), "kpl_aggregate.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the aggregator");
    assert_eq!(v["userRecords"].as_u64(), Some(records.len() as u64));
    let data = B64.decode(v["data"].as_str().expect("data")).expect("base64");
    assert_eq!(&data[..4], [0xF3, 0x89, 0x9A, 0xC2], "the KPL magic number");
    (v["partitionKey"].as_str().expect("partition key").to_owned(), data)
}

/// `n` Slack commands with texts `{prefix}-0` …, each its own partition key.
fn users(prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("{prefix}-key-{i}"), slack_command(&Uuid::new_v4(), &format!("{prefix}-{i}")))).collect()
}

/// `n` Slack commands with texts `{prefix}-0` …, with partition keys whose hash key is in
/// `range` (as the KPL aggregates: only the user records of one shard).
fn users_of_shard(prefix: &str, n: usize, range: (u128, u128)) -> Vec<(String, Vec<u8>)> {
    use md5::{Digest, Md5};
    (0..)
        .map(|j| format!("{prefix}-key-{j}"))
        .filter(|pk| (range.0..=range.1).contains(&u128::from_be_bytes(Md5::digest(pk.as_bytes()).into())))
        .take(n)
        .enumerate()
        .map(|(i, pk)| (pk, slack_command(&Uuid::new_v4(), &format!("{prefix}-{i}"))))
        .collect()
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

fn wait_all(slack: &FakeHttp, n: usize, timeout: Duration) {
    let start = Instant::now();
    while deliveries(slack).len() < n {
        assert!(start.elapsed() < timeout, "only {} of {n} commands delivered", deliveries(slack).len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The checkpoint of every lease: (checkpoint, checkpointSubSequenceNumber).
async fn checkpoints(stream: &TestStream, table: &str) -> HashMap<String, (String, u64)> {
    lease_rows(&stream.clients, table)
        .await
        .into_iter()
        .filter_map(|r| {
            let key = r.get("leaseKey")?.as_s().ok()?.clone();
            let cp = r.get("checkpoint")?.as_s().ok()?.clone();
            let sub = r.get("checkpointSubSequenceNumber").and_then(|n| n.as_n().ok()?.parse().ok()).unwrap_or(0);
            Some((key, (cp, sub)))
        })
        .collect()
}

fn no_dedup_runtime(extra: &Value) -> Value {
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "dedup": { "enabled": false } }));
    merge(&mut runtime, extra);
    runtime
}

/// The sum of a per-shard ProcessTask metric, read back from the CloudWatch emulator.
async fn metric_sum(stream: &TestStream, namespace: &str, metric: &str) -> f64 {
    let now = std::time::SystemTime::now();
    let mut sum = 0.0;
    for shard in stream.shards().await {
        let dims = [
            aws_sdk_cloudwatch::types::Dimension::builder().name("Operation").value("ProcessTask").build(),
            aws_sdk_cloudwatch::types::Dimension::builder().name("ShardId").value(shard.shard_id()).build(),
        ];
        let stats = stream
            .clients
            .cloudwatch
            .get_metric_statistics()
            .namespace(namespace)
            .metric_name(metric)
            .set_dimensions(Some(dims.to_vec()))
            .start_time(aws_smithy_types::DateTime::from(now - Duration::from_secs(600)))
            .end_time(aws_smithy_types::DateTime::from(now + Duration::from_secs(600)))
            .period(60)
            .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
            .send()
            .await
            .expect("GetMetricStatistics");
        sum += stats.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>();
    }
    sum
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregates_of_1_to_500_user_records_are_each_actioned_exactly_once() {
    let stream = TestStream::create("kpl-once", 2).await;
    let slack = FakeHttp::start();
    // Dedup off: exactly once must come from reading each user record once, not from claims.
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &no_dedup_runtime(&json!({})));
    let plain = |text: &str| (format!("plain-{text}"), slack_command(&Uuid::new_v4(), text));
    let ranges: Vec<(u128, u128)> = stream
        .shards()
        .await
        .iter()
        .map(|s| {
            let r = s.hash_key_range().expect("range");
            (r.starting_hash_key().parse().expect("number"), r.ending_hash_key().parse().expect("number"))
        })
        .collect();
    let sizes = [1usize, 7, 500, 3, 120];
    let mut records = vec![plain("p0")];
    // What each put record is: `Some(n)` for an aggregate of n user records.
    let mut kinds = vec![None];
    for (a, n) in sizes.iter().enumerate() {
        // Aggregated per shard, as the KPL does; put with its first user record's partition
        // key, so it lands on that shard.
        records.push(aggregate(&users_of_shard(&format!("a{a}"), *n, ranges[a % ranges.len()])));
        kinds.push(Some(*n));
        records.push(plain(&format!("p{}", a + 1)));
        kinds.push(None);
    }
    // Each shard ends with an aggregate: its final checkpoint is inside one (at its last user
    // record).
    let tails = [42usize, 9];
    for (t, n) in tails.iter().enumerate() {
        records.push(aggregate(&users_of_shard(&format!("t{t}"), *n, ranges[t % ranges.len()])));
        kinds.push(Some(*n));
    }
    let sizes: Vec<usize> = sizes.iter().chain(&tails).copied().collect();
    let total = sizes.iter().sum::<usize>() + 6;
    let puts = stream.put(records).await;
    let mut sauna = Sauna::start(&config, "kpl-once");
    wait_all(&slack, total, Duration::from_secs(60));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(10));
    let twice: Vec<(String, usize)> = deliveries(&slack).into_iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "actioned more than once: {twice:?}");
    assert_eq!(slack.count(), total);

    // Each shard's final checkpoint is its last record, all of it: an aggregate of n as
    // (S, n − 1), as a KCL checkpoints a finished aggregate.
    let mut last: HashMap<String, (&Put, Option<usize>)> = HashMap::new();
    for (p, kind) in puts.iter().zip(&kinds) {
        last.insert(p.shard.clone(), (p, *kind));
    }
    let expected: HashMap<String, (String, u64)> = last
        .iter()
        .map(|(shard, (p, kind))| (shard.clone(), (p.seq.clone(), kind.map_or(0, |n| n as u64 - 1))))
        .collect();
    let start = Instant::now();
    loop {
        let cps = checkpoints(&stream, &config.observer_id).await;
        if expected.iter().all(|(shard, want)| cps.get(shard) == Some(want)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "final checkpoints {cps:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(30)).success());
    let user_records = metric_sum(&stream, &config.observer_id, "UserRecordsProcessed").await;
    let kinesis_records = metric_sum(&stream, &config.observer_id, "RecordsProcessed").await;
    println!(
        "KPL: {} Kinesis records ({} aggregates of {sizes:?} user records, 6 plain) -> {total} commands, each actioned once; final checkpoints {expected:?}; CloudWatch UserRecordsProcessed = {user_records}, RecordsProcessed = {kinesis_records}",
        puts.len(),
        sizes.len(),
    );
    assert!(expected.values().all(|(_, sub)| *sub > 0), "each shard ends inside an aggregate: {expected:?}");
    assert_eq!(user_records, sizes.iter().sum::<usize>() as f64);
    assert_eq!(kinesis_records, puts.len() as f64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_inside_an_aggregate_resumes_at_the_user_record_after_the_checkpoint() {
    let stream = TestStream::create("kpl-kill9", 1).await;
    let slack = FakeHttp::start();
    // A slow webhook and few commands at once: the aggregate of 500 takes seconds, and the
    // checkpoint (every 200 ms) lands inside it many times.
    slack.behave(|_, _| Reply::ok().after(Duration::from_millis(40)));
    let runtime = |worker: &str| {
        no_dedup_runtime(&json!({ "retrieval": { "maxInFlightPerShard": 8 }, "leases": { "workerId": worker } }))
    };
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime("first"));
    let texts: Vec<String> = (0..500).map(|i| format!("u-{i}")).collect();
    let before = ("before".to_owned(), slack_command(&Uuid::new_v4(), "before"));
    let after = ("after".to_owned(), slack_command(&Uuid::new_v4(), "after"));
    let puts = stream.put(vec![before, aggregate(&users("u", 500)), after]).await;
    let (shard, agg_seq) = (puts[1].shard.clone(), puts[1].seq.clone());
    let table = config.observer_id.clone();

    let mut first = Sauna::start(&config, "first");
    // Kill once a checkpoint inside the aggregate has been written and the kill still lands
    // well inside it.
    let start = Instant::now();
    let mut seen_inside = None;
    loop {
        if let Some((cp, sub)) = checkpoints(&stream, &table).await.get(&shard).cloned()
            && cp == agg_seq
            && sub > 0
        {
            seen_inside.get_or_insert(sub);
        }
        if seen_inside.is_some() && slack.count() >= 120 {
            break;
        }
        assert!(
            slack.count() < 400 && start.elapsed() < Duration::from_secs(60),
            "no checkpoint inside the aggregate seen in time"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    first.kill9();
    // Requests the dead process had sent are all recorded once the server has read them.
    std::thread::sleep(Duration::from_millis(300));
    let before_kill = deliveries(&slack);
    let (cp, sub) = checkpoints(&stream, &table).await.get(&shard).cloned().expect("a lease");
    assert_eq!(cp, agg_seq, "the checkpoint at the kill is inside the aggregate");
    let delivered_after_checkpoint: Vec<usize> =
        (0..500).filter(|i| *i as u64 > sub && before_kill.contains_key(&texts[*i])).collect();

    config.write(
        "runtime.json",
        &json!({ "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": runtime("second") }),
    );
    let mut second = Sauna::start(&config, "second");
    wait_all(&slack, 502, Duration::from_secs(90));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(20));
    second.wait_log(
        &format!("reading from {agg_seq} (after user record {sub} of its KPL aggregate)"),
        1,
        Duration::from_secs(1),
    );
    let all = deliveries(&slack);
    let twice: Vec<usize> = (0..500).filter(|i| all.get(&texts[*i]).copied().unwrap_or(0) > 1).collect();
    let more: Vec<(String, usize)> = all.iter().filter(|(_, n)| **n > 2).map(|(t, n)| (t.clone(), *n)).collect();
    println!(
        "KPL kill -9: a checkpoint inside the aggregate first seen at user record {}; at the kill {} delivered, checkpoint {cp}/{sub}, {} delivered after it (in flight, not yet checkpointed); after the restart {} actioned twice: {twice:?}",
        seen_inside.unwrap_or(0),
        before_kill.len(),
        delivered_after_checkpoint.len(),
        twice.len()
    );
    assert!(sub > 0, "checkpointSubSequenceNumber at the kill: {sub}");
    assert!(more.is_empty(), "actioned three times: {more:?}");
    assert_eq!((all.get("before"), all.get("after")), (Some(&1), Some(&1)));
    assert!(
        twice.iter().all(|i| *i as u64 > sub),
        "a user record at or below the checkpoint was actioned again: {twice:?}"
    );
    assert!(
        twice.len() <= delivered_after_checkpoint.len(),
        "duplicates {} > in flight at the kill {}",
        twice.len(),
        delivered_after_checkpoint.len()
    );
    assert_eq!(twice, delivered_after_checkpoint, "exactly what was actioned after the checkpoint is actioned again");
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_aggregate_is_one_invalid_outcome_and_the_shard_goes_on() {
    use md5::{Digest, Md5};

    let stream = TestStream::create("kpl-corrupt", 1).await;
    let slack = FakeHttp::start();
    let runtime = no_dedup_runtime(&json!({ "deadLetters": { "file": "dead-letters.jsonl" } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    let plain = |text: &str| (format!("plain-{text}"), slack_command(&Uuid::new_v4(), text));

    // The MD5 of a real aggregate with one byte flipped.
    let (key, mut bad_md5) = aggregate(&users("md5", 4));
    *bad_md5.last_mut().expect("bytes") ^= 0x01;
    // A body that is no protobuf (an unterminated varint), with its correct MD5.
    let garbage = [0xffu8; 12];
    let bad_body = [&[0xF3, 0x89, 0x9A, 0xC2][..], &garbage, &Md5::digest(garbage)].concat();
    // Starts like the magic number but is not it: a plain record, invalid as today.
    let almost = vec![0xF3, 0x89, 0x00, b'{'];
    // A good aggregate with one user record that is not a command.
    let mut mixed = users("mixed", 7);
    mixed[3] = ("mixed-key-3".into(), b"not a command".to_vec());
    let records = vec![
        plain("a"),
        (key, bad_md5.clone()),
        plain("b"),
        ("garbage".into(), bad_body.clone()),
        ("almost".into(), almost.clone()),
        aggregate(&mixed),
        plain("c"),
    ];
    let puts = stream.put(records).await;
    let mut sauna = Sauna::start(&config, "kpl-corrupt");
    wait_all(&slack, 9, Duration::from_secs(30));
    sauna.wait_log("] invalid ", 4, Duration::from_secs(10));
    slack.wait_quiet(Duration::from_millis(500), Duration::from_secs(10));
    let d = deliveries(&slack);
    let expected: Vec<String> =
        ["a", "b", "c"].iter().map(|s| s.to_string()).chain([0, 1, 2, 4, 5, 6].map(|i| format!("mixed-{i}"))).collect();
    assert_eq!(d.keys().cloned().collect::<Vec<_>>(), {
        let mut e = expected.clone();
        e.sort();
        e
    });
    assert!(d.values().all(|n| *n == 1), "{d:?}");

    let file = std::fs::read_to_string(config.path().join("dead-letters.jsonl")).expect("dead-letter file");
    let letters: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    println!(
        "dead letters:\n{}",
        letters
            .iter()
            .map(|l| format!("  {} {} {}", l["sequenceNumber"], l["subSequenceNumber"], l["reason"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(letters.len(), 4, "{file}");
    let letter = |seq: &str, sub: Option<u64>| {
        letters
            .iter()
            .find(|l| l["sequenceNumber"] == seq && l["subSequenceNumber"].as_u64() == sub)
            .unwrap_or_else(|| panic!("a dead letter for {seq}/{sub:?} in {file}"))
    };
    let checks: [(&Put, Option<u64>, &[u8], &str); 4] = [
        (&puts[1], None, &bad_md5, "KPL aggregated record: checksum mismatch"),
        (&puts[3], None, &bad_body, "KPL aggregated record: the body is not an AggregatedRecord protobuf"),
        (&puts[4], None, &almost, "record data: not UTF-8"),
        (&puts[5], Some(3), b"not a command", "record data: not JSON"),
    ];
    for (put, sub, data, reason) in checks {
        let l = letter(&put.seq, sub);
        assert_eq!(l["outcome"], "invalid");
        assert_eq!(B64.decode(l["data"].as_str().expect("data")).expect("base64"), data, "the original bytes");
        assert!(l["reason"].as_str().is_some_and(|r| r.starts_with(reason)), "{l}");
    }
    assert_eq!(letter(&puts[5].seq, Some(3))["partitionKey"], "mixed-key-3", "the user record's own partition key");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_a_java_kcl_checkpointed_inside_an_aggregate_resumes_at_the_next_user_record() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use sauna::lease_manager::LeaseStore;

    let stream = TestStream::create("kpl-kcl", 1).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &no_dedup_runtime(&json!({})));
    let before = ("before".to_owned(), slack_command(&Uuid::new_v4(), "before"));
    let after = ("after".to_owned(), slack_command(&Uuid::new_v4(), "after"));
    let puts = stream.put(vec![before, aggregate(&users("u", 20)), after]).await;
    let shard = stream.shards().await.remove(0);
    let range = shard.hash_key_range().expect("range");

    // The row a Java KCL 2.x worker (gone since) leaves after checkpointing user record 11 of
    // the aggregate: `checkpoint` S, `checkpointSubSequenceNumber` 11.
    let table = config.observer_id.clone();
    sauna::lease_manager::LeaseTable::new(stream.clients.dynamodb.clone(), table.clone())
        .ensure_exists()
        .await
        .expect("table");
    let (s, n) = (|v: &str| AttributeValue::S(v.to_owned()), |v: u64| AttributeValue::N(v.to_string()));
    let row = HashMap::from([
        ("leaseKey".to_owned(), s(shard.shard_id())),
        ("leaseOwner".to_owned(), s("kcl-worker-7f3a")),
        ("leaseCounter".to_owned(), n(42)),
        ("checkpoint".to_owned(), s(&puts[1].seq)),
        ("checkpointSubSequenceNumber".to_owned(), n(11)),
        ("ownerSwitchesSinceCheckpoint".to_owned(), n(0)),
        ("startingHashKey".to_owned(), s(range.starting_hash_key())),
        ("endingHashKey".to_owned(), s(range.ending_hash_key())),
    ]);
    stream.clients.dynamodb.put_item().table_name(&table).set_item(Some(row)).send().await.expect("PutItem");

    let mut sauna = Sauna::start(&config, "kcl");
    let expected: Vec<String> = (12..20).map(|i| format!("u-{i}")).chain(["after".to_owned()]).collect();
    wait_all(&slack, expected.len(), Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(10));
    let got = deliveries(&slack);
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        want,
        "the user records after 11, and the record after the aggregate"
    );
    assert!(got.values().all(|n| *n == 1));
    sauna.wait_log(
        &format!("reading from {} (after user record 11 of its KPL aggregate)", puts[1].seq),
        1,
        Duration::from_secs(1),
    );
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(30)).success());
    let cps = checkpoints(&stream, &table).await;
    println!("KCL row at {}/11: resumed with {expected:?}; final checkpoint {:?}", puts[1].seq, cps[shard.shard_id()]);
    assert_eq!(cps[shard.shard_id()], (puts[2].seq.clone(), 0), "the plain record after it, sub-sequence number 0");
}
