//! `iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0`: the tuning knobs Sauna's own schemas have
//! no room for (mailboxes, lease timings, checkpoint batching, metrics, retries). Every field
//! has a default, so a directory without this file runs with the defaults documented in the
//! schema and the README.

use std::path::PathBuf;
use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use serde::Deserialize;

use super::avro_json::FieldError;
use crate::model::{Backoff, Outcome};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalSettings {
    pub idle_time_between_reads: Duration,
    pub max_in_flight_per_shard: usize,
    pub ordering: Ordering,
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
    /// How long a graceful shutdown waits for in-flight commands.
    pub shutdown_timeout: Duration,
    pub dead_letters: DeadLetterSettings,
    /// Folders of local static Iglu repositories, already resolved against the config dir.
    pub iglu_repositories: Vec<PathBuf>,
    pub endpoints: Endpoints,
    pub http: HttpSettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    mailboxes: MailboxCapacities,
    leases: RawLeases,
    retrieval: RawRetrieval,
    checkpoint: RawCheckpoint,
    dedup: RawDedup,
    metrics: RawMetrics,
    retry: RawRetry,
    responder_concurrency: i32,
    shutdown_timeout_millis: i64,
    dead_letters: RawDeadLetters,
    iglu_repositories: Vec<String>,
    endpoints: Endpoints,
    http: RawHttp,
}

#[derive(Deserialize)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLeases {
    failover_time_millis: i64,
    renew_interval_millis: Option<i64>,
    take_interval_millis: Option<i64>,
    discovery_interval_millis: Option<i64>,
    max_leases_for_worker: Option<i32>,
    max_leases_to_steal_at_one_time: Option<i32>,
    shard_sync_interval_millis: i64,
    parent_shard_poll_interval_millis: i64,
    cleanup_leases_upon_shard_completion: bool,
    worker_id: Option<String>,
    signal_poll_interval_millis: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetrieval {
    idle_time_between_reads_millis: i64,
    max_in_flight_per_shard: i32,
    ordering: Ordering,
}

#[derive(Deserialize)]
struct RawDeadLetters {
    file: Option<String>,
    stream: Option<String>,
    outcomes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDedup {
    enabled: bool,
    table: Option<String>,
    retention_millis: i64,
    max_concurrent_requests: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCheckpoint {
    interval_millis: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetrics {
    enabled: bool,
    flush_interval_millis: i64,
    level: MetricsLevel,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetry {
    max_attempts: i32,
    initial_backoff_millis: i64,
    max_backoff_millis: i64,
    request_timeout_millis: i64,
}

/// The outcomes a record can be dead-lettered for (a `duplicate` never is: it was actioned).
const DEAD_LETTER_OUTCOMES: [Outcome; 4] = [Outcome::Failed, Outcome::Invalid, Outcome::Unroutable, Outcome::Expired];

/// KCL's ε: renewals are scheduled slightly inside the failover window.
const EPSILON: Duration = Duration::from_millis(25);

/// The Avro schema of this config.
pub const AVRO_SCHEMA: &str = include_str!("../../resources/iglu/schemas/rs.sauna.config/RuntimeConfig/avro/1-0-0");

/// [`AVRO_SCHEMA`], parsed once.
pub fn schema() -> &'static apache_avro::Schema {
    static SCHEMA: std::sync::OnceLock<apache_avro::Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| apache_avro::Schema::parse_str(AVRO_SCHEMA).expect("the embedded runtime schema parses"))
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let value = super::avro_json::json_to_avro(&serde_json::json!({}), schema(), "data")
            .expect("the runtime schema has a default for every field");
        RuntimeConfig::from_avro(&value, std::path::Path::new(".")).expect("the runtime schema defaults are valid")
    }
}

impl RuntimeConfig {
    /// Builds the typed config; relative paths (Iglu repositories, the dead-letter file) are
    /// resolved against `base_dir`.
    pub fn from_avro(value: &AvroValue, base_dir: &std::path::Path) -> Result<Self, FieldError> {
        let raw: Raw =
            apache_avro::from_value(value).map_err(|e| FieldError::new("data", format!("cannot decode: {e}")))?;
        check_mailboxes(&raw.mailboxes)?;
        for (name, url) in [
            ("pagerDutyEventsUrl", &raw.endpoints.pager_duty_events_url),
            ("sendgridApiUrl", &raw.endpoints.sendgrid_api_url),
        ] {
            check_http_url(url).map_err(|m| FieldError::new(format!("data.endpoints.{name}"), m))?;
        }
        Ok(RuntimeConfig {
            leases: lease_settings(&raw.leases)?,
            retrieval: retrieval_settings(&raw.retrieval)?,
            checkpoint_interval: millis(raw.checkpoint.interval_millis, "data.checkpoint.intervalMillis", 1)?,
            dedup: dedup_settings(&raw.dedup)?,
            metrics: MetricsSettings {
                enabled: raw.metrics.enabled,
                flush_interval: millis(raw.metrics.flush_interval_millis, "data.metrics.flushIntervalMillis", 100)?,
                level: raw.metrics.level,
            },
            retry: retry_policy(&raw.retry)?,
            responder_concurrency: match raw.responder_concurrency {
                n @ 1..=10_000 => n as usize,
                n => {
                    return Err(FieldError::new(
                        "data.responderConcurrency",
                        format!("expected an integer from 1 to 10000, found {n}"),
                    ));
                }
            },
            shutdown_timeout: millis(raw.shutdown_timeout_millis, "data.shutdownTimeoutMillis", 0)?,
            dead_letters: dead_letter_settings(raw.dead_letters, base_dir)?,
            iglu_repositories: raw.iglu_repositories.iter().map(|p| base_dir.join(p)).collect(),
            mailboxes: raw.mailboxes,
            endpoints: raw.endpoints,
            http: HttpSettings { listen: listen_address(raw.http.listen.as_deref())? },
        })
    }
}

fn check_mailboxes(m: &MailboxCapacities) -> Result<(), FieldError> {
    for (name, cap) in [
        ("supervisor", m.supervisor),
        ("leaseManager", m.lease_manager),
        ("shardConsumer", m.shard_consumer),
        ("checkpointer", m.checkpointer),
        ("metrics", m.metrics),
        ("responder", m.responder),
        ("deadLetters", m.dead_letters),
        ("outcomeLog", m.outcome_log),
    ] {
        if !(1..=1_000_000).contains(&cap) {
            return Err(FieldError::new(
                format!("data.mailboxes.{name}"),
                format!("expected a capacity from 1 to 1000000, found {cap}"),
            ));
        }
    }
    Ok(())
}

fn lease_settings(l: &RawLeases) -> Result<LeaseSettings, FieldError> {
    let failover = millis(l.failover_time_millis, "data.leases.failoverTimeMillis", 100)?;
    let renew = match l.renew_interval_millis {
        Some(ms) => millis(ms, "data.leases.renewIntervalMillis", 10)?,
        None => (failover / 3).saturating_sub(EPSILON).max(Duration::from_millis(10)),
    };
    if renew >= failover {
        return Err(FieldError::new(
            "data.leases.renewIntervalMillis",
            format!(
                "expected less than failoverTimeMillis ({} ms) so a live worker renews before its leases expire, found {} ms",
                failover.as_millis(),
                renew.as_millis()
            ),
        ));
    }
    let take = match l.take_interval_millis {
        Some(ms) => millis(ms, "data.leases.takeIntervalMillis", 10)?,
        None => (failover + EPSILON) * 2,
    };
    let discovery = match l.discovery_interval_millis {
        Some(ms) => millis(ms, "data.leases.discoveryIntervalMillis", 10)?,
        None => renew,
    };
    let positive = |v: Option<i32>, path: &str| -> Result<Option<usize>, FieldError> {
        match v {
            None => Ok(None),
            Some(n) if n >= 1 => Ok(Some(n as usize)),
            Some(n) => Err(FieldError::new(path, format!("expected null or an integer of at least 1, found {n}"))),
        }
    };
    Ok(LeaseSettings {
        failover_time: failover,
        renew_interval: renew,
        take_interval: take,
        discovery_interval: discovery,
        max_leases_for_worker: positive(l.max_leases_for_worker, "data.leases.maxLeasesForWorker")?,
        max_leases_to_steal_at_one_time: positive(
            l.max_leases_to_steal_at_one_time,
            "data.leases.maxLeasesToStealAtOneTime",
        )?,
        shard_sync_interval: millis(l.shard_sync_interval_millis, "data.leases.shardSyncIntervalMillis", 100)?,
        parent_shard_poll_interval: millis(
            l.parent_shard_poll_interval_millis,
            "data.leases.parentShardPollIntervalMillis",
            10,
        )?,
        cleanup_leases_upon_shard_completion: l.cleanup_leases_upon_shard_completion,
        worker_id: match &l.worker_id {
            Some(w) if w.trim().is_empty() => {
                return Err(FieldError::new("data.leases.workerId", "expected null or a non-empty string"));
            }
            other => other.clone(),
        },
        signal_poll_interval: match l.signal_poll_interval_millis {
            Some(0) => None,
            Some(ms) => Some(millis(ms, "data.leases.signalPollIntervalMillis", 10)?),
            None => Some((failover / 40).max(Duration::from_millis(50))),
        },
    })
}

fn dedup_settings(d: &RawDedup) -> Result<DedupSettings, FieldError> {
    const YEAR: i64 = 366 * 86_400_000;
    if !(60_000..=YEAR).contains(&d.retention_millis) {
        return Err(FieldError::new(
            "data.dedup.retentionMillis",
            format!("expected milliseconds from 60000 (a minute) to {YEAR} (a year), found {}", d.retention_millis),
        ));
    }
    if let Some(t) = &d.table {
        let ok = (3..=255).contains(&t.len())
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(FieldError::new(
                "data.dedup.table",
                format!(
                    "expected null or a DynamoDB table name (3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.'), found {t:?}"
                ),
            ));
        }
    }
    if !(1..=10_000).contains(&d.max_concurrent_requests) {
        return Err(FieldError::new(
            "data.dedup.maxConcurrentRequests",
            format!("expected 1 to 10000, found {}", d.max_concurrent_requests),
        ));
    }
    Ok(DedupSettings {
        enabled: d.enabled,
        table: d.table.clone(),
        retention: Duration::from_millis(d.retention_millis as u64),
        max_concurrent_requests: d.max_concurrent_requests as usize,
    })
}

fn retrieval_settings(r: &RawRetrieval) -> Result<RetrievalSettings, FieldError> {
    Ok(RetrievalSettings {
        // 0 is allowed: a test or a latency-critical user may poll without pause (the 5
        // GetRecords/s/shard limit then throttles, and throttles back off).
        idle_time_between_reads: millis(
            r.idle_time_between_reads_millis,
            "data.retrieval.idleTimeBetweenReadsMillis",
            0,
        )?,
        max_in_flight_per_shard: match r.max_in_flight_per_shard {
            n @ 1..=100_000 => n as usize,
            n => {
                return Err(FieldError::new(
                    "data.retrieval.maxInFlightPerShard",
                    format!("expected an integer from 1 to 100000, found {n}"),
                ));
            }
        },
        ordering: r.ordering,
    })
}

fn retry_policy(rt: &RawRetry) -> Result<RetryPolicy, FieldError> {
    if !(1..=100).contains(&rt.max_attempts) {
        return Err(FieldError::new(
            "data.retry.maxAttempts",
            format!(
                "expected an integer from 1 to 100 (attempts in all, the first included), found {}",
                rt.max_attempts
            ),
        ));
    }
    Ok(RetryPolicy {
        max_attempts: rt.max_attempts as u32,
        initial_backoff: millis(rt.initial_backoff_millis, "data.retry.initialBackoffMillis", 0)?,
        max_backoff: millis(rt.max_backoff_millis, "data.retry.maxBackoffMillis", 0)?,
        request_timeout: millis(rt.request_timeout_millis, "data.retry.requestTimeoutMillis", 1)?,
    })
}

fn dead_letter_settings(raw: RawDeadLetters, base_dir: &std::path::Path) -> Result<DeadLetterSettings, FieldError> {
    Ok(DeadLetterSettings {
        file: raw.file.as_ref().map(|f| base_dir.join(f)),
        stream: match raw.stream {
            Some(s) if s.trim().is_empty() => {
                return Err(FieldError::new("data.deadLetters.stream", "expected null or a Kinesis stream name"));
            }
            other => other,
        },
        outcomes: raw
            .outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                DEAD_LETTER_OUTCOMES.into_iter().find(|x| x.as_str() == o).ok_or_else(|| {
                    FieldError::new(
                        format!("data.deadLetters.outcomes[{i}]"),
                        format!("expected one of \"failed\", \"invalid\", \"unroutable\", \"expired\", found {o:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

/// A duration in milliseconds of at least `min` and at most a day.
fn millis(ms: i64, path: &str, min: i64) -> Result<Duration, FieldError> {
    const DAY: i64 = 86_400_000;
    if (min..=DAY).contains(&ms) {
        Ok(Duration::from_millis(ms as u64))
    } else {
        Err(FieldError::new(path, format!("expected milliseconds from {min} to {DAY}, found {ms}")))
    }
}

/// `http.listen`: an IP address and a port (no host name: the endpoint binds exactly this
/// address, never whatever a name resolves to).
fn listen_address(listen: Option<&str>) -> Result<Option<std::net::SocketAddr>, FieldError> {
    let Some(text) = listen else { return Ok(None) };
    text.trim().parse().map(Some).map_err(|_| {
        FieldError::new(
            "data.http.listen",
            format!(
                "expected null or an IP address and port to listen on, e.g. \"127.0.0.1:9404\" or \"0.0.0.0:9404\", found {text:?}"
            ),
        )
    })
}

/// An absolute http(s) URL.
pub(crate) fn check_http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err("expected an absolute http:// or https:// URL".to_owned()),
    }
}
