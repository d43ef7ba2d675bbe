//! The journey of one dispatched command, as a task of its own: claim its `commandId` (when
//! dedup is on), send it to its responder, finish the claim with the outcome, and tell the
//! consumer what it came to. A command claimed by someone else waits here for that claim to
//! end, or for its claimer to be gone for longer than an attempt can last.
//!
//! The task is detached from the consumer on purpose: a consumer stopped while a command is at
//! its responder (its lease lapsed, it was frozen by SIGSTOP) still records the command's
//! outcome in its claim when the answer comes, so the shard's next reader finds it `done`
//! instead of actioning it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::ShardConsumer;
use super::dispatch::Pending;
use super::outcomes::RecordOutcome;
use crate::claims::{ClaimAnswer, ClaimState, ClaimStore, Claimer, Held};
use crate::lease_manager::LeaseOwner;
use crate::model::{Backoff, Outcome};
use crate::responders::{CommandResult, Execute};

/// How claims are kept: how long the claim of a claimer that is gone is waited for before it
/// is taken over (the longest an attempt in flight can still last), how often a waiting
/// command looks again.
#[derive(Debug, Clone)]
pub struct ClaimTimings {
    pub stale_after: Duration,
    pub recheck_every: Duration,
    /// How long the claim of a command without a time to live is kept.
    pub retention: Duration,
}

/// A command on its way, as its task carries it.
pub(super) struct Journey {
    /// The claim table, its timings, and who claims (`None`: dedup is off).
    pub claims: Option<(Arc<dyn ClaimStore>, ClaimTimings, Claimer)>,
    pub stale: Option<Held>,
    pub recipient: Recipient<Execute>,
    pub execute: Execute,
}

/// What a journey came to.
pub(super) enum Arrival {
    Executed {
        result: Result<CommandResult, MailboxError>,
        taken_over: Option<Claimer>,
    },
    /// Its claim was finished already.
    Duplicate {
        state: ClaimState,
        by: Claimer,
        detail: String,
    },
    /// Someone else's claim holds it.
    Held(Held),
    ClaimFailed(String),
    /// Its fence closed before anything was done.
    Fenced,
}

/// A journey's arrival, back at its consumer.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Arrived {
    pub idx: u64,
    pub pending: Pending,
    pub responder_id: Arc<str>,
    pub arrival: Arrival,
}

impl Journey {
    pub async fn run(self) -> Arrival {
        if !self.execute.fence.is_valid() {
            return Arrival::Fenced;
        }
        let Some((claims, timings, claimer)) = &self.claims else {
            return Arrival::Executed { result: self.execute().await, taken_over: None };
        };
        let command_id = self.execute.command.envelope.command_id.to_string();
        let expires_at = self.expires_at(timings);
        let taken_over = match claims.claim(&command_id, claimer, expires_at, self.stale.as_ref()).await {
            Ok(ClaimAnswer::Granted { taken_over }) => taken_over,
            Ok(ClaimAnswer::Finished { state, by, detail }) => return Arrival::Duplicate { state, by, detail },
            Ok(ClaimAnswer::Held(held)) => return Arrival::Held(held),
            Err(e) => return Arrival::ClaimFailed(e.to_string()),
        };
        let result = self.execute().await;
        settle(&**claims, &command_id, claimer, &result).await;
        Arrival::Executed { result, taken_over }
    }

    /// When the claim may go: the command's own expiry, or the retention.
    fn expires_at(&self, timings: &ClaimTimings) -> i64 {
        let envelope = &self.execute.command.envelope;
        match envelope.time_to_live {
            Some(ttl) => envelope.when_created.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2) + 60,
            None => chrono::Utc::now().timestamp() + i64::try_from(timings.retention.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    async fn execute(&self) -> Result<CommandResult, MailboxError> {
        self.recipient.send(self.execute.clone()).await
    }
}

/// Finishes the claim with what the responder answered (or gives it up, if no attempt was
/// made); tried a few times, then left claimed (a later reader actions the command again once
/// the claim is stale: a possible duplicate).
async fn settle(claims: &dyn ClaimStore, command_id: &str, me: &Claimer, result: &Result<CommandResult, MailboxError>) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    for _ in 0..4 {
        let written = match result {
            Ok(CommandResult::Ended { outcome, attempts, detail }) => {
                let state = if *outcome == Outcome::Done { ClaimState::Done } else { ClaimState::Failed };
                claims.finish(command_id, me, state, detail, *attempts).await
            }
            Ok(CommandResult::Abandoned { attempts: 0, .. }) => claims.release(command_id, me).await,
            // Attempts were made and may have acted: the claim goes stale, and the next reader
            // actions the command again (a possible duplicate). A mailbox error is sent again
            // under the same claim.
            Ok(CommandResult::Abandoned { .. }) | Err(_) => return,
        };
        match written {
            Ok(true) => return,
            Ok(false) => {
                log::warn!(
                    "claim of command {command_id}: taken over by another worker before its outcome was recorded here: a possible duplicate"
                );
                return;
            }
            Err(e) => {
                log::warn!("claim of command {command_id}: outcome not recorded ({e}); trying again");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    log::error!(
        "claim of command {command_id}: its outcome could not be recorded; it stays claimed, and a later reader of the command actions it again (a possible duplicate)"
    );
}

impl Handler<Arrived> for ShardConsumer {
    type Result = ();

    fn handle(&mut self, msg: Arrived, ctx: &mut Self::Context) {
        let Arrived { idx, mut pending, responder_id, arrival } = msg;
        let command_id = Some(pending.command.envelope.command_id);
        match arrival {
            Arrival::Executed { result, taken_over } => {
                self.answered((idx, pending), responder_id, result, taken_over.is_some(), ctx)
            }
            Arrival::Duplicate { state, by, detail } => {
                let detail = format!(
                    "already {} by {} (shard {}, seq {}): {detail}",
                    state.as_str(),
                    by.owner,
                    by.shard,
                    by.sequence_number
                );
                let end = RecordOutcome {
                    outcome: Outcome::Duplicate,
                    command_id,
                    responder: None,
                    attempts: 0,
                    detail,
                    possible_duplicate: false,
                };
                self.finish(idx, pending.record, end, ctx);
            }
            Arrival::Held(held) => self.wait_for_claim(idx, pending, held, ctx),
            Arrival::ClaimFailed(e) => {
                pending.claim_failures += 1;
                let delay =
                    Backoff::new(Duration::from_millis(200), Duration::from_secs(10)).delay(pending.claim_failures);
                log::warn!(
                    "shard {}: command {}: cannot claim it ({e}); trying again in {} ms",
                    self.shard(),
                    pending.command.envelope.command_id,
                    delay.as_millis()
                );
                ctx.run_later(delay, move |act, ctx| act.send(idx, pending, ctx));
            }
            Arrival::Fenced => self.abandoned(idx, &pending, 0, "its lease (or its consumer) is gone"),
        }
    }
}

impl ShardConsumer {
    /// Another claimer holds the command: look again later. Once its claimer is gone (it lost
    /// the lease it claimed under) for longer than an attempt can last, take the claim over.
    fn wait_for_claim(&mut self, idx: u64, pending: Pending, held: Held, ctx: &mut Context<Self>) {
        let Some(timings) = self.settings.claims.clone() else { return };
        if pending.claim_wait.as_deref().is_none_or(|(seen, _)| *seen != held) {
            log::info!(
                "shard {}: command {} is claimed by {} (shard {}, seq {}): waiting for that claim to end",
                self.shard(),
                pending.command.envelope.command_id,
                held.by.owner,
                held.by.shard,
                held.by.sequence_number
            );
        }
        let by = held.by.clone();
        if by.owner == self.settings.worker_id {
            // This process: live while that tenure is this consumer's (another record of the
            // same command is out); an earlier tenure's attempts are fenced.
            let gone = by.tenure != self.lease.tenure.0;
            return self.claim_checked(idx, pending, held, gone, &timings, ctx);
        }
        let request = self.links.lease_owner.send(LeaseOwner(by.shard.clone()));
        ctx.spawn(request.into_actor(self).map(move |owner, act, ctx| {
            // Unknown (the lease table did not answer): not gone yet.
            let gone = matches!(owner, Ok(Ok(ref o)) if o.as_deref() != Some(by.owner.as_str()));
            act.claim_checked(idx, pending, held, gone, &timings, ctx);
        }));
    }

    fn claim_checked(
        &mut self,
        idx: u64,
        mut pending: Pending,
        held: Held,
        gone: bool,
        timings: &ClaimTimings,
        ctx: &mut Context<Self>,
    ) {
        let since = match pending.claim_wait.as_deref() {
            Some((seen, Some(since))) if *seen == held && gone => Some(*since),
            _ => gone.then(Instant::now),
        };
        pending.stale = since.is_some_and(|t| t.elapsed() >= timings.stale_after).then(|| Box::new(held.clone()));
        pending.claim_wait = Some(Box::new((held, since)));
        ctx.run_later(timings.recheck_every, move |act, ctx| act.send(idx, pending, ctx));
    }
}
