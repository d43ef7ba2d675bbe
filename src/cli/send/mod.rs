//! `sauna send`: a producer for operators and tests. It reads commands as JSON lines, checks
//! every one as the observer will (the same schemas, the same responders), and only if all
//! pass puts them on the observer's stream — so a typo is an error naming its line, not an
//! `invalid` outcome in a log an hour later.
//!
//! [`input`] turns lines into records (completing the envelope of a bare `{"schema", "data"}`);
//! [`putting`] writes them in PutRecords batches and retries the entries a call refused.

mod input;
mod putting;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::DirArgs;
use crate::command::CommandParser;
use crate::config::KinesisObserverConfig;
use crate::config_dir::{self, Catalog, Configuration};
use crate::model::Backoff;
use input::{EnvelopeDefaults, LineError, PartitionKey, Preparer, Record};
use putting::{KinesisPut, RetrySettings, Summary};

/// How many problems of one kind are printed before "… and N more".
const SHOWN: usize = 20;

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The observer whose stream to write to (needed when the directory enables several).
    #[arg(long, value_name = "ID")]
    observer: Option<String>,
    /// The time to live of the commands given as schema and data, e.g. 90s, 15m, 1h, 2days
    /// (their execution.timeToLive). Without it they never expire.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Option<Duration>,
    /// A tag of the commands given as schema and data (repeatable; a key given twice keeps its
    /// last value).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// The partition key: a field of the command's data, as a JSON pointer (/channel) or a
    /// dotted path (details.host). Default: the commandId, which spreads commands evenly; a
    /// field keeps the commands sharing its value in order (e.g. a PagerDuty incident_key).
    #[arg(long, value_name = "FIELD", value_parser = PartitionKey::parse)]
    partition_key: Option<PartitionKey>,
    /// Send commands that no enabled responder of the directory takes, with a warning, instead
    /// of refusing them (e.g. when another deployment's responders take them).
    #[arg(long)]
    allow_unroutable: bool,
    /// Attempts of each record, the first included, when PutRecords refuses it (throttling).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// The commands, one JSON object a line (a full Sauna command, or a command's schema and
    /// data); - for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    file: PathBuf,
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("expected a duration such as 90s, 15m or 1h: {e}"))?;
    if d.as_millis() == 0 {
        return Err("expected a time to live of at least 1 ms".into());
    }
    Ok(d)
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

/// Runs `sauna send`.
pub fn run(args: &SendArgs, catalog: &Catalog) -> ExitCode {
    let configuration = match config_dir::load_dir_with(&args.dir.config_dir, catalog) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let observer = match pick_observer(&configuration, args.observer.as_deref()) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let input = match read_input(&args.file) {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let Some(records) = prepare(args, &configuration, &observer.stream_name, &input) else {
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = runtime.block_on(put(args, observer, &records));
    report(observer, &summary)
}

/// The observer named by `--observer`, or the only enabled one.
fn pick_observer<'a>(c: &'a Configuration, id: Option<&str>) -> Result<&'a KinesisObserverConfig, String> {
    let list = || c.observers.iter().map(|o| format!("{} (stream {})", o.id, o.stream_name)).collect::<Vec<_>>();
    match id {
        Some(id) => c
            .observers
            .iter()
            .find(|o| o.id == id)
            .ok_or_else(|| format!("no enabled observer with id {id:?}; the enabled ones: {}", list().join(", "))),
        None if c.observers.len() == 1 => Ok(&c.observers[0]),
        None => Err(format!(
            "the directory enables {} observers; choose the stream with --observer ID: {}",
            c.observers.len(),
            list().join(", ")
        )),
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>, String> {
    if file == Path::new("-") {
        if std::io::stdin().is_terminal() {
            eprintln!("reading commands from standard input, one JSON object a line (end with Ctrl-D)");
        }
        let mut bytes = vec![];
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(bytes)
    } else {
        std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
    }
}

/// Every line's record, or `None` once the problems are printed (nothing is sent then).
fn prepare(args: &SendArgs, c: &Configuration, stream: &str, input: &[u8]) -> Option<Vec<Record>> {
    let criteria = c.responders.iter().map(|r| r.criteria()).collect();
    let parser = CommandParser::new(c.command_schemas.clone(), criteria);
    let defaults = EnvelopeDefaults { time_to_live: args.ttl, tags: args.tags.iter().cloned().collect() };
    let preparer = Preparer {
        parser: &parser,
        schemas: &c.command_schemas,
        defaults: &defaults,
        partition_key: args.partition_key.as_ref().unwrap_or(&PartitionKey::CommandId),
        allow_unroutable: args.allow_unroutable,
    };
    match preparer.prepare_all(input, chrono::Utc::now()) {
        Ok(prepared) => {
            print_some("warning", &prepared.warnings);
            Some(prepared.records)
        }
        Err(errors) => {
            print_some("error", &errors);
            eprintln!(
                "error: {} invalid line{} in {}; nothing was sent to stream {stream}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                if args.file == Path::new("-") { "standard input".to_owned() } else { args.file.display().to_string() }
            );
            None
        }
    }
}

fn print_some(level: &str, problems: &[LineError]) {
    for p in problems.iter().take(SHOWN) {
        eprintln!("{level}: {p}");
    }
    if problems.len() > SHOWN {
        eprintln!("{level}: … and {} more", problems.len() - SHOWN);
    }
}

/// Puts the records, with a progress bar on a terminal when there is more than one call's worth.
async fn put(args: &SendArgs, observer: &KinesisObserverConfig, records: &[Record]) -> Summary {
    let clients = crate::aws::AwsClients::for_observer(&observer.region, &observer.credentials).await;
    let api = KinesisPut { client: clients.kinesis, stream: observer.stream_name.clone() };
    let settings = RetrySettings {
        max_attempts: args.max_attempts,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).jittered(),
    };
    let bar = (std::io::stderr().is_terminal() && records.len() > putting::MAX_RECORDS_PER_CALL).then(|| {
        let bar = ProgressBar::new(records.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} commands ({elapsed}, {eta} left)") {
            bar.set_style(style);
        }
        // Redrawn on a tick: a draw on every increment is rate-limited, and the increments of
        // a batch come all at once, so the last ones would stay undrawn until the next batch.
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let summary = putting::send_all(&api, records, &settings, &progress).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary
}

/// The summary line (standard output), the records given up on (standard error), the exit code.
fn report(observer: &KinesisObserverConfig, s: &Summary) -> ExitCode {
    let problems: Vec<LineError> =
        s.rejected.iter().map(|(line, message)| LineError { line: *line, message: message.clone() }).collect();
    print_some("error", &problems);
    if let Some(fatal) = &s.fatal {
        eprintln!("error: stream {}: {fatal}; {} records were not sent", observer.stream_name, s.unsent);
    }
    println!(
        "stream {} (observer {}): {} sent, {} rejected, {} retried, in {} PutRecords call{}{}",
        observer.stream_name,
        observer.id,
        s.sent,
        s.rejected.len(),
        s.retried,
        s.calls,
        if s.calls == 1 { "" } else { "s" },
        if s.unsent > 0 { format!(", {} not sent", s.unsent) } else { String::new() }
    );
    if s.rejected.is_empty() && s.unsent == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
