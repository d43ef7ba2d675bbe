//! `ResponderActor`: the shared machinery around every responder — a bounded mailbox, a
//! concurrency limit, a per-attempt timeout, retries with exponential backoff and jitter
//! (honouring `Retry-After`), panic containment, and metrics. The attempts themselves are in
//! `attempts.rs`, batches in `batch.rs`.
//!
//! Each command runs as its own task, detached from the actor's lifecycle: a restart of the
//! actor never cancels a command another task is actioning. A panic inside an attempt is caught,
//! counted as a failed attempt (retried), and stops the actor, which the observer's Supervisor
//! restarts (with backoff) behind the same route.

use std::sync::Arc;
use std::time::Duration;

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use tokio::sync::Semaphore;

use super::attempts::{record_latencies, run_timed};
use super::{Responder, ResponderContext};
use crate::command::Command;
use crate::config::runtime::{RateLimit, RetryPolicy};
use crate::metrics::MetricsHandle;
use crate::model::{Fence, Outcome};
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, ExitReason, stops_on_request};

/// Action this command (one record of one shard).
#[derive(Debug, Clone)]
pub struct Execute {
    pub command: Arc<Command>,
    pub shard_id: Arc<str>,
    pub sequence_number: Arc<str>,
    /// The lease under which the command was read, and its consumer: no attempt is made once
    /// either is gone (the shard's next reader actions the command).
    pub fence: Fence,
}

/// How a command ended at its responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    /// It has an outcome: `Done` or `Failed`.
    Ended {
        outcome: Outcome,
        attempts: u32,
        /// "HTTP 200", or why it failed.
        detail: String,
    },
    /// Its fence closed before it was done (the lease was lost, or its consumer stopped): no
    /// outcome, no dead letter, not covered by a checkpoint — the shard's next reader actions
    /// it.
    Abandoned { attempts: u32, reason: String },
}

impl CommandResult {
    pub fn attempts(&self) -> u32 {
        match self {
            CommandResult::Ended { attempts, .. } | CommandResult::Abandoned { attempts, .. } => *attempts,
        }
    }
}

impl Message for Execute {
    type Result = CommandResult;
}

/// A panic caught inside one attempt: the actor stops, and is restarted by its Supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Panicked(pub(super) String);

/// What a responder actor has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderSnapshot {
    pub id: String,
    /// Restarts of this responder's actor (the running one included its predecessors').
    pub restarts: u32,
    pub in_flight: usize,
    pub mailbox_capacity: usize,
}

/// What every incarnation of one responder's actor shares: the responder itself, the settings
/// and the permits (so a restart never raises the concurrency limit).
pub struct ResponderSpec {
    pub responder: Arc<dyn Responder>,
    pub context: Arc<ResponderContext>,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    pub mailbox: usize,
    pub metrics: MetricsHandle,
    pub(super) permits: Semaphore,
    /// The responder's pace, if it has one: taken before the permit, so a command waiting for
    /// its turn holds no permit and holds up no other responder.
    pub(super) pace: Option<governor::DefaultDirectRateLimiter>,
}

impl ResponderSpec {
    pub fn new(
        responder: Arc<dyn Responder>,
        context: Arc<ResponderContext>,
        retry: RetryPolicy,
        concurrency: usize,
        mailbox: usize,
        metrics: MetricsHandle,
    ) -> Self {
        let permits = Semaphore::new(concurrency);
        ResponderSpec { responder, context, retry, concurrency, mailbox, metrics, permits, pace: None }
    }

    /// At most one attempt every `limit.every`, `limit.burst` at once (`None`: no limit).
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.pace = limit.and_then(|l| {
            let burst = std::num::NonZeroU32::new(l.burst.max(1))?;
            governor::Quota::with_period(l.every).map(|q| governor::RateLimiter::direct(q.allow_burst(burst)))
        });
        self
    }
}

pub struct ResponderActor {
    spec: Arc<ResponderSpec>,
    restarts: u32,
    /// A restarted actor waits this long before taking commands (its mailbox holds them).
    start_delay: Duration,
    exit: ExitGuard,
}

impl ResponderActor {
    pub(super) fn spec(&self) -> &Arc<ResponderSpec> {
        &self.spec
    }

    pub fn new(spec: Arc<ResponderSpec>, restarts: u32, start_delay: Duration, exit: ExitGuard) -> Self {
        ResponderActor { spec, restarts, start_delay, exit }
    }
}

impl Actor for ResponderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox);
        if !self.start_delay.is_zero() {
            // Restart backoff: the mailbox waits, nothing is dropped.
            ctx.wait(actix::fut::wrap_future(tokio::time::sleep(self.start_delay)));
        }
    }
}

impl Handler<Panicked> for ResponderActor {
    type Result = ();

    fn handle(&mut self, msg: Panicked, ctx: &mut Self::Context) {
        log::error!("responder {} panicked: {}", self.spec.responder.id(), msg.0);
        self.exit.set_reason(ExitReason::Panicked);
        ctx.stop();
    }
}

impl Observable for ResponderActor {
    type Snapshot = ResponderSnapshot;

    fn snapshot(&self, ctx: &mut Self::Context) -> ResponderSnapshot {
        ResponderSnapshot {
            id: self.spec.responder.id().to_owned(),
            restarts: self.restarts,
            in_flight: self.spec.concurrency - self.spec.permits.available_permits(),
            mailbox_capacity: ctx.parts().capacity(),
        }
    }
}

answers_observe!(ResponderActor);
stops_on_request!(ResponderActor);

impl Handler<Execute> for ResponderActor {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        let spec = self.spec.clone();
        let me = ctx.address().recipient::<Panicked>();
        Box::pin(async move {
            let (result, took) = run_timed(&spec, &msg, &me).await;
            record_latencies(&spec, &[(took, result.attempts())]);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;
    use crate::command::{Classified, CommandParser, SchemaRegistry};
    use crate::config::runtime::Endpoints;
    use crate::iglu::SchemaCriterion;
    use crate::responders::{Answers, ExecuteBatch};
    use crate::responders::{AttemptFuture, AttemptsFuture, http};
    use crate::supervision::ChildId;

    /// One scripted answer: a status, and a `Retry-After`.
    type Answer = (u16, Option<Duration>);

    /// A service answering each command (by its text) with the statuses scripted for it, one
    /// per attempt (the last one for ever), after `delay`; `Retry-After` as scripted.
    #[derive(Debug, Default)]
    struct Script {
        answers: Mutex<HashMap<String, Vec<Answer>>>,
        attempts: Mutex<Vec<String>>,
        delay: Duration,
        /// Whether it takes batches, and the sizes of those it was given.
        takes_batches: bool,
        batches: Mutex<Vec<usize>>,
    }

    impl Responder for Script {
        fn id(&self) -> &str {
            "script"
        }

        fn criteria(&self) -> Vec<SchemaCriterion> {
            vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")]
        }

        fn execute<'a>(&'a self, command: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
            let text = command.data.to_value()["text"].as_str().unwrap_or_default().to_owned();
            self.attempts.lock().expect("lock").push(text.clone());
            let (status, retry_after) = {
                let mut answers = self.answers.lock().expect("lock");
                let list = answers.entry(text).or_insert_with(|| vec![(200, None)]);
                if list.len() > 1 { list.remove(0) } else { list[0] }
            };
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                http::attempt_for(status, retry_after, "from the stand-in")
            })
        }

        fn takes_batches(&self) -> bool {
            self.takes_batches
        }

        fn execute_batch<'a>(&'a self, commands: Vec<&'a Command>, ctx: &'a ResponderContext) -> AttemptsFuture<'a> {
            self.batches.lock().expect("lock").push(commands.len());
            Box::pin(futures::future::join_all(commands.into_iter().map(|command| self.execute(command, ctx))))
        }
    }

    impl Script {
        fn with(mut self, text: &str, answers: &[Answer]) -> Self {
            self.answers.get_mut().expect("lock").insert(text.to_owned(), answers.to_vec());
            self
        }

        fn attempts_of(&self, text: &str) -> usize {
            self.attempts.lock().expect("lock").iter().filter(|t| *t == text).count()
        }
    }

    fn command(text: &str) -> Arc<Command> {
        let record = serde_json::json!({
            "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
            "data": {
                "envelope": {"schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                    "data": {"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81", "whenCreated": "2017-01-02T19:14:42Z",
                        "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": null}, "tags": {}}},
                "command": {"schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                    "data": {"text": text}}}
        });
        let criterion = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion");
        let parser = CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![vec![criterion]]);
        match parser.classify(record.to_string().as_bytes(), chrono::Utc::now()) {
            Classified::Routable { command, .. } => command,
            other => panic!("{other:?}"),
        }
    }

    /// A responder actor around `script`: `concurrency` permits, 4 attempts, backoff from a
    /// quarter of `max_backoff` doubling up to it.
    fn actor(script: &Arc<Script>, concurrency: usize, max_backoff: Duration) -> Addr<ResponderActor> {
        let retry = RetryPolicy {
            max_attempts: 4,
            initial_backoff: max_backoff / 4,
            max_backoff,
            request_timeout: Duration::from_secs(5),
        };
        let endpoints = Endpoints {
            pager_duty_events_url: "http://127.0.0.1:9/".into(),
            sendgrid_api_url: "http://127.0.0.1:9".into(),
        };
        let context = Arc::new(ResponderContext::new(endpoints, Duration::from_secs(5)));
        let spec = ResponderSpec::new(script.clone(), context, retry, concurrency, 8, MetricsHandle::disabled());
        let exit = ExitGuard::detached(ChildId::Responder { route: 0, incarnation: 1 });
        ResponderActor::new(Arc::new(spec), 0, Duration::ZERO, exit).start()
    }

    fn execute(text: &str, fence: &Fence) -> Execute {
        Execute {
            command: command(text),
            shard_id: Arc::from("shardId-000000000000"),
            sequence_number: Arc::from("1"),
            fence: fence.clone(),
        }
    }

    fn ended(r: &CommandResult) -> (Outcome, u32, &str) {
        match r {
            CommandResult::Ended { outcome, attempts, detail } => (*outcome, *attempts, detail),
            other => panic!("{other:?}"),
        }
    }

    async fn run(script: Script, text: &str) -> (CommandResult, usize) {
        let script = Arc::new(script);
        let result = actor(&script, 2, Duration::from_millis(5)).send(execute(text, &Fence::unbounded())).await;
        (result.expect("the actor answers"), script.attempts_of(text))
    }

    #[actix_rt::test]
    async fn a_5xx_is_retried_until_done() {
        let (result, attempts) = run(Script::default().with("c", &[(503, None), (502, None), (200, None)]), "c").await;
        assert_eq!((ended(&result).0, ended(&result).1, attempts), (Outcome::Done, 3, 3));
    }

    #[actix_rt::test]
    async fn a_400_is_not_retried() {
        let (result, attempts) = run(Script::default().with("c", &[(400, None), (200, None)]), "c").await;
        let (outcome, n, detail) = ended(&result);
        assert_eq!((outcome, n, attempts), (Outcome::Failed, 1, 1));
        assert!(detail.starts_with("HTTP 400"), "{detail}");
    }

    #[actix_rt::test]
    async fn transient_failures_give_up_at_the_attempt_limit() {
        let (result, attempts) = run(Script::default().with("c", &[(500, None)]), "c").await;
        let (outcome, n, detail) = ended(&result);
        assert_eq!((outcome, n, attempts), (Outcome::Failed, 4, 4));
        assert!(detail.starts_with("gave up after 4 attempts"), "{detail}");
    }

    #[actix_rt::test]
    async fn a_huge_retry_after_is_capped_and_frees_the_permit_while_waiting() {
        // One permit. "slow" is told to come back in a day; "other" comes after it.
        let day = Some(Duration::from_secs(86_400));
        let script = Arc::new(Script::default().with("slow", &[(429, day), (200, None)]));
        let responder = actor(&script, 1, Duration::from_millis(300));
        let fence = Fence::unbounded();
        let started = Instant::now();
        let slow = responder.send(execute("slow", &fence));
        let other = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let r = responder.send(execute("other", &fence)).await;
            (r, started.elapsed())
        };
        let ((slow, slow_at), (other, other_at)) = tokio::time::timeout(
            Duration::from_secs(5),
            futures::future::join(async { (slow.await, started.elapsed()) }, other),
        )
        .await
        .expect("nothing waits a day");
        assert_eq!(ended(&slow.expect("answer")).0, Outcome::Done);
        assert_eq!(ended(&other.expect("answer")).0, Outcome::Done);
        assert!(slow_at >= Duration::from_millis(300), "waited the cap, {slow_at:?}");
        assert!(other_at < slow_at, "the other command ran while the slow one waited: {other_at:?} vs {slow_at:?}");
    }

    #[actix_rt::test]
    async fn a_command_whose_fence_closed_while_it_waited_for_a_permit_is_not_attempted() {
        let script = Arc::new(Script { delay: Duration::from_millis(200), ..Script::default() });
        let responder = actor(&script, 1, Duration::from_millis(5));
        let (first_fence, second_fence) = (Fence::unbounded(), Fence::unbounded());
        let first = responder.send(execute("first", &first_fence));
        let second = responder.send(execute("second", &second_fence));
        // The second waits for the only permit; meanwhile its lease goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        second_fence.close();
        let (first, second) = futures::future::join(first, second).await;
        assert_eq!(ended(&first.expect("answer")).0, Outcome::Done);
        assert!(matches!(second.expect("answer"), CommandResult::Abandoned { attempts: 0, .. }));
        assert_eq!(script.attempts_of("second"), 0, "never sent to the service");
    }

    #[actix_rt::test]
    async fn a_command_fenced_mid_retry_is_abandoned_not_failed() {
        let script = Arc::new(Script::default().with("c", &[(503, None)]));
        let responder = actor(&script, 1, Duration::from_millis(100));
        let fence = Fence::unbounded();
        let result = responder.send(execute("c", &fence));
        let close = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            fence.close();
        };
        let (result, ()) = futures::future::join(result, close).await;
        match result.expect("answer") {
            CommandResult::Abandoned { attempts, .. } => assert!((1..4).contains(&attempts), "{attempts}"),
            other => panic!("a fenced command has no outcome: {other:?}"),
        }
    }

    /// Keeps every answer it is sent.
    #[derive(Default)]
    struct Collector(Arc<Mutex<Vec<crate::responders::Answer>>>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<Answers> for Collector {
        type Result = ();

        fn handle(&mut self, msg: Answers, _: &mut Self::Context) {
            self.0.lock().expect("lock").extend(msg.0);
        }
    }

    /// Sends `commands` as one batch to `responder` and waits for `n` answers: (ticket,
    /// outcome or abandoned, attempts), by ticket.
    async fn answers_to(
        responder: &Addr<ResponderActor>,
        commands: Vec<(u64, Execute)>,
    ) -> Vec<(u64, Option<Outcome>, u32)> {
        let answers = Arc::new(Mutex::new(vec![]));
        let collector = Collector(answers.clone()).start();
        let n = commands.len();
        responder.do_send(ExecuteBatch { commands, answers: collector.recipient() });
        let deadline = Instant::now() + Duration::from_secs(5);
        while answers.lock().expect("lock").len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut got: Vec<_> = answers
            .lock()
            .expect("lock")
            .iter()
            .map(|(t, r)| match r.as_ref().expect("an answer") {
                CommandResult::Ended { outcome, attempts, .. } => (*t, Some(*outcome), *attempts),
                CommandResult::Abandoned { attempts, .. } => (*t, None, *attempts),
            })
            .collect();
        got.sort_by_key(|(t, ..)| *t);
        got
    }

    #[actix_rt::test]
    async fn each_command_of_a_batch_is_answered_once_with_its_own_outcome() {
        let script = Arc::new(Script::default().with("flaky", &[(503, None), (200, None)]).with("bad", &[(400, None)]));
        let responder = actor(&script, 2, Duration::from_millis(5));
        let fence = Fence::unbounded();
        let commands = vec![(7, execute("flaky", &fence)), (8, execute("ok", &fence)), (9, execute("bad", &fence))];
        let got = answers_to(&responder, commands).await;
        assert_eq!(got, [(7, Some(Outcome::Done), 2), (8, Some(Outcome::Done), 1), (9, Some(Outcome::Failed), 1)]);
        assert!(script.batches.lock().expect("lock").is_empty(), "it does not take batches");
    }

    #[actix_rt::test]
    async fn a_responder_taking_batches_makes_first_attempts_together_as_permits_allow_and_retries_alone() {
        let script = Script { takes_batches: true, ..Script::default() };
        let script = Arc::new(script.with("flaky", &[(503, None), (200, None)]).with("bad", &[(400, None)]));
        let responder = actor(&script, 2, Duration::from_millis(5));
        let (fence, closed) = (Fence::unbounded(), Fence::unbounded());
        closed.close();
        let commands = vec![
            (1, execute("flaky", &fence)),
            (2, execute("ok", &fence)),
            (3, execute("bad", &fence)),
            (4, execute("gone", &closed)),
            (5, execute("ok", &fence)),
        ];
        let got = answers_to(&responder, commands).await;
        assert_eq!(
            got,
            [
                (1, Some(Outcome::Done), 2),
                (2, Some(Outcome::Done), 1),
                (3, Some(Outcome::Failed), 1),
                (4, None, 0),
                (5, Some(Outcome::Done), 1)
            ]
        );
        // Two permits: batches of two, the fenced command left out of its batch; the retry alone.
        assert_eq!(*script.batches.lock().expect("lock"), [2, 1, 1]);
        assert_eq!((script.attempts_of("flaky"), script.attempts_of("gone")), (2, 0));
    }

    #[actix_rt::test]
    async fn a_batch_dropped_unrun_answers_each_command_with_the_mailbox_error() {
        let answers = Arc::new(Mutex::new(vec![]));
        let collector = Collector(answers.clone()).start();
        let fence = Fence::unbounded();
        let batch = ExecuteBatch {
            commands: vec![(1, execute("a", &fence)), (2, execute("b", &fence))],
            answers: collector.recipient(),
        };
        // As a stopped actor's mailbox drops it.
        drop(batch);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got: Vec<_> = answers.lock().expect("lock").iter().map(|(t, r)| (*t, r.is_err())).collect();
        assert_eq!(got, [(1, true), (2, true)], "sent again, not waited for");
    }
}
