//! The ShardConsumer actor: its state, its life (parents, start, drain, shard end, stop) and
//! the messages it answers. Reading is in `read_loop`, records' way to their responders in
//! `dispatch`, how each ends in `outcomes`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use rustc_hash::FxHashMap;

use super::dispatch::Pending;
use super::tracker::Tracker;
use super::{
    ConsumerCounters, ConsumerLinks, ConsumerSettings, Drain, Freeze, InjectFailure, ParentFinished, Phase,
    ShardConsumerSnapshot,
};
use crate::checkpointer::{Progress, ShardEnded};
use crate::lease_manager::{AcquiredLease, LeaseError, ParentsFinished};
use crate::metrics::{Operation, Scope};
use crate::model::{Backoff, Checkpoint, ExtendedSequenceNumber, Fence, SequenceNumber, ShardInfo, Waiters};
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, ExitReason, stops_on_request};

/// Read errors back off from 200 ms to 10 s, with jitter: a throttled shard recovers within a
/// second or two, an outage is retried often enough to resume promptly once it ends, and the
/// shards of many workers hit by one fault do not retry in step (a subscription in use or over
/// the subscribe rate of once a second per shard likewise).
const READ_BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(10));

/// Progress is sent again after this long even if the watermark did not move, so a restarted
/// Checkpointer learns it.
pub(super) const PROGRESS_REFRESH: Duration = Duration::from_secs(5);

/// How often a shard held back by parents that cannot be read says so.
const PARENTS_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Where the read loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// No GetRecords out (one may be scheduled).
    Idle,
    /// A GetRecords is out, or its batch is not yet admitted (a batch waiting its turn has
    /// the next iterator: no other read may go out before it is taken in).
    Fetching,
    /// Paused on the in-flight bound; completions resume it.
    Paused,
}

/// The consumer's changing state, apart from its settings.
pub(super) struct State {
    pub phase: Phase,
    pub reader: Reader,
    pub iterator: Option<String>,
    /// The last record read (where a new iterator resumes after an expired one).
    pub last_read: Option<SequenceNumber>,
    /// The checkpoint the shard resumed from, until the records it covers are behind: the
    /// iterator starts at its record, and what of that record it covers is skipped.
    pub resume_floor: Option<ExtendedSequenceNumber>,
    pub tracker: Tracker<Pending>,
    /// User records per Kinesis record in the last batch (KPL aggregates hold many): how many
    /// records a read asks for within the in-flight bound.
    pub user_records_per_record: usize,
    /// Data bytes per Kinesis record in the last batch: how many records a read asks for
    /// within the byte bound.
    pub bytes_per_record: usize,
    /// Empty reads in a row (the idle wait doubles with each after the first).
    pub empty_reads: u32,
    /// The user records (estimated) and data bytes of the batch being classified: not yet
    /// admitted, so a read that goes out meanwhile leaves room for them.
    pub classifying: Option<(usize, usize)>,
    /// A batch read while the one before it was being classified: it waits its turn, since
    /// records are admitted in sequence order.
    pub next_batch: Option<super::read_loop::ReadBatch>,
    /// The children of the closed shard, from its last GetRecords.
    pub children: Vec<ShardInfo>,
    pub drain_waiters: Waiters,
    pub progress_sent: Option<ExtendedSequenceNumber>,
    pub progress_sent_at: Instant,
    pub read_backoff: Backoff,
    /// A look at a lapsed lease is scheduled for the dispatch (one at a time).
    pub dispatch_recheck: bool,
    /// Completions are being handled together: one dispatch follows them (not one each).
    pub dispatch_deferred: bool,
    /// Commands sent in batches, by ticket, until their responder answers (with the id of
    /// that responder).
    pub at_responders: FxHashMap<u64, (Pending, Arc<str>)>,
    /// When the last warning about unreadable parents was logged.
    pub parents_warned_at: Option<Instant>,
    pub millis_behind_latest: Option<i64>,
    /// The in-flight and pending counts last sampled, and when.
    pub levels_sampled: Option<(usize, usize, Instant)>,
    pub counters: ConsumerCounters,
    /// Outcomes counted and not yet sent to the metrics.
    pub unreported: UnreportedOutcomes,
    pub ticking: super::ticking::Ticking,
}

/// Outcomes not yet sent to the metrics (see `report_outcomes`).
#[derive(Debug, Default)]
pub(super) struct UnreportedOutcomes {
    /// In the order of [`crate::model::Outcome::ALL`].
    pub outcomes: [u64; 6],
    pub possible_duplicates: u64,
}

pub struct ShardConsumer {
    pub(super) settings: Arc<ConsumerSettings>,
    pub(super) links: ConsumerLinks,
    pub(super) lease: AcquiredLease,
    /// What every command of this consumer carries: closed when the consumer stops or
    /// freezes, so no command of it is attempted afterwards.
    pub(super) fence: Fence,
    pub(super) state: State,
    pub(super) exit: ExitGuard,
}

impl ShardConsumer {
    pub fn new(settings: Arc<ConsumerSettings>, links: ConsumerLinks, lease: AcquiredLease, exit: ExitGuard) -> Self {
        let tracker = Tracker::new(settings.max_in_flight).with_byte_bound(settings.max_in_flight_bytes);
        let fence = Fence::new(lease.deadline.clone());
        let resume_floor = match &lease.checkpoint {
            Checkpoint::Sequence(at) => Some(at.clone()),
            _ => None,
        };
        ShardConsumer {
            settings,
            links,
            lease,
            fence,
            state: State {
                phase: Phase::Starting,
                reader: Reader::Idle,
                iterator: None,
                last_read: None,
                resume_floor,
                tracker,
                user_records_per_record: 1,
                bytes_per_record: super::read_loop::ASSUMED_RECORD_BYTES,
                empty_reads: 0,
                classifying: None,
                next_batch: None,
                children: vec![],
                drain_waiters: Waiters::default(),
                progress_sent: None,
                progress_sent_at: Instant::now(),
                read_backoff: Backoff::new(READ_BACKOFF.0, READ_BACKOFF.1).jittered(),
                dispatch_recheck: false,
                dispatch_deferred: false,
                at_responders: FxHashMap::default(),
                parents_warned_at: None,
                millis_behind_latest: None,
                levels_sampled: None,
                counters: ConsumerCounters::default(),
                unreported: UnreportedOutcomes::default(),
                ticking: Default::default(),
            },
            exit,
        }
    }

    pub(super) fn shard(&self) -> &Arc<str> {
        &self.lease.shard
    }

    pub(super) fn scope(&self) -> Scope {
        Scope::Shard(self.lease.shard.clone())
    }

    fn check_parents(&mut self, ctx: &mut Context<Self>) {
        if self.state.phase != Phase::WaitingOnParents {
            return;
        }
        let request = self.links.parents.send(ParentsFinished(self.lease.parents.clone()));
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| {
            if act.state.phase != Phase::WaitingOnParents {
                return;
            }
            match result {
                Ok(Ok(true)) => {
                    log::info!("shard {}: parents [{}] finished; starting", act.shard(), act.lease.parents.join(", "));
                    act.state.phase = Phase::Starting;
                    act.initialize(ctx);
                }
                other => {
                    if let Ok(Err(e)) = other {
                        // A parent whose lease cannot be read (a malformed row, a table that
                        // does not answer) holds this shard back: said, but not at every poll.
                        let quiet = act.state.parents_warned_at.is_some_and(|t| t.elapsed() < PARENTS_WARNING_EVERY);
                        if !quiet {
                            log::warn!(
                                "shard {}: cannot tell whether its parents [{}] are finished ({e}); waiting",
                                act.shard(),
                                act.lease.parents.join(", ")
                            );
                            act.state.parents_warned_at = Some(Instant::now());
                        }
                    }
                    ctx.run_later(act.settings.parent_poll_interval, |act, ctx| act.check_parents(ctx));
                }
            }
        }));
    }

    /// Tells the Checkpointer the watermark, if it moved (or every few seconds regardless, so a
    /// restarted Checkpointer learns it again).
    /// Sends the watermark to the Checkpointer when it moved (or `force`, or after
    /// [`PROGRESS_REFRESH`]); true when it had moved.
    pub(super) fn send_progress(&mut self, force: bool) -> bool {
        let Some(w) = self.state.tracker.watermark().cloned() else { return false };
        let moved = self.state.progress_sent.as_ref() != Some(&w);
        if !(moved || force || self.state.progress_sent_at.elapsed() >= PROGRESS_REFRESH) {
            return false;
        }
        self.links.progress.do_send(Progress {
            shard: self.shard().clone(),
            tenure: self.lease.tenure,
            checkpoint: Checkpoint::Sequence(w.clone()),
        });
        self.state.progress_sent = Some(w);
        self.state.progress_sent_at = Instant::now();
        moved
    }

    /// The commands at responders and the records without an outcome, for Prometheus's gauges:
    /// when they changed, and every few seconds regardless (so a restarted Metrics learns them).
    /// True when they had changed.
    pub(super) fn sample_levels(&mut self) -> bool {
        let (in_flight, pending) = (self.state.tracker.in_flight(), self.state.tracker.not_done());
        let (same, fresh) = match self.state.levels_sampled {
            Some((f, p, at)) => ((f, p) == (in_flight, pending), at.elapsed() < PROGRESS_REFRESH),
            None => (false, false),
        };
        if same && fresh {
            return false;
        }
        let m = &self.links.metrics;
        m.gauge("CommandsInFlight", Operation::ProcessTask, self.scope(), in_flight as f64);
        m.gauge("RecordsPending", Operation::ProcessTask, self.scope(), pending as f64);
        self.state.levels_sampled = Some((in_flight, pending, Instant::now()));
        !same
    }

    /// At the end of a closed shard with every record done: SHARD_END, then stop.
    pub(super) fn check_end(&mut self, ctx: &mut Context<Self>) {
        if !self.state.tracker.all_done() {
            return;
        }
        match self.state.phase {
            Phase::Draining => return self.drained(),
            Phase::Closing => {}
            _ => return,
        }
        self.state.phase = Phase::WritingShardEnd;
        self.send_progress(true);
        let request = self.links.shard_ended.send(ShardEnded {
            shard: self.shard().clone(),
            tenure: self.lease.tenure,
            children: self.state.children.clone(),
        });
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| {
            match result.unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string()))) {
                Ok(()) => {
                    act.state.phase = Phase::Finished;
                    ctx.stop();
                }
                // Refused: the lease is not this consumer's to end. The Supervisor restarts the
                // consumer if the lease is still held (then it ends the shard again), and leaves
                // it to the next owner otherwise; the shard's children wait in either case.
                Err(e @ (LeaseError::Lost { .. } | LeaseError::NotHeld(_))) => {
                    act.exit.set_reason(ExitReason::Failed(format!("the SHARD_END checkpoint was refused: {e}")));
                    ctx.stop();
                }
                Err(LeaseError::Transient(e)) => {
                    if act.state.phase == Phase::Draining {
                        return act.drained();
                    }
                    act.state.phase = Phase::Closing;
                    let delay = act.state.read_backoff.next_delay();
                    log::warn!(
                        "shard {}: SHARD_END checkpoint failed ({e}); retrying in {} ms",
                        act.shard(),
                        delay.as_millis()
                    );
                    ctx.run_later(delay, |act, ctx| act.check_end(ctx));
                }
            }
        }));
    }

    /// Every record read has its outcome after a drain (or nothing more can happen to them: the
    /// fence closed and no command is at a responder): report the final progress.
    pub(super) fn drained(&mut self) {
        self.send_progress(true);
        self.state.drain_waiters.wake_all();
    }

    /// Nothing more will happen to the records read: each has an outcome, or the fence closed
    /// and none is at a responder any more.
    pub(super) fn settled(&self) -> bool {
        self.state.tracker.all_done() || (!self.fence.is_valid() && self.state.tracker.in_flight() == 0)
    }
}

impl Actor for ShardConsumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.mailbox);
        // Progress goes to the Checkpointer a few times per checkpoint interval (the
        // Checkpointer decides when to write), and every few seconds once the shard is idle.
        self.start_ticking(ctx);
        if self.lease.parents.is_empty() {
            self.initialize(ctx);
        } else {
            self.state.phase = Phase::WaitingOnParents;
            log::info!("shard {}: waiting for parents [{}]", self.shard(), self.lease.parents.join(", "));
            self.check_parents(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Its commands still at responders are not attempted again: a successor (or the next
        // owner) reads them from the checkpoint.
        self.fence.close();
        self.report_outcomes();
        // A consumer that fails hands its last watermark over, so its successor starts there
        // (refused harmlessly if the lease is gone).
        self.send_progress(true);
        self.state.drain_waiters.wake_all();
    }
}

impl Handler<ParentFinished> for ShardConsumer {
    type Result = ();

    fn handle(&mut self, msg: ParentFinished, ctx: &mut Self::Context) {
        if self.state.phase == Phase::WaitingOnParents && self.lease.parents.iter().any(|p| **p == *msg.0) {
            self.check_parents(ctx);
        }
    }
}

impl Handler<Drain> for ShardConsumer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        let done = self.state.drain_waiters.wait();
        if !matches!(self.state.phase, Phase::Finished | Phase::Frozen) {
            self.state.phase = Phase::Draining;
        }
        if self.settled() || self.state.phase == Phase::Frozen {
            self.drained();
        }
        Box::pin(async move {
            let _ = done.await;
        })
    }
}

impl Handler<Freeze> for ShardConsumer {
    type Result = ();

    fn handle(&mut self, _: Freeze, _: &mut Self::Context) {
        if self.state.phase != Phase::Finished {
            self.state.phase = Phase::Frozen;
        }
        self.fence.close();
        // The progress goes out before this answer, so it reaches the Checkpointer before the
        // flush the answer lets the Supervisor send.
        self.drained();
    }
}

// Stopped when its lease is gone (no checkpoint), after a handoff, or with its observer.
stops_on_request!(ShardConsumer);

impl Handler<InjectFailure> for ShardConsumer {
    type Result = ();

    fn handle(&mut self, msg: InjectFailure, ctx: &mut Self::Context) {
        if msg.panic {
            panic!("injected panic in the consumer of shard {}", self.shard());
        }
        self.exit.set_reason(ExitReason::Failed("injected failure".into()));
        ctx.stop();
    }
}

impl Observable for ShardConsumer {
    type Snapshot = ShardConsumerSnapshot;

    fn snapshot(&self, ctx: &mut Self::Context) -> ShardConsumerSnapshot {
        let s = &self.state;
        ShardConsumerSnapshot {
            shard: self.shard().to_string(),
            tenure: self.lease.tenure,
            phase: s.phase,
            counters: s.counters,
            not_done: s.tracker.not_done(),
            not_done_bytes: s.tracker.bytes(),
            in_flight: s.tracker.in_flight(),
            watermark: s.tracker.watermark().map(ToString::to_string),
            millis_behind_latest: s.millis_behind_latest,
            mailbox_capacity: ctx.parts().capacity(),
        }
    }
}

answers_observe!(ShardConsumer);
