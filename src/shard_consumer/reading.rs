//! `ShardReader`: the Kinesis calls of a ShardConsumer (GetShardIterator, GetRecords), behind a
//! trait so that a consumer can be driven in a test by records of the test's own making. The
//! consumer sees plain values — a batch of records, the next iterator, the children of a closed
//! shard — and errors sorted by what it does about them.

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;

use crate::model::{SequenceNumber, ShardInfo};

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    After(SequenceNumber),
    /// At the record of a checkpoint (what of it the checkpoint covers is skipped).
    At(SequenceNumber),
    TrimHorizon,
    Latest,
    /// Epoch milliseconds.
    AtTimestamp(i64),
}

/// One record as read.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
}

/// One GetRecords answer.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub records: Vec<ReadRecord>,
    /// `None`: the end of a closed shard.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
    /// At the end of a closed shard, its children (when the service says).
    pub child_shards: Vec<ShardInfo>,
}

/// Why a read failed, sorted by what the consumer does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The iterator is older than 5 minutes: get a new one after the last record read.
    #[error("the shard iterator expired")]
    ExpiredIterator,
    /// Over the shard's read quota (or KMS's): back off.
    #[error("throttled")]
    Throttled,
    /// The iterator is not usable (e.g. a bad sequence number): get a new one after a pause.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `ResourceInUseException` on SubscribeToShard: another subscription holds the shard (a
    /// previous owner's, for up to 5 seconds): back off and subscribe again.
    #[error("the shard's subscription is in use: {0}")]
    InUse(String),
    /// `ResourceNotFoundException`: the shard (or the whole stream) is not there — a parent
    /// shard past the stream's retention, or a deleted stream.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait ShardReader: Send + Sync + 'static {
    /// A shard iterator at `from`; `None` when the shard is closed and nothing is left to read.
    async fn iterator(&self, shard: &str, from: &StartPosition) -> Result<Option<String>, ReadError>;

    /// Up to `limit` records from `iterator`.
    async fn records(&self, iterator: &str, limit: i32) -> Result<RecordBatch, ReadError>;

    /// Whether the stream still lists `shard` (an error if the stream itself cannot be listed).
    async fn shard_is_listed(&self, shard: &str) -> Result<bool, ReadError>;

    /// Whether `records` itself waits for new records (a subscription that the service pushes
    /// to): the consumer then reads again at once after a batch that was not full, instead of
    /// pausing `idleTimeBetweenReadsMillis`.
    fn waits_for_records(&self) -> bool {
        false
    }
}

/// Reads a Kinesis stream by polling (GetShardIterator, GetRecords).
#[derive(Debug, Clone)]
pub struct KinesisReader {
    client: Client,
    stream: String,
}

impl KinesisReader {
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        KinesisReader { client, stream: stream.into() }
    }
}

#[async_trait]
impl ShardReader for KinesisReader {
    async fn iterator(&self, shard: &str, from: &StartPosition) -> Result<Option<String>, ReadError> {
        let req = self.client.get_shard_iterator().stream_name(&self.stream).shard_id(shard);
        let req = match from {
            StartPosition::After(seq) => {
                req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(seq.as_str())
            }
            StartPosition::At(seq) => {
                req.shard_iterator_type(ShardIteratorType::AtSequenceNumber).starting_sequence_number(seq.as_str())
            }
            StartPosition::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartPosition::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            StartPosition::AtTimestamp(ms) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_smithy_types::DateTime::from_millis(*ms)),
        };
        match req.send().await {
            Ok(out) => Ok(out.shard_iterator),
            Err(e) => {
                let service = e.as_service_error();
                Err(if service.is_some_and(|s| s.is_resource_not_found_exception()) {
                    ReadError::NotFound(crate::aws_error::explain(&e))
                } else if service.is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()) {
                    ReadError::Throttled
                } else if service.is_some_and(|s| s.is_invalid_argument_exception()) {
                    ReadError::InvalidArgument(crate::aws_error::explain(&e))
                } else {
                    ReadError::Other(crate::aws_error::explain(&e))
                })
            }
        }
    }

    async fn records(&self, iterator: &str, limit: i32) -> Result<RecordBatch, ReadError> {
        let out = self.client.get_records().shard_iterator(iterator).limit(limit).send().await.map_err(read_error)?;
        let child_shards = out.child_shards.unwrap_or_default().into_iter().map(child_shard).collect();
        let records = out.records.into_iter().map(read_record).collect();
        Ok(RecordBatch {
            records,
            next_iterator: out.next_shard_iterator,
            millis_behind_latest: out.millis_behind_latest,
            child_shards,
        })
    }

    async fn shard_is_listed(&self, shard: &str) -> Result<bool, ReadError> {
        let lister = crate::lease_manager::KinesisShards::new(self.client.clone(), self.stream.clone());
        match crate::lease_manager::ShardLister::list(&lister).await {
            Ok(shards) => Ok(shards.iter().any(|s| s.id == shard)),
            Err(e) => Err(ReadError::Other(e.to_string())),
        }
    }
}

/// A record as the service returned it (by GetRecords or in a SubscribeToShard event).
pub fn read_record(r: aws_sdk_kinesis::types::Record) -> ReadRecord {
    ReadRecord {
        sequence_number: r.sequence_number,
        partition_key: r.partition_key.unwrap_or_default(),
        data: Bytes::from(r.data.into_inner()),
    }
}

/// A child shard named at the end of a closed shard.
pub fn child_shard(c: aws_sdk_kinesis::types::ChildShard) -> ShardInfo {
    ShardInfo {
        starting_hash_key: c.hash_key_range().map(|r| r.starting_hash_key().to_owned()).unwrap_or_default(),
        ending_hash_key: c.hash_key_range().map(|r| r.ending_hash_key().to_owned()).unwrap_or_default(),
        id: c.shard_id,
        parents: c.parent_shards,
        closed: false,
    }
}

fn read_error(e: SdkError<aws_sdk_kinesis::operation::get_records::GetRecordsError>) -> ReadError {
    let service = e.as_service_error();
    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
        ReadError::ExpiredIterator
    } else if service
        .is_some_and(|s| s.is_provisioned_throughput_exceeded_exception() || s.is_kms_throttling_exception())
    {
        ReadError::Throttled
    } else if service.is_some_and(|s| s.is_invalid_argument_exception()) {
        ReadError::InvalidArgument(crate::aws_error::explain(&e))
    } else if service.is_some_and(|s| s.is_resource_not_found_exception()) {
        ReadError::NotFound(crate::aws_error::explain(&e))
    } else {
        ReadError::Other(crate::aws_error::explain(&e))
    }
}
