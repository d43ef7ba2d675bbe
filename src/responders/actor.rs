//! `ResponderActor`: the shared machinery around every responder — a bounded mailbox, a
//! concurrency limit, a per-attempt timeout, retries with exponential backoff and jitter
//! (honouring `Retry-After`), panic containment, and metrics.
//!
//! Each command runs as its own task, detached from the actor's lifecycle: a restart of the
//! actor never cancels a command another task is actioning. A panic inside an attempt is caught,
//! counted as a failed attempt (retried), and stops the actor, which the observer's Supervisor
//! restarts (with backoff) behind the same route.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use futures::FutureExt;
use tokio::sync::Semaphore;

use super::{Attempt, Responder, ResponderContext};
use crate::command::Command;
use crate::config::runtime::RetryPolicy;
use crate::metrics::{MetricsHandle, Operation, Scope};
use crate::model::{LeaseDeadline, Outcome};
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, ExitReason};

/// Action this command (one record of one shard).
#[derive(Debug, Clone)]
pub struct Execute {
    pub command: Arc<Command>,
    pub shard_id: Arc<str>,
    pub sequence_number: Arc<str>,
    /// The lease under which the command was read: no retry is made once it has lapsed (the
    /// shard's next owner reads the command again).
    pub deadline: LeaseDeadline,
}

/// How a command ended at its responder: `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub outcome: Outcome,
    pub attempts: u32,
    /// "HTTP 200", or why it failed.
    pub detail: String,
}

impl Message for Execute {
    type Result = CommandResult;
}

/// A panic caught inside one attempt: the actor stops, and is restarted by its Supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Panicked(String);

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
    permits: Arc<Semaphore>,
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
        let permits = Arc::new(Semaphore::new(concurrency));
        ResponderSpec { responder, context, retry, concurrency, mailbox, metrics, permits }
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

impl Handler<Execute> for ResponderActor {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        let spec = self.spec.clone();
        let me = ctx.address().recipient::<Panicked>();
        Box::pin(async move {
            // Closed only if the spec is gone, which cannot happen while we hold it.
            let _permit = spec.permits.clone().acquire_owned().await;
            let started = Instant::now();
            let result = run_with_retries(&spec, &msg, &me).await;
            spec.metrics.millis("ResponderLatency", Operation::Responder, Scope::Application, started.elapsed());
            if result.attempts > 1 {
                let retries = u64::from(result.attempts - 1);
                spec.metrics.count("ResponderRetries", Operation::Responder, Scope::Application, retries);
            }
            result
        })
    }
}

/// One attempt, with its timeout; a panic is caught, reported and counted as a failed attempt.
async fn attempt_once(spec: &ResponderSpec, command: &Command, me: &Recipient<Panicked>) -> Attempt {
    let timeout = spec.responder.timeout().unwrap_or(spec.context.request_timeout);
    let run = tokio::time::timeout(timeout, spec.responder.execute(command, &spec.context));
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => {
            Attempt::Retry { reason: format!("timed out after {} ms", timeout.as_millis()), retry_after: None }
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            me.do_send(Panicked(text.clone()));
            Attempt::Retry { reason: format!("the responder panicked: {text}"), retry_after: None }
        }
    }
}

/// Attempts until done, a permanent failure, or the attempt limit.
async fn run_with_retries(spec: &ResponderSpec, msg: &Execute, me: &Recipient<Panicked>) -> CommandResult {
    let command: &Command = &msg.command;
    let backoff = spec.retry.backoff();
    let mut attempt = 0u32;
    loop {
        if attempt > 0 && !msg.deadline.is_valid() {
            return CommandResult {
                outcome: Outcome::Failed,
                attempts: attempt,
                detail: "not retried: the shard's lease was lost (its next owner reads the command again)".into(),
            };
        }
        attempt += 1;
        match attempt_once(spec, command, me).await {
            Attempt::Done(detail) => return CommandResult { outcome: Outcome::Done, attempts: attempt, detail },
            Attempt::Fail(reason) => {
                return CommandResult { outcome: Outcome::Failed, attempts: attempt, detail: reason };
            }
            Attempt::Retry { reason, .. } if attempt >= spec.retry.max_attempts => {
                return CommandResult {
                    outcome: Outcome::Failed,
                    attempts: attempt,
                    detail: format!("gave up after {attempt} attempts; last: {reason}"),
                };
            }
            Attempt::Retry { reason, retry_after } => {
                let delay = backoff.delay(attempt).max(retry_after.unwrap_or_default());
                log::debug!(
                    "responder {}: attempt {attempt} of command {} failed ({reason}); retrying in {} ms",
                    spec.responder.id(),
                    command.envelope.command_id,
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::command::{Classified, CommandParser, SchemaRegistry};
    use crate::config::runtime::Endpoints;
    use crate::iglu::SchemaCriterion;
    use crate::responders::{AttemptFuture, http};
    use crate::supervision::ChildId;

    /// A service that answers with the statuses given, one per attempt (the last one for ever).
    #[derive(Debug)]
    struct Answers {
        statuses: Mutex<Vec<u16>>,
        attempts: Mutex<u32>,
    }

    impl Responder for Answers {
        fn id(&self) -> &str {
            "answers"
        }

        fn criteria(&self) -> Vec<SchemaCriterion> {
            vec!["iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion")]
        }

        fn execute<'a>(&'a self, _: &'a Command, _: &'a ResponderContext) -> AttemptFuture<'a> {
            *self.attempts.lock().expect("lock") += 1;
            let mut statuses = self.statuses.lock().expect("lock");
            let status = if statuses.len() > 1 { statuses.remove(0) } else { statuses[0] };
            Box::pin(async move { http::attempt_for(status, None, "from the stand-in") })
        }
    }

    fn command() -> Arc<Command> {
        let text = serde_json::json!({
            "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
            "data": {
                "envelope": {"schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                    "data": {"commandId": "9dadfc92-9311-43c7-9cee-61ab590a6e81", "whenCreated": "2017-01-02T19:14:42Z",
                        "execution": {"semantics": "AT_LEAST_ONCE", "timeToLive": null}, "tags": {}}},
                "command": {"schema": "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
                    "data": {"text": "hello"}}}
        });
        let criterion = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*".parse().expect("criterion");
        let parser = CommandParser::new(Arc::new(SchemaRegistry::embedded()), vec![vec![criterion]]);
        match parser.classify(text.to_string().as_bytes(), chrono::Utc::now()) {
            Classified::Routable { command, .. } => command,
            other => panic!("{other:?}"),
        }
    }

    async fn execute(statuses: &[u16]) -> (CommandResult, u32) {
        let responder = Arc::new(Answers { statuses: Mutex::new(statuses.to_vec()), attempts: Mutex::new(0) });
        let retry = RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            request_timeout: Duration::from_secs(1),
        };
        let endpoints = Endpoints {
            pager_duty_events_url: "http://127.0.0.1:9/".into(),
            sendgrid_api_url: "http://127.0.0.1:9".into(),
        };
        let context = Arc::new(ResponderContext::new(endpoints, Duration::from_secs(1)));
        let spec = Arc::new(ResponderSpec::new(responder.clone(), context, retry, 2, 8, MetricsHandle::disabled()));
        let exit = ExitGuard::detached(ChildId::Responder { route: 0, incarnation: 1 });
        let actor = ResponderActor::new(spec, 0, Duration::ZERO, exit).start();
        let msg = Execute {
            command: command(),
            shard_id: Arc::from("shardId-000000000000"),
            sequence_number: Arc::from("1"),
            deadline: LeaseDeadline::unbounded(),
        };
        let result = actor.send(msg).await.expect("the actor answers");
        let attempts = *responder.attempts.lock().expect("lock");
        (result, attempts)
    }

    #[actix_rt::test]
    async fn a_5xx_is_retried_until_done() {
        let (result, attempts) = execute(&[503, 502, 200]).await;
        assert_eq!((result.outcome, result.attempts, attempts), (Outcome::Done, 3, 3), "{result:?}");
    }

    #[actix_rt::test]
    async fn a_400_is_not_retried() {
        let (result, attempts) = execute(&[400, 200]).await;
        assert_eq!((result.outcome, result.attempts, attempts), (Outcome::Failed, 1, 1), "{result:?}");
        assert!(result.detail.starts_with("HTTP 400"), "{}", result.detail);
    }

    #[actix_rt::test]
    async fn transient_failures_give_up_at_the_attempt_limit() {
        let (result, attempts) = execute(&[500]).await;
        assert_eq!((result.outcome, result.attempts, attempts), (Outcome::Failed, 4, 4), "{result:?}");
        assert!(result.detail.starts_with("gave up after 4 attempts"), "{}", result.detail);
    }
}
