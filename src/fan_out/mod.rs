//! Enhanced fan-out: reading shards by `SubscribeToShard` instead of polling GetRecords.
//!
//! Why a module of its own: fan-out needs two things polling does not — a *stream consumer*
//! registered once per observer and shared by all its workers (`registration`), and a reader
//! that turns a subscription the service pushes to into the pull interface every
//! `ShardConsumer` uses (`reader`, `subscription`). Everything downstream of the reader —
//! ordering, the in-flight bound, checkpoints, handoffs, fencing, metrics — is the same code in
//! both modes, because the consumer cannot tell them apart except by
//! `ShardReader::waits_for_records`.

mod reader;
mod registration;
mod subscription;

pub use reader::{FanOutReader, FanOutSettings};
pub use registration::{RegistrationError, StreamConsumer, ensure_stream_consumer, list_stream_consumers};
