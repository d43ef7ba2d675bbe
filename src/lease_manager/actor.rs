//! The LeaseManager actor: its state, its timers (renew, fence, discover, take, sync) and the
//! messages it answers. What it does on each is in `writes`, `taking` and `syncing`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use tokio::sync::oneshot;

use super::shards::ShardLister;
use super::store::LeaseStore;
use super::taker::{Observations, TakePlan, TakerSettings};
use super::writes::{HeldLease, LeaseWrite};
use super::{
    EndShard, HeldLeaseSnapshot, LatestStart, LeaseChange, LeaseCounters, LeaseError, LeaseEvent, LeaseManagerSettings,
    LeaseManagerSnapshot, LeaseOwner, ParentsFinished, PinLatestStart, Release, ReleaseAll, WriteCheckpoint,
};
use crate::metrics::MetricsHandle;
use crate::model::{ShardInfo, Tenure, self_fence_margin};
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, ExitReason, stops_on_request};

/// The LeaseManager's changing state, apart from its settings.
#[derive(Default)]
pub(super) struct State {
    pub held: BTreeMap<String, HeldLease>,
    pub observations: Observations,
    pub last_plan: TakePlan,
    /// The first shard sync is done: scans may begin.
    pub started: bool,
    /// The first take cycle ran (and the Supervisor was told).
    pub ready: bool,
    /// Taking leases (false once a graceful shutdown began).
    pub taking: bool,
    pub scan_in_flight: bool,
    /// A take cycle (with stealing) came while a scan was out: run one after it.
    pub steal_pending: bool,
    /// A scan came while one was out (its answer may predate a release it was called for), or
    /// a take lost its race to another worker (others may still be free): scan again after it.
    pub rescan_pending: bool,
    /// Handoffs this worker asked for (balancing), by when.
    pub requested: BTreeMap<String, Instant>,
    /// Leases this worker handed over, by when: not taken back while they are fresh.
    pub given_up: BTreeMap<String, Instant>,
    /// Handoff requests nobody accepted (the owner is not sauna): not asked again until then.
    pub unanswered: BTreeMap<String, Instant>,
    /// Failures of the first shard sync, which nothing can start without.
    pub first_sync_failures: u32,
    pub sync_in_flight: bool,
    pub shards: Vec<ShardInfo>,
    /// Malformed rows already warned about (key → problem), so a scan warns once per problem.
    pub malformed: BTreeMap<String, String>,
    /// A scan is scheduled for when the next lease of another worker would expire.
    pub expiry_scan_scheduled: bool,
    pub signal: SignalState,
    pub counters: LeaseCounters,
}

/// This worker's side of the lease table's change signal.
#[derive(Default)]
pub(super) struct SignalState {
    /// The value last read (`None` before the first read).
    pub seen: Option<u64>,
    pub read_in_flight: bool,
    pub bump_in_flight: bool,
    /// Another bump was asked for while one was out.
    pub bump_pending: bool,
}

pub struct LeaseManager {
    pub(super) settings: Arc<LeaseManagerSettings>,
    pub(super) table: Arc<dyn LeaseStore>,
    pub(super) shards: Arc<dyn ShardLister>,
    /// Where lease events go (the Supervisor).
    pub(super) events: Recipient<LeaseEvent>,
    pub(super) metrics: MetricsHandle,
    pub(super) state: State,
    exit: ExitGuard,
}

impl LeaseManager {
    pub fn new(
        settings: LeaseManagerSettings,
        table: Arc<dyn LeaseStore>,
        shards: Arc<dyn ShardLister>,
        events: Recipient<LeaseEvent>,
        metrics: MetricsHandle,
        exit: ExitGuard,
    ) -> Self {
        LeaseManager {
            settings: Arc::new(settings),
            table,
            shards,
            events,
            metrics,
            state: State { taking: true, ..State::default() },
            exit,
        }
    }

    pub(super) fn worker_id(&self) -> &str {
        &self.settings.worker_id
    }

    /// Tells the Supervisor, stamped with this LeaseManager's generation.
    pub(super) fn tell(&self, change: LeaseChange) {
        self.events.do_send(LeaseEvent { generation: self.settings.generation, change });
    }

    /// Moves the change signal (coalescing bursts: one bump at a time).
    pub(super) fn signal_change(&mut self, ctx: &mut Context<Self>) {
        if self.settings.leases.signal_poll_interval.is_none() {
            return;
        }
        if self.state.signal.bump_in_flight {
            self.state.signal.bump_pending = true;
            return;
        }
        self.state.signal.bump_in_flight = true;
        let table = self.table.clone();
        ctx.spawn(async move { table.bump_signal().await }.into_actor(self).map(|result, act, ctx| {
            act.state.signal.bump_in_flight = false;
            if let Err(e) = result {
                log::debug!("lease table {}: change signal not moved ({e})", act.table.name());
            }
            if std::mem::take(&mut act.state.signal.bump_pending) {
                act.signal_change(ctx);
            }
        }));
    }

    /// Reads the change signal; when it moved, scans now.
    fn poll_signal(&mut self, ctx: &mut Context<Self>) {
        if self.state.signal.read_in_flight || !self.state.started {
            return;
        }
        self.state.signal.read_in_flight = true;
        let table = self.table.clone();
        ctx.spawn(crate::tasks::own_task(async move { table.read_signal().await }).into_actor(self).map(
            |result, act, ctx| {
                act.state.signal.read_in_flight = false;
                let Ok(value) = result else { return };
                let moved = act.state.signal.seen.is_some_and(|seen| seen != value);
                act.state.signal.seen = Some(value);
                if moved {
                    act.scan_cycle(false, ctx);
                }
            },
        ));
    }

    /// Until when a lease whose last successful write was sent at `renewed_at` may be acted
    /// on: other workers may take it `failover` after that, and this worker stops a margin
    /// before.
    pub(super) fn valid_until(&self, renewed_at: Instant) -> Instant {
        let failover = self.settings.leases.failover_time;
        renewed_at + failover - self_fence_margin(failover)
    }

    pub(super) fn taker_settings(&self) -> TakerSettings {
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

    /// The timers, once the table is usable.
    fn start_timers(&mut self, ctx: &mut Context<Self>) {
        let l = self.settings.leases.clone();
        // Renewals: the KCL's failover / 3 - ε, so two may fail before a lease expires.
        ctx.run_interval(l.renew_interval, |act, ctx| act.renew_all(ctx));
        // Self-fencing is checked far more often than renewals, so a lease is dropped within
        // ~1/20 of the failover time of its deadline.
        // It and the signal's reads are lined up with the other timers of the process (see
        // `crate::timers`): they wake the thread together.
        crate::timers::run_aligned(ctx, (l.failover_time / 20).max(Duration::from_millis(10)), |act, _| act.fence());
        // Discovery: free and expired leases are picked up at this pace (a lease released on
        // shutdown within one interval); stealing waits for the take interval.
        ctx.run_interval(l.discovery_interval, |act, ctx| act.scan_cycle(false, ctx));
        ctx.run_interval(l.take_interval, |act, ctx| act.scan_cycle(true, ctx));
        // Until the first sync succeeded, its own retries (with backoff) run it instead.
        ctx.run_interval(l.shard_sync_interval, |act, ctx| {
            if act.state.started {
                act.sync_shards(ctx)
            }
        });
        if let Some(every) = l.signal_poll_interval {
            crate::timers::run_aligned(ctx, every, |act, ctx| act.poll_signal(ctx));
        }
        self.sync_shards(ctx);
    }

    /// Queues a write that answers (checkpoint, shard end) on a lease held in `tenure`; any
    /// other tenure is refused at once.
    fn request(
        &mut self,
        shard: &str,
        tenure: Tenure,
        write: impl FnOnce(oneshot::Sender<Result<(), LeaseError>>) -> LeaseWrite,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<(), LeaseError>> {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(shard) {
            Some(h) if h.tenure == tenure => self.enqueue(shard, write(tx), ctx),
            _ => {
                let _ = tx.send(Err(LeaseError::NotHeld(shard.to_owned())));
            }
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(LeaseError::Transient("lease manager stopped".into()))) })
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
                act.start_timers(ctx);
            }
            Err(e) => act.fail(ctx, format!("the lease table is not usable: {e}")),
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let keys: Vec<String> = self.state.held.keys().cloned().collect();
        for key in keys {
            self.drop_lease(&key, LeaseError::NotHeld(key.clone()));
        }
    }
}

impl Handler<WriteCheckpoint> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: WriteCheckpoint, ctx: &mut Self::Context) -> Self::Result {
        let checkpoint = msg.checkpoint;
        self.request(&msg.shard, msg.tenure, |reply| LeaseWrite::Checkpoint { checkpoint, reply }, ctx)
    }
}

impl Handler<EndShard> for LeaseManager {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: EndShard, ctx: &mut Self::Context) -> Self::Result {
        let children = msg.children;
        self.request(&msg.shard, msg.tenure, |reply| LeaseWrite::EndShard { children, reply }, ctx)
    }
}

impl Handler<PinLatestStart> for LeaseManager {
    type Result = ResponseFuture<Result<LatestStart, LeaseError>>;

    fn handle(&mut self, msg: PinLatestStart, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => {
                self.enqueue(&msg.shard, LeaseWrite::PinLatestStart { at: msg.at, reply: tx }, ctx)
            }
            _ => {
                let _ = tx.send(Err(LeaseError::NotHeld(msg.shard.to_string())));
            }
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(LeaseError::Transient("lease manager stopped".into()))) })
    }
}

// Stopped when the observer's core is replaced: no release, no more writes; the new
// LeaseManager adopts the leases.
stops_on_request!(LeaseManager);

impl Handler<LeaseOwner> for LeaseManager {
    type Result = ResponseFuture<Result<Option<String>, LeaseError>>;

    fn handle(&mut self, msg: LeaseOwner, _: &mut Self::Context) -> Self::Result {
        let table = self.table.clone();
        Box::pin(async move {
            match table.get(&msg.0).await {
                Ok(lease) => Ok(lease.and_then(|l| l.owner)),
                Err(e) => Err(LeaseError::Transient(e.to_string())),
            }
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
        // This worker is leaving: its handoff requests are withdrawn, or their owners would hand
        // leases to a departed worker (and count it as a worker meanwhile).
        for key in std::mem::take(&mut self.state.requested).into_keys() {
            let (table, worker_id) = (self.table.clone(), self.worker_id().to_owned());
            let (tx, rx) = oneshot::channel();
            actix::spawn(async move {
                let _ = table.withdraw_handoff(&key, &worker_id).await;
                let _ = tx.send(true);
            });
            waits.push(rx);
        }
        for key in keys {
            let (tx, rx) = oneshot::channel();
            self.enqueue(&key, LeaseWrite::Release { reply: tx }, ctx);
            waits.push(rx);
        }
        // Nothing outlives the failover time: by then every other worker may take the leases.
        let bound = self.settings.leases.failover_time;
        // Each release moves the change signal, so the others take the leases at once; but those
        // bumps are coalesced (one out at a time, the rest pending) and this process may exit as
        // soon as the releases are answered. One more bump after the last release, awaited, is
        // what makes the others scan a table that shows every lease of this worker free.
        let signal = self.settings.leases.signal_poll_interval.map(|_| self.table.clone());
        Box::pin(async move {
            let released_then_signalled = async move {
                futures::future::join_all(waits).await;
                if let Some(table) = signal
                    && let Err(e) = table.bump_signal().await
                {
                    log::debug!("lease table {}: change signal not moved on leaving ({e})", table.name());
                }
            };
            let _ = tokio::time::timeout(bound, released_then_signalled).await;
        })
    }
}

impl Handler<Release> for LeaseManager {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self.state.held.get(&*msg.shard) {
            Some(h) if h.tenure == msg.tenure => self.enqueue(&msg.shard, LeaseWrite::Release { reply: tx }, ctx),
            _ => {
                let _ = tx.send(false);
            }
        }
        Box::pin(async move { rx.await.unwrap_or(false) })
    }
}

impl Observable for LeaseManager {
    type Snapshot = LeaseManagerSnapshot;

    fn snapshot(&self, ctx: &mut Self::Context) -> LeaseManagerSnapshot {
        LeaseManagerSnapshot {
            worker_id: self.settings.worker_id.clone(),
            held: self
                .state
                .held
                .iter()
                .map(|(k, h)| HeldLeaseSnapshot {
                    shard: k.clone(),
                    tenure: h.tenure,
                    counter: h.lease.counter,
                    checkpoint: h.lease.checkpoint.to_string(),
                })
                .collect(),
            last_plan: self.state.last_plan.clone(),
            counters: self.state.counters.clone(),
            mailbox_capacity: ctx.parts().capacity(),
        }
    }
}

answers_observe!(LeaseManager);
