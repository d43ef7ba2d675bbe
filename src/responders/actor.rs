//! `ResponderActor`: the shared machinery around every responder — a bounded mailbox, a
//! concurrency limit, a per-attempt timeout, retries with exponential backoff and jitter
//! (honouring `Retry-After`), panic containment with restart, and metrics.
//!
//! Each command runs as its own task, detached from the actor's lifecycle: a restart of the
//! actor never cancels a command another task is actioning.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use futures::FutureExt;
use rand::Rng;
use tokio::sync::Semaphore;

use super::{Attempt, Responder, ResponderContext};
use crate::command::Command;
use crate::config::runtime::RetryPolicy;
use crate::lease_manager::LeaseDeadline;
use crate::metrics::{MetricsHandle, Scope};
use crate::outcome::Outcome;

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

/// A panic caught inside one attempt: the actor restarts (fresh state) and goes on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Panicked(String);

/// Asks for a snapshot.
#[derive(Debug, Message)]
#[rtype(result = "ResponderSnapshot")]
pub struct ObserveResponder;

/// What a responder actor has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderSnapshot {
    pub id: String,
    pub restarts: u32,
    pub in_flight: usize,
    pub mailbox_capacity: usize,
}

pub struct ResponderActor {
    responder: Arc<dyn Responder>,
    context: Arc<ResponderContext>,
    retry: RetryPolicy,
    permits: Arc<Semaphore>,
    concurrency: usize,
    mailbox: usize,
    restarts: u32,
    metrics: MetricsHandle,
}

impl ResponderActor {
    pub fn new(
        responder: Arc<dyn Responder>,
        context: Arc<ResponderContext>,
        retry: RetryPolicy,
        concurrency: usize,
        mailbox: usize,
        metrics: MetricsHandle,
    ) -> Self {
        ResponderActor {
            responder,
            context,
            retry,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            mailbox,
            restarts: 0,
            metrics,
        }
    }

    /// Starts it under actix's supervisor: a restart keeps its address and mailbox, so the
    /// registry built at start stays valid.
    pub fn start_supervised(self) -> Addr<Self> {
        actix::Supervisor::start(move |_| self)
    }
}

impl Actor for ResponderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
        if self.restarts > 0 {
            // Restart backoff: the mailbox waits, nothing is dropped.
            let delay = Duration::from_millis(100 * 2u64.pow(self.restarts.min(8))).min(Duration::from_secs(30));
            ctx.wait(actix::fut::wrap_future(tokio::time::sleep(delay)));
        }
    }
}

impl actix::Supervised for ResponderActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.restarts += 1;
        self.metrics.count("Restarts", "Responder", Scope::Application, 1);
        log::warn!(
            "responder {}: restarting after a panic ({} restart{} so far)",
            self.responder.id(),
            self.restarts,
            if self.restarts == 1 { "" } else { "s" }
        );
    }
}

impl Handler<Panicked> for ResponderActor {
    type Result = ();

    fn handle(&mut self, msg: Panicked, ctx: &mut Self::Context) {
        log::error!("responder {} panicked: {}", self.responder.id(), msg.0);
        ctx.stop();
    }
}

impl Handler<ObserveResponder> for ResponderActor {
    type Result = MessageResult<ObserveResponder>;

    fn handle(&mut self, _: ObserveResponder, ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ResponderSnapshot {
            id: self.responder.id().to_owned(),
            restarts: self.restarts,
            in_flight: self.concurrency - self.permits.available_permits(),
            mailbox_capacity: ctx.parts().capacity(),
        })
    }
}

impl Handler<Execute> for ResponderActor {
    type Result = ResponseFuture<CommandResult>;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        let responder = self.responder.clone();
        let context = self.context.clone();
        let retry = self.retry.clone();
        let permits = self.permits.clone();
        let metrics = self.metrics.clone();
        let me = ctx.address();
        Box::pin(async move {
            // Closed only if the actor is gone, which cannot happen while we hold `permits`.
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let result = run_with_retries(&*responder, &msg, &context, &retry, &me).await;
            metrics.millis("ResponderLatency", "Responder", Scope::Application, started.elapsed());
            if result.attempts > 1 {
                metrics.count("ResponderRetries", "Responder", Scope::Application, u64::from(result.attempts - 1));
            }
            result
        })
    }
}

/// Attempts until done, a permanent failure, or the attempt limit.
async fn run_with_retries(
    responder: &dyn Responder,
    msg: &Execute,
    context: &ResponderContext,
    retry: &RetryPolicy,
    me: &Addr<ResponderActor>,
) -> CommandResult {
    let command: &Command = &msg.command;
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
        let timeout = responder.timeout().unwrap_or(context.request_timeout);
        let run = tokio::time::timeout(timeout, responder.execute(command, context));
        let outcome = match AssertUnwindSafe(run).catch_unwind().await {
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
        };
        match outcome {
            Attempt::Done(detail) => {
                return CommandResult { outcome: Outcome::Done, attempts: attempt, detail };
            }
            Attempt::Fail(reason) => {
                return CommandResult { outcome: Outcome::Failed, attempts: attempt, detail: reason };
            }
            Attempt::Retry { reason, retry_after } => {
                if attempt >= retry.max_attempts {
                    return CommandResult {
                        outcome: Outcome::Failed,
                        attempts: attempt,
                        detail: format!("gave up after {attempt} attempts; last: {reason}"),
                    };
                }
                let delay = backoff(retry, attempt).max(retry_after.unwrap_or_default());
                log::debug!(
                    "responder {}: attempt {attempt} of command {} failed ({reason}); retrying in {} ms",
                    responder.id(),
                    command.envelope.command_id,
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Exponential backoff with jitter: half the nominal delay fixed, half random, so that many
/// commands failing together do not retry together.
pub fn backoff(retry: &RetryPolicy, attempt: u32) -> Duration {
    let nominal =
        retry.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(retry.max_backoff);
    let half = nominal / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}
