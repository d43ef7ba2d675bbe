//! `ShardConsumer`: one per held lease. Waits until the shard's parents are finished, reads the
//! shard from its checkpoint (or the initial position), has each batch classified on the parse
//! pool, sends every command to the responder of its type, and reports to the Checkpointer how
//! far every record has an outcome. At the end of a closed shard it asks for SHARD_END once the
//! last record has one.
//!
//! The read loop is a self-scheduled fetch: a full batch fetches again at once; otherwise it
//! waits `idleTimeBetweenReads` (the KCL's 1 s default keeps one consumer well inside the
//! 5 GetRecords/s/shard quota, which five consumers of a stream share). Reading pauses while
//! `maxInFlightPerShard` records are without an outcome: a slow responder slows the read, it
//! never grows a queue without bound.

pub mod tracker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::checkpointer::{Checkpointer, Progress, ShardEnded};
use crate::command::{Classified, Command};
use crate::config::runtime::{Ordering, RetryPolicy};
use crate::dead_letters::{DeadLetter, DeadLetters};
use crate::lease_manager::lease::{Checkpoint, SequenceNumber};
use crate::lease_manager::shard_sync::ShardInfo;
use crate::lease_manager::{HeldLeaseInfo, LeaseError, LeaseManager, ParentsFinished};
use crate::metrics::{MetricsHandle, Scope};
use crate::outcome::Outcome;
use crate::outcome_log::{OutcomeLog, OutcomeRow};
use crate::parser_pool::{ParseBatch, ParseWorker};
use crate::responders::{CommandResult, Execute};
use crate::supervision::{ExitGuard, ExitReason};
use tracker::Tracker;

/// A responder as the consumers see it: its id and its address.
#[derive(Clone)]
pub struct Route {
    pub responder_id: Arc<str>,
    pub recipient: Recipient<Execute>,
}

/// The fixed settings of every consumer of an observer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream_name: String,
    pub max_records: i32,
    pub idle_time: Duration,
    pub max_in_flight: usize,
    pub ordering: Ordering,
    /// The instant of an AT_TIMESTAMP initial position.
    pub at_timestamp: Option<DateTime<Utc>>,
    pub parent_poll_interval: Duration,
    pub checkpoint_interval: Duration,
    /// Used for re-sending a command whose responder mailbox failed.
    pub retry: RetryPolicy,
    pub mailbox: usize,
    /// The observer's id (for dead letters and the outcome log).
    pub observer_id: String,
    /// Which outcomes are dead-lettered (empty: none).
    pub dead_letter_outcomes: Vec<Outcome>,
}

/// The addresses a consumer talks to.
#[derive(Clone)]
pub struct ConsumerLinks {
    pub kinesis: aws_sdk_kinesis::Client,
    pub parser: Addr<ParseWorker>,
    pub routes: Arc<Vec<Route>>,
    pub checkpointer: Addr<Checkpointer>,
    pub lease_manager: Addr<LeaseManager>,
    pub metrics: MetricsHandle,
    pub dead_letters: Option<Addr<DeadLetters>>,
    pub outcome_log: Option<Addr<OutcomeLog>>,
}

/// Where a consumer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A parent shard still has records without an outcome somewhere.
    WaitingOnParents,
    /// Getting a shard iterator.
    Initializing,
    Processing,
    /// The shard is closed: finishing its last records, then SHARD_END.
    Ending,
    /// Shutdown: no more reads, finishing what is in flight.
    Draining,
    Finished,
}

/// A parent of some shard has ended (so a consumer waiting on it may start).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ParentFinished(pub Arc<str>);

/// Stop reading, finish the commands in flight, report the final progress. Answers when done.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Stop now (the lease is gone): no checkpoint.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct StopConsumer;

/// Fails the consumer on purpose (tests of supervision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct InjectFailure {
    pub panic: bool,
}

/// Asks for a snapshot.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ShardConsumerSnapshot")]
pub struct ObserveConsumer;

/// What a consumer has done, for tests and operators.
#[derive(Debug, Clone)]
pub struct ShardConsumerSnapshot {
    pub shard: String,
    pub tenure: u64,
    pub phase: Phase,
    pub records_read: u64,
    pub bytes_read: u64,
    pub batches: u64,
    /// Outcomes in the order of [`Outcome::ALL`].
    pub outcomes: [u64; 5],
    pub not_done: usize,
    pub in_flight: usize,
    pub watermark: Option<String>,
    pub millis_behind_latest: Option<i64>,
    pub iterator_restarts: u64,
    pub throttles: u64,
    pub errors: u64,
    pub mailbox_capacity: usize,
}

/// A command read and waiting for, or at, its responder.
struct Pending {
    command: Arc<Command>,
    route: usize,
    record: Record,
    attempts: u32,
}

/// What is kept of a record until it has its outcome (cheap to clone).
#[derive(Clone)]
struct Record {
    seq: Arc<str>,
    partition_key: Arc<str>,
    data: Bytes,
}

/// The consumer's changing state, apart from its settings.
struct State {
    phase: Phase,
    iterator: Option<String>,
    /// The last record read (where a new iterator resumes after an expired one).
    last_read: Option<SequenceNumber>,
    tracker: Tracker<Pending>,
    fetching: bool,
    /// Reading paused on the in-flight bound; resumed by completions.
    blocked: bool,
    shard_closed: bool,
    children: Vec<ShardInfo>,
    ending: bool,
    drain_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    progress_sent: Option<SequenceNumber>,
    progress_sent_at: Instant,
    error_backoff: Duration,
    records_read: u64,
    bytes_read: u64,
    batches: u64,
    outcomes: [u64; 5],
    millis_behind_latest: Option<i64>,
    iterator_restarts: u64,
    throttles: u64,
    errors: u64,
}

pub struct ShardConsumer {
    settings: Arc<ConsumerSettings>,
    links: ConsumerLinks,
    lease: HeldLeaseInfo,
    state: State,
    exit: ExitGuard,
}

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl ShardConsumer {
    pub fn new(settings: Arc<ConsumerSettings>, links: ConsumerLinks, lease: HeldLeaseInfo, exit: ExitGuard) -> Self {
        let max_in_flight = settings.max_in_flight;
        ShardConsumer {
            settings,
            links,
            lease,
            state: State {
                phase: Phase::Initializing,
                iterator: None,
                last_read: None,
                tracker: Tracker::new(max_in_flight),
                fetching: false,
                blocked: false,
                shard_closed: false,
                children: vec![],
                ending: false,
                drain_waiters: vec![],
                progress_sent: None,
                progress_sent_at: Instant::now(),
                error_backoff: MIN_BACKOFF,
                records_read: 0,
                bytes_read: 0,
                batches: 0,
                outcomes: [0; 5],
                millis_behind_latest: None,
                iterator_restarts: 0,
                throttles: 0,
                errors: 0,
            },
            exit,
        }
    }

    fn shard(&self) -> &Arc<str> {
        &self.lease.shard
    }

    fn scope(&self) -> Scope {
        Scope::Shard(self.lease.shard.clone())
    }

    fn next_backoff(&mut self) -> Duration {
        let d = self.state.error_backoff;
        self.state.error_backoff = (d * 2).min(MAX_BACKOFF);
        d
    }

    fn check_parents(&mut self, ctx: &mut Context<Self>) {
        if self.state.phase != Phase::WaitingOnParents {
            return;
        }
        let request = self.links.lease_manager.send(ParentsFinished(self.lease.parents.clone()));
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| {
            if act.state.phase != Phase::WaitingOnParents {
                return;
            }
            match result {
                Ok(Ok(true)) => {
                    log::info!("shard {}: parents [{}] finished; starting", act.shard(), act.lease.parents.join(", "));
                    act.state.phase = Phase::Initializing;
                    act.initialize(ctx);
                }
                other => {
                    if let Ok(Err(e)) = other {
                        log::debug!("shard {}: parent check failed ({e})", act.shard());
                    }
                    ctx.run_later(act.settings.parent_poll_interval, |act, ctx| act.check_parents(ctx));
                }
            }
        }));
    }

    /// Gets a shard iterator: after the last record read, else from the checkpoint.
    fn initialize(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.state.phase, Phase::Initializing | Phase::Processing) {
            return;
        }
        let mut req =
            self.links.kinesis.get_shard_iterator().stream_name(&self.settings.stream_name).shard_id(&**self.shard());
        let start = match &self.state.last_read {
            Some(seq) => Checkpoint::Sequence(seq.clone()),
            None => self.lease.checkpoint.clone(),
        };
        req = match &start {
            Checkpoint::Sequence(seq) => {
                req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(seq.as_str())
            }
            Checkpoint::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Checkpoint::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            Checkpoint::AtTimestamp => {
                let ms = self.settings.at_timestamp.map(|t| t.timestamp_millis()).unwrap_or(0);
                req.shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(aws_smithy_types::DateTime::from_millis(ms))
            }
            Checkpoint::ShardEnd => {
                self.state.shard_closed = true;
                self.state.phase = Phase::Ending;
                self.check_end(ctx);
                return;
            }
        };
        ctx.spawn(req.send().into_actor(self).map(move |result, act, ctx| match result {
            Ok(out) => {
                act.state.error_backoff = MIN_BACKOFF;
                act.state.iterator = out.shard_iterator;
                if act.state.phase == Phase::Initializing {
                    log::info!("shard {}: reading from {start}", act.shard());
                    act.state.phase = Phase::Processing;
                }
                if act.state.iterator.is_none() {
                    act.state.shard_closed = true;
                    act.check_end(ctx);
                } else {
                    act.fetch(ctx);
                }
            }
            Err(e) => {
                act.state.errors += 1;
                let delay = act.next_backoff();
                log::warn!(
                    "shard {}: GetShardIterator failed ({}); retrying in {} ms",
                    act.shard(),
                    aws_sdk_kinesis::error::DisplayErrorContext(&e),
                    delay.as_millis()
                );
                act.links.metrics.count("GetShardIterator.Error", "ProcessTask", act.scope(), 1);
                ctx.run_later(delay, |act, ctx| act.initialize(ctx));
            }
        }));
    }

    fn fetch(&mut self, ctx: &mut Context<Self>) {
        if self.state.phase != Phase::Processing || self.state.fetching || self.state.shard_closed {
            return;
        }
        let Some(iterator) = self.state.iterator.clone() else {
            return;
        };
        if !self.state.tracker.wants_more() {
            self.state.blocked = true;
            return;
        }
        if !self.lease.deadline.is_valid() {
            // The lease lapsed (this worker could not renew it): the LeaseManager is telling the
            // Supervisor; read nothing more meanwhile.
            return;
        }
        self.state.blocked = false;
        self.state.fetching = true;
        let started = Instant::now();
        let request = self.links.kinesis.get_records().shard_iterator(iterator).limit(self.settings.max_records).send();
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            act.links.metrics.millis("GetRecords.Time", "ProcessTask", act.scope(), started.elapsed());
            match result {
                Ok(out) => act.on_records(out, ctx),
                Err(e) => act.on_fetch_error(e, ctx),
            }
        }));
    }

    fn on_fetch_error(
        &mut self,
        e: aws_sdk_kinesis::error::SdkError<aws_sdk_kinesis::operation::get_records::GetRecordsError>,
        ctx: &mut Context<Self>,
    ) {
        self.state.fetching = false;
        let service = e.as_service_error();
        if service.is_some_and(|s| s.is_expired_iterator_exception()) {
            // Iterators live 5 minutes: restart after the last record read.
            self.state.iterator_restarts += 1;
            self.links.metrics.count("ExpiredIterator", "ProcessTask", self.scope(), 1);
            log::info!("shard {}: shard iterator expired; getting a new one", self.shard());
            self.initialize(ctx);
            return;
        }
        let throttled = service
            .is_some_and(|s| s.is_provisioned_throughput_exceeded_exception() || s.is_kms_throttling_exception());
        let delay = self.next_backoff();
        if throttled {
            self.state.throttles += 1;
            self.links.metrics.count("GetRecords.Throttled", "ProcessTask", self.scope(), 1);
            log::warn!("shard {}: GetRecords throttled; backing off {} ms", self.shard(), delay.as_millis());
        } else {
            self.state.errors += 1;
            self.links.metrics.count("GetRecords.Error", "ProcessTask", self.scope(), 1);
            log::warn!(
                "shard {}: GetRecords failed ({}); retrying in {} ms",
                self.shard(),
                aws_sdk_kinesis::error::DisplayErrorContext(&e),
                delay.as_millis()
            );
            if service.is_some_and(|s| s.is_invalid_argument_exception()) {
                ctx.run_later(delay, |act, ctx| act.initialize(ctx));
                return;
            }
        }
        ctx.run_later(delay, |act, ctx| act.fetch(ctx));
    }

    fn on_records(&mut self, out: aws_sdk_kinesis::operation::get_records::GetRecordsOutput, ctx: &mut Context<Self>) {
        if self.discarding() {
            return;
        }
        self.state.error_backoff = MIN_BACKOFF;
        self.state.batches += 1;
        if let Some(ms) = out.millis_behind_latest {
            self.state.millis_behind_latest = Some(ms);
            self.links.metrics.record(
                "MillisBehindLatest",
                "ProcessTask",
                self.scope(),
                crate::metrics::Unit::Milliseconds,
                ms as f64,
            );
        }
        let next = out.next_shard_iterator;
        let children: Vec<ShardInfo> = out
            .child_shards
            .unwrap_or_default()
            .into_iter()
            .map(|c| ShardInfo {
                starting_hash_key: c.hash_key_range().map(|r| r.starting_hash_key().to_owned()).unwrap_or_default(),
                ending_hash_key: c.hash_key_range().map(|r| r.ending_hash_key().to_owned()).unwrap_or_default(),
                id: c.shard_id,
                parents: c.parent_shards,
                closed: false,
            })
            .collect();
        let records = out.records;
        let full = records.len() >= self.settings.max_records as usize;
        let mut meta = Vec::with_capacity(records.len());
        let mut payloads = Vec::with_capacity(records.len());
        let mut bytes = 0u64;
        for r in records {
            let Some(seq) = SequenceNumber::parse(&r.sequence_number) else {
                log::error!(
                    "shard {}: skipping a record with a malformed sequence number {:?}",
                    self.shard(),
                    r.sequence_number
                );
                continue;
            };
            let data = Bytes::from(r.data.into_inner());
            bytes += data.len() as u64;
            meta.push((seq, r.partition_key.unwrap_or_default(), data.clone()));
            payloads.push(data);
        }
        self.state.records_read += meta.len() as u64;
        self.state.bytes_read += bytes;
        self.links.metrics.count("RecordsProcessed", "ProcessTask", self.scope(), meta.len() as u64);
        self.links.metrics.record(
            "DataBytesProcessed",
            "ProcessTask",
            self.scope(),
            crate::metrics::Unit::Bytes,
            bytes as f64,
        );
        if let Some((last, _, _)) = meta.last() {
            self.state.last_read = Some(last.clone());
        }
        let after = move |act: &mut Self, ctx: &mut Context<Self>| {
            act.state.fetching = false;
            match next {
                Some(it) => {
                    act.state.iterator = Some(it);
                    if full {
                        act.fetch(ctx);
                    } else {
                        ctx.run_later(act.settings.idle_time, |act, ctx| act.fetch(ctx));
                    }
                }
                None => {
                    act.state.iterator = None;
                    act.state.shard_closed = true;
                    act.state.children = children;
                    if act.state.phase == Phase::Processing {
                        act.state.phase = Phase::Ending;
                    }
                    log::info!("shard {}: end of the closed shard reached", act.shard());
                    act.check_end(ctx);
                }
            }
        };
        if payloads.is_empty() {
            after(self, ctx);
            return;
        }
        let parse = self.links.parser.send(ParseBatch(payloads));
        ctx.spawn(parse.into_actor(self).map(move |result, act, ctx| {
            if act.discarding() {
                return;
            }
            match result {
                Ok(classified) => {
                    for ((seq, key, data), class) in meta.into_iter().zip(classified) {
                        act.admit(seq, key, data, class, ctx);
                    }
                }
                Err(e) => {
                    // The parse pool is gone: the process is stopping. Nothing was admitted, so
                    // nothing is lost: the next owner reads these again.
                    act.exit.set_reason(ExitReason::Failed(format!("parse pool unavailable: {e}")));
                    ctx.stop();
                    return;
                }
            }
            act.dispatch(ctx);
            after(act, ctx);
        }));
    }

    /// A batch that arrives once draining started (a read that was already out) is dropped
    /// unread: nothing of it is checkpointed, so the shard's next owner reads it. Actioning it
    /// here, after the final checkpoint, would action it twice.
    fn discarding(&mut self) -> bool {
        if matches!(self.state.phase, Phase::Draining | Phase::Finished) {
            self.state.fetching = false;
            true
        } else {
            false
        }
    }

    fn admit(
        &mut self,
        seq: SequenceNumber,
        partition_key: String,
        data: Bytes,
        class: Classified,
        ctx: &mut Context<Self>,
    ) {
        let record = Record { seq: Arc::from(seq.as_str()), partition_key: Arc::from(partition_key), data };
        match class {
            Classified::Routable { command, route } => {
                let key: Arc<str> = match self.settings.ordering {
                    Ordering::PartitionKey => record.partition_key.clone(),
                    Ordering::Shard => Arc::from(""),
                };
                self.state.tracker.admit(seq, key, Pending { command, route, record, attempts: 0 });
            }
            other => {
                let (outcome, reason) = match &other {
                    Classified::Invalid { reason, .. } => (Outcome::Invalid, reason.clone()),
                    Classified::Unroutable { reason, .. } => (Outcome::Unroutable, reason.clone()),
                    Classified::Expired { reason, .. } => (Outcome::Expired, reason.clone()),
                    Classified::Routable { .. } => unreachable!("matched above"),
                };
                let idx = self.state.tracker.admit_waiting(seq);
                self.finish(idx, record, outcome, other.command_id(), None, 0, reason, ctx);
            }
        }
    }

    /// A record's outcome: logged (once), counted, written to the outcome log and, if so
    /// configured, dead-lettered; the record counts as done for the checkpoint only after
    /// that.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        idx: u64,
        record: Record,
        outcome: Outcome,
        command_id: Option<uuid::Uuid>,
        responder: Option<&str>,
        attempts: u32,
        detail: String,
        ctx: &mut Context<Self>,
    ) {
        self.record_outcome(outcome, &record.seq, command_id, responder, attempts, &detail);
        if let Some(log) = &self.links.outcome_log {
            let row = OutcomeRow {
                command_id: command_id.map(|u| u.to_string()),
                responder: responder.map(str::to_owned),
                status: outcome,
                description: detail.clone(),
                observer: self.settings.observer_id.clone(),
                shard: self.shard().to_string(),
                sequence_number: record.seq.to_string(),
                attempts,
                time: Utc::now(),
            };
            if log.try_send(row).is_err() {
                log::warn!(
                    "outcome log: its mailbox is full; the row of {}/{} is only in this log",
                    self.shard(),
                    record.seq
                );
            }
        }
        let Some(dead_letters) =
            self.links.dead_letters.as_ref().filter(|_| self.settings.dead_letter_outcomes.contains(&outcome))
        else {
            self.complete(idx, ctx);
            return;
        };
        let letter = DeadLetter {
            time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            observer: self.settings.observer_id.clone(),
            stream: self.settings.stream_name.clone(),
            shard: self.shard().to_string(),
            sequence_number: record.seq.to_string(),
            partition_key: record.partition_key.to_string(),
            outcome,
            reason: detail,
            attempts,
            command_id: command_id.map(|u| u.to_string()),
            data: record.data,
        };
        ctx.spawn(dead_letters.send(letter).into_actor(self).map(move |_, act, ctx| act.complete(idx, ctx)));
    }

    /// Logs (once) and counts one record's outcome.
    fn record_outcome(
        &mut self,
        outcome: Outcome,
        seq: &str,
        command_id: Option<uuid::Uuid>,
        responder: Option<&str>,
        attempts: u32,
        detail: &str,
    ) {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.state.outcomes[index] += 1;
        self.links.metrics.count(outcome.metric_name(), "ProcessTask", self.scope(), 1);
        let id = command_id.map_or_else(|| "-".to_owned(), |u| u.to_string());
        let responder = responder.map(|r| format!(" responder={r} attempts={attempts}")).unwrap_or_default();
        match outcome {
            Outcome::Done => log::info!(
                target: "sauna::outcome",
                "{outcome} shard={} seq={seq} commandId={id}{responder} {detail}",
                self.shard()
            ),
            _ => log::warn!(
                target: "sauna::outcome",
                "{outcome} shard={} seq={seq} commandId={id}{responder} reason: {detail}",
                self.shard()
            ),
        }
    }

    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.lease.deadline.is_valid() {
            return;
        }
        while let Some((idx, pending)) = self.state.tracker.next_dispatch() {
            self.send(idx, pending, ctx);
        }
    }

    fn send(&mut self, idx: u64, mut pending: Pending, ctx: &mut Context<Self>) {
        let command_id = Some(pending.command.envelope.command_id);
        let Some(route) = self.links.routes.get(pending.route).cloned() else {
            let detail = "the responder of this route is not running".to_owned();
            self.finish(idx, pending.record, Outcome::Unroutable, command_id, None, 0, detail, ctx);
            return;
        };
        pending.attempts += 1;
        let request = route.recipient.send(Execute {
            command: pending.command.clone(),
            shard_id: self.shard().clone(),
            sequence_number: pending.record.seq.clone(),
            deadline: self.lease.deadline.clone(),
        });
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| match result {
            Ok(CommandResult { outcome, attempts, detail }) => {
                act.finish(idx, pending.record, outcome, command_id, Some(&route.responder_id), attempts, detail, ctx);
            }
            Err(e) => {
                // The responder's task died without an answer (it was restarted): send again.
                if pending.attempts < act.settings.retry.max_attempts && act.lease.deadline.is_valid() {
                    let delay = crate::responders::backoff_delay(&act.settings.retry, pending.attempts);
                    log::warn!(
                        "shard {}: command {} got no answer from responder {} ({e}); sending again in {} ms",
                        act.shard(),
                        pending.command.envelope.command_id,
                        route.responder_id,
                        delay.as_millis()
                    );
                    ctx.run_later(delay, move |act, ctx| act.send(idx, pending, ctx));
                } else {
                    let detail = format!("responder {} gave no answer: {e}", route.responder_id);
                    let attempts = pending.attempts;
                    act.finish(
                        idx,
                        pending.record,
                        Outcome::Failed,
                        command_id,
                        Some(&route.responder_id),
                        attempts,
                        detail,
                        ctx,
                    );
                }
            }
        }));
    }

    fn complete(&mut self, idx: u64, ctx: &mut Context<Self>) {
        self.state.tracker.complete(idx);
        self.dispatch(ctx);
        if self.state.blocked && self.state.tracker.wants_more() {
            self.fetch(ctx);
        }
        if self.state.tracker.all_done() {
            if self.state.shard_closed {
                self.check_end(ctx);
            }
            if self.state.phase == Phase::Draining {
                self.drained();
            }
        }
    }

    /// Tells the Checkpointer the watermark, if it moved (or every few seconds regardless, so a
    /// restarted Checkpointer learns it again).
    fn send_progress(&mut self, force: bool) {
        let Some(w) = self.state.tracker.watermark().cloned() else {
            return;
        };
        let moved = self.state.progress_sent.as_ref() != Some(&w);
        if !(moved || force || self.state.progress_sent_at.elapsed() > Duration::from_secs(5)) {
            return;
        }
        self.links.checkpointer.do_send(Progress {
            shard: self.shard().clone(),
            tenure: self.lease.tenure,
            checkpoint: Checkpoint::Sequence(w.clone()),
        });
        self.state.progress_sent = Some(w);
        self.state.progress_sent_at = Instant::now();
    }

    /// At the end of a closed shard with every record done: SHARD_END, then stop.
    fn check_end(&mut self, ctx: &mut Context<Self>) {
        if !self.state.shard_closed || !self.state.tracker.all_done() || self.state.ending {
            return;
        }
        if self.state.phase == Phase::Draining {
            self.drained();
            return;
        }
        self.state.ending = true;
        self.state.phase = Phase::Ending;
        self.send_progress(true);
        let request = self.links.checkpointer.send(ShardEnded {
            shard: self.shard().clone(),
            tenure: self.lease.tenure,
            children: self.state.children.clone(),
        });
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| {
            match result.unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string()))) {
                Ok(()) | Err(LeaseError::Lost { .. }) | Err(LeaseError::NotHeld(_)) => {
                    act.state.phase = Phase::Finished;
                    ctx.stop();
                }
                Err(LeaseError::Transient(e)) => {
                    act.state.ending = false;
                    let delay = act.next_backoff();
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

    fn drained(&mut self) {
        self.send_progress(true);
        for w in self.state.drain_waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

impl Actor for ShardConsumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.mailbox);
        // Progress goes to the Checkpointer a few times per checkpoint interval; the
        // Checkpointer decides when to write.
        let tick = (self.settings.checkpoint_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        ctx.run_interval(tick, |act, _| act.send_progress(false));
        if self.lease.parents.is_empty() {
            self.initialize(ctx);
        } else {
            self.state.phase = Phase::WaitingOnParents;
            log::info!("shard {}: waiting for parents [{}]", self.shard(), self.lease.parents.join(", "));
            self.check_parents(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // A consumer that fails hands its last watermark over, so its successor starts there
        // (refused harmlessly if the lease is gone).
        self.send_progress(true);
        for w in self.state.drain_waiters.drain(..) {
            let _ = w.send(());
        }
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.state.drain_waiters.push(tx);
        if self.state.phase != Phase::Finished {
            self.state.phase = Phase::Draining;
        }
        if self.state.tracker.all_done() {
            self.drained();
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<StopConsumer> for ShardConsumer {
    type Result = ();

    fn handle(&mut self, _: StopConsumer, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

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

impl Handler<ObserveConsumer> for ShardConsumer {
    type Result = MessageResult<ObserveConsumer>;

    fn handle(&mut self, _: ObserveConsumer, ctx: &mut Self::Context) -> Self::Result {
        let s = &self.state;
        MessageResult(ShardConsumerSnapshot {
            shard: self.shard().to_string(),
            tenure: self.lease.tenure,
            phase: s.phase,
            records_read: s.records_read,
            bytes_read: s.bytes_read,
            batches: s.batches,
            outcomes: s.outcomes,
            not_done: s.tracker.not_done(),
            in_flight: s.tracker.in_flight(),
            watermark: s.tracker.watermark().map(ToString::to_string),
            millis_behind_latest: s.millis_behind_latest,
            iterator_restarts: s.iterator_restarts,
            throttles: s.throttles,
            errors: s.errors,
            mailbox_capacity: ctx.parts().capacity(),
        })
    }
}
