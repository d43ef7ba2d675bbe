//! Faults of Kinesis and DynamoDB while `sauna run` works: 5xx bursts, throttling, connection
//! resets, a stalled answer, and DynamoDB failing or unreachable for a while. The emulators
//! never fail on their own, so the process talks to one of them through a [`FaultProxy`] while
//! the test (producer, lease-table reads) talks to both directly.
//!
//! Each scenario: one real process on a 4-shard stream, a producer putting commands all along
//! (before, during and after the fault), a stand-in Slack recording deliveries. It checks that
//! the process stays up and exits 0 on SIGTERM, resumes by itself, loses nothing, and repeats
//! only commands after the checkpoints read right before the fault; and that the fault really
//! happened (the proxy's counters, and sauna's own log where it must have seen it).
//!
//! Timings: failover 2 s (so a lease is renewed every 641 ms and dropped 1.6 s after its last
//! renewal). The SDK retries throttles, 5xx and resets itself (3 attempts, backoff up to 1 s
//! then 2 s), so faults that sauna must see outnumber those attempts.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::FakeHttp;
use common::kinesis::{Put, TestStream, checkpoints, slack_command};
use common::proxy::{Fault, FaultProxy, Kind, Rule};
use common::sauna::{ConfigDir, Sauna, fast_runtime};
use uuid::Uuid;

const SHARDS: i32 = 4;
/// Commands put per second, over 101 partition keys (so every shard gets some).
const RATE: usize = 40;

/// One process at a time: the scenarios measure timings, on a machine of 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INTERNAL: &str = r#"{"__type":"InternalFailure","message":"injected by the fault proxy"}"#;
const UNAVAILABLE: &str = r#"{"__type":"ServiceUnavailable","message":"injected by the fault proxy"}"#;

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
            let (mut i, batch) = (0, (per_second / 10).max(1));
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

/// Deliveries to the stand-in Slack: command index → arrival of each delivery.
fn deliveries(slack: &FakeHttp) -> BTreeMap<usize, Vec<Instant>> {
    let mut out: BTreeMap<usize, Vec<Instant>> = BTreeMap::new();
    for r in slack.requests() {
        if let Some(i) = r.json()["text"].as_str().and_then(|t| t.trim_start_matches('c').parse().ok()) {
            out.entry(i).or_default().push(r.at);
        }
    }
    out
}

fn seq_gt(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// The last sequence number put on each shard.
fn last_per_shard(puts: &[(Put, Instant)]) -> HashMap<String, String> {
    let mut last: HashMap<String, String> = HashMap::new();
    for (p, _) in puts {
        let e = last.entry(p.shard.clone()).or_default();
        if e.is_empty() || seq_gt(&p.seq, e) {
            *e = p.seq.clone();
        }
    }
    last
}

/// Which endpoint of the process goes through the proxy.
#[derive(Clone, Copy)]
enum Through {
    Kinesis,
    DynamoDb,
}

/// A `sauna run` on a 4-shard stream under a steady producer, one of its services proxied.
struct Rig {
    stream: TestStream,
    slack: FakeHttp,
    table: String,
    proxy: FaultProxy,
    sauna: Sauna,
    producer: Option<Producer>,
    /// Last: dropped after the process (whose log it holds).
    _config: ConfigDir,
}

/// What a scenario ended with.
struct Outcome {
    commands: usize,
    duplicates: usize,
    /// From the end of the fault until every command put before it was delivered.
    caught_up: Duration,
    deliveries: BTreeMap<usize, Vec<Instant>>,
    puts: Vec<(Put, Instant)>,
}

impl Rig {
    /// Starts everything and waits until every shard is read and checkpointed.
    async fn start(name: &str, through: Through) -> Rig {
        let e = common::emulators();
        let stream = TestStream::create(name, SHARDS).await;
        let slack = FakeHttp::start();
        let (var, upstream) = match through {
            Through::Kinesis => ("AWS_ENDPOINT_URL_KINESIS", e.kinesis),
            Through::DynamoDb => ("AWS_ENDPOINT_URL_DYNAMODB", e.dynamodb),
        };
        let proxy = FaultProxy::start(&upstream);
        let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &fast_runtime());
        let table = config.observer_id.clone();
        let sauna = Sauna::start_with_env(&config, name, &[(var, &proxy.url())]);
        let producer = Producer::start(&stream, RATE);
        let rig = Rig { stream, slack, table, proxy, sauna, producer: Some(producer), _config: config };
        rig.sauna.wait_log("reading from", SHARDS as usize, Duration::from_secs(30));
        rig.checkpoints_before_fault().await;
        // A while of steady work first, so that the checkpoints before the fault cover commands
        // (which must then never be delivered again).
        rig.wait_progress(2 * RATE, Duration::from_secs(15)).await;
        rig
    }

    /// Every shard's checkpoint, once every shard has one past TRIM_HORIZON (read right
    /// before a fault: commands at or before these must never be delivered again).
    async fn checkpoints_before_fault(&self) -> HashMap<String, String> {
        let start = Instant::now();
        loop {
            let cps = checkpoints(&self.stream.clients, &self.table).await;
            let numeric = cps.values().filter(|c| c.chars().all(|ch| ch.is_ascii_digit())).count();
            if numeric == SHARDS as usize {
                return cps;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "not every shard checkpointed: {cps:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_lines(&self, needle: &str) -> usize {
        self.sauna.log_text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `n` more commands were delivered than now (the process is consuming).
    async fn wait_progress(&self, n: usize, timeout: Duration) {
        let (start, from) = (Instant::now(), self.slack.count());
        while self.slack.count() < from + n {
            assert!(start.elapsed() < timeout, "no progress within {timeout:?}:\n{}", self.sauna.log_tail(30));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the producer, waits until everything was delivered and checkpointed, checks the
    /// process is still up and stops cleanly, then checks the duplicates against `before`.
    async fn finish(&mut self, label: &str, before: &HashMap<String, String>, fault_end: Instant) -> Outcome {
        let puts = self.producer.take().expect("the producer runs until the end").stop().await;
        self.wait_all_delivered(&puts, Duration::from_secs(45)).await;
        let first = deliveries(&self.slack);
        let caught_up = puts
            .iter()
            .filter(|(_, at)| *at <= fault_end)
            .filter_map(|(p, _)| first.get(&p.index).and_then(|v| v.iter().min()))
            .map(|t| t.saturating_duration_since(fault_end))
            .max()
            .unwrap_or_default();
        self.wait_checkpoints(&last_per_shard(&puts), Duration::from_secs(15)).await;
        let running = self.sauna.child.try_wait().expect("try_wait").is_none();
        assert!(running, "{label}: the process exited during the scenario:\n{}", self.sauna.log_tail(40));
        self.sauna.sigterm();
        let status = self.sauna.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{label}: exit on SIGTERM: {status:?}\n{}", self.sauna.log_tail(30));

        let deliveries = deliveries(&self.slack);
        let mut duplicates = 0;
        for (p, _) in &puts {
            if deliveries.get(&p.index).map_or(0, Vec::len) < 2 {
                continue;
            }
            duplicates += 1;
            let cp = before.get(&p.shard).map(String::as_str).unwrap_or("TRIM_HORIZON");
            assert!(
                seq_gt(&p.seq, cp),
                "{label}: c{} (shard {}, seq {}) delivered again although the checkpoint {cp} read before the fault covered it",
                p.index,
                p.shard,
                p.seq
            );
        }
        let out = Outcome { commands: puts.len(), duplicates, caught_up, deliveries, puts };
        println!(
            "{label}: injected {:?}; {} commands, 0 lost, {} duplicates (all after the checkpoints read before the fault); caught up {:?} after the fault ended",
            self.proxy.injected(),
            out.commands,
            out.duplicates,
            out.caught_up
        );
        out
    }

    async fn wait_all_delivered(&self, puts: &[(Put, Instant)], timeout: Duration) {
        let start = Instant::now();
        loop {
            let d = deliveries(&self.slack);
            let missing: Vec<&Put> = puts.iter().map(|(p, _)| p).filter(|p| !d.contains_key(&p.index)).collect();
            if missing.is_empty() {
                return;
            }
            let shards: std::collections::BTreeSet<&str> = missing.iter().map(|p| p.shard.as_str()).collect();
            assert!(
                start.elapsed() < timeout,
                "{} of {} commands never delivered (shards {shards:?}); log:\n{}",
                missing.len(),
                puts.len(),
                self.sauna.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_checkpoints(&self, expected: &HashMap<String, String>, timeout: Duration) {
        let start = Instant::now();
        loop {
            let cps = checkpoints(&self.stream.clients, &self.table).await;
            if expected.iter().all(|(shard, seq)| cps.get(shard) == Some(seq)) {
                return;
            }
            assert!(start.elapsed() < timeout, "checkpoints {cps:?} did not reach {expected:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kinesis_5xx_bursts_on_get_records_are_retried_until_they_pass() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("fault-5xx", Through::Kinesis).await;
    let before = rig.checkpoints_before_fault().await;
    // Two bursts of 24 (6 attempts a shard: two of sauna's reads each, past the SDK's 3).
    rig.proxy.inject(Rule::on(&["GetRecords"], Fault::Status(500, INTERNAL.into())).times(24));
    rig.proxy.wait_injected(Kind::Status, 24, Duration::from_secs(30)).await;
    rig.wait_progress(20, Duration::from_secs(10)).await;
    rig.proxy.inject(Rule::on(&["GetRecords"], Fault::Status(503, UNAVAILABLE.into())).times(24));
    rig.proxy.wait_injected(Kind::Status, 48, Duration::from_secs(30)).await;
    let end = Instant::now();

    let seen = rig.log_lines("GetRecords failed");
    assert!(seen > 0, "sauna saw no failed GetRecords:\n{}", rig.sauna.log_tail(30));
    assert_eq!(rig.proxy.injected_count(Kind::Status), 48);
    let out = rig.finish("a. GetRecords 5xx bursts", &before, end).await;
    println!("a. GetRecords 5xx bursts: sauna logged {seen} failed GetRecords");
    assert_eq!(out.duplicates, 0, "a failed read actions nothing, so nothing is repeated");
}

#[tokio::test(flavor = "multi_thread")]
async fn b_get_records_throttling_backs_off_and_resumes() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("fault-throttle", Through::Kinesis).await;
    let before = rig.checkpoints_before_fault().await;
    // 60 throttles: about five of sauna's reads a shard, each after the SDK's 3 attempts.
    rig.proxy.inject(Rule::on(&["GetRecords"], Fault::Throttle).times(60));
    let started = Instant::now();
    rig.proxy.wait_injected(Kind::Throttle, 60, Duration::from_secs(40)).await;
    let end = Instant::now();

    let seen = rig.log_lines("GetRecords throttled; backing off");
    assert!(seen > 0, "sauna saw no throttled GetRecords:\n{}", rig.sauna.log_tail(30));
    let out = rig.finish("b. GetRecords throttling", &before, end).await;
    println!("b. GetRecords throttling: {:?} of throttling; sauna backed off {seen} times", end - started);
    assert_eq!(out.duplicates, 0, "a throttled read actions nothing, so nothing is repeated");
}

#[tokio::test(flavor = "multi_thread")]
async fn c_connection_resets_on_kinesis_calls_are_survived() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("fault-reset", Through::Kinesis).await;
    let before = rig.checkpoints_before_fault().await;
    // Every Kinesis call (GetRecords, GetShardIterator, ListShards of the shard sync): 40 resets,
    // so at least one of the 5 callers loses 8 attempts in a row, more than the SDK retries.
    rig.proxy.inject(Rule::all(Fault::Reset).times(40));
    rig.proxy.wait_injected(Kind::Reset, 40, Duration::from_secs(40)).await;
    let end = Instant::now();

    let seen =
        rig.log_lines("GetRecords failed") + rig.log_lines("GetShardIterator failed") + rig.log_lines("shard sync of");
    assert!(seen > 0, "sauna saw no failed Kinesis call:\n{}", rig.sauna.log_tail(30));
    let out = rig.finish("c. connection resets", &before, end).await;
    println!("c. connection resets: sauna logged {seen} failed Kinesis calls");
    assert_eq!(out.duplicates, 0, "a reset read actions nothing, so nothing is repeated");
}

/// Per shard, the longest time without a first delivery between `from` and `to`.
fn longest_silence(out: &Outcome, from: Instant, to: Instant) -> BTreeMap<String, Duration> {
    let mut times: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for (p, _) in &out.puts {
        if let Some(t) = out.deliveries.get(&p.index).and_then(|v| v.iter().min()) {
            times.entry(p.shard.clone()).or_default().push(*t);
        }
    }
    times
        .into_iter()
        .map(|(shard, mut ts)| {
            ts.retain(|t| *t >= from && *t <= to);
            ts.push(from);
            ts.push(to);
            ts.sort();
            (shard, ts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn d_one_get_records_stalled_20_s_holds_up_only_its_shard() {
    const STALL: Duration = Duration::from_secs(20);
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start("fault-stall", Through::Kinesis).await;
    let before = rig.checkpoints_before_fault().await;
    rig.proxy.inject(Rule::on(&["GetRecords"], Fault::Stall(STALL)).times(1));
    rig.proxy.wait_injected(Kind::Stall, 1, Duration::from_secs(10)).await;
    let stalled_at = rig.proxy.injections()[0].at;
    // The stall is the fault itself: the answer comes back STALL after it began.
    tokio::time::sleep_until((stalled_at + STALL).into()).await;
    let end = Instant::now();
    // The producer goes on a while, so the stalled shard has new commands to resume with.
    rig.wait_progress(2 * RATE, Duration::from_secs(10)).await;

    let out = rig.finish("d. one GetRecords stalled", &before, end).await;
    // Up to the last put: every shard had commands to deliver all along.
    let last_put = out.puts.iter().map(|(_, at)| *at).max().expect("puts");
    let silence = longest_silence(&out, stalled_at, last_put);
    println!("d. one GetRecords stalled {STALL:?}: longest silence per shard {silence:?}");
    let held: Vec<(&String, &Duration)> = silence.iter().filter(|(_, d)| **d > Duration::from_secs(5)).collect();
    assert_eq!(held.len(), 1, "exactly one shard waits for the stalled answer, the others go on: {silence:?}");
    let (shard, waited) = held[0];
    // It waits for the answer (sauna's attempt timeout is 30 s), then resumes at once.
    assert!(*waited >= STALL - Duration::from_secs(1), "shard {shard} waited only {waited:?}");
    assert!(*waited <= STALL + Duration::from_secs(3), "shard {shard} resumed only after {waited:?}");
    assert_eq!(out.duplicates, 0, "a stalled read actions nothing twice");
}

/// A DynamoDB fault of every lease-table call for `length`, with a producer running; `faulted`
/// are the operations it must have hit.
async fn dynamodb_fault(name: &str, label: &str, fault: Fault, length: Duration, faulted: &[&str]) -> (Rig, Outcome) {
    let kind = fault.kind();
    let mut rig = Rig::start(name, Through::DynamoDb).await;
    let before = rig.checkpoints_before_fault().await;
    rig.proxy.inject(Rule::all(fault));
    let started = Instant::now();
    tokio::time::sleep(length).await;
    rig.proxy.clear();
    let end = Instant::now();
    let injected = rig.proxy.injected();
    let on = |op: &str| injected.get(&(kind, op.to_owned())).copied().unwrap_or(0);
    for op in faulted {
        assert!(on(op) > 0, "{label}: no {op} faulted: {injected:?}");
    }
    let out = rig.finish(label, &before, end).await;
    println!(
        "{label}: fault for {:?}; sauna logged {} failed renewals, {} failed checkpoints, {} failed scans, {} leases lost",
        end - started,
        rig.log_lines("renewal failed"),
        rig.sauna.log_text().lines().filter(|l| l.contains("checkpoint of") && l.contains(" failed (")).count(),
        rig.log_lines("scan failed"),
        rig.log_lines(": lost (")
    );
    (rig, out)
}

/// Renewals and checkpoints are UpdateItems; discovery is a Scan.
const LEASE_CALLS: &[&str] = &["UpdateItem", "Scan"];

#[tokio::test(flavor = "multi_thread")]
async fn e1_dynamodb_5xx_shorter_than_the_failover_time() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::Status(500, INTERNAL.into());
    dynamodb_fault("fault-ddb-5xx", "e1. DynamoDB 5xx for 1.2 s", fault, Duration::from_millis(1200), LEASE_CALLS)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn e2_dynamodb_throttling_shorter_than_the_failover_time() {
    let _serial = SERIAL.lock().await;
    let label = "e2. DynamoDB throttling for 1.2 s";
    dynamodb_fault("fault-ddb-throttle", label, Fault::Throttle, Duration::from_millis(1200), LEASE_CALLS).await;
}

/// A blip shorter than one renew interval fails at most one renewal of each lease, so it
/// costs no lease and repeats nothing. (It used to: the SDK's retry backoff kept the failed
/// renewal in flight, no other write of that lease went out meanwhile, and its validity
/// lapsed; the LeaseManager's table now makes one attempt per call, bounded by the renewal
/// interval.)
#[tokio::test(flavor = "multi_thread")]
async fn e3_a_dynamodb_blip_shorter_than_a_renew_interval_costs_no_lease() {
    let _serial = SERIAL.lock().await;
    let label = "e3. DynamoDB 5xx for 0.4 s";
    let fault = Fault::Status(500, INTERNAL.into());
    let (rig, out) = dynamodb_fault("fault-ddb-blip", label, fault, Duration::from_millis(400), &["UpdateItem"]).await;
    let log = rig.sauna.log_text();
    let lost: Vec<&str> = log.lines().filter(|l| l.contains(": lost (")).collect();
    assert!(lost.is_empty(), "{label}: leases dropped:\n{}", lost.join("\n"));
    assert_eq!(out.duplicates, 0, "{label}: no lease lost, so nothing is repeated");
}

#[tokio::test(flavor = "multi_thread")]
async fn f_dynamodb_unreachable_longer_than_the_failover_time() {
    let _serial = SERIAL.lock().await;
    let label = "f. DynamoDB unreachable for 5 s";
    // Requests on open connections are dropped, new connections refused.
    let (rig, _) =
        dynamodb_fault("fault-ddb-outage", label, Fault::Outage, Duration::from_secs(5), &["(connect)"]).await;
    // 5 s without a renewal is past the failover time: this worker must have stopped acting on
    // its leases (others could have taken them), then taken them back.
    let lost = rig.log_lines(": lost (");
    assert!(lost >= SHARDS as usize, "{label}: only {lost} leases dropped:\n{}", rig.sauna.log_tail(40));
}

/// A client of the emulators through `proxy`: the SDK's standard retry (3 attempts), with a
/// short backoff so the check is quick (the backoff does not change what is retried).
async fn sdk_through(proxy: &FaultProxy) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("default", "default", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(10)))
        .endpoint_url(proxy.url())
        .load()
        .await
}

/// The proxy's faults are what sauna's code looks for: the SDK parses the throttling answers
/// as `ProvisionedThroughputExceededException` (DynamoDB's despite its namespace prefix) and
/// retries them as throttling (a 400 of another code is not retried), and retries 5xx and
/// resets as transient errors.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_reads_the_proxys_faults_as_the_services_own() {
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    let e = common::emulators();
    let stream = TestStream::create("fault-sdk", 1).await;
    let shard = stream.shards().await[0].shard_id().to_owned();
    let it = stream
        .clients
        .kinesis
        .get_shard_iterator()
        .stream_name(&stream.name)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("an iterator");
    let proxy = FaultProxy::start(&e.kinesis);
    let kinesis = aws_sdk_kinesis::Client::new(&sdk_through(&proxy).await);
    let get = || kinesis.get_records().shard_iterator(&it).send();

    proxy.inject(Rule::on(&["GetRecords"], Fault::Throttle));
    let err = get().await.expect_err("throttled");
    let service = err.as_service_error().expect("a service error");
    assert!(service.is_provisioned_throughput_exceeded_exception(), "{service:?}");
    assert_eq!(service.code(), Some("ProvisionedThroughputExceededException"));
    assert_eq!(proxy.injected_count(Kind::Throttle), 3, "retried as throttling");
    proxy.clear();

    let invalid = r#"{"__type":"InvalidArgumentException","message":"injected"}"#;
    proxy.inject(Rule::on(&["GetRecords"], Fault::Status(400, invalid.into())));
    let err = get().await.expect_err("invalid");
    assert!(err.as_service_error().is_some_and(|s| s.is_invalid_argument_exception()), "{err:?}");
    assert_eq!(proxy.injected_count(Kind::Status), 1, "another 400 is not retried");
    proxy.clear();

    proxy.inject(Rule::on(&["GetRecords"], Fault::Status(500, INTERNAL.into())).times(1));
    proxy.inject(Rule::on(&["GetRecords"], Fault::Reset).times(1));
    get().await.expect("a 5xx and a reset, then the third attempt gets through");
    assert_eq!(proxy.injected_count(Kind::Status), 2);
    assert_eq!(proxy.injected_count(Kind::Reset), 1);
    proxy.inject(Rule::on(&["GetRecords"], Fault::Reset));
    let err = get().await.expect_err("reset 3 times");
    assert!(matches!(err, aws_sdk_kinesis::error::SdkError::DispatchFailure(_)), "{err:?}");
    assert_eq!(proxy.injected_count(Kind::Reset), 4, "a reset is retried");
    proxy.clear();
    assert_eq!(proxy.forwarded("GetRecords"), 1);

    let proxy = FaultProxy::start(&e.dynamodb);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_through(&proxy).await);
    proxy.inject(Rule::on(&["UpdateItem"], Fault::Throttle));
    let err = dynamodb
        .update_item()
        .table_name("no-such-table")
        .key("leaseKey", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
        .send()
        .await
        .expect_err("throttled");
    let service = err.as_service_error().expect("a service error");
    assert!(service.is_provisioned_throughput_exceeded_exception(), "{service:?}");
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(service),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(proxy.injected_count(Kind::Throttle), 3, "retried as throttling");
    proxy.inject(Rule::all(Fault::Outage));
    let err = dynamodb.list_tables().send().await.expect_err("unreachable");
    assert!(matches!(err, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)), "{err:?}");
    assert!(proxy.injected_count(Kind::Outage) >= 3, "{:?}", proxy.injected());
    proxy.clear();
    dynamodb.list_tables().send().await.expect("forwarded again once cleared");
    assert_eq!(proxy.forwarded("ListTables"), 1);
}
