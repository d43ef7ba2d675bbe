//! One command's attempts, the machinery every responder shares: each attempt under the
//! responder's timeout and a panic guard, retries with exponential backoff and jitter
//! (honouring `Retry-After`, capped), a permit of the responder's concurrency per attempt, the
//! fence checked before each, and how an attempt settles into an outcome. The ResponderActor
//! runs a command through it alone, a batch (`batch.rs`) many at once.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt;

use super::Attempt;
use super::actor::{CommandResult, Execute, Panicked, ResponderSpec};
use crate::command::Command;
use crate::metrics::{Operation, Scope};
use crate::model::Outcome;

/// A command's attempts, and how long they took.
pub(super) async fn run_timed(
    spec: &ResponderSpec,
    msg: &Execute,
    me: &Recipient<Panicked>,
) -> (CommandResult, Duration) {
    let started = Instant::now();
    let result = run_with_retries(spec, msg, me, 0).await;
    (result, started.elapsed())
}

/// The latency of commands that ended (with their attempts), and their retries, as metrics.
pub(super) fn record_latencies(spec: &ResponderSpec, ended: &[(Duration, u32)]) {
    let took: Vec<Duration> = ended.iter().map(|(d, _)| *d).collect();
    spec.metrics.millis_each("ResponderLatency", Operation::Responder, Scope::Application, &took);
    let retries: u64 = ended.iter().map(|(_, attempts)| u64::from(attempts.saturating_sub(1))).sum();
    if retries > 0 {
        spec.metrics.count("ResponderRetries", Operation::Responder, Scope::Application, retries);
    }
}

/// One attempt, with its timeout; a panic is caught, reported and counted as a failed attempt.
async fn attempt_once(spec: &ResponderSpec, command: &Command, me: &Recipient<Panicked>) -> Attempt {
    guarded(spec, spec.responder.execute(command, &spec.context), me).await.unwrap_or_else(|failed| failed)
}

/// Runs an attempt (or the attempts of a batch) under the responder's timeout, catching a
/// panic, which is reported: `Err` holds the attempt a timeout or a panic comes to.
pub(super) async fn guarded<T>(
    spec: &ResponderSpec,
    attempt: impl Future<Output = T>,
    me: &Recipient<Panicked>,
) -> Result<T, Attempt> {
    let timeout = spec.responder.timeout().unwrap_or(spec.context.request_timeout);
    match AssertUnwindSafe(tokio::time::timeout(timeout, attempt)).catch_unwind().await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(_)) => {
            Err(Attempt::Retry { reason: format!("timed out after {} ms", timeout.as_millis()), retry_after: None })
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            me.do_send(Panicked(text.clone()));
            Err(Attempt::Retry { reason: format!("the responder panicked: {text}"), retry_after: None })
        }
    }
}

/// Attempts until done, a permanent failure, the attempt limit, or the fence closes. A permit
/// is held for each attempt only, never while waiting between attempts, so a command told to
/// wait (`Retry-After`) does not keep others from their turn; the wait is capped at
/// `retry.maxBackoffMillis` and counts as an attempt. `made`: the attempts made already (with
/// others of a batch, by [`Responder::execute_batch`](super::Responder::execute_batch)).
pub(super) async fn run_with_retries(
    spec: &ResponderSpec,
    msg: &Execute,
    me: &Recipient<Panicked>,
    made: u32,
) -> CommandResult {
    let command: &Command = &msg.command;
    let mut attempts = made;
    loop {
        if let Some(pace) = &spec.pace {
            pace.until_ready().await;
        }
        let attempt = {
            // Closed only if the spec is gone, which cannot happen while we hold it.
            let _permit = spec.permits.acquire().await;
            // Checked before every attempt, the first included: a command that waited for a
            // permit may have outlived its lease (another worker may be actioning it).
            if !msg.fence.is_valid() {
                return abandoned(attempts);
            }
            attempts += 1;
            attempt_once(spec, command, me).await
        };
        match settle(spec, attempts, attempt) {
            Ok(ended) => return ended,
            Err(again) => wait_to_retry(spec, command, attempts, again).await,
        }
    }
}

/// Logs why the `attempts`-th attempt at `command` is to be made again, and waits until then.
pub(super) async fn wait_to_retry(spec: &ResponderSpec, command: &Command, attempts: u32, again: (String, Duration)) {
    let (reason, delay) = again;
    log::debug!(
        "responder {}: attempt {attempts} of command {} failed ({reason}); retrying in {} ms",
        spec.responder.id(),
        command.envelope.command_id,
        delay.as_millis(),
    );
    tokio::time::sleep(delay).await;
}

/// A command whose fence closed before its next attempt.
pub(super) fn abandoned(attempts: u32) -> CommandResult {
    let reason = "its lease (or its consumer) is gone: the shard's next reader actions it".into();
    CommandResult::Abandoned { attempts, reason }
}

/// What the `attempts`-th attempt at a command comes to: how it ended, or why it is to be made
/// again and after how long (its backoff, or the `Retry-After` asked for, capped at
/// `retry.maxBackoffMillis`).
pub(super) fn settle(
    spec: &ResponderSpec,
    attempts: u32,
    attempt: Attempt,
) -> Result<CommandResult, (String, Duration)> {
    match attempt {
        Attempt::Done(detail) => Ok(CommandResult::Ended { outcome: Outcome::Done, attempts, detail }),
        Attempt::Fail(detail) => Ok(CommandResult::Ended { outcome: Outcome::Failed, attempts, detail }),
        Attempt::Retry { reason, .. } if attempts >= spec.retry.max_attempts => {
            let detail = format!("gave up after {attempts} attempts; last: {reason}");
            Ok(CommandResult::Ended { outcome: Outcome::Failed, attempts, detail })
        }
        Attempt::Retry { mut reason, retry_after } => {
            let asked = retry_after.unwrap_or_default();
            let delay = spec.retry.backoff().delay(attempts).max(asked.min(spec.retry.max_backoff));
            if asked > spec.retry.max_backoff {
                reason.push_str(&format!(" (Retry-After {} s capped at retry.maxBackoffMillis)", asked.as_secs()));
            }
            Err((reason, delay))
        }
    }
}
