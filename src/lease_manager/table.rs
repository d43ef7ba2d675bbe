//! `LeaseTable`: the lease table in DynamoDB — the [`LeaseStore`] the LeaseManager uses in
//! production, and what `sauna leases` reads. The AWS calls of the LeaseManager live here (and
//! ListShards in [`super::shards`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use super::row::{
    CHECKPOINT, CHECKPOINT_SUB_SEQUENCE_NUMBER, CHILD_SHARD_IDS, ENTITY_TYPE, HANDOFF_ACCEPTED, HANDOFF_REQUESTED,
    LATEST_STARTED_AT, LEASE_COUNTER, LEASE_KEY, LEASE_OWNER, Lease, OWNER_SWITCHES_SINCE_CHECKPOINT, RowError,
};
use super::store::{LeaseStore, LeaseTableError, SIGNAL_ENTITY_TYPE, SIGNAL_KEY, Scan};
use crate::model::Checkpoint;

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    e: SdkError<E, R>,
) -> LeaseTableError {
    let code = e.as_service_error().and_then(|s| s.code()).map(str::to_owned);
    match code.as_deref() {
        Some("ConditionalCheckFailedException") => LeaseTableError::ConditionFailed,
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => {
            LeaseTableError::Throttled(code.unwrap_or_default())
        }
        Some("ResourceNotFoundException") => LeaseTableError::TableMissing(String::new()),
        _ => LeaseTableError::Other(crate::aws_error::explain(&e)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The lease table of one observer (named after its id).
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    name: String,
}

impl LeaseTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        LeaseTable { client, name: name.into() }
    }

    /// The table as a LeaseManager uses it: one attempt per call (no SDK retries) within
    /// `per_call`. Its own rounds are the retries — a renewal that fails is made again at the
    /// next renewal interval — and a call the SDK kept retrying in backoff would hold the
    /// lease's next write back until its deadline lapsed, losing the lease over a blip.
    pub fn for_lease_manager(client: &Client, name: impl Into<String>, per_call: Duration) -> Self {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(per_call.min(Duration::from_secs(5)))
                    .operation_timeout(per_call)
                    .build(),
            )
            .build();
        LeaseTable::new(Client::from_conf(config), name)
    }
}

#[async_trait]
impl LeaseStore for LeaseTable {
    fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table (on-demand billing, hash key `leaseKey`) unless it exists, and waits
    /// until it is ACTIVE.
    async fn ensure_exists(&self) -> Result<bool, LeaseTableError> {
        let mut created = false;
        match self.client.describe_table().table_name(&self.name).send().await {
            Ok(_) => {}
            Err(e) => match classify(e) {
                LeaseTableError::TableMissing(_) => {
                    let result = self
                        .client
                        .create_table()
                        .table_name(&self.name)
                        .billing_mode(BillingMode::PayPerRequest)
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(LEASE_KEY)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .map_err(|e| LeaseTableError::Other(e.to_string()))?,
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(LEASE_KEY)
                                .key_type(KeyType::Hash)
                                .build()
                                .map_err(|e| LeaseTableError::Other(e.to_string()))?,
                        )
                        .send()
                        .await;
                    match result {
                        Ok(_) => created = true,
                        // Another worker created it at the same moment.
                        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ResourceInUseException") => {}
                        Err(e) => return Err(classify(e)),
                    }
                }
                other => return Err(other),
            },
        }
        if crate::dynamodb_table::wait_until_active(&self.client, &self.name).await.map_err(classify)? {
            return Ok(created);
        }
        Err(LeaseTableError::Other(format!("table {} did not become ACTIVE within 60 s", self.name)))
    }

    /// Every lease (strongly consistent, so counters are current), and the rows skipped.
    async fn scan(&self) -> Result<Scan, LeaseTableError> {
        let mut leases = vec![];
        let mut skipped = vec![];
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.missing(classify(e)))?;
            for item in page.items() {
                match Lease::from_item(item) {
                    Ok(l) => leases.push(l),
                    Err(e) => {
                        let key = item.get(LEASE_KEY).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                        skipped.push((key, e));
                    }
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        leases.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((leases, skipped))
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, LeaseTableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.missing(classify(e)))?;
        match out.item() {
            None => Ok(None),
            Some(item) => match Lease::from_item(item) {
                Ok(l) => Ok(Some(l)),
                Err(RowError::NotALease(_)) => Ok(None),
                Err(e) => Err(LeaseTableError::Other(format!("lease {key}: {e}"))),
            },
        }
    }

    /// Writes a new lease unless one exists; true when this call created it.
    async fn create_if_absent(&self, lease: &Lease) -> Result<bool, LeaseTableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(lease.to_item()))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", LEASE_KEY)
            .send()
            .await;
        self.applied(result)
    }

    /// Heartbeat: counter + 1, if counter and owner are still ours. Unless `handing_off`, it
    /// also fails when a handoff was requested, which is how the owner learns of the request.
    /// Returns the new counter.
    async fn renew(&self, key: &str, owner: &str, counter: u64, handing_off: bool) -> Result<u64, LeaseTableError> {
        let condition = if handing_off {
            "#c = :seen AND #o = :me"
        } else {
            "#c = :seen AND #o = :me AND attribute_not_exists(#h)"
        };
        let mut req =
            self.update_at(key, owner, counter).update_expression("SET #c = :next").condition_expression(condition);
        if !handing_off {
            req = req.expression_attribute_names("#h", HANDOFF_REQUESTED);
        }
        req.send().await.map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    async fn accept_handoff(&self, key: &str, owner: &str, counter: u64, by: &str) -> Result<u64, LeaseTableError> {
        self.update_at(key, owner, counter)
            .update_expression("SET #c = :next, #acc = :by")
            .condition_expression("#c = :seen AND #o = :me AND #h = :by")
            .expression_attribute_names("#h", HANDOFF_REQUESTED)
            .expression_attribute_names("#acc", HANDOFF_ACCEPTED)
            .expression_attribute_values(":by", s(by))
            .send()
            .await
            .map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    async fn withdraw_handoff(&self, key: &str, requester: &str) -> Result<bool, LeaseTableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .update_expression("REMOVE #h, #acc")
            .condition_expression("#h = :by")
            .expression_attribute_names("#h", HANDOFF_REQUESTED)
            .expression_attribute_names("#acc", HANDOFF_ACCEPTED)
            .expression_attribute_values(":by", s(requester))
            .send()
            .await;
        self.applied(result)
    }

    async fn pin_latest_start(&self, key: &str, owner: &str, counter: u64, at: i64) -> Result<u64, LeaseTableError> {
        self.update_at(key, owner, counter)
            .update_expression("SET #c = :next, #ls = if_not_exists(#ls, :at)")
            .condition_expression("#c = :seen AND #o = :me")
            .expression_attribute_names("#ls", LATEST_STARTED_AT)
            .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
            .send()
            .await
            .map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    /// Takes a lease seen with `counter` (and `previous_owner`, which may be none): it is ours
    /// if nobody wrote it since. Returns the new counter.
    async fn take(
        &self,
        key: &str,
        counter: u64,
        previous_owner: Option<&str>,
        me: &str,
    ) -> Result<u64, LeaseTableError> {
        let mut req = self.update_at(key, me, counter);
        // The owner switch counter moves only when the owner changes (the KCL's rule).
        // Taking a lease from another owner ends any handoff request made of that owner. A
        // lease handed to us (or ours from before a restart) keeps a request made since: our
        // first renewal sees it and hands the lease on.
        req = if previous_owner == Some(me) {
            req.update_expression("SET #c = :next, #o = :me")
        } else {
            req = req
                .expression_attribute_names("#h", HANDOFF_REQUESTED)
                .expression_attribute_names("#acc", HANDOFF_ACCEPTED);
            req.update_expression("SET #c = :next, #o = :me REMOVE #h, #acc ADD #sw :one")
                .expression_attribute_names("#sw", OWNER_SWITCHES_SINCE_CHECKPOINT)
                .expression_attribute_values(":one", n(1))
        };
        req = match previous_owner {
            Some(prev) => {
                req.condition_expression("#c = :seen AND #o = :prev").expression_attribute_values(":prev", s(prev))
            }
            None => req.condition_expression("#c = :seen AND attribute_not_exists(#o)"),
        };
        req.send().await.map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    /// Writes a checkpoint (and, at shard end, the child shard ids) if the lease is still ours
    /// at `counter`, with its `checkpointSubSequenceNumber`. Resets
    /// `ownerSwitchesSinceCheckpoint`. Returns the new counter.
    async fn checkpoint(
        &self,
        key: &str,
        owner: &str,
        counter: u64,
        checkpoint: &Checkpoint,
        child_shard_ids: &[String],
    ) -> Result<u64, LeaseTableError> {
        let mut update = "SET #c = :next, #cp = :cp, #sub = :sub, #sw = :zero".to_owned();
        let mut req = self
            .update_at(key, owner, counter)
            .condition_expression("#c = :seen AND #o = :me")
            .expression_attribute_names("#cp", CHECKPOINT)
            .expression_attribute_names("#sub", CHECKPOINT_SUB_SEQUENCE_NUMBER)
            .expression_attribute_names("#sw", OWNER_SWITCHES_SINCE_CHECKPOINT)
            .expression_attribute_values(":cp", s(checkpoint.as_attribute()))
            .expression_attribute_values(":sub", n(checkpoint.sub_sequence_number()))
            .expression_attribute_values(":zero", n(0));
        if !child_shard_ids.is_empty() {
            update.push_str(", #children = :children");
            req = req
                .expression_attribute_names("#children", CHILD_SHARD_IDS)
                .expression_attribute_values(":children", AttributeValue::Ss(child_shard_ids.to_vec()));
        }
        req.update_expression(update).send().await.map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    /// Gives a lease up if it is still ours at `counter`: to nobody (another worker takes it
    /// at once), or `to` the worker that asked for it.
    async fn release(&self, key: &str, owner: &str, counter: u64, to: Option<&str>) -> Result<u64, LeaseTableError> {
        let mut req = self
            .update_at(key, owner, counter)
            .condition_expression("#c = :seen AND #o = :me")
            .expression_attribute_names("#h", HANDOFF_REQUESTED)
            .expression_attribute_names("#acc", HANDOFF_ACCEPTED);
        req = match to {
            // Handed to the worker that asked: it adopts the lease at its next scan; if it is
            // gone by then, the lease expires like any other.
            // Only while the request stands: one withdrawn (its asker left) is released to nobody.
            Some(to) => req
                .condition_expression("#c = :seen AND #o = :me AND #h = :to")
                .update_expression("SET #c = :next, #o = :to REMOVE #h, #acc ADD #sw :one")
                .expression_attribute_names("#sw", OWNER_SWITCHES_SINCE_CHECKPOINT)
                .expression_attribute_values(":to", s(to))
                .expression_attribute_values(":one", n(1)),
            None => req.update_expression("SET #c = :next REMOVE #o, #h, #acc"),
        };
        req.send().await.map_err(|e| self.missing(classify(e)))?;
        Ok(counter + 1)
    }

    /// Asks the owner of a lease to give it up gracefully (finish its commands in flight,
    /// checkpoint, release). `owner`: only if this worker owns it (a balancing request);
    /// `None`: whoever owns it (an operator). Does not move the counter, so the owner's
    /// renewals keep it alive while it hands over. False if the lease is not owned as expected
    /// or a request is already pending.
    async fn request_handoff(&self, key: &str, owner: Option<&str>, requester: &str) -> Result<bool, LeaseTableError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .update_expression("SET #h = :by")
            .expression_attribute_names("#h", HANDOFF_REQUESTED)
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_names("#cp", CHECKPOINT)
            .expression_attribute_values(":by", s(requester))
            .expression_attribute_values(":end", s(Checkpoint::ShardEnd.as_attribute()));
        req = match owner {
            Some(o) => req
                .condition_expression("#o = :owner AND attribute_not_exists(#h) AND #cp <> :end")
                .expression_attribute_values(":owner", s(o)),
            None => req.condition_expression("attribute_exists(#o) AND attribute_not_exists(#h) AND #cp <> :end"),
        };
        self.applied(req.send().await)
    }

    /// Deletes a finished lease (only if it is still at SHARD_END).
    async fn delete_finished(&self, key: &str) -> Result<bool, LeaseTableError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .condition_expression("#cp = :end")
            .expression_attribute_names("#cp", CHECKPOINT)
            .expression_attribute_values(":end", s(Checkpoint::ShardEnd.as_attribute()))
            .send()
            .await;
        self.applied(result)
    }

    async fn bump_signal(&self) -> Result<(), LeaseTableError> {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(SIGNAL_KEY))
            .update_expression("SET #t = :t ADD #n :one")
            .expression_attribute_names("#t", ENTITY_TYPE)
            .expression_attribute_names("#n", SIGNAL_CHANGES)
            .expression_attribute_values(":t", s(SIGNAL_ENTITY_TYPE))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| self.missing(classify(e)))?;
        Ok(())
    }

    async fn read_signal(&self) -> Result<u64, LeaseTableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(SIGNAL_KEY))
            .consistent_read(true)
            .projection_expression("#n")
            .expression_attribute_names("#n", SIGNAL_CHANGES)
            .send()
            .await
            .map_err(|e| self.missing(classify(e)))?;
        Ok(out
            .item()
            .and_then(|i| i.get(SIGNAL_CHANGES))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// The counter of the change-signal row.
const SIGNAL_CHANGES: &str = "changes";

impl LeaseTable {
    /// An UpdateItem of a lease this worker last saw at `counter`: `#c` and `#o` name the
    /// counter and the owner, `:seen`, `:next` and `:me` are the counter seen, the next one and
    /// this worker, for the caller's update and condition expressions.
    fn update_at(&self, key: &str, owner: &str, counter: u64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_values(":next", n(counter + 1))
            .expression_attribute_values(":seen", n(counter))
            .expression_attribute_values(":me", s(owner))
    }

    /// A conditional write's result as "applied or not": a failed condition is `false`, not an
    /// error.
    fn applied<T, E, R>(&self, result: Result<T, SdkError<E, R>>) -> Result<bool, LeaseTableError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(LeaseTableError::ConditionFailed) => Ok(false),
            Err(other) => Err(self.missing(other)),
        }
    }

    fn missing(&self, e: LeaseTableError) -> LeaseTableError {
        match e {
            LeaseTableError::TableMissing(_) => LeaseTableError::TableMissing(self.name.clone()),
            other => other,
        }
    }
}
