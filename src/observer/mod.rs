//! The observer: one [`Supervisor`] per enabled Kinesis observer config. It wires the
//! observer's actors together, starts a ShardConsumer for every lease the LeaseManager takes and
//! stops it when the lease goes, and restarts whatever fails:
//! - a failed or panicked ShardConsumer restarts alone, with exponential backoff, from the
//!   latest watermark of its shard (nothing is skipped; at most the records in flight when it
//!   failed are actioned again);
//! - a responder's actor that panicked restarts behind the same route (its commands are sent
//!   again);
//! - a failed LeaseManager, Checkpointer or Metrics restarts the observer's core (their state
//!   is about leases, which the new LeaseManager takes back at once).
//!
//! One failing shard or responder never stops the others, and one observer never affects
//! another. The files: `core` (the actors of one generation), `consumers` (one per lease,
//! handoffs), `shutdown` (the graceful stop), `health` (what the probes of `http.listen` ask).

mod consumers;
mod core;
mod health;
mod prerequisites;
mod shutdown;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use actix_rt::ArbiterHandle;

use crate::aws::AwsClients;
use crate::checkpointer::CheckpointerSnapshot;
use crate::command::SchemaRegistry;
use crate::config::runtime::RuntimeConfig;
use crate::config::{InitialPosition, KinesisObserverConfig};
use crate::lease_manager::{LeaseChange, LeaseEvent, LeaseManagerSnapshot};
use crate::metrics::{MetricsSnapshot, Operation, PromSink, Scope};
use crate::model::Backoff;
use crate::observe::{Observe, observe};
use crate::responders::{Responder, ResponderSnapshot};
use crate::shard_consumer::{ClaimTimings, ConsumerSettings, InjectFailure, ShardConsumer, ShardConsumerSnapshot};
use crate::supervision::{ChildExited, ChildId, ExitReason, LiveChildren};
use consumers::ConsumerSlot;
use core::Core;
pub use health::{Probe, ProbeAnswer};
pub use shutdown::Shutdown;

/// Everything a Supervisor is built from.
pub struct SupervisorSpec {
    pub observer: KinesisObserverConfig,
    pub runtime: RuntimeConfig,
    pub worker_id: String,
    pub clients: AwsClients,
    pub responders: Vec<Arc<dyn Responder>>,
    pub command_schemas: Arc<SchemaRegistry>,
    /// Arbiters the ShardConsumers are spread over (one per core).
    pub arbiters: Vec<ArbiterHandle>,
    /// The arbiter the responders run on: none of them can hold up a LeaseManager or a
    /// consumer, whatever it does.
    pub responder_arbiter: ArbiterHandle,
    /// The outcome log's DynamoDB client (with the logger's own region and credentials) and
    /// table, when a DynamoDB logger is enabled.
    pub outcome_log: Option<(aws_sdk_dynamodb::Client, String)>,
    /// This observer's side of the Prometheus registry (`http.listen` set).
    pub prometheus: Option<PromSink>,
}

/// Fails the consumer of a shard on purpose (tests of supervision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct InjectConsumerFailure {
    pub shard: String,
    pub panic: bool,
}

/// Fails the observer's core on purpose, as a failing Checkpointer would (tests of
/// supervision).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct InjectCoreFailure;

/// The observable state of one observer and its actors.
#[derive(Debug, Clone, Default)]
pub struct ObserverSnapshot {
    pub id: String,
    pub worker_id: String,
    pub lease_manager: Option<LeaseManagerSnapshot>,
    pub checkpointer: Option<CheckpointerSnapshot>,
    pub metrics: Option<MetricsSnapshot>,
    pub consumers: Vec<ShardConsumerSnapshot>,
    pub responders: Vec<ResponderSnapshot>,
    /// Restarts by child ("ShardConsumer", "Responder", "LeaseManager", …).
    pub restarts: BTreeMap<String, u32>,
    /// Children alive by kind (an actor counts until it is dropped): after a restart, only
    /// the new ones.
    pub live_children: BTreeMap<String, usize>,
    pub supervisor_mailbox_capacity: usize,
}

pub struct Supervisor {
    spec: Arc<SupervisorSpec>,
    consumer_settings: Arc<ConsumerSettings>,
    core: Option<Core>,
    generation: u64,
    core_backoff: Backoff,
    consumers: HashMap<Arc<str>, ConsumerSlot>,
    next_arbiter: usize,
    /// Numbers every consumer and responder actor started, so a report of an earlier one is
    /// told from the running one's.
    next_incarnation: u64,
    restarts: BTreeMap<String, u32>,
    live: LiveChildren,
    /// Leases acquired before the core's prerequisites (the claim table, the stream consumer)
    /// were ready: their consumers start once they are.
    waiting_for_core: Vec<crate::lease_manager::AcquiredLease>,
    shutting_down: bool,
    /// The core generation whose LeaseManager ran its first take cycle (readiness).
    ready_generation: Option<u64>,
    /// Why the core last failed (what `/readyz` says while it restarts).
    core_failure: Option<String>,
}

impl Supervisor {
    pub fn new(spec: SupervisorSpec) -> Self {
        let r = &spec.runtime;
        let consumer_settings = Arc::new(ConsumerSettings {
            stream_name: spec.observer.stream_name.clone(),
            max_records: spec.observer.max_records,
            idle_time: r.retrieval.idle_time_between_reads,
            max_idle_time: r.retrieval.max_idle_time_between_reads,
            max_in_flight: r.retrieval.max_in_flight_per_shard,
            max_in_flight_bytes: r.retrieval.max_in_flight_bytes_per_shard,
            ordering: r.retrieval.ordering,
            at_timestamp: match spec.observer.initial_position {
                InitialPosition::AtTimestamp(t) => Some(t),
                _ => None,
            },
            parent_poll_interval: r.leases.parent_shard_poll_interval,
            lease_recheck_interval: (r.leases.failover_time / 20).max(std::time::Duration::from_millis(10)),
            checkpoint_interval: r.checkpoint_interval,
            retry: r.retry.clone(),
            mailbox: r.mailboxes.shard_consumer,
            observer_id: spec.observer.id.clone(),
            dead_letter_outcomes: if r.dead_letters.enabled() { r.dead_letters.outcomes.clone() } else { vec![] },
            worker_id: spec.worker_id.clone(),
            claims: r.dedup.enabled.then(|| {
                // The longest an attempt in flight can last (the attempt timeout, the longest of
                // a responder's own), and a second: a claimer gone that long is done with it.
                let longest =
                    spec.responders.iter().filter_map(|x| x.timeout()).fold(r.retry.request_timeout, Duration::max);
                let stale_after = longest + Duration::from_secs(1);
                ClaimTimings {
                    stale_after,
                    recheck_every: (stale_after / 10).clamp(Duration::from_millis(100), Duration::from_secs(2)),
                    retention: r.dedup.retention,
                }
            }),
        });
        Supervisor {
            spec: Arc::new(spec),
            consumer_settings,
            core: None,
            generation: 0,
            core_backoff: Backoff::restarts(),
            consumers: HashMap::new(),
            next_arbiter: 0,
            next_incarnation: 0,
            restarts: BTreeMap::new(),
            live: LiveChildren::default(),
            waiting_for_core: vec![],
            shutting_down: false,
            ready_generation: None,
            core_failure: None,
        }
    }

    fn id(&self) -> &str {
        &self.spec.observer.id
    }

    fn next_incarnation(&mut self) -> u64 {
        self.next_incarnation += 1;
        self.next_incarnation
    }

    fn count_restart(&mut self, kind: &str) {
        *self.restarts.entry(kind.to_owned()).or_default() += 1;
        if let Some(core) = &self.core {
            core.metrics_handle.count("Restarts", Operation::Supervisor, Scope::Worker, 1);
        }
    }

    /// A core actor failed: the whole core restarts, after a backoff.
    fn core_exited(&mut self, kind: &'static str, generation: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        if reason == ExitReason::Finished || self.shutting_down {
            return;
        }
        if self.core.as_ref().map(|c| c.generation) != Some(generation) {
            return;
        }
        self.count_restart(kind);
        let delay = self.core_backoff.next_delay();
        let why = match &reason {
            ExitReason::Failed(e) => format!("failed: {e}"),
            _ => "panicked".to_owned(),
        };
        log::error!(
            "observer {}: {kind} {why}; restarting the observer's actors in {} ms",
            self.id(),
            delay.as_millis()
        );
        self.core_failure = Some(format!("{kind} {why}"));
        self.stop_core();
        ctx.run_later(delay, |act, ctx| act.start_core(ctx));
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.runtime.mailboxes.supervisor);
        self.start_core(ctx);
    }
}

impl Handler<LeaseEvent> for Supervisor {
    type Result = ();

    fn handle(&mut self, event: LeaseEvent, ctx: &mut Self::Context) {
        if self.core.as_ref().map(|c| c.generation) != Some(event.generation) {
            // A LeaseManager of a core replaced since: what it says no longer holds.
            return;
        }
        match event.change {
            LeaseChange::Acquired(lease) => self.lease_acquired(lease, ctx),
            LeaseChange::Lost { shard, tenure, reason } => self.lease_lost(shard, tenure, reason),
            LeaseChange::HandoffRequested { shard, tenure, by } => self.hand_over(shard, tenure, by, ctx),
            LeaseChange::Ended { shard, tenure } => self.shard_ended(shard, tenure),
            LeaseChange::Ready => {
                log::info!("observer {}: ready (lease table reached, first take cycle ran)", self.id());
                self.ready_generation = Some(event.generation);
            }
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        match msg.child {
            ChildId::ShardConsumer { shard, incarnation } => self.consumer_exited(shard, incarnation, msg.reason, ctx),
            ChildId::Responder { route, incarnation } => self.responder_exited(route, incarnation, msg.reason, ctx),
            ChildId::Core { kind, generation } => self.core_exited(kind, generation, msg.reason, ctx),
        }
    }
}

impl Handler<InjectConsumerFailure> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: InjectConsumerFailure, _: &mut Self::Context) -> bool {
        match self.consumers.get(msg.shard.as_str()) {
            Some(slot) => {
                slot.addr.do_send(InjectFailure { panic: msg.panic });
                true
            }
            None => false,
        }
    }
}

impl Handler<InjectCoreFailure> for Supervisor {
    type Result = bool;

    fn handle(&mut self, _: InjectCoreFailure, ctx: &mut Self::Context) -> bool {
        let Some(generation) = self.core.as_ref().map(|c| c.generation) else { return false };
        self.core_exited("Checkpointer", generation, ExitReason::Failed("injected failure".into()), ctx);
        true
    }
}

impl Message for Observe<Supervisor> {
    type Result = ObserverSnapshot;
}

/// The observer's snapshot gathers its children's, so it is answered asynchronously (it is
/// the one actor that does not implement [`crate::observe::Observable`]).
impl Handler<Observe<Supervisor>> for Supervisor {
    type Result = ResponseFuture<ObserverSnapshot>;

    fn handle(&mut self, _: Observe<Supervisor>, ctx: &mut Self::Context) -> Self::Result {
        let mut base = ObserverSnapshot {
            id: self.id().to_owned(),
            worker_id: self.spec.worker_id.clone(),
            restarts: self.restarts.clone(),
            live_children: self.live.counts(),
            supervisor_mailbox_capacity: ctx.parts().capacity(),
            ..ObserverSnapshot::default()
        };
        let consumers: Vec<Addr<ShardConsumer>> = self.consumers.values().map(|s| s.addr.clone()).collect();
        let core = self
            .core
            .as_ref()
            .map(|c| (c.lease_manager.clone(), c.checkpointer.clone(), c.metrics.clone(), c.responder_addrs()));
        Box::pin(async move {
            base.consumers =
                futures::future::join_all(consumers.iter().map(observe)).await.into_iter().flatten().collect();
            base.consumers.sort_by(|a, b| a.shard.cmp(&b.shard));
            if let Some((lm, cp, m, rs)) = core {
                base.lease_manager = observe(&lm).await;
                base.checkpointer = observe(&cp).await;
                base.metrics = observe(&m).await;
                base.responders =
                    futures::future::join_all(rs.iter().map(observe)).await.into_iter().flatten().collect();
            }
            base
        })
    }
}
