//! `iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0`: the tuning knobs Sauna's own schemas have
//! no room for (mailboxes, lease timings, checkpoint batching, metrics, retries). Every field
//! has a default, so a directory without this file runs with the defaults documented in the
//! schema and the README.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Backoff, Outcome};

mod decode;

pub(crate) use decode::check_http_url;

/// The Iglu key of this config.
pub const KEY: &str = "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0";

/// Mailbox capacity of each actor kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxCapacities {
    pub supervisor: usize,
    pub lease_manager: usize,
    pub shard_consumer: usize,
    pub checkpointer: usize,
    pub metrics: usize,
    pub responder: usize,
    pub dead_letters: usize,
    pub outcome_log: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// A lease whose counter this worker has not seen change for this long is expired.
    pub failover_time: Duration,
    pub renew_interval: Duration,
    pub take_interval: Duration,
    /// How often free and expired leases are looked for (a scan of the lease table).
    pub discovery_interval: Duration,
    pub max_leases_for_worker: Option<usize>,
    /// `None`: steal as many as bring this worker to its share in one cycle.
    pub max_leases_to_steal_at_one_time: Option<usize>,
    pub shard_sync_interval: Duration,
    pub parent_shard_poll_interval: Duration,
    pub cleanup_leases_upon_shard_completion: bool,
    /// The prefix of this worker's identity (`None`: the hostname); every process appends
    /// `:<random UUID>`, so two processes never share an identity.
    pub worker_id: Option<String>,
    /// How often the lease table's change signal is read (`None`: no signal; free leases are
    /// found by the discovery scans only).
    pub signal_poll_interval: Option<Duration>,
}

/// How a shard's commands may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ordering {
    /// Same partition key: one at a time, in sequence order. Different keys overlap.
    PartitionKey,
    /// One command at a time per shard, in sequence order.
    Shard,
}

/// How shards are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetrievalMode {
    /// GetRecords, every `idleTimeBetweenReadsMillis` while a shard is caught up.
    Polling,
    /// Enhanced fan-out: SubscribeToShard through a registered stream consumer; the service
    /// pushes records as they arrive, with a read throughput of its own per consumer.
    FanOut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalSettings {
    pub idle_time_between_reads: Duration,
    /// After consecutive empty reads the wait doubles, up to this.
    pub max_idle_time_between_reads: Duration,
    pub max_in_flight_per_shard: usize,
    /// The most record data bytes of a shard read and without an outcome.
    pub max_in_flight_bytes_per_shard: usize,
    pub ordering: Ordering,
    pub mode: RetrievalMode,
    /// The stream consumer of `FAN_OUT`; `None`: the observer id.
    pub consumer_name: Option<String>,
    /// A subscription is renewed after this long (the service ends each after 5 minutes).
    pub max_subscription: Duration,
}

impl RetrievalSettings {
    /// The stream consumer name of observer `id`.
    pub fn consumer_name_of(&self, id: &str) -> String {
        self.consumer_name.clone().unwrap_or_else(|| id.to_owned())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetricsLevel {
    None,
    Summary,
    Detailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub flush_interval: Duration,
    pub level: MetricsLevel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
}

impl RetryPolicy {
    /// The backoff between attempts: exponential, with jitter.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_backoff, self.max_backoff).jittered()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub pager_duty_events_url: String,
    pub sendgrid_api_url: String,
}

/// Effectively once: the claims of commands (see `claims`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSettings {
    pub enabled: bool,
    /// The claim table; `None`: `<observer id>-claims`.
    pub table: Option<String>,
    /// How long the claim of a command without a time to live is kept.
    pub retention: Duration,
    /// How many claim requests this worker has at DynamoDB at once (a shard with thousands of
    /// commands in flight would otherwise crowd out the lease renewals).
    pub max_concurrent_requests: usize,
}

impl DedupSettings {
    /// The claim table of observer `id`.
    pub fn table_of(&self, id: &str) -> String {
        self.table.clone().unwrap_or_else(|| format!("{id}-claims"))
    }
}

/// Where records that end without being actioned are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterSettings {
    /// A JSON-lines file, resolved against the config directory.
    pub file: Option<PathBuf>,
    /// A Kinesis stream in the observer's region.
    pub stream: Option<String>,
    /// Which outcomes are written.
    pub outcomes: Vec<Outcome>,
}

impl DeadLetterSettings {
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.stream.is_some()
    }

    pub fn wants(&self, outcome: Outcome) -> bool {
        self.enabled() && self.outcomes.contains(&outcome)
    }
}

/// The optional HTTP endpoint of the process: Prometheus `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSettings {
    /// The one address it listens on (`None`, the default: no endpoint, no port opened).
    pub listen: Option<std::net::SocketAddr>,
}

/// A responder's pace: one attempt every `every`, up to `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub every: Duration,
    pub burst: u32,
}

/// The runtime tuning of the whole process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub mailboxes: MailboxCapacities,
    pub leases: LeaseSettings,
    pub retrieval: RetrievalSettings,
    pub checkpoint_interval: Duration,
    pub dedup: DedupSettings,
    pub metrics: MetricsSettings,
    pub retry: RetryPolicy,
    /// Commands each responder actions at once.
    pub responder_concurrency: usize,
    /// Per responder id: its pace (`None`: set to no limit); responders not named here keep
    /// their own default (`Responder::default_rate_limit`).
    pub rate_limits: BTreeMap<String, Option<RateLimit>>,
    /// How long a graceful shutdown waits for in-flight commands.
    pub shutdown_timeout: Duration,
    pub dead_letters: DeadLetterSettings,
    /// Folders of local static Iglu repositories, already resolved against the config dir.
    pub iglu_repositories: Vec<PathBuf>,
    pub endpoints: Endpoints,
    pub http: HttpSettings,
}

/// The Avro schema of this config.
pub const AVRO_SCHEMA: &str = include_str!("../../../resources/iglu/schemas/rs.sauna.config/RuntimeConfig/avro/1-0-0");

/// [`AVRO_SCHEMA`], parsed once.
pub fn schema() -> &'static apache_avro::Schema {
    static SCHEMA: std::sync::OnceLock<apache_avro::Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| apache_avro::Schema::parse_str(AVRO_SCHEMA).expect("the embedded runtime schema parses"))
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let value = crate::config::avro_json::json_to_avro(&serde_json::json!({}), schema(), "data")
            .expect("the runtime schema has a default for every field");
        RuntimeConfig::from_avro(&value, std::path::Path::new(".")).expect("the runtime schema defaults are valid")
    }
}
