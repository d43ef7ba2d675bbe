//! `LeaseManager`: this worker's side of the lease table. It creates the table, keeps it in step
//! with the stream's shards, takes leases (balancing with the other workers), renews the ones it
//! holds, writes checkpoints for the Checkpointer, ends shards (child leases, SHARD_END) and
//! releases leases on shutdown.
//!
//! Every write to a lease goes through this actor, one at a time per lease, because renewals
//! and checkpoints both move the lease's counter and each is conditional on the last one.
//! Fencing, three ways: writes are conditional on counter and owner; each acquisition gets a
//! tenure token that every consumer and checkpoint carries; and a lease this worker could not
//! renew within the failover time is dropped here first (its deadline lapses, so its consumer
//! stops dispatching) before any other worker may take it.

pub mod lease;
pub mod shard_sync;
pub mod table;
pub mod taker;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::runtime::LeaseSettings;
use crate::metrics::{MetricsHandle, Scope};
use crate::supervision::{ExitGuard, ExitReason};
use lease::{Checkpoint, Lease};
use shard_sync::ShardInfo;
use table::{LeaseTable, LeaseTableError};
use taker::{Observations, TakePlan, TakerSettings};

/// The instant every [`LeaseDeadline`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Until when this worker may act on a lease: pushed forward by every successful renewal,
/// revoked when the lease is lost. A ShardConsumer (and a responder retrying one of its
/// commands) checks it before every dispatch, so a worker that stalled past the failover time
/// (a GC pause, SIGSTOP, a saturated CPU) does nothing more for a shard another worker may
/// already hold.
#[derive(Debug, Clone)]
pub struct LeaseDeadline(Arc<AtomicU64>);

impl LeaseDeadline {
    fn until(t: Instant) -> Self {
        let d = LeaseDeadline(Arc::new(AtomicU64::new(0)));
        d.set(t);
        d
    }

    fn set(&self, t: Instant) {
        let ms = t.saturating_duration_since(epoch()).as_millis() as u64;
        self.0.store(ms.max(1), Ordering::Release);
    }

    fn revoke(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// A deadline that never lapses (tests of single actors).
    pub fn unbounded() -> Self {
        LeaseDeadline(Arc::new(AtomicU64::new(u64::MAX)))
    }

    pub fn is_valid(&self) -> bool {
        let until = self.0.load(Ordering::Acquire);
        until != 0 && (epoch().elapsed().as_millis() as u64) < until
    }
}

/// What the Supervisor needs to run a consumer for a lease this worker just took.
#[derive(Debug, Clone)]
pub struct HeldLeaseInfo {
    pub shard: Arc<str>,
    pub tenure: u64,
    pub checkpoint: Checkpoint,
    pub parents: Vec<String>,
    pub deadline: LeaseDeadline,
}

/// What the LeaseManager tells its Supervisor.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum LeaseEvent {
    /// This worker now holds the lease: start a consumer for it.
    Acquired(HeldLeaseInfo),
    /// The lease is no longer this worker's (taken by another, or not renewed in time): stop
    /// its consumer now, without checkpointing.
    Lost {
        shard: Arc<str>,
        tenure: u64,
        reason: String,
    },
    /// The shard ended: child leases exist, the checkpoint is SHARD_END, the lease is released.
    Ended { shard: Arc<str>, tenure: u64 },
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
    pub tenure: u64,
    pub checkpoint: Checkpoint,
}

/// The shard ended and every record has an outcome: create the child leases, checkpoint
/// SHARD_END, release.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), LeaseError>")]
pub struct EndShard {
    pub shard: Arc<str>,
    pub tenure: u64,
    /// From GetRecords' `ChildShards`; empty when the service did not say (then ListShards).
    pub children: Vec<ShardInfo>,
}

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
    pub tenure: u64,
}

/// Asks for a snapshot.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "LeaseManagerSnapshot")]
pub struct ObserveLeases;

/// One held lease, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSnapshot {
    pub shard: String,
    pub tenure: u64,
    pub counter: u64,
    pub checkpoint: String,
}

/// What the LeaseManager knows and has done.
#[derive(Debug, Clone, Default)]
pub struct LeaseManagerSnapshot {
    pub worker_id: String,
    pub held: Vec<HeldSnapshot>,
    pub last_plan: TakePlan,
    pub taken: u64,
    pub lost: u64,
    pub renewals: u64,
    pub checkpoint_writes: BTreeMap<String, u64>,
    pub take_cycles: u64,
    pub leases_created: u64,
    pub leases_deleted: u64,
    pub mailbox_capacity: usize,
}

/// The fixed settings of a LeaseManager.
#[derive(Debug, Clone)]
pub struct LeaseManagerSettings {
    pub stream_name: String,
    pub worker_id: String,
    /// Where new root shards start.
    pub initial_position: Checkpoint,
    pub leases: LeaseSettings,
    pub mailbox: usize,
}

enum Op {
    Renew,
    Checkpoint {
        checkpoint: Checkpoint,
        reply: oneshot::Sender<Result<(), LeaseError>>,
    },
    EndShard {
        children: Vec<ShardInfo>,
        reply: oneshot::Sender<Result<(), LeaseError>>,
    },
    Release {
        reply: oneshot::Sender<bool>,
    },
}

struct Held {
    lease: Lease,
    tenure: u64,
    deadline: LeaseDeadline,
    /// When the request of the last successful write was sent: the lease is safe until
    /// failover after that, in every other worker's eyes.
    renewed_at: Instant,
    busy: bool,
    queue: VecDeque<Op>,
}

/// The LeaseManager's changing state, apart from its settings.
#[derive(Default)]
struct State {
    held: BTreeMap<String, Held>,
    observations: Observations,
    last_plan: TakePlan,
    started: bool,
    taking: bool,
    take_in_flight: bool,
    last_take: Option<Instant>,
    sync_in_flight: bool,
    shards: Vec<ShardInfo>,
    taken: u64,
    lost: u64,
    renewals: u64,
    take_cycles: u64,
    leases_created: u64,
    leases_deleted: u64,
    checkpoint_writes: BTreeMap<String, u64>,
}

pub struct LeaseManager {
    settings: Arc<LeaseManagerSettings>,
    table: LeaseTable,
    kinesis: aws_sdk_kinesis::Client,
    supervisor: Recipient<LeaseEvent>,
    metrics: MetricsHandle,
    state: State,
    exit: ExitGuard,
}

fn next_tenure() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl LeaseManager {
    pub fn new(
        settings: LeaseManagerSettings,
        table: LeaseTable,
        kinesis: aws_sdk_kinesis::Client,
        supervisor: Recipient<LeaseEvent>,
        metrics: MetricsHandle,
        exit: ExitGuard,
    ) -> Self {
        LeaseManager {
            settings: Arc::new(settings),
            table,
            kinesis,
            supervisor,
            metrics,
            state: State {
                taking: true,
                ..State::default()
            },
            exit,
        }
    }

    /// How long before the failover time this worker stops acting on a lease it could not
    /// renew: others may take it at failover after its last renewal.
    fn safety_margin(&self) -> Duration {
        (self.settings.leases.failover_time / 5)
            .clamp(Duration::from_millis(25), Duration::from_secs(2))
    }

    fn valid_until(&self, renewed_at: Instant) -> Instant {
        renewed_at + self.settings.leases.failover_time - self.safety_margin()
    }

    fn taker_settings(&self) -> TakerSettings {
        TakerSettings {
            failover: self.settings.leases.failover_time,
            max_leases_for_worker: self.settings.leases.max_leases_for_worker,
            max_leases_to_steal_at_one_time: self.settings.leases.max_leases_to_steal_at_one_time,
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, why: String) {
        log::error!("lease manager of {}: {why}", self.table.name());
        self.exit.set_reason(ExitReason::Failed(why));
        ctx.stop();
    }

    /// Drops a lease this worker no longer holds and tells the Supervisor.
    fn lose(&mut self, key: &str, reason: String) {
        if let Some(held) = self.state.held.remove(key) {
            held.deadline.revoke();
            self.state.lost += 1;
            self.metrics
                .count("LostLeases", "RenewAllLeases", Scope::Worker, 1);
            log::warn!("lease {key}: lost ({reason}); its consumer stops");
            for op in held.queue {
                fail_op(
                    op,
                    LeaseError::Lost {
                        shard: key.to_owned(),
                        reason: reason.clone(),
                    },
                );
            }
            self.supervisor.do_send(LeaseEvent::Lost {
                shard: Arc::from(key),
                tenure: held.tenure,
                reason,
            });
        }
    }

    fn enqueue(&mut self, key: &str, op: Op, ctx: &mut Context<Self>) {
        match self.state.held.get_mut(key) {
            Some(h) => {
                if matches!(op, Op::Renew) && h.queue.iter().any(|o| matches!(o, Op::Renew)) {
                    return;
                }
                h.queue.push_back(op);
                self.pump(key, ctx);
            }
            None => fail_op(op, LeaseError::NotHeld(key.to_owned())),
        }
    }

    /// Runs the next queued write of a lease, if none is running.
    fn pump(&mut self, key: &str, ctx: &mut Context<Self>) {
        let me = self.settings.worker_id.clone();
        let Some(held) = self.state.held.get_mut(key) else {
            return;
        };
        if held.busy {
            return;
        }
        let Some(op) = held.queue.pop_front() else {
            return;
        };
        if !held.deadline.is_valid() && !matches!(op, Op::Renew) {
            // Too late to write anything: others may already hold it.
            fail_op(
                op,
                LeaseError::Lost {
                    shard: key.to_owned(),
                    reason: "not renewed within the failover time".into(),
                },
            );
            return;
        }
        held.busy = true;
        let tenure = held.tenure;
        let counter = held.lease.counter;
        let table = self.table.clone();
        let key_owned = key.to_owned();
        let sent_at = Instant::now();
        match op {
            Op::Renew => {
                let fut = async move {
                    let r = table.renew(&key_owned, &me, counter).await;
                    confirm(&table, &key_owned, &me, counter, r, |_| true).await
                };
                let key = key.to_owned();
                ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                    act.after_write(&key, tenure, sent_at, result.as_ref().ok().copied(), None);
                    match result {
                        Ok(_) => {
                            act.state.renewals += 1;
                        }
                        Err(WriteFailure::Lost(why)) => act.lose(&key, why),
                        Err(WriteFailure::Transient(e)) => {
                            log::warn!("lease {key}: renewal failed ({e}); will retry")
                        }
                    }
                    act.pump(&key, ctx);
                }));
            }
            Op::Checkpoint { checkpoint, reply } => {
                if held.lease.checkpoint.is_after(&checkpoint)
                    || held.lease.checkpoint == checkpoint
                {
                    // Never backwards; nothing new to write.
                    held.busy = false;
                    let _ = reply.send(Ok(()));
                    self.pump(key, ctx);
                    return;
                }
                let cp = checkpoint.clone();
                let fut = async move {
                    let r = table.checkpoint(&key_owned, &me, counter, &cp, &[]).await;
                    confirm(&table, &key_owned, &me, counter, r, |l| l.checkpoint == cp).await
                };
                let key = key.to_owned();
                ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                    act.after_write(
                        &key,
                        tenure,
                        sent_at,
                        result.as_ref().ok().copied(),
                        Some(checkpoint),
                    );
                    let answer = match result {
                        Ok(_) => {
                            *act.state.checkpoint_writes.entry(key.clone()).or_default() += 1;
                            Ok(())
                        }
                        Err(WriteFailure::Lost(why)) => {
                            act.lose(&key, why.clone());
                            Err(LeaseError::Lost {
                                shard: key.clone(),
                                reason: why,
                            })
                        }
                        Err(WriteFailure::Transient(e)) => Err(LeaseError::Transient(e)),
                    };
                    let _ = reply.send(answer);
                    act.pump(&key, ctx);
                }));
            }
            Op::EndShard { children, reply } => {
                let kinesis = self.kinesis.clone();
                let stream = self.settings.stream_name.clone();
                let fut = async move {
                    let children = if children.is_empty() {
                        // The service did not name the children (kinesalite): ask ListShards.
                        let shards = shard_sync::list_shards(&kinesis, &stream)
                            .await
                            .map_err(|e| WriteFailure::Transient(e.to_string()))?;
                        shard_sync::children_of(&shards, &key_owned)
                            .into_iter()
                            .cloned()
                            .collect()
                    } else {
                        children
                    };
                    let mut created = 0u64;
                    for child in &children {
                        let mut lease = Lease::new(child.id.clone(), Checkpoint::TrimHorizon);
                        lease.parent_shard_ids = child.parents.clone();
                        lease.parent_shard_ids.sort();
                        lease.starting_hash_key =
                            Some(child.starting_hash_key.clone()).filter(|s| !s.is_empty());
                        lease.ending_hash_key =
                            Some(child.ending_hash_key.clone()).filter(|s| !s.is_empty());
                        if table
                            .create_if_absent(&lease)
                            .await
                            .map_err(|e| WriteFailure::Transient(e.to_string()))?
                        {
                            created += 1;
                        }
                    }
                    let ids: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
                    let r = table
                        .checkpoint(&key_owned, &me, counter, &Checkpoint::ShardEnd, &ids)
                        .await;
                    let c =
                        confirm(&table, &key_owned, &me, counter, r, |l| l.is_finished()).await?;
                    // Release at once: a finished lease occupies no worker.
                    let released = table.release(&key_owned, &me, c).await;
                    Ok::<_, WriteFailure>((created, ids, released.is_ok()))
                };
                let key = key.to_owned();
                ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                    let answer = match result {
                        Ok((created, children, released)) => {
                            act.state.leases_created += created;
                            log::info!(
                                "shard {key} ended: checkpoint SHARD_END, children [{}] ({} lease{} created), lease {}",
                                children.join(", "),
                                created,
                                if created == 1 { "" } else { "s" },
                                if released { "released" } else { "left to expire" }
                            );
                            if let Some(h) = act.state.held.remove(&key) {
                                h.deadline.revoke();
                                for op in h.queue {
                                    fail_op(op, LeaseError::NotHeld(key.clone()));
                                }
                            }
                            act.supervisor.do_send(LeaseEvent::Ended {
                                shard: Arc::from(key.as_str()),
                                tenure,
                            });
                            Ok(())
                        }
                        Err(WriteFailure::Lost(why)) => {
                            act.lose(&key, why.clone());
                            Err(LeaseError::Lost { shard: key.clone(), reason: why })
                        }
                        Err(WriteFailure::Transient(e)) => {
                            if let Some(h) = act.state.held.get_mut(&key) {
                                h.busy = false;
                            }
                            Err(LeaseError::Transient(e))
                        }
                    };
                    let _ = reply.send(answer);
                    act.pump(&key, ctx);
                }));
            }
            Op::Release { reply } => {
                let fut = async move { table.release(&key_owned, &me, counter).await };
                let key = key.to_owned();
                ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                    let ok = result.is_ok();
                    if let Err(e) = &result {
                        log::warn!("lease {key}: release failed ({e}); it will expire instead");
                    }
                    if let Some(h) = act.state.held.remove(&key) {
                        h.deadline.revoke();
                        for op in h.queue {
                            fail_op(op, LeaseError::NotHeld(key.clone()));
                        }
                    }
                    log::info!("lease {key}: released");
                    let _ = reply.send(ok);
                    act.pump(&key, ctx);
                }));
            }
        }
    }

    /// Bookkeeping after a renew or checkpoint of `key` in `tenure` (if still held in it).
    fn after_write(
        &mut self,
        key: &str,
        tenure: u64,
        sent_at: Instant,
        new_counter: Option<u64>,
        checkpoint: Option<Checkpoint>,
    ) {
        let me = self.settings.worker_id.clone();
        let until = self.valid_until(sent_at);
        let Some(h) = self.state.held.get_mut(key) else {
            return;
        };
        if h.tenure != tenure {
            return;
        }
        h.busy = false;
        if let Some(c) = new_counter {
            h.lease.counter = c;
            h.renewed_at = sent_at;
            h.deadline.set(until);
            if let Some(cp) = checkpoint {
                h.lease.checkpoint = cp;
            }
            self.state
                .observations
                .record_write(key, c, Some(&me), Instant::now());
        }
    }

    /// Renews every held lease, and first drops those this worker could not renew in time.
    fn renew_all(&mut self, ctx: &mut Context<Self>) {
        self.fence();
        let keys: Vec<String> = self.state.held.keys().cloned().collect();
        for key in &keys {
            self.enqueue(key, Op::Renew, ctx);
        }
        self.metrics.count(
            "CurrentLeases",
            "RenewAllLeases",
            Scope::Worker,
            self.state.held.len() as u64,
        );
        // A worker below its share looks for released leases at every renewal, so a lease
        // given up on shutdown is picked up within a renew interval, not a take interval.
        if self.state.started
            && self.state.taking
            && self.state.held.len() < self.state.last_plan.target
        {
            self.take_cycle(ctx);
        }
    }

    /// Self-fencing: a lease not renewed within failover (minus a margin) is dropped here,
    /// before any other worker may take it.
    fn fence(&mut self) {
        let expired: Vec<String> = self
            .state
            .held
            .iter()
            .filter(|(_, h)| !h.deadline.is_valid())
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            let age = self
                .state
                .held
                .get(&key)
                .map(|h| h.renewed_at.elapsed())
                .unwrap_or_default();
            self.lose(
                &key,
                format!(
                    "not renewed for {} ms (failover time {} ms)",
                    age.as_millis(),
                    self.settings.leases.failover_time.as_millis()
                ),
            );
        }
    }

    fn take_cycle(&mut self, ctx: &mut Context<Self>) {
        if !self.state.taking || self.state.take_in_flight {
            return;
        }
        self.state.take_in_flight = true;
        self.state.last_take = Some(Instant::now());
        let table = self.table.clone();
        ctx.spawn(
            table_scan(table)
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok((leases, skipped)) => act.plan_and_take(leases, skipped.len(), ctx),
                    Err(e) => {
                        act.state.take_in_flight = false;
                        log::warn!(
                            "lease table {}: scan failed ({e}); will retry",
                            act.table.name()
                        );
                    }
                }),
        );
    }

    fn plan_and_take(&mut self, leases: Vec<Lease>, skipped: usize, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.state.take_cycles += 1;
        // A lease we hold that the table shows with another owner was taken from us (our next
        // renewal would find out too; this is sooner).
        let me = self.settings.worker_id.clone();
        let taken_from_us: Vec<(String, String)> = leases
            .iter()
            .filter(|l| {
                self.state.held.get(&l.key).is_some_and(|h| !h.busy)
                    && l.owner.as_deref() != Some(me.as_str())
            })
            .map(|l| {
                (
                    l.key.clone(),
                    format!(
                        "the table shows owner {} at counter {}",
                        l.owner.as_deref().unwrap_or("none"),
                        l.counter
                    ),
                )
            })
            .collect();
        for (key, why) in taken_from_us {
            self.lose(&key, why);
        }
        self.state.observations.observe(&leases, now);
        let held: HashSet<String> = self.state.held.keys().cloned().collect();
        let plan = taker::plan(
            &self.state.observations,
            &held,
            &me,
            &self.taker_settings(),
            now,
            &mut rand::rng(),
        );
        if plan.spillover > 0 {
            log::warn!(
                "{} leases beyond {} workers x maxLeasesForWorker: some shards may not be processed",
                plan.spillover,
                plan.num_workers
            );
        }
        self.metrics.count(
            "NumWorkers",
            "TakeLeases",
            Scope::Worker,
            plan.num_workers as u64,
        );
        self.metrics.count(
            "ExpiredLeases",
            "TakeLeases",
            Scope::Worker,
            plan.expired as u64,
        );
        self.metrics.count(
            "LeaseSpillover",
            "TakeLeases",
            Scope::Worker,
            plan.spillover as u64,
        );
        if skipped > 0 {
            log::debug!(
                "lease table {}: {skipped} rows are not leases (left untouched)",
                self.table.name()
            );
        }
        let candidates = plan.take.clone();
        self.state.last_plan = plan;
        if candidates.is_empty() {
            self.state.take_in_flight = false;
            return;
        }
        let table = self.table.clone();
        // Take, then read the row back (checkpoint, parents) before a consumer may start; the
        // cycle is over only when every read-back is in, so no scan sees a half-taken lease.
        let fut = async move {
            let mut results = vec![];
            for c in candidates {
                let sent_at = Instant::now();
                let r = match table.take(&c.key, c.counter, c.owner.as_deref(), &me).await {
                    Ok(counter) => match table.get(&c.key).await {
                        Ok(Some(l))
                            if l.owner.as_deref() == Some(me.as_str()) && l.counter == counter =>
                        {
                            Ok(l)
                        }
                        Ok(other) => Err(format!("changed again right after the take ({other:?})")),
                        Err(e) => Err(format!(
                            "read after take failed ({e}); leaving it to expire"
                        )),
                    },
                    Err(LeaseTableError::ConditionFailed) => {
                        Err("another worker moved it first".to_owned())
                    }
                    Err(e) => Err(format!("take failed ({e})")),
                };
                results.push((c, sent_at, r));
            }
            results
        };
        ctx.spawn(fut.into_actor(self).map(|results, act, ctx| {
            act.state.take_in_flight = false;
            for (c, sent_at, r) in results {
                match r {
                    Ok(lease) => act.acquired(c, lease, sent_at, ctx),
                    Err(why) => log::debug!("lease {}: not taken: {why}", c.key),
                }
            }
        }));
    }

    /// A take succeeded: hold the lease and have its consumer started.
    fn acquired(
        &mut self,
        c: taker::Candidate,
        lease: Lease,
        sent_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        let key = lease.key.clone();
        self.state.observations.record_write(
            &key,
            lease.counter,
            lease.owner.as_deref(),
            Instant::now(),
        );
        if self.state.held.contains_key(&key) || !self.state.taking {
            return;
        }
        let tenure = next_tenure();
        let deadline = LeaseDeadline::until(self.valid_until(sent_at));
        self.state.taken += 1;
        self.metrics
            .count("TakenLeases", "TakeLeases", Scope::Worker, 1);
        log::info!(
            "lease {key}: taken{} at checkpoint {} (tenure {tenure})",
            match (&c.owner, c.stolen) {
                (Some(p), true) => format!(" from {p} (balancing)"),
                (Some(p), false) => format!(" from {p} (expired)"),
                (None, _) => String::new(),
            },
            lease.checkpoint
        );
        let info = HeldLeaseInfo {
            shard: Arc::from(key.as_str()),
            tenure,
            checkpoint: lease.checkpoint.clone(),
            parents: lease.parent_shard_ids.clone(),
            deadline: deadline.clone(),
        };
        self.state.held.insert(
            key.clone(),
            Held {
                lease,
                tenure,
                deadline,
                renewed_at: sent_at,
                busy: false,
                queue: VecDeque::new(),
            },
        );
        self.supervisor.do_send(LeaseEvent::Acquired(info));
        self.pump(&key, ctx);
    }

    /// Creates leases for new shards, and deletes finished ones nobody needs any more.
    fn sync_shards(&mut self, ctx: &mut Context<Self>) {
        if self.state.sync_in_flight {
            return;
        }
        self.state.sync_in_flight = true;
        let table = self.table.clone();
        let kinesis = self.kinesis.clone();
        let stream = self.settings.stream_name.clone();
        let initial = self.settings.initial_position.clone();
        let cleanup = self.settings.leases.cleanup_leases_upon_shard_completion;
        let fut = async move {
            let shards = shard_sync::list_shards(&kinesis, &stream)
                .await
                .map_err(|e| e.to_string())?;
            let (leases, _) = table.scan().await.map_err(|e| e.to_string())?;
            let existing: HashSet<String> = leases.iter().map(|l| l.key.clone()).collect();
            let mut created = 0u64;
            for lease in shard_sync::new_leases(&shards, &existing, &initial) {
                if table
                    .create_if_absent(&lease)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    log::info!("lease {}: created at {}", lease.key, lease.checkpoint);
                    created += 1;
                }
            }
            let mut deleted = 0u64;
            if cleanup {
                for key in deletable(&leases) {
                    if table
                        .delete_finished(&key)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        log::info!(
                            "lease {key}: deleted (finished, its children started, its parents gone)"
                        );
                        deleted += 1;
                    }
                }
            }
            Ok::<_, String>((shards, created, deleted))
        };
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| {
            act.state.sync_in_flight = false;
            match result {
                Ok((shards, created, deleted)) => {
                    act.state.shards = shards;
                    act.state.leases_created += created;
                    act.state.leases_deleted += deleted;
                    if !act.state.started {
                        act.state.started = true;
                        act.take_cycle(ctx);
                    } else if created > 0 {
                        act.take_cycle(ctx);
                    }
                }
                Err(e) => {
                    log::warn!(
                        "shard sync of {}: {e}; will retry",
                        act.settings.stream_name
                    );
                    if !act.state.started {
                        // Nothing to consume without a first sync: retry soon.
                        ctx.run_later(Duration::from_secs(1), |act, ctx| act.sync_shards(ctx));
                    }
                }
            }
        }));
    }
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
            l.child_shard_ids.iter().all(|c| {
                by_key
                    .get(c.as_str())
                    .is_some_and(|child| !child.checkpoint.is_start_position())
            })
        })
        .filter(|l| {
            l.parent_shard_ids
                .iter()
                .all(|p| !by_key.contains_key(p.as_str()))
        })
        .map(|l| l.key.clone())
        .collect()
}

/// The outcome of a conditional write after its follow-up read.
#[derive(Debug)]
enum WriteFailure {
    Lost(String),
    Transient(String),
}

/// A conditional write that failed its condition may still have happened (a retried request
/// whose first try succeeded): re-read the lease and accept it if it shows our write.
async fn confirm(
    table: &LeaseTable,
    key: &str,
    me: &str,
    counter: u64,
    result: Result<u64, LeaseTableError>,
    shows_our_write: impl Fn(&Lease) -> bool,
) -> Result<u64, WriteFailure> {
    match result {
        Ok(c) => Ok(c),
        Err(LeaseTableError::ConditionFailed) => match table.get(key).await {
            Ok(Some(l))
                if l.owner.as_deref() == Some(me)
                    && l.counter == counter + 1
                    && shows_our_write(&l) =>
            {
                Ok(counter + 1)
            }
            Ok(Some(l)) => Err(WriteFailure::Lost(format!(
                "owner is now {} at counter {} (this worker expected counter {counter})",
                l.owner.as_deref().unwrap_or("none"),
                l.counter
            ))),
            Ok(None) => Err(WriteFailure::Lost("the lease row is gone".into())),
            Err(e) => Err(WriteFailure::Transient(e.to_string())),
        },
        Err(e) => Err(WriteFailure::Transient(e.to_string())),
    }
}

async fn table_scan(
    table: LeaseTable,
) -> Result<(Vec<Lease>, Vec<(String, lease::RowError)>), LeaseTableError> {
    table.scan().await
}

fn fail_op(op: Op, e: LeaseError) {
    match op {
        Op::Renew => {}
        Op::Checkpoint { reply, .. } | Op::EndShard { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Op::Release { reply } => {
            let _ = reply.send(false);
        }
    }
}

impl Actor for LeaseManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.mailbox);
        let table = self.table.clone();
        ctx.wait(
            table_ready(table)
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(created) => {
                        if created {
                            log::info!(
                                "lease table {} created (on-demand, hash key leaseKey)",
                                act.table.name()
                            );
                        }
                        let l = act.settings.leases.clone();
                        // Renewals: the KCL's failover / 3 - ε, so two may fail before a lease expires.
                        ctx.run_interval(l.renew_interval, |act, ctx| act.renew_all(ctx));
                        // Self-fencing is checked far more often than renewals, so a lease is dropped
                        // within ~1/20 of the failover time of its deadline.
                        ctx.run_interval(
                            (l.failover_time / 20).max(Duration::from_millis(10)),
                            |act, _| act.fence(),
                        );
                        ctx.run_interval(l.take_interval, |act, ctx| act.take_cycle(ctx));
                        ctx.run_interval(l.shard_sync_interval, |act, ctx| act.sync_shards(ctx));
                        act.sync_shards(ctx);
                    }
                    Err(e) => act.fail(ctx, format!("the lease table is not usable: {e}")),
                }),
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for (key, h) in std::mem::take(&mut self.state.held) {
            h.deadline.revoke();
            for op in h.queue {
                fail_op(op, LeaseError::NotHeld(key.clone()));
            }
        }
    }
}

async fn table_ready(table: LeaseTable) -> Result<bool, LeaseTableError> {
    table.ensure_exists().await
}

impl Handler<WriteCheckpoint> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: WriteCheckpoint, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => self.enqueue(
                &msg.shard,
                Op::Checkpoint {
                    checkpoint: msg.checkpoint,
                    reply: tx,
                },
                ctx,
            ),
            _ => {
                let _ = tx.send(Err(LeaseError::NotHeld(msg.shard.to_string())));
            }
        }
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(LeaseError::Transient("lease manager stopped".into())))
        })
    }
}

impl Handler<EndShard> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: EndShard, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => self.enqueue(
                &msg.shard,
                Op::EndShard {
                    children: msg.children,
                    reply: tx,
                },
                ctx,
            ),
            _ => {
                let _ = tx.send(Err(LeaseError::NotHeld(msg.shard.to_string())));
            }
        }
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(LeaseError::Transient("lease manager stopped".into())))
        })
    }
}

impl Handler<ParentsFinished> for LeaseManager {
    type Result = ResponseFuture<Result<bool, LeaseError>>;

    fn handle(&mut self, msg: ParentsFinished, _: &mut Self::Context) -> Self::Result {
        // A parent this worker holds is not finished: it is still being consumed here.
        if msg.0.iter().any(|p| self.state.held.contains_key(p)) {
            return Box::pin(async { Ok(false) });
        }
        let table = self.table.clone();
        Box::pin(async move {
            for parent in &msg.0 {
                match table.get(parent).await {
                    Ok(None) => {}
                    Ok(Some(l)) if l.is_finished() => {}
                    Ok(Some(_)) => return Ok(false),
                    Err(e) => return Err(LeaseError::Transient(e.to_string())),
                }
            }
            Ok(true)
        })
    }
}

impl Handler<ReleaseAll> for LeaseManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ReleaseAll, ctx: &mut Self::Context) -> Self::Result {
        self.state.taking = false;
        let keys: Vec<String> = self.state.held.keys().cloned().collect();
        let mut waits = vec![];
        for key in keys {
            let (tx, rx) = oneshot::channel();
            self.enqueue(&key, Op::Release { reply: tx }, ctx);
            waits.push(rx);
        }
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(waits))
                .await;
        })
    }
}

impl Handler<Release> for LeaseManager {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => {
                self.enqueue(&msg.shard, Op::Release { reply: tx }, ctx)
            }
            _ => {
                let _ = tx.send(false);
            }
        }
        Box::pin(async move { rx.await.unwrap_or(false) })
    }
}

impl Handler<ObserveLeases> for LeaseManager {
    type Result = MessageResult<ObserveLeases>;

    fn handle(&mut self, _: ObserveLeases, ctx: &mut Self::Context) -> Self::Result {
        let s = &self.state;
        MessageResult(LeaseManagerSnapshot {
            worker_id: self.settings.worker_id.clone(),
            held: s
                .held
                .iter()
                .map(|(k, h)| HeldSnapshot {
                    shard: k.clone(),
                    tenure: h.tenure,
                    counter: h.lease.counter,
                    checkpoint: h.lease.checkpoint.to_string(),
                })
                .collect(),
            last_plan: s.last_plan.clone(),
            taken: s.taken,
            lost: s.lost,
            renewals: s.renewals,
            checkpoint_writes: s.checkpoint_writes.clone(),
            take_cycles: s.take_cycles,
            leases_created: s.leases_created,
            leases_deleted: s.leases_deleted,
            mailbox_capacity: ctx.parts().capacity(),
        })
    }
}
