//! `LeaseManager`: this worker's side of the lease table. It creates the table, keeps it in step
//! with the stream's shards, takes leases (balancing with the other workers), renews the ones it
//! holds, writes checkpoints for the Checkpointer, ends shards (child leases, SHARD_END) and
//! releases leases on shutdown.
//!
//! Every write to a lease goes through this actor, one at a time per lease, because renewals
//! and checkpoints both move the lease's counter and each is conditional on the last one.
//! Fencing, three ways: writes are conditional on counter and owner; each acquisition gets a
//! [`Tenure`] that every consumer and checkpoint carries; and a lease this worker could not
//! renew within the failover time is dropped here first (its [`crate::model::LeaseDeadline`]
//! lapses, so its consumer stops dispatching) before any other worker may take it.
//!
//! The files: `actor` (the actor, its timers and messages), `writes` (the per-lease write
//! queue), `taking` (scan, plan, take, fence), `syncing` (shard sync and clean-up); the
//! table behind [`LeaseStore`] ([`LeaseTable`] in DynamoDB, [`MemoryLeaseTable`] in memory),
//! the row codec ([`row`]), and the pure cores [`taker`] and [`shard_sync`].

mod actor;
mod memory;
pub mod row;
pub mod shard_sync;
mod shards;
mod store;
mod syncing;
mod table;
pub mod taker;
mod taking;
mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::config::runtime::LeaseSettings;
use crate::model::{Checkpoint, HashKeyRange, LeaseDeadline, ShardInfo, Tenure};
pub use actor::LeaseManager;
pub use memory::{FaultHook, MemoryLeaseTable, TableCall, WriteHook};
pub use row::{Lease, RowError};
pub use shards::{FixedShards, KinesisShards, ListShardsError, ShardLister};
pub use store::{LeaseStore, LeaseTableError, Scan};
pub use table::LeaseTable;
use taker::TakePlan;

/// What the Supervisor needs to run a consumer for a lease this worker just took.
#[derive(Debug, Clone)]
pub struct AcquiredLease {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    pub checkpoint: Checkpoint,
    pub parents: Vec<String>,
    pub deadline: LeaseDeadline,
    /// The shard's hash key range, from the lease (`None`: the lease does not say; then no
    /// user record of a KPL aggregate is dropped for its hash key).
    pub hash_range: Option<HashKeyRange>,
}

/// What the LeaseManager tells its Supervisor, stamped with the generation of the observer's
/// core it belongs to: after a core restart, a late event of the old LeaseManager is ignored.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct LeaseEvent {
    pub generation: u64,
    pub change: LeaseChange,
}

/// What happened to a lease.
#[derive(Debug, Clone)]
pub enum LeaseChange {
    /// This worker now holds the lease: start a consumer for it.
    Acquired(AcquiredLease),
    /// The lease is no longer this worker's (taken by another, or not renewed in time): stop
    /// its consumer now, without checkpointing.
    Lost { shard: Arc<str>, tenure: Tenure, reason: String },
    /// The shard ended: child leases exist, the checkpoint is SHARD_END, the lease is released.
    Ended { shard: Arc<str>, tenure: Tenure },
    /// Another worker (balancing) or an operator asked for this lease: drain its consumer,
    /// flush its checkpoint, then [`Release`] it.
    HandoffRequested { shard: Arc<str>, tenure: Tenure, by: String },
    /// The lease table was reached and the first take cycle ran (once per LeaseManager): the
    /// observer is ready.
    Ready,
}

/// Why a lease write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// This worker does not hold the lease in that tenure (lost, or an older consumer).
    #[error("this worker does not hold the lease of {0} in this tenure")]
    NotHeld(String),
    /// The lease was lost while writing.
    #[error("the lease of {shard} was lost: {reason}")]
    Lost { shard: String, reason: String },
    /// DynamoDB did not answer well; the write may be tried again.
    #[error("lease table write failed: {0}")]
    Transient(String),
}

/// Write a checkpoint (for the Checkpointer).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), LeaseError>")]
pub struct WriteCheckpoint {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    pub checkpoint: Checkpoint,
}

/// The shard ended and every record has an outcome: create the child leases, checkpoint
/// SHARD_END, release.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), LeaseError>")]
pub struct EndShard {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    /// From GetRecords' `ChildShards`; empty when the service did not say (then ListShards).
    pub children: Vec<ShardInfo>,
}

/// A shard still at LATEST is about to be read for the first time by this consumer: record
/// `at` (epoch ms) as where it starts, unless an earlier reader of the lease recorded an
/// instant already.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<LatestStart, LeaseError>")]
pub struct PinLatestStart {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    pub at: i64,
}

/// Where a LATEST shard's reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestStart {
    /// This is the first reader: the instant is recorded, read from LATEST.
    Pinned,
    /// An earlier reader started at this instant (epoch ms): read AT_TIMESTAMP from it.
    Since(i64),
}

/// Who owns the lease of this shard now (`None`: nobody, or no lease)?
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Option<String>, LeaseError>")]
pub struct LeaseOwner(pub String);

/// Are all these parent shards finished (lease at SHARD_END, or gone)?
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, LeaseError>")]
pub struct ParentsFinished(pub Vec<String>);

/// Stop taking leases and release every held one (graceful shutdown).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ReleaseAll;

/// Release one lease (after its consumer drained and checkpointed).
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct Release {
    pub shard: Arc<str>,
    pub tenure: Tenure,
}

/// One held lease, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLeaseSnapshot {
    pub shard: String,
    pub tenure: Tenure,
    pub counter: u64,
    pub checkpoint: String,
}

/// What the LeaseManager has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseCounters {
    pub taken: u64,
    pub lost: u64,
    pub renewals: u64,
    pub take_cycles: u64,
    pub leases_created: u64,
    pub leases_deleted: u64,
    pub handoffs_requested: u64,
    pub handoffs_done: u64,
    pub checkpoint_writes: BTreeMap<String, u64>,
}

/// What the LeaseManager knows and has done.
#[derive(Debug, Clone, Default)]
pub struct LeaseManagerSnapshot {
    pub worker_id: String,
    pub held: Vec<HeldLeaseSnapshot>,
    pub last_plan: TakePlan,
    pub counters: LeaseCounters,
    pub mailbox_capacity: usize,
}

/// The fixed settings of a LeaseManager.
#[derive(Debug, Clone)]
pub struct LeaseManagerSettings {
    pub stream_name: String,
    pub worker_id: String,
    /// The generation of the observer's core this LeaseManager belongs to.
    pub generation: u64,
    /// Where new root shards start.
    pub initial_position: Checkpoint,
    pub leases: LeaseSettings,
    pub mailbox: usize,
}

/// How an operator's handoff request starts (`sauna leases --give-up`); any other requester
/// is the id of the worker that asked.
pub const OPERATOR: &str = "operator";

#[cfg(test)]
mod tests;
