//! KPL aggregates through one consumer: each user record is a command at its own extended
//! sequence number, the watermark stops inside an aggregate, a lease checkpointed inside one
//! (as sauna or a Java KCL writes it) resumes at its record and skips the user records it
//! covers, and an aggregate with a user record of another shard's range is dropped whole.

use std::sync::Arc;

use base64::Engine;

use super::*;
use crate::model::{ExtendedSequenceNumber, HashKeyRange, SequenceNumber};

/// `tests/fixtures/kpl/numbers.json`, made by aws-kinesis-agg: five user records whose data is
/// 21..=25 (so the stand-in parser gives them commandIds 21..=25), partition keys k1..k5; the
/// last has the explicit hash key 2^128 − 1.
fn numbers() -> bytes::Bytes {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/kpl/numbers.json")).expect("fixture");
    let data = base64::engine::general_purpose::STANDARD.decode(v["output"]["data"].as_str().expect("data"));
    bytes::Bytes::from(data.expect("base64"))
}

/// Record 1 (plain), record 2 (the aggregate of five), record 3 (plain).
fn shard() -> Arc<Shard> {
    let record = |seq: &str, data: bytes::Bytes| ReadRecord {
        sequence_number: seq.into(),
        partition_key: format!("pk-{seq}"),
        data,
    };
    let records = vec![
        record("1", bytes::Bytes::from_static(b"1")),
        record("2", numbers()),
        record("3", bytes::Bytes::from_static(b"3")),
    ];
    Arc::new(Shard { records: Mutex::new(records.into()), ..Shard::default() })
}

fn at(seq: u64, sub: u64) -> Checkpoint {
    Checkpoint::Sequence(ExtendedSequenceNumber::new(SequenceNumber::parse(&seq.to_string()).expect("digits"), sub))
}

async fn answer_label(seen: &Shared, label: &str) {
    let tx = seen.lock().expect("lock").waiting.remove(label).expect("the command is at the responder");
    tx.send(CommandResult::Ended { outcome: Outcome::Done, attempts: 1, detail: "ok".into() }).expect("waits");
    tokio::time::sleep(Duration::from_millis(60)).await;
}

fn at_responder(seen: &Shared) -> Vec<String> {
    seen.lock().expect("lock").waiting.keys().cloned().collect()
}

#[actix_rt::test]
async fn each_user_record_is_a_command_and_the_watermark_stops_inside_the_aggregate() {
    let source = shard();
    let (consumer, seen) = start_with(source.clone(), Checkpoint::TrimHorizon, 10);
    until("seven commands at the responder", || waiting(&seen) == 7).await;
    assert_eq!(at_responder(&seen), ["1", "2/0", "2/1", "2/2", "2/3", "2/4", "3"]);
    for label in ["1", "2/0", "2/1", "2/3"] {
        answer_label(&seen, label).await;
    }
    let progress = seen.lock().expect("lock").progress.clone();
    assert_eq!(progress.last(), Some(&at(2, 1)), "user records 0 and 1 of 2 are done, 2 is not: {progress:?}");
    assert_eq!(
        progress.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["1", "2", "2/1"],
        "never past a user record without an outcome"
    );
    for label in ["2/2", "3", "2/4"] {
        answer_label(&seen, label).await;
    }
    assert_eq!(seen.lock().expect("lock").progress.last(), Some(&at(3, 0)));
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(snapshot.counters.records_read, 3, "three Kinesis records");
    assert_eq!(snapshot.counters.user_records, 5);
    assert_eq!(snapshot.counters.outcome(Outcome::Done), 7);
    // The in-flight bound counts user records: after a batch of 7 user records in 3 Kinesis
    // records, a read asks for (room left) / 3 records: 3 once all are done.
    let limits = source.limits.lock().expect("lock").clone();
    assert_eq!(limits[0], 10);
    assert!(limits[1..].iter().all(|l| *l <= 3), "{limits:?}");
    until("a read with all done", || source.limits.lock().expect("lock").last() == Some(&3)).await;
}

#[actix_rt::test]
async fn a_checkpoint_inside_an_aggregate_resumes_at_its_record_and_skips_what_it_covers() {
    // As a Java KCL (or sauna) leaves a lease checkpointed at user record 2 of record 2.
    let source = shard();
    let (_consumer, seen) = start_with(source.clone(), at(2, 2), 10);
    until("three commands at the responder", || waiting(&seen) == 3).await;
    assert_eq!(
        source.starts.lock().expect("lock").first(),
        Some(&StartPosition::At(SequenceNumber::parse("2").expect("seq")))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        at_responder(&seen),
        ["2/3", "2/4", "3"],
        "record 1 (before the checkpoint) and user records 0..=2 of 2 (covered by it) are not actioned again"
    );
}

#[actix_rt::test]
async fn a_plain_record_checkpoint_resumes_after_the_record_itself() {
    // Sub-sequence number 0 at a plain record (every checkpoint before KPL support, and the
    // KCL's for plain records): the record is done.
    let source = shard();
    let (_consumer, seen) = start_with(source, at(1, 0), 10);
    until("six commands at the responder", || waiting(&seen) == 6).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(at_responder(&seen), ["2/0", "2/1", "2/2", "2/3", "2/4", "3"]);
}

#[actix_rt::test]
async fn an_aggregate_with_a_user_record_outside_the_shard_is_dropped_whole() {
    // The lower half of the hash key space: user record 4 (explicit hash key 2^128 − 1) is not
    // this shard's, so the aggregate is a mis-routed copy.
    let lower = HashKeyRange { start: 0, end: u128::MAX / 2 };
    let (consumer, seen) = start_full(shard(), Checkpoint::TrimHorizon, 10, None, distinct, Some(lower));
    until("two commands at the responder", || waiting(&seen) == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(at_responder(&seen), ["1", "3"]);
    answer_label(&seen, "1").await;
    assert_eq!(seen.lock().expect("lock").progress.last(), Some(&at(2, 4)), "the dropped aggregate is passed whole");
    answer_label(&seen, "3").await;
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!((snapshot.counters.user_records, snapshot.counters.user_records_dropped), (0, 5));

    // The whole hash key space (an unsplit stream): every user record is kept.
    let (_consumer, seen) = start_full(shard(), Checkpoint::TrimHorizon, 10, None, distinct, Some(HashKeyRange::ALL));
    until("seven commands at the responder", || waiting(&seen) == 7).await;
}

#[actix_rt::test]
async fn a_corrupt_aggregate_is_one_invalid_record() {
    let mut bad = numbers().to_vec();
    *bad.last_mut().expect("bytes") ^= 0x01;
    let record = |seq: &str, data: Vec<u8>| ReadRecord {
        sequence_number: seq.into(),
        partition_key: "pk".into(),
        data: bytes::Bytes::from(data),
    };
    let records = vec![record("1", bad), record("2", b"2".to_vec())];
    let source = Arc::new(Shard { records: Mutex::new(records.into()), ..Shard::default() });
    let (consumer, seen) = start_with(source, Checkpoint::TrimHorizon, 10);
    until("the record after it at the responder", || waiting(&seen) == 1).await;
    answer_label(&seen, "2").await;
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!((snapshot.counters.outcome(Outcome::Invalid), snapshot.counters.outcome(Outcome::Done)), (1, 1));
    assert_eq!(snapshot.watermark.as_deref(), Some("2"));
}
