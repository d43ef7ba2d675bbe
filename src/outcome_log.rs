//! `OutcomeLog`: Sauna's DynamoDB logger (`loggers/AmazonDynamodbConfig` 1-0-0): one row per
//! command outcome — commandId, responder, status, description, time — in the configured
//! table, written in batches. An audit log: it never holds up a shard; if DynamoDB cannot keep
//! up, rows are dropped with a warning.
//!
//! Rows are keyed like Sauna's (`uid`, `name`): the hash key is the commandId (or
//! `<shard>/<sequence number>` for a record without one), the range key, when the table has
//! one, the responder id (or the outcome): a command read twice overwrites its own row. A
//! table that does not exist is created that way (on-demand).

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};

use crate::model::{Backoff, Outcome};
use crate::supervision::stops_on_request;

/// One command's outcome.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct OutcomeRow {
    pub command_id: Option<String>,
    pub responder: Option<String>,
    pub status: Outcome,
    pub description: String,
    pub observer: String,
    pub shard: String,
    pub sequence_number: String,
    pub attempts: u32,
    /// Actioned after taking over the claim of a claimer that stopped mid-attempt.
    pub possible_duplicate: bool,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// Writes what is buffered now (shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FlushRows;

/// The table's key attribute names.
#[derive(Debug, Clone)]
struct Keys {
    hash: String,
    range: Option<String>,
}

pub struct OutcomeLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
    keys: Option<Keys>,
    buffer: Vec<OutcomeRow>,
    in_flight: bool,
    mailbox: usize,
    written: u64,
}

/// BatchWriteItem takes 25 items.
const BATCH: usize = 25;

impl OutcomeLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, mailbox: usize) -> Self {
        OutcomeLog { client, table, keys: None, buffer: vec![], in_flight: false, mailbox, written: 0 }
    }

    fn item(keys: &Keys, r: &OutcomeRow) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let uid = r.command_id.clone().unwrap_or_else(|| format!("{}/{}", r.shard, r.sequence_number));
        let name = r.responder.clone().unwrap_or_else(|| r.status.as_str().to_owned());
        let mut item = HashMap::from([
            (keys.hash.clone(), s(&uid)),
            ("status".to_owned(), s(r.status.as_str())),
            ("description".to_owned(), s(if r.description.is_empty() { "-" } else { &r.description })),
            ("time".to_owned(), s(&r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))),
            ("lastModified".to_owned(), AttributeValue::N(r.time.timestamp_millis().to_string())),
            ("observer".to_owned(), s(&r.observer)),
            ("shard".to_owned(), s(&r.shard)),
            ("sequenceNumber".to_owned(), s(&r.sequence_number)),
            ("attempts".to_owned(), AttributeValue::N(r.attempts.to_string())),
        ]);
        if let Some(id) = &r.command_id {
            item.insert("commandId".to_owned(), s(id));
        }
        if let Some(resp) = &r.responder {
            item.insert("responder".to_owned(), s(resp));
        }
        if r.possible_duplicate {
            item.insert("possibleDuplicate".to_owned(), AttributeValue::Bool(true));
        }
        if let Some(range) = &keys.range {
            item.insert(range.clone(), s(&name));
        }
        item
    }

    /// Learns the table's keys, creating the table if it does not exist.
    async fn keys(client: aws_sdk_dynamodb::Client, table: String) -> Result<Keys, String> {
        let described = client.describe_table().table_name(&table).send().await;
        let schema = match described {
            Ok(d) => d.table().map(|t| t.key_schema().to_vec()).unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                let def = |n: &str| {
                    AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build()
                };
                let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
                let created = client
                    .create_table()
                    .table_name(&table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .set_attribute_definitions(Some(
                        [def("uid"), def("name")]
                            .into_iter()
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| e.to_string())?,
                    ))
                    .set_key_schema(Some(
                        [key("uid", KeyType::Hash), key("name", KeyType::Range)]
                            .into_iter()
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| e.to_string())?,
                    ))
                    .send()
                    .await;
                if let Err(e) = created
                    && !e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception())
                {
                    return Err(format!(
                        "cannot create table {table}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    ));
                }
                log::info!("outcome log: table {table} created (hash key uid, range key name, on-demand)");
                for _ in 0..300 {
                    let d = client.describe_table().table_name(&table).send().await;
                    if d.ok().and_then(|d| d.table().and_then(|t| t.table_status().cloned()))
                        == Some(aws_sdk_dynamodb::types::TableStatus::Active)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return Ok(Keys { hash: "uid".into(), range: Some("name".into()) });
            }
            Err(e) => {
                return Err(format!(
                    "cannot describe table {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ));
            }
        };
        let find = |t: KeyType| schema.iter().find(|k| *k.key_type() == t).map(|k| k.attribute_name().to_owned());
        let hash = find(KeyType::Hash).ok_or_else(|| format!("table {table} has no hash key"))?;
        Ok(Keys { hash, range: find(KeyType::Range) })
    }

    fn flush(&mut self) -> ResponseActFuture<Self, ()> {
        let Some(keys) = self.keys.clone() else { return Box::pin(actix::fut::ready(())) };
        if self.in_flight || self.buffer.is_empty() {
            return Box::pin(actix::fut::ready(()));
        }
        let rows: Vec<OutcomeRow> = self.buffer.drain(..).collect();
        let client = self.client.clone();
        let table = self.table.clone();
        self.in_flight = true;
        let fut = async move {
            let mut written = 0u64;
            for chunk in rows.chunks(BATCH) {
                // A command read twice in one batch would be a duplicate key: keep its last row.
                let mut unique: HashMap<(String, String), WriteRequest> = HashMap::new();
                for r in chunk {
                    let item = Self::item(&keys, r);
                    let k = (
                        item.get(&keys.hash).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                        keys.range
                            .as_ref()
                            .and_then(|rk| item.get(rk))
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default(),
                    );
                    if let Ok(put) = PutRequest::builder().set_item(Some(item)).build() {
                        unique.insert(k, WriteRequest::builder().put_request(put).build());
                    }
                }
                let mut requests: Vec<WriteRequest> = unique.into_values().collect();
                let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
                for attempt in 0..5u32 {
                    if requests.is_empty() {
                        break;
                    }
                    if attempt > 0 {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    let n = requests.len() as u64;
                    match client.batch_write_item().request_items(&table, requests.clone()).send().await {
                        Ok(out) => {
                            let unprocessed =
                                out.unprocessed_items().and_then(|u| u.get(&table)).cloned().unwrap_or_default();
                            written += n - unprocessed.len() as u64;
                            requests = unprocessed;
                        }
                        Err(e) => log::warn!(
                            "outcome log: BatchWriteItem to {table} failed ({}); retrying",
                            aws_sdk_dynamodb::error::DisplayErrorContext(e)
                        ),
                    }
                }
                if !requests.is_empty() {
                    log::warn!("outcome log: {} rows not written to {table}", requests.len());
                }
            }
            written
        };
        Box::pin(fut.into_actor(self).map(|written, act, _| {
            act.in_flight = false;
            act.written += written;
        }))
    }
}

impl Actor for OutcomeLog {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
        let (client, table) = (self.client.clone(), self.table.clone());
        ctx.spawn(Self::keys(client, table).into_actor(self).map(|keys, act, _| match keys {
            Ok(k) => act.keys = Some(k),
            Err(e) => log::error!("outcome log: {e}; outcomes are only logged, not written to DynamoDB"),
        }));
        // Rows go out in batches every 200 ms (or 25 at a time): cheap, and prompt enough for
        // an audit log.
        ctx.run_interval(Duration::from_millis(200), |act, ctx| {
            let f = act.flush();
            ctx.spawn(f);
        });
    }
}

impl Handler<OutcomeRow> for OutcomeLog {
    type Result = ();

    fn handle(&mut self, row: OutcomeRow, ctx: &mut Self::Context) {
        self.buffer.push(row);
        if self.buffer.len() >= BATCH * 4 {
            let f = self.flush();
            ctx.spawn(f);
        }
        // Bound what waits for a slow or missing table.
        if self.buffer.len() > 100_000 {
            let dropped = self.buffer.len() - 100_000;
            self.buffer.drain(..dropped);
            log::warn!("outcome log: {dropped} rows dropped (DynamoDB is not keeping up)");
        }
    }
}

impl Handler<FlushRows> for OutcomeLog {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushRows, _: &mut Self::Context) -> Self::Result {
        self.flush()
    }
}

stops_on_request!(OutcomeLog);
