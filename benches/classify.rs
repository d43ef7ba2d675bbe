//! What a command costs to classify (parse, both schema validations, the envelope's fields,
//! the route), without Kinesis or DynamoDB: the part of `sauna run`'s CPU per command that is
//! sauna's own and not the SDK's, measured on one thread with nothing else in the process.
//!
//! Beside it, the plain loop: the record's bytes parsed into a `serde_json::Value` tree (their
//! UTF-8 checked, then parsed as text) and the tree dropped, the least any consumer that looks
//! into a command does. Both run over the same 100,000 records the drain benchmarks write
//! (~560 B each), in alternating rounds. The machine's speed drifts by ±15 % from one run to the
//! next, even for one thread, so the figure to compare across runs is the ratio of the two in
//! the same round (the median over rounds), not either CPU figure alone.
//!
//! Run: `scripts/bench.sh --bench classify` (or `cargo bench --bench classify`: it needs no
//! emulator). `SAUNA_BENCH_RECORDS` (100,000) and `SAUNA_BENCH_RUNS` (rounds, 9) change the sizes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sauna::command::{Classified, CommandParser, SchemaRegistry};

mod common;

/// The `sauna` binary's allocator (src/main.rs): a command's cost is mostly allocation.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Seconds of this thread's CPU (user + system) and of the wall clock that `f` took.
fn measure(f: impl FnOnce()) -> (f64, f64) {
    let (cpu, wall) = (thread_cpu(), Instant::now());
    f();
    (thread_cpu() - cpu, wall.elapsed().as_secs_f64())
}

/// This thread's CPU time, from `/proc/thread-self/schedstat` (nanoseconds on the CPU), which
/// is exact where `/proc/self/stat` counts in ticks of 10 ms.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        .map_or(0.0, |ns| ns / 1e9)
}

/// The plain loop's round (a function of its own, so that a profile tells the two apart).
#[inline(never)]
fn plain_round(records: &[Vec<u8>]) {
    for record in records {
        // As sauna reads a record: its UTF-8 checked once, then parsed as text (`from_slice`
        // checks each string's UTF-8 as it goes, at half as much again).
        let text = std::str::from_utf8(record).expect("benchmark records are UTF-8");
        let value: serde_json::Value = serde_json::from_str(text).expect("benchmark records are JSON");
        drop(black_box(value));
    }
}

#[inline(never)]
fn sauna_round(parser: &CommandParser, records: &[Vec<u8>], now: chrono::DateTime<chrono::Utc>) {
    for record in records {
        let classified = parser.classify(black_box(record), now);
        assert!(matches!(classified, Classified::Routable { .. }), "not routable: {classified:?}");
        drop(black_box(classified));
    }
}

fn main() {
    let total = common::env_number("SAUNA_BENCH_RECORDS", 100_000) as usize;
    let runs = common::env_number("SAUNA_BENCH_RUNS", 9).max(1);
    let records: Vec<Vec<u8>> = (0..total).map(common::command).collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let route = vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")];
    let parser = CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![route]);
    let now = chrono::Utc::now();

    let (mut plain, mut sauna, mut ratios) = ((vec![], vec![]), (vec![], vec![]), vec![]);
    for _ in 0..runs {
        let (plain_cpu, wall) = measure(|| plain_round(&records));
        plain.0.push(plain_cpu);
        plain.1.push(wall);
        let (cpu, wall) = measure(|| sauna_round(&parser, &records, now));
        sauna.0.push(cpu);
        sauna.1.push(wall);
        ratios.push(cpu / plain_cpu);
    }
    let scale = 100_000.0 / total as f64;
    let (plain_cpu, plain_wall) = (common::median(plain.0) * scale, common::median(plain.1) * scale);
    let (sauna_cpu, sauna_wall) = (common::median(sauna.0) * scale, common::median(sauna.1) * scale);
    println!(
        "\n### classify: {total} commands of {} B on average, one thread (medians of {runs} rounds)\n",
        bytes / total
    );
    println!("| figure | plain loop (parse into a `Value`, drop it) | sauna (`CommandParser::classify`, drop) |");
    println!("|---|---|---|");
    println!("| CPU s per 100k commands | {plain_cpu:.3} | {sauna_cpu:.3} |");
    println!("| wall s per 100k commands | {plain_wall:.3} | {sauna_wall:.3} |");
    println!("| µs of CPU per command | {:.2} | {:.2} |", plain_cpu * 10.0, sauna_cpu * 10.0);
    println!("| CPU to the plain loop's in the same round | 1.00 | {:.2} |", common::median(ratios));
}
