//! `ClaimTable`: the claims in DynamoDB — hash key `commandId`, on-demand, rows expired by
//! DynamoDB's time to live on `expiresAt` (an emulator without `UpdateTimeToLive` keeps them).
//! Every write is conditional on the claim being what this claimer expects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::{ClaimAnswer, ClaimError, ClaimState, ClaimStore, Claimer, Held};

const COMMAND_ID: &str = "commandId";
const STATE: &str = "state";
const OWNER: &str = "owner";
const TENURE: &str = "tenure";
const SHARD: &str = "shard";
const SEQUENCE_NUMBER: &str = "sequenceNumber";
const DETAIL: &str = "detail";
const ATTEMPTS: &str = "attempts";
const CLAIMED_AT: &str = "claimedAt";
/// The time-to-live attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expiresAt";

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A failed call: a failed condition is `Ok(false)` for the caller to read the row again.
fn applied<T, E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    result: Result<T, SdkError<E, R>>,
) -> Result<bool, ClaimError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(other(e)),
    }
}

fn other<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    e: SdkError<E, R>,
) -> ClaimError {
    ClaimError::Other(crate::aws_error::explain(&e))
}

#[derive(Debug, Clone)]
pub struct ClaimTable {
    client: Client,
    name: String,
    /// A permit per claim operation at DynamoDB: thousands of commands in flight queue here,
    /// not in the connection pool the lease renewals share.
    requests: Arc<tokio::sync::Semaphore>,
}

impl ClaimTable {
    /// The table `name`, with every call one attempt within `per_call` (a claim is tried again
    /// by its consumer, after a pause, like any other write that failed) and at most
    /// `concurrency` operations at once.
    pub fn new(client: &Client, name: impl Into<String>, per_call: Duration, concurrency: usize) -> Self {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(TimeoutConfig::builder().operation_timeout(per_call).build())
            .build();
        ClaimTable {
            client: Client::from_conf(config),
            name: name.into(),
            requests: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        }
    }

    fn item(&self, command_id: &str, me: &Claimer, expires_at: i64) -> Item {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        HashMap::from([
            (COMMAND_ID.to_owned(), s(command_id)),
            (STATE.to_owned(), s(ClaimState::Claimed.as_str())),
            (OWNER.to_owned(), s(&me.owner)),
            (TENURE.to_owned(), n(me.tenure)),
            (SHARD.to_owned(), s(&me.shard)),
            (SEQUENCE_NUMBER.to_owned(), s(&me.sequence_number)),
            (CLAIMED_AT.to_owned(), s(now)),
            (EXPIRES_AT.to_owned(), n(expires_at)),
        ])
    }

    /// A conditional update of a claim `me` holds (owner, tenure and record as `me`, state
    /// claimed); `#s`, `:claimed` and `:o`, `:t`, `:q` are bound for the caller's expressions.
    fn update_mine(
        &self,
        command_id: &str,
        me: &Claimer,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(COMMAND_ID, s(command_id))
            .condition_expression("#s = :claimed AND #o = :o AND #t = :t AND #q = :q")
            .expression_attribute_names("#s", STATE)
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_names("#t", TENURE)
            .expression_attribute_names("#q", SEQUENCE_NUMBER)
            .expression_attribute_values(":claimed", s(ClaimState::Claimed.as_str()))
            .expression_attribute_values(":o", s(&me.owner))
            .expression_attribute_values(":t", n(me.tenure))
            .expression_attribute_values(":q", s(&me.sequence_number))
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ClaimError> {
        self.requests.acquire().await.map_err(|_| ClaimError::Other("the claim table is closed".into()))
    }

    async fn read(&self, command_id: &str) -> Result<Option<(ClaimState, Claimer, String)>, ClaimError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(COMMAND_ID, s(command_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(other)?;
        let Some(item) = out.item() else { return Ok(None) };
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let number = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok());
        let malformed = |problem: &str| ClaimError::Malformed {
            table: self.name.clone(),
            command_id: command_id.to_owned(),
            problem: problem.to_owned(),
        };
        let state = text(STATE)
            .and_then(|v| ClaimState::parse(&v))
            .ok_or_else(|| malformed("state: expected claimed, done, failed or released"))?;
        let by = Claimer {
            owner: text(OWNER).ok_or_else(|| malformed("owner: expected a string"))?,
            tenure: number(TENURE).ok_or_else(|| malformed("tenure: expected a number"))?,
            shard: text(SHARD).unwrap_or_default(),
            sequence_number: text(SEQUENCE_NUMBER).unwrap_or_default(),
        };
        Ok(Some((state, by, text(DETAIL).unwrap_or_default())))
    }

    /// Takes over a claim still exactly as `stale` saw it.
    async fn take_over(
        &self,
        command_id: &str,
        me: &Claimer,
        expires_at: i64,
        stale: &Held,
    ) -> Result<bool, ClaimError> {
        let mut values = self.item(command_id, me, expires_at);
        values.remove(COMMAND_ID);
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(COMMAND_ID, s(command_id))
            .condition_expression("#state = :claimed AND #owner = :oo AND #tenure = :ot AND #sequenceNumber = :oq")
            .expression_attribute_values(":claimed", s(ClaimState::Claimed.as_str()))
            .expression_attribute_values(":oo", s(&stale.by.owner))
            .expression_attribute_values(":ot", n(stale.by.tenure))
            .expression_attribute_values(":oq", s(&stale.by.sequence_number));
        let mut sets = vec![];
        for (k, v) in values {
            sets.push(format!("#{k} = :n_{k}"));
            req = req
                .expression_attribute_names(format!("#{k}"), k.clone())
                .expression_attribute_values(format!(":n_{k}"), v);
        }
        applied(req.update_expression(format!("SET {}", sets.join(", "))).send().await)
    }

    async fn enable_time_to_live(&self) {
        let spec = TimeToLiveSpecification::builder().attribute_name(EXPIRES_AT).enabled(true).build();
        let result = match spec {
            Ok(spec) => self
                .client
                .update_time_to_live()
                .table_name(&self.name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::aws_error::explain(&e)),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => log::info!("claim table {}: time to live on {EXPIRES_AT} enabled", self.name),
            Err(e) => log::warn!(
                "claim table {}: cannot enable its time to live on {EXPIRES_AT} ({e}); old claims stay until deleted (enable it by hand, or grant dynamodb:UpdateTimeToLive)",
                self.name
            ),
        }
    }
}

#[async_trait]
impl ClaimStore for ClaimTable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn ensure_exists(&self) -> Result<bool, ClaimError> {
        match self.client.describe_table().table_name(&self.name).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(other(e)),
        }
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(COMMAND_ID)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| ClaimError::Other(e.to_string()))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(COMMAND_ID)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| ClaimError::Other(e.to_string()))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(other(e)),
        }
        if crate::dynamodb_table::wait_until_active(&self.client, &self.name).await.map_err(other)? {
            self.enable_time_to_live().await;
            return Ok(true);
        }
        Err(ClaimError::Other(format!("claim table {} did not become ACTIVE within 60 s", self.name)))
    }

    async fn claim(
        &self,
        command_id: &str,
        me: &Claimer,
        expires_at: i64,
        stale: Option<&Held>,
    ) -> Result<ClaimAnswer, ClaimError> {
        // Thousands of commands can wait here for a permit: each waits in a future sized for
        // the wait, not for the SDK calls after it (boxed below, allocated only once called).
        let _permit = self.permit().await?;
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(self.item(command_id, me, expires_at)))
                .condition_expression("attribute_not_exists(#id) OR #s = :released")
                .expression_attribute_names("#id", COMMAND_ID)
                .expression_attribute_names("#s", STATE)
                .expression_attribute_values(":released", s(ClaimState::Released.as_str()))
                .send();
            if applied(Box::pin(put).await)? {
                return Ok(ClaimAnswer::Granted { taken_over: None });
            }
            let Some((state, by, detail)) = Box::pin(self.read(command_id)).await? else { continue };
            match state {
                ClaimState::Released => continue,
                ClaimState::Done | ClaimState::Failed => return Ok(ClaimAnswer::Finished { state, by, detail }),
                ClaimState::Claimed if by == *me => return Ok(ClaimAnswer::Granted { taken_over: None }),
                ClaimState::Claimed => {
                    let seen = Held { by: by.clone() };
                    if stale != Some(&seen) {
                        return Ok(ClaimAnswer::Held(seen));
                    }
                    if Box::pin(self.take_over(command_id, me, expires_at, &seen)).await? {
                        return Ok(ClaimAnswer::Granted { taken_over: Some(by) });
                    }
                }
            }
        }
        Err(ClaimError::Other(format!("the claim of {command_id} kept changing under this claimer")))
    }

    async fn finish(
        &self,
        command_id: &str,
        me: &Claimer,
        state: ClaimState,
        detail: &str,
        attempts: u32,
    ) -> Result<bool, ClaimError> {
        let _permit = self.permit().await?;
        let req = self
            .update_mine(command_id, me)
            .update_expression("SET #s = :state, #d = :detail, #a = :attempts")
            .expression_attribute_names("#d", DETAIL)
            .expression_attribute_names("#a", ATTEMPTS)
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":detail", s(if detail.is_empty() { "-" } else { detail }))
            .expression_attribute_values(":attempts", n(attempts));
        applied(Box::pin(req.send()).await)
    }

    async fn release(&self, command_id: &str, me: &Claimer) -> Result<bool, ClaimError> {
        let _permit = self.permit().await?;
        let req = self
            .update_mine(command_id, me)
            .update_expression("SET #s = :released")
            .expression_attribute_values(":released", s(ClaimState::Released.as_str()));
        applied(Box::pin(req.send()).await)
    }
}
