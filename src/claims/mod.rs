//! Claims: what makes the observer effectively once. A Kinesis consumer is at least once — a
//! crash repeats what was read after the last checkpoint, and a producer that retries writes
//! the same command twice — but every Sauna command carries a `commandId`, so before its first
//! attempt a command is *claimed* in a table of its own with a conditional write, and its claim
//! is finished (`done`, `failed`) once it has its outcome:
//!
//! - a command whose claim is finished is a `duplicate`: not actioned again;
//! - one claimed by a live claimer (a racing worker, or this one's own other record of the
//!   command) waits until that claim is finished. A claimer is live while it holds the lease of
//!   the shard it claimed from, in the tenure it claimed in: one that lost it can start no
//!   attempt any more (its fence closed), and its attempt in flight ends within the attempt
//!   timeout — or it is frozen, and finishes its claim when it resumes;
//! - the claim of a claimer gone for longer than an attempt can last (it crashed mid-attempt) is
//!   taken over and the command actioned again — the side effect may have happened: a *possible
//!   duplicate*, the one duplicate no database write can prevent (an external side effect and a
//!   database write are never atomic).
//!
//! So duplicates after a crash are bounded by the attempts in flight at the moment of the
//! crash, not by a checkpoint interval; producer and zombie duplicates go to zero.
//! [`ClaimTable`] is the DynamoDB table; [`MemoryClaimTable`] the same semantics in memory.

mod memory;
mod table;

use async_trait::async_trait;

pub use memory::{ClaimRow, MemoryClaimTable};
pub use table::ClaimTable;

/// Who holds a claim: a worker, in one tenure of a lease, for one record of that shard (two
/// records of one command are two claimers, even in one consumer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claimer {
    pub owner: String,
    pub tenure: u64,
    pub shard: String,
    pub sequence_number: String,
}

/// Where a claim is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Its claimer is actioning it.
    Claimed,
    Done,
    Failed,
    /// Its claimer gave it up before any attempt (its lease went): the next reader actions it.
    Released,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Claimed => "claimed",
            ClaimState::Done => "done",
            ClaimState::Failed => "failed",
            ClaimState::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "claimed" => ClaimState::Claimed,
            "done" => ClaimState::Done,
            "failed" => ClaimState::Failed,
            "released" => ClaimState::Released,
            _ => return None,
        })
    }
}

/// A claim someone else holds, as seen: taken over only if it is still exactly so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub by: Claimer,
}

/// What claiming a command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAnswer {
    /// The command is this claimer's to action. `taken_over`: the claimer before it stopped
    /// mid-attempt (the side effect may have happened: a possible duplicate).
    Granted { taken_over: Option<Claimer> },
    /// Actioned (`Done`) or given up on (`Failed`) already.
    Finished { state: ClaimState, by: Claimer, detail: String },
    /// Someone else is actioning it: wait.
    Held(Held),
}

/// A failed call to the claim table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the claim table {0} does not exist")]
    TableMissing(String),
    #[error("claim table {table}: row of {command_id}: {problem}")]
    Malformed { table: String, command_id: String, problem: String },
    #[error("DynamoDB request failed: {0}")]
    Other(String),
}

#[async_trait]
pub trait ClaimStore: Send + Sync + 'static {
    fn name(&self) -> &str;

    /// Creates the table (and its time to live) unless it exists; true if this call created it.
    async fn ensure_exists(&self) -> Result<bool, ClaimError>;

    /// Claims `command_id` for `me` until `expires_at` (epoch seconds): granted unless someone
    /// else holds or finished it. With `stale`, a claim still exactly as seen there (its
    /// claimer is gone) is taken over.
    async fn claim(
        &self,
        command_id: &str,
        me: &Claimer,
        expires_at: i64,
        stale: Option<&Held>,
    ) -> Result<ClaimAnswer, ClaimError>;

    /// The command has its outcome (`Done` or `Failed`); false when the claim was not `me`'s
    /// any more (another worker took it over: a possible duplicate).
    async fn finish(
        &self,
        command_id: &str,
        me: &Claimer,
        state: ClaimState,
        detail: &str,
        attempts: u32,
    ) -> Result<bool, ClaimError>;

    /// Gives the claim up before any attempt; false when it was not `me`'s.
    async fn release(&self, command_id: &str, me: &Claimer) -> Result<bool, ClaimError>;
}
