//! Sauna's Amazon Kinesis observer, in Rust.
//!
//! Reads Sauna commands from every shard of a Kinesis stream, hands each to the responder for
//! its command type, and checkpoints progress in a KCL-compatible DynamoDB lease table.
//!
//! The modules, from the bottom layer up (no module uses one above it):
//!
//! ```text
//! model        leaf types: sequence numbers and checkpoints, shard info, lease fencing
//!              (deadline, tenure), outcomes, backoff
//! config       settings types: observer, runtime, logger, secret (and their Avro schemas)
//! iglu         schema keys and criteria
//! command      a record's bytes → a command or the reason it is not one
//! kpl          KPL-aggregated records → their user records (checksum, protobuf, hash keys)
//! observe      the one way to look inside an actor; supervision: how a child reports its end
//! metrics      Metrics actor (CloudWatch, and the Prometheus registry)
//! responders   the responder contract, the built-ins, the shared responder actor
//! parser_pool dead_letters outcome_log     small actors around the consumers
//! lease_manager   LeaseManager: the lease table, taking, renewing, fencing, shard sync
//! checkpointer    Checkpointer: "done up to S" per shard → batched lease writes
//! shard_consumer  ShardConsumer: GetRecords → parse → dispatch → watermark
//! observer     the Supervisor: wires one observer's actors, restarts what fails
//! config_dir   the config directory loader (builds the responders it configures)
//! http_endpoint   the optional HTTP endpoint: /metrics, /healthz, /readyz
//! aws app cli  AWS clients, the process and its signals, the command line
//! ```

// The public API: the command line, the responder plugin API (responders, command, iglu,
// config), the config loader, the KCL-compatible lease table, and the leaf types.
pub mod cli;
pub mod command;
pub mod config;
pub mod config_dir;
pub mod iglu;
pub mod kpl;
pub mod lease_manager;
pub mod model;
pub mod responders;

mod app;
mod aws;
mod aws_error;
mod checkpointer;
pub mod claims;
mod dead_letters;
mod dynamodb_table;
pub mod fan_out;
mod http_endpoint;
mod metrics;
mod observe;
mod observer;
mod outcome_log;
mod parser_pool;
mod shard_consumer;
mod supervision;
mod tasks;
mod timers;

// The running process and what can be observed of it.
pub use app::{Observers, RunError, default_worker_id, run};
pub use aws::AwsClients;
pub use checkpointer::{CheckpointerSnapshot, ShardCheckpointSnapshot};
pub use config_dir::{Configuration, load_dir};
pub use metrics::MetricsSnapshot;
pub use observer::ObserverSnapshot;
pub use shard_consumer::{ConsumerCounters, Phase, ShardConsumerSnapshot};
