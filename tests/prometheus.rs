//! The HTTP endpoint of `sauna run` (`http.listen`), scraped as Prometheus and probed as an
//! orchestrator would: `/metrics` read by a Prometheus text-format parser (the records and
//! commands counted per shard, the lag and in-flight gauges, a finished shard's gauges gone),
//! `/healthz` and `/readyz` through a lease table that is unreachable at first and a graceful
//! stop, and an address already in use.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::http::{FakeHttp, Reply};
use common::kinesis::{TestStream, slack_command};
use common::proxy::{Fault, FaultProxy, Rule};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use prometheus_parse::{Scrape, Value};
use serde_json::{Value as Json, json};
use uuid::Uuid;

fn commands(prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("key-{prefix}-{i}"), slack_command(&Uuid::new_v4(), &format!("{prefix}{i}")))).collect()
}

/// `fast_runtime` with the endpoint on a free port of 127.0.0.1, and `patch`.
fn runtime(patch: Json) -> Json {
    let mut r = fast_runtime();
    merge(&mut r, &json!({ "http": { "listen": "127.0.0.1:0" } }));
    merge(&mut r, &patch);
    r
}

/// The endpoint of a running `sauna run`, at the address its log names.
struct Endpoint {
    base: String,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Endpoint {
    fn of(sauna: &Sauna) -> Endpoint {
        let needle = "http endpoint listening on ";
        sauna.wait_log(needle, 1, Duration::from_secs(20));
        let log = sauna.log_text();
        let line = log.lines().find(|l| l.contains(needle)).expect("the line");
        let rest = &line[line.find(needle).expect("needle") + needle.len()..];
        let addr = rest.split_whitespace().next().expect("an address").trim_end_matches(':');
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client");
        Endpoint { base: format!("http://{addr}"), client }
    }

    async fn get_with(&self, path: &str, accept: Option<&str>) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Answer { status, content_type, body: r.text().await.expect("a body") }
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_with(path, None).await
    }

    async fn scrape(&self) -> Scrape {
        let a = self.get("/metrics").await;
        assert_eq!(a.status, 200, "{}", a.body);
        Scrape::parse(a.body.lines().map(|l| Ok(l.to_owned()))).expect("the Prometheus text format parses")
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => Some(*x),
        _ => None,
    }
}

/// The samples of `metric` whose labels include every `(name, value)` of `having`.
fn samples<'a>(scrape: &'a Scrape, metric: &str, having: &[(&str, &str)]) -> Vec<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && having.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn sum(scrape: &Scrape, metric: &str, having: &[(&str, &str)]) -> f64 {
    samples(scrape, metric, having).iter().filter_map(|s| number(&s.value)).sum()
}

/// The `shard_id` labels of `metric`'s samples.
fn shards_of(scrape: &Scrape, metric: &str, observer: &str) -> BTreeSet<String> {
    samples(scrape, metric, &[("observer", observer)])
        .iter()
        .filter_map(|s| s.labels.get("shard_id").map(str::to_owned))
        .collect()
}

async fn wait_until<T>(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_records_and_commands_of_every_shard_with_cloudwatch_off() {
    let stream = TestStream::create("prom-metrics", 2).await;
    let slack = FakeHttp::start();
    // CloudWatch publishing off and at level NONE: Prometheus does not depend on it.
    let runtime = runtime(json!({ "metrics": { "enabled": false, "level": "NONE" } }));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime);
    let mut sauna = Sauna::start(&config, "prom-metrics");
    let endpoint = Endpoint::of(&sauna);
    sauna.wait_log("reading from", 2, Duration::from_secs(30));
    stream.put(commands("m", 50)).await;
    slack.wait_for(50, Duration::from_secs(30));
    let obs = config.observer_id.as_str();
    let scrape = wait_until("50 records, 50 done commands and 2 leases counted", Duration::from_secs(10), async || {
        let s = endpoint.scrape().await;
        // (Held leases are sampled at each renewal, every 641 ms here.)
        let counted = sum(&s, "sauna_records_processed_total", &[("observer", obs)]) == 50.0
            && sum(&s, "sauna_commands_total", &[("observer", obs), ("outcome", "done")]) == 50.0
            && sum(&s, "sauna_current_leases", &[("observer", obs)]) == 2.0;
        counted.then_some(s)
    })
    .await;

    let shards: BTreeSet<String> = stream.shards().await.iter().map(|s| s.shard_id().to_owned()).collect();
    let rp = samples(&scrape, "sauna_records_processed_total", &[("observer", obs), ("operation", "ProcessTask")]);
    assert!(rp.iter().all(|s| matches!(s.value, Value::Counter(_))), "typed as a counter: {rp:?}");
    assert_eq!(shards_of(&scrape, "sauna_records_processed_total", obs), shards, "counted per shard: {rp:?}");
    let outcomes: BTreeSet<_> = samples(&scrape, "sauna_commands_total", &[("observer", obs)])
        .iter()
        .filter_map(|s| s.labels.get("outcome").map(str::to_owned))
        .collect();
    assert_eq!(outcomes, ["done".to_owned()].into(), "every command done");
    assert!(sum(&scrape, "sauna_data_processed_bytes_total", &[("observer", obs)]) > 50.0 * 100.0);
    for gauge in ["sauna_behind_latest_seconds", "sauna_commands_in_flight", "sauna_records_pending"] {
        let g = samples(&scrape, gauge, &[("observer", obs)]);
        assert!(g.iter().all(|s| matches!(s.value, Value::Gauge(_))), "typed as a gauge: {g:?}");
        assert_eq!(shards_of(&scrape, gauge, obs), shards, "{gauge} per shard: {g:?}");
    }
    let leases = samples(&scrape, "sauna_current_leases", &[("observer", obs), ("operation", "RenewAllLeases")]);
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert!(leases[0].labels.get("worker").is_some_and(|w| !w.is_empty()), "{leases:?}");
    assert_eq!(number(&leases[0].value), Some(2.0));
    let latency = samples(&scrape, "sauna_responder_latency_seconds", &[("observer", obs)]);
    assert!(matches!(latency.first().map(|s| &s.value), Some(Value::Histogram(b)) if !b.is_empty()), "{latency:?}");
    assert_eq!(sum(&scrape, "sauna_responder_latency_seconds_count", &[("observer", obs)]), 50.0);
    println!(
        "scraped {} samples; records per shard: {:?}",
        scrape.samples.len(),
        rp.iter().map(|s| (s.labels.get("shard_id"), number(&s.value))).collect::<Vec<_>>()
    );

    // Nothing at the responders any more: the in-flight gauges say so.
    wait_until("no command in flight", Duration::from_secs(10), async || {
        let s = endpoint.scrape().await;
        let idle = sum(&s, "sauna_commands_in_flight", &[("observer", obs)]) == 0.0
            && sum(&s, "sauna_records_pending", &[("observer", obs)]) == 0.0;
        idle.then_some(())
    })
    .await;
    let plain = endpoint.get("/metrics").await;
    assert!(plain.content_type.starts_with("text/plain; version=0.0.4"), "{}", plain.content_type);
    let open = endpoint.get_with("/metrics", Some("application/openmetrics-text;version=1.0.0,*/*;q=0.1")).await;
    assert!(open.content_type.starts_with("application/openmetrics-text"), "{}", open.content_type);
    assert!(open.body.ends_with("# EOF\n") && open.body.contains("sauna_records_processed_total"), "{}", open.body);
    assert_eq!(endpoint.get("/nope").await.status, 404);
    let head = endpoint.client.head(format!("{}/healthz", endpoint.base)).send().await.expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.text().await.expect("a body").is_empty(), "HEAD has no body");
    let post = endpoint.client.post(format!("{}/metrics", endpoint.base)).send().await.expect("POST");
    assert_eq!(post.status().as_u16(), 405);
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_shard_loses_its_gauges_and_keeps_its_counters() {
    let stream = TestStream::create("prom-split", 1).await;
    let slack = FakeHttp::start();
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime(json!({})));
    let mut sauna = Sauna::start(&config, "prom-split");
    let endpoint = Endpoint::of(&sauna);
    let obs = config.observer_id.as_str();
    let parent = stream.shards().await[0].shard_id().to_owned();
    stream.put(commands("p", 5)).await;
    slack.wait_for(5, Duration::from_secs(30));
    wait_until("the parent's gauges", Duration::from_secs(10), async || {
        let s = endpoint.scrape().await;
        let both = ["sauna_behind_latest_seconds", "sauna_commands_in_flight"]
            .iter()
            .all(|g| shards_of(&s, g, obs).contains(&parent));
        both.then_some(())
    })
    .await;

    stream.split(&parent).await;
    let children: BTreeSet<String> =
        stream.shards().await.iter().map(|s| s.shard_id().to_owned()).filter(|s| *s != parent).collect();
    stream.put(commands("c", 10)).await;
    slack.wait_for(15, Duration::from_secs(30));
    // Samples reach the page within a quarter of a second (the Metrics actor takes them in
    // batches): wait for all of them as well.
    let scrape = wait_until("the parent's gauges gone, the children's there", Duration::from_secs(30), async || {
        let s = endpoint.scrape().await;
        let moved = ["sauna_behind_latest_seconds", "sauna_commands_in_flight", "sauna_records_pending"]
            .iter()
            .all(|g| shards_of(&s, g, obs) == children);
        let counted = sum(&s, "sauna_records_processed_total", &[("observer", obs)]) == 15.0;
        (moved && counted).then_some(s)
    })
    .await;
    let parent_records = sum(&scrape, "sauna_records_processed_total", &[("observer", obs), ("shard_id", &parent)]);
    assert_eq!(parent_records, 5.0, "the finished shard's counter stays");
    assert_eq!(sum(&scrape, "sauna_records_processed_total", &[("observer", obs)]), 15.0);
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_follow_the_lease_table_and_the_graceful_stop() {
    let e = common::emulators();
    let stream = TestStream::create("prom-probes", 1).await;
    let slack = FakeHttp::start();
    // Each command takes 2 s at Slack (under the 3 s attempt timeout): a graceful stop waits for it.
    slack.behave(|_, _| Reply::ok().after(Duration::from_secs(2)));
    // The lease table cannot be reached at first.
    let dynamodb = FaultProxy::start(&e.dynamodb);
    dynamodb.inject(Rule::all(Fault::Outage));
    let config = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, &slack.url("/hook"), &runtime(json!({})));
    let mut sauna = Sauna::start_with_env(&config, "prom-probes", &[("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb.url())]);
    let endpoint = Endpoint::of(&sauna);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let (health, ready) = (endpoint.get("/healthz").await, endpoint.get("/readyz").await);
        assert_eq!((health.status, health.body.as_str()), (200, "ok\n"), "alive while the table is unreachable");
        assert_eq!(ready.status, 503, "not ready before a take cycle: {}", ready.body);
        assert!(ready.body.starts_with(&format!("observer {}: not ready: ", config.observer_id)), "{}", ready.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("before the table is reached: /readyz says {:?}", endpoint.get("/readyz").await.body);

    dynamodb.clear();
    let cleared = Instant::now();
    wait_until("ready", Duration::from_secs(40), async || (endpoint.get("/readyz").await.status == 200).then_some(()))
        .await;
    println!("ready {} ms after the lease table became reachable", cleared.elapsed().as_millis());
    assert_eq!(endpoint.get("/readyz").await.body, "ok\n");
    sauna.wait_log("reading from", 1, Duration::from_secs(20));

    // A command at the (slow) responder, then SIGTERM: not ready while the stop runs.
    stream.put(commands("s", 1)).await;
    slack.wait_for(1, Duration::from_secs(20));
    let at_slack = wait_until("the command counted in flight", Duration::from_millis(1500), async || {
        let s = endpoint.scrape().await;
        let n = sum(&s, "sauna_commands_in_flight", &[("observer", &config.observer_id)]);
        (n >= 1.0).then_some(n)
    })
    .await;
    sauna.sigterm();
    let term = Instant::now();
    let (seen_at, body) = wait_until("not ready after SIGTERM", Duration::from_secs(5), async || {
        let r = endpoint.get("/readyz").await;
        (r.status == 503).then(|| (term.elapsed(), r.body))
    })
    .await;
    assert!(body.contains("not ready: shutting down"), "{body}");
    let health = endpoint.get("/healthz").await;
    assert_eq!(health.status, 200, "still alive while it stops: {}", health.body);
    let mut not_ready_for = seen_at;
    while sauna.child.try_wait().expect("try_wait").is_none() {
        match endpoint.client.get(format!("{}/readyz", endpoint.base)).send().await {
            Ok(r) => {
                assert_eq!(r.status().as_u16(), 503, "never ready again once stopping");
                not_ready_for = term.elapsed();
            }
            Err(_) => break, // the process is gone
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sauna.wait_exit(Duration::from_secs(20)).success());
    assert_eq!(slack.count(), 1, "the command in flight finished once");
    println!(
        "in flight at SIGTERM (gauge): {at_slack}; /readyz 503 {} ms after SIGTERM, and until {} ms",
        seen_at.as_millis(),
        not_ready_for.as_millis()
    );
    assert!(not_ready_for >= Duration::from_millis(500), "a window: the stop waited for the command");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_in_use_stops_the_start_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("addr");
    let runtime = runtime(json!({ "http": { "listen": addr.to_string() } }));
    let config = ConfigDir::new("no-such-stream", "TRIM_HORIZON", None, "http://127.0.0.1:9/hook", &runtime);
    let mut sauna = Sauna::start(&config, "prom-bind");
    let status = sauna.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", sauna.log_text());
    let log = sauna.log_text();
    assert!(log.contains(&format!("cannot listen on {addr} (http.listen): ")), "{log}");
    assert!(!log.contains("sauna running"), "nothing started: {log}");
    println!("{}", log.lines().find(|l| l.contains("cannot listen")).unwrap_or_default());
}
