//! The Prometheus side of [`super::Metrics`]: the samples CloudWatch gets, as Prometheus series
//! in one registry per process, which the `http.listen` endpoint encodes (with the official
//! client's encoders: nothing here writes the text format).
//!
//! Why beside the Metrics actor: every actor already sends its measurements there, so Prometheus
//! sees exactly what CloudWatch sees without a second instrumentation, and nothing is added to
//! the actors' hot paths. It does not depend on CloudWatch's settings: `metrics.enabled` and
//! `metrics.level` shape only what goes to CloudWatch.
//!
//! Names follow Prometheus's conventions (`sauna_` prefix, base units — seconds, bytes —,
//! `_total` on counters); the KCL's dimensions become labels: `operation`, `shard_id` or
//! `worker`, plus `observer` (the observer id, CloudWatch's namespace).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit as RegistryUnit};

use super::{Operation, Sample, Scope, Unit};

/// How the samples of a measurement are exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Each sample is an increment: a counter (`_total`).
    Counter,
    /// Each sample is a level: the latest is the value.
    Gauge,
    /// Each sample is a duration: a histogram in seconds.
    Histogram,
}

/// The base unit of a family (appended to its name by the encoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUnit {
    Seconds,
    Bytes,
}

/// One measurement: its CloudWatch name and the Prometheus series its samples go to.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub cloudwatch: &'static str,
    /// The family, without the `sauna_` prefix, the unit and `_total`.
    pub family: &'static str,
    pub kind: Kind,
    pub unit: Option<BaseUnit>,
    pub help: &'static str,
    /// A label telling the measurements of one family apart (the outcome of `sauna_commands`).
    pub label: Option<(&'static str, &'static str)>,
}

const fn series(cloudwatch: &'static str, family: &'static str, kind: Kind, help: &'static str) -> Series {
    Series { cloudwatch, family, kind, unit: None, help, label: None }
}

const fn seconds(cloudwatch: &'static str, family: &'static str, kind: Kind, help: &'static str) -> Series {
    Series { cloudwatch, family, kind, unit: Some(BaseUnit::Seconds), help, label: None }
}

const fn outcome(cloudwatch: &'static str, outcome: &'static str) -> Series {
    Series {
        cloudwatch,
        family: "commands",
        kind: Kind::Counter,
        unit: None,
        help: "Records that ended, by outcome (done, expired, invalid, unroutable, failed, duplicate)",
        label: Some(("outcome", outcome)),
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};

/// Every measurement sauna takes (the README lists them); a sample of another name is not
/// exposed (and said once).
pub const SERIES: &[Series] = &[
    series("RecordsProcessed", "records_processed", C, "Records read from Kinesis"),
    Series {
        cloudwatch: "DataBytesProcessed",
        family: "data_processed",
        kind: C,
        unit: Some(BaseUnit::Bytes),
        help: "Bytes of record data read from Kinesis",
        label: None,
    },
    seconds("MillisBehindLatest", "behind_latest", G, "How far the last GetRecords of a shard was behind its tip"),
    seconds("GetRecords.Time", "get_records_duration", H, "GetRecords calls"),
    series("GetRecords.Throttled", "get_records_throttled", C, "GetRecords calls throttled"),
    series("GetRecords.Error", "get_records_errors", C, "GetRecords calls failed"),
    series("GetShardIterator.Error", "get_shard_iterator_errors", C, "GetShardIterator calls failed"),
    series("ExpiredIterator", "expired_iterators", C, "Shard iterators that expired"),
    outcome("CommandsDone", "done"),
    outcome("CommandsExpired", "expired"),
    outcome("CommandsInvalid", "invalid"),
    outcome("CommandsUnroutable", "unroutable"),
    outcome("CommandsFailed", "failed"),
    outcome("CommandsDuplicate", "duplicate"),
    series(
        "CommandsPossiblyDuplicated",
        "commands_possibly_duplicated",
        C,
        "Commands actioned again after their claimer vanished mid-attempt",
    ),
    series("CommandsInFlight", "commands_in_flight", G, "Commands of a shard at their responders now"),
    series(
        "RecordsPending",
        "records_pending",
        G,
        "Records of a shard read and without an outcome yet (bounded by retrieval.maxInFlightPerShard and retrieval.maxInFlightBytesPerShard)",
    ),
    seconds("ResponderLatency", "responder_latency", H, "From a command's dispatch to its outcome, retries included"),
    series("ResponderRetries", "responder_retries", C, "Attempts after the first"),
    series("CheckpointWrites", "checkpoint_writes", C, "Checkpoints written to the lease table"),
    seconds("CheckpointLatency", "checkpoint_latency", H, "Checkpoint writes"),
    series("CurrentLeases", "current_leases", G, "Leases this worker holds"),
    series("TakenLeases", "leases_taken", C, "Leases this worker took"),
    series("LostLeases", "leases_lost", C, "Leases this worker lost"),
    series("ExpiredLeases", "expired_leases", G, "Expired leases seen by the last take cycle"),
    series("NumWorkers", "workers", G, "Workers sharing the lease table, as the last take cycle saw them"),
    series("LeaseSpillover", "lease_spillover", G, "Leases beyond workers x maxLeasesForWorker"),
    series("Restarts", "restarts", C, "Actors of this observer restarted after a failure"),
];

/// The series of a CloudWatch name.
pub fn series_of(cloudwatch: &str) -> Option<&'static Series> {
    SERIES.iter().find(|s| s.cloudwatch == cloudwatch)
}

/// The labels of one series: `observer`, `operation`, then `shard_id` or `worker` as the
/// sample's scope says, then the series' own label.
pub type Labels = Vec<(&'static str, String)>;

pub fn labels(observer: &str, operation: Operation, scope: &Scope, worker: &str, series: &Series) -> Labels {
    let mut l = vec![("observer", observer.to_owned()), ("operation", operation.as_str().to_owned())];
    match scope {
        Scope::Shard(shard) => l.push(("shard_id", shard.to_string())),
        Scope::Worker => l.push(("worker", worker.to_owned())),
        Scope::Application => {}
    }
    if let Some((k, v)) = series.label {
        l.push((k, v.to_owned()));
    }
    l
}

/// A sample's value in the series' unit (durations in seconds). With Prometheus on, samples
/// are single values (see `MetricsHandle::millis_each`): a sample's sum is its value.
pub fn value(sample: &Sample) -> f64 {
    match sample.unit {
        Unit::Milliseconds => sample.stat.sum / 1000.0,
        Unit::Count | Unit::Bytes => sample.stat.sum,
    }
}

/// Seconds: Prometheus's default buckets, then up to two minutes (a responder's latency holds
/// its retries and their backoff).
const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

enum Metric {
    Counter(Family<Labels, Counter>),
    Gauge(Family<Labels, Gauge<f64, AtomicU64>>),
    Histogram(Family<Labels, Histogram, fn() -> Histogram>),
}

/// The registry of the process and its families, one per family name of [`SERIES`].
pub struct Exporter {
    registry: Registry,
    families: HashMap<&'static str, Metric>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").field("families", &self.families.len()).finish()
    }
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Exporter {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sauna");
        let mut families = HashMap::new();
        for s in SERIES {
            if families.contains_key(s.family) {
                continue;
            }
            let metric = match s.kind {
                Kind::Counter => Metric::Counter(Family::default()),
                Kind::Gauge => Metric::Gauge(Family::default()),
                Kind::Histogram => Metric::Histogram(Family::new_with_constructor(histogram as fn() -> Histogram)),
            };
            let unit = s.unit.map(|u| match u {
                BaseUnit::Seconds => RegistryUnit::Seconds,
                BaseUnit::Bytes => RegistryUnit::Bytes,
            });
            match (&metric, unit) {
                (Metric::Counter(m), Some(u)) => registry.register_with_unit(s.family, s.help, u, m.clone()),
                (Metric::Counter(m), None) => registry.register(s.family, s.help, m.clone()),
                (Metric::Gauge(m), Some(u)) => registry.register_with_unit(s.family, s.help, u, m.clone()),
                (Metric::Gauge(m), None) => registry.register(s.family, s.help, m.clone()),
                (Metric::Histogram(m), Some(u)) => registry.register_with_unit(s.family, s.help, u, m.clone()),
                (Metric::Histogram(m), None) => registry.register(s.family, s.help, m.clone()),
            }
            families.insert(s.family, metric);
        }
        Exporter { registry, families }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn encode_text(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The OpenMetrics text format (what Prometheus asks for first).
    pub fn encode_openmetrics(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Where observer `id`'s Metrics actors record (one per observer, shared by the actors of
    /// its successive cores, so counters go on across a core restart).
    pub fn observer(self: &Arc<Self>, id: &str) -> PromSink {
        PromSink { exporter: self.clone(), observer: Arc::from(id), state: Arc::default() }
    }
}

#[derive(Default)]
struct SinkState {
    /// The gauge series of each shard, removed when the shard's consumer is gone.
    shard_gauges: HashMap<Arc<str>, HashSet<(&'static str, Labels)>>,
    /// Sample names without a series, said once.
    unknown: HashSet<&'static str>,
}

/// One observer's side of the [`Exporter`].
#[derive(Clone)]
pub struct PromSink {
    exporter: Arc<Exporter>,
    observer: Arc<str>,
    state: Arc<Mutex<SinkState>>,
}

impl std::fmt::Debug for PromSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromSink").field("observer", &self.observer).finish()
    }
}

impl PromSink {
    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one sample (`worker`: this worker's identity, for worker-scoped samples).
    pub fn record(&self, sample: &Sample, worker: &str) {
        let Some(series) = series_of(sample.name) else {
            if self.state().unknown.insert(sample.name) {
                log::warn!("metrics: {} has no Prometheus series; it goes to CloudWatch only", sample.name);
            }
            return;
        };
        let Some(metric) = self.exporter.families.get(series.family) else { return };
        let labels = labels(&self.observer, sample.operation, &sample.scope, worker, series);
        let v = value(sample);
        match metric {
            Metric::Counter(f) => {
                f.get_or_create(&labels).inc_by(v.max(0.0).round() as u64);
            }
            Metric::Gauge(f) => {
                f.get_or_create(&labels).set(v);
                if let Scope::Shard(shard) = &sample.scope {
                    self.state().shard_gauges.entry(shard.clone()).or_default().insert((series.family, labels));
                }
            }
            Metric::Histogram(f) => f.get_or_create(&labels).observe(v),
        }
    }

    /// The shard's consumer is gone from this worker: its gauges go (a lag or an in-flight
    /// count of a shard read elsewhere would be stale forever). Its counters stay: they only
    /// ever grow, which is what a scraper's `rate()` expects.
    pub fn forget_shard(&self, shard: &str) {
        let Some(series) = self.state().shard_gauges.remove(shard) else { return };
        for (family, labels) in series {
            if let Some(Metric::Gauge(f)) = self.exporter.families.get(family) {
                f.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &'static str, operation: Operation, scope: Scope, unit: Unit, value: f64) -> Sample {
        Sample { name, operation, scope, unit, stat: crate::metrics::Stat::of(value), cloudwatch: true }
    }

    fn shard(id: &str) -> Scope {
        Scope::Shard(Arc::from(id))
    }

    #[test]
    fn every_series_has_one_kind_and_unit_per_family_and_a_conventional_name() {
        let mut seen: HashMap<&str, (Kind, Option<BaseUnit>)> = HashMap::new();
        for s in SERIES {
            let was = *seen.entry(s.family).or_insert((s.kind, s.unit));
            assert_eq!(was, (s.kind, s.unit), "family {} is declared alike everywhere", s.family);
            assert!(s.family.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{} is snake case", s.family);
            assert!(!s.family.ends_with("_total") && !s.family.ends_with("_seconds"), "the encoder adds suffixes");
            if s.kind == Kind::Histogram {
                assert_eq!(s.unit, Some(BaseUnit::Seconds), "durations are histograms in seconds");
            }
        }
        let mut names: Vec<_> = SERIES.iter().map(|s| s.cloudwatch).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERIES.len(), "one series per CloudWatch name");
    }

    #[test]
    fn labels_carry_the_observer_the_operation_and_the_scope() {
        let rp = series_of("RecordsProcessed").expect("series");
        let l = labels("obs", Operation::ProcessTask, &shard("shardId-1"), "w:1", rp);
        assert_eq!(
            l,
            vec![("observer", "obs".into()), ("operation", "ProcessTask".into()), ("shard_id", "shardId-1".into())]
        );
        let cl = series_of("CurrentLeases").expect("series");
        let l = labels("obs", Operation::RenewAllLeases, &Scope::Worker, "host:9f1c", cl);
        assert_eq!(l[2], ("worker", "host:9f1c".into()));
        let done = series_of("CommandsFailed").expect("series");
        let l = labels("obs", Operation::ProcessTask, &Scope::Application, "w", done);
        assert_eq!(
            l,
            vec![("observer", "obs".into()), ("operation", "ProcessTask".into()), ("outcome", "failed".into())]
        );
    }

    /// The lines of `text` that start with `prefix`.
    fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn samples_become_counters_gauges_and_histograms_in_base_units() {
        let exporter = Arc::new(Exporter::new());
        let sink = exporter.observer("obs");
        let s1 = shard("shardId-000000000001");
        sink.record(&sample("RecordsProcessed", Operation::ProcessTask, s1.clone(), Unit::Count, 30.0), "w");
        sink.record(&sample("RecordsProcessed", Operation::ProcessTask, s1.clone(), Unit::Count, 20.0), "w");
        sink.record(&sample("DataBytesProcessed", Operation::ProcessTask, s1.clone(), Unit::Bytes, 1234.0), "w");
        sink.record(&sample("MillisBehindLatest", Operation::ProcessTask, s1.clone(), Unit::Milliseconds, 5000.0), "w");
        sink.record(&sample("MillisBehindLatest", Operation::ProcessTask, s1.clone(), Unit::Milliseconds, 1500.0), "w");
        sink.record(
            &sample("ResponderLatency", Operation::Responder, Scope::Application, Unit::Milliseconds, 30.0),
            "w",
        );
        sink.record(&sample("CommandsDone", Operation::ProcessTask, s1.clone(), Unit::Count, 1.0), "w");
        sink.record(&sample("NumWorkers", Operation::TakeLeases, Scope::Worker, Unit::Count, 3.0), "host:1");
        let text = exporter.encode_text().expect("encodes");
        let shard_labels = r#"observer="obs",operation="ProcessTask",shard_id="shardId-000000000001""#;
        assert_eq!(
            lines(&text, "sauna_records_processed_total{"),
            [format!("sauna_records_processed_total{{{shard_labels}}} 50")]
        );
        assert_eq!(
            lines(&text, "sauna_data_processed_bytes_total{"),
            [format!("sauna_data_processed_bytes_total{{{shard_labels}}} 1234")]
        );
        assert_eq!(
            lines(&text, "sauna_behind_latest_seconds{"),
            [format!("sauna_behind_latest_seconds{{{shard_labels}}} 1.5")]
        );
        assert_eq!(
            lines(&text, "sauna_commands_total{"),
            [format!("sauna_commands_total{{{shard_labels},outcome=\"done\"}} 1")]
        );
        assert_eq!(
            lines(&text, "sauna_workers{"),
            [r#"sauna_workers{observer="obs",operation="TakeLeases",worker="host:1"} 3.0"#]
        );
        let latency = r#"observer="obs",operation="Responder""#;
        assert!(
            text.contains(&format!("sauna_responder_latency_seconds_bucket{{{latency},le=\"0.025\"}} 0\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("sauna_responder_latency_seconds_bucket{{{latency},le=\"0.05\"}} 1\n")),
            "{text}"
        );
        assert!(text.contains(&format!("sauna_responder_latency_seconds_sum{{{latency}}} 0.03\n")), "{text}");
        assert!(text.contains("# TYPE sauna_records_processed_total counter"), "{text}");
        assert!(text.contains("# TYPE sauna_behind_latest_seconds gauge"), "{text}");
        assert!(text.contains("# TYPE sauna_responder_latency_seconds histogram"), "{text}");
        let open = exporter.encode_openmetrics().expect("encodes");
        assert!(open.ends_with("# EOF\n") && open.contains("# UNIT sauna_behind_latest_seconds seconds"), "{open}");
    }

    #[test]
    fn a_forgotten_shard_loses_its_gauges_but_keeps_its_counters() {
        let exporter = Arc::new(Exporter::new());
        let sink = exporter.observer("obs");
        let (a, b) = (shard("shardId-a"), shard("shardId-b"));
        for s in [&a, &b] {
            sink.record(&sample("CommandsInFlight", Operation::ProcessTask, s.clone(), Unit::Count, 4.0), "w");
            sink.record(&sample("MillisBehindLatest", Operation::ProcessTask, s.clone(), Unit::Milliseconds, 0.0), "w");
            sink.record(&sample("RecordsProcessed", Operation::ProcessTask, s.clone(), Unit::Count, 7.0), "w");
        }
        sink.forget_shard("shardId-a");
        let text = exporter.encode_text().expect("encodes");
        assert_eq!(lines(&text, "sauna_commands_in_flight{").len(), 1, "{text}");
        assert!(lines(&text, "sauna_commands_in_flight{")[0].contains("shardId-b"));
        assert_eq!(lines(&text, "sauna_behind_latest_seconds{").len(), 1, "{text}");
        assert_eq!(lines(&text, "sauna_records_processed_total{").len(), 2, "counters stay: {text}");
        // A gauge set again after the forget is back (the shard came back to this worker).
        sink.record(&sample("CommandsInFlight", Operation::ProcessTask, a.clone(), Unit::Count, 1.0), "w");
        let text = exporter.encode_text().expect("encodes");
        assert_eq!(lines(&text, "sauna_commands_in_flight{").len(), 2, "{text}");
    }

    #[test]
    fn two_observers_share_the_registry_apart_by_their_label() {
        let exporter = Arc::new(Exporter::new());
        let (x, y) = (exporter.observer("x"), exporter.observer("y"));
        let s = shard("shardId-0");
        x.record(&sample("RecordsProcessed", Operation::ProcessTask, s.clone(), Unit::Count, 1.0), "w");
        y.record(&sample("RecordsProcessed", Operation::ProcessTask, s.clone(), Unit::Count, 2.0), "w");
        y.forget_shard("shardId-0");
        x.record(&sample("Unheard.Of", Operation::ProcessTask, s, Unit::Count, 2.0), "w");
        let text = exporter.encode_text().expect("encodes");
        let rp = lines(&text, "sauna_records_processed_total{");
        assert_eq!(rp.len(), 2, "{text}");
        assert!(rp.iter().any(|l| l.contains(r#"observer="x""#) && l.ends_with(" 1")));
        assert!(rp.iter().any(|l| l.contains(r#"observer="y""#) && l.ends_with(" 2")));
        assert!(!text.contains("Unheard"), "an unknown name is not exposed: {text}");
    }
}
