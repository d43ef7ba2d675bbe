//! Batches: how a consumer sends the commands it has for one responder at once. One message
//! wakes the responder's thread once; the batch's commands run in one task, each still waiting
//! for its pace and its permit; those that end together are answered in one message. Sent one
//! by one ([`Execute`]), each command cost a task of its own and a reply across threads, which
//! was most of what a command cost.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::Attempt;
use super::actor::{CommandResult, Execute, Panicked, ResponderActor, ResponderSpec};
use super::attempts::{abandoned, guarded, record_latencies, run_with_retries, settle, wait_to_retry};
use crate::command::Command;

/// Action these commands (of one shard), each answered as soon as it ends: how a consumer sends
/// the commands it has for one responder at once. One message, one wake of the responder's
/// thread and answers gathered as they come, where [`Execute`] costs a task and a reply
/// across threads per command — most of what a command cost before.
pub struct ExecuteBatch {
    /// Each command with its consumer's ticket for it.
    pub commands: Vec<(u64, Execute)>,
    pub answers: Recipient<Answers>,
}

impl Message for ExecuteBatch {
    type Result = ();
}

/// A batch dropped unrun (its actor stopped with it in the mailbox): its commands are answered
/// with the mailbox error, and sent again.
impl Drop for ExecuteBatch {
    fn drop(&mut self) {
        answer_unanswered(&self.answers, self.commands.drain(..).map(|(t, _)| t));
    }
}

/// Commands of a batch that ended, by ticket (a mailbox error: no answer, send it again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Answers(pub Vec<Answer>);

/// A command's ticket, and how it ended (a mailbox error: no answer, send it again).
pub type Answer = (u64, Result<CommandResult, MailboxError>);

impl Handler<ExecuteBatch> for ResponderActor {
    type Result = ();

    fn handle(&mut self, mut batch: ExecuteBatch, ctx: &mut Self::Context) {
        let commands = std::mem::take(&mut batch.commands);
        let open =
            OpenTickets { tickets: commands.iter().map(|(t, _)| Some(*t)).collect(), answers: batch.answers.clone() };
        // Detached, as every command is: a restart of this actor cancels none of them.
        actix::spawn(run_batch(self.spec().clone(), commands, open, ctx.address().recipient()));
    }
}

/// The tickets of a batch not answered yet: should the batch's task be dropped before they
/// end (the runtime stopping), they are answered with the mailbox error, so their consumer
/// sends them again rather than wait for ever.
struct OpenTickets {
    tickets: Vec<Option<u64>>,
    answers: Recipient<Answers>,
}

impl OpenTickets {
    /// Answers the commands at these positions of the batch.
    fn answer(&mut self, ended: Vec<(usize, CommandResult)>) {
        let answers = ended
            .into_iter()
            .filter_map(|(pos, result)| Some((self.tickets.get_mut(pos)?.take()?, Ok(result))))
            .collect();
        self.answers.do_send(Answers(answers));
    }
}

impl Drop for OpenTickets {
    fn drop(&mut self) {
        answer_unanswered(&self.answers, self.tickets.iter().flatten().copied());
    }
}

/// Answers these tickets with the mailbox error (no answer: send them again), if there are any.
fn answer_unanswered(answers: &Recipient<Answers>, tickets: impl Iterator<Item = u64>) {
    let unanswered: Vec<Answer> = tickets.map(|t| (t, Err(MailboxError::Closed))).collect();
    if !unanswered.is_empty() {
        answers.do_send(Answers(unanswered));
    }
}

/// The most answers sent back in one message.
const ANSWERS_AT_ONCE: usize = 1024;

/// Runs every command of a batch at once (each still waits for its pace and its permit), and
/// answers those that ended together in one message: one task and one wake for what would be a
/// task and two wakes across threads per command. A responder that takes batches makes the
/// first attempts of as many commands as it has permits together; only the retries are
/// attempted one by one.
async fn run_batch(
    spec: Arc<ResponderSpec>,
    commands: Vec<(u64, Execute)>,
    mut open: OpenTickets,
    me: Recipient<Panicked>,
) {
    let (spec, me) = (&spec, &me);
    // Every command of the batch starts now, and those of a chunk end together: two readings
    // of the clock per chunk, not per command, time them all.
    let started = Instant::now();
    let mut left: Vec<(usize, Execute)> = commands.into_iter().map(|(_, execute)| execute).enumerate().collect();
    let mut running = FuturesUnordered::new();
    if spec.responder.takes_batches() && spec.pace.is_none() {
        while !left.is_empty() {
            let rest = left.split_off(left.len().min(spec.concurrency.max(1)));
            let chunk = std::mem::replace(&mut left, rest);
            let firsts = attempt_together(spec, &chunk, me).await;
            let mut ended = Vec::with_capacity(chunk.len());
            for ((pos, execute), first) in chunk.into_iter().zip(firsts) {
                match first.map(|attempt| settle(spec, 1, attempt)) {
                    None => ended.push((pos, abandoned(0))),
                    Some(Ok(result)) => ended.push((pos, result)),
                    Some(Err(again)) => running.push(finish(spec, me, pos, execute, Some(again))),
                }
            }
            answer(spec, &mut open, started, ended);
        }
    }
    running.extend(left.into_iter().map(|(pos, execute)| finish(spec, me, pos, execute, None)));
    let mut ended = running.ready_chunks(ANSWERS_AT_ONCE);
    while let Some(chunk) = ended.next().await {
        answer(spec, &mut open, started, chunk);
    }
}

/// Answers these commands of a batch, and records how long they took since it `started`.
fn answer(spec: &ResponderSpec, open: &mut OpenTickets, started: Instant, ended: Vec<(usize, CommandResult)>) {
    if ended.is_empty() {
        return;
    }
    let took = started.elapsed();
    let measured: Vec<_> = ended.iter().map(|(_, result)| (took, result.attempts())).collect();
    record_latencies(spec, &measured);
    open.answer(ended);
}

/// A command of a batch, from where its first attempt left it (`again`: made with others, to be
/// made again after a wait; `None`: not made yet).
async fn finish(
    spec: &ResponderSpec,
    me: &Recipient<Panicked>,
    pos: usize,
    execute: Execute,
    again: Option<(String, std::time::Duration)>,
) -> (usize, CommandResult) {
    let made = match again {
        Some(again) => {
            wait_to_retry(spec, &execute.command, 1, again).await;
            1
        }
        None => 0,
    };
    (pos, run_with_retries(spec, &execute, me, made).await)
}

/// The first attempts at these commands, made together under one timeout and a permit each:
/// `None` for a command whose fence had closed (not attempted).
async fn attempt_together(
    spec: &ResponderSpec,
    chunk: &[(usize, Execute)],
    me: &Recipient<Panicked>,
) -> Vec<Option<Attempt>> {
    let wanted = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
    // Closed only if the spec is gone, which cannot happen while we hold it.
    let _permits = spec.permits.acquire_many(wanted).await;
    // Checked once the permits are held, as before any attempt.
    let valid: Vec<bool> = chunk.iter().map(|(_, execute)| execute.fence.is_valid()).collect();
    let commands: Vec<&Command> =
        chunk.iter().zip(&valid).filter(|(_, valid)| **valid).map(|((_, execute), _)| &*execute.command).collect();
    let n = commands.len();
    let made = match n {
        0 => Vec::new(),
        _ => match guarded(spec, spec.responder.execute_batch(commands, &spec.context), me).await {
            Ok(made) if made.len() == n => made,
            Ok(made) => {
                let reason = format!("the responder answered {} attempts for {n} commands", made.len());
                vec![Attempt::Retry { reason, retry_after: None }; n]
            }
            Err(failed) => vec![failed; n],
        },
    };
    let mut made = made.into_iter();
    valid.into_iter().map(|valid| if valid { made.next() } else { None }).collect()
}
