//! A lease row of the KCL lease table, with the Java KCL's attribute names and types, so a team
//! moving from a Java KCL application keeps its checkpoints (and can move back).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::model::{Checkpoint, HashKeyRange};

/// One lease (one shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `leaseKey` (S): the shard id.
    pub key: String,
    /// `leaseOwner` (S): the worker holding it; absent when free.
    pub owner: Option<String>,
    /// `leaseCounter` (N): bumped by every renew, take, checkpoint and release.
    pub counter: u64,
    /// `checkpoint` (S) and `checkpointSubSequenceNumber` (N): the sequence number and, inside
    /// a KPL aggregate, the index of the last user record covered (0 for plain records).
    pub checkpoint: Checkpoint,
    /// `ownerSwitchesSinceCheckpoint` (N).
    pub owner_switches_since_checkpoint: u64,
    /// `parentShardId` (SS), written only when non-empty.
    pub parent_shard_ids: Vec<String>,
    /// `childShardIds` (SS), written at SHARD_END.
    pub child_shard_ids: Vec<String>,
    /// `startingHashKey` / `endingHashKey` (S, decimal).
    pub starting_hash_key: Option<String>,
    pub ending_hash_key: Option<String>,
    /// `handoffRequested` (S): another worker (balancing) or an operator asked the owner to
    /// give the lease up gracefully; the value says who. Not a KCL attribute (a Java KCL
    /// ignores it); removed by the release and by the next take.
    pub handoff_requested: Option<String>,
    /// `handoffAccepted` (S): the owner saw the request and is handing over (not a KCL
    /// attribute; a request a worker that is not sauna never accepts is withdrawn).
    pub handoff_accepted: Option<String>,
    /// `latestStartedAt` (N, epoch ms): where a shard whose checkpoint is still LATEST was first
    /// read, so that every later reader resumes there (not a KCL attribute).
    pub latest_started_at: Option<i64>,
}

/// Why a row is not a lease this program can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A KCL 3.5 single-table row (worker metrics, coordinator state…): not a lease, left as is.
    #[error("not a lease (entityType {0})")]
    NotALease(String),
    #[error("attribute {attribute}: {problem}")]
    Malformed { attribute: &'static str, problem: String },
}

pub const LEASE_KEY: &str = "leaseKey";
pub const LEASE_OWNER: &str = "leaseOwner";
pub const LEASE_COUNTER: &str = "leaseCounter";
pub const CHECKPOINT: &str = "checkpoint";
pub const CHECKPOINT_SUB_SEQUENCE_NUMBER: &str = "checkpointSubSequenceNumber";
pub const OWNER_SWITCHES_SINCE_CHECKPOINT: &str = "ownerSwitchesSinceCheckpoint";
pub const PARENT_SHARD_ID: &str = "parentShardId";
pub const CHILD_SHARD_IDS: &str = "childShardIds";
pub const STARTING_HASH_KEY: &str = "startingHashKey";
pub const ENDING_HASH_KEY: &str = "endingHashKey";
pub const ENTITY_TYPE: &str = "entityType";
pub const HANDOFF_REQUESTED: &str = "handoffRequested";
pub const HANDOFF_ACCEPTED: &str = "handoffAccepted";
pub const LATEST_STARTED_AT: &str = "latestStartedAt";

impl Lease {
    /// A new, unowned lease.
    pub fn new(key: impl Into<String>, checkpoint: Checkpoint) -> Self {
        Lease {
            key: key.into(),
            owner: None,
            counter: 0,
            checkpoint,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: vec![],
            child_shard_ids: vec![],
            starting_hash_key: None,
            ending_hash_key: None,
            handoff_requested: None,
            handoff_accepted: None,
            latest_started_at: None,
        }
    }

    /// Every shard of the stream has ended and been checkpointed there.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }

    /// The shard's hash key range, if the row has a readable one.
    pub fn hash_key_range(&self) -> Option<HashKeyRange> {
        HashKeyRange::parse(self.starting_hash_key.as_deref()?, self.ending_hash_key.as_deref()?)
    }

    /// The full item, as the KCL's `toDynamoRecord` writes it.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        item.insert(LEASE_KEY.into(), AttributeValue::S(self.key.clone()));
        if let Some(owner) = &self.owner {
            item.insert(LEASE_OWNER.into(), AttributeValue::S(owner.clone()));
        }
        item.insert(LEASE_COUNTER.into(), AttributeValue::N(self.counter.to_string()));
        item.insert(CHECKPOINT.into(), AttributeValue::S(self.checkpoint.as_attribute().into()));
        item.insert(
            CHECKPOINT_SUB_SEQUENCE_NUMBER.into(),
            AttributeValue::N(self.checkpoint.sub_sequence_number().to_string()),
        );
        item.insert(
            OWNER_SWITCHES_SINCE_CHECKPOINT.into(),
            AttributeValue::N(self.owner_switches_since_checkpoint.to_string()),
        );
        if !self.parent_shard_ids.is_empty() {
            item.insert(PARENT_SHARD_ID.into(), AttributeValue::Ss(self.parent_shard_ids.clone()));
        }
        if !self.child_shard_ids.is_empty() {
            item.insert(CHILD_SHARD_IDS.into(), AttributeValue::Ss(self.child_shard_ids.clone()));
        }
        if let Some(h) = &self.starting_hash_key {
            item.insert(STARTING_HASH_KEY.into(), AttributeValue::S(h.clone()));
        }
        if let Some(h) = &self.ending_hash_key {
            item.insert(ENDING_HASH_KEY.into(), AttributeValue::S(h.clone()));
        }
        if let Some(h) = &self.handoff_requested {
            item.insert(HANDOFF_REQUESTED.into(), AttributeValue::S(h.clone()));
        }
        if let Some(h) = &self.handoff_accepted {
            item.insert(HANDOFF_ACCEPTED.into(), AttributeValue::S(h.clone()));
        }
        if let Some(t) = self.latest_started_at {
            item.insert(LATEST_STARTED_AT.into(), AttributeValue::N(t.to_string()));
        }
        item
    }

    /// Reads a row; rows of other entity types and malformed rows are errors the caller skips.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, RowError> {
        if let Some(AttributeValue::S(t)) = item.get(ENTITY_TYPE)
            && t != "LEASE"
        {
            return Err(RowError::NotALease(t.clone()));
        }
        let malformed = |attribute, problem: &str| RowError::Malformed { attribute, problem: problem.to_owned() };
        let s = |name: &'static str| -> Result<Option<String>, RowError> {
            match item.get(name) {
                None => Ok(None),
                Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
                Some(_) => Err(malformed(name, "expected a string (S)")),
            }
        };
        let n = |name: &'static str| -> Result<u64, RowError> {
            match item.get(name) {
                None => Ok(0),
                Some(AttributeValue::N(v)) => {
                    v.parse::<u64>().map_err(|_| malformed(name, "expected a non-negative integer (N)"))
                }
                Some(_) => Err(malformed(name, "expected a number (N)")),
            }
        };
        let ss = |name: &'static str| -> Result<Vec<String>, RowError> {
            match item.get(name) {
                None => Ok(vec![]),
                Some(AttributeValue::Ss(v)) => {
                    let mut v = v.clone();
                    v.sort();
                    Ok(v)
                }
                // Some tools write a list; read it rather than refuse the lease.
                Some(AttributeValue::L(v)) => Ok(v.iter().filter_map(|a| a.as_s().ok().cloned()).collect()),
                Some(_) => Err(malformed(name, "expected a string set (SS)")),
            }
        };
        let key = s(LEASE_KEY)?.ok_or_else(|| malformed(LEASE_KEY, "missing"))?;
        let checkpoint = match s(CHECKPOINT)? {
            None => Checkpoint::TrimHorizon,
            Some(c) => Checkpoint::from_attributes(&c, n(CHECKPOINT_SUB_SEQUENCE_NUMBER)?)
                .ok_or_else(|| malformed(CHECKPOINT, "expected a sequence number or a sentinel"))?,
        };
        Ok(Lease {
            key,
            owner: s(LEASE_OWNER)?,
            counter: n(LEASE_COUNTER)?,
            checkpoint,
            owner_switches_since_checkpoint: n(OWNER_SWITCHES_SINCE_CHECKPOINT)?,
            parent_shard_ids: ss(PARENT_SHARD_ID)?,
            child_shard_ids: ss(CHILD_SHARD_IDS)?,
            starting_hash_key: s(STARTING_HASH_KEY)?,
            ending_hash_key: s(ENDING_HASH_KEY)?,
            handoff_requested: s(HANDOFF_REQUESTED)?,
            handoff_accepted: s(HANDOFF_ACCEPTED)?,
            latest_started_at: match item.get(LATEST_STARTED_AT) {
                None => None,
                Some(AttributeValue::N(v)) => Some(
                    v.parse::<i64>().map_err(|_| malformed(LATEST_STARTED_AT, "expected epoch milliseconds (N)"))?,
                ),
                Some(_) => return Err(malformed(LATEST_STARTED_AT, "expected a number (N)")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtendedSequenceNumber, SequenceNumber};

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).expect("digits")
    }

    #[test]
    fn round_trips_kcl_items() {
        let mut lease = Lease::new("shardId-000000000002", Checkpoint::sequence(seq("123")));
        lease.owner = Some("w1".into());
        lease.counter = 7;
        lease.parent_shard_ids = vec!["shardId-000000000000".into()];
        lease.starting_hash_key = Some("0".into());
        lease.ending_hash_key = Some("340282366920938463463374607431768211455".into());
        lease.latest_started_at = Some(1_700_000_000_000);
        let item = lease.to_item();
        assert!(matches!(item.get("parentShardId"), Some(AttributeValue::Ss(_))));
        assert!(matches!(item.get("leaseCounter"), Some(AttributeValue::N(_))));
        assert!(!item.contains_key("childShardIds"), "empty sets are not written");
        assert_eq!(Lease::from_item(&item), Ok(lease));
    }

    #[test]
    fn other_entity_types_are_not_leases() {
        let mut item = Lease::new("Leader", Checkpoint::TrimHorizon).to_item();
        item.insert(ENTITY_TYPE.into(), AttributeValue::S("LEADER".into()));
        assert_eq!(Lease::from_item(&item), Err(RowError::NotALease("LEADER".into())));
        item.insert(ENTITY_TYPE.into(), AttributeValue::S("LEASE".into()));
        assert!(Lease::from_item(&item).is_ok());
    }

    #[test]
    fn a_checkpoint_inside_an_aggregate_round_trips() {
        let at = Checkpoint::Sequence(ExtendedSequenceNumber::new(
            seq("49590338271490256608559692538361571095921575989136588898"),
            41,
        ));
        let lease = Lease::new("shardId-000000000000", at.clone());
        let item = lease.to_item();
        assert_eq!(
            item.get(CHECKPOINT),
            Some(&AttributeValue::S("49590338271490256608559692538361571095921575989136588898".into()))
        );
        assert_eq!(
            item.get(CHECKPOINT_SUB_SEQUENCE_NUMBER),
            Some(&AttributeValue::N("41".into())),
            "as the KCL writes it"
        );
        assert_eq!(Lease::from_item(&item).map(|l| l.checkpoint), Ok(at));
    }

    #[test]
    fn a_kcl_written_sub_sequence_checkpoint_is_read() {
        // As a Java KCL 2.x writes a lease checkpointed at user record 7 of an aggregate.
        let item = HashMap::from([
            (LEASE_KEY.to_owned(), AttributeValue::S("shardId-000000000001".into())),
            (LEASE_OWNER.to_owned(), AttributeValue::S("kcl-worker".into())),
            (LEASE_COUNTER.to_owned(), AttributeValue::N("12".into())),
            (CHECKPOINT.to_owned(), AttributeValue::S("4959".into())),
            (CHECKPOINT_SUB_SEQUENCE_NUMBER.to_owned(), AttributeValue::N("7".into())),
            (OWNER_SWITCHES_SINCE_CHECKPOINT.to_owned(), AttributeValue::N("0".into())),
            (STARTING_HASH_KEY.to_owned(), AttributeValue::S("0".into())),
            (ENDING_HASH_KEY.to_owned(), AttributeValue::S("170141183460469231731687303715884105727".into())),
        ]);
        let lease = Lease::from_item(&item).expect("a lease");
        assert_eq!(lease.checkpoint, Checkpoint::Sequence(ExtendedSequenceNumber::new(seq("4959"), 7)));
        assert_eq!(lease.hash_key_range(), Some(HashKeyRange { start: 0, end: (1u128 << 127) - 1 }));
        let mut sentinel = item.clone();
        sentinel.insert(CHECKPOINT.to_owned(), AttributeValue::S("SHARD_END".into()));
        assert_eq!(Lease::from_item(&sentinel).map(|l| l.checkpoint), Ok(Checkpoint::ShardEnd));
        let mut bad = item;
        bad.insert(CHECKPOINT_SUB_SEQUENCE_NUMBER.to_owned(), AttributeValue::N("-1".into()));
        assert!(matches!(
            Lease::from_item(&bad),
            Err(RowError::Malformed { attribute: CHECKPOINT_SUB_SEQUENCE_NUMBER, .. })
        ));
    }
}
