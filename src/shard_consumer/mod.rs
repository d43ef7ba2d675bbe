//! `ShardConsumer`: one per held lease. Waits until the shard's parents are finished, reads the
//! shard from its checkpoint (or the initial position), has each batch classified on the parse
//! pool, sends every command to the responder of its type, and reports to the Checkpointer how
//! far every record has an outcome. At the end of a closed shard it asks for SHARD_END once the
//! last record has one.
//!
//! The read loop is a self-scheduled fetch: a full batch fetches again at once; otherwise it
//! waits `idleTimeBetweenReads` (the KCL's 1 s default keeps one consumer well inside the
//! 5 GetRecords/s/shard quota, which five consumers of a stream share), and after consecutive
//! empty reads twice as long each time, up to `maxIdleTimeBetweenReads` (4 s by default): an
//! idle stream of many shards costs a quarter of the calls, a new record on it waits at most
//! that long. Reading pauses while `maxInFlightPerShard` records, or `maxInFlightBytesPerShard`
//! of their data, are without an outcome: a slow responder slows the read, it never grows a
//! queue without bound, and a GetRecords asks for no more records than the room left (in bytes,
//! judged by the last batch's average size).
//!
//! The files: `actor` (the actor, its life and messages), `read_loop` (iterator and fetch),
//! `dispatch` (records to responders), `outcomes` (how a record ends), [`tracker`] (the pure
//! bookkeeping of order, bounds and the watermark), and [`reading`] (the Kinesis calls).

mod actor;
mod claiming;
mod dispatch;
mod outcomes;
mod read_loop;
pub mod reading;
mod ticking;
pub mod tracker;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use crate::checkpointer::{Progress, ShardEnded};
use crate::claims::ClaimStore;
use crate::config::runtime::{Ordering, RetryPolicy};
use crate::dead_letters::DeadLetter;
use crate::lease_manager::{LeaseOwner, ParentsFinished, PinLatestStart};
use crate::metrics::MetricsHandle;
use crate::model::{Outcome, Tenure};
use crate::outcome_log::OutcomeRow;
use crate::parser_pool::ParseBatch;
use crate::responders::Routes;
pub use actor::ShardConsumer;
pub use claiming::ClaimTimings;
pub use reading::{
    KinesisReader, ReadError, ReadRecord, RecordBatch, ShardReader, StartPosition, child_shard, read_record,
};

/// The fixed settings of every consumer of an observer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream_name: String,
    pub max_records: i32,
    pub idle_time: Duration,
    /// The longest wait after consecutive empty reads (the wait doubles from `idle_time`).
    pub max_idle_time: Duration,
    pub max_in_flight: usize,
    /// The most record data bytes read and without an outcome.
    pub max_in_flight_bytes: usize,
    pub ordering: Ordering,
    /// The instant of an AT_TIMESTAMP initial position.
    pub at_timestamp: Option<DateTime<Utc>>,
    pub parent_poll_interval: Duration,
    /// How often a consumer whose lease deadline has lapsed looks again (its LeaseManager drops
    /// the lease meanwhile, and the Supervisor stops it).
    pub lease_recheck_interval: Duration,
    pub checkpoint_interval: Duration,
    /// Used for re-sending a command whose responder mailbox failed.
    pub retry: RetryPolicy,
    pub mailbox: usize,
    /// The observer's id (for dead letters and the outcome log).
    pub observer_id: String,
    /// Which outcomes are dead-lettered (empty: none).
    pub dead_letter_outcomes: Vec<Outcome>,
    /// This worker's identity (in its claims).
    pub worker_id: String,
    /// How claims are kept (`None`: dedup is off).
    pub claims: Option<ClaimTimings>,
}

/// Who a consumer talks to: each a recipient (or a trait), so a test can stand in for any.
#[derive(Clone)]
pub struct ConsumerLinks {
    pub reader: Arc<dyn ShardReader>,
    pub parser: Recipient<ParseBatch>,
    pub routes: Arc<Routes>,
    /// The Checkpointer: progress, and the end of the shard.
    pub progress: Recipient<Progress>,
    pub shard_ended: Recipient<ShardEnded>,
    /// The LeaseManager: whether the shard's parents are finished, and where a LATEST shard
    /// started.
    pub parents: Recipient<ParentsFinished>,
    pub latest_start: Recipient<PinLatestStart>,
    /// Who holds a shard's lease (whether a claimer is still live).
    pub lease_owner: Recipient<LeaseOwner>,
    pub metrics: MetricsHandle,
    pub dead_letters: Option<Recipient<DeadLetter>>,
    pub outcome_log: Option<Recipient<OutcomeRow>>,
    /// The claim table (`None`: dedup is off).
    pub claims: Option<Arc<dyn ClaimStore>>,
}

/// Where a consumer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A parent shard still has records without an outcome somewhere.
    WaitingOnParents,
    /// Getting a shard iterator.
    Starting,
    Reading,
    /// The end of the closed shard was reached: finishing its last records.
    Closing,
    /// Every record of the closed shard has an outcome: SHARD_END is being written.
    WritingShardEnd,
    /// Shutdown or handoff: no more reads, finishing what is in flight.
    Draining,
    /// Before the final checkpoint of a handoff or shutdown: nothing more is dispatched or
    /// retried, so nothing is actioned after the checkpoint that the next owner reads again.
    Frozen,
    Finished,
}

/// A parent of some shard has ended (so a consumer waiting on it may start).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ParentFinished(pub Arc<str>);

/// Stop reading, finish the commands in flight, report the final progress. Answers when done.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Dispatch nothing more (and let no command retry): the drain is over, the final checkpoint
/// comes next. Answers once the final progress is on its way to the Checkpointer.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Freeze;

/// Fails the consumer on purpose (tests of supervision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct InjectFailure {
    pub panic: bool,
}

/// What a consumer has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerCounters {
    pub records_read: u64,
    pub bytes_read: u64,
    pub batches: u64,
    /// Outcomes in the order of [`Outcome::ALL`].
    pub outcomes: [u64; 6],
    pub iterator_restarts: u64,
    pub throttles: u64,
    pub errors: u64,
    /// Commands that came back without an outcome (their lease or consumer was gone).
    pub abandoned: u64,
    /// User records taken from KPL aggregates (each one command).
    pub user_records: u64,
    /// User records of KPL aggregates dropped because one of them is outside the shard's hash
    /// key range.
    pub user_records_dropped: u64,
    /// Ticks run (progress, outcome counts and levels reported): four per checkpoint interval
    /// while there is news, one per few seconds while the shard is idle.
    pub ticks: u64,
}

impl ConsumerCounters {
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        Outcome::ALL.iter().position(|o| *o == outcome).map_or(0, |i| self.outcomes[i])
    }
}

/// What a consumer is doing and has done, for tests and operators.
#[derive(Debug, Clone)]
pub struct ShardConsumerSnapshot {
    pub shard: String,
    pub tenure: Tenure,
    pub phase: Phase,
    pub counters: ConsumerCounters,
    pub not_done: usize,
    /// The data bytes of those records.
    pub not_done_bytes: usize,
    pub in_flight: usize,
    pub watermark: Option<String>,
    pub millis_behind_latest: Option<i64>,
    pub mailbox_capacity: usize,
}

#[cfg(test)]
mod tests;
