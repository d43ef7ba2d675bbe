//! `DeadLetters`: where records that end without being actioned go (`failed`, `invalid`,
//! `unroutable`, `expired`, as configured): a JSON-lines file and/or another Kinesis stream,
//! each entry with the original bytes, shard, sequence number, outcome, reason and attempts.
//!
//! A record counts as done for its shard's checkpoint only once its dead letter is written, so a
//! crash cannot lose it; a destination that keeps failing is retried a few times, then the
//! entry goes to the log at ERROR level (never silently) and the shard moves on.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use aws_sdk_kinesis::primitives::Blob;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use crate::model::{Backoff, Outcome};
use crate::supervision::stops_on_request;

/// One record to dead-letter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub time: String,
    pub observer: String,
    pub stream: String,
    pub shard: String,
    pub sequence_number: String,
    /// For a user record of a KPL aggregate, its index there (its data and partition key are
    /// the user record's; a corrupt aggregate is dead-lettered whole, without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<u64>,
    pub partition_key: String,
    pub outcome: Outcome,
    pub reason: String,
    pub attempts: u32,
    pub command_id: Option<String>,
    /// Actioned after taking over the claim of a claimer that stopped mid-attempt: its side
    /// effect may have happened twice.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub possible_duplicate: bool,
    /// The record's bytes, base64 (they may not be UTF-8).
    #[serde(serialize_with = "base64_bytes")]
    pub data: Bytes,
}

fn base64_bytes<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Message for DeadLetter {
    /// `Err` once every attempt failed (the entry is then in the log).
    type Result = Result<(), String>;
}

pub struct DeadLetters {
    file: Option<PathBuf>,
    stream: Option<(aws_sdk_kinesis::Client, String)>,
    mailbox: usize,
    written: u64,
}

impl DeadLetters {
    pub fn new(file: Option<PathBuf>, stream: Option<(aws_sdk_kinesis::Client, String)>, mailbox: usize) -> Self {
        DeadLetters { file, stream, mailbox, written: 0 }
    }
}

impl Actor for DeadLetters {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

/// Appends one line (one `write` call, so concurrent writers never interleave lines).
fn append(path: &PathBuf, line: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line)?;
    f.sync_data()
}

impl Handler<DeadLetter> for DeadLetters {
    // One at a time: the file's lines and the stream's records stay in the order they came.
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, letter: DeadLetter, _: &mut Self::Context) -> Self::Result {
        let file = self.file.clone();
        let stream = self.stream.clone();
        let fut = async move {
            let mut line = serde_json::to_vec(&letter).map_err(|e| e.to_string())?;
            line.push(b'\n');
            let mut last_error = String::new();
            let (mut file_done, mut stream_done) = (file.is_none(), stream.is_none());
            let mut backoff = Backoff::new(Duration::from_millis(400), Duration::from_secs(5));
            for attempt in 0..5u32 {
                if attempt > 0 {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                if let (false, Some(path)) = (file_done, &file) {
                    let (path, bytes) = (path.clone(), line.clone());
                    match tokio::task::spawn_blocking(move || append(&path, &bytes)).await {
                        Ok(Ok(())) => file_done = true,
                        Ok(Err(e)) => last_error = format!("file {}: {e}", path_display(&file)),
                        Err(e) => last_error = format!("file {}: {e}", path_display(&file)),
                    }
                }
                if let (false, Some((client, name))) = (stream_done, &stream) {
                    let put = client
                        .put_record()
                        .stream_name(name)
                        .partition_key(format!("{}/{}", letter.shard, letter.sequence_number))
                        .data(Blob::new(line.clone()))
                        .send()
                        .await;
                    match put {
                        Ok(_) => stream_done = true,
                        Err(e) => {
                            last_error = format!("stream {name}: {}", aws_sdk_kinesis::error::DisplayErrorContext(e))
                        }
                    }
                }
                if file_done && stream_done {
                    return Ok(());
                }
            }
            // The record's data may carry credentials (a PagerDuty service key, say): the log
            // names the record, never its bytes or the reason text built from them.
            log::error!(
                "dead letter not written ({last_error}): observer {} shard {} seq {} outcome {} commandId {} ({} bytes of record data, not logged)",
                letter.observer,
                letter.shard,
                letter.sequence_number,
                letter.outcome,
                letter.command_id.as_deref().unwrap_or("-"),
                letter.data.len()
            );
            Err(last_error)
        };
        Box::pin(fut.into_actor(self).map(|result, act, _| {
            if result.is_ok() {
                act.written += 1;
            }
            result
        }))
    }
}

stops_on_request!(DeadLetters);

fn path_display(p: &Option<PathBuf>) -> String {
    p.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}
