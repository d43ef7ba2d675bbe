//! The graceful stop of an observer (SIGTERM, SIGINT): no more reads; the commands in flight
//! finish (up to `shutdownTimeoutMillis`); the final checkpoints are written; the leases are
//! released so other workers continue at once; the last metrics and outcome rows go out.

use std::time::Duration;

use actix::prelude::*;

use super::Supervisor;
use crate::checkpointer::FlushAll;
use crate::lease_manager::ReleaseAll;
use crate::metrics::Flush;
use crate::outcome_log::FlushRows;
use crate::shard_consumer::{Drain, Freeze};

/// Stop gracefully: drain the consumers, checkpoint, release the leases, flush metrics.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// How long each step of a graceful path waits, and why no longer.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepTimeouts {
    /// Commands in flight: `shutdownTimeoutMillis`.
    pub drain: Duration,
    /// Final checkpoints and releases: the failover time, after which other workers may take
    /// the leases anyway.
    pub final_writes: Duration,
    /// The last metrics and outcome rows: one request's timeout (`retry.requestTimeoutMillis`).
    pub last_reports: Duration,
}

impl Supervisor {
    pub(super) fn step_timeouts(&self) -> StepTimeouts {
        let r = &self.spec.runtime;
        StepTimeouts {
            drain: r.shutdown_timeout,
            final_writes: r.leases.failover_time,
            last_reports: r.retry.request_timeout,
        }
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        let Some(core) = &self.core else {
            return Box::pin(actix::fut::ready(()));
        };
        let id = self.id().to_owned();
        let t = self.step_timeouts();
        let consumers_addrs: Vec<_> = self.consumers.values().map(|s| s.addr.clone()).collect();
        let drains: Vec<_> = consumers_addrs.iter().map(|a| a.send(Drain)).collect();
        let consumers = self.consumers.len();
        let checkpointer = core.checkpointer.clone();
        let lease_manager = core.lease_manager.clone();
        let metrics = core.metrics.clone();
        let outcome_log = core.outcome_log.clone();
        log::info!("observer {id}: shutting down: finishing the commands in flight on {consumers} shard(s)");
        let fut = async move {
            // 1. No more reads; in-flight commands finish (bounded by shutdownTimeoutMillis).
            if tokio::time::timeout(t.drain, futures::future::join_all(drains)).await.is_err() {
                log::warn!(
                    "observer {id}: commands still in flight after {} ms; checkpointing what is done (the rest will be read again by the next owner)",
                    t.drain.as_millis()
                );
            }
            // Nothing more is dispatched or retried: the checkpoints below cover all that will
            // have been actioned here.
            futures::future::join_all(consumers_addrs.iter().map(|a| a.send(Freeze))).await;
            // 2. Final checkpoints, 3. leases released so others take them at once.
            let _ = tokio::time::timeout(t.final_writes, checkpointer.send(FlushAll)).await;
            let _ = tokio::time::timeout(t.final_writes, lease_manager.send(ReleaseAll)).await;
            // 4. Last metrics and outcome rows.
            let _ = tokio::time::timeout(t.last_reports, metrics.send(Flush)).await;
            if let Some(log) = outcome_log {
                let _ = tokio::time::timeout(t.last_reports, log.send(FlushRows)).await;
            }
            log::info!("observer {id}: stopped: checkpoints written, leases released");
        };
        Box::pin(fut.into_actor(self).map(|_, act, ctx| {
            act.stop_core();
            ctx.stop();
        }))
    }
}
