//! Streams on the Kinesis emulator, Sauna commands to put on them, and the lease table to read
//! back.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use sauna::AwsClients;
use sauna::config::AwsCredentials;
use serde_json::json;

pub async fn clients() -> AwsClients {
    super::emulators();
    AwsClients::for_observer("us-east-1", &AwsCredentials::DefaultChain).await
}

/// Where one put record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub shard: String,
    pub seq: String,
    pub key: String,
    /// Index in the order the test produced the records.
    pub index: usize,
}

/// A stream with a unique name.
pub struct TestStream {
    pub name: String,
    pub clients: AwsClients,
}

impl TestStream {
    pub async fn create(prefix: &str, shards: i32) -> Self {
        let clients = clients().await;
        let name = super::unique_name(prefix);
        clients.kinesis.create_stream().stream_name(&name).shard_count(shards).send().await.expect("CreateStream");
        let s = TestStream { name, clients };
        s.wait_active().await;
        s
    }

    pub async fn wait_active(&self) {
        for _ in 0..200 {
            let d = self
                .clients
                .kinesis
                .describe_stream_summary()
                .stream_name(&self.name)
                .send()
                .await
                .expect("DescribeStreamSummary");
            if d.stream_description_summary().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("stream {} did not become ACTIVE", self.name);
    }

    /// Shard ids with their hash ranges and whether they are open.
    pub async fn shards(&self) -> Vec<aws_sdk_kinesis::types::Shard> {
        let out = self.clients.kinesis.list_shards().stream_name(&self.name).send().await.expect("ListShards");
        out.shards().to_vec()
    }

    pub async fn open_shards(&self) -> Vec<aws_sdk_kinesis::types::Shard> {
        self.shards()
            .await
            .into_iter()
            .filter(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
            .collect()
    }

    /// Puts records (key, data) in order, 500 per PutRecords, retrying any that failed.
    pub async fn put(&self, records: Vec<(String, Vec<u8>)>) -> Vec<Put> {
        let mut out = vec![];
        let mut index = 0;
        for chunk in records.chunks(500) {
            let mut pending: Vec<(usize, String, Vec<u8>)> =
                chunk.iter().enumerate().map(|(i, (k, d))| (index + i, k.clone(), d.clone())).collect();
            index += chunk.len();
            for _ in 0..20 {
                if pending.is_empty() {
                    break;
                }
                let entries = pending
                    .iter()
                    .map(|(_, k, d)| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(k)
                            .data(Blob::new(d.clone()))
                            .build()
                            .expect("entry")
                    })
                    .collect::<Vec<_>>();
                let resp = self
                    .clients
                    .kinesis
                    .put_records()
                    .stream_name(&self.name)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .expect("PutRecords");
                let results = resp.records().to_vec();
                let mut retry = vec![];
                for ((i, k, d), r) in pending.into_iter().zip(results) {
                    match (r.shard_id(), r.sequence_number()) {
                        (Some(shard), Some(seq)) => {
                            out.push(Put { shard: shard.to_owned(), seq: seq.to_owned(), key: k, index: i })
                        }
                        _ => retry.push((i, k, d)),
                    }
                }
                pending = retry;
                if !pending.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            assert!(pending.is_empty(), "some records could not be put");
        }
        out.sort_by_key(|p| p.index);
        out
    }

    /// Every record on the stream, shard after shard (each from its trim horizon to its tip).
    pub async fn records(&self) -> Vec<aws_sdk_kinesis::types::Record> {
        let mut out = vec![];
        for shard in self.shards().await {
            let mut it = self
                .clients
                .kinesis
                .get_shard_iterator()
                .stream_name(&self.name)
                .shard_id(shard.shard_id())
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator
                .expect("an iterator");
            for _ in 0..1000 {
                let r = self.clients.kinesis.get_records().shard_iterator(&it).send().await.expect("GetRecords");
                out.extend(r.records().iter().cloned());
                let at_tip = r.records().is_empty() && r.millis_behind_latest().is_none_or(|m| m == 0);
                match r.next_shard_iterator() {
                    Some(next) if !at_tip => it = next.to_owned(),
                    _ => break,
                }
            }
        }
        out
    }

    pub async fn split(&self, shard: &str) {
        let shards = self.shards().await;
        let s = shards.iter().find(|s| s.shard_id() == shard).expect("shard exists");
        let range = s.hash_key_range().expect("range");
        let lo: u128 = range.starting_hash_key().parse().expect("number");
        let hi: u128 = range.ending_hash_key().parse().expect("number");
        let mid = lo + (hi - lo) / 2;
        self.clients
            .kinesis
            .split_shard()
            .stream_name(&self.name)
            .shard_to_split(shard)
            .new_starting_hash_key(mid.to_string())
            .send()
            .await
            .expect("SplitShard");
        self.wait_active().await;
    }

    pub async fn merge(&self, a: &str, b: &str) {
        self.clients
            .kinesis
            .merge_shards()
            .stream_name(&self.name)
            .shard_to_merge(a)
            .adjacent_shard_to_merge(b)
            .send()
            .await
            .expect("MergeShards");
        self.wait_active().await;
    }
}

/// A Sauna command for the Slack responder, with `text`.
pub fn slack_command(id: &uuid::Uuid, text: &str) -> Vec<u8> {
    command(
        id,
        "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-0",
        json!({ "text": text }),
        None,
        "2026-01-01T00:00:00Z",
    )
}

/// A Sauna command of any type.
pub fn command(
    id: &uuid::Uuid,
    schema: &str,
    data: serde_json::Value,
    ttl_ms: Option<u64>,
    when_created: &str,
) -> Vec<u8> {
    json!({
        "schema": "iglu:com.snowplowanalytics.sauna.commands/command/jsonschema/1-0-0",
        "data": {
            "envelope": {
                "schema": "iglu:com.snowplowanalytics.sauna.commands/envelope/jsonschema/1-0-0",
                "data": {
                    "commandId": id.to_string(),
                    "whenCreated": when_created,
                    "execution": { "semantics": "AT_LEAST_ONCE", "timeToLive": ttl_ms },
                    "tags": {}
                }
            },
            "command": { "schema": schema, "data": data }
        }
    })
    .to_string()
    .into_bytes()
}

/// Every row of a lease table, raw.
pub async fn lease_rows(clients: &AwsClients, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    all_rows(clients, table)
        .await
        .into_iter()
        .filter(|r| r.get("entityType").and_then(|t| t.as_s().ok()).is_none_or(|t| t == "LEASE"))
        .collect()
}

/// Every row of the lease table, leases or not (sauna's change signal, KCL 3.5 rows).
pub async fn all_rows(clients: &AwsClients, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let out = clients.dynamodb.scan().table_name(table).consistent_read(true).send().await;
    match out {
        Ok(o) => o.items().to_vec(),
        Err(_) => vec![],
    }
}

/// `leaseKey` → `checkpoint` of every lease row.
pub async fn checkpoints(clients: &AwsClients, table: &str) -> HashMap<String, String> {
    lease_rows(clients, table)
        .await
        .into_iter()
        .filter_map(|r| {
            let k = r.get("leaseKey")?.as_s().ok()?.clone();
            let c = r.get("checkpoint")?.as_s().ok()?.clone();
            Some((k, c))
        })
        .collect()
}

/// The text field of the Slack messages received, in arrival order.
pub fn texts(requests: &[super::http::Recorded]) -> Vec<String> {
    requests.iter().filter_map(|r| r.json().get("text").and_then(|t| t.as_str()).map(str::to_owned)).collect()
}
