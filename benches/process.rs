//! Sauna as an operator runs it: the `sauna run` binary (this build, optimised) as a child
//! process with the stdout responder printing every command to a pipe this benchmark reads,
//! against kinesalite + dynalite, each figure beside a plain loop's in the same run:
//!
//! 1. **drain**: 100,000 commands on 4 shards, TRIM_HORIZON, `maxRecords` 10,000, the default
//!    runtime config (dedup off, then on): wall time until the last line is on the pipe, CPU
//!    seconds (user + system, from `/proc/<pid>/stat`), peak RSS (`VmHWM`), and the time from
//!    the spawn to the first command on the pipe — beside a plain GetRecords loop's drain of
//!    the same stream and its time to a first record (client construction included);
//! 2. **idle**: 64 empty shards, CPU per minute and RSS once every shard is read, beside a
//!    plain loop polling the same 64 shards once a second;
//! 3. **scale**: 200 empty shards and 1, 2 and 4 worker processes sharing one lease table: the
//!    time until every shard is held and read once, the CPU each worker spent until then and
//!    per minute after, beside a plain loop that reads each shard once.
//!
//! Run: `scripts/bench.sh --bench process`. `SAUNA_BENCH_RECORDS` (100,000), `SAUNA_BENCH_RUNS`
//! (3; the drain's figures are medians), `SAUNA_BENCH_IDLE_SECS` (30) change the sizes;
//! `SAUNA_BENCH_ONLY=drain|idle` runs one part, `SAUNA_BENCH_DEDUP=off` only the drain without
//! dedup, `SAUNA_BENCH_RUNTIME` (a JSON object) adds to the drain's runtime config, and
//! `SAUNA_BENCH_PERF=DIR` records a `perf` profile of each drain and of one idle worker into `DIR`
//! (`SAUNA_BENCH_PERF_DWARF=1`: with DWARF call graphs), and `SAUNA_BENCH_BIN=PATH` runs another
//! build of `sauna` (one of an earlier commit, for a before and after on the same day). The plain loop's
//! CPU and peak RSS are this benchmark process's own while it drains.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

const SAUNA: &str = env!("CARGO_BIN_EXE_sauna");

/// The binary measured: this checkout's, or `SAUNA_BENCH_BIN`'s.
fn sauna_bin() -> String {
    std::env::var("SAUNA_BENCH_BIN").unwrap_or_else(|_| SAUNA.to_string())
}

fn stat_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
}

/// User + system CPU seconds of process `pid`.
fn cpu_of(pid: u32) -> f64 {
    common::stat_cpu_seconds(&stat_of(pid))
}

/// Minor page faults so far (pages touched for the first time, mostly: a cost of its own on
/// a virtual machine).
fn faults_of(pid: u32) -> f64 {
    common::stat_field(&stat_of(pid), 7)
}

/// A line of `/proc/<pid>/status` in MiB (`VmHWM`: peak RSS, `VmRSS`: now).
fn memory_of(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A config directory: one observer of `stream` (kinesalite), the stdout responder for the
/// benchmark's commands, and the default runtime config but for `runtime`.
fn config_dir(stream: &str, id: &str, runtime: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, v: Value| std::fs::write(dir.path().join(name), v.to_string()).expect("write");
    write("kinesis.json", common::observer_config(stream, id));
    write(
        "stdout.json",
        json!({ "schema": "iglu:rs.sauna.responders/StdoutConfig/avro/1-0-0",
                "data": { "enabled": true, "id": "stdout",
                          "parameters": { "commands": ["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*"] } } }),
    );
    write("runtime.json", json!({ "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": runtime }));
    dir
}

/// `sauna run` on `dir`, standard output piped, standard error (info logs) into `log`.
fn spawn(dir: &Path, log: &Path, kinesalite: &str) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(sauna_bin())
        .args(["run", "--config-dir"])
        .arg(dir)
        .env("AWS_ENDPOINT_URL_KINESIS", kinesalite)
        .env("RUST_LOG", "warn,sauna::shard_consumer=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("sauna runs")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Distinct shards the logs in `logs` say were read ("shard X: reading from").
fn shards_read(logs: &[std::path::PathBuf]) -> usize {
    let mut seen = std::collections::HashSet::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.split("shard ").nth(1)
                && let Some((shard, _)) = rest.split_once(": reading from")
            {
                seen.insert(shard.to_owned());
            }
        }
    }
    seen.len()
}

/// What one drain by the `sauna run` process measured.
struct ProcessDrain {
    wall: f64,
    cpu: f64,
    rss: f64,
    first: f64,
    faults: f64,
}

fn drain_once(stream: &str, id: &str, dedup: bool, total: usize, kinesalite: &str) -> ProcessDrain {
    let mut runtime = json!({ "dedup": { "enabled": dedup } });
    // `SAUNA_BENCH_RUNTIME='{"retrieval": {…}}'`: more of the runtime config, for trying settings.
    if let Ok(extra) = std::env::var("SAUNA_BENCH_RUNTIME") {
        let extra: serde_json::Map<String, Value> =
            serde_json::from_str(&extra).expect("SAUNA_BENCH_RUNTIME: a JSON object");
        runtime.as_object_mut().expect("an object").extend(extra);
    }
    let dir = config_dir(stream, id, runtime);
    let start = Instant::now();
    let mut child = spawn(dir.path(), &dir.path().join("sauna.log"), kinesalite);
    let pid = child.id();
    let profiler = profile(pid, if dedup { "dedup-on" } else { "dedup-off" });
    let mut out = child.stdout.take().expect("stdout");
    let lines = Arc::new(AtomicU64::new(0));
    let first_at = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let reader = {
        let (lines, first_at) = (lines.clone(), first_at.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                if now > 0 && lines.fetch_add(now, Ordering::Relaxed) == 0 {
                    *first_at.lock().expect("first") = Some(start.elapsed());
                }
            }
        })
    };
    while (lines.load(Ordering::Relaxed) as usize) < total {
        assert!(start.elapsed() < Duration::from_secs(600), "sauna did not print every command");
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu, rss, faults) = (cpu_of(pid), memory_of(pid, "VmHWM:"), faults_of(pid));
    if let Some(perf) = profiler {
        stop(perf);
    }
    stop(child);
    let _ = reader.join();
    let first = first_at.lock().expect("first").map_or(f64::NAN, |d| d.as_secs_f64());
    ProcessDrain { wall, cpu, rss, first, faults }
}

/// With `SAUNA_BENCH_PERF=DIR`, a `perf record` of the whole machine (call graphs, 1999 Hz) into
/// `DIR/NAME.data`, and the sauna process's pid into `DIR/NAME.pid`, for a profile of where its
/// time goes: `perf report -i DIR/NAME.data --pid $(cat DIR/NAME.pid)`. (Recording only the
/// pid misses some of the threads it starts after perf attaches.)
fn profile(pid: u32, name: &str) -> Option<Child> {
    let dir = std::env::var("SAUNA_BENCH_PERF").ok()?;
    std::fs::write(Path::new(&dir).join(format!("{name}.pid")), pid.to_string()).expect("pid file");
    let out = Path::new(&dir).join(format!("{name}.data"));
    // Frame-pointer call graphs (`-g`) are empty for a release build, which keeps no frame
    // pointers; `SAUNA_BENCH_PERF_DWARF=1` unwinds with DWARF instead (larger files, fewer Hz).
    let graphs: &[&str] = match std::env::var("SAUNA_BENCH_PERF_DWARF") {
        Ok(_) => &["-F", "499", "--call-graph", "dwarf,16384"],
        Err(_) => &["-F", "1999", "-g"],
    };
    let child = Command::new("perf")
        .arg("record")
        .args(graphs)
        .args(["-a", "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("perf runs");
    std::thread::sleep(Duration::from_millis(100));
    Some(child)
}

/// A plain loop's time to a first record: a client, an iterator, one GetRecords.
async fn plain_first_record(stream: &str) -> f64 {
    let start = Instant::now();
    let clients = sauna::AwsClients::for_observer("us-east-1", &sauna::config::AwsCredentials::DefaultChain).await;
    let shards = clients.kinesis.list_shards().stream_name(stream).send().await.expect("ListShards");
    let shard = shards.shards().first().expect("a shard").shard_id().to_owned();
    let it = common::trim_horizon(&clients.kinesis, stream, &shard).await;
    let out = clients.kinesis.get_records().shard_iterator(it).limit(10_000).send().await.expect("GetRecords");
    assert!(!out.records().is_empty());
    start.elapsed().as_secs_f64()
}

async fn drain(client: &aws_sdk_kinesis::Client, kinesalite: &str) {
    let total = common::env_number("SAUNA_BENCH_RECORDS", 100_000) as usize;
    let runs = common::env_number("SAUNA_BENCH_RUNS", 3).max(1);
    let stream = format!("process-{}", uuid::Uuid::new_v4().simple());
    common::create_stream(client, &stream, 4).await;
    common::put_all(client, &stream, total).await;
    let (mut plain, mut plain_cpu, mut plain_rss, mut plain_first) = (vec![], vec![], vec![], vec![]);
    let mut sauna: [Vec<ProcessDrain>; 2] = [vec![], vec![]];
    // `SAUNA_BENCH_DEDUP=off`: only the run with dedup off (the other takes two minutes).
    let modes: &[bool] =
        if std::env::var("SAUNA_BENCH_DEDUP").as_deref() == Ok("off") { &[false] } else { &[false, true] };
    for run in 0..runs {
        common::reset_peak_rss();
        let cpu = common::cpu_seconds();
        plain.push(common::plain_drain(client, &stream, total).await.as_secs_f64());
        plain_cpu.push(common::cpu_seconds() - cpu);
        plain_rss.push(common::peak_rss_mib());
        plain_first.push(plain_first_record(&stream).await);
        for (i, dedup) in modes.iter().copied().enumerate() {
            let id = format!("{stream}-{run}-{}", if dedup { "dedup" } else { "plain" });
            let (s, k) = (stream.clone(), kinesalite.to_owned());
            let d = tokio::task::spawn_blocking(move || drain_once(&s, &id, dedup, total, &k)).await.expect("drain");
            eprintln!(
                "run {run}: dedup {}: {total} commands in {:.2} s, {:.2} CPU s, peak RSS {:.0} MiB, {:.0} page faults, first after {:.2} s (plain loop {:.2} s)",
                if dedup { "on" } else { "off" },
                d.wall,
                d.cpu,
                d.rss,
                d.faults,
                d.first,
                plain[run as usize]
            );
            sauna[i].push(d);
        }
    }
    let plain_wall = common::median(plain);
    let (plain_cpu, plain_rss, plain_first) =
        (common::median(plain_cpu), common::median(plain_rss), common::median(plain_first));
    let per = |v: &[ProcessDrain], f: fn(&ProcessDrain) -> f64| {
        if v.is_empty() { f64::NAN } else { common::median(v.iter().map(f).collect()) }
    };
    let scale = 100_000.0 / total as f64;
    println!("\n### drain: {total} commands, 4 kinesalite shards, `sauna run` with the stdout responder to a pipe");
    println!("(median of {runs} runs)\n");
    println!("| figure | plain loop | sauna, dedup off | sauna, dedup on |");
    println!("|---|---|---|---|");
    // A figure of a mode not run (`SAUNA_BENCH_DEDUP=off`) is printed as such, not as NaN.
    let cell = |x: f64, digits: usize| if x.is_nan() { "not run".to_string() } else { format!("{x:.digits$}") };
    let row = |label: &str, plain: String, f: fn(&ProcessDrain) -> f64, scale: f64, digits: usize| {
        let (off, on) = (per(&sauna[0], f) * scale, per(&sauna[1], f) * scale);
        println!("| {label} | {plain} | {} | {} |", cell(off, digits), cell(on, digits));
    };
    row("wall s to all", format!("{plain_wall:.2}"), |d| d.wall, 1.0, 2);
    let (off_wall, on_wall) = (per(&sauna[0], |d| d.wall), per(&sauna[1], |d| d.wall));
    println!(
        "| rate ratio to the plain loop | 1.00 | {} | {} |",
        cell(plain_wall / off_wall, 2),
        cell(plain_wall / on_wall, 2)
    );
    row("CPU s per 100k commands", format!("{:.2}", plain_cpu * scale), |d| d.cpu, scale, 2);
    row("peak RSS MiB", format!("{plain_rss:.0} (the benchmark's process)"), |d| d.rss, 1.0, 0);
    row("s from start to first command", format!("{plain_first:.2}"), |d| d.first, 1.0, 2);
    let _ = client.delete_stream().stream_name(&stream).send().await;
}

/// Waits until `logs` name `shards` distinct shards read; how long it took.
fn wait_all_read(logs: &[std::path::PathBuf], shards: usize, start: Instant) -> Duration {
    while shards_read(logs) < shards {
        assert!(start.elapsed() < Duration::from_secs(300), "not every shard was read");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// A plain loop reading every shard of `stream` once (iterator + GetRecords), then polling
/// each once a second for `window`: its time to all read, and its CPU seconds per minute.
async fn plain_poll(client: &aws_sdk_kinesis::Client, stream: &str, window: Duration) -> (f64, f64) {
    let start = Instant::now();
    let mut shards = vec![];
    let mut next: Option<String> = None;
    loop {
        let mut call = client.list_shards();
        call = match &next {
            Some(t) => call.next_token(t),
            None => call.stream_name(stream),
        };
        let out = call.send().await.expect("ListShards");
        shards.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
        next = out.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    let reads = shards.into_iter().map(|shard| {
        let (client, stream) = (client.clone(), stream.to_owned());
        async move {
            let it = common::trim_horizon(&client, &stream, &shard).await;
            let out = client.get_records().shard_iterator(it).send().await.expect("GetRecords");
            out.next_shard_iterator
        }
    });
    let mut iterators = futures::future::join_all(reads).await;
    let all_read = start.elapsed().as_secs_f64();
    let cpu0 = common::cpu_seconds();
    let until = Instant::now() + window;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let polls =
            iterators.iter().map(|it| {
                let client = client.clone();
                let it = it.clone();
                async move {
                    client.get_records().set_shard_iterator(it).send().await.ok().and_then(|o| o.next_shard_iterator)
                }
            });
        iterators = futures::future::join_all(polls).await;
    }
    (all_read, (common::cpu_seconds() - cpu0) * 60.0 / window.as_secs_f64())
}

/// `workers` processes of one observer on a stream of `shards` empty shards: time to every
/// shard read, and for each worker its CPU until then and per minute over `window` after.
fn workers_on(
    stream: &str,
    id: &str,
    workers: usize,
    shards: usize,
    window: Duration,
    k: &str,
) -> (f64, Vec<(f64, f64, f64)>) {
    let dir = config_dir(stream, id, json!({}));
    let logs: Vec<_> = (0..workers).map(|i| dir.path().join(format!("w{i}.log"))).collect();
    let start = Instant::now();
    let children: Vec<Child> = logs.iter().map(|log| spawn(dir.path(), log, k)).collect();
    let took = wait_all_read(&logs, shards, start);
    let until_then: Vec<f64> = children.iter().map(|c| cpu_of(c.id())).collect();
    let profiler = if workers == 1 { profile(children[0].id(), &format!("idle-{shards}")) } else { None };
    std::thread::sleep(window);
    if let Some(perf) = profiler {
        stop(perf);
    }
    let per_worker = children
        .iter()
        .zip(until_then)
        .map(|(c, before)| {
            (before, (cpu_of(c.id()) - before) * 60.0 / window.as_secs_f64(), memory_of(c.id(), "VmRSS:"))
        })
        .collect();
    children.into_iter().for_each(stop);
    (took.as_secs_f64(), per_worker)
}

async fn idle_and_scale(client: &aws_sdk_kinesis::Client, kinesalite: &str) {
    let window = Duration::from_secs(common::env_number("SAUNA_BENCH_IDLE_SECS", 30));
    println!("\n### idle and scale: empty shards, the default runtime config");
    println!("(CPU per minute measured over {} s once every shard was read)\n", window.as_secs());
    println!(
        "| shards | workers | plain loop: s to all read | sauna: s to all read | plain loop CPU s/min | sauna CPU s until all read, per worker | sauna CPU s/min, per worker | sauna RSS MiB, per worker |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (shards, worker_counts) in [(64usize, &[1usize][..]), (200, &[1, 2, 4][..])] {
        let stream = format!("idle-{shards}-{}", uuid::Uuid::new_v4().simple());
        common::create_stream(client, &stream, shards as i32).await;
        let (plain_read, plain_cpu) = plain_poll(client, &stream, window).await;
        for &workers in worker_counts {
            let id = format!("{stream}-{workers}");
            let (s, k) = (stream.clone(), kinesalite.to_owned());
            let (took, per) = tokio::task::spawn_blocking(move || workers_on(&s, &id, workers, shards, window, &k))
                .await
                .expect("workers");
            let list = |f: fn(&(f64, f64, f64)) -> f64, p: usize| {
                per.iter().map(|w| format!("{:.*}", p, f(w))).collect::<Vec<_>>().join(" / ")
            };
            println!(
                "| {shards} | {workers} | {plain_read:.2} | {took:.2} | {plain_cpu:.2} | {} | {} | {} |",
                list(|w| w.0, 2),
                list(|w| w.1, 2),
                list(|w| w.2, 0)
            );
        }
        let _ = client.delete_stream().stream_name(&stream).send().await;
    }
}

fn main() {
    let Ok(kinesalite) = std::env::var("SAUNA_BENCH_KINESIS_ENDPOINT") else {
        eprintln!("SAUNA_BENCH_KINESIS_ENDPOINT is not set: run scripts/bench.sh");
        std::process::exit(2);
    };
    // SAFETY: single-threaded here, before any runtime or client exists.
    unsafe { std::env::set_var("AWS_ENDPOINT_URL_KINESIS", &kinesalite) };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let clients = sauna::AwsClients::for_observer("us-east-1", &sauna::config::AwsCredentials::DefaultChain).await;
        if std::env::var("SAUNA_BENCH_ONLY").as_deref() != Ok("idle") {
            drain(&clients.kinesis, &kinesalite).await;
        }
        if std::env::var("SAUNA_BENCH_ONLY").as_deref() != Ok("drain") {
            idle_and_scale(&clients.kinesis, &kinesalite).await;
        }
    });
}
