//! Leaf types every layer above uses and none of which knows an actor: positions in a shard,
//! shard descriptions, lease fencing, outcomes, and the small mechanisms (backoff, waiters)
//! that several actors share.

mod backoff;
mod fencing;
mod outcome;
mod sequence;
mod shard;
mod waiters;

pub use backoff::Backoff;
pub use fencing::{Fence, LeaseDeadline, Tenure, self_fence_margin};
pub use outcome::Outcome;
pub use sequence::{Checkpoint, ExtendedSequenceNumber, SequenceNumber};
pub use shard::{HashKeyRange, ShardInfo};
pub use waiters::Waiters;
