//! One ShardConsumer per held lease: started when the LeaseManager takes a lease, stopped when
//! it goes, restarted from the shard's latest watermark when it fails, and drained before a
//! graceful handoff.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::Supervisor;
use crate::checkpointer::{FlushShard, Forget, LatestCheckpoint};
use crate::lease_manager::{AcquiredLease, Release};
use crate::metrics::ForgetShard;
use crate::model::{Backoff, Tenure};
use crate::shard_consumer::{ConsumerLinks, Drain, Freeze, ParentFinished, ShardConsumer};
use crate::supervision::{ChildExited, ChildId, ExitGuard, ExitReason, Stop};

/// The running consumer of one lease.
pub(super) struct ConsumerSlot {
    pub addr: Addr<ShardConsumer>,
    pub lease: AcquiredLease,
    pub incarnation: u64,
    pub backoff: Backoff,
}

impl Supervisor {
    pub(super) fn lease_acquired(&mut self, lease: AcquiredLease, ctx: &mut Context<Self>) {
        if self.core.as_ref().is_some_and(|c| !c.ready_for_consumers()) {
            self.waiting_for_core.push(lease);
            return;
        }
        if let Some(old) = self.consumers.remove(&lease.shard) {
            old.addr.do_send(Stop);
        }
        self.start_consumer(lease, Backoff::restarts(), ctx);
    }

    pub(super) fn lease_lost(&mut self, shard: Arc<str>, tenure: Tenure, reason: String) {
        if let Some(slot) = self.consumers.get(&shard)
            && slot.lease.tenure == tenure
        {
            log::warn!("observer {}: stopping the consumer of shard {shard}: {reason}", self.id());
            slot.addr.do_send(Stop);
            self.consumers.remove(&shard);
        }
        if let Some(core) = &self.core {
            core.checkpointer.do_send(Forget { shard });
        }
    }

    pub(super) fn shard_ended(&mut self, shard: Arc<str>, tenure: Tenure) {
        if self.consumers.get(&shard).is_some_and(|s| s.lease.tenure == tenure) {
            self.consumers.remove(&shard);
        }
        // Children of this shard waiting here may start now.
        for slot in self.consumers.values() {
            slot.addr.do_send(ParentFinished(shard.clone()));
        }
    }

    fn start_consumer(&mut self, lease: AcquiredLease, mut backoff: Backoff, ctx: &mut Context<Self>) {
        if self.shutting_down || !lease.deadline.is_valid() {
            return;
        }
        let Some(core) = &self.core else { return };
        let links = ConsumerLinks {
            reader: self.shard_reader(&core.stream_consumer),
            parser: core.parser.clone().recipient(),
            routes: core.routes.clone(),
            progress: core.checkpointer.clone().recipient(),
            shard_ended: core.checkpointer.clone().recipient(),
            parents: core.lease_manager.clone().recipient(),
            latest_start: core.lease_manager.clone().recipient(),
            lease_owner: core.lease_manager.clone().recipient(),
            metrics: core.metrics_handle.clone(),
            dead_letters: core.dead_letters.clone().map(Addr::recipient),
            outcome_log: core.outcome_log.clone().map(Addr::recipient),
            claims: core.claims.clone().map(|c| c as Arc<dyn crate::claims::ClaimStore>),
        };
        let incarnation = self.next_incarnation();
        let settings = self.consumer_settings.clone();
        let exited = ctx.address().recipient::<ChildExited>();
        let child = ChildId::ShardConsumer { shard: lease.shard.clone(), incarnation };
        let guard = ExitGuard::new(child, exited, &self.live);
        let lease_for_actor = lease.clone();
        let arbiter = &self.spec.arbiters[self.next_arbiter % self.spec.arbiters.len().max(1)];
        self.next_arbiter += 1;
        let addr = ShardConsumer::start_in_arbiter(arbiter, move |_| {
            ShardConsumer::new(settings, links, lease_for_actor, guard)
        });
        backoff.started();
        self.consumers.insert(lease.shard.clone(), ConsumerSlot { addr, lease, incarnation, backoff });
    }

    pub(super) fn consumer_exited(
        &mut self,
        shard: Arc<str>,
        incarnation: u64,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        self.restart_if_failed(shard.clone(), incarnation, reason, ctx);
        // No consumer of this shard runs here now (stopped, finished, or waiting out a restart
        // backoff): its Prometheus gauges go. Its last samples were sent before it ended, so
        // they reach the Metrics mailbox before this; with no core (restarting), straight away.
        let Some(sink) = &self.spec.prometheus else { return };
        if !self.consumers.contains_key(&shard) {
            match &self.core {
                Some(core) => core.metrics.do_send(ForgetShard(shard)),
                None => sink.forget_shard(&shard),
            }
        }
    }

    fn restart_if_failed(&mut self, shard: Arc<str>, incarnation: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        // Only the running incarnation counts: a consumer we stopped was removed already.
        if self.consumers.get(&shard).is_none_or(|s| s.incarnation != incarnation) {
            return;
        }
        let why = match &reason {
            ExitReason::Finished => return,
            ExitReason::Failed(e) => format!("failed: {e}"),
            ExitReason::Panicked => "panicked".to_owned(),
        };
        let Some(mut slot) = self.consumers.remove(&shard) else { return };
        if self.shutting_down || !slot.lease.deadline.is_valid() {
            return;
        }
        let delay = slot.backoff.next_delay();
        self.count_restart("ShardConsumer");
        log::warn!(
            "observer {}: the consumer of shard {shard} {why}; restarting it from its latest checkpoint in {} ms (restart {})",
            self.id(),
            delay.as_millis(),
            slot.backoff.failures()
        );
        ctx.run_later(delay, move |act, ctx| act.restart_consumer(slot, ctx));
    }

    /// Starts a consumer again from the latest watermark the Checkpointer knows for its tenure.
    fn restart_consumer(&mut self, slot: ConsumerSlot, ctx: &mut Context<Self>) {
        let Some(core) = &self.core else { return };
        let request =
            core.checkpointer.send(LatestCheckpoint { shard: slot.lease.shard.clone(), tenure: slot.lease.tenure });
        ctx.spawn(request.into_actor(self).map(move |latest, act, ctx| {
            let mut lease = slot.lease.clone();
            if let Ok(Some(cp)) = latest {
                lease.checkpoint = cp;
            }
            if act.consumers.contains_key(&lease.shard) {
                return;
            }
            act.start_consumer(lease, slot.backoff, ctx);
        }));
    }

    /// Graceful handoff of one lease: no more reads, the commands in flight finish (up to
    /// `shutdownTimeoutMillis`), the final checkpoint is written, then the lease is released
    /// for the worker that asked. Nothing is actioned twice.
    pub(super) fn hand_over(&mut self, shard: Arc<str>, tenure: Tenure, by: String, ctx: &mut Context<Self>) {
        let Some(core) = &self.core else { return };
        let consumer =
            self.consumers.get(&shard).filter(|s| s.lease.tenure == tenure).map(|s| (s.addr.clone(), s.incarnation));
        let (checkpointer, lease_manager) = (core.checkpointer.clone(), core.lease_manager.clone());
        let timeouts = self.step_timeouts();
        let id = self.id().to_owned();
        let started = Instant::now();
        let s = shard.clone();
        let fut = async move {
            let incarnation = match consumer {
                Some((addr, incarnation)) => {
                    if tokio::time::timeout(timeouts.drain, addr.send(Drain)).await.is_err() {
                        log::warn!(
                            "observer {id}: shard {s}: commands still in flight after {} ms; handing over what is done",
                            timeouts.drain.as_millis()
                        );
                    }
                    // Nothing more is dispatched or retried from here on: what the checkpoint
                    // below does not cover, the next owner actions (once).
                    let _ = addr.send(Freeze).await;
                    Some(incarnation)
                }
                None => None,
            };
            let flush = checkpointer.send(FlushShard { shard: s.clone(), tenure });
            let _ = tokio::time::timeout(timeouts.final_writes, flush).await;
            let released = lease_manager.send(Release { shard: s, tenure }).await.unwrap_or(false);
            (incarnation, released)
        };
        ctx.spawn(fut.into_actor(self).map(move |(incarnation, released), act, _| {
            if let Some(slot) = act.consumers.get(&shard)
                && Some(slot.incarnation) == incarnation
            {
                slot.addr.do_send(Stop);
                act.consumers.remove(&shard);
            }
            log::info!(
                "observer {}: shard {shard} handed over to {by} in {} ms ({})",
                act.id(),
                started.elapsed().as_millis(),
                if released { "released" } else { "release failed: it will expire" }
            );
        }));
    }
}
