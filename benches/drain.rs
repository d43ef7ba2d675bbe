//! Drain benchmark: 100,000 Sauna commands on a 4-shard kinesalite stream, consumed
//! 1. by a plain GetRecords loop (4 shards in parallel, 10,000 records per call, nothing done
//!    with the records): the ceiling the emulator allows;
//! 2. by the sauna observer (leases in dynalite, metrics to moto, every record parsed and
//!    schema-validated, dispatched to a no-op responder, checkpointed).
//!
//! Reports records/s of each, sauna's ratio to the plain loop, sauna's CPU seconds per 100k
//! commands, and sauna's peak RSS — with dedup (claims) off, then on, each from a lease table
//! and claim table of its own; DynamoDB goes through a counting proxy, so the writes each
//! command costs are counted, not estimated. The proxy's threads are counted out of sauna's
//! CPU, and the process runs on the `sauna` binary's allocator (jemalloc), so the observer is
//! measured as it ships.
//!
//! The dedup-off drain runs `SAUNA_BENCH_RUNS` times (3 by default, each from a lease table of
//! its own) and its medians are reported; the dedup-on drain once.
//!
//! Run: `scripts/bench.sh` (starts the emulators, then `cargo bench --bench drain`).
//! `SAUNA_BENCH_RECORDS` changes the number of commands, `SAUNA_BENCH_DEDUP=off` leaves out the
//! drain with dedup on (over a minute).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;
#[path = "../tests/common/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use sauna::command::Command;
use sauna::iglu::SchemaCriterion;
use sauna::responders::{Attempt, AttemptFuture, AttemptsFuture, Responder, ResponderContext};
use serde_json::json;

use common::{cpu_seconds_but, peak_rss_mib, plain_drain, put_all, reset_peak_rss};

/// The `sauna` binary's allocator (src/main.rs): the observer is measured as it ships.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SHARDS: i32 = 4;

/// Counts commands and does nothing else.
#[derive(Debug, Default)]
struct NoOp {
    done: AtomicU64,
}

impl Responder for NoOp {
    fn id(&self) -> &str {
        "no-op"
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")]
    }

    fn execute<'a>(&'a self, _: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
        self.done.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Attempt::Done("no-op".into()) })
    }

    /// Its first attempts are made many at once, as the stdout responder's are.
    fn takes_batches(&self) -> bool {
        true
    }

    /// A batch done at once, as one: nothing per command but the count (the default
    /// `execute_batch` makes an `execute` future of each and joins them, work a responder that
    /// does nothing would not do).
    fn execute_batch<'a>(&'a self, commands: Vec<&'a Command>, _: &'a ResponderContext) -> AttemptsFuture<'a> {
        self.done.fetch_add(commands.len() as u64, Ordering::Relaxed);
        Box::pin(std::future::ready(vec![Attempt::Done("no-op".into()); commands.len()]))
    }
}

/// What one drain by the observer measured.
struct Drained {
    rate: f64,
    cpu_per_100k: f64,
    rss: f64,
    writes_per_command: f64,
}

/// DynamoDB's write operations, as the proxy counts them.
fn writes(counting: &proxy::FaultProxy) -> u64 {
    ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"].iter().map(|op| counting.forwarded(op)).sum()
}

/// The observer, in this process, with a no-op responder: drains the stream from TRIM_HORIZON
/// with a lease table (and claim table) of its own.
async fn observe(stream: &str, run: u64, total: usize, dedup: bool, counting: &proxy::FaultProxy) -> Drained {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, v: serde_json::Value| std::fs::write(dir.path().join(name), v.to_string()).expect("write");
    let id = format!("{stream}-{}-{run}", if dedup { "dedup" } else { "plain" });
    write("kinesis.json", common::observer_config(stream, &id));
    write(
        "runtime.json",
        json!({
            "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0",
            "data": { "retrieval": { "maxInFlightPerShard": 10000 }, "responderConcurrency": 1000,
                      "mailboxes": { "responder": 4096 }, "dedup": { "enabled": dedup } }
        }),
    );
    let mut configuration = sauna::config_dir::load_dir(dir.path()).expect("config");
    let noop = Arc::new(NoOp::default());
    configuration.responders = vec![noop.clone()];

    reset_peak_rss();
    let writes0 = writes(counting);
    let cpu0 = cpu_seconds_but(proxy::PROXY_THREAD);
    let start = Instant::now();
    let observers = sauna::Observers::start(configuration).await;
    while (noop.done.load(Ordering::Relaxed) as usize) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_seconds_but(proxy::PROXY_THREAD) - cpu0;
    let rss = peak_rss_mib();
    let written = writes(counting) - writes0;
    observers.shutdown().await;
    let rate = total as f64 / elapsed.as_secs_f64();
    eprintln!(
        "sauna observer, dedup {}: {total} commands in {elapsed:.2?} = {rate:.0} commands/s, {:.2} CPU s, {written} DynamoDB writes",
        if dedup { "on" } else { "off" },
        cpu
    );
    Drained {
        rate,
        cpu_per_100k: cpu * 100_000.0 / total as f64,
        rss,
        writes_per_command: written as f64 / total as f64,
    }
}

fn main() {
    let Ok(kinesalite) = std::env::var("SAUNA_BENCH_KINESIS_ENDPOINT") else {
        eprintln!("SAUNA_BENCH_KINESIS_ENDPOINT is not set: run scripts/bench.sh");
        std::process::exit(2);
    };
    // Point the SDK's Kinesis client at kinesalite; DynamoDB and CloudWatch stay on the
    // emulators of AWS_ENDPOINT_URL_DYNAMODB / _CLOUDWATCH.
    // DynamoDB through a proxy that counts its requests (it answers on a thread of its own).
    let dynalite = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("scripts/bench.sh sets AWS_ENDPOINT_URL_DYNAMODB");
    let counting = proxy::FaultProxy::start(&dynalite);
    // Counted, not kept: 200,000 request bodies would be the benchmark's own memory, not sauna's.
    counting.count_only();
    // SAFETY: single-threaded here (the proxy's thread reads no environment), before any
    // runtime or client exists.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_KINESIS", &kinesalite);
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", counting.url());
    }
    let total: usize = std::env::var("SAUNA_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);

    let system = actix::System::new();
    system.block_on(async move {
        let clients = sauna::AwsClients::for_observer("us-east-1", &sauna::config::AwsCredentials::DefaultChain).await;
        let stream = format!("bench-{}", uuid::Uuid::new_v4().simple());
        common::create_stream(&clients.kinesis, &stream, SHARDS).await;
        let t = Instant::now();
        put_all(&clients.kinesis, &stream, total).await;
        eprintln!("put {total} commands on {SHARDS} shards of kinesalite in {:.1?}", t.elapsed());

        let plain = plain_drain(&clients.kinesis, &stream, total).await;
        let plain_rate = total as f64 / plain.as_secs_f64();
        eprintln!("plain GetRecords loop: {total} records in {plain:.2?} = {plain_rate:.0} records/s");

        let runs = common::env_number("SAUNA_BENCH_RUNS", 3).max(1);
        let mut offs = Vec::new();
        for run in 0..runs {
            offs.push(observe(&stream, run, total, false, &counting).await);
        }
        let off = Drained {
            rate: common::median(offs.iter().map(|d| d.rate).collect()),
            cpu_per_100k: common::median(offs.iter().map(|d| d.cpu_per_100k).collect()),
            rss: common::median(offs.iter().map(|d| d.rss).collect()),
            writes_per_command: common::median(offs.iter().map(|d| d.writes_per_command).collect()),
        };
        let on = if std::env::var("SAUNA_BENCH_DEDUP").as_deref() == Ok("off") {
            None
        } else {
            Some(observe(&stream, 0, total, true, &counting).await)
        };
        let either = |f: &dyn Fn(&Drained) -> String| on.as_ref().map_or_else(|| "not run".to_string(), f);
        println!();
        println!("(dedup off: medians of {runs} runs)");
        println!();
        println!("| measure | dedup off | dedup on |");
        println!("|---|---|---|");
        println!("| commands | {total} on {SHARDS} kinesalite shards | |");
        println!("| plain GetRecords loop | {plain_rate:.0} records/s | |");
        println!(
            "| sauna (parse + validate + dispatch + checkpoint) | {:.0} commands/s | {} |",
            off.rate,
            either(&|d| format!("{:.0} commands/s", d.rate))
        );
        let ratio = |d: &Drained| d.rate / plain_rate;
        println!("| ratio to the plain loop | {:.2} | {} |", ratio(&off), either(&|d| format!("{:.2}", ratio(d))));
        println!(
            "| sauna CPU time per 100k commands | {:.2} s | {} |",
            off.cpu_per_100k,
            either(&|d| format!("{:.2} s", d.cpu_per_100k))
        );
        println!("| sauna peak RSS | {:.0} MiB | {} |", off.rss, either(&|d| format!("{:.0} MiB", d.rss)));
        println!(
            "| DynamoDB writes per command | {:.3} | {} |",
            off.writes_per_command,
            either(&|d| format!("{:.3}", d.writes_per_command))
        );
    });
}
