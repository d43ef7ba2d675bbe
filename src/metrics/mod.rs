//! `Metrics`: receives samples from every actor without blocking them, aggregates them into
//! statistic sets, and flushes them to CloudWatch in batches (namespace = the observer id; the
//! KCL's metric and dimension names). A CloudWatch outage only logs: samples of a failed flush
//! are dropped, never queued without bound, and no sender ever waits.
//!
//! With `http.listen` set, every sample also goes to the process's Prometheus registry
//! ([`prometheus`]), whatever CloudWatch's settings: `metrics.enabled` and `metrics.level` then
//! shape only what this actor sends to CloudWatch, as they did before.

mod handle;
pub mod prometheus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};

use crate::config::runtime::MetricsSettings;
use crate::observe::{Observable, answers_observe};
use crate::supervision::{ExitGuard, stops_on_request};
pub use handle::{MetricsHandle, SampleBuffer, Samples, TAKE_EVERY};
pub use prometheus::{Exporter, PromSink};

/// What a sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Count,
    Milliseconds,
    Bytes,
}

impl Unit {
    fn cloudwatch(self) -> StandardUnit {
        match self {
            Unit::Count => StandardUnit::Count,
            Unit::Milliseconds => StandardUnit::Milliseconds,
            Unit::Bytes => StandardUnit::Bytes,
        }
    }
}

/// The dimensions of a datum: the KCL's `Operation`, plus `ShardId` for per-shard metrics or
/// `WorkerIdentifier` for per-worker ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Shard(Arc<str>),
    Worker,
    /// Operation only.
    Application,
}

/// The KCL's `Operation` dimension: which part of the worker measured a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Reading and processing a shard (the KCL's `ProcessTask`).
    ProcessTask,
    RenewAllLeases,
    TakeLeases,
    Checkpointer,
    Responder,
    Supervisor,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ProcessTask => "ProcessTask",
            Operation::RenewAllLeases => "RenewAllLeases",
            Operation::TakeLeases => "TakeLeases",
            Operation::Checkpointer => "Checkpointer",
            Operation::Responder => "Responder",
            Operation::Supervisor => "Supervisor",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    pub operation: Operation,
    pub scope: Scope,
    pub unit: Unit,
    /// One value (`Stat::of`), or the aggregate of many taken together (CloudWatch's statistic
    /// set of a series: see [`MetricsHandle::millis_each`]).
    pub stat: Stat,
    /// `false`: a Prometheus gauge only (a level CloudWatch has no metric for, so no custom
    /// metric is added to anyone's CloudWatch bill).
    pub cloudwatch: bool,
}

/// The aggregate of one series between two flushes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(v: f64) -> Self {
        Stat { count: 1.0, sum: v, min: v, max: v }
    }

    /// The aggregate of this and `other`.
    pub fn merge(&mut self, other: &Stat) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

type SeriesKey = (&'static str, Operation, Scope, Unit);

/// Totals since start, for tests and `Observe`.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// (name, operation, shard or "") → sum of all samples.
    pub totals: BTreeMap<(String, String, String), f64>,
    /// (name, operation) → the statistic set of the series (all its scopes) waiting for the
    /// next flush to CloudWatch.
    pub pending: BTreeMap<(String, String), Stat>,
    pub flushes: u64,
    pub failed_flushes: u64,
    pub datums_sent: u64,
    pub mailbox_capacity: usize,
}

impl MetricsSnapshot {
    /// Sum of a metric over every shard and operation.
    pub fn total(&self, name: &str) -> f64 {
        self.totals.iter().filter(|((n, _, _), _)| n == name).map(|(_, v)| v).sum()
    }
}

/// Sends what is buffered now (shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Flush;

/// The consumer of this shard is gone from this worker: its Prometheus gauges go.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ForgetShard(pub Arc<str>);

pub struct Metrics {
    namespace: String,
    worker_id: String,
    client: aws_sdk_cloudwatch::Client,
    settings: MetricsSettings,
    mailbox: usize,
    pending: BTreeMap<SeriesKey, Stat>,
    /// (name, operation, shard) → sum of all samples.
    totals: BTreeMap<(&'static str, Operation, Option<Arc<str>>), f64>,
    flushes: u64,
    failed_flushes: u64,
    datums_sent: u64,
    flush_in_flight: bool,
    last_failure_log: Option<Instant>,
    prometheus: Option<PromSink>,
    /// The buffers samples came from, taken every [`TAKE_EVERY`].
    buffers: Vec<Arc<SampleBuffer>>,
    _exit: ExitGuard,
}

/// PutMetricData takes up to 1000 datums; the KCL sends 200 at a time, which keeps each request
/// small and a failure cheap.
const BATCH: usize = 200;

impl Metrics {
    pub fn new(
        namespace: String,
        worker_id: String,
        client: aws_sdk_cloudwatch::Client,
        settings: MetricsSettings,
        mailbox: usize,
        prometheus: Option<PromSink>,
        exit: ExitGuard,
    ) -> Self {
        Metrics {
            namespace,
            worker_id,
            client,
            settings,
            mailbox,
            pending: BTreeMap::new(),
            totals: BTreeMap::new(),
            flushes: 0,
            failed_flushes: 0,
            datums_sent: 0,
            flush_in_flight: false,
            last_failure_log: None,
            prometheus,
            buffers: vec![],
            _exit: exit,
        }
    }

    fn datums(&mut self) -> Vec<MetricDatum> {
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|((name, operation, scope, unit), stat)| {
                let mut dims = vec![Dimension::builder().name("Operation").value(operation.as_str()).build()];
                match scope {
                    Scope::Shard(shard) => dims.push(Dimension::builder().name("ShardId").value(&*shard).build()),
                    Scope::Worker => {
                        dims.push(Dimension::builder().name("WorkerIdentifier").value(&self.worker_id).build())
                    }
                    Scope::Application => {}
                }
                MetricDatum::builder()
                    .metric_name(name)
                    .set_dimensions(Some(dims))
                    .unit(unit.cloudwatch())
                    .timestamp(now)
                    .statistic_values(
                        StatisticSet::builder()
                            .sample_count(stat.count)
                            .sum(stat.sum)
                            .minimum(stat.min)
                            .maximum(stat.max)
                            .build(),
                    )
                    .build()
            })
            .collect()
    }

    /// Sends what has been aggregated since the last flush; a no-op while a flush is out (a
    /// slow CloudWatch: aggregation goes on in the meantime).
    fn flush(&mut self) -> ResponseActFuture<Self, ()> {
        if self.pending.is_empty() || self.flush_in_flight {
            return Box::pin(actix::fut::ready(()));
        }
        let datums = self.datums();
        let client = self.client.clone();
        let namespace = self.namespace.clone();
        let timeout = self.settings.flush_interval.max(Duration::from_secs(5));
        self.flush_in_flight = true;
        let fut = async move {
            let mut sent = 0u64;
            for chunk in datums.chunks(BATCH) {
                let call = client.put_metric_data().namespace(&namespace).set_metric_data(Some(chunk.to_vec())).send();
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(_)) => sent += chunk.len() as u64,
                    Ok(Err(e)) => {
                        return Err((sent, format!("{}", aws_sdk_cloudwatch::error::DisplayErrorContext(e))));
                    }
                    Err(_) => return Err((sent, format!("timed out after {timeout:?}"))),
                }
            }
            Ok(sent)
        };
        Box::pin(fut.into_actor(self).map(|result, act, _| {
            act.flush_in_flight = false;
            act.flushes += 1;
            match result {
                Ok(sent) => act.datums_sent += sent,
                Err((sent, e)) => {
                    act.datums_sent += sent;
                    act.failed_flushes += 1;
                    let quiet = act.last_failure_log.is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                    if !quiet {
                        log::warn!(
                            "metrics: PutMetricData to namespace {} failed ({e}); these samples are dropped and processing goes on",
                            act.namespace
                        );
                        act.last_failure_log = Some(Instant::now());
                    }
                }
            }
        }))
    }
}

impl Actor for Metrics {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
        // Lined up with the process's other timers (see `crate::timers`).
        crate::timers::run_aligned(ctx, TAKE_EVERY, |act, _| act.take_buffered());
        ctx.run_interval(self.settings.flush_interval, |act, ctx| {
            act.take_buffered();
            let flush = act.flush();
            ctx.spawn(flush);
        });
    }
}

impl Metrics {
    /// Takes what every known buffer holds.
    fn take_buffered(&mut self) {
        for i in 0..self.buffers.len() {
            for sample in self.buffers[i].take() {
                self.take_sample(sample);
            }
        }
    }

    fn take_sample(&mut self, s: Sample) {
        if let Some(p) = &self.prometheus {
            p.record(&s, &self.worker_id);
        }
        if !s.cloudwatch {
            return;
        }
        // The handle applies the level already unless Prometheus is on; either way CloudWatch
        // gets what the level says.
        let Some(scope) = self.settings.level.scope(s.scope) else { return };
        let shard = match &scope {
            Scope::Shard(id) => Some(id.clone()),
            _ => None,
        };
        *self.totals.entry((s.name, s.operation, shard)).or_default() += s.stat.sum;
        if !self.settings.enabled {
            return;
        }
        self.pending.entry((s.name, s.operation, scope, s.unit)).and_modify(|st| st.merge(&s.stat)).or_insert(s.stat);
    }
}

impl Handler<Samples> for Metrics {
    type Result = ();

    fn handle(&mut self, Samples(buffer): Samples, _: &mut Self::Context) {
        for sample in buffer.take() {
            self.take_sample(sample);
        }
        if !self.buffers.iter().any(|b| Arc::ptr_eq(b, &buffer)) {
            self.buffers.push(buffer);
        }
    }
}

impl Handler<ForgetShard> for Metrics {
    type Result = ();

    fn handle(&mut self, msg: ForgetShard, _: &mut Self::Context) {
        // The shard's samples sent before it ended come first (or they would bring it back).
        self.take_buffered();
        if let Some(p) = &self.prometheus {
            p.forget_shard(&msg.0);
        }
    }
}

impl Handler<Flush> for Metrics {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        self.take_buffered();
        self.flush()
    }
}

impl Observable for Metrics {
    type Snapshot = MetricsSnapshot;

    fn snapshot(&self, ctx: &mut Self::Context) -> MetricsSnapshot {
        MetricsSnapshot {
            totals: self
                .totals
                .iter()
                .map(|((name, operation, shard), v)| {
                    let shard = shard.as_deref().unwrap_or_default().to_owned();
                    (((*name).to_owned(), operation.as_str().to_owned(), shard), *v)
                })
                .collect(),
            pending: self.pending.iter().fold(BTreeMap::new(), |mut all, ((name, operation, _, _), stat)| {
                let key = ((*name).to_owned(), operation.as_str().to_owned());
                all.entry(key).and_modify(|s: &mut Stat| s.merge(stat)).or_insert(*stat);
                all
            }),
            flushes: self.flushes,
            failed_flushes: self.failed_flushes,
            datums_sent: self.datums_sent,
            mailbox_capacity: ctx.parts().capacity(),
        }
    }
}

answers_observe!(Metrics);
stops_on_request!(Metrics);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime::MetricsLevel;
    use crate::supervision::ChildId;

    /// A Metrics actor whose CloudWatch is never called (publishing disabled, or a flush that
    /// fails without a network: only logged).
    fn start(settings: MetricsSettings, prometheus: Option<PromSink>) -> Addr<Metrics> {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .build();
        let exit = ExitGuard::detached(ChildId::Core { kind: "Metrics", generation: 1 });
        let client = aws_sdk_cloudwatch::Client::from_conf(conf);
        Metrics::new("obs".into(), "w:1".into(), client, settings, 64, prometheus, exit).start()
    }

    fn settings(enabled: bool, level: MetricsLevel) -> MetricsSettings {
        MetricsSettings { enabled, flush_interval: Duration::from_secs(3600), level }
    }

    async fn snapshot(m: &Addr<Metrics>) -> MetricsSnapshot {
        crate::observe::observe(m).await.expect("snapshot")
    }

    #[actix_rt::test]
    async fn prometheus_gets_every_sample_at_full_detail_whatever_cloudwatch_is_set_to() {
        for (enabled, level) in [(false, MetricsLevel::None), (true, MetricsLevel::Summary)] {
            let exporter = Arc::new(Exporter::new());
            let m = start(settings(enabled, level), Some(exporter.observer("obs")));
            let handle = MetricsHandle::new(m.clone().recipient(), level, 64).exporting(true);
            let shard = Scope::Shard(Arc::from("shardId-7"));
            handle.count("RecordsProcessed", Operation::ProcessTask, shard.clone(), 5);
            handle.gauge("CommandsInFlight", Operation::ProcessTask, shard, 2.0);
            let snap = snapshot(&m).await;
            let text = exporter.encode_text().expect("encodes");
            let labels = r#"{observer="obs",operation="ProcessTask",shard_id="shardId-7"}"#;
            assert!(text.contains(&format!("sauna_records_processed_total{labels} 5\n")), "{level:?}: {text}");
            assert!(text.contains(&format!("sauna_commands_in_flight{labels} 2.0\n")), "{level:?}: {text}");
            // CloudWatch's side is what the level says, and never holds the Prometheus-only gauge.
            let totals: Vec<_> = snap.totals.keys().cloned().collect();
            match level {
                MetricsLevel::None => assert!(totals.is_empty(), "{totals:?}"),
                _ => assert_eq!(totals, [("RecordsProcessed".into(), "ProcessTask".into(), String::new())]),
            }
        }
    }

    /// Latencies measured together reach CloudWatch as the statistic set they make, whether
    /// they came as one sample of their aggregate (Prometheus off) or one sample each (on).
    #[actix_rt::test]
    async fn latencies_measured_together_are_one_statistic_set() {
        let took = [10, 30, 20].map(Duration::from_millis);
        for prometheus in [false, true] {
            let exporter = Arc::new(Exporter::new());
            let m = start(settings(true, MetricsLevel::Detailed), prometheus.then(|| exporter.observer("obs")));
            let handle = MetricsHandle::new(m.clone().recipient(), MetricsLevel::Detailed, 64).exporting(prometheus);
            handle.millis_each("ResponderLatency", Operation::Responder, Scope::Application, &took);
            handle.millis_each("ResponderLatency", Operation::Responder, Scope::Application, &[]);
            let snap = snapshot(&m).await;
            let stat = snap.pending.get(&("ResponderLatency".to_owned(), "Responder".to_owned()));
            let expected = Stat { count: 3.0, sum: 60.0, min: 10.0, max: 30.0 };
            assert_eq!(stat, Some(&expected), "prometheus {prometheus}");
            assert_eq!(snap.total("ResponderLatency"), 60.0);
        }
    }

    #[actix_rt::test]
    async fn without_prometheus_the_handle_applies_the_level_and_sends_no_gauge() {
        let m = start(settings(true, MetricsLevel::Detailed), None);
        let handle = MetricsHandle::new(m.clone().recipient(), MetricsLevel::Detailed, 64);
        let shard = Scope::Shard(Arc::from("shardId-7"));
        handle.count("RecordsProcessed", Operation::ProcessTask, shard.clone(), 5);
        handle.gauge("CommandsInFlight", Operation::ProcessTask, shard.clone(), 2.0);
        m.do_send(ForgetShard(Arc::from("shardId-7")));
        let totals = snapshot(&m).await.totals;
        assert_eq!(totals.len(), 1, "{totals:?}");
        assert_eq!(totals.get(&("RecordsProcessed".into(), "ProcessTask".into(), "shardId-7".into())), Some(&5.0));
        let none = MetricsHandle::new(m.clone().recipient(), MetricsLevel::None, 64);
        none.count("RecordsProcessed", Operation::ProcessTask, shard, 5);
        assert_eq!(snapshot(&m).await.total("RecordsProcessed"), 5.0, "NONE sends nothing");
    }

    #[actix_rt::test]
    async fn samples_that_wake_nobody_are_taken_on_the_tick() {
        let m = start(settings(true, MetricsLevel::Detailed), None);
        let handle = MetricsHandle::new(m.clone().recipient(), MetricsLevel::Detailed, 64);
        handle.count("RecordsProcessed", Operation::ProcessTask, Scope::Application, 1);
        assert_eq!(snapshot(&m).await.total("RecordsProcessed"), 1.0, "the first sample wakes the actor");
        // Below an eighth of the buffer: no wake, the tick takes them.
        handle.count("RecordsProcessed", Operation::ProcessTask, Scope::Application, 2);
        assert_eq!(snapshot(&m).await.total("RecordsProcessed"), 1.0, "not woken for one sample");
        tokio::time::sleep(TAKE_EVERY * 2).await;
        assert_eq!(snapshot(&m).await.total("RecordsProcessed"), 3.0);
    }
}
