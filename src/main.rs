//! The `sauna` binary: the command line, logging set-up and exit codes. Everything else is in
//! the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sauna::config::{self, FileStatus};

/// Sauna's Amazon Kinesis observer: reads Sauna commands from a Kinesis stream and hands each
/// to the responder for its command type (Slack, PagerDuty, SendGrid…), checkpointing progress
/// in a DynamoDB lease table named after the observer's id.
///
/// Logging goes to standard error; set its level with RUST_LOG (e.g. RUST_LOG=debug or
/// RUST_LOG=sauna=debug,info). AWS endpoints follow the standard AWS_ENDPOINT_URL and
/// AWS_ENDPOINT_URL_<SERVICE> variables.
#[derive(Debug, Parser)]
#[command(name = "sauna", version, about, long_about)]
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
}

#[derive(Debug, Args)]
struct DirArgs {
    /// The config directory: its *.json and *.avro files are read (not recursively); other
    /// files are ignored.
    #[arg(
        long = "config-dir",
        visible_alias = "configurations",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    match cli.command {
        Command::Validate(args) => validate(&args.config_dir),
        Command::Run(args) => run(&args.config_dir),
    }
}

fn validate(dir: &Path) -> ExitCode {
    let report = config::inspect_dir(dir);
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
    if report.configuration.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(dir: &Path) -> ExitCode {
    let configuration = match config::load_dir(dir) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "error: the config directory {} is not valid; nothing was started",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    for w in &configuration.warnings {
        log::warn!("{w}");
    }
    match sauna::run(configuration) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("sauna stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
