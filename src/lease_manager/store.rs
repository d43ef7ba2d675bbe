//! `LeaseStore`: the lease table as the LeaseManager uses it — a scan, a read, and conditional
//! writes with DynamoDB's semantics. [`super::LeaseTable`] is the DynamoDB table;
//! [`super::MemoryLeaseTable`] the same semantics in memory, for tests and simulations that
//! drive real LeaseManagers without an emulator.
//!
//! Every write is conditional, as the KCL's: a renew, take, checkpoint or release succeeds only
//! if the counter (and owner) are still what this worker last saw, so a worker that lost a lease
//! cannot write to it. A write refused on its condition is [`LeaseTableError::ConditionFailed`].

use async_trait::async_trait;

use super::row::{Lease, RowError};
use crate::model::Checkpoint;

/// A failed lease-table call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseTableError {
    /// The condition did not hold: someone else wrote the lease since we last saw it.
    #[error("the lease changed since this worker last saw it (conditional check failed)")]
    ConditionFailed,
    #[error("DynamoDB throttled the request: {0}")]
    Throttled(String),
    #[error("the lease table {0} does not exist")]
    TableMissing(String),
    #[error("DynamoDB request failed: {0}")]
    Other(String),
}

/// A scan: the rows that are leases, and those that are not (key, why).
pub type Scan = (Vec<Lease>, Vec<(String, RowError)>);

#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// The table's name (for logs).
    fn name(&self) -> &str;

    /// Creates the table unless it exists and waits until it is usable; true if this call
    /// created it.
    async fn ensure_exists(&self) -> Result<bool, LeaseTableError>;

    /// Every row, strongly consistent (counters are current), sorted by key.
    async fn scan(&self) -> Result<Scan, LeaseTableError>;

    /// One lease, strongly consistent; `None` if there is no lease row of that key.
    async fn get(&self, key: &str) -> Result<Option<Lease>, LeaseTableError>;

    /// Writes a new lease unless one exists; true when this call created it.
    async fn create_if_absent(&self, lease: &Lease) -> Result<bool, LeaseTableError>;

    /// Heartbeat: counter + 1, if counter and owner are still ours. Unless `handing_off`, it
    /// also fails when a handoff was requested, which is how the owner learns of the request.
    /// Returns the new counter.
    async fn renew(&self, key: &str, owner: &str, counter: u64, handing_off: bool) -> Result<u64, LeaseTableError>;

    /// The owner saw a handoff request by `by` and hands over: records the acceptance (and
    /// renews: counter + 1), if counter and owner are ours and the request is still `by`'s.
    async fn accept_handoff(&self, key: &str, owner: &str, counter: u64, by: &str) -> Result<u64, LeaseTableError>;

    /// Withdraws a handoff request of `requester` (its owner never accepted it, or the
    /// requester is leaving); false if there is none to withdraw. Does not move the counter.
    async fn withdraw_handoff(&self, key: &str, requester: &str) -> Result<bool, LeaseTableError>;

    /// Records where a LATEST shard is first read (epoch ms), if counter and owner are ours and
    /// no instant is recorded yet. Returns the new counter.
    async fn pin_latest_start(&self, key: &str, owner: &str, counter: u64, at: i64) -> Result<u64, LeaseTableError>;

    /// Takes a lease seen with `counter` and `previous_owner` (which may be none): it is ours if
    /// nobody wrote it since. Taking it from another owner ends any handoff request and counts
    /// an owner switch. Returns the new counter.
    async fn take(
        &self,
        key: &str,
        counter: u64,
        previous_owner: Option<&str>,
        me: &str,
    ) -> Result<u64, LeaseTableError>;

    /// Writes a checkpoint (and, at shard end, the child shard ids) if the lease is still ours
    /// at `counter`; resets `ownerSwitchesSinceCheckpoint`. Returns the new counter.
    async fn checkpoint(
        &self,
        key: &str,
        owner: &str,
        counter: u64,
        checkpoint: &Checkpoint,
        child_shard_ids: &[String],
    ) -> Result<u64, LeaseTableError>;

    /// Gives a lease up if it is still ours at `counter`: to nobody (another worker takes it at
    /// once), or `to` the worker that asked for it — only while its request stands (refused on
    /// the condition otherwise). Returns the new counter.
    async fn release(&self, key: &str, owner: &str, counter: u64, to: Option<&str>) -> Result<u64, LeaseTableError>;

    /// Asks the owner of a lease to give it up gracefully. `owner`: only if this worker owns it
    /// (a balancing request); `None`: whoever owns it (an operator). Does not move the counter.
    /// False if the lease is not owned as expected, has ended, or a request is already pending.
    async fn request_handoff(&self, key: &str, owner: Option<&str>, requester: &str) -> Result<bool, LeaseTableError>;

    /// Deletes a finished lease (only if it is still at SHARD_END); true if it did.
    async fn delete_finished(&self, key: &str) -> Result<bool, LeaseTableError>;

    /// Moves the change signal: leases became free (a release, new shards), so other workers
    /// scan now rather than at their next discovery interval.
    async fn bump_signal(&self) -> Result<(), LeaseTableError>;

    /// The change signal's value (0 before anyone moved it).
    async fn read_signal(&self) -> Result<u64, LeaseTableError>;
}

/// The key of the change-signal row in the lease table. Its `entityType` is not `LEASE`, so it
/// is not a lease to this program nor to a KCL 3.x (a KCL 2.x worker does not know the
/// attribute and must not share a table sauna is running on).
pub const SIGNAL_KEY: &str = "sauna:change-signal";
/// Its `entityType`.
pub const SIGNAL_ENTITY_TYPE: &str = "SAUNA_CHANGE_SIGNAL";
