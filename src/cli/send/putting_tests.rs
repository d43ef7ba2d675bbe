//! Batching and the per-entry retries of `sauna send`, with a stand-in for PutRecords.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;

#[test]
fn batches_by_count() {
    let sizes = vec![10; 1201];
    let b = batches(&sizes, MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL);
    assert_eq!(b, [0..500, 500..1000, 1000..1201]);
    let exactly_one_call = batches(&[10; 500], 500, MAX_BYTES_PER_CALL);
    assert_eq!((exactly_one_call.len(), exactly_one_call[0].clone()), (1, 0..500));
    assert!(batches(&[], 500, MAX_BYTES_PER_CALL).is_empty());
}

#[test]
fn batches_by_bytes() {
    let mib = 1024 * 1024;
    // Five records of 1 MiB fill a call exactly; the sixth starts the next.
    let b = batches(&[mib; 6], MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL);
    assert_eq!(b, [0..5, 5..6]);
    let b = batches(&[mib, mib, mib, mib, mib - 1, 2, 1], MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL);
    assert_eq!(b, [0..5, 5..7]);
    // Both limits: whichever comes first.
    let b = batches(&[3, 3, 3, 3, 3], 2, 5);
    assert_eq!(b, [0..1, 1..2, 2..3, 3..4, 4..5]);
    let b = batches(&[1, 1, 1, 1, 1], 2, 5);
    assert_eq!(b, [0..2, 2..4, 4..5]);
    // An oversized record gets a call of its own rather than being lost.
    assert_eq!(batches(&[1, 10, 1], 500, 5), [0..1, 1..2, 2..3]);
}

#[test]
fn batches_never_break_a_limit() {
    let sizes: Vec<usize> = (0..5000).map(|i| (i * 7919) % 40_000 + 1).collect();
    let b = batches(&sizes, 500, 100_000);
    assert_eq!(b.first().map(|r| r.start), Some(0));
    assert_eq!(b.last().map(|r| r.end), Some(sizes.len()));
    for w in b.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
    for r in &b {
        assert!(r.len() <= 500);
        assert!(sizes[r.clone()].iter().sum::<usize>() <= 100_000);
    }
}

/// What the stand-in answers, per call: each entry's fate by its position in the call.
type Script = Box<dyn Fn(usize, &[&Record]) -> Result<Vec<EntryResult>, CallError> + Send + Sync>;

/// A stand-in for PutRecords: answers as scripted, and records every call's lines.
struct Scripted {
    script: Script,
    calls: Mutex<Vec<Vec<usize>>>,
}

impl Scripted {
    fn new(script: impl Fn(usize, &[&Record]) -> Result<Vec<EntryResult>, CallError> + Send + Sync + 'static) -> Self {
        Scripted { script: Box::new(script), calls: Mutex::default() }
    }

    fn calls(&self) -> Vec<Vec<usize>> {
        self.calls.lock().expect("lock").clone()
    }
}

#[async_trait]
impl PutRecords for Scripted {
    async fn put_records(&self, records: &[&Record]) -> Result<Vec<EntryResult>, CallError> {
        let n = {
            let mut calls = self.calls.lock().expect("lock");
            calls.push(records.iter().map(|r| r.line).collect());
            calls.len()
        };
        (self.script)(n, records)
    }
}

fn records(n: usize) -> Vec<Record> {
    (1..=n).map(|line| Record { line, data: format!("r{line}").into_bytes(), partition_key: "k".into() }).collect()
}

fn throttled() -> EntryResult {
    EntryResult::Failed { code: "ProvisionedThroughputExceededException".into(), message: "Rate exceeded".into() }
}

fn settings(max_attempts: u32) -> RetrySettings {
    RetrySettings { max_attempts, backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(4)) }
}

async fn run(api: &Scripted, records: &[Record], max_attempts: u32) -> (Summary, u64) {
    let done = AtomicU64::new(0);
    let progress = |n: u64| {
        done.fetch_add(n, Ordering::Relaxed);
    };
    let summary = send_all(api, records, &settings(max_attempts), &progress).await;
    (summary, done.load(Ordering::Relaxed))
}

#[tokio::test]
async fn rejected_entries_are_retried_alone_until_put() {
    // Call 1 refuses lines 2 and 4 of five; call 2 (just those) refuses line 4 again; call 3 puts it.
    let api = Scripted::new(|call, records| {
        Ok(records
            .iter()
            .map(|r| match (call, r.line) {
                (1, 2 | 4) | (2, 4) => throttled(),
                _ => EntryResult::Put,
            })
            .collect())
    });
    let (summary, progress) = run(&api, &records(5), 8).await;
    assert_eq!(api.calls(), [vec![1, 2, 3, 4, 5], vec![2, 4], vec![4]]);
    assert_eq!(
        summary,
        Summary { sent: 5, retried: 2, rejected: vec![], unsent: 0, fatal: None, calls: 3 },
        "two records needed a retry, one of them twice"
    );
    assert_eq!(progress, 5);
}

#[tokio::test]
async fn an_entry_refused_every_time_is_given_up_after_the_attempts() {
    let api = Scripted::new(|_, records| {
        Ok(records.iter().map(|r| if r.line == 3 { throttled() } else { EntryResult::Put }).collect())
    });
    let (summary, progress) = run(&api, &records(4), 3).await;
    assert_eq!(api.calls().len(), 3);
    assert_eq!(summary.sent, 3);
    assert_eq!(summary.retried, 1);
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].0, 3);
    assert!(summary.rejected[0].1.starts_with("not put after 3 attempts: ProvisionedThroughputExceededException"));
    assert_eq!(progress, 4);
}

#[tokio::test]
async fn a_permanent_entry_error_is_not_retried() {
    let api = Scripted::new(|_, records| {
        Ok(records
            .iter()
            .map(|r| {
                if r.line == 1 {
                    EntryResult::Failed { code: "KMSAccessDeniedException".into(), message: "no".into() }
                } else {
                    EntryResult::Put
                }
            })
            .collect())
    });
    let (summary, _) = run(&api, &records(2), 8).await;
    assert_eq!(api.calls().len(), 1);
    assert_eq!((summary.sent, summary.retried), (1, 0));
    assert_eq!(summary.rejected, [(1, "KMSAccessDeniedException: no".to_owned())]);
}

#[tokio::test]
async fn a_throttled_call_is_retried_whole_and_the_next_batch_waits_for_it() {
    let api = Scripted::new(|call, records| {
        if call <= 2 {
            Err(CallError { message: "ProvisionedThroughputExceededException: slow down".into(), retryable: true })
        } else {
            Ok(vec![EntryResult::Put; records.len()])
        }
    });
    let (summary, progress) = run(&api, &records(501), 8).await;
    let calls = api.calls();
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [500, 500, 500, 1]);
    assert_eq!(calls[3], [501], "the second batch goes once the first is in");
    assert_eq!((summary.sent, summary.retried, summary.calls), (501, 500, 4));
    assert_eq!(progress, 501);
}

#[tokio::test]
async fn a_fatal_call_error_stops_the_send() {
    let api = Scripted::new(|call, records| {
        if call == 1 {
            Ok(vec![EntryResult::Put; records.len()])
        } else {
            Err(CallError { message: "ResourceNotFoundException: no stream".into(), retryable: false })
        }
    });
    let (summary, progress) = run(&api, &records(1200), 8).await;
    assert_eq!(api.calls().len(), 2, "no retry, no third batch");
    assert_eq!(summary.sent, 500);
    assert!(summary.rejected.is_empty());
    assert_eq!(summary.unsent, 700, "the failed call's 500 and the 200 after it");
    assert_eq!(summary.fatal.as_deref(), Some("ResourceNotFoundException: no stream"));
    assert_eq!(progress, 1000);
}

#[tokio::test]
async fn an_answer_of_the_wrong_length_is_not_guessed_at() {
    let api = Scripted::new(|_, _| Ok(vec![EntryResult::Put]));
    let (summary, _) = run(&api, &records(3), 8).await;
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.unsent, 3);
    assert!(summary.fatal.as_deref().is_some_and(|f| f.contains("1 results for 3 records")));
}
