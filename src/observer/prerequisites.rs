//! What a core needs before its first consumer starts: the claim table (dedup on) and the
//! stream consumer (enhanced fan-out). Both are made ready in the background while the
//! LeaseManager already takes leases; leases acquired meanwhile wait in `waiting_for_core`. A
//! prerequisite that cannot be had fails the core, which the Supervisor restarts with backoff,
//! so that a missing IAM permission is a clear, repeated error and never a silent stall.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::Supervisor;
use super::core::{Core, StreamConsumerState};
use crate::claims::{ClaimStore, ClaimTable};
use crate::fan_out::{FanOutReader, FanOutSettings, ensure_stream_consumer};
use crate::shard_consumer::{KinesisReader, ShardReader};
use crate::supervision::ExitReason;

/// How long a new stream consumer may take to become ACTIVE (the service needs seconds).
const CONSUMER_ACTIVATION: Duration = Duration::from_secs(120);

/// How long a fan-out read waits for an event before answering with none.
const FAN_OUT_IDLE_WAIT: Duration = Duration::from_secs(1);

impl Core {
    pub fn ready_for_consumers(&self) -> bool {
        self.claims_ready && self.stream_consumer != StreamConsumerState::Registering
    }
}

impl Supervisor {
    /// Creates the claim table unless it exists.
    pub(super) fn prepare_claims(&mut self, table: Arc<ClaimTable>, generation: u64, ctx: &mut Context<Self>) {
        let fut = async move { (table.ensure_exists().await, table) };
        ctx.spawn(fut.into_actor(self).map(move |(result, table), act, ctx| {
            if act.core.as_ref().map(|c| c.generation) != Some(generation) {
                return;
            }
            match result {
                Ok(created) => {
                    if created {
                        log::info!("claim table {} created (on-demand, hash key commandId)", table.name());
                    }
                    if let Some(core) = act.core.as_mut() {
                        core.claims_ready = true;
                    }
                    act.start_waiting_consumers(ctx);
                }
                Err(e) => {
                    let why = format!("the claim table {} is not usable: {e}", table.name());
                    act.core_exited("Claims", generation, ExitReason::Failed(why), ctx);
                }
            }
        }));
    }

    /// Registers the observer's stream consumer unless it exists, and waits until it is ACTIVE.
    pub(super) fn prepare_stream_consumer(&mut self, generation: u64, ctx: &mut Context<Self>) {
        let spec = self.spec.clone();
        let name = spec.runtime.retrieval.consumer_name_of(&spec.observer.id);
        let fut = async move {
            ensure_stream_consumer(&spec.clients.kinesis, &spec.observer.stream_name, &name, CONSUMER_ACTIVATION).await
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            if act.core.as_ref().map(|c| c.generation) != Some(generation) {
                return;
            }
            match result {
                Ok(consumer) => {
                    log::info!(
                        "observer {}: reading by enhanced fan-out as stream consumer {} ({})",
                        act.id(),
                        consumer.name,
                        consumer.arn
                    );
                    if let Some(core) = act.core.as_mut() {
                        core.stream_consumer = StreamConsumerState::Active(consumer.arn);
                    }
                    act.start_waiting_consumers(ctx);
                }
                Err(e) => act.core_exited("StreamConsumer", generation, ExitReason::Failed(e.to_string()), ctx),
            }
        }));
    }

    fn start_waiting_consumers(&mut self, ctx: &mut Context<Self>) {
        if self.core.as_ref().is_some_and(Core::ready_for_consumers) {
            for lease in std::mem::take(&mut self.waiting_for_core) {
                self.lease_acquired(lease, ctx);
            }
        }
    }

    /// The reader of one consumer: its own subscription in fan-out, GetRecords otherwise.
    pub(super) fn shard_reader(&self, consumer: &StreamConsumerState) -> Arc<dyn ShardReader> {
        let (client, stream) = (self.spec.clients.kinesis.clone(), self.spec.observer.stream_name.clone());
        match consumer {
            StreamConsumerState::Active(arn) => {
                let r = &self.spec.runtime;
                let settings = FanOutSettings {
                    consumer_arn: arn.clone(),
                    max_subscription: r.retrieval.max_subscription,
                    request_timeout: r.retry.request_timeout.max(Duration::from_secs(5)),
                    idle_wait: FAN_OUT_IDLE_WAIT,
                };
                Arc::new(FanOutReader::new(client, stream, settings))
            }
            _ => Arc::new(KinesisReader::new(client, stream)),
        }
    }
}
