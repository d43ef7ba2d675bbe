//! Several `sauna run` processes on one stream, sharing its shards through the lease table:
//! balancing, a joining worker, kill -9, SIGTERM, SIGSTOP/SIGCONT, operator handoff, a table
//! left by a Java KCL 2.x application, and `sauna leases`.
//!
//! Each worker posts to its own path of the stand-in Slack server, so every delivery is
//! attributed to the worker that made it. Timings: failover 2 s, so a take interval is
//! 2 × (2 s + 25 ms) = 4.05 s and the renew (and discovery) interval 641 ms.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::http::FakeHttp;
use common::kinesis::{Put, TestStream, checkpoints, lease_rows, slack_command};
use common::proxy::FaultProxy;
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::json;
use uuid::Uuid;

const FAILOVER: Duration = Duration::from_secs(2);
const TAKE_INTERVAL: Duration = Duration::from_millis(4050);

/// These tests start many processes: one at a time keeps their timings meaningful.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A config directory for worker `name` of the observer of `stream`.
fn worker_config(stream: &str, name: &str, slack: &FakeHttp, extra: serde_json::Value) -> ConfigDir {
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "leases": { "workerId": name } }));
    merge(&mut runtime, &extra);
    ConfigDir::new(stream, "TRIM_HORIZON", None, &slack.url(&format!("/{name}")), &runtime)
}

/// Puts commands "c<i>" at a steady pace until stopped; remembers where each landed and when.
struct Producer {
    puts: Arc<Mutex<Vec<(Put, Instant)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    fn start(stream: &TestStream, per_second: usize) -> Self {
        let puts: Arc<Mutex<Vec<(Put, Instant)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (puts.clone(), stop.clone());
        let stream = TestStream { name: stream.name.clone(), clients: stream.clients.clone() };
        let task = tokio::spawn(async move {
            let mut i = 0;
            let batch = (per_second / 10).max(1);
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let records: Vec<_> = (i..i + batch)
                    .map(|n| (format!("key-{}", n % 101), slack_command(&Uuid::new_v4(), &format!("c{n}"))))
                    .collect();
                let at = Instant::now();
                let mut done = stream.put(records).await;
                for d in &mut done {
                    d.index += i;
                }
                p.lock().expect("lock").extend(done.into_iter().map(|d| (d, at)));
                i += batch;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Producer { puts, stop, task }
    }

    async fn stop(self) -> Vec<(Put, Instant)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.task.await;
        let mut puts = self.puts.lock().expect("lock").clone();
        puts.sort_by_key(|(p, _)| p.index);
        puts
    }
}

/// Configs and processes of workers w1, w2, … (each with `extra[i]` merged into its runtime).
fn start_workers(stream: &TestStream, slack: &FakeHttp, extra: &[serde_json::Value]) -> (Vec<ConfigDir>, Vec<Sauna>) {
    let configs: Vec<ConfigDir> = extra
        .iter()
        .enumerate()
        .map(|(i, x)| worker_config(&stream.name, &format!("w{}", i + 1), slack, x.clone()))
        .collect();
    let workers = configs.iter().enumerate().map(|(i, c)| Sauna::start(c, &format!("w{}", i + 1))).collect();
    (configs, workers)
}

/// Three workers on a 6-shard stream under a steady producer, balanced 2/2/2.
struct Running {
    stream: TestStream,
    slack: FakeHttp,
    producer: Producer,
    table: String,
    workers: Vec<Sauna>,
    _configs: Vec<ConfigDir>,
}

async fn three_on_six(prefix: &str) -> Running {
    let stream = TestStream::create(prefix, 6).await;
    let slack = FakeHttp::start();
    let producer = Producer::start(&stream, 60);
    let (configs, workers) = start_workers(&stream, &slack, &[json!({}), json!({}), json!({})]);
    let table = configs[0].observer_id.clone();
    wait_owners(&stream, &table, TAKE_INTERVAL * 4, "2/2/2", |o| sorted_counts(o) == [2, 2, 2]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Running { stream, slack, producer, table, workers, _configs: configs }
}

/// The leases `worker` holds.
async fn shards_of(stream: &TestStream, table: &str, worker: &str) -> Vec<String> {
    owners(stream, table).await.into_iter().filter(|(_, w)| w.as_deref() == Some(worker)).map(|(k, _)| k).collect()
}

/// True when every one of `shards` is owned by a worker other than `worker`.
fn moved_off(o: &BTreeMap<String, Option<String>>, shards: &[String], worker: &str) -> bool {
    shards.iter().all(|k| o.get(k).is_some_and(|w| w.as_deref().is_some_and(|w| w != worker)))
}

fn index(text: &str) -> usize {
    text.trim_start_matches('c').parse().expect("c<i>")
}

/// Deliveries: index → [(worker, arrival)].
fn deliveries(slack: &FakeHttp) -> BTreeMap<usize, Vec<(String, Instant)>> {
    let mut out: BTreeMap<usize, Vec<(String, Instant)>> = BTreeMap::new();
    for r in slack.requests() {
        if let Some(t) = r.json()["text"].as_str() {
            out.entry(index(t)).or_default().push((r.path.trim_start_matches('/').to_owned(), r.at));
        }
    }
    out
}

/// Waits until every put command was delivered at least once.
fn wait_all_delivered(slack: &FakeHttp, n: usize, timeout: Duration) -> BTreeMap<usize, Vec<(String, Instant)>> {
    let start = Instant::now();
    loop {
        let d = deliveries(slack);
        if (0..n).all(|i| d.contains_key(&i)) {
            return d;
        }
        let missing = (0..n).filter(|i| !d.contains_key(i)).count();
        assert!(start.elapsed() < timeout, "{missing} of {n} commands never delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Owner of each lease (None: free), finished leases left out. Owners are named by the
/// configured worker id ("w1"), without the `:<UUID>` each process adds to it.
async fn owners(stream: &TestStream, table: &str) -> BTreeMap<String, Option<String>> {
    raw_owners(stream, table)
        .await
        .into_iter()
        .map(|(k, o)| (k, o.map(|o| o.split(':').next().unwrap_or_default().to_owned())))
        .collect()
}

/// Owner of each lease as the table has it (`<workerId>:<UUID>`).
async fn raw_owners(stream: &TestStream, table: &str) -> BTreeMap<String, Option<String>> {
    lease_rows(&stream.clients, table)
        .await
        .into_iter()
        .filter(|r| r.get("checkpoint").and_then(|c| c.as_s().ok()).map(String::as_str) != Some("SHARD_END"))
        .filter(|r| r.get("entityType").is_none())
        .filter_map(|r| {
            let k = r.get("leaseKey")?.as_s().ok()?.clone();
            Some((k, r.get("leaseOwner").and_then(|o| o.as_s().ok()).cloned()))
        })
        .collect()
}

fn counts(owners: &BTreeMap<String, Option<String>>) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for o in owners.values().flatten() {
        *c.entry(o.clone()).or_insert(0) += 1;
    }
    c
}

/// Polls the lease table until `done(owners)`; returns how long it took.
async fn wait_owners(
    stream: &TestStream,
    table: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, Option<String>>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let o = owners(stream, table).await;
        if done(&o) {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}; owners {o:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sorted_counts(o: &BTreeMap<String, Option<String>>) -> Vec<usize> {
    let mut v: Vec<usize> = counts(o).into_values().collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

fn duplicates(d: &BTreeMap<usize, Vec<(String, Instant)>>) -> Vec<usize> {
    d.iter().filter(|(_, v)| v.len() > 1).map(|(i, _)| *i).collect()
}

/// Longest time from a put to its first delivery.
fn max_latency(puts: &[(Put, Instant)], d: &BTreeMap<usize, Vec<(String, Instant)>>) -> Duration {
    puts.iter()
        .filter_map(|(p, at)| {
            d.get(&p.index).and_then(|v| v.iter().map(|(_, t)| *t).min()).map(|t| t.saturating_duration_since(*at))
        })
        .max()
        .unwrap_or_default()
}

fn stop_all(workers: &mut [Sauna]) {
    for w in workers.iter_mut() {
        if let Ok(None) = w.child.try_wait() {
            w.sigterm();
        }
    }
    for w in workers.iter_mut() {
        let status = w.wait_exit(Duration::from_secs(30));
        assert!(status.success(), "{} exits cleanly: {status:?}\n{}", w.name, w.log_tail(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_converge_a_fourth_gets_its_share_and_an_operator_handoff_moves_a_shard() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("balance", 8).await;
    let slack = FakeHttp::start();
    let producer = Producer::start(&stream, 80);
    let configs: Vec<ConfigDir> =
        (1..=4).map(|n| worker_config(&stream.name, &format!("w{n}"), &slack, json!({}))).collect();
    let table = configs[0].observer_id.clone();

    let mut workers: Vec<Sauna> = (0..3).map(|i| Sauna::start(&configs[i], &format!("w{}", i + 1))).collect();
    let took = wait_owners(&stream, &table, TAKE_INTERVAL * 3 + Duration::from_secs(3), "3/3/2", |o| {
        o.len() == 8 && o.values().all(Option::is_some) && sorted_counts(o) == [3, 3, 2]
    })
    .await;
    println!("3 workers on 8 shards: 3/3/2 after {took:?} (three take cycles = {:?})", TAKE_INTERVAL * 3);

    workers.push(Sauna::start(&configs[3], "w4"));
    let took = wait_owners(&stream, &table, TAKE_INTERVAL * 3 + Duration::from_secs(3), "2/2/2/2", |o| {
        sorted_counts(o) == [2, 2, 2, 2]
    })
    .await;
    println!("a 4th worker joined: 2/2/2/2 after {took:?}");

    // An operator asks w4 to give one of its shards up.
    let o = owners(&stream, &table).await;
    let shard = o.iter().find(|(_, w)| w.as_deref() == Some("w4")).map(|(k, _)| k.clone()).expect("w4 holds one");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sauna"))
        .args(["leases", "--config-dir"])
        .arg(configs[0].path())
        .args(["--give-up", &shard])
        .env("RUST_LOG", "off")
        .output()
        .expect("sauna leases runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let took = wait_owners(&stream, &table, Duration::from_secs(10), "handed over", |o| {
        o.get(&shard).is_some_and(|w| w.as_deref().is_some_and(|w| w != "w4"))
    })
    .await;
    println!("operator handoff of {shard} from w4: taken elsewhere after {took:?}");
    workers[3].wait_log(&format!("shard {shard} handed over"), 1, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let puts = producer.stop().await;
    let d = wait_all_delivered(&slack, puts.len(), Duration::from_secs(60));
    let latency = max_latency(&puts, &d);
    println!(
        "{} commands, longest put-to-delivery {latency:?} (failover {FAILOVER:?}), duplicates {}",
        puts.len(),
        duplicates(&d).len()
    );
    assert!(latency < FAILOVER * 3 / 2, "a shard stayed unprocessed for {latency:?}");
    assert!(duplicates(&d).is_empty(), "balancing and handoffs action nothing twice: {:?}", duplicates(&d));
    stop_all(&mut workers);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_of_three_workers_loses_nothing_and_its_shards_move_within_failover_plus_a_take_interval() {
    let _serial = SERIAL.lock().await;
    let Running { stream, slack, producer, table, mut workers, .. } = three_on_six("kill9").await;

    let victim = shards_of(&stream, &table, "w2").await;
    workers[1].kill9();
    let killed_at = Instant::now();
    let at_kill = checkpoints(&stream.clients, &table).await;
    let took = wait_owners(&stream, &table, FAILOVER + TAKE_INTERVAL + Duration::from_secs(3), "taken over", |o| {
        moved_off(o, &victim, "w2")
    })
    .await;
    println!(
        "kill -9 of w2: its shards {victim:?} processing elsewhere after {took:?} (bound: failover + take interval = {:?})",
        FAILOVER + TAKE_INTERVAL
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let puts = producer.stop().await;
    let d = wait_all_delivered(&slack, puts.len(), Duration::from_secs(60));
    let dups = duplicates(&d);
    for i in &dups {
        let p = &puts[*i].0;
        let cp = at_kill.get(&p.shard).map(String::as_str).unwrap_or("TRIM_HORIZON");
        assert!(
            victim.contains(&p.shard) && (cp == "TRIM_HORIZON" || (p.seq.len(), &p.seq) > (cp.len(), &cp.to_owned())),
            "c{i} (shard {}, seq {}) delivered twice but covered by checkpoint {cp}",
            p.shard,
            p.seq
        );
    }
    println!(
        "kill -9: {} commands, 0 lost, {} duplicates, all on w2's shards after their checkpoints at the kill; {:?} after the kill",
        puts.len(),
        dups.len(),
        killed_at.elapsed()
    );
    workers.remove(1);
    stop_all(&mut workers);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_of_one_of_three_workers_hands_its_shards_over_at_once_with_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let Running { stream, slack, producer, table, mut workers, .. } = three_on_six("sigterm").await;

    let leaving = shards_of(&stream, &table, "w3").await;
    workers[2].sigterm();
    let took =
        wait_owners(&stream, &table, Duration::from_secs(10), "resumed elsewhere", |o| moved_off(o, &leaving, "w3"))
            .await;
    println!("SIGTERM of w3: its shards {leaving:?} resumed elsewhere after {took:?}");
    assert!(took < Duration::from_secs(2), "resumed within 2 s: {took:?}");
    assert!(workers[2].wait_exit(Duration::from_secs(20)).success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let puts = producer.stop().await;
    let d = wait_all_delivered(&slack, puts.len(), Duration::from_secs(60));
    println!("SIGTERM: {} commands, 0 lost, {} duplicates", puts.len(), duplicates(&d).len());
    assert!(duplicates(&d).is_empty(), "nothing twice after a graceful stop: {:?}", duplicates(&d));
    workers.remove(2);
    stop_all(&mut workers);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_frozen_past_the_failover_time_fences_itself_on_resume() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("sigstop", 6).await;
    let slack = FakeHttp::start();
    let producer = Producer::start(&stream, 60);
    // w1 takes leases at its start only (the others balance with it), so after it resumes it
    // holds nothing: every delivery it made after the resume would be concurrent processing.
    let quiet = json!({ "leases": {
        "discoveryIntervalMillis": 3_600_000, "takeIntervalMillis": 3_600_000, "signalPollIntervalMillis": 0
    } });
    // w1 talks to DynamoDB through a proxy that records every request it makes.
    let dynamodb = FaultProxy::start(&std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("emulators"));
    let configs: Vec<ConfigDir> = [quiet, json!({}), json!({})]
        .into_iter()
        .enumerate()
        .map(|(i, x)| worker_config(&stream.name, &format!("w{}", i + 1), &slack, x))
        .collect();
    let mut workers = vec![Sauna::start_with_env(&configs[0], "w1", &[("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb.url())])];
    let table = configs[0].observer_id.clone();
    // w1 first, alone: it takes every lease; the others then ask it for their share.
    wait_owners(&stream, &table, TAKE_INTERVAL * 4, "all w1's", |o| counts(o).get("w1") == Some(&6)).await;
    workers.extend((1..3).map(|i| Sauna::start(&configs[i], &format!("w{}", i + 1))));
    wait_owners(&stream, &table, TAKE_INTERVAL * 4, "all owned, some by w1", |o| {
        o.len() == 6 && o.values().all(Option::is_some) && counts(o).get("w1").is_some_and(|n| *n >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let frozen = shards_of(&stream, &table, "w1").await;
    workers[0].sigstop();
    let stopped_at = Instant::now();
    let took = wait_owners(&stream, &table, FAILOVER + TAKE_INTERVAL + Duration::from_secs(3), "taken over", |o| {
        moved_off(o, &frozen, "w1")
    })
    .await;
    println!("SIGSTOP of w1: its shards {frozen:?} taken over after {took:?}");
    tokio::time::sleep((FAILOVER * 2).saturating_sub(stopped_at.elapsed())).await;
    workers[0].sigcont();
    let resumed_at = Instant::now();
    workers[0].wait_log("lost (not renewed for", frozen.len(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // After the resume, w1 wrote nothing to the leases it lost: no checkpoint even tried (it
    // fenced itself), and no write of any kind accepted.
    let rows = lease_rows(&stream.clients, &table).await;
    for k in &frozen {
        let row = rows.iter().find(|r| r["leaseKey"].as_s().ok() == Some(k)).expect("row");
        let owner = row.get("leaseOwner").and_then(|o| o.as_s().ok()).map(String::as_str);
        assert!(!owner.is_some_and(|o| o.starts_with("w1:")), "{k} is not w1's any more");
    }
    let writes: Vec<(String, bool, u16)> = dynamodb
        .requests()
        .into_iter()
        .filter(|r| r.at > resumed_at && r.op == "UpdateItem")
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            let key = body["Key"]["leaseKey"]["S"].as_str()?.to_owned();
            let names = body["ExpressionAttributeNames"].as_object().cloned().unwrap_or_default();
            let checkpoint = names.values().any(|v| v == "checkpoint");
            frozen.contains(&key).then_some((key, checkpoint, r.status))
        })
        .collect();
    println!("w1's writes to the leases it lost, after the resume: {writes:?}");
    assert!(dynamodb.forwarded("UpdateItem") > 0, "w1's lease writes go through the recording proxy");
    assert!(writes.iter().all(|(_, checkpoint, _)| !checkpoint), "a checkpoint was tried: {writes:?}");
    assert!(writes.iter().all(|(_, _, status)| *status != 200), "a write was accepted: {writes:?}");
    let log = workers[0].log_text();
    let after_resume: Vec<&str> =
        log.lines().filter(|l| l.contains("checkpoint of") && l.contains("refused")).collect();
    println!("w1 after SIGCONT: {} refused checkpoint attempts, e.g. {:?}", after_resume.len(), after_resume.first());

    let puts = producer.stop().await;
    let d = wait_all_delivered(&slack, puts.len(), Duration::from_secs(60));
    // w1 actioned nothing after it resumed: it had lost every lease while frozen.
    let concurrent: Vec<usize> =
        d.iter().filter(|(_, v)| v.iter().any(|(w, t)| w == "w1" && *t > resumed_at)).map(|(i, _)| *i).collect();
    println!(
        "SIGSTOP/SIGCONT: {} commands, 0 lost, {} duplicates (records after w1's last checkpoints), {} processed by two workers after the failover",
        puts.len(),
        duplicates(&d).len(),
        concurrent.len()
    );
    assert!(concurrent.is_empty(), "processed concurrently after resume: {concurrent:?}");
    stop_all(&mut workers);
}

/// Puts `n` commands with indices from `from` and returns where they landed.
async fn put_range(stream: &TestStream, from: usize, n: usize) -> Vec<Put> {
    let mut puts = stream
        .put(
            (from..from + n)
                .map(|i| (format!("key-{}", i % 37), slack_command(&Uuid::new_v4(), &format!("c{i}"))))
                .collect(),
        )
        .await;
    for p in &mut puts {
        p.index += from;
    }
    puts
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_table_left_by_a_java_kcl_2_application_is_resumed_from_its_checkpoints() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("kcl", 2).await;
    let slack = FakeHttp::start();
    let mut puts = put_range(&stream, 0, 120).await;
    let shards = stream.open_shards().await;
    let (s0, s1) = (shards[0].shard_id().to_owned(), shards[1].shard_id().to_owned());
    stream.split(&s0).await;
    puts.extend(put_range(&stream, 120, 120).await);
    let all = stream.shards().await;
    let children: Vec<&aws_sdk_kinesis::types::Shard> =
        all.iter().filter(|s| s.parent_shard_id() == Some(s0.as_str())).collect();
    let (c1, c2) = (children[0].shard_id().to_owned(), children[1].shard_id().to_owned());
    let on = |shard: &str| puts.iter().filter(|p| p.shard == shard).cloned().collect::<Vec<_>>();
    let (on_s1, on_c1) = (on(&s1), on(&c1));
    let cp_s1 = on_s1[on_s1.len() / 2].seq.clone();
    let cp_c1 = on_c1[on_c1.len() / 3].seq.clone();

    // The table as a Java KCL 2.x application leaves it (its worker gone), plus a KCL 3.5 row.
    // Finished parents stay in the table here, so that `sauna leases` can be seen to show them.
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "leases": { "cleanupLeasesUponShardCompletion": false } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/kcl"), &runtime);
    let table = config.observer_id.clone();
    use sauna::lease_manager::LeaseStore;
    sauna::lease_manager::LeaseTable::new(stream.clients.dynamodb.clone(), table.clone())
        .ensure_exists()
        .await
        .expect("table");
    let range = |sh: &aws_sdk_kinesis::types::Shard| {
        let r = sh.hash_key_range().expect("range");
        (r.starting_hash_key().to_owned(), r.ending_hash_key().to_owned())
    };
    let find = |id: &str| all.iter().find(|s| s.shard_id() == id).expect("shard");
    let kcl_row = |key: &str, cp: &str, counter: u64, owner: Option<&str>, parents: &[&str], children: &[&str]| {
        let (lo, hi) = range(find(key));
        let mut item = HashMap::from([
            ("leaseKey".to_owned(), s(key)),
            ("leaseCounter".to_owned(), n(counter)),
            ("checkpoint".to_owned(), s(cp)),
            ("checkpointSubSequenceNumber".to_owned(), n(0)),
            ("ownerSwitchesSinceCheckpoint".to_owned(), n(1)),
            ("startingHashKey".to_owned(), s(&lo)),
            ("endingHashKey".to_owned(), s(&hi)),
        ]);
        if let Some(o) = owner {
            item.insert("leaseOwner".to_owned(), s(o));
        }
        if !parents.is_empty() {
            item.insert(
                "parentShardId".to_owned(),
                AttributeValue::Ss(parents.iter().map(|p| p.to_string()).collect()),
            );
        }
        if !children.is_empty() {
            item.insert(
                "childShardIds".to_owned(),
                AttributeValue::Ss(children.iter().map(|p| p.to_string()).collect()),
            );
        }
        item
    };
    let other_row = HashMap::from([
        ("leaseKey".to_owned(), s("kcl-worker-7f3a")),
        ("entityType".to_owned(), s("WORKER_METRIC_STATS")),
        ("lut".to_owned(), n(1_764_000_000)),
        (
            "sts".to_owned(),
            AttributeValue::M(HashMap::from([("CPU".to_owned(), AttributeValue::L(vec![n(40), n(42)]))])),
        ),
    ]);
    let rows = vec![
        kcl_row(&s0, "SHARD_END", 57, Some("kcl-worker-7f3a"), &[], &[&c1, &c2]),
        kcl_row(&s1, &cp_s1, 99, Some("kcl-worker-7f3a"), &[], &[]),
        kcl_row(&c1, &cp_c1, 12, Some("kcl-worker-7f3a"), &[&s0], &[]),
        kcl_row(&c2, "TRIM_HORIZON", 3, None, &[&s0], &[]),
        other_row.clone(),
    ];
    for item in rows {
        stream.clients.dynamodb.put_item().table_name(&table).set_item(Some(item)).send().await.expect("PutItem");
    }

    let mut sauna = Sauna::start(&config, "kcl");
    let expected: HashSet<usize> = puts
        .iter()
        .filter(|p| {
            let after = |cp: &str| (p.seq.len(), &p.seq) > (cp.len(), &cp.to_owned());
            (p.shard == s1 && after(&cp_s1)) || (p.shard == c1 && after(&cp_c1)) || p.shard == c2
        })
        .map(|p| p.index)
        .collect();
    slack.wait_for(expected.len(), Duration::from_secs(30));
    slack.wait_quiet(Duration::from_millis(800), Duration::from_secs(10));
    let got: HashSet<usize> = common::kinesis::texts(&slack.requests()).iter().map(|t| index(t)).collect();
    assert_eq!(got.len(), slack.count(), "nothing twice");
    assert_eq!(got, expected, "exactly the records after the KCL checkpoints; nothing of the SHARD_END parent");
    println!("KCL 2.x table: resumed {} records from the KCL checkpoints ({} put in all)", got.len(), puts.len());

    // `sauna leases`, text and JSON, while it runs.
    let leases = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sauna"));
        cmd.args(["leases", "--config-dir"]).arg(config.path()).env("RUST_LOG", "off");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("sauna leases runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = leases(false);
    println!("{text}");
    let line = |k: &str| {
        text.lines().find(|l| l.starts_with(k)).unwrap_or_else(|| panic!("a line for {k} in\n{text}")).to_owned()
    };
    assert!(text.starts_with(&format!(
        "observer {table} (stream {}, lease table {table}): 4 leases, 1 other rows",
        stream.name
    )));
    assert!(line(&s0).ends_with("ended") && line(&s0).contains("SHARD_END"));
    for k in [&s1, &c1, &c2] {
        assert!(line(k).contains(&config.observer_id) || line(k).ends_with("running"), "{}", line(k));
        assert!(line(k).ends_with("running"), "{}", line(k));
    }
    assert!(line(&c1).contains(&s0), "parents shown: {}", line(&c1));
    let json: serde_json::Value = serde_json::from_str(&leases(true)).expect("JSON");
    let report = &json[0];
    assert_eq!(report["observer"], table.as_str());
    assert_eq!(report["otherRows"], 1);
    let by_shard: HashMap<&str, &serde_json::Value> =
        report["leases"].as_array().expect("leases").iter().map(|l| (l["shard"].as_str().expect("shard"), l)).collect();
    assert_eq!(by_shard[s0.as_str()]["state"], "ended");
    assert_eq!(by_shard[s0.as_str()]["children"].as_array().map(Vec::len), Some(2));
    assert_eq!(by_shard[c2.as_str()]["parents"][0], s0.as_str());
    assert_eq!(by_shard[s1.as_str()]["state"], "running");

    // The KCL 3.5 row is left exactly as it was.
    let after = stream
        .clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("leaseKey", s("kcl-worker-7f3a"))
        .send()
        .await
        .expect("GetItem");
    assert_eq!(after.item(), Some(&other_row), "the non-lease row is untouched");
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

/// How many times each worker has logged that it started reading `shard`.
fn reads_of(workers: &[&Sauna], shard: &str) -> usize {
    let needle = format!("shard {shard}: reading from");
    workers.iter().map(|w| w.log_text().lines().filter(|l| l.contains(&needle)).count()).sum()
}

/// Waits until each of `shards` is read again by one of `others`; returns how long it took.
fn wait_read_again(others: &[&Sauna], shards: &[String], timeout: Duration) -> Duration {
    let before: Vec<usize> = shards.iter().map(|s| reads_of(others, s)).collect();
    let start = Instant::now();
    loop {
        if shards.iter().zip(&before).all(|(s, b)| reads_of(others, s) > *b) {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{shards:?} not read again within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_default_timings_a_sigterm_moves_shards_within_a_second_and_a_kill_9_within_failover_plus_3_s() {
    let _serial = SERIAL.lock().await;
    let stream = TestStream::create("default-timings", 6).await;
    let slack = FakeHttp::start();
    let producer = Producer::start(&stream, 30);
    // The default runtime config, but for the worker ids and Slack's pace (1 a second by
    // default, slower than this producer: the drain would wait for the backlog).
    let configs: Vec<ConfigDir> = (1..=3)
        .map(|i| {
            let runtime = json!({
                "leases": { "workerId": format!("w{i}") },
                "rateLimits": { "slack": { "perSecond": 0 } }
            });
            ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url(&format!("/w{i}")), &runtime)
        })
        .collect();
    let mut workers: Vec<Sauna> =
        configs.iter().enumerate().map(|(i, c)| Sauna::start(c, &format!("w{}", i + 1))).collect();
    let table = configs[0].observer_id.clone();
    wait_owners(&stream, &table, Duration::from_secs(90), "2/2/2", |o| sorted_counts(o) == [2, 2, 2]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let failover = Duration::from_secs(10);
    let leaving = shards_of(&stream, &table, "w3").await;
    workers[2].sigterm();
    let took = wait_read_again(&[&workers[0], &workers[1]], &leaving, Duration::from_secs(10));
    println!("default timings: SIGTERM of w3: its shards {leaving:?} read again elsewhere after {took:?} (goal: 1 s)");
    assert!(took < Duration::from_millis(2500), "clearly past the 1 s goal: {took:?}");
    assert!(workers[2].wait_exit(Duration::from_secs(40)).success());

    let victim = shards_of(&stream, &table, "w2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    workers[1].kill9();
    let took = wait_read_again(&[&workers[0]], &victim, failover * 3);
    println!(
        "default timings: kill -9 of w2: its shards {victim:?} read again elsewhere after {took:?} (goal: failover + 3 s = {:?})",
        failover + Duration::from_secs(3)
    );
    assert!(took < failover + Duration::from_secs(6), "clearly past the goal: {took:?}");

    let puts = producer.stop().await;
    wait_all_delivered(&slack, puts.len(), Duration::from_secs(60));
    stop_all(&mut workers[..1]);
}
