//! `sauna send`'s writes: records into PutRecords calls within Kinesis's limits, and the
//! entries a call rejected put again, with backoff, a bounded number of times.
//!
//! PutRecords is not all or nothing: a call that succeeds may have refused some of its entries
//! (`ErrorCode` `ProvisionedThroughputExceededException` when a shard is over its write limit,
//! or `InternalFailure`), and the SDK, which retries failed *calls*, never retries those. So the
//! entries are retried here. The call sits behind [`PutRecords`] so that this logic is tested
//! with a stand-in; the batches go one after the other, and a batch's failed entries are retried
//! before the next batch is sent, so commands of one partition key keep their order across
//! batches (within one call, PutRecords itself does not promise an order).

use std::collections::HashSet;
use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use super::input::Record;
use crate::model::Backoff;

/// PutRecords' limits on one call: entries, and bytes of data plus partition keys.
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;

/// Consecutive runs of records, each within `max_records` and `max_bytes` (a single record
/// larger than `max_bytes` gets a batch of its own: the input checks keep records far smaller).
pub fn batches(sizes: &[usize], max_records: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = vec![];
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == max_records || bytes + size > max_bytes) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// What PutRecords answered for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Put,
    Failed { code: String, message: String },
}

/// A PutRecords call that failed as a whole (after the SDK's own retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub message: String,
    /// Throttling, a 5xx, a timeout or a connection error: worth another attempt. Otherwise
    /// (no such stream, access denied) every later call would fail the same way.
    pub retryable: bool,
}

/// One PutRecords call: a result per record, in order.
#[async_trait]
pub trait PutRecords: Send + Sync {
    async fn put_records(&self, records: &[&Record]) -> Result<Vec<EntryResult>, CallError>;
}

/// The stream's PutRecords.
pub struct KinesisPut {
    pub client: aws_sdk_kinesis::Client,
    pub stream: String,
}

#[async_trait]
impl PutRecords for KinesisPut {
    async fn put_records(&self, records: &[&Record]) -> Result<Vec<EntryResult>, CallError> {
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(r.data.clone()))
                    .partition_key(&r.partition_key)
                    .build()
                    .map_err(|e| CallError {
                        message: format!("cannot build a PutRecords entry: {e}"),
                        retryable: false,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = self.client.put_records().stream_name(&self.stream).set_records(Some(entries)).send().await;
        let out = sent.map_err(|e| call_error(&e))?;
        Ok(out
            .records()
            .iter()
            .map(|r| match r.error_code() {
                None => EntryResult::Put,
                Some(code) => EntryResult::Failed {
                    code: code.to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect())
    }
}

fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> CallError {
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("(no error code)");
            let retryable = matches!(
                code,
                "ProvisionedThroughputExceededException"
                    | "KMSThrottlingException"
                    | "LimitExceededException"
                    | "ThrottlingException"
                    | "InternalFailure"
                    | "InternalFailureException"
                    | "ServiceUnavailable"
                    | "ServiceUnavailableException"
            );
            CallError { message: format!("{code}: {}", s.err().message().unwrap_or_default()), retryable }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CallError { message: DisplayErrorContext(e).to_string(), retryable: true }
        }
        _ => CallError { message: DisplayErrorContext(e).to_string(), retryable: false },
    }
}

/// Entry error codes worth another attempt (the rest, e.g. KMS access errors, are final).
fn retryable_entry(code: &str) -> bool {
    matches!(code, "ProvisionedThroughputExceededException" | "InternalFailure" | "KMSThrottlingException")
}

/// How often and how patiently a rejected entry is put again.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Attempts of an entry, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

/// What a `send` came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records the stream accepted.
    pub sent: usize,
    /// Records that needed more than one attempt (whether they got in or not).
    pub retried: usize,
    /// Records given up on: their line, and the last reason.
    pub rejected: Vec<(usize, String)>,
    /// Records not put because a call failed in a way every later call would: that call's and
    /// all after it.
    pub unsent: usize,
    /// That failure.
    pub fatal: Option<String>,
    pub calls: usize,
}

/// Puts every record, batch after batch; `progress` is told of every record that is done with
/// (put or given up on).
pub async fn send_all(
    api: &dyn PutRecords,
    records: &[Record],
    settings: &RetrySettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Summary {
    let mut summary = Summary::default();
    let sizes: Vec<usize> = records.iter().map(Record::size).collect();
    for range in batches(&sizes, MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL) {
        let end = range.end;
        if let Err(fatal) = send_batch(api, &records[range], settings, &mut summary, progress).await {
            summary.unsent += records.len() - end;
            summary.fatal = Some(fatal.message);
            break;
        }
    }
    summary
}

/// One batch, its rejected entries retried; `Err` when the call failed for good.
async fn send_batch(
    api: &dyn PutRecords,
    batch: &[Record],
    settings: &RetrySettings,
    summary: &mut Summary,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), CallError> {
    let mut pending: Vec<&Record> = batch.iter().collect();
    let mut retried: HashSet<usize> = HashSet::new();
    let mut attempt = 1;
    loop {
        summary.calls += 1;
        let failed: Vec<(&Record, String)> = match api.put_records(&pending).await {
            Ok(results) if results.len() == pending.len() => {
                let mut failed = vec![];
                for (record, result) in pending.iter().zip(results) {
                    match result {
                        EntryResult::Put => {
                            summary.sent += 1;
                            progress(1);
                        }
                        EntryResult::Failed { code, message } if retryable_entry(&code) => {
                            failed.push((*record, format!("{code}: {message}")))
                        }
                        EntryResult::Failed { code, message } => {
                            summary.rejected.push((record.line, format!("{code}: {message}")));
                            progress(1);
                        }
                    }
                }
                failed
            }
            Ok(results) => {
                let message = format!(
                    "PutRecords answered {} results for {} records (some may be on the stream)",
                    results.len(),
                    pending.len()
                );
                return Err(give_up(summary, &pending, CallError { message, retryable: false }, progress));
            }
            Err(e) if e.retryable => pending.iter().map(|r| (*r, e.message.clone())).collect(),
            Err(e) => return Err(give_up(summary, &pending, e, progress)),
        };
        if failed.is_empty() {
            break;
        }
        if attempt >= settings.max_attempts {
            for (record, why) in failed {
                summary.rejected.push((record.line, format!("not put after {attempt} attempts: {why}")));
                progress(1);
            }
            break;
        }
        for (record, _) in &failed {
            if retried.insert(record.line) {
                summary.retried += 1;
            }
        }
        pending = failed.into_iter().map(|(r, _)| r).collect();
        tokio::time::sleep(settings.backoff.delay(attempt)).await;
        attempt += 1;
    }
    Ok(())
}

/// A call failed for good: its records are not sent (one error says why, not one per record).
fn give_up(summary: &mut Summary, pending: &[&Record], e: CallError, progress: &(dyn Fn(u64) + Sync)) -> CallError {
    summary.unsent += pending.len();
    progress(pending.len() as u64);
    e
}

#[cfg(test)]
#[path = "putting_tests.rs"]
mod tests;
