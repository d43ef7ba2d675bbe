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

use super::actor::{
    CommandResult, Execute, Panicked, ResponderActor, ResponderSpec, record_latencies, run_with_retries,
};

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
/// task and two wakes across threads per command.
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
    let running: FuturesUnordered<_> = commands
        .into_iter()
        .enumerate()
        .map(|(pos, (_, execute))| async move { (pos, run_with_retries(spec, &execute, me).await) })
        .collect();
    let mut ended = running.ready_chunks(ANSWERS_AT_ONCE);
    while let Some(chunk) = ended.next().await {
        let took = started.elapsed();
        let measured: Vec<_> = chunk.iter().map(|(_, result)| (took, result.attempts())).collect();
        record_latencies(spec, &measured);
        open.answer(chunk);
    }
}
