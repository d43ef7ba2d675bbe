//! Parsing and schema validation of records on threads of their own (a `SyncArbiter` with one
//! thread per core), so that the CPU-heavy part of a batch uses both cores and never holds up
//! the arbiters that run the ShardConsumers' I/O. A KPL-aggregated record is taken apart here
//! too (checksum, protobuf, hash keys), and each of its user records classified.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use chrono::Utc;

use crate::command::{Classified, CommandParser};
use crate::kpl;
use crate::model::HashKeyRange;

/// Classify these records (one GetRecords batch), in order, for a shard whose hash key range is
/// `hash_range` (`None`: unknown, every user record is kept).
#[derive(Debug)]
pub struct ParseBatch {
    pub records: Vec<Bytes>,
    pub hash_range: Option<HashKeyRange>,
}

/// A batch classified: what each record is, in order, and the records themselves, handed back.
/// (Moved there and back rather than cloned: a clone of each record's `Bytes` allocated a shared
/// header for it, later freed, ~300 instructions a command; README: Performance.)
#[derive(Debug)]
pub struct ParsedBatch {
    pub parsed: Vec<Parsed>,
    pub records: Vec<Bytes>,
}

impl ParseBatch {
    /// Classifies every record with `classify` (see [`parse_record`]).
    pub fn parse(self, classify: impl Fn(&[u8]) -> Classified) -> ParsedBatch {
        let range = self.hash_range.as_ref();
        let parsed = self.records.iter().map(|data| parse_record(data, range, &classify)).collect();
        ParsedBatch { parsed, records: self.records }
    }
}

impl Message for ParseBatch {
    type Result = ParsedBatch;
}

/// What one Kinesis record is.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A plain record — or a corrupt KPL aggregate, `Invalid` as a whole (its reason says what
    /// is wrong), so that it is dead-lettered with its original bytes.
    Record(Classified),
    /// The user records of a KPL aggregate, in order: the index of each is its sub-sequence
    /// number.
    Aggregate(Vec<UserCommand>),
    /// A KPL aggregate with a user record outside the shard's hash key range: none of it is
    /// this shard's to process (see [`kpl::first_outside`]).
    OutsideShard { user_records: usize, reason: String },
}

/// One user record of an aggregate, classified.
#[derive(Debug, Clone)]
pub struct UserCommand {
    pub partition_key: String,
    pub data: Bytes,
    pub class: Classified,
}

/// Takes one record apart (if it is an aggregate) and classifies what it holds with
/// `classify` (the parse workers' work; the consumer's tests call it with their own).
pub fn parse_record(data: &Bytes, range: Option<&HashKeyRange>, classify: impl Fn(&[u8]) -> Classified) -> Parsed {
    let users = match kpl::deaggregate(data) {
        Ok(None) => return Parsed::Record(classify(data)),
        Ok(Some(users)) => users,
        Err(e) => return Parsed::Record(Classified::Invalid { reason: e.to_string(), command_id: None }),
    };
    if let Some((index, hash_key)) = range.and_then(|r| kpl::first_outside(&users, r)) {
        let reason = format!(
            "user record {index} has hash key {hash_key}, outside the shard's range {}..={}",
            range.map_or(0, |r| r.start),
            range.map_or(0, |r| r.end)
        );
        return Parsed::OutsideShard { user_records: users.len(), reason };
    }
    Parsed::Aggregate(
        users
            .into_iter()
            .map(|u| UserCommand { class: classify(&u.data), partition_key: u.partition_key, data: u.data })
            .collect(),
    )
}

pub struct ParseWorker {
    parser: Arc<CommandParser>,
}

impl Actor for ParseWorker {
    type Context = SyncContext<Self>;
}

impl Handler<ParseBatch> for ParseWorker {
    type Result = MessageResult<ParseBatch>;

    fn handle(&mut self, batch: ParseBatch, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now();
        // Classification is written not to panic; if it ever does, the record is invalid
        // rather than the thread dead.
        let classify = |bytes: &[u8]| {
            std::panic::catch_unwind(AssertUnwindSafe(|| self.parser.classify(bytes, now))).unwrap_or_else(|_| {
                Classified::Invalid {
                    reason: "record data: the parser panicked on this record (a bug: please report it)".into(),
                    command_id: None,
                }
            })
        };
        MessageResult(batch.parse(classify))
    }
}

/// Starts `threads` parse workers sharing one mailbox.
pub fn start(parser: Arc<CommandParser>, threads: usize) -> Addr<ParseWorker> {
    SyncArbiter::start(threads.max(1), move || ParseWorker { parser: parser.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three user records of `tests/fixtures/kpl/three.json` (made by aws-kinesis-agg):
    /// alpha (hash key in the lower half), beta (explicit hash key 2^127), alpha.
    fn three() -> Bytes {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/kpl/three.json")).expect("fixture");
        let data = v["output"]["data"].as_str().expect("data");
        Bytes::from(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).expect("base64"))
    }

    fn invalid(bytes: &[u8]) -> Classified {
        Classified::Invalid { reason: String::from_utf8_lossy(bytes).into_owned(), command_id: None }
    }

    #[test]
    fn each_user_record_is_classified_in_order() {
        let Parsed::Aggregate(users) = parse_record(&three(), Some(&HashKeyRange::ALL), invalid) else {
            panic!("an aggregate");
        };
        let seen: Vec<(&str, String)> = users
            .iter()
            .map(|u| match &u.class {
                Classified::Invalid { reason, .. } => (u.partition_key.as_str(), reason.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seen[0], ("alpha", "first".to_owned()));
        assert_eq!(seen[1], ("beta", "second".to_owned()));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn hash_key_filtering_drops_aggregates_with_user_records_outside_the_shard() {
        let lower = HashKeyRange { start: 0, end: (1u128 << 127) - 1 };
        let upper = HashKeyRange { start: 1u128 << 127, end: u128::MAX };
        for range in [lower, upper] {
            match parse_record(&three(), Some(&range), invalid) {
                Parsed::OutsideShard { user_records, reason } => {
                    assert_eq!(user_records, 3, "the whole aggregate, as the KCL drops it");
                    assert!(reason.contains("outside the shard's range"), "{reason}");
                }
                other => panic!("{range:?}: {other:?}"),
            }
        }
        assert!(matches!(parse_record(&three(), None, invalid), Parsed::Aggregate(u) if u.len() == 3), "no range");
    }

    #[test]
    fn a_corrupt_aggregate_is_one_invalid_record_and_a_plain_record_is_parsed_as_before() {
        let mut bad = three().to_vec();
        bad[10] ^= 0xff;
        match parse_record(&Bytes::from(bad), Some(&HashKeyRange::ALL), invalid) {
            Parsed::Record(Classified::Invalid { reason, command_id: None }) => {
                assert!(reason.starts_with("KPL aggregated record: checksum mismatch"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let plain = Bytes::from_static(b"\xf3 not the whole magic");
        assert!(
            matches!(parse_record(&plain, None, invalid), Parsed::Record(Classified::Invalid { reason, .. }) if reason.contains("not the whole magic"))
        );
    }
}
