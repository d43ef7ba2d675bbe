//! Keeping the lease table in step with the stream: leases for new shards, the children of a
//! shard that ended, and the clean-up of finished leases nobody needs any more. What to create
//! is decided by the pure [`super::shard_sync`].

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::model::Backoff;

use actix::prelude::*;
use futures::StreamExt;

use super::actor::LeaseManager;
use super::row::Lease;
use super::shard_sync;
use super::shards::ShardLister;
use super::store::LeaseStore;
use super::writes::WriteFailure;
use crate::model::{Checkpoint, ShardInfo};

/// How many leases a shard sync creates at once.
const CREATES_AT_ONCE: usize = 16;

/// What one shard sync did.
struct SyncResult {
    shards: Vec<ShardInfo>,
    created: u64,
    deleted: u64,
}

/// The first shard sync is retried after 1 s, doubling to a minute (jittered).
fn first_sync_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jittered()
}

impl LeaseManager {
    /// Creates leases for new shards, and deletes finished ones nobody needs any more.
    pub(super) fn sync_shards(&mut self, ctx: &mut Context<Self>) {
        if self.state.sync_in_flight {
            return;
        }
        self.state.sync_in_flight = true;
        let (table, shards) = (self.table.clone(), self.shards.clone());
        let initial = self.settings.initial_position.clone();
        let cleanup = self.settings.leases.cleanup_leases_upon_shard_completion;
        let fut = async move { sync(&*table, &*shards, &initial, cleanup).await };
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| {
            act.state.sync_in_flight = false;
            match result {
                Ok(r) => {
                    act.state.shards = r.shards;
                    act.state.counters.leases_created += r.created;
                    act.state.counters.leases_deleted += r.deleted;
                    if !act.state.started {
                        act.state.started = true;
                        act.scan_cycle(true, ctx);
                    } else if r.created > 0 {
                        act.scan_cycle(false, ctx);
                    }
                    if r.created > 0 {
                        act.signal_change(ctx);
                    }
                }
                Err(e) => {
                    if act.state.started {
                        log::warn!("shard sync of {}: {e}; will retry", act.settings.stream_name);
                    } else {
                        // Nothing to consume without a first sync: retry, less and less often
                        // (a stream created later is found within a minute), saying why each time.
                        act.state.first_sync_failures += 1;
                        let delay = first_sync_backoff().delay(act.state.first_sync_failures);
                        log::error!(
                            "observer {} cannot start: {e}; retrying in {:.1} s",
                            act.table.name(),
                            delay.as_secs_f64()
                        );
                        ctx.run_later(delay, |act, ctx| act.sync_shards(ctx));
                    }
                }
            }
        }));
    }
}

async fn sync(
    table: &dyn LeaseStore,
    lister: &dyn ShardLister,
    initial: &Checkpoint,
    cleanup: bool,
) -> Result<SyncResult, String> {
    let shards = lister.list().await.map_err(|e| e.to_string())?;
    let (leases, _) = table.scan().await.map_err(|e| e.to_string())?;
    let existing: HashSet<String> = leases.iter().map(|l| l.key.clone()).collect();
    // Several at a time: a stream of hundreds of shards is ready in a fraction of a second.
    let creations = futures::stream::iter(shard_sync::new_leases(&shards, &existing, initial))
        .map(|lease| async move { table.create_if_absent(&lease).await.map(|created| (lease, created)) })
        .buffer_unordered(CREATES_AT_ONCE);
    let mut creations = std::pin::pin!(creations);
    let mut created = 0u64;
    while let Some(result) = creations.next().await {
        let (lease, new) = result.map_err(|e| e.to_string())?;
        if new {
            log::info!("lease {}: created at {}", lease.key, lease.checkpoint);
            created += 1;
        }
    }
    let mut deleted = 0u64;
    if cleanup {
        for key in deletable(&leases) {
            if table.delete_finished(&key).await.map_err(|e| e.to_string())? {
                log::info!("lease {key}: deleted (finished, its children started, its parents gone)");
                deleted += 1;
            }
        }
    }
    Ok(SyncResult { shards, created, deleted })
}

/// Creates the leases of a finished shard's children (from GetRecords' `ChildShards`, or from
/// ListShards when the service did not say); returns how many this call created, and their ids.
pub(super) async fn create_child_leases(
    table: &dyn LeaseStore,
    lister: &dyn ShardLister,
    parent: &str,
    children: Vec<ShardInfo>,
) -> Result<(u64, Vec<String>), WriteFailure> {
    let children = if children.is_empty() {
        // The service did not name the children (kinesalite): ask ListShards.
        let shards = lister.list().await.map_err(|e| WriteFailure::Transient(e.to_string()))?;
        shard_sync::children_of(&shards, parent).into_iter().cloned().collect()
    } else {
        children
    };
    let mut created = 0u64;
    for child in &children {
        let mut lease = Lease::new(child.id.clone(), Checkpoint::TrimHorizon);
        lease.parent_shard_ids = child.parents.clone();
        lease.parent_shard_ids.sort();
        lease.starting_hash_key = Some(child.starting_hash_key.clone()).filter(|s| !s.is_empty());
        lease.ending_hash_key = Some(child.ending_hash_key.clone()).filter(|s| !s.is_empty());
        if table.create_if_absent(&lease).await.map_err(|e| WriteFailure::Transient(e.to_string()))? {
            created += 1;
        }
    }
    Ok((created, children.iter().map(|c| c.id.clone()).collect()))
}

/// Finished leases that can go: every child has a lease that has started (its checkpoint is
/// past its start position), and none of its own parents still has a lease (the KCL's rule:
/// a child that finds no parent lease does not wait, so a parent must outlive its children's
/// start).
fn deletable(leases: &[Lease]) -> Vec<String> {
    let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    leases
        .iter()
        .filter(|l| l.is_finished() && !l.child_shard_ids.is_empty())
        .filter(|l| {
            l.child_shard_ids
                .iter()
                .all(|c| by_key.get(c.as_str()).is_some_and(|child| !child.checkpoint.is_start_position()))
        })
        .filter(|l| l.parent_shard_ids.iter().all(|p| !by_key.contains_key(p.as_str())))
        .map(|l| l.key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn lease(key: &str, checkpoint: Checkpoint, parents: &[&str], children: &[&str]) -> Lease {
        let mut l = Lease::new(key, checkpoint);
        l.parent_shard_ids = parents.iter().map(|p| p.to_string()).collect();
        l.child_shard_ids = children.iter().map(|c| c.to_string()).collect();
        l
    }

    fn seq(n: u64) -> Checkpoint {
        Checkpoint::sequence(SequenceNumber::parse(&n.to_string()).expect("digits"))
    }

    #[test]
    fn a_finished_parent_goes_only_once_its_children_started_and_its_own_parents_are_gone() {
        let parent = lease("p", Checkpoint::ShardEnd, &[], &["c1", "c2"]);
        // A child still at TRIM_HORIZON has not started: keep the parent (a child that finds
        // no parent lease would not wait for it).
        let leases =
            [parent.clone(), lease("c1", seq(5), &["p"], &[]), lease("c2", Checkpoint::TrimHorizon, &["p"], &[])];
        assert!(deletable(&leases).is_empty());
        let leases = [parent.clone(), lease("c1", seq(5), &["p"], &[]), lease("c2", seq(7), &["p"], &[])];
        assert_eq!(deletable(&leases), ["p"]);
        // A child lease not created yet: keep.
        assert!(deletable(&[parent.clone(), lease("c1", seq(5), &["p"], &[])]).is_empty());
        // Its own parent still has a lease: keep (that parent goes first).
        let leases = [
            lease("gp", Checkpoint::ShardEnd, &[], &["p"]),
            lease("p", Checkpoint::ShardEnd, &["gp"], &["c1"]),
            lease("c1", seq(5), &["p"], &[]),
        ];
        assert_eq!(deletable(&leases), ["gp"]);
    }
}
