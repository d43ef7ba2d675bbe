//! `FanOutReader`: a `ShardReader` over `SubscribeToShard`, one per ShardConsumer.
//!
//! The consumer pulls (`records(iterator, limit)`) as it does in polling; the reader answers
//! from the subscription's next event, waiting for one at most `idle_wait` (then an empty
//! batch, so that the consumer's loop keeps turning: fences, drains). The "iterator" it hands
//! out is a `Position`: after the last record handed over, or after an event's continuation
//! sequence number. So whatever ends a subscription — the service's 5 minutes, our
//! `maxSubscriptionMillis`, a dropped connection, `ResourceInUseException` — the next
//! subscription starts exactly where the consumer stands: nothing is read twice or skipped.
//! An event larger than the room the consumer has is handed over in parts.
//!
//! The end of a closed shard is the event that names its children. A service that never
//! sends one (kinesis-mock keeps sending empty events) would stall the shard's children for
//! good, so a caught-up subscription also asks, at most every `END_PROBE_EVERY`, one
//! GetShardIterator + GetRecords at its position whether the shard has ended there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kinesis::Client;

use super::subscription::{Position, Pushed, Subscription, subscribe};
use crate::model::ShardInfo;
use crate::shard_consumer::{KinesisReader, ReadError, ReadRecord, RecordBatch, ShardReader, StartPosition};

/// The service accepts one SubscribeToShard per second per shard and consumer.
const SUBSCRIBE_SPACING: Duration = Duration::from_secs(1);

/// How often a caught-up subscription checks by GetRecords whether its shard has ended (two
/// calls per shard; the shard's polling quota is 5 of each per second).
const END_PROBE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct FanOutSettings {
    pub consumer_arn: String,
    /// Renew a subscription after this long.
    pub max_subscription: Duration,
    /// Bound on the wait for SubscribeToShard's answer.
    pub request_timeout: Duration,
    /// How long `records` waits for an event before it answers with none.
    pub idle_wait: Duration,
}

/// The subscription in use, and what of its last event is still to be handed over.
struct Live {
    subscription: Subscription,
    handed: Handed,
}

/// Where the hand-over of a subscription's events stands.
#[derive(Debug, Default)]
struct Handed {
    /// The token the consumer holds for the next batch of this subscription.
    expects: String,
    /// Records of an event larger than the consumer's room, and where that event continues.
    rest: VecDeque<ReadRecord>,
    rest_then: Option<Position>,
    rest_children: Vec<ShardInfo>,
}

pub struct FanOutReader {
    client: Client,
    polling: KinesisReader,
    settings: FanOutSettings,
    live: tokio::sync::Mutex<Option<Live>>,
    last_subscribe: std::sync::Mutex<Option<Instant>>,
    last_end_probe: std::sync::Mutex<Option<Instant>>,
}

impl FanOutReader {
    pub fn new(client: Client, stream: impl Into<String>, settings: FanOutSettings) -> Self {
        FanOutReader {
            polling: KinesisReader::new(client.clone(), stream),
            client,
            settings,
            live: tokio::sync::Mutex::new(None),
            last_subscribe: std::sync::Mutex::new(None),
            last_end_probe: std::sync::Mutex::new(Some(Instant::now())),
        }
    }

    /// Whether the shard has ended at `at` (asked by polling; `None`: it has not, or this
    /// cannot be told now), with the children GetRecords names.
    async fn ended_at(&self, at: &Position) -> Option<Vec<ShardInfo>> {
        {
            let mut last = self.last_end_probe.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < END_PROBE_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let iterator = match self.polling.iterator(&at.shard, &at.from).await {
            Ok(Some(it)) => it,
            Ok(None) => return Some(vec![]),
            Err(e) => {
                log::debug!("shard {}: cannot tell whether the shard ended ({e})", at.shard);
                return None;
            }
        };
        match self.polling.records(&iterator, 1).await {
            Ok(batch) if batch.records.is_empty() && batch.next_iterator.is_none() => Some(batch.child_shards),
            Ok(_) => None,
            Err(e) => {
                log::debug!("shard {}: cannot tell whether the shard ended ({e})", at.shard);
                None
            }
        }
    }

    async fn open(&self, at: &Position) -> Result<Subscription, ReadError> {
        let wait = {
            let mut last = self.last_subscribe.lock().unwrap_or_else(|p| p.into_inner());
            let wait = last.map(|t| SUBSCRIBE_SPACING.saturating_sub(t.elapsed())).unwrap_or_default();
            *last = Some(Instant::now() + wait);
            wait
        };
        tokio::time::sleep(wait).await;
        let s = &self.settings;
        subscribe(&self.client, &s.consumer_arn, at, s.request_timeout, s.max_subscription).await
    }
}

impl Handed {
    /// Hands over at most `limit` of `records` read from `at`; what does not fit waits here.
    fn hand_over(
        &mut self,
        at: &Position,
        mut records: VecDeque<ReadRecord>,
        then: Option<Position>,
        children: Vec<ShardInfo>,
        millis_behind_latest: Option<i64>,
        limit: usize,
    ) -> RecordBatch {
        let now: Vec<ReadRecord> = records.drain(..limit.min(records.len())).collect();
        let (next, child_shards) = if records.is_empty() {
            (then, children)
        } else {
            let after_last = now.last().and_then(|r| at.after(&r.sequence_number)).unwrap_or_else(|| at.clone());
            self.rest = records;
            self.rest_then = then;
            self.rest_children = children;
            (Some(after_last), vec![])
        };
        let next_iterator = next.map(|p| p.token());
        self.expects = next_iterator.clone().unwrap_or_default();
        RecordBatch { records: now, next_iterator, millis_behind_latest, child_shards }
    }

    /// The rest of the last event, if any is left.
    fn rest(&mut self, at: &Position, limit: usize) -> Option<RecordBatch> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (then, children) = (self.rest_then.take(), std::mem::take(&mut self.rest_children));
        Some(self.hand_over(at, rest, then, children, None, limit))
    }
}

#[async_trait]
impl ShardReader for FanOutReader {
    async fn iterator(&self, shard: &str, from: &StartPosition) -> Result<Option<String>, ReadError> {
        Ok(Some(Position { shard: shard.to_owned(), from: from.clone() }.token()))
    }

    async fn records(&self, iterator: &str, limit: i32) -> Result<RecordBatch, ReadError> {
        let at = Position::parse(iterator)
            .ok_or_else(|| ReadError::InvalidArgument(format!("not a fan-out position: {iterator}")))?;
        let limit = usize::try_from(limit).unwrap_or(1).max(1);
        let mut guard = self.live.lock().await;
        if guard.as_ref().is_some_and(|l| l.handed.expects != iterator) {
            // The consumer starts elsewhere (after an error, or a restart): a new subscription.
            *guard = None;
        }
        if guard.is_none() {
            let subscription = self.open(&at).await?;
            *guard = Some(Live { subscription, handed: Handed { expects: iterator.to_owned(), ..Handed::default() } });
        }
        let Some(live) = guard.as_mut() else { unreachable!("a subscription was just set") };
        if let Some(batch) = live.handed.rest(&at, limit) {
            return Ok(batch);
        }
        let idle = RecordBatch { next_iterator: Some(iterator.to_owned()), ..RecordBatch::default() };
        match tokio::time::timeout(self.settings.idle_wait, live.subscription.events.recv()).await {
            Err(_) => Ok(idle),
            Ok(Some(Pushed::Event { records, continuation, millis_behind_latest, children })) => {
                let then = match continuation {
                    Some(c) => Some(at.after(&c).ok_or_else(|| {
                        ReadError::InvalidArgument(format!("the service sent continuation sequence number {c:?}"))
                    })?),
                    None => None,
                };
                if records.is_empty() && children.is_empty() && millis_behind_latest == 0 {
                    let resume = then.clone().unwrap_or_else(|| at.clone());
                    if let Some(children) = self.ended_at(&resume).await {
                        log::info!("shard {}: the subscription is caught up and the shard has ended", at.shard);
                        return Ok(live.handed.hand_over(&at, VecDeque::new(), None, children, Some(0), limit));
                    }
                }
                Ok(live.handed.hand_over(&at, records.into(), then, children, Some(millis_behind_latest), limit))
            }
            Ok(Some(Pushed::Ended(why))) => {
                log::debug!("shard {}: {why}; subscribing again from {iterator}", at.shard);
                *guard = None;
                Ok(idle)
            }
            Ok(Some(Pushed::Failed(e))) => {
                *guard = None;
                Err(e)
            }
            Ok(None) => {
                *guard = None;
                Err(ReadError::Other("the subscription's task ended".into()))
            }
        }
    }

    async fn shard_is_listed(&self, shard: &str) -> Result<bool, ReadError> {
        self.polling.shard_is_listed(shard).await
    }

    fn waits_for_records(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn record(seq: u64) -> ReadRecord {
        ReadRecord { sequence_number: format!("4968{seq:020}"), partition_key: "k".into(), data: Default::default() }
    }

    fn after(seq: u64) -> Position {
        let seq = SequenceNumber::parse(&format!("4968{seq:020}")).expect("seq");
        Position { shard: "shardId-000000000000".into(), from: StartPosition::After(seq) }
    }

    #[test]
    fn an_event_larger_than_the_room_is_handed_over_in_parts_each_resumable() {
        let start = Position { shard: "shardId-000000000000".into(), from: StartPosition::TrimHorizon };
        let mut handed = Handed { expects: start.token(), ..Handed::default() };
        let event: VecDeque<ReadRecord> = (1..=5).map(record).collect();
        let first = handed.hand_over(&start, event, Some(after(9)), vec![], Some(7), 2);
        let seqs = |b: &RecordBatch| b.records.iter().map(|r| r.sequence_number.clone()).collect::<Vec<_>>();
        assert_eq!(seqs(&first), [record(1), record(2)].map(|r| r.sequence_number));
        // Should the subscription end now, the next one starts right after record 2.
        assert_eq!(first.next_iterator, Some(after(2).token()));
        assert_eq!(handed.expects, after(2).token());
        let second = handed.rest(&after(2), 2).expect("the rest");
        assert_eq!(seqs(&second), [record(3), record(4)].map(|r| r.sequence_number));
        assert_eq!(second.next_iterator, Some(after(4).token()));
        let third = handed.rest(&after(4), 2).expect("the rest");
        assert_eq!(seqs(&third), [record(5).sequence_number]);
        // The whole event handed over: continue after its continuation sequence number.
        assert_eq!(third.next_iterator, Some(after(9).token()));
        assert!(handed.rest(&after(9), 2).is_none());
    }

    #[test]
    fn the_last_event_of_a_closed_shard_ends_the_reading_with_its_children() {
        let start = after(1);
        let mut handed = Handed::default();
        let child = ShardInfo {
            id: "shardId-000000000001".into(),
            parents: vec!["shardId-000000000000".into()],
            starting_hash_key: "0".into(),
            ending_hash_key: "1".into(),
            closed: false,
        };
        let batch = handed.hand_over(&start, (2..=3).map(record).collect(), None, vec![child.clone()], Some(0), 10);
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.next_iterator, None, "the end of the shard");
        assert_eq!(batch.child_shards, vec![child]);
    }
}
