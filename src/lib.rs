//! Sauna's Amazon Kinesis observer, in Rust.
//!
//! Reads Sauna commands from every shard of a Kinesis stream, hands each to the responder for
//! its command type, and checkpoints progress in a KCL-compatible DynamoDB lease table.
//!
//! The actors, one module each (the actor map of the design):
//!
//! ```text
//! Supervisor (one per observer config; restarts children with backoff)   supervisor
//! ├── LeaseManager      renew / take / steal / release leases; shard sync  lease_manager
//! ├── ShardConsumer ×N  one per held lease: GetRecords → parse → dispatch  shard_consumer
//! ├── Checkpointer      "done up to S" per shard → batched writes         checkpointer
//! ├── Metrics           aggregates, flushes to CloudWatch                  metrics
//! └── Responders        one actor per command type                         responders
//! ```
//!
//! Around them: [`config`] (the config directory), [`command`] (a record's bytes → a command
//! or the reason it is not one), [`parser_pool`] (parsing on every core), [`outcome`], [`iglu`],
//! [`aws`], [`supervision`] and [`app`] (the process and its signals).

pub mod app;
pub mod aws;
pub mod checkpointer;
pub mod cli;
pub mod command;
pub mod config;
pub mod dead_letters;
pub mod iglu;
pub mod lease_manager;
pub mod metrics;
pub mod outcome;
pub mod outcome_log;
pub mod parser_pool;
pub mod responders;
pub mod shard_consumer;
pub mod supervision;
pub mod supervisor;

pub use app::{Observers, RunError, run};
