//! KPL-aggregated records. The Kinesis Producer Library (and the aggregators of its format)
//! packs many *user records* into one Kinesis record:
//!
//! ```text
//! F3 89 9A C2 | AggregatedRecord (protobuf) | MD5 of the protobuf (16 bytes)
//! ```
//!
//! A Sauna producer that uses the KPL writes one command per user record. This module is the
//! pure decoding (the parse pool calls it; the consumer gives each user record the Kinesis
//! record's sequence number and its index as sub-sequence number): the magic number, the
//! checksum, the protobuf, the partition key and explicit hash key tables, and each user
//! record's effective hash key, which says whether it belongs to the shard it was read from.
//! A record without the magic number is a plain record; one with it that does not decode is
//! corrupt, as a whole ([`KplError`] says where and what).

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use crate::model::HashKeyRange;

/// The first four bytes of every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// `AggregatedRecord` of the KPL's `messages.proto` (proto2).
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<Record>,
}

/// `Record` of `messages.proto`: one user record, its keys as indexes into the tables.
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    data: Bytes,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<Tag>,
}

/// `Tag` of `messages.proto` (decoded to be skipped: Sauna commands carry their own tags).
#[derive(Clone, PartialEq, prost::Message)]
struct Tag {
    #[prost(string, required, tag = "1")]
    key: String,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// One user record of an aggregate, in the order the aggregate holds them (its index there is
/// its sub-sequence number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    /// The explicit hash key, else the MD5 of the partition key (as Kinesis routes records).
    pub hash_key: u128,
    pub data: Bytes,
}

/// Why a record that starts with the magic number is not a readable aggregate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    #[error("KPL aggregated record: {len} bytes, too short for the magic number and a 16-byte MD5")]
    TooShort { len: usize },
    #[error("KPL aggregated record: checksum mismatch: the record ends with MD5 {found}, its body's MD5 is {computed}")]
    Checksum { found: String, computed: String },
    #[error("KPL aggregated record: the body is not an AggregatedRecord protobuf ({0})")]
    Protobuf(String),
    #[error("KPL aggregated record: it holds no user records")]
    Empty,
    #[error(
        "KPL aggregated record: user record {record}: partition_key_index {index} is outside the partition key table ({table} entries)"
    )]
    PartitionKeyIndex { record: usize, index: u64, table: usize },
    #[error(
        "KPL aggregated record: user record {record}: explicit_hash_key_index {index} is outside the explicit hash key table ({table} entries)"
    )]
    ExplicitHashKeyIndex { record: usize, index: u64, table: usize },
    #[error("KPL aggregated record: user record {record}: explicit hash key {value:?} is not a 128-bit decimal number")]
    ExplicitHashKey { record: usize, value: String },
}

/// Whether a record's data is meant as a KPL aggregate (it starts with the magic number).
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// The hash key Kinesis gives a partition key: its MD5 as a 128-bit big-endian integer.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// The user records of an aggregate; `Ok(None)` for a plain record (no magic number). The
/// user records share the record's buffer (no copy of their data).
pub fn deaggregate(data: &Bytes) -> Result<Option<Vec<UserRecord>>, KplError> {
    if !is_aggregated(data) {
        return Ok(None);
    }
    if data.len() < MAGIC.len() + DIGEST_LEN {
        return Err(KplError::TooShort { len: data.len() });
    }
    let body = data.slice(MAGIC.len()..data.len() - DIGEST_LEN);
    let found = &data[data.len() - DIGEST_LEN..];
    let computed: [u8; DIGEST_LEN] = Md5::digest(&body).into();
    if found != computed {
        return Err(KplError::Checksum { found: hex(found), computed: hex(&computed) });
    }
    let aggregate = AggregatedRecord::decode(body).map_err(|e| KplError::Protobuf(e.to_string()))?;
    if aggregate.records.is_empty() {
        return Err(KplError::Empty);
    }
    let AggregatedRecord { partition_key_table: keys, explicit_hash_key_table: hash_keys, records } = aggregate;
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| user_record(i, r, &keys, &hash_keys))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// One user record, its keys looked up in the tables.
fn user_record(i: usize, r: Record, keys: &[String], hash_keys: &[String]) -> Result<UserRecord, KplError> {
    let lookup = |table: &[String], index: u64| usize::try_from(index).ok().and_then(|x| table.get(x)).cloned();
    let partition_key = lookup(keys, r.partition_key_index).ok_or(KplError::PartitionKeyIndex {
        record: i,
        index: r.partition_key_index,
        table: keys.len(),
    })?;
    let explicit_hash_key = match r.explicit_hash_key_index {
        None => None,
        Some(index) => Some(lookup(hash_keys, index).ok_or(KplError::ExplicitHashKeyIndex {
            record: i,
            index,
            table: hash_keys.len(),
        })?),
    };
    let hash_key = match &explicit_hash_key {
        None => partition_key_hash(&partition_key),
        Some(v) => v.parse::<u128>().map_err(|_| KplError::ExplicitHashKey { record: i, value: v.clone() })?,
    };
    Ok(UserRecord { partition_key, explicit_hash_key, hash_key, data: r.data })
}

/// The first user record (index, hash key) whose hash key is outside `range`, if any.
///
/// The KCL drops the whole aggregate then, not only that user record: an aggregate holding a
/// user record of another shard's range was routed by a producer whose shard map was stale (a
/// reshard happened), and the KPL puts every user record of such an aggregate again, to the
/// shard it belongs to; what this shard holds of it is a copy.
pub fn first_outside(records: &[UserRecord], range: &HashKeyRange) -> Option<(usize, u128)> {
    records.iter().enumerate().find(|(_, r)| !range.contains(r.hash_key)).map(|(i, r)| (i, r.hash_key))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    //! The fixtures in `tests/fixtures/kpl/` were made by the aws-kinesis-agg aggregator:
    //! `.emulators/moto/bin/python tests/fixtures/kpl_aggregate.py` with each file's `input` on
    //! standard input gives its `output`.

    use base64::Engine;
    use serde_json::Value;

    use super::*;

    fn fixture(text: &str) -> (Value, Bytes) {
        let v: Value = serde_json::from_str(text).expect("fixture JSON");
        let data = base64::engine::general_purpose::STANDARD
            .decode(v["output"]["data"].as_str().expect("data"))
            .expect("base64");
        (v, Bytes::from(data))
    }

    const THREE: &str = include_str!("../tests/fixtures/kpl/three.json");
    const MANY: &str = include_str!("../tests/fixtures/kpl/many.json");

    /// Aggregated with `protobuf_body` as the body and a correct MD5.
    fn framed(protobuf_body: &[u8]) -> Bytes {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(protobuf_body);
        v.extend_from_slice(&Md5::digest(protobuf_body));
        Bytes::from(v)
    }

    #[test]
    fn decodes_what_the_aggregator_writes() {
        let (v, data) = fixture(THREE);
        let users = deaggregate(&data).expect("valid").expect("an aggregate");
        let input = v["input"]["records"].as_array().expect("records");
        let hash_keys = v["output"]["hashKeys"].as_array().expect("hash keys");
        assert_eq!(users.len(), 3);
        for ((u, i), h) in users.iter().zip(input).zip(hash_keys) {
            assert_eq!(u.partition_key, i["partitionKey"].as_str().expect("pk"));
            assert_eq!(u.explicit_hash_key.as_deref(), i["explicitHashKey"].as_str());
            assert_eq!(u.hash_key.to_string(), h.as_str().expect("decimal"), "as the Python side computed it");
        }
        assert_eq!(&users[0].data[..], b"first");
        assert_eq!(&users[1].data[..], b"second");
        assert_eq!(&users[2].data[..], [0x00, 0xff, 0x10], "bytes that are not text");
    }

    #[test]
    fn five_hundred_user_records_in_order() {
        let (v, data) = fixture(MANY);
        let users = deaggregate(&data).expect("valid").expect("an aggregate");
        assert_eq!(users.len(), 500);
        for (i, (u, input)) in users.iter().zip(v["input"]["records"].as_array().expect("records")).enumerate() {
            assert_eq!(std::str::from_utf8(&u.data).expect("text"), format!("user record {i}"));
            assert_eq!(u.partition_key, input["partitionKey"].as_str().expect("pk"));
        }
    }

    #[test]
    fn a_plain_record_is_not_an_aggregate() {
        assert_eq!(deaggregate(&Bytes::from_static(b"{\"schema\": \"iglu:...\"}")), Ok(None));
        assert_eq!(deaggregate(&Bytes::from_static(&[0xF3, 0x89, 0x9A])), Ok(None), "three bytes of the magic");
        assert_eq!(deaggregate(&Bytes::new()), Ok(None));
    }

    #[test]
    fn corrupt_aggregates_say_what_is_wrong() {
        let (_, data) = fixture(THREE);
        let mut flipped = data.to_vec();
        *flipped.last_mut().expect("bytes") ^= 0x01;
        let e = deaggregate(&Bytes::from(flipped)).expect_err("bad MD5");
        assert!(matches!(e, KplError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");

        let mut body_flipped = data.to_vec();
        body_flipped[6] ^= 0x40;
        assert!(matches!(deaggregate(&Bytes::from(body_flipped)), Err(KplError::Checksum { .. })));

        let garbage = framed(&[0xff; 12]);
        let e = deaggregate(&garbage).expect_err("not a protobuf");
        assert!(matches!(e, KplError::Protobuf(_)), "{e}");

        let short = Bytes::from([&MAGIC[..], &[1, 2, 3]].concat());
        assert_eq!(deaggregate(&short), Err(KplError::TooShort { len: 7 }));
        assert_eq!(deaggregate(&framed(&[])), Err(KplError::Empty), "an empty protobuf body");
    }

    #[test]
    fn indexes_outside_the_tables_and_bad_hash_keys_are_corrupt() {
        let record = |pk: u64, ehk: Option<u64>| Record {
            partition_key_index: pk,
            explicit_hash_key_index: ehk,
            data: Bytes::from_static(b"x"),
            tags: vec![],
        };
        let encode = |a: AggregatedRecord| framed(&a.encode_to_vec());
        let a = AggregatedRecord {
            partition_key_table: vec!["k".into()],
            explicit_hash_key_table: vec!["12".into(), "not a number".into()],
            records: vec![record(0, None), record(1, None)],
        };
        assert_eq!(deaggregate(&encode(a.clone())), Err(KplError::PartitionKeyIndex { record: 1, index: 1, table: 1 }));
        let b = AggregatedRecord { records: vec![record(0, Some(0)), record(0, Some(2))], ..a.clone() };
        assert_eq!(deaggregate(&encode(b)), Err(KplError::ExplicitHashKeyIndex { record: 1, index: 2, table: 2 }));
        let c = AggregatedRecord { records: vec![record(0, Some(1))], ..a.clone() };
        assert!(matches!(deaggregate(&encode(c)), Err(KplError::ExplicitHashKey { record: 0, .. })));
        let d = AggregatedRecord {
            records: vec![Record { tags: vec![Tag { key: "t".into(), value: None }], ..record(0, Some(0)) }],
            ..a
        };
        let users = deaggregate(&encode(d)).expect("valid").expect("an aggregate");
        assert_eq!((users[0].hash_key, users[0].partition_key.as_str()), (12, "k"), "tags are skipped");
    }

    #[test]
    fn partition_keys_hash_as_kinesis_does() {
        // MD5("alpha") = 2c1743a391305fbf367df8e4f069f9f9, as a big-endian integer.
        assert_eq!(partition_key_hash("alpha"), 0x2c17_43a3_9130_5fbf_367d_f8e4_f069_f9f9);
    }

    #[test]
    fn hash_key_filtering_finds_the_user_records_outside_the_shard() {
        let (_, data) = fixture(THREE);
        let users = deaggregate(&data).expect("valid").expect("an aggregate");
        // alpha hashes to 0x2c17… (in the lower half), the explicit hash key of beta is 2^127
        // (the first key of the upper half).
        let lower = HashKeyRange { start: 0, end: (1u128 << 127) - 1 };
        let upper = HashKeyRange { start: 1u128 << 127, end: u128::MAX };
        assert_eq!(first_outside(&users, &HashKeyRange::ALL), None, "an unsplit shard keeps everything");
        assert_eq!(first_outside(&users, &lower), Some((1, 1u128 << 127)), "beta belongs to the upper child");
        assert_eq!(first_outside(&users, &upper), Some((0, partition_key_hash("alpha"))));
        let only_alpha: Vec<UserRecord> = users.iter().filter(|u| u.partition_key == "alpha").cloned().collect();
        assert_eq!(first_outside(&only_alpha, &lower), None);
    }
}
