//! The command line of `sauna`: subcommands, logging set-up and exit codes.
//!
//! [`main`] takes extra responder modules, so a program with its own responders is one line:
//! `fn main() -> ExitCode { sauna::cli::main(&[&my_responder::MODULE]) }`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod doctor;
mod leases;
mod send;

use crate::config_dir::{self, Catalog, FileStatus};
use crate::lease_manager::{LeaseStore, LeaseTable};
use crate::responders::ResponderModule;

/// Sauna's Amazon Kinesis observer: reads Sauna commands from a Kinesis stream and hands each
/// to the responder for its command type (Slack, PagerDuty, SendGrid…), checkpointing progress
/// in a DynamoDB lease table named after the observer's id.
///
/// Logging goes to standard error; set its level with RUST_LOG (e.g. RUST_LOG=debug or
/// RUST_LOG=sauna=debug,info). AWS endpoints follow the standard AWS_ENDPOINT_URL and
/// AWS_ENDPOINT_URL_<SERVICE> variables.
#[derive(Debug, Parser)]
#[command(name = "sauna", version = env!("CARGO_PKG_VERSION"), about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every enabled observer of a config directory until SIGTERM or SIGINT.
    ///
    /// The directory is loaded and validated first; any error stops the start with one line per
    /// problem (file, field, what was expected) and exit code 1.
    Run(DirArgs),
    /// Check every config file of a directory: one line per file (OK, DISABLED or the error),
    /// then the checks of the directory as a whole. Exit code 0 only if all is valid.
    Validate(DirArgs),
    /// Show the lease table of every observer: one line per shard with its owner, counter,
    /// checkpoint, parents and state (running, waiting on parent, ended, free), or JSON.
    ///
    /// With --give-up SHARD, asks the worker holding that shard to hand it over gracefully:
    /// it finishes the commands in flight, checkpoints and releases the lease, and another
    /// worker takes it.
    Leases(LeasesArgs),
    /// Put commands (JSON lines) on an observer's stream, each checked first as the observer
    /// will check it.
    ///
    /// Each line of FILE (or standard input) is a full Sauna command, or a command's
    /// {"schema", "data"}, which gets a new envelope. Every line is checked against the
    /// observer's schemas and responders first; if any is invalid, nothing is sent. Ends with a
    /// summary line (sent, rejected, retried).
    Send(send::SendArgs),
    /// Check what a first run needs, one line per check (ok, warn, FAIL); exit code 0 only if
    /// nothing failed.
    ///
    /// Per enabled observer: credentials, region, the stream (ACTIVE, a shard iterator), the
    /// lease and claim tables, the stream consumer (FAN_OUT), CloudWatch (one datum); then the
    /// responders' hosts (DNS only). A failure names the missing IAM action or the unreachable
    /// endpoint.
    Doctor(doctor::DoctorArgs),
}

#[derive(Debug, Args)]
struct LeasesArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the observer with this id.
    #[arg(long, value_name = "ID")]
    observer: Option<String>,
    /// Ask the worker holding this shard to hand it over (graceful: no command twice).
    #[arg(long, value_name = "SHARD")]
    give_up: Option<String>,
}

#[derive(Debug, Args)]
struct DirArgs {
    /// The config directory: its *.json and *.avro files are read (not recursively); other
    /// files are ignored.
    #[arg(long = "config-dir", visible_alias = "configurations", value_name = "DIR")]
    config_dir: PathBuf,
}

/// Runs the command line with the built-in responders plus `extra` ones.
pub fn main(extra: &[&'static ResponderModule]) -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let catalog = Catalog::with(extra);
    match cli.command {
        Command::Validate(args) => validate(&args.config_dir, &catalog),
        Command::Run(args) => run(&args.config_dir, &catalog),
        Command::Leases(args) => leases_command(&args, &catalog),
        Command::Send(args) => send::run(&args, &catalog),
        Command::Doctor(args) => doctor::run(&args, &catalog),
    }
}

fn leases_command(args: &LeasesArgs, catalog: &Catalog) -> ExitCode {
    let configuration = match config_dir::load_dir_with(&args.dir.config_dir, catalog) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let observers: Vec<_> = configuration
        .observers
        .iter()
        .filter(|o| args.observer.as_ref().is_none_or(|id| *id == o.id))
        .cloned()
        .collect();
    if observers.is_empty() {
        eprintln!("error: no enabled observer with id {:?}", args.observer.as_deref().unwrap_or(""));
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut reports = vec![];
        for o in &observers {
            let clients = crate::aws::AwsClients::for_observer(&o.region, &o.credentials).await;
            let table = LeaseTable::new(clients.dynamodb.clone(), o.id.clone());
            if let Some(shard) = &args.give_up {
                if !ask_handoff(&table, shard, &o.id).await {
                    return ExitCode::FAILURE;
                }
                continue;
            }
            match leases::read(&o.id, &o.stream_name, &table).await {
                Ok(mut r) => {
                    let retrieval = &configuration.runtime.retrieval;
                    if retrieval.mode == crate::config::runtime::RetrievalMode::FanOut {
                        let name = retrieval.consumer_name_of(&o.id);
                        r.stream_consumer =
                            Some(leases::stream_consumer(&clients.kinesis, &o.stream_name, &name).await);
                    }
                    reports.push(r)
                }
                Err(e) => {
                    eprintln!("error: observer {}: cannot read lease table {}: {e}", o.id, o.id);
                    return ExitCode::FAILURE;
                }
            }
        }
        if args.give_up.is_none() {
            if args.json {
                match serde_json::to_string_pretty(&reports) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", leases::to_text(&reports));
            }
        }
        ExitCode::SUCCESS
    })
}

/// `sauna leases --give-up SHARD`: asks the owner of `shard` to hand it over.
async fn ask_handoff(table: &LeaseTable, shard: &str, observer: &str) -> bool {
    let requester = format!(
        "{} ({})",
        crate::lease_manager::OPERATOR,
        std::env::var("USER").unwrap_or_else(|_| "sauna leases".into())
    );
    match table.request_handoff(shard, None, &requester).await {
        Ok(true) => {
            println!("observer {observer}: asked the owner of {shard} to hand it over");
            true
        }
        Ok(false) => {
            eprintln!(
                "error: observer {observer}: {shard} has no lease, no owner, has ended, or a handoff is already pending"
            );
            false
        }
        Err(e) => {
            eprintln!("error: observer {observer}: lease table {observer}: {e}");
            false
        }
    }
}

fn validate(dir: &Path, catalog: &Catalog) -> ExitCode {
    let report = config_dir::inspect_dir_with(dir, catalog);
    for file in &report.files {
        match &file.status {
            FileStatus::Loaded { schema, id } => {
                println!("OK        {}  {schema} id={id}", file.path.display())
            }
            FileStatus::Disabled { schema } => println!(
                "DISABLED  {}  {}(enabled is false or absent: ignored)",
                file.path.display(),
                schema.as_ref().map(|s| format!("{s} ")).unwrap_or_default()
            ),
            FileStatus::Failed(e) => println!("ERROR     {e}"),
        }
    }
    for e in &report.errors {
        println!("ERROR     {e}");
    }
    for w in &report.warnings {
        println!("WARNING   {w}");
    }
    if report.configuration.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn run(dir: &Path, catalog: &Catalog) -> ExitCode {
    let configuration = match config_dir::load_dir_with(dir, catalog) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("error: the config directory {} is not valid; nothing was started", dir.display());
            return ExitCode::FAILURE;
        }
    };
    for w in &configuration.warnings {
        log::warn!("{w}");
    }
    match crate::run(configuration) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("sauna stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
