//! Records on their way to responders: admitted to the tracker in sequence order (the user
//! records of a KPL aggregate each with its sub-sequence number), sent when their partition key
//! is free and an in-flight place is, and completed when they have an outcome (which may let
//! the next command of the key go, the watermark move and a paused read resume).

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::Phase;
use super::actor::{Reader, ShardConsumer};
use super::claiming::{Arrived, Journey};
use super::outcomes::RecordOutcome;
use super::read_loop::Unparsed;
use crate::claims::{Claimer, Held};
use crate::command::{Classified, Command};
use crate::config::runtime::Ordering;
use crate::metrics::Operation;
use crate::model::{ExtendedSequenceNumber, Outcome};
use crate::parser_pool::Parsed;
use crate::responders::{Answers, CommandResult, Execute, ExecuteBatch, RouteIndex};

/// A command read and waiting for, or at, its responder.
pub(super) struct Pending {
    pub command: Arc<Command>,
    pub route: RouteIndex,
    pub record: Record,
    /// Times sent to its responder (sent again when a responder's actor stopped unanswered).
    pub attempts: u32,
    /// Someone else's claim it waits for, as last seen, and since when its claimer is gone.
    /// (This and `stale` are boxed: only dedup uses them, and a pending command is moved
    /// several times on its way, so each byte of it counts for every command.)
    pub claim_wait: Option<Box<(Held, Option<Instant>)>>,
    /// That claim, once its claimer is gone for `staleAfter`: taken over at the next try.
    pub stale: Option<Box<Held>>,
    pub claim_failures: u32,
}

/// What is kept of a record (a plain record, or one user record of a KPL aggregate) until it
/// has its outcome (cheap to clone).
#[derive(Clone)]
pub(super) struct Record {
    /// The Kinesis record's sequence number.
    pub seq: Arc<str>,
    /// The user record's index in its aggregate (`None`: a plain record).
    pub sub: Option<u64>,
    /// `S`, or `S/N` for user record N of the aggregate S: how logs, claims and the outcome
    /// log name it.
    pub label: Arc<str>,
    pub partition_key: Arc<str>,
    pub data: bytes::Bytes,
}

impl ShardConsumer {
    /// Adds a parsed Kinesis record: its command (or each user record's, for a KPL aggregate)
    /// waits for its responder, anything else has its outcome at once. What the checkpoint the
    /// shard was resumed from covers already is skipped.
    pub(super) fn admit(&mut self, unparsed: Unparsed, parsed: Parsed, ctx: &mut Context<Self>) {
        let Unparsed { seq, partition_key, data } = unparsed;
        let label: Arc<str> = Arc::from(seq.as_str());
        match parsed {
            Parsed::Record(class) => {
                let record =
                    Record { seq: label.clone(), sub: None, label, partition_key: Arc::from(partition_key), data };
                self.admit_one(ExtendedSequenceNumber::plain(seq), record, class, ctx);
            }
            Parsed::Aggregate(users) => {
                let mut admitted = 0;
                for (i, user) in (0u64..).zip(users) {
                    let record = Record {
                        seq: label.clone(),
                        sub: Some(i),
                        label: Arc::from(format!("{seq}/{i}")),
                        partition_key: Arc::from(user.partition_key),
                        data: user.data,
                    };
                    admitted +=
                        u64::from(self.admit_one(ExtendedSequenceNumber::new(seq.clone(), i), record, user.class, ctx));
                }
                self.state.counters.user_records += admitted;
                self.links.metrics.count("UserRecordsProcessed", Operation::ProcessTask, self.scope(), admitted);
            }
            Parsed::OutsideShard { user_records, reason } => {
                let last = ExtendedSequenceNumber::new(seq, (user_records as u64).saturating_sub(1));
                if self.covered_by_resume_checkpoint(&last) {
                    return;
                }
                let n = user_records as u64;
                self.state.counters.user_records_dropped += n;
                self.links.metrics.count("UserRecordsDropped", Operation::ProcessTask, self.scope(), n);
                // As the KCL: the KPL aggregates only user records of one shard, and puts an
                // aggregate that a stale shard map (a reshard) routed elsewhere again, where its
                // user records belong; an aggregator that mixes shards loses them.
                log::warn!(
                    "shard {}: KPL aggregate {} ({user_records} user records) dropped, as the KCL drops it: {reason}; only an aggregate of one shard's user records is processed (the KPL puts a mis-routed aggregate again where it belongs)",
                    self.shard(),
                    last.seq
                );
                self.state.tracker.admit_done(last);
            }
        }
    }

    /// Whether the checkpoint the shard was resumed from covers `pos` already: it was read again
    /// only because the shard resumes at the checkpoint's record (AT_SEQUENCE_NUMBER), for the
    /// user records after it in its aggregate.
    fn covered_by_resume_checkpoint(&mut self, pos: &ExtendedSequenceNumber) -> bool {
        let Some(floor) = &self.state.resume_floor else { return false };
        if pos <= floor {
            log::debug!("shard {}: {pos} is covered by the checkpoint {floor}; skipped", self.shard());
            return true;
        }
        if pos.seq > floor.seq {
            self.state.resume_floor = None;
        }
        false
    }

    /// Adds one classified (user) record at `pos`; false when the resume checkpoint covers it.
    fn admit_one(
        &mut self,
        pos: ExtendedSequenceNumber,
        record: Record,
        class: Classified,
        ctx: &mut Context<Self>,
    ) -> bool {
        if self.covered_by_resume_checkpoint(&pos) {
            return false;
        }
        let (outcome, reason) = match class {
            Classified::Routable { command, route } => {
                let key: Arc<str> = match self.settings.ordering {
                    Ordering::PartitionKey => record.partition_key.clone(),
                    Ordering::Shard => Arc::from(""),
                };
                let bytes = record.data.len();
                let pending =
                    Pending { command, route, record, attempts: 0, claim_wait: None, stale: None, claim_failures: 0 };
                self.state.tracker.admit(pos, key, pending, bytes);
                return true;
            }
            Classified::Invalid { ref reason, .. } => (Outcome::Invalid, reason.clone()),
            Classified::Unroutable { ref reason, .. } => (Outcome::Unroutable, reason.clone()),
            Classified::Expired { ref reason, .. } => (Outcome::Expired, reason.clone()),
        };
        let idx = self.state.tracker.admit_waiting(pos, record.data.len());
        let command_id = class.command_id();
        let end = RecordOutcome {
            outcome,
            command_id,
            responder: None,
            attempts: 0,
            detail: reason,
            possible_duplicate: false,
        };
        self.finish(idx, record, end, ctx);
        true
    }

    /// Sends every command whose turn it is — unless the fence is closed (frozen, stopping, or
    /// the lease lapsed; a lapsed lease is looked at again later, as the LeaseManager drops it).
    /// With dedup off, the commands of each route go in one batch.
    pub(super) fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.state.phase, Phase::Frozen | Phase::Finished) || self.state.dispatch_deferred {
            return;
        }
        if !self.fence.is_valid() {
            if !self.state.dispatch_recheck {
                self.state.dispatch_recheck = true;
                ctx.run_later(self.settings.lease_recheck_interval, |act, ctx| {
                    act.state.dispatch_recheck = false;
                    act.dispatch(ctx);
                });
            }
            return;
        }
        let mut batches: Vec<(RouteIndex, Vec<(u64, Pending)>)> = vec![];
        // A batch is made as big as all that may go now: growing it by doubling moved each
        // command ~2 more times (~500 instructions a command, README: Performance).
        let (most, mut batched) = (self.state.tracker.dispatchable(), 0);
        while let Some((idx, pending)) = self.state.tracker.next_dispatch() {
            if self.links.claims.is_some() {
                self.send(idx, pending, ctx);
                continue;
            }
            batched += 1;
            match batches.iter_mut().find(|(route, _)| *route == pending.route) {
                Some((_, batch)) => batch.push((idx, pending)),
                None => {
                    let mut batch = Vec::with_capacity(most.saturating_sub(batched - 1).max(1));
                    let route = pending.route;
                    batch.push((idx, pending));
                    batches.push((route, batch));
                }
            }
        }
        for (route, batch) in batches {
            self.send_batch(route, batch, ctx);
        }
    }

    /// Runs `f` (which may complete many records), then dispatches once and reports the
    /// outcomes counted once: what its completions let go leaves in one batch rather than one
    /// at a time, and their counts in one sample per kind.
    pub(super) fn dispatching_after(&mut self, ctx: &mut Context<Self>, f: impl FnOnce(&mut Self, &mut Context<Self>)) {
        let deferred = std::mem::replace(&mut self.state.dispatch_deferred, true);
        f(self, ctx);
        self.state.dispatch_deferred = deferred;
        self.dispatch(ctx);
        self.report_outcomes();
    }

    /// Sends a command on its way: with dedup on, on a journey of its own (claim, responder,
    /// claim finished) as a task; with dedup off, as a batch of one.
    pub(super) fn send(&mut self, idx: u64, mut pending: Pending, ctx: &mut Context<Self>) {
        if self.links.claims.is_none() {
            return self.send_batch(pending.route, vec![(idx, pending)], ctx);
        }
        let Some((responder_id, target)) = self.links.routes.get(pending.route) else {
            return self.unroutable(idx, pending, ctx);
        };
        if pending.claim_wait.is_none() {
            pending.attempts += 1;
        }
        let journey = Journey {
            // The claimer's strings are made only when dedup is on.
            claims: self.links.claims.clone().zip(self.settings.claims.clone()).map(|(store, timings)| {
                let claimer = Claimer {
                    owner: self.settings.worker_id.clone(),
                    tenure: self.lease.tenure.0,
                    shard: self.shard().to_string(),
                    sequence_number: pending.record.label.to_string(),
                };
                (store, timings, claimer)
            }),
            stale: pending.stale.take().map(|held| *held),
            recipient: target.one,
            execute: self.execute_of(&pending),
        };
        let me = ctx.address();
        actix::spawn(async move {
            let arrival = journey.run().await;
            me.do_send(Arrived { idx, pending, responder_id, arrival });
        });
    }

    /// Sends commands of one route to its responder in one message (dedup off: nothing to
    /// claim first). They wait for their answers among `at_responders`.
    fn send_batch(&mut self, route: RouteIndex, batch: Vec<(u64, Pending)>, ctx: &mut Context<Self>) {
        let Some((responder_id, target)) = self.links.routes.get(route) else {
            for (idx, pending) in batch {
                self.unroutable(idx, pending, ctx);
            }
            return;
        };
        let mut commands = Vec::with_capacity(batch.len());
        for (idx, mut pending) in batch {
            pending.attempts += 1;
            commands.push((idx, self.execute_of(&pending)));
            self.state.at_responders.insert(idx, (pending, responder_id.clone()));
        }
        let batch = ExecuteBatch { commands, answers: ctx.address().recipient() };
        match target.batch.try_send(batch) {
            Ok(()) => {}
            // The responder is behind: wait for room in its mailbox (meanwhile this shard's
            // in-flight bound fills, and its reading pauses).
            Err(SendError::Full(batch)) => {
                actix::spawn(async move {
                    let _ = target.batch.send(batch).await;
                });
            }
            // Its actor stopped: the batch, dropped here, answers each command with the
            // mailbox error, and each is sent again.
            Err(SendError::Closed(_)) => {}
        }
    }

    /// What the responder is sent for a command.
    fn execute_of(&self, pending: &Pending) -> Execute {
        Execute {
            command: pending.command.clone(),
            shard_id: self.shard().clone(),
            sequence_number: pending.record.label.clone(),
            fence: self.fence.clone(),
        }
    }

    /// A command whose route has no running responder.
    fn unroutable(&mut self, idx: u64, pending: Pending, ctx: &mut Context<Self>) {
        let end = RecordOutcome {
            outcome: Outcome::Unroutable,
            command_id: Some(pending.command.envelope.command_id),
            responder: None,
            attempts: 0,
            detail: "the responder of this route is not running".to_owned(),
            possible_duplicate: false,
        };
        self.finish(idx, pending.record, end, ctx);
    }

    /// What its responder answered for a command: its outcome, no outcome (abandoned), or no
    /// answer (its actor stopped first: sent again).
    pub(super) fn answered(
        &mut self,
        (idx, pending): (u64, Pending),
        responder_id: Arc<str>,
        result: Result<CommandResult, MailboxError>,
        possible_duplicate: bool,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(CommandResult::Ended { outcome, attempts, detail }) => {
                let end = RecordOutcome {
                    outcome,
                    command_id: Some(pending.command.envelope.command_id),
                    responder: Some(responder_id),
                    attempts,
                    detail,
                    possible_duplicate,
                };
                self.finish(idx, pending.record, end, ctx);
            }
            Ok(CommandResult::Abandoned { attempts, reason }) => self.abandoned(idx, &pending, attempts, &reason),
            Err(e) => self.no_answer(idx, pending, &responder_id, e, ctx),
        }
    }

    /// The responder's actor stopped without an answer (it is being restarted): send again,
    /// behind the same route (and under the same claim).
    pub(super) fn no_answer(
        &mut self,
        idx: u64,
        pending: Pending,
        responder_id: &str,
        e: MailboxError,
        ctx: &mut Context<Self>,
    ) {
        if pending.attempts < self.settings.retry.max_attempts && self.fence.is_valid() {
            let delay = self.settings.retry.backoff().delay(pending.attempts);
            log::warn!(
                "shard {}: command {} got no answer from responder {responder_id} ({e}); sending again in {} ms",
                self.shard(),
                pending.command.envelope.command_id,
                delay.as_millis()
            );
            ctx.run_later(delay, move |act, ctx| act.send(idx, pending, ctx));
            return;
        }
        let detail = format!("responder {responder_id} gave no answer: {e}");
        let end = RecordOutcome {
            outcome: Outcome::Failed,
            command_id: Some(pending.command.envelope.command_id),
            responder: Some(Arc::from(responder_id)),
            attempts: pending.attempts,
            detail,
            possible_duplicate: false,
        };
        self.finish(idx, pending.record, end, ctx);
    }

    /// A command came back without an outcome: it stays uncovered by the checkpoint (its key
    /// stays held), and the shard's next reader actions it.
    pub(super) fn abandoned(&mut self, idx: u64, pending: &Pending, attempts: u32, reason: &str) {
        self.state.tracker.abandon(idx);
        self.state.counters.abandoned += 1;
        log::info!(
            "shard {}: command {} (seq {}) abandoned after {attempts} attempt(s): {reason}",
            self.shard(),
            pending.command.envelope.command_id,
            pending.record.label
        );
        if self.state.phase == Phase::Draining && self.settled() {
            self.drained();
        }
    }

    /// A record has its final outcome (logged, counted, dead-lettered as configured).
    pub(super) fn complete(&mut self, idx: u64, ctx: &mut Context<Self>) {
        self.state.tracker.complete(idx);
        self.dispatch(ctx);
        if self.state.reader == Reader::Paused && self.state.tracker.wants_more() {
            self.state.reader = Reader::Idle;
            self.fetch(ctx);
        }
        if self.state.tracker.all_done() && self.state.phase == Phase::Closing {
            self.check_end(ctx);
        }
        if self.state.phase == Phase::Draining && self.settled() {
            self.drained();
        }
    }
}

impl Handler<Answers> for ShardConsumer {
    type Result = ();

    /// Answers to the batches sent: each command that ended, handled together.
    fn handle(&mut self, msg: Answers, ctx: &mut Self::Context) {
        self.dispatching_after(ctx, |act, ctx| {
            for (idx, result) in msg.0 {
                // Not among them: answered already (a batch's answers come once each).
                let Some((pending, responder_id)) = act.state.at_responders.remove(&idx) else { continue };
                act.answered((idx, pending), responder_id, result, false, ctx);
            }
        });
    }
}
