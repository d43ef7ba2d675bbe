//! Decoding a RuntimeConfig: the schema's raw records, each section checked with an error
//! naming its field, into the typed settings of `runtime`.

use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use serde::Deserialize;

use super::*;
use crate::config::avro_json::FieldError;

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
    rate_limits: std::collections::HashMap<String, RawRateLimit>,
    shutdown_timeout_millis: i64,
    dead_letters: RawDeadLetters,
    iglu_repositories: Vec<String>,
    endpoints: Endpoints,
    http: RawHttp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRateLimit {
    per_second: f64,
    burst: i32,
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
    max_idle_time_between_reads_millis: Option<i64>,
    max_in_flight_per_shard: i32,
    max_in_flight_bytes_per_shard: i64,
    ordering: Ordering,
    mode: RetrievalMode,
    consumer_name: Option<String>,
    max_subscription_millis: i64,
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
            rate_limits: rate_limits(&raw.rate_limits)?,
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
            // A lone call (nothing else to share its wake with): reading it every 250 ms was a
            // quarter of an idle worker's CPU; every 500 ms still hands shards over within a
            // fraction of a second, where the KCL waits for its next take (2 × failover).
            None => Some((failover / 20).max(Duration::from_millis(50))),
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

/// `retrieval.maxInFlightBytesPerShard`: from 64 KiB (one record of up to 1 MiB still passes:
/// the bound pauses reading, it never refuses a record) to 1 GiB.
const MIN_IN_FLIGHT_BYTES: i64 = 64 * 1024;
const MAX_IN_FLIGHT_BYTES: i64 = 1 << 30;

fn retrieval_settings(r: &RawRetrieval) -> Result<RetrievalSettings, FieldError> {
    // 0 is allowed: a test or a latency-critical user may poll without pause (the 5
    // GetRecords/s/shard limit then throttles, and throttles back off).
    let idle = millis(r.idle_time_between_reads_millis, "data.retrieval.idleTimeBetweenReadsMillis", 0)?;
    let max_idle = match r.max_idle_time_between_reads_millis {
        None => idle * 4,
        Some(ms) => {
            let path = "data.retrieval.maxIdleTimeBetweenReadsMillis";
            let max = millis(ms, path, 0)?;
            if max < idle {
                return Err(FieldError::new(
                    path,
                    format!("expected at least idleTimeBetweenReadsMillis ({} ms), found {ms}", idle.as_millis()),
                ));
            }
            max
        }
    };
    Ok(RetrievalSettings {
        idle_time_between_reads: idle,
        max_idle_time_between_reads: max_idle,
        max_in_flight_per_shard: match r.max_in_flight_per_shard {
            n @ 1..=100_000 => n as usize,
            n => {
                return Err(FieldError::new(
                    "data.retrieval.maxInFlightPerShard",
                    format!("expected an integer from 1 to 100000, found {n}"),
                ));
            }
        },
        max_in_flight_bytes_per_shard: match r.max_in_flight_bytes_per_shard {
            n @ MIN_IN_FLIGHT_BYTES..=MAX_IN_FLIGHT_BYTES => n as usize,
            n => {
                return Err(FieldError::new(
                    "data.retrieval.maxInFlightBytesPerShard",
                    format!("expected an integer from {MIN_IN_FLIGHT_BYTES} to {MAX_IN_FLIGHT_BYTES}, found {n}"),
                ));
            }
        },
        ordering: r.ordering,
        mode: r.mode,
        consumer_name: consumer_name(r.consumer_name.as_deref())?,
        max_subscription: match r.max_subscription_millis {
            n @ 1000..=300_000 => Duration::from_millis(n as u64),
            n => {
                return Err(FieldError::new(
                    "data.retrieval.maxSubscriptionMillis",
                    format!("expected milliseconds from 1000 to 300000 (the service's 5 minutes), found {n}"),
                ));
            }
        },
    })
}

/// A Kinesis stream consumer name: 1 to 128 of `a-zA-Z0-9_.-`.
fn consumer_name(name: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(name) = name else { return Ok(None) };
    let ok = (1..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(Some(name.to_owned()))
    } else {
        Err(FieldError::new(
            "data.retrieval.consumerName",
            format!(
                "expected null or a stream consumer name (1 to 128 characters of a-z, A-Z, 0-9, '_', '-', '.'), found {name:?}"
            ),
        ))
    }
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
    let file = raw.file.as_ref().map(|f| base_dir.join(f));
    if let Some(folder) = file.as_ref().and_then(|f| f.parent()).filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(FieldError::new(
            "data.deadLetters.file",
            format!("expected a file in an existing folder, but {} is not a folder", folder.display()),
        ));
    }
    Ok(DeadLetterSettings {
        file,
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

fn rate_limits(
    raw: &std::collections::HashMap<String, RawRateLimit>,
) -> Result<std::collections::BTreeMap<String, Option<RateLimit>>, FieldError> {
    let mut out = std::collections::BTreeMap::new();
    for (id, r) in raw {
        let field = |f: &str| format!("data.rateLimits.{id}.{f}");
        if !(r.per_second.is_finite() && (0.0..=100_000.0).contains(&r.per_second)) {
            return Err(FieldError::new(
                field("perSecond"),
                format!("expected attempts per second from 0 (no limit) to 100000, found {}", r.per_second),
            ));
        }
        if !(1..=100_000).contains(&r.burst) {
            return Err(FieldError::new(field("burst"), format!("expected 1 to 100000, found {}", r.burst)));
        }
        let limit = (r.per_second > 0.0).then(|| RateLimit {
            every: Duration::from_secs_f64(1.0 / r.per_second).max(Duration::from_micros(10)),
            burst: r.burst as u32,
        });
        out.insert(id.clone(), limit);
    }
    Ok(out)
}
