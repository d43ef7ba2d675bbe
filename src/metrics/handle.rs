//! `MetricsHandle`: what every actor holds to send samples. Sending never waits and is no
//! message of its own: the samples go into a buffer the handle's clones share, and the Metrics
//! actor takes them in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::{Operation, Sample, Scope, Stat, Unit};
use crate::config::runtime::MetricsLevel;

/// A cheap handle every actor holds to send samples. Sending never waits and is no message of
/// its own: samples are appended to a buffer all clones share, which the Metrics actor takes
/// every [`TAKE_EVERY`], and sooner when it fills to an eighth (the first sample wakes it too,
/// so that it learns of the buffer). A command costs several samples and no wake of the Metrics
/// actor's thread. When the buffer holds `capacity` samples the sample is dropped and counted.
#[derive(Clone)]
pub struct MetricsHandle {
    to: Option<Arc<SampleBuffer>>,
    level: MetricsLevel,
    /// Prometheus is on: every sample goes to the Metrics actor at full detail (it applies the
    /// level to CloudWatch's share), and so do the Prometheus-only gauges.
    prometheus: bool,
    dropped: Arc<AtomicU64>,
}

/// Samples on their way to the Metrics actor, and whether it has been woken for them.
pub struct SampleBuffer {
    wake: Recipient<Samples>,
    capacity: usize,
    state: Mutex<Buffered>,
}

#[derive(Default)]
struct Buffered {
    samples: Vec<Sample>,
    /// A [`Samples`] message is on its way: the next samples join this batch.
    woken: bool,
    /// The Metrics actor knows this buffer (it takes from it on its own every [`TAKE_EVERY`]).
    known: bool,
}

/// How often the Metrics actor takes the samples of the buffers it knows: how late a sample
/// can reach Prometheus's page and CloudWatch's aggregation.
pub const TAKE_EVERY: Duration = Duration::from_millis(250);

impl SampleBuffer {
    fn state(&self) -> std::sync::MutexGuard<'_, Buffered> {
        // A panic while holding this lock leaves only samples behind: keep using them.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Everything buffered so far (the Metrics actor's side).
    pub(super) fn take(&self) -> Vec<Sample> {
        let mut state = self.state();
        state.woken = false;
        state.known = true;
        std::mem::take(&mut state.samples)
    }
}

/// Wakes the Metrics actor for the samples buffered since the last wake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Samples(pub(super) Arc<SampleBuffer>);

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").field("level", &self.level).finish()
    }
}

impl MetricsHandle {
    /// A handle that records nothing (metrics disabled, unit tests).
    pub fn disabled() -> Self {
        MetricsHandle { to: None, level: MetricsLevel::None, prometheus: false, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// A handle sending to `to` (the Metrics actor), holding at most `capacity` samples that
    /// it has not taken yet.
    pub fn new(to: Recipient<Samples>, level: MetricsLevel, capacity: usize) -> Self {
        let buffer = SampleBuffer { wake: to, capacity: capacity.max(1), state: Mutex::new(Buffered::default()) };
        MetricsHandle { to: Some(Arc::new(buffer)), level, prometheus: false, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// With `prometheus`, samples reach the Metrics actor whatever CloudWatch's level.
    pub fn exporting(mut self, prometheus: bool) -> Self {
        self.prometheus = prometheus;
        self
    }

    pub fn record(&self, name: &'static str, operation: Operation, scope: Scope, unit: Unit, value: f64) {
        let level = if self.prometheus { MetricsLevel::Detailed } else { self.level };
        let Some(scope) = level.scope(scope) else { return };
        self.send(Sample { name, operation, scope, unit, stat: Stat::of(value), cloudwatch: true });
    }

    /// A level for Prometheus only (nothing when Prometheus is off).
    pub fn gauge(&self, name: &'static str, operation: Operation, scope: Scope, value: f64) {
        if self.prometheus {
            self.send(Sample { name, operation, scope, unit: Unit::Count, stat: Stat::of(value), cloudwatch: false });
        }
    }

    fn send(&self, sample: Sample) {
        self.send_all(std::iter::once(sample));
    }

    /// Buffers samples under one lock.
    fn send_all(&self, samples: impl IntoIterator<Item = Sample>) {
        let Some(buffer) = &self.to else { return };
        let wake = {
            let mut state = buffer.state();
            let mut dropped = 0;
            for sample in samples {
                if state.samples.len() < buffer.capacity {
                    state.samples.push(sample);
                } else {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            let due = !state.known || state.samples.len() >= buffer.capacity.div_ceil(8);
            due && !std::mem::replace(&mut state.woken, true)
        };
        if wake && buffer.wake.try_send(Samples(buffer.clone())).is_err() {
            // The actor's mailbox is full (or it is restarting): the next sample wakes it.
            buffer.state().woken = false;
        }
    }

    pub fn count(&self, name: &'static str, operation: Operation, scope: Scope, n: u64) {
        self.record(name, operation, scope, Unit::Count, n as f64);
    }

    pub fn millis(&self, name: &'static str, operation: Operation, scope: Scope, d: Duration) {
        self.record(name, operation, scope, Unit::Milliseconds, d.as_secs_f64() * 1000.0);
    }

    /// Durations measured together: for CloudWatch alone, one sample of their aggregate (what
    /// CloudWatch is sent of a series is its statistic set anyway); with Prometheus on, one
    /// sample of each, buffered together (each is an observation of a histogram).
    pub fn millis_each(&self, name: &'static str, operation: Operation, scope: Scope, ds: &[Duration]) {
        let level = if self.prometheus { MetricsLevel::Detailed } else { self.level };
        let Some(scope) = level.scope(scope) else { return };
        let millis = ds.iter().map(|d| d.as_secs_f64() * 1000.0);
        let sample =
            |stat| Sample { name, operation, scope: scope.clone(), unit: Unit::Milliseconds, stat, cloudwatch: true };
        if self.prometheus {
            self.send_all(millis.map(|ms| sample(Stat::of(ms))));
        } else if let Some(stat) = millis.map(Stat::of).reduce(|mut all, one| {
            all.merge(&one);
            all
        }) {
            self.send(sample(stat));
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl MetricsLevel {
    /// The scope a sample keeps at this level (`None`: not sent to CloudWatch).
    pub(super) fn scope(self, scope: Scope) -> Option<Scope> {
        match (self, scope) {
            (MetricsLevel::None, _) => None,
            // SUMMARY drops the per-shard dimension.
            (MetricsLevel::Summary, Scope::Shard(_)) => Some(Scope::Application),
            (_, s) => Some(s),
        }
    }
}
