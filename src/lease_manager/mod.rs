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
pub mod report;
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
    Lost { shard: Arc<str>, tenure: u64, reason: String },
    /// The shard ended: child leases exist, the checkpoint is SHARD_END, the lease is released.
    Ended { shard: Arc<str>, tenure: u64 },
    /// Another worker (balancing) or an operator asked for this lease: drain its consumer,
    /// flush its checkpoint, then [`Release`] it.
    HandoffRequested { shard: Arc<str>, tenure: u64, by: String },
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
    pub handoffs_requested: u64,
    pub handoffs_done: u64,
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
    Checkpoint { checkpoint: Checkpoint, reply: oneshot::Sender<Result<(), LeaseError>> },
    EndShard { children: Vec<ShardInfo>, reply: oneshot::Sender<Result<(), LeaseError>> },
    Release { reply: oneshot::Sender<bool> },
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
    /// A handoff was requested (by whom); renewals keep it alive until the release.
    handoff_to: Option<String>,
}

/// The LeaseManager's changing state, apart from its settings.
#[derive(Default)]
struct State {
    held: BTreeMap<String, Held>,
    observations: Observations,
    last_plan: TakePlan,
    started: bool,
    taking: bool,
    scan_in_flight: bool,
    /// A take cycle (with stealing) came while a scan was out: run one after it.
    steal_pending: bool,
    /// Handoffs this worker asked for (balancing), by when.
    requested: BTreeMap<String, Instant>,
    /// Leases this worker handed over, by when: not taken back while they are fresh.
    given_up: BTreeMap<String, Instant>,
    sync_in_flight: bool,
    shards: Vec<ShardInfo>,
    taken: u64,
    lost: u64,
    renewals: u64,
    take_cycles: u64,
    leases_created: u64,
    leases_deleted: u64,
    checkpoint_writes: BTreeMap<String, u64>,
    handoffs_requested: u64,
    handoffs_done: u64,
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

/// How an operator's handoff request starts (`sauna leases --give-up`); any other requester
/// is the id of the worker that asked.
pub const OPERATOR: &str = "operator";

/// How long before the failover time a worker stops acting on a lease it could not renew:
/// other workers may take it `failover` after its last renewal, and stopping a consumer (and
/// the clock of a stalled host) takes a moment.
pub fn self_fence_margin(failover: Duration) -> Duration {
    (failover / 5).clamp(Duration::from_millis(25), Duration::from_secs(2))
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
            state: State { taking: true, ..State::default() },
            exit,
        }
    }

    fn safety_margin(&self) -> Duration {
        self_fence_margin(self.settings.leases.failover_time)
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
            self.metrics.count("LostLeases", "RenewAllLeases", Scope::Worker, 1);
            log::warn!("lease {key}: lost ({reason}); its consumer stops");
            for op in held.queue {
                fail_op(op, LeaseError::Lost { shard: key.to_owned(), reason: reason.clone() });
            }
            self.supervisor.do_send(LeaseEvent::Lost { shard: Arc::from(key), tenure: held.tenure, reason });
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
                LeaseError::Lost { shard: key.to_owned(), reason: "not renewed within the failover time".into() },
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
                let handing_off = held.handoff_to.is_some();
                let fut = async move {
                    let r = table.renew(&key_owned, &me, counter, handing_off).await;
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
                        Err(WriteFailure::Handoff(by)) => act.handoff_requested(&key, by, ctx),
                    }
                    act.pump(&key, ctx);
                }));
            }
            Op::Checkpoint { checkpoint, reply } => {
                if held.lease.checkpoint.is_after(&checkpoint) || held.lease.checkpoint == checkpoint {
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
                    act.after_write(&key, tenure, sent_at, result.as_ref().ok().copied(), Some(checkpoint));
                    let answer = match result {
                        Ok(_) => {
                            *act.state.checkpoint_writes.entry(key.clone()).or_default() += 1;
                            Ok(())
                        }
                        Err(WriteFailure::Lost(why)) => {
                            act.lose(&key, why.clone());
                            Err(LeaseError::Lost { shard: key.clone(), reason: why })
                        }
                        Err(WriteFailure::Transient(e) | WriteFailure::Handoff(e)) => Err(LeaseError::Transient(e)),
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
                        shard_sync::children_of(&shards, &key_owned).into_iter().cloned().collect()
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
                    let ids: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
                    let r = table.checkpoint(&key_owned, &me, counter, &Checkpoint::ShardEnd, &ids).await;
                    let c = confirm(&table, &key_owned, &me, counter, r, |l| l.is_finished()).await?;
                    // Release at once: a finished lease occupies no worker.
                    let released = table.release(&key_owned, &me, c, None).await;
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
                            act.supervisor.do_send(LeaseEvent::Ended { shard: Arc::from(key.as_str()), tenure });
                            Ok(())
                        }
                        Err(WriteFailure::Lost(why)) => {
                            act.lose(&key, why.clone());
                            Err(LeaseError::Lost { shard: key.clone(), reason: why })
                        }
                        Err(WriteFailure::Transient(e) | WriteFailure::Handoff(e)) => {
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
                // A lease a worker asked for goes to that worker; one an operator asked for, or
                // released on shutdown, goes to whoever takes it first.
                let to = held.handoff_to.clone().filter(|by| !by.starts_with(OPERATOR));
                let fut = async move { table.release(&key_owned, &me, counter, to.as_deref()).await };
                let key = key.to_owned();
                ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                    let ok = result.is_ok();
                    if let Err(e) = &result {
                        log::warn!("lease {key}: release failed ({e}); it will expire instead");
                    }
                    if let Some(h) = act.state.held.remove(&key) {
                        h.deadline.revoke();
                        if h.handoff_to.is_some() && ok {
                            act.state.handoffs_done += 1;
                            act.state.given_up.insert(key.clone(), Instant::now());
                        }
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
            self.state.observations.record_write(key, c, Some(&me), Instant::now());
        }
    }

    /// Renews every held lease, and first drops those this worker could not renew in time.
    fn renew_all(&mut self, ctx: &mut Context<Self>) {
        self.fence();
        let keys: Vec<String> = self.state.held.keys().cloned().collect();
        for key in &keys {
            self.enqueue(key, Op::Renew, ctx);
        }
        self.metrics.count("CurrentLeases", "RenewAllLeases", Scope::Worker, self.state.held.len() as u64);
        // Leases asked for are handed over within a drain: look for them at renewal pace,
        // whatever the discovery interval, so they are not left to expire.
        if !self.state.requested.is_empty() {
            self.scan_cycle(false, ctx);
        }
    }

    /// The owner learnt that its lease is wanted elsewhere: the Supervisor drains the consumer,
    /// flushes the checkpoint and releases it; renewals go on meanwhile.
    fn handoff_requested(&mut self, key: &str, by: String, ctx: &mut Context<Self>) {
        let Some(h) = self.state.held.get_mut(key) else { return };
        if h.handoff_to.is_some() {
            return;
        }
        h.handoff_to = Some(by.clone());
        let tenure = h.tenure;
        log::info!("lease {key}: handoff requested by {by}; finishing its commands in flight, then releasing it");
        self.supervisor.do_send(LeaseEvent::HandoffRequested { shard: Arc::from(key), tenure, by });
        self.enqueue(key, Op::Renew, ctx);
    }

    /// Self-fencing: a lease not renewed within failover (minus a margin) is dropped here,
    /// before any other worker may take it.
    fn fence(&mut self) {
        let expired: Vec<String> =
            self.state.held.iter().filter(|(_, h)| !h.deadline.is_valid()).map(|(k, _)| k.clone()).collect();
        for key in expired {
            let age = self.state.held.get(&key).map(|h| h.renewed_at.elapsed()).unwrap_or_default();
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

    /// Scans the table and takes what it should: every discovery interval only free and
    /// expired leases, every take interval also handoff requests (balancing).
    fn scan_cycle(&mut self, allow_steal: bool, ctx: &mut Context<Self>) {
        if !self.state.taking || !self.state.started {
            return;
        }
        if self.state.scan_in_flight {
            self.state.steal_pending |= allow_steal;
            return;
        }
        self.state.scan_in_flight = true;
        let table = self.table.clone();
        ctx.spawn(async move { table.scan().await }.into_actor(self).map(move |result, act, ctx| match result {
            Ok((leases, skipped)) => act.plan_and_take(leases, skipped.len(), allow_steal, ctx),
            Err(e) => {
                act.scan_done(ctx);
                log::warn!("lease table {}: scan failed ({e}); will retry", act.table.name());
            }
        }));
    }

    fn scan_done(&mut self, ctx: &mut Context<Self>) {
        self.state.scan_in_flight = false;
        if std::mem::take(&mut self.state.steal_pending) {
            self.scan_cycle(true, ctx);
        }
    }

    fn plan_and_take(&mut self, leases: Vec<Lease>, skipped: usize, allow_steal: bool, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.state.take_cycles += allow_steal as u64;
        // A lease we hold that the table shows with another owner was taken from us (our next
        // renewal would find out too; this is sooner).
        let me = self.settings.worker_id.clone();
        let taken_from_us: Vec<(String, String)> = leases
            .iter()
            .filter(|l| self.state.held.get(&l.key).is_some_and(|h| !h.busy) && l.owner.as_deref() != Some(me.as_str()))
            .map(|l| {
                (
                    l.key.clone(),
                    format!("the table shows owner {} at counter {}", l.owner.as_deref().unwrap_or("none"), l.counter),
                )
            })
            .collect();
        for (key, why) in taken_from_us {
            self.lose(&key, why);
        }
        // A request is pending while the row still carries it; the owner answers by handing
        // the lease to us (adopted below), and a request nobody answers expires.
        let failover = self.settings.leases.failover_time;
        let pending: HashSet<&str> = leases
            .iter()
            .filter(|l| l.handoff_requested.as_deref() == Some(me.as_str()))
            .map(|l| l.key.as_str())
            .collect();
        self.state.requested.retain(|k, t| pending.contains(k.as_str()) && t.elapsed() < failover * 3);
        self.state.given_up.retain(|_, t| t.elapsed() < failover * 2);

        self.state.observations.observe(&leases, now);
        let held: HashSet<String> = self.state.held.keys().cloned().collect();
        let requested: HashSet<String> = self.state.requested.keys().cloned().collect();
        // What this worker just handed over goes to others, unless it is alone.
        let excluded: HashSet<String> = if self.state.last_plan.num_workers > 1 {
            self.state.given_up.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        let mine = taker::Mine { held: &held, requested: &requested, excluded: &excluded };
        let plan = taker::plan(
            &self.state.observations,
            mine,
            &me,
            &self.taker_settings(),
            now,
            allow_steal,
            &mut rand::rng(),
        );
        if allow_steal {
            if plan.spillover > 0 {
                log::warn!(
                    "{} leases beyond {} workers x maxLeasesForWorker: some shards may not be processed",
                    plan.spillover,
                    plan.num_workers
                );
            }
            self.metrics.count("NumWorkers", "TakeLeases", Scope::Worker, plan.num_workers as u64);
            self.metrics.count("ExpiredLeases", "TakeLeases", Scope::Worker, plan.expired as u64);
            self.metrics.count("LeaseSpillover", "TakeLeases", Scope::Worker, plan.spillover as u64);
        }
        if skipped > 0 {
            log::debug!("lease table {}: {skipped} rows are not leases (left untouched)", self.table.name());
        }
        let candidates = plan.take.clone();
        self.state.last_plan = plan;
        if candidates.is_empty() {
            self.scan_done(ctx);
            return;
        }
        let table = self.table.clone();
        // Take (then read the row back: checkpoint, parents) or, for a steal, ask the owner to
        // hand over. The cycle ends when all answers are in, so no scan sees a half-taken lease.
        let fut = async move {
            let mut results = vec![];
            for c in candidates {
                let sent_at = Instant::now();
                let r = if c.stolen {
                    let owner = c.owner.clone().unwrap_or_default();
                    match table.request_handoff(&c.key, Some(&owner), &me).await {
                        Ok(true) => Ok(None),
                        Ok(false) => Err("its owner changed, or a handoff is already pending".to_owned()),
                        Err(e) => Err(format!("handoff request failed ({e})")),
                    }
                } else {
                    match table.take(&c.key, c.counter, c.owner.as_deref(), &me).await {
                        Ok(counter) => match table.get(&c.key).await {
                            Ok(Some(l)) if l.owner.as_deref() == Some(me.as_str()) && l.counter == counter => {
                                Ok(Some(l))
                            }
                            Ok(other) => Err(format!("changed again right after the take ({other:?})")),
                            Err(e) => Err(format!("read after take failed ({e}); leaving it to expire")),
                        },
                        Err(LeaseTableError::ConditionFailed) => Err("another worker moved it first".to_owned()),
                        Err(e) => Err(format!("take failed ({e})")),
                    }
                };
                results.push((c, sent_at, r));
            }
            results
        };
        ctx.spawn(fut.into_actor(self).map(|results, act, ctx| {
            for (c, sent_at, r) in results {
                match r {
                    Ok(Some(lease)) => act.acquired(c, lease, sent_at, ctx),
                    Ok(None) => {
                        act.state.handoffs_requested += 1;
                        log::info!(
                            "lease {}: asked {} to hand it over (balancing)",
                            c.key,
                            c.owner.as_deref().unwrap_or("its owner")
                        );
                        act.state.requested.insert(c.key.clone(), Instant::now());
                    }
                    Err(why) => log::debug!("lease {}: not taken: {why}", c.key),
                }
            }
            act.scan_done(ctx);
        }));
    }

    /// A take succeeded: hold the lease and have its consumer started.
    fn acquired(&mut self, c: taker::Candidate, lease: Lease, sent_at: Instant, ctx: &mut Context<Self>) {
        let key = lease.key.clone();
        self.state.observations.record_write(&key, lease.counter, lease.owner.as_deref(), Instant::now());
        self.state.requested.remove(&key);
        if self.state.held.contains_key(&key) || !self.state.taking {
            return;
        }
        let tenure = next_tenure();
        let deadline = LeaseDeadline::until(self.valid_until(sent_at));
        self.state.taken += 1;
        self.metrics.count("TakenLeases", "TakeLeases", Scope::Worker, 1);
        log::info!(
            "lease {key}: taken{} at checkpoint {} (tenure {tenure})",
            match &c.owner {
                Some(p) if *p == self.settings.worker_id => " (handed over to this worker)".to_owned(),
                Some(p) => format!(" from {p} (expired)"),
                None => String::new(),
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
                handoff_to: None,
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
            let shards = shard_sync::list_shards(&kinesis, &stream).await.map_err(|e| e.to_string())?;
            let (leases, _) = table.scan().await.map_err(|e| e.to_string())?;
            let existing: HashSet<String> = leases.iter().map(|l| l.key.clone()).collect();
            let mut created = 0u64;
            for lease in shard_sync::new_leases(&shards, &existing, &initial) {
                if table.create_if_absent(&lease).await.map_err(|e| e.to_string())? {
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
                        act.scan_cycle(true, ctx);
                    } else if created > 0 {
                        act.scan_cycle(false, ctx);
                    }
                }
                Err(e) => {
                    log::warn!("shard sync of {}: {e}; will retry", act.settings.stream_name);
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
            l.child_shard_ids
                .iter()
                .all(|c| by_key.get(c.as_str()).is_some_and(|child| !child.checkpoint.is_start_position()))
        })
        .filter(|l| l.parent_shard_ids.iter().all(|p| !by_key.contains_key(p.as_str())))
        .map(|l| l.key.clone())
        .collect()
}

/// The outcome of a conditional write after its follow-up read.
#[derive(Debug)]
enum WriteFailure {
    Lost(String),
    Transient(String),
    /// Still ours, but someone asked for it (the renewal's condition saw the request).
    Handoff(String),
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
            Ok(Some(l)) if l.owner.as_deref() == Some(me) && l.counter == counter + 1 && shows_our_write(&l) => {
                Ok(counter + 1)
            }
            Ok(Some(l)) if l.owner.as_deref() == Some(me) && l.counter == counter && l.handoff_requested.is_some() => {
                Err(WriteFailure::Handoff(l.handoff_requested.unwrap_or_default()))
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
        ctx.wait(async move { table.ensure_exists().await }.into_actor(self).map(|result, act, ctx| match result {
            Ok(created) => {
                if created {
                    log::info!("lease table {} created (on-demand, hash key leaseKey)", act.table.name());
                }
                let l = act.settings.leases.clone();
                // Renewals: the KCL's failover / 3 - ε, so two may fail before a lease expires.
                ctx.run_interval(l.renew_interval, |act, ctx| act.renew_all(ctx));
                // Self-fencing is checked far more often than renewals, so a lease is dropped
                // within ~1/20 of the failover time of its deadline.
                ctx.run_interval((l.failover_time / 20).max(Duration::from_millis(10)), |act, _| act.fence());
                // Discovery: free and expired leases are picked up at this pace (a lease released
                // on shutdown within one interval); stealing waits for the take interval.
                ctx.run_interval(l.discovery_interval, |act, ctx| act.scan_cycle(false, ctx));
                ctx.run_interval(l.take_interval, |act, ctx| act.scan_cycle(true, ctx));
                ctx.run_interval(l.shard_sync_interval, |act, ctx| act.sync_shards(ctx));
                act.sync_shards(ctx);
            }
            Err(e) => act.fail(ctx, format!("the lease table is not usable: {e}")),
        }));
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

impl LeaseManager {
    /// Queues a write that answers (checkpoint, shard end) on a lease held in `tenure`; any
    /// other tenure is refused at once.
    fn request(
        &mut self,
        shard: &str,
        tenure: u64,
        op: impl FnOnce(oneshot::Sender<Result<(), LeaseError>>) -> Op,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<(), LeaseError>> {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(shard) {
            Some(h) if h.tenure == tenure => self.enqueue(shard, op(tx), ctx),
            _ => {
                let _ = tx.send(Err(LeaseError::NotHeld(shard.to_owned())));
            }
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(LeaseError::Transient("lease manager stopped".into()))) })
    }
}

impl Handler<WriteCheckpoint> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: WriteCheckpoint, ctx: &mut Self::Context) -> Self::Result {
        let checkpoint = msg.checkpoint;
        self.request(&msg.shard, msg.tenure, |reply| Op::Checkpoint { checkpoint, reply }, ctx)
    }
}

impl Handler<EndShard> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: EndShard, ctx: &mut Self::Context) -> Self::Result {
        let children = msg.children;
        self.request(&msg.shard, msg.tenure, |reply| Op::EndShard { children, reply }, ctx)
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
            let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(waits)).await;
        })
    }
}

impl Handler<Release> for LeaseManager {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => self.enqueue(&msg.shard, Op::Release { reply: tx }, ctx),
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
            handoffs_requested: s.handoffs_requested,
            handoffs_done: s.handoffs_done,
            mailbox_capacity: ctx.parts().capacity(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::lease::SequenceNumber;
    use super::*;

    fn lease(key: &str, checkpoint: Checkpoint, parents: &[&str], children: &[&str]) -> Lease {
        let mut l = Lease::new(key, checkpoint);
        l.parent_shard_ids = parents.iter().map(|p| p.to_string()).collect();
        l.child_shard_ids = children.iter().map(|c| c.to_string()).collect();
        l
    }

    fn seq(n: u64) -> Checkpoint {
        Checkpoint::Sequence(SequenceNumber::parse(&n.to_string()).expect("digits"))
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

    #[test]
    fn deadlines_lapse_and_can_be_revoked() {
        let d = LeaseDeadline::until(Instant::now() + Duration::from_secs(60));
        assert!(d.is_valid());
        d.revoke();
        assert!(!d.is_valid());
        let past = LeaseDeadline::until(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!past.is_valid());
        assert_eq!(self_fence_margin(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(self_fence_margin(Duration::from_secs(2)), Duration::from_millis(400));
    }
}
