//! The ShardConsumer driven alone: a reader, a parser, a responder, a Checkpointer and a
//! LeaseManager of the test's own making stand in for Kinesis, the parse pool and the actors.
//! `edges`: bounds, reading ahead, freezing, fences, abandoned commands, shards past retention, LATEST;
//! `claims`: dedup; `kpl`: KPL aggregates (sub-sequence checkpoints, resuming inside one,
//! hash key ranges).

mod claims;
mod edges;
mod kpl;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use async_trait::async_trait;
use tokio::sync::oneshot;

use super::reading::{ReadError, ReadRecord, RecordBatch, ShardReader, StartPosition};
use super::*;
use crate::checkpointer::{Progress, ShardEnded};
use crate::command::{Classified, Command, CommandParser, SchemaRegistry};
use crate::config::runtime::RetryPolicy;
use crate::lease_manager::{AcquiredLease, LatestStart, LeaseError, LeaseOwner, ParentsFinished, PinLatestStart};
use crate::model::{Checkpoint, Fence, LeaseDeadline, Tenure};
use crate::parser_pool::{ParseBatch, ParsedBatch};
use crate::responders::{Answers, CommandResult, Execute, ExecuteBatch, RouteTarget, Routes};
use crate::supervision::{ChildId, ExitGuard};

/// A shard of the test's making: serves `records` in order, at most the limit asked for per
/// read; what it was asked is kept.
#[derive(Default)]
struct Shard {
    records: Mutex<VecDeque<ReadRecord>>,
    limits: Mutex<Vec<i32>>,
    starts: Mutex<Vec<StartPosition>>,
    /// The shard is not found (past retention); `listed`: whether the stream still lists it.
    not_found: Option<bool>,
}

impl Shard {
    /// Records 1..=n; record i has partition key `keys(i)`.
    fn with(n: u64, keys: impl Fn(u64) -> String) -> Self {
        let records = (1..=n)
            .map(|i| ReadRecord {
                sequence_number: i.to_string(),
                partition_key: keys(i),
                data: bytes::Bytes::from(i.to_string()),
            })
            .collect();
        Shard { records: Mutex::new(records), ..Shard::default() }
    }
}

#[async_trait]
impl ShardReader for Shard {
    async fn iterator(&self, _: &str, from: &StartPosition) -> Result<Option<String>, ReadError> {
        self.starts.lock().expect("lock").push(from.clone());
        match self.not_found {
            Some(_) => Err(ReadError::NotFound("ResourceNotFoundException: no such shard".into())),
            None => Ok(Some("it".into())),
        }
    }

    async fn records(&self, _: &str, limit: i32) -> Result<RecordBatch, ReadError> {
        self.limits.lock().expect("lock").push(limit);
        let mut all = self.records.lock().expect("lock");
        let n = all.len().min(usize::try_from(limit).unwrap_or(0));
        let records = all.drain(..n).collect();
        Ok(RecordBatch { records, next_iterator: Some("it".into()), ..RecordBatch::default() })
    }

    async fn shard_is_listed(&self, _: &str) -> Result<bool, ReadError> {
        Ok(self.not_found.unwrap_or(true))
    }
}

/// What the stand-ins saw, and the answers the test releases.
#[derive(Default)]
struct Seen {
    progress: Vec<Checkpoint>,
    /// Commands at the responder, by sequence number, waiting for the test to answer.
    waiting: BTreeMap<String, oneshot::Sender<CommandResult>>,
    /// The fence each command was sent with, by sequence number.
    fences: BTreeMap<String, Fence>,
    ended: u32,
    /// What PinLatestStart answers.
    latest: Option<LatestStart>,
    /// Who holds every other shard's lease (what LeaseOwner answers).
    lease_owner: Option<String>,
    /// When set, each batch's classification waits for a permit of it.
    parse_gate: Option<Arc<tokio::sync::Semaphore>>,
}

type Shared = Arc<Mutex<Seen>>;

/// Parser, responder, Checkpointer and LeaseManager in one stand-in actor. Record `n` (its
/// data is `n`) is a command with the commandId `ids(n)`.
struct StandIn {
    ids: fn(u64) -> uuid::Uuid,
    seen: Shared,
}

/// Every record its own commandId.
fn distinct(n: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(u128::from(n))
}

impl Actor for StandIn {
    type Context = Context<Self>;
}

impl Handler<ParseBatch> for StandIn {
    type Result = ResponseFuture<ParsedBatch>;

    /// The parse workers' own deaggregation, with a classification of the test's making (once
    /// the parse gate, if any, lets it).
    fn handle(&mut self, batch: ParseBatch, _: &mut Self::Context) -> Self::Result {
        let ids = self.ids;
        let gate = self.seen.lock().expect("lock").parse_gate.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("the gate stays open").forget();
            }
            let classify = |data: &[u8]| {
                let n = std::str::from_utf8(data).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
                Classified::Routable { command: command(ids(n)), route: 0 }
            };
            batch.parse(classify)
        })
    }
}

impl Handler<Execute> for StandIn {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let mut seen = self.seen.lock().expect("lock");
        seen.waiting.insert(msg.sequence_number.to_string(), tx);
        seen.fences.insert(msg.sequence_number.to_string(), msg.fence.clone());
        Box::pin(
            async move { rx.await.unwrap_or(CommandResult::Abandoned { attempts: 0, reason: "test over".into() }) },
        )
    }
}

impl Handler<ExecuteBatch> for StandIn {
    type Result = ();

    /// Each command of the batch waits for the test, as one sent alone does, and is answered
    /// on its own.
    fn handle(&mut self, mut batch: ExecuteBatch, ctx: &mut Self::Context) {
        for (ticket, execute) in std::mem::take(&mut batch.commands) {
            let answer = <Self as Handler<Execute>>::handle(self, execute, ctx);
            let answers = batch.answers.clone();
            actix::spawn(async move { answers.do_send(Answers(vec![(ticket, Ok(answer.await))])) });
        }
    }
}

impl Handler<Progress> for StandIn {
    type Result = ();

    fn handle(&mut self, msg: Progress, _: &mut Self::Context) {
        self.seen.lock().expect("lock").progress.push(msg.checkpoint);
    }
}

impl Handler<ShardEnded> for StandIn {
    type Result = Result<(), LeaseError>;

    fn handle(&mut self, _: ShardEnded, _: &mut Self::Context) -> Self::Result {
        self.seen.lock().expect("lock").ended += 1;
        Ok(())
    }
}

impl Handler<PinLatestStart> for StandIn {
    type Result = Result<LatestStart, LeaseError>;

    fn handle(&mut self, _: PinLatestStart, _: &mut Self::Context) -> Self::Result {
        Ok(self.seen.lock().expect("lock").latest.unwrap_or(LatestStart::Pinned))
    }
}

impl Handler<LeaseOwner> for StandIn {
    type Result = Result<Option<String>, LeaseError>;

    fn handle(&mut self, _: LeaseOwner, _: &mut Self::Context) -> Self::Result {
        Ok(self.seen.lock().expect("lock").lease_owner.clone())
    }
}

impl Handler<ParentsFinished> for StandIn {
    type Result = Result<bool, LeaseError>;

    fn handle(&mut self, _: ParentsFinished, _: &mut Self::Context) -> Self::Result {
        Ok(true)
    }
}

fn command(id: uuid::Uuid) -> Arc<Command> {
    let text = serde_json::json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {"schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {"commandId": id.to_string(), "whenCreated": "2017-01-02T19:14:42Z",
                    "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": null}, "tags": {}}},
            "command": {"schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0", "data": {"text": "hi"}}}
    });
    let criterion = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion");
    let parser = CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![vec![criterion]]);
    match parser.classify(text.to_string().as_bytes(), chrono::Utc::now()) {
        Classified::Routable { command, .. } => command,
        other => panic!("{other:?}"),
    }
}

fn settings(max_in_flight: usize) -> ConsumerSettings {
    ConsumerSettings {
        stream_name: "s".into(),
        max_records: 100,
        idle_time: Duration::from_millis(20),
        max_idle_time: Duration::from_millis(20),
        max_in_flight,
        max_in_flight_bytes: usize::MAX,
        ordering: crate::config::runtime::Ordering::PartitionKey,
        at_timestamp: None,
        parent_poll_interval: Duration::from_millis(20),
        lease_recheck_interval: Duration::from_millis(10),
        checkpoint_interval: Duration::from_millis(40),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            request_timeout: Duration::from_secs(1),
        },
        mailbox: 64,
        observer_id: "test".into(),
        dead_letter_outcomes: vec![],
        worker_id: "me".into(),
        claims: None,
    }
}

/// A consumer of `shard` (a lease at `checkpoint`) with stand-ins for everything else.
fn start_with(shard: Arc<Shard>, checkpoint: Checkpoint, max_in_flight: usize) -> (Addr<ShardConsumer>, Shared) {
    start_claiming(shard, checkpoint, max_in_flight, None, distinct)
}

/// The same, with dedup on (claims in `claims`) and the commandIds `ids` gives.
fn start_claiming(
    shard: Arc<Shard>,
    checkpoint: Checkpoint,
    max_in_flight: usize,
    claims: Option<&crate::claims::MemoryClaimTable>,
    ids: fn(u64) -> uuid::Uuid,
) -> (Addr<ShardConsumer>, Shared) {
    start_full(shard, checkpoint, max_in_flight, claims, ids, None)
}

/// The same, for a lease whose hash key range is `hash_range`.
fn start_full(
    shard: Arc<Shard>,
    checkpoint: Checkpoint,
    max_in_flight: usize,
    claims: Option<&crate::claims::MemoryClaimTable>,
    ids: fn(u64) -> uuid::Uuid,
    hash_range: Option<crate::model::HashKeyRange>,
) -> (Addr<ShardConsumer>, Shared) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stand_in = StandIn { ids, seen: seen.clone() }.start();
    let mut routes = Routes::default();
    routes.push("stand-in", RouteTarget::of(&stand_in));
    let links = ConsumerLinks {
        reader: shard,
        parser: stand_in.clone().recipient(),
        routes: Arc::new(routes),
        progress: stand_in.clone().recipient(),
        shard_ended: stand_in.clone().recipient(),
        parents: stand_in.clone().recipient(),
        latest_start: stand_in.clone().recipient(),
        lease_owner: stand_in.recipient(),
        metrics: crate::metrics::MetricsHandle::disabled(),
        dead_letters: None,
        outcome_log: None,
        claims: claims.map(|c| Arc::new(c.clone()) as Arc<dyn crate::claims::ClaimStore>),
    };
    let lease = AcquiredLease {
        shard: Arc::from("shardId-000000000000"),
        tenure: Tenure::next(),
        checkpoint,
        parents: vec![],
        deadline: LeaseDeadline::unbounded(),
        hash_range,
    };
    let exit = ExitGuard::detached(ChildId::ShardConsumer { shard: lease.shard.clone(), incarnation: 1 });
    let mut settings = settings(max_in_flight);
    if claims.is_some() {
        settings.claims = Some(ClaimTimings {
            stale_after: Duration::from_millis(400),
            recheck_every: Duration::from_millis(20),
            retention: Duration::from_secs(3600),
        });
    }
    (ShardConsumer::new(Arc::new(settings), links, lease, exit).start(), seen)
}

/// Five records, each its own partition key.
fn start(seen_records: u64) -> (Addr<ShardConsumer>, Shared) {
    start_with(Arc::new(Shard::with(seen_records, |i| format!("key-{i}"))), Checkpoint::TrimHorizon, 10)
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn waiting(seen: &Shared) -> usize {
    seen.lock().expect("lock").waiting.len()
}

/// Answers the command of sequence number `n` with `result`, then gives the consumer time to
/// report.
async fn answer_with(seen: &Shared, n: u32, result: CommandResult) {
    let tx = seen.lock().expect("lock").waiting.remove(&n.to_string()).expect("the command is at the responder");
    tx.send(result).expect("the consumer waits");
    // Several progress ticks (checkpoint interval / 4 = 10 ms).
    tokio::time::sleep(Duration::from_millis(60)).await;
}

async fn answer(seen: &Shared, n: u32) {
    answer_with(seen, n, CommandResult::Ended { outcome: Outcome::Done, attempts: 1, detail: "ok".into() }).await;
}

fn reported(seen: &Shared) -> Vec<String> {
    seen.lock().expect("lock").progress.iter().map(ToString::to_string).collect()
}

#[actix_rt::test]
async fn the_watermark_never_passes_a_record_without_an_outcome() {
    let (consumer, seen) = start(5);
    until("all five commands at the responder", || waiting(&seen) == 5).await;

    // Outcomes arrive out of order: 5, 3 and 4 before 1 and 2.
    for n in [5, 3, 4] {
        answer(&seen, n).await;
        assert!(
            reported(&seen).is_empty(),
            "after {n}: 1 has no outcome yet, nothing is covered: {:?}",
            reported(&seen)
        );
    }
    answer(&seen, 1).await;
    assert_eq!(reported(&seen).last().map(String::as_str), Some("1"), "1 is done, 2 is not: the watermark is 1");
    answer(&seen, 2).await;
    assert_eq!(reported(&seen).last().map(String::as_str), Some("5"), "all done: the watermark is 5");
    let all: Vec<u64> = reported(&seen).iter().map(|s| s.parse().expect("a sequence number")).collect();
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "never backwards: {all:?}");

    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!((snapshot.counters.outcomes[0], snapshot.not_done), (5, 0));
    assert_eq!(snapshot.watermark.as_deref(), Some("5"));
}

#[actix_rt::test]
async fn a_drain_answers_once_every_command_in_flight_has_its_outcome() {
    let (consumer, seen) = start(5);
    until("all five commands at the responder", || waiting(&seen) == 5).await;
    let drained = consumer.send(Drain);
    let s = seen.clone();
    let answers = async move {
        for n in [2, 4, 1, 5, 3] {
            answer(&s, n).await;
        }
    };
    let (result, ()) = futures::join!(drained, answers);
    result.expect("drained");
    assert_eq!(waiting(&seen), 0);
    assert_eq!(reported(&seen).last().map(String::as_str), Some("5"), "the final progress covers all five");
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(snapshot.phase, Phase::Draining);
}
