//! The writes of a held lease, one at a time: renewals, checkpoints, SHARD_END and release
//! each move the lease's counter and are conditional on the one before, so they queue per lease.
//! A write refused on its condition is followed by a read (a retried request may in fact have
//! succeeded) before the lease is given up. Each write runs as a task of its own
//! ([`crate::tasks`]): a round of renewals puts one call per lease out at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::actor::LeaseManager;
use super::row::Lease;
use super::store::{LeaseStore, LeaseTableError};
use super::{LatestStart, LeaseChange, LeaseError, OPERATOR};
use crate::metrics::{Operation, Scope};
use crate::model::{Checkpoint, LeaseDeadline, ShardInfo, Tenure};
use crate::tasks::own_task;

/// One write to a held lease, waiting its turn.
pub(super) enum LeaseWrite {
    Renew,
    PinLatestStart { at: i64, reply: oneshot::Sender<Result<LatestStart, LeaseError>> },
    Checkpoint { checkpoint: Checkpoint, reply: oneshot::Sender<Result<(), LeaseError>> },
    EndShard { children: Vec<ShardInfo>, reply: oneshot::Sender<Result<(), LeaseError>> },
    Release { reply: oneshot::Sender<bool> },
}

impl LeaseWrite {
    /// Answers a write that will not be made.
    fn refuse(self, e: LeaseError) {
        match self {
            LeaseWrite::Renew => {}
            LeaseWrite::PinLatestStart { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            LeaseWrite::Checkpoint { reply, .. } | LeaseWrite::EndShard { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            LeaseWrite::Release { reply } => {
                let _ = reply.send(false);
            }
        }
    }
}

/// A lease this worker holds.
pub(super) struct HeldLease {
    pub lease: Lease,
    pub tenure: Tenure,
    pub deadline: LeaseDeadline,
    /// When the request of the last successful write was sent: the lease is safe until
    /// failover after that, in every other worker's eyes.
    pub renewed_at: Instant,
    pub write_in_flight: bool,
    pub queue: VecDeque<LeaseWrite>,
    /// A handoff was requested (by whom); renewals keep it alive until the release.
    pub handoff_to: Option<String>,
    /// The asker has been told the handoff is under way (`handoffAccepted` written).
    pub handoff_accepted: bool,
    /// Being given up (its release, or SHARD_END and release, is out): its deadline is revoked
    /// on purpose, so self-fencing has nothing to do with it.
    pub releasing: bool,
}

/// The write about to go out: which lease, in which tenure, at which counter, sent when.
#[derive(Clone)]
struct WriteAt {
    key: String,
    tenure: Tenure,
    counter: u64,
    sent_at: Instant,
}

/// The outcome of a conditional write after its follow-up read.
#[derive(Debug)]
pub(super) enum WriteFailure {
    Lost(String),
    Transient(String),
    /// Still ours, but someone asked for it (the renewal's condition saw the request).
    Handoff(String),
}

impl From<WriteFailure> for LeaseError {
    fn from(f: WriteFailure) -> Self {
        match f {
            WriteFailure::Lost(reason) => LeaseError::Lost { shard: String::new(), reason },
            WriteFailure::Transient(e) | WriteFailure::Handoff(e) => LeaseError::Transient(e),
        }
    }
}

impl LeaseManager {
    pub(super) fn enqueue(&mut self, key: &str, write: LeaseWrite, ctx: &mut Context<Self>) {
        match self.state.held.get_mut(key) {
            Some(h) => {
                if matches!(write, LeaseWrite::Renew) && h.queue.iter().any(|w| matches!(w, LeaseWrite::Renew)) {
                    return;
                }
                h.queue.push_back(write);
                self.run_next_write(key, ctx);
            }
            None => write.refuse(LeaseError::NotHeld(key.to_owned())),
        }
    }

    /// Runs the next queued write of a lease, if none is running.
    fn run_next_write(&mut self, key: &str, ctx: &mut Context<Self>) {
        let Some(held) = self.state.held.get_mut(key) else { return };
        if held.write_in_flight {
            return;
        }
        let Some(write) = held.queue.pop_front() else { return };
        if !held.deadline.is_valid() && !matches!(write, LeaseWrite::Renew) {
            // Too late to write anything: others may already hold it.
            let reason = "not renewed within the failover time".into();
            write.refuse(LeaseError::Lost { shard: key.to_owned(), reason });
            return;
        }
        held.write_in_flight = true;
        let at =
            WriteAt { key: key.to_owned(), tenure: held.tenure, counter: held.lease.counter, sent_at: Instant::now() };
        match write {
            LeaseWrite::Renew => self.renew(at, ctx),
            LeaseWrite::PinLatestStart { at: ms, reply } => self.pin_latest_start(at, ms, reply, ctx),
            LeaseWrite::Checkpoint { checkpoint, reply } => self.write_checkpoint(at, checkpoint, reply, ctx),
            LeaseWrite::EndShard { children, reply } => self.end_shard(at, children, reply, ctx),
            LeaseWrite::Release { reply } => self.release(at, reply, ctx),
        }
    }

    /// A renewal. While a handoff is under way and the asker has not been told so yet, the
    /// renewal also records that the request was seen (`handoffAccepted`), until that succeeds.
    fn renew(&mut self, at: WriteAt, ctx: &mut Context<Self>) {
        let held = self.state.held.get(&at.key);
        let handing_off = held.is_some_and(|h| h.handoff_to.is_some());
        let accept = held.and_then(|h| h.handoff_to.clone().filter(|_| !h.handoff_accepted));
        let accepting = accept.is_some();
        let (table, worker_id, a) = (self.table.clone(), self.worker_id().to_owned(), at.clone());
        let fut = async move {
            let r = match &accept {
                Some(by) => table.accept_handoff(&a.key, &worker_id, a.counter, by).await,
                None => table.renew(&a.key, &worker_id, a.counter, handing_off).await,
            };
            let accepted = |l: &Lease| accept.is_none() || l.handoff_accepted == accept;
            confirm(&*table, &a.key, &worker_id, a.counter, r, accepted).await
        };
        ctx.spawn(own_task(fut).into_actor(self).map(move |result, act, ctx| {
            act.after_write(&at, result.as_ref().ok().copied(), None);
            match result {
                Ok(_) => {
                    act.state.counters.renewals += 1;
                    if let (true, Some(h)) = (accepting, act.state.held.get_mut(&at.key)) {
                        h.handoff_accepted = true;
                    }
                }
                Err(WriteFailure::Lost(why)) => act.lose_tenure(&at, why),
                Err(WriteFailure::Transient(e)) => log::warn!("lease {}: renewal failed ({e}); will retry", at.key),
                Err(WriteFailure::Handoff(by)) => act.handoff_requested(&at.key, by, ctx),
            }
            act.run_next_write(&at.key, ctx);
        }));
    }

    fn write_checkpoint(
        &mut self,
        at: WriteAt,
        checkpoint: Checkpoint,
        reply: oneshot::Sender<Result<(), LeaseError>>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(h) = self.state.held.get_mut(&at.key)
            && (h.lease.checkpoint.is_after(&checkpoint) || h.lease.checkpoint == checkpoint)
        {
            // Never backwards; nothing new to write.
            h.write_in_flight = false;
            let _ = reply.send(Ok(()));
            self.run_next_write(&at.key, ctx);
            return;
        }
        let (table, worker_id, a, cp) =
            (self.table.clone(), self.worker_id().to_owned(), at.clone(), checkpoint.clone());
        let fut = async move {
            let r = table.checkpoint(&a.key, &worker_id, a.counter, &cp, &[]).await;
            confirm(&*table, &a.key, &worker_id, a.counter, r, |l| l.checkpoint == cp).await
        };
        ctx.spawn(own_task(fut).into_actor(self).map(move |result, act, ctx| {
            act.after_write(&at, result.as_ref().ok().copied(), Some(checkpoint));
            let answer = match result {
                Ok(_) => {
                    *act.state.counters.checkpoint_writes.entry(at.key.clone()).or_default() += 1;
                    Ok(())
                }
                Err(WriteFailure::Lost(why)) => {
                    act.lose_tenure(&at, why.clone());
                    Err(LeaseError::Lost { shard: at.key.clone(), reason: why })
                }
                Err(other) => Err(other.into()),
            };
            let _ = reply.send(answer);
            act.run_next_write(&at.key, ctx);
        }));
    }

    fn pin_latest_start(
        &mut self,
        at: WriteAt,
        ms: i64,
        reply: oneshot::Sender<Result<LatestStart, LeaseError>>,
        ctx: &mut Context<Self>,
    ) {
        let pinned = self.state.held.get(&at.key).and_then(|h| h.lease.latest_started_at);
        if let Some(since) = pinned {
            // An earlier reader recorded it: resume there, nothing to write.
            if let Some(h) = self.state.held.get_mut(&at.key) {
                h.write_in_flight = false;
            }
            let _ = reply.send(Ok(LatestStart::Since(since)));
            return self.run_next_write(&at.key, ctx);
        }
        let (table, worker_id, a) = (self.table.clone(), self.worker_id().to_owned(), at.clone());
        let fut = async move {
            let r = table.pin_latest_start(&a.key, &worker_id, a.counter, ms).await;
            confirm(&*table, &a.key, &worker_id, a.counter, r, |l| l.latest_started_at.is_some()).await
        };
        ctx.spawn(own_task(fut).into_actor(self).map(move |result, act, ctx| {
            act.after_write(&at, result.as_ref().ok().copied(), None);
            let answer = match result {
                Ok(_) => {
                    if let Some(h) = act.state.held.get_mut(&at.key) {
                        h.lease.latest_started_at = Some(ms);
                    }
                    log::info!("lease {}: LATEST starts at {ms} (epoch ms) for every reader of it", at.key);
                    Ok(LatestStart::Pinned)
                }
                Err(WriteFailure::Lost(why)) => {
                    act.lose_tenure(&at, why.clone());
                    Err(LeaseError::Lost { shard: at.key.clone(), reason: why })
                }
                Err(other) => Err(other.into()),
            };
            let _ = reply.send(answer);
            act.run_next_write(&at.key, ctx);
        }));
    }

    fn end_shard(
        &mut self,
        at: WriteAt,
        children: Vec<ShardInfo>,
        reply: oneshot::Sender<Result<(), LeaseError>>,
        ctx: &mut Context<Self>,
    ) {
        let (table, shards, worker_id, a) =
            (self.table.clone(), self.shards.clone(), self.worker_id().to_owned(), at.clone());
        let deadline = self.state.held.get_mut(&at.key).map(|h| {
            // Self-fencing leaves it alone while SHARD_END and the release are out.
            h.releasing = true;
            h.deadline.clone()
        });
        let fut = async move {
            let (created, ids) = super::syncing::create_child_leases(&*table, &*shards, &a.key, children).await?;
            let r = table.checkpoint(&a.key, &worker_id, a.counter, &Checkpoint::ShardEnd, &ids).await;
            let c = confirm(&*table, &a.key, &worker_id, a.counter, r, |l| l.is_finished()).await?;
            // Release at once: a finished lease occupies no worker (and nothing here acts on it
            // from the moment the release is sent).
            if let Some(d) = &deadline {
                d.revoke();
            }
            let released = table.release(&a.key, &worker_id, c, None).await;
            Ok::<_, WriteFailure>((created, ids, released.is_ok()))
        };
        ctx.spawn(own_task(fut).into_actor(self).map(move |result, act, ctx| {
            let answer = match result {
                Ok((created, children, released)) => {
                    act.state.counters.leases_created += created;
                    log::info!(
                        "shard {} ended: checkpoint SHARD_END, children [{}] ({created} lease{} created), lease {}",
                        at.key,
                        children.join(", "),
                        if created == 1 { "" } else { "s" },
                        if released { "released" } else { "left to expire" }
                    );
                    act.drop_lease(&at.key, LeaseError::NotHeld(at.key.clone()));
                    act.tell(LeaseChange::Ended { shard: Arc::from(at.key.as_str()), tenure: at.tenure });
                    act.signal_change(ctx);
                    Ok(())
                }
                Err(WriteFailure::Lost(why)) => {
                    act.lose_tenure(&at, why.clone());
                    Err(LeaseError::Lost { shard: at.key.clone(), reason: why })
                }
                Err(other) => {
                    if let Some(h) = act.state.held.get_mut(&at.key) {
                        h.write_in_flight = false;
                        h.releasing = false;
                    }
                    Err(other.into())
                }
            };
            let _ = reply.send(answer);
            act.run_next_write(&at.key, ctx);
        }));
    }

    fn release(&mut self, at: WriteAt, reply: oneshot::Sender<bool>, ctx: &mut Context<Self>) {
        // A lease a worker asked for goes to that worker; one an operator asked for, or released
        // on shutdown, goes to whoever takes it first.
        let to = self.state.held.get(&at.key).and_then(|h| h.handoff_to.clone()).filter(|by| !by.starts_with(OPERATOR));
        // From the moment the release is sent, another worker may hold the lease: nothing here
        // acts on it any more (its consumer is drained and frozen already).
        if let Some(h) = self.state.held.get_mut(&at.key) {
            h.releasing = true;
            h.deadline.revoke();
        }
        let (table, worker_id, a) = (self.table.clone(), self.worker_id().to_owned(), at.clone());
        let fut = async move {
            match table.release(&a.key, &worker_id, a.counter, to.as_deref()).await {
                // The asker withdrew its request (it is leaving): to nobody, then.
                Err(LeaseTableError::ConditionFailed) if to.is_some() => {
                    table.release(&a.key, &worker_id, a.counter, None).await
                }
                other => other,
            }
        };
        ctx.spawn(own_task(fut).into_actor(self).map(move |result, act, ctx| {
            let ok = result.is_ok();
            if let Err(e) = &result {
                log::warn!("lease {}: release failed ({e}); it will expire instead", at.key);
            }
            if let Some(h) = act.drop_lease(&at.key, LeaseError::NotHeld(at.key.clone()))
                && h.handoff_to.is_some()
                && ok
            {
                act.state.counters.handoffs_done += 1;
                act.state.given_up.insert(at.key.clone(), Instant::now());
            }
            log::info!("lease {}: released", at.key);
            if ok {
                // Whoever may take it now learns at once, not at its next scan.
                act.signal_change(ctx);
            }
            let _ = reply.send(ok);
        }));
    }

    /// Bookkeeping after a renew or checkpoint (if the lease is still held in that tenure).
    fn after_write(&mut self, at: &WriteAt, new_counter: Option<u64>, checkpoint: Option<Checkpoint>) {
        let until = self.valid_until(at.sent_at);
        let worker_id = self.settings.worker_id.clone();
        let Some(h) = self.state.held.get_mut(&at.key) else { return };
        if h.tenure != at.tenure {
            return;
        }
        h.write_in_flight = false;
        let Some(c) = new_counter else { return };
        h.lease.counter = c;
        if let Some(cp) = checkpoint {
            h.lease.checkpoint = cp;
        }
        let revived = h.deadline.extend_to(until);
        h.renewed_at = at.sent_at;
        self.state.observations.record_write(&at.key, c, Some(&worker_id), Instant::now());
        if !revived {
            // The answer came after the deadline lapsed: the lease stays dropped here (another
            // worker may have acted on the lapse); it is taken anew, under a new tenure.
            let late = at.sent_at.elapsed().as_millis();
            self.lose(&at.key, format!("a write was answered only after the lease's deadline lapsed ({late} ms)"));
        }
    }

    /// Stops holding a lease: its deadline is revoked (its consumer stops dispatching) and
    /// the writes still queued are refused with `error`.
    pub(super) fn drop_lease(&mut self, key: &str, error: LeaseError) -> Option<HeldLease> {
        let mut held = self.state.held.remove(key)?;
        held.deadline.revoke();
        for write in held.queue.drain(..) {
            write.refuse(error.clone());
        }
        Some(held)
    }

    /// A write of `at`'s tenure found the lease lost: drop it — if it is still held in that
    /// tenure. A late answer to a write of an earlier tenure (a request the SDK kept retrying
    /// while the lease lapsed and was taken anew) says nothing about the current one.
    fn lose_tenure(&mut self, at: &WriteAt, reason: String) {
        if self.state.held.get(&at.key).is_some_and(|h| h.tenure == at.tenure) {
            self.lose(&at.key, reason);
        }
    }

    /// Drops a lease this worker no longer holds and tells the Supervisor.
    pub(super) fn lose(&mut self, key: &str, reason: String) {
        let error = LeaseError::Lost { shard: key.to_owned(), reason: reason.clone() };
        if let Some(held) = self.drop_lease(key, error) {
            self.state.counters.lost += 1;
            self.metrics.count("LostLeases", Operation::RenewAllLeases, Scope::Worker, 1);
            log::warn!("lease {key}: lost ({reason}); its consumer stops");
            self.tell(LeaseChange::Lost { shard: Arc::from(key), tenure: held.tenure, reason });
        }
    }
}

/// A conditional write that failed its condition may still have happened (a retried request
/// whose first try succeeded): re-read the lease and accept it if it shows our write.
pub(super) async fn confirm(
    table: &dyn LeaseStore,
    key: &str,
    worker_id: &str,
    counter: u64,
    result: Result<u64, LeaseTableError>,
    shows_our_write: impl Fn(&Lease) -> bool,
) -> Result<u64, WriteFailure> {
    match result {
        Ok(c) => Ok(c),
        Err(LeaseTableError::ConditionFailed) => match table.get(key).await {
            Ok(Some(l)) if l.owner.as_deref() == Some(worker_id) && l.counter == counter + 1 && shows_our_write(&l) => {
                Ok(counter + 1)
            }
            Ok(Some(l))
                if l.owner.as_deref() == Some(worker_id) && l.counter == counter && l.handoff_requested.is_some() =>
            {
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
