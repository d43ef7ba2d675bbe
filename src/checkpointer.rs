//! `Checkpointer`: collects each shard's "every record up to S has an outcome" and turns it into
//! at most one lease-table write per shard per checkpoint interval — plus one at shard end, on
//! release and on shutdown — never one per record.
//!
//! A refused write (the lease is gone) is not retried: the LeaseManager has already told the
//! Supervisor, which stops that shard's consumer. A transient failure is retried at the next
//! interval with whatever the watermark is by then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;

use crate::lease_manager::lease::Checkpoint;
use crate::lease_manager::shard_sync::ShardInfo;
use crate::lease_manager::{EndShard, LeaseError, LeaseManager, WriteCheckpoint};
use crate::metrics::{MetricsHandle, Scope};
use crate::supervision::ExitGuard;

/// Every record of `shard` up to `checkpoint` has an outcome (from its ShardConsumer).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Progress {
    pub shard: Arc<str>,
    pub tenure: u64,
    pub checkpoint: Checkpoint,
}

/// The shard is closed and every record has an outcome: write SHARD_END (with child leases).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), LeaseError>")]
pub struct ShardEnded {
    pub shard: Arc<str>,
    pub tenure: u64,
    pub children: Vec<ShardInfo>,
}

/// Write the latest watermark of one shard now (before its lease is released).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FlushShard {
    pub shard: Arc<str>,
    pub tenure: u64,
}

/// Write every shard's latest watermark now (shutdown).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct FlushAll;

/// Drop a shard (its lease is gone): its progress must not be written any more.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Forget {
    pub shard: Arc<str>,
}

/// The latest watermark known for a shard in a tenure (written or not): where a restarted
/// consumer resumes.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<Checkpoint>")]
pub struct LatestCheckpoint {
    pub shard: Arc<str>,
    pub tenure: u64,
}

/// Asks for a snapshot.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CheckpointerSnapshot")]
pub struct ObserveCheckpointer;

/// One shard, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCheckpointSnapshot {
    pub tenure: u64,
    pub latest: Option<String>,
    pub written: Option<String>,
    pub writes: u64,
    /// Shortest time between two interval writes of this shard (shard end, release and
    /// shutdown writes excluded), to check the one-write-per-interval bound.
    pub min_gap_ms: Option<u128>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointerSnapshot {
    pub shards: BTreeMap<String, ShardCheckpointSnapshot>,
    pub writes: u64,
    pub refused: u64,
    pub interval_ms: u128,
    pub mailbox_capacity: usize,
}

#[derive(Debug)]
struct ShardState {
    tenure: u64,
    latest: Option<Checkpoint>,
    written: Option<Checkpoint>,
    last_write: Option<Instant>,
    in_flight: bool,
    scheduled: bool,
    writes: u64,
    min_gap: Option<Duration>,
    /// Flushes (release, shutdown) waiting until the latest watermark is written.
    flush_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl ShardState {
    fn new(tenure: u64) -> Self {
        ShardState {
            tenure,
            latest: None,
            written: None,
            last_write: None,
            in_flight: false,
            scheduled: false,
            writes: 0,
            min_gap: None,
            flush_waiters: vec![],
        }
    }

    fn dirty(&self) -> bool {
        self.latest.is_some() && self.latest != self.written
    }
}

pub struct Checkpointer {
    interval: Duration,
    mailbox: usize,
    lease_manager: Addr<LeaseManager>,
    metrics: MetricsHandle,
    shards: BTreeMap<Arc<str>, ShardState>,
    writes: u64,
    refused: u64,
    _exit: ExitGuard,
}

impl Checkpointer {
    pub fn new(
        interval: Duration,
        mailbox: usize,
        lease_manager: Addr<LeaseManager>,
        metrics: MetricsHandle,
        exit: ExitGuard,
    ) -> Self {
        Checkpointer {
            interval,
            mailbox,
            lease_manager,
            metrics,
            shards: BTreeMap::new(),
            writes: 0,
            refused: 0,
            _exit: exit,
        }
    }

    /// Drives one shard: writes its watermark if it moved and the interval allows (at once if
    /// a flush waits), otherwise makes sure a write is scheduled for when the interval is up.
    /// One write per shard at a time; each completion pumps again.
    fn pump(&mut self, shard: &Arc<str>, ctx: &mut Context<Self>) {
        let interval = self.interval;
        let Some(st) = self.shards.get_mut(shard) else { return };
        if st.in_flight {
            return;
        }
        if !st.dirty() {
            for w in st.flush_waiters.drain(..) {
                let _ = w.send(());
            }
            return;
        }
        let urgent = !st.flush_waiters.is_empty();
        let wait = st.last_write.map(|t| interval.saturating_sub(t.elapsed())).unwrap_or_default();
        if !urgent && !wait.is_zero() {
            if !st.scheduled {
                st.scheduled = true;
                let shard = shard.clone();
                ctx.run_later(wait, move |act, ctx| {
                    if let Some(st) = act.shards.get_mut(&shard) {
                        st.scheduled = false;
                    }
                    act.pump(&shard, ctx);
                });
            }
            return;
        }
        let Some(checkpoint) = st.latest.clone() else { return };
        st.in_flight = true;
        let tenure = st.tenure;
        let started = Instant::now();
        if !urgent {
            if let Some(prev) = st.last_write {
                let gap = started.duration_since(prev);
                st.min_gap = Some(st.min_gap.map_or(gap, |g| g.min(gap)));
            }
        }
        let request =
            self.lease_manager.send(WriteCheckpoint { shard: shard.clone(), tenure, checkpoint: checkpoint.clone() });
        let shard = shard.clone();
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            let result = result.unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string())));
            let Some(st) = act.shards.get_mut(&shard) else { return };
            if st.tenure != tenure {
                return;
            }
            st.in_flight = false;
            match result {
                Ok(()) => {
                    st.written = Some(checkpoint);
                    st.last_write = Some(started);
                    st.writes += 1;
                    act.writes += 1;
                    act.metrics.count("CheckpointWrites", "Checkpointer", Scope::Shard(shard.clone()), 1);
                    act.metrics.millis(
                        "CheckpointLatency",
                        "Checkpointer",
                        Scope::Shard(shard.clone()),
                        started.elapsed(),
                    );
                }
                Err(LeaseError::Transient(e)) => {
                    st.last_write = Some(started);
                    log::warn!("checkpoint of {shard} failed ({e}); retrying at the next interval");
                    // A flush does not wait for DynamoDB to recover: what is not written is read
                    // again by the shard's next owner.
                    for w in st.flush_waiters.drain(..) {
                        let _ = w.send(());
                    }
                }
                Err(e) => {
                    act.refused += 1;
                    log::warn!("checkpoint of {shard} refused: {e}");
                    if let Some(st) = act.shards.remove(&shard) {
                        for w in st.flush_waiters {
                            let _ = w.send(());
                        }
                    }
                    return;
                }
            }
            // More progress may have come in meanwhile.
            act.pump(&shard, ctx);
        }));
    }

    /// Resolves once the shard's latest watermark is written (or cannot be).
    fn flush(&mut self, shard: &Arc<str>, ctx: &mut Context<Self>) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(st) = self.shards.get_mut(shard) {
            st.flush_waiters.push(tx);
            self.pump(shard, ctx);
        }
        rx
    }
}

impl Actor for Checkpointer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Progress> for Checkpointer {
    type Result = ();

    fn handle(&mut self, p: Progress, ctx: &mut Self::Context) {
        let st = self.shards.entry(p.shard.clone()).or_insert_with(|| ShardState::new(p.tenure));
        if st.tenure != p.tenure {
            if p.tenure < st.tenure {
                // A consumer of an earlier tenure: refused here already.
                return;
            }
            *st = ShardState::new(p.tenure);
        }
        let backwards = st.latest.as_ref().is_some_and(|l| l.is_after(&p.checkpoint));
        if !backwards {
            st.latest = Some(p.checkpoint);
        }
        self.pump(&p.shard, ctx);
    }
}

impl Handler<ShardEnded> for Checkpointer {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: ShardEnded, _: &mut Self::Context) -> Self::Result {
        let lm = self.lease_manager.clone();
        self.shards.remove(&msg.shard);
        self.writes += 1;
        self.metrics.count("CheckpointWrites", "Checkpointer", Scope::Shard(msg.shard.clone()), 1);
        Box::pin(async move {
            lm.send(EndShard { shard: msg.shard, tenure: msg.tenure, children: msg.children })
                .await
                .unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string())))
        })
    }
}

impl Handler<FlushShard> for Checkpointer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: FlushShard, ctx: &mut Self::Context) -> Self::Result {
        let flushed =
            self.shards.get(&msg.shard).is_some_and(|s| s.tenure == msg.tenure).then(|| self.flush(&msg.shard, ctx));
        Box::pin(async move {
            if let Some(rx) = flushed {
                let _ = rx.await;
            }
        })
    }
}

impl Handler<FlushAll> for Checkpointer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: FlushAll, ctx: &mut Self::Context) -> Self::Result {
        let shards: Vec<Arc<str>> = self.shards.keys().cloned().collect();
        let flushed: Vec<_> = shards.iter().map(|s| self.flush(s, ctx)).collect();
        Box::pin(async move {
            futures::future::join_all(flushed).await;
        })
    }
}

impl Handler<Forget> for Checkpointer {
    type Result = ();

    fn handle(&mut self, msg: Forget, _: &mut Self::Context) {
        if let Some(st) = self.shards.remove(&msg.shard) {
            for w in st.flush_waiters {
                let _ = w.send(());
            }
        }
    }
}

impl Handler<LatestCheckpoint> for Checkpointer {
    type Result = Option<Checkpoint>;

    fn handle(&mut self, msg: LatestCheckpoint, _: &mut Self::Context) -> Option<Checkpoint> {
        self.shards.get(&msg.shard).filter(|s| s.tenure == msg.tenure).and_then(|s| s.latest.clone())
    }
}

impl Handler<ObserveCheckpointer> for Checkpointer {
    type Result = MessageResult<ObserveCheckpointer>;

    fn handle(&mut self, _: ObserveCheckpointer, ctx: &mut Self::Context) -> Self::Result {
        MessageResult(CheckpointerSnapshot {
            shards: self
                .shards
                .iter()
                .map(|(k, s)| {
                    (
                        k.to_string(),
                        ShardCheckpointSnapshot {
                            tenure: s.tenure,
                            latest: s.latest.as_ref().map(ToString::to_string),
                            written: s.written.as_ref().map(ToString::to_string),
                            writes: s.writes,
                            min_gap_ms: s.min_gap.map(|g| g.as_millis()),
                        },
                    )
                })
                .collect(),
            writes: self.writes,
            refused: self.refused,
            interval_ms: self.interval.as_millis(),
            mailbox_capacity: ctx.parts().capacity(),
        })
    }
}
