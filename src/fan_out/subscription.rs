//! One `SubscribeToShard` subscription: where it starts, and the task that receives its events
//! into a channel of one, so that at most two events of a shard are ever held in memory (the one
//! in the channel and the one the task waits to put there) however long the consumer pauses
//! for its in-flight bound; the service's own flow control holds the rest.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use tokio::sync::mpsc;

use crate::model::{SequenceNumber, ShardInfo};
use crate::shard_consumer::{ReadError, ReadRecord, StartPosition, child_shard, read_record};

/// A subscription's start, as the "iterator" a `ShardConsumer` holds and hands back: opaque to
/// the consumer, and all the reader needs to subscribe again from exactly there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub shard: String,
    pub from: StartPosition,
}

impl Position {
    pub fn token(&self) -> String {
        let from = match &self.from {
            StartPosition::After(seq) => format!("after:{seq}"),
            StartPosition::At(seq) => format!("at:{seq}"),
            StartPosition::TrimHorizon => "trim-horizon".into(),
            StartPosition::Latest => "latest".into(),
            StartPosition::AtTimestamp(ms) => format!("at-timestamp:{ms}"),
        };
        format!("fan-out:{}:{from}", self.shard)
    }

    pub fn parse(token: &str) -> Option<Position> {
        let rest = token.strip_prefix("fan-out:")?;
        let (shard, from) = rest.split_once(':')?;
        let from = match from.split_once(':') {
            Some(("after", seq)) => StartPosition::After(SequenceNumber::parse(seq)?),
            Some(("at", seq)) => StartPosition::At(SequenceNumber::parse(seq)?),
            Some(("at-timestamp", ms)) => StartPosition::AtTimestamp(ms.parse().ok()?),
            None if from == "trim-horizon" => StartPosition::TrimHorizon,
            None if from == "latest" => StartPosition::Latest,
            _ => return None,
        };
        Some(Position { shard: shard.to_owned(), from })
    }

    /// The position right after `seq` of the same shard.
    pub fn after(&self, seq: &str) -> Option<Position> {
        Some(Position { shard: self.shard.clone(), from: StartPosition::After(SequenceNumber::parse(seq)?) })
    }

    fn starting_position(&self) -> Result<StartingPosition, ReadError> {
        let b = StartingPosition::builder();
        let b = match &self.from {
            StartPosition::After(seq) => b.r#type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq.as_str()),
            StartPosition::At(seq) => b.r#type(ShardIteratorType::AtSequenceNumber).sequence_number(seq.as_str()),
            StartPosition::TrimHorizon => b.r#type(ShardIteratorType::TrimHorizon),
            StartPosition::Latest => b.r#type(ShardIteratorType::Latest),
            StartPosition::AtTimestamp(ms) => {
                b.r#type(ShardIteratorType::AtTimestamp).timestamp(aws_smithy_types::DateTime::from_millis(*ms))
            }
        };
        b.build().map_err(|e| ReadError::InvalidArgument(e.to_string()))
    }
}

/// What the receiving task passes on.
#[derive(Debug)]
pub(super) enum Pushed {
    Event {
        records: Vec<ReadRecord>,
        /// Where the next event continues; `None` at the end of a closed shard.
        continuation: Option<String>,
        millis_behind_latest: i64,
        children: Vec<ShardInfo>,
    },
    /// The subscription ended without an error (the service's 5 minutes, or ours).
    Ended(&'static str),
    Failed(ReadError),
}

/// A live subscription; dropping it ends it.
pub(super) struct Subscription {
    pub events: mpsc::Receiver<Pushed>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a subscription may go without any event before it is taken for dead (the service
/// sends one at least every few seconds, records or not).
const SILENCE: Duration = Duration::from_secs(30);

/// Subscribes `consumer_arn` to the shard at `at`; `answer_within` bounds the wait for the
/// service's answer (the events then flow for as long as `lasts`).
pub(super) async fn subscribe(
    client: &Client,
    consumer_arn: &str,
    at: &Position,
    answer_within: Duration,
    lasts: Duration,
) -> Result<Subscription, ReadError> {
    use aws_sdk_kinesis::config::StalledStreamProtectionConfig;
    use aws_sdk_kinesis::config::timeout::TimeoutConfig;
    // The SDK's attempt timeout would cut the event stream; the answer is bounded here instead,
    // and a silent stream by `SILENCE`.
    let overrides = aws_sdk_kinesis::config::Builder::default()
        .timeout_config(TimeoutConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    let request = client
        .subscribe_to_shard()
        .consumer_arn(consumer_arn)
        .shard_id(&at.shard)
        .starting_position(at.starting_position()?)
        .customize()
        .config_override(overrides)
        .send();
    let out = match tokio::time::timeout(answer_within, request).await {
        Err(_) => return Err(ReadError::Other(format!("SubscribeToShard did not answer within {answer_within:?}"))),
        Ok(Err(e)) => return Err(subscribe_error(e)),
        Ok(Ok(out)) => out,
    };
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(receive(out, tx, lasts));
    Ok(Subscription { events: rx, task })
}

/// Receives events until the subscription ends, fails, or has lasted `lasts`.
async fn receive(
    mut out: aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
    tx: mpsc::Sender<Pushed>,
    lasts: Duration,
) {
    let until = tokio::time::Instant::now() + lasts;
    loop {
        let wait = until.min(tokio::time::Instant::now() + SILENCE);
        let pushed = match tokio::time::timeout_at(wait, out.event_stream.recv()).await {
            Err(_) if tokio::time::Instant::now() >= until => {
                Pushed::Ended("the subscription reached maxSubscriptionMillis")
            }
            Err(_) => Pushed::Failed(ReadError::Other(format!(
                "no event for {SILENCE:?}: the subscription is taken for dead"
            ))),
            Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                let continuation = e.continuation_sequence_number;
                let children: Vec<ShardInfo> =
                    e.child_shards.unwrap_or_default().into_iter().map(child_shard).collect();
                Pushed::Event {
                    records: e.records.into_iter().map(read_record).collect(),
                    // The last event of a closed shard names its children and no continuation.
                    continuation: (!continuation.is_empty() && children.is_empty()).then_some(continuation),
                    millis_behind_latest: e.millis_behind_latest,
                    children,
                }
            }
            // An event type newer than this SDK: nothing to read in it.
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => Pushed::Ended("the service ended the subscription"),
            Ok(Err(e)) => Pushed::Failed(stream_error(e)),
        };
        let last = !matches!(pushed, Pushed::Event { continuation: Some(_), .. });
        if tx.send(pushed).await.is_err() || last {
            return;
        }
    }
}

fn subscribe_error(e: SdkError<aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardError>) -> ReadError {
    let service = e.as_service_error();
    let text = crate::aws_error::explain(&e);
    if service.is_some_and(|s| s.is_resource_in_use_exception()) {
        ReadError::InUse(text)
    } else if service.is_some_and(|s| s.is_limit_exceeded_exception()) {
        ReadError::Throttled
    } else if service.is_some_and(|s| s.is_resource_not_found_exception()) {
        ReadError::NotFound(text)
    } else if service.is_some_and(|s| s.is_invalid_argument_exception()) {
        ReadError::InvalidArgument(text)
    } else {
        ReadError::Other(text)
    }
}

fn stream_error<R: std::fmt::Debug + 'static>(
    e: SdkError<aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError, R>,
) -> ReadError {
    let service = e.as_service_error();
    let text = crate::aws_error::explain(&e);
    if service.is_some_and(|s| s.is_resource_in_use_exception()) {
        ReadError::InUse(text)
    } else if service.is_some_and(|s| s.is_resource_not_found_exception()) {
        ReadError::NotFound(text)
    } else if service.is_some_and(|s| s.is_kms_throttling_exception()) {
        ReadError::Throttled
    } else {
        ReadError::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_tokens() {
        let seq = SequenceNumber::parse("49680747676437077046877305537090822739309882188681445378").expect("seq");
        for from in [
            StartPosition::After(seq.clone()),
            StartPosition::At(seq),
            StartPosition::TrimHorizon,
            StartPosition::Latest,
            StartPosition::AtTimestamp(1_700_000_000_123),
        ] {
            let p = Position { shard: "shardId-000000000007".into(), from };
            assert_eq!(Position::parse(&p.token()), Some(p.clone()), "{}", p.token());
        }
        assert_eq!(Position::parse("AAAAAAAAAAE="), None, "a GetRecords iterator is not a position");
        assert_eq!(Position::parse("fan-out:shardId-1:after:x"), None);
    }
}
