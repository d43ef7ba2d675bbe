//! `ShardLister`: the stream's shards as the LeaseManager learns them (`ListShards`), behind a
//! trait so that a LeaseManager can be driven in a test with a stream of its own making.

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;

use crate::model::ShardInfo;

#[async_trait]
pub trait ShardLister: Send + Sync + 'static {
    /// Every shard of the stream, open and closed.
    async fn list(&self) -> Result<Vec<ShardInfo>, ListShardsError>;
}

/// The shards of a Kinesis stream.
#[derive(Debug, Clone)]
pub struct KinesisShards {
    client: Client,
    stream: String,
}

impl KinesisShards {
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        KinesisShards { client, stream: stream.into() }
    }
}

#[async_trait]
impl ShardLister for KinesisShards {
    async fn list(&self) -> Result<Vec<ShardInfo>, ListShardsError> {
        list_shards(&self.client, &self.stream).await
    }
}

/// A fixed list of shards (tests).
#[derive(Debug, Clone, Default)]
pub struct FixedShards(pub std::sync::Arc<std::sync::Mutex<Vec<ShardInfo>>>);

#[async_trait]
impl ShardLister for FixedShards {
    async fn list(&self) -> Result<Vec<ShardInfo>, ListShardsError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// `ListShards` failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ListShardsError {
    pub stream: String,
    pub message: String,
    /// The stream does not exist (or is being deleted).
    pub not_found: bool,
}

impl ListShardsError {
    fn describe(&self) -> String {
        if self.not_found {
            format!(
                "the stream {} does not exist in this region and account (create it: README, \"Amazon Kinesis setup\"): {}",
                self.stream, self.message
            )
        } else {
            format!("ListShards on stream {} failed: {}", self.stream, self.message)
        }
    }
}

/// Every shard of the stream, paging through `ListShards`.
async fn list_shards(client: &Client, stream: &str) -> Result<Vec<ShardInfo>, ListShardsError> {
    let mut shards = vec![];
    let mut token: Option<String> = None;
    loop {
        let req = match token.take() {
            // With a NextToken the stream name must not be sent again.
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let page = req.send().await.map_err(|e| {
            let code = e.as_service_error().and_then(|s| s.code()).map(str::to_owned);
            ListShardsError {
                stream: stream.to_owned(),
                not_found: code.as_deref() == Some("ResourceNotFoundException"),
                message: crate::aws_error::explain(&e),
            }
        })?;
        for s in page.shards() {
            let range = s.hash_key_range();
            shards.push(ShardInfo {
                id: s.shard_id().to_owned(),
                parents: s
                    .parent_shard_id()
                    .into_iter()
                    .chain(s.adjacent_parent_shard_id())
                    .map(str::to_owned)
                    .collect(),
                starting_hash_key: range.map(|r| r.starting_hash_key().to_owned()).unwrap_or_default(),
                ending_hash_key: range.map(|r| r.ending_hash_key().to_owned()).unwrap_or_default(),
                closed: s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_some(),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() && !page.shards().is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(shards)
}
