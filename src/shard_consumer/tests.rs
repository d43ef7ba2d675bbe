//! The ShardConsumer driven alone: a reader, a parser, a responder, a Checkpointer and a
//! LeaseManager of the test's own making stand in for Kinesis, the parse pool and the actors.

use std::collections::BTreeMap;
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
use crate::lease_manager::{AcquiredLease, LeaseError, ParentsFinished};
use crate::model::{Checkpoint, LeaseDeadline, Tenure};
use crate::parser_pool::ParseBatch;
use crate::responders::{CommandResult, Execute, Routes};
use crate::supervision::{ChildId, ExitGuard};

/// Five records (sequence numbers 1..=5, each its own partition key) on the first read, then
/// nothing.
struct FiveRecords {
    reads: Mutex<u32>,
}

#[async_trait]
impl ShardReader for FiveRecords {
    async fn iterator(&self, _: &str, _: &StartPosition) -> Result<Option<String>, ReadError> {
        Ok(Some("it".into()))
    }

    async fn records(&self, _: &str, _: i32) -> Result<RecordBatch, ReadError> {
        let first = {
            let mut reads = self.reads.lock().expect("lock");
            *reads += 1;
            *reads == 1
        };
        let records = if first {
            (1..=5)
                .map(|n| ReadRecord {
                    sequence_number: n.to_string(),
                    partition_key: format!("key-{n}"),
                    data: bytes::Bytes::from(n.to_string()),
                })
                .collect()
        } else {
            vec![]
        };
        Ok(RecordBatch { records, next_iterator: Some("it".into()), ..RecordBatch::default() })
    }
}

/// What the stand-ins saw, and the answers the test releases.
#[derive(Default)]
struct Seen {
    progress: Vec<Checkpoint>,
    /// Commands at the responder, by sequence number, waiting for the test to answer.
    waiting: BTreeMap<String, oneshot::Sender<CommandResult>>,
}

/// Parser, responder, Checkpointer and LeaseManager in one stand-in actor.
struct StandIn {
    command: Arc<Command>,
    seen: Arc<Mutex<Seen>>,
}

impl Actor for StandIn {
    type Context = Context<Self>;
}

impl Handler<ParseBatch> for StandIn {
    type Result = MessageResult<ParseBatch>;

    fn handle(&mut self, batch: ParseBatch, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            batch.0.iter().map(|_| Classified::Routable { command: self.command.clone(), route: 0 }).collect(),
        )
    }
}

impl Handler<Execute> for StandIn {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.seen.lock().expect("lock").waiting.insert(msg.sequence_number.to_string(), tx);
        Box::pin(async move { rx.await.expect("the test answers every command") })
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
        Ok(())
    }
}

impl Handler<ParentsFinished> for StandIn {
    type Result = Result<bool, LeaseError>;

    fn handle(&mut self, _: ParentsFinished, _: &mut Self::Context) -> Self::Result {
        Ok(true)
    }
}

fn command() -> Arc<Command> {
    let text = serde_json::json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {"schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81", "whenCreated": "2017-01-02T19:14:42Z",
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

fn settings() -> ConsumerSettings {
    ConsumerSettings {
        stream_name: "s".into(),
        max_records: 100,
        idle_time: Duration::from_millis(20),
        max_in_flight: 10,
        ordering: crate::config::runtime::Ordering::PartitionKey,
        at_timestamp: None,
        parent_poll_interval: Duration::from_millis(20),
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
    }
}

fn start(seen: Arc<Mutex<Seen>>) -> Addr<ShardConsumer> {
    let stand_in = StandIn { command: command(), seen }.start();
    let mut routes = Routes::default();
    routes.push("stand-in", stand_in.clone().recipient());
    let links = ConsumerLinks {
        reader: Arc::new(FiveRecords { reads: Mutex::new(0) }),
        parser: stand_in.clone().recipient(),
        routes: Arc::new(routes),
        progress: stand_in.clone().recipient(),
        shard_ended: stand_in.clone().recipient(),
        parents: stand_in.recipient(),
        metrics: crate::metrics::MetricsHandle::disabled(),
        dead_letters: None,
        outcome_log: None,
    };
    let lease = AcquiredLease {
        shard: Arc::from("shardId-000000000000"),
        tenure: Tenure::next(),
        checkpoint: Checkpoint::TrimHorizon,
        parents: vec![],
        deadline: LeaseDeadline::unbounded(),
    };
    let exit = ExitGuard::detached(ChildId::ShardConsumer { shard: lease.shard.clone(), incarnation: 1 });
    ShardConsumer::new(Arc::new(settings()), links, lease, exit).start()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answers the command of sequence number `n`, then gives the consumer time to report.
async fn answer(seen: &Arc<Mutex<Seen>>, n: u32) {
    let tx = seen.lock().expect("lock").waiting.remove(&n.to_string()).expect("the command is at the responder");
    let done = CommandResult { outcome: crate::model::Outcome::Done, attempts: 1, detail: "ok".into() };
    tx.send(done).expect("the consumer waits");
    // Several progress ticks (checkpoint interval / 4 = 10 ms).
    tokio::time::sleep(Duration::from_millis(60)).await;
}

fn reported(seen: &Arc<Mutex<Seen>>) -> Vec<String> {
    seen.lock().expect("lock").progress.iter().map(ToString::to_string).collect()
}

#[actix_rt::test]
async fn the_watermark_never_passes_a_record_without_an_outcome() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let consumer = start(seen.clone());
    until("all five commands at the responder", || seen.lock().expect("lock").waiting.len() == 5).await;

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
    let seen = Arc::new(Mutex::new(Seen::default()));
    let consumer = start(seen.clone());
    until("all five commands at the responder", || seen.lock().expect("lock").waiting.len() == 5).await;
    let drained = consumer.send(Drain);
    let s = seen.clone();
    let answers = async move {
        for n in [2, 4, 1, 5, 3] {
            answer(&s, n).await;
        }
    };
    let (result, ()) = futures::join!(drained, answers);
    result.expect("drained");
    assert!(seen.lock().expect("lock").waiting.is_empty());
    assert_eq!(reported(&seen).last().map(String::as_str), Some("5"), "the final progress covers all five");
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(snapshot.phase, Phase::Draining);
}
