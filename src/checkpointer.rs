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

use crate::lease_manager::{EndShard, LeaseError, WriteCheckpoint};
use crate::metrics::{MetricsHandle, Operation, Scope};
use crate::model::{Checkpoint, ShardInfo, Tenure, Waiters};
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, stops_on_request};

/// Every record of `shard` up to `checkpoint` has an outcome (from its ShardConsumer).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Progress {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    pub checkpoint: Checkpoint,
}

/// The shard is closed and every record has an outcome: write SHARD_END (with child leases).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), LeaseError>")]
pub struct ShardEnded {
    pub shard: Arc<str>,
    pub tenure: Tenure,
    pub children: Vec<ShardInfo>,
}

/// Write the latest watermark of one shard now (before its lease is released).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FlushShard {
    pub shard: Arc<str>,
    pub tenure: Tenure,
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
    pub tenure: Tenure,
}

/// One shard, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCheckpointSnapshot {
    pub tenure: Tenure,
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
    tenure: Tenure,
    latest: Option<Checkpoint>,
    written: Option<Checkpoint>,
    last_write: Option<Instant>,
    in_flight: bool,
    scheduled: bool,
    writes: u64,
    min_gap: Option<Duration>,
    /// Flushes (release, shutdown) waiting until the latest watermark is written.
    flush_waiters: Waiters,
}

impl ShardState {
    fn new(tenure: Tenure) -> Self {
        ShardState {
            tenure,
            latest: None,
            written: None,
            last_write: None,
            in_flight: false,
            scheduled: false,
            writes: 0,
            min_gap: None,
            flush_waiters: Waiters::default(),
        }
    }

    fn dirty(&self) -> bool {
        self.latest.is_some() && self.latest != self.written
    }
}

/// Where the Checkpointer's writes go (the LeaseManager, or a stand-in in a test).
#[derive(Clone)]
pub struct CheckpointWriter {
    pub checkpoint: Recipient<WriteCheckpoint>,
    pub end_shard: Recipient<EndShard>,
}

pub struct Checkpointer {
    interval: Duration,
    mailbox: usize,
    writer: CheckpointWriter,
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
        writer: CheckpointWriter,
        metrics: MetricsHandle,
        exit: ExitGuard,
    ) -> Self {
        Checkpointer { interval, mailbox, writer, metrics, shards: BTreeMap::new(), writes: 0, refused: 0, _exit: exit }
    }

    /// Writes a shard's watermark if it moved and the interval allows (at once if a flush
    /// waits); otherwise makes sure a write is scheduled for when the interval is up. One write
    /// per shard at a time; each completion looks again.
    fn write_if_due(&mut self, shard: &Arc<str>, ctx: &mut Context<Self>) {
        let interval = self.interval;
        let Some(st) = self.shards.get_mut(shard) else { return };
        if st.in_flight {
            return;
        }
        if !st.dirty() {
            st.flush_waiters.wake_all();
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
                    act.write_if_due(&shard, ctx);
                });
            }
            return;
        }
        let Some(checkpoint) = st.latest.clone() else { return };
        st.in_flight = true;
        let tenure = st.tenure;
        let started = Instant::now();
        if let (false, Some(prev)) = (urgent, st.last_write) {
            let gap = started.duration_since(prev);
            st.min_gap = Some(st.min_gap.map_or(gap, |g| g.min(gap)));
        }
        let request = self.writer.checkpoint.send(WriteCheckpoint {
            shard: shard.clone(),
            tenure,
            checkpoint: checkpoint.clone(),
        });
        let shard = shard.clone();
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            let result = result.unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string())));
            act.written(&shard, tenure, checkpoint, started, result, ctx);
        }));
    }

    /// The answer to a write of `checkpoint` sent at `started`.
    fn written(
        &mut self,
        shard: &Arc<str>,
        tenure: Tenure,
        checkpoint: Checkpoint,
        started: Instant,
        result: Result<(), LeaseError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(st) = self.shards.get_mut(shard) else { return };
        if st.tenure != tenure {
            return;
        }
        st.in_flight = false;
        match result {
            Ok(()) => {
                st.written = Some(checkpoint);
                st.last_write = Some(started);
                st.writes += 1;
                self.writes += 1;
                self.metrics.count("CheckpointWrites", Operation::Checkpointer, Scope::Shard(shard.clone()), 1);
                let latency = started.elapsed();
                self.metrics.millis("CheckpointLatency", Operation::Checkpointer, Scope::Shard(shard.clone()), latency);
            }
            Err(LeaseError::Transient(e)) => {
                st.last_write = Some(started);
                log::warn!("checkpoint of {shard} failed ({e}); retrying at the next interval");
                // A flush does not wait for DynamoDB to recover: what is not written is read
                // again by the shard's next owner.
                st.flush_waiters.wake_all();
            }
            Err(e) => {
                self.refused += 1;
                log::warn!("checkpoint of {shard} refused: {e}");
                if let Some(mut st) = self.shards.remove(shard) {
                    st.flush_waiters.wake_all();
                }
                return;
            }
        }
        // More progress may have come in meanwhile.
        self.write_if_due(shard, ctx);
    }

    /// Resolves once the shard's latest watermark is written (or cannot be).
    fn flush(&mut self, shard: &Arc<str>, ctx: &mut Context<Self>) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let rx = self.shards.get_mut(shard)?.flush_waiters.wait();
        self.write_if_due(shard, ctx);
        Some(rx)
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
        self.write_if_due(&p.shard, ctx);
    }
}

impl Handler<ShardEnded> for Checkpointer {
    type Result = ResponseFuture<Result<(), LeaseError>>;

    fn handle(&mut self, msg: ShardEnded, _: &mut Self::Context) -> Self::Result {
        let end_shard = self.writer.end_shard.clone();
        self.shards.remove(&msg.shard);
        self.writes += 1;
        self.metrics.count("CheckpointWrites", Operation::Checkpointer, Scope::Shard(msg.shard.clone()), 1);
        Box::pin(async move {
            end_shard
                .send(EndShard { shard: msg.shard, tenure: msg.tenure, children: msg.children })
                .await
                .unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string())))
        })
    }
}

impl Handler<FlushShard> for Checkpointer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: FlushShard, ctx: &mut Self::Context) -> Self::Result {
        let flushed = match self.shards.get(&msg.shard) {
            Some(s) if s.tenure == msg.tenure => self.flush(&msg.shard, ctx),
            _ => None,
        };
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
        let flushed: Vec<_> = shards.iter().filter_map(|s| self.flush(s, ctx)).collect();
        Box::pin(async move {
            futures::future::join_all(flushed).await;
        })
    }
}

impl Handler<Forget> for Checkpointer {
    type Result = ();

    fn handle(&mut self, msg: Forget, _: &mut Self::Context) {
        if let Some(mut st) = self.shards.remove(&msg.shard) {
            st.flush_waiters.wake_all();
        }
    }
}

impl Handler<LatestCheckpoint> for Checkpointer {
    type Result = Option<Checkpoint>;

    fn handle(&mut self, msg: LatestCheckpoint, _: &mut Self::Context) -> Option<Checkpoint> {
        self.shards.get(&msg.shard).filter(|s| s.tenure == msg.tenure).and_then(|s| s.latest.clone())
    }
}

impl Observable for Checkpointer {
    type Snapshot = CheckpointerSnapshot;

    fn snapshot(&self, ctx: &mut Self::Context) -> CheckpointerSnapshot {
        CheckpointerSnapshot {
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
        }
    }
}

answers_observe!(Checkpointer);
stops_on_request!(Checkpointer);

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::model::SequenceNumber;
    use crate::supervision::ChildId;

    /// Stands in for the LeaseManager: records each write and answers it after `delay`.
    struct SlowWriter {
        delay: Duration,
        writes: Arc<Mutex<Vec<(Checkpoint, Instant, Instant)>>>,
    }

    impl Actor for SlowWriter {
        type Context = Context<Self>;
    }

    impl Handler<WriteCheckpoint> for SlowWriter {
        type Result = ResponseFuture<Result<(), LeaseError>>;

        fn handle(&mut self, msg: WriteCheckpoint, _: &mut Self::Context) -> Self::Result {
            let (delay, writes) = (self.delay, self.writes.clone());
            Box::pin(async move {
                let sent = Instant::now();
                tokio::time::sleep(delay).await;
                writes.lock().expect("lock").push((msg.checkpoint, sent, Instant::now()));
                Ok(())
            })
        }
    }

    impl Handler<EndShard> for SlowWriter {
        type Result = Result<(), LeaseError>;

        fn handle(&mut self, _: EndShard, _: &mut Self::Context) -> Self::Result {
            Ok(())
        }
    }

    type Writes = Arc<Mutex<Vec<(Checkpoint, Instant, Instant)>>>;

    fn start(interval: Duration, delay: Duration) -> (Addr<Checkpointer>, Writes) {
        let writes = Arc::new(Mutex::new(vec![]));
        let writer = SlowWriter { delay, writes: writes.clone() }.start();
        let writer = CheckpointWriter { checkpoint: writer.clone().recipient(), end_shard: writer.recipient() };
        let exit = ExitGuard::detached(ChildId::Core { kind: "Checkpointer", generation: 1 });
        (Checkpointer::new(interval, 1024, writer, MetricsHandle::disabled(), exit).start(), writes)
    }

    fn at(n: u64) -> Checkpoint {
        Checkpoint::sequence(SequenceNumber::parse(&n.to_string()).expect("digits"))
    }

    fn progress(tenure: Tenure, n: u64) -> Progress {
        Progress { shard: Arc::from("shardId-000000000000"), tenure, checkpoint: at(n) }
    }

    #[actix_rt::test]
    async fn a_hundred_progress_reports_in_one_interval_are_one_write() {
        let interval = Duration::from_millis(400);
        let (cp, writes) = start(interval, Duration::ZERO);
        let tenure = Tenure::next();
        cp.send(progress(tenure, 0)).await.expect("sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(writes.lock().expect("lock").len(), 1, "the first report is written at once");
        for n in 1..=100 {
            cp.send(progress(tenure, n)).await.expect("sent");
        }
        assert_eq!(writes.lock().expect("lock").len(), 1, "nothing more within the interval");
        tokio::time::sleep(interval).await;
        let w = writes.lock().expect("lock").clone();
        assert_eq!(w.iter().map(|(c, _, _)| c.clone()).collect::<Vec<_>>(), [at(0), at(100)], "one write, the latest");
        assert!(w[1].1.duration_since(w[0].1) >= interval - Duration::from_millis(5), "one write per interval");
        let snapshot = crate::observe::observe(&cp).await.expect("snapshot");
        assert_eq!(snapshot.writes, 2);
    }

    #[actix_rt::test]
    async fn a_flush_waits_for_the_write_in_flight_and_writes_the_latest() {
        let delay = Duration::from_millis(300);
        let (cp, writes) = start(Duration::from_secs(60), delay);
        let tenure = Tenure::next();
        cp.send(progress(tenure, 1)).await.expect("sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Write 1 is in flight for 300 ms; 2 comes in; then the flush (before a release).
        cp.send(progress(tenure, 2)).await.expect("sent");
        let asked = Instant::now();
        cp.send(FlushShard { shard: Arc::from("shardId-000000000000"), tenure }).await.expect("flushed");
        let w = writes.lock().expect("lock").clone();
        assert_eq!(w.len(), 2, "the flush returned after both writes: {w:?}");
        assert_eq!(w[1].0, at(2), "the latest watermark is written, not only the one in flight");
        assert!(w[1].1 >= w[0].2, "the second write went out after the first was answered");
        assert!(asked.elapsed() >= delay, "the flush waited for the write in flight");
    }

    #[actix_rt::test]
    async fn an_earlier_tenure_is_not_written() {
        let (cp, writes) = start(Duration::from_millis(10), Duration::ZERO);
        let (old, new) = (Tenure::next(), Tenure::next());
        cp.send(progress(new, 5)).await.expect("sent");
        cp.send(progress(old, 9)).await.expect("sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let w: Vec<Checkpoint> = writes.lock().expect("lock").iter().map(|(c, _, _)| c.clone()).collect();
        assert_eq!(w, [at(5)]);
    }
}
