//! How a record ends: its outcome is logged (once), counted, written to the outcome log and,
//! if so configured, dead-lettered; the record counts as done for the checkpoint only after
//! that, so a crash cannot lose a dead letter.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use super::actor::ShardConsumer;
use super::dispatch::Record;
use crate::dead_letters::DeadLetter;
use crate::metrics::Operation;
use crate::model::Outcome;
use crate::outcome_log::OutcomeRow;

/// The end of one record, as the consumer reports it.
#[derive(Debug, Clone)]
pub(super) struct RecordOutcome {
    pub outcome: Outcome,
    pub command_id: Option<uuid::Uuid>,
    /// The responder that actioned (or gave up on) the command, if it reached one.
    pub responder: Option<Arc<str>>,
    pub attempts: u32,
    /// "HTTP 200", or why it ended as it did.
    pub detail: String,
    /// Actioned after taking over the claim of a claimer that stopped mid-attempt: its side
    /// effect may have happened twice.
    pub possible_duplicate: bool,
}

impl ShardConsumer {
    /// Reports a record's outcome; it is completed once its dead letter (if any) is written.
    pub(super) fn finish(&mut self, idx: u64, record: Record, end: RecordOutcome, ctx: &mut Context<Self>) {
        self.record_outcome(&record, &end);
        self.write_outcome_row(&record, &end);
        let dead_letters =
            self.links.dead_letters.clone().filter(|_| self.settings.dead_letter_outcomes.contains(&end.outcome));
        let Some(dead_letters) = dead_letters else {
            self.complete(idx, ctx);
            return;
        };
        let letter = DeadLetter {
            time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            observer: self.settings.observer_id.clone(),
            stream: self.settings.stream_name.clone(),
            shard: self.shard().to_string(),
            sequence_number: record.seq.to_string(),
            sub_sequence_number: record.sub,
            partition_key: record.partition_key.to_string(),
            outcome: end.outcome,
            reason: end.detail,
            attempts: end.attempts,
            command_id: end.command_id.map(|u| u.to_string()),
            possible_duplicate: end.possible_duplicate,
            data: record.data,
        };
        ctx.spawn(dead_letters.send(letter).into_actor(self).map(move |_, act, ctx| act.complete(idx, ctx)));
    }

    fn write_outcome_row(&self, record: &Record, end: &RecordOutcome) {
        let Some(log) = &self.links.outcome_log else { return };
        let row = OutcomeRow {
            command_id: end.command_id.map(|u| u.to_string()),
            responder: end.responder.as_deref().map(str::to_owned),
            status: end.outcome,
            description: end.detail.clone(),
            observer: self.settings.observer_id.clone(),
            shard: self.shard().to_string(),
            sequence_number: record.label.to_string(),
            attempts: end.attempts,
            possible_duplicate: end.possible_duplicate,
            time: Utc::now(),
        };
        if log.try_send(row).is_err() {
            log::warn!(
                "outcome log: its mailbox is full; the row of {}/{} is only in this log",
                self.shard(),
                record.label
            );
        }
    }

    /// Sends the outcomes counted since the last report to the metrics, one sample per kind (a
    /// sample per command cost more than the rest of counting it): after outcomes handled
    /// together, on the consumer's tick, and when it stops.
    /// True when there were outcomes to report.
    pub(super) fn report_outcomes(&mut self) -> bool {
        let unreported = std::mem::take(&mut self.state.unreported);
        let any = unreported.outcomes.iter().any(|n| *n > 0);
        for (outcome, n) in Outcome::ALL.iter().zip(unreported.outcomes) {
            if n > 0 {
                self.links.metrics.count(outcome.metric_name(), Operation::ProcessTask, self.scope(), n);
            }
        }
        if unreported.possible_duplicates > 0 {
            let n = unreported.possible_duplicates;
            self.links.metrics.count("CommandsPossiblyDuplicated", Operation::ProcessTask, self.scope(), n);
        }
        any
    }

    /// Logs (once) and counts one record's outcome.
    fn record_outcome(&mut self, record: &Record, end: &RecordOutcome) {
        let outcome = end.outcome;
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.state.counters.outcomes[index] += 1;
        self.state.unreported.outcomes[index] += 1;
        self.state.unreported.possible_duplicates += u64::from(end.possible_duplicate);
        let level = if outcome == Outcome::Done { log::Level::Info } else { log::Level::Warn };
        if !log::log_enabled!(target: "sauna::outcome", level) {
            // Nothing to format: a line per command is most of what a quiet log level saves.
            return;
        }
        let id = end.command_id.map_or_else(|| "-".to_owned(), |u| u.to_string());
        let mut responder =
            end.responder.as_ref().map(|r| format!(" responder={r} attempts={}", end.attempts)).unwrap_or_default();
        if end.possible_duplicate {
            responder.push_str(" possibleDuplicate=true");
        }
        let (shard, seq, detail) = (self.shard(), &record.label, &end.detail);
        match outcome {
            Outcome::Done => log::info!(
                target: "sauna::outcome",
                "{outcome} shard={shard} seq={seq} commandId={id}{responder} {detail}"
            ),
            _ => log::warn!(
                target: "sauna::outcome",
                "{outcome} shard={shard} seq={seq} commandId={id}{responder} reason: {detail}"
            ),
        }
    }
}
