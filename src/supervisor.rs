//! `Supervisor`: one per enabled Kinesis observer. It creates the observer's actors, starts a
//! ShardConsumer for every lease the LeaseManager takes and stops it when the lease goes, and
//! restarts whatever fails:
//! - a failed or panicked ShardConsumer restarts alone, with exponential backoff, from the
//!   latest watermark of its shard (nothing is skipped; at most the records in flight when it
//!   failed are actioned again);
//! - a failed LeaseManager, Checkpointer or Metrics restarts the observer's core (their state
//!   is about leases, which the new LeaseManager takes back at once);
//! - responders are restarted in place by their own actor (same address, same mailbox).
//!
//! One failing shard or responder never stops the others, and one observer never affects
//! another.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::AsyncContextParts;
use actix::prelude::*;
use actix_rt::ArbiterHandle;

use crate::aws::AwsClients;
use crate::checkpointer::{
    Checkpointer, CheckpointerSnapshot, FlushAll, FlushShard, Forget, LatestCheckpoint, ObserveCheckpointer,
};
use crate::command::{CommandParser, SchemaRegistry};
use crate::config::runtime::RuntimeConfig;
use crate::config::{InitialPosition, KinesisObserverConfig};
use crate::dead_letters::DeadLetters;
use crate::lease_manager::lease::Checkpoint;
use crate::lease_manager::table::LeaseTable;
use crate::lease_manager::{
    HeldLeaseInfo, LeaseEvent, LeaseManager, LeaseManagerSettings, LeaseManagerSnapshot, ObserveLeases, Release,
    ReleaseAll,
};
use crate::metrics::{Flush, Metrics, MetricsHandle, MetricsSnapshot, Observe as ObserveMetrics, Scope};
use crate::outcome_log::{FlushRows, OutcomeLog};
use crate::parser_pool::{self, ParseWorker};
use crate::responders::{ObserveResponder, Responder, ResponderActor, ResponderContext, ResponderSnapshot};
use crate::shard_consumer::{
    ConsumerLinks, ConsumerSettings, Drain, InjectFailure, ObserveConsumer, ParentFinished, Route, ShardConsumer,
    ShardConsumerSnapshot, StopConsumer,
};
use crate::supervision::{Backoff, ChildExited, ChildId, ExitGuard, ExitReason};

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
    /// The outcome log's DynamoDB client (with the logger's own region and credentials) and
    /// table, when a DynamoDB logger is enabled.
    pub outcome_log: Option<(aws_sdk_dynamodb::Client, String)>,
}

/// Stop gracefully: drain the consumers, checkpoint, release the leases, flush metrics.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Fails the consumer of a shard on purpose (tests of supervision).
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct InjectConsumerFailure {
    pub shard: String,
    pub panic: bool,
}

/// Asks for a snapshot of the whole observer.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ObserverSnapshot")]
pub struct ObserveObserver;

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
    /// Restarts by child ("ShardConsumer", "LeaseManager", …).
    pub restarts: BTreeMap<String, u32>,
    pub supervisor_mailbox_capacity: usize,
}

struct ConsumerSlot {
    addr: Addr<ShardConsumer>,
    lease: HeldLeaseInfo,
    incarnation: u64,
    backoff: Backoff,
}

/// The core actors of one incarnation of the observer.
struct Core {
    generation: u64,
    metrics: Addr<Metrics>,
    metrics_handle: MetricsHandle,
    lease_manager: Addr<LeaseManager>,
    checkpointer: Addr<Checkpointer>,
    parser: Addr<ParseWorker>,
    routes: Arc<Vec<Route>>,
    responders: Vec<Addr<ResponderActor>>,
    dead_letters: Option<Addr<DeadLetters>>,
    outcome_log: Option<Addr<OutcomeLog>>,
}

pub struct Supervisor {
    spec: Arc<SupervisorSpec>,
    consumer_settings: Arc<ConsumerSettings>,
    core: Option<Core>,
    generation: u64,
    core_backoff: Backoff,
    consumers: HashMap<Arc<str>, ConsumerSlot>,
    next_arbiter: usize,
    next_incarnation: u64,
    restarts: BTreeMap<String, u32>,
    shutting_down: bool,
}

impl Supervisor {
    pub fn new(spec: SupervisorSpec) -> Self {
        let r = &spec.runtime;
        let consumer_settings = Arc::new(ConsumerSettings {
            stream_name: spec.observer.stream_name.clone(),
            max_records: spec.observer.max_records,
            idle_time: r.retrieval.idle_time_between_reads,
            max_in_flight: r.retrieval.max_in_flight_per_shard,
            ordering: r.retrieval.ordering,
            at_timestamp: match spec.observer.initial_position {
                InitialPosition::AtTimestamp(t) => Some(t),
                _ => None,
            },
            parent_poll_interval: r.leases.parent_shard_poll_interval,
            checkpoint_interval: r.checkpoint_interval,
            retry: r.retry.clone(),
            mailbox: r.mailboxes.shard_consumer,
            observer_id: spec.observer.id.clone(),
            dead_letter_outcomes: if r.dead_letters.enabled() { r.dead_letters.outcomes.clone() } else { vec![] },
        });
        Supervisor {
            spec: Arc::new(spec),
            consumer_settings,
            core: None,
            generation: 0,
            core_backoff: Backoff::default(),
            consumers: HashMap::new(),
            next_arbiter: 0,
            next_incarnation: 0,
            restarts: BTreeMap::new(),
            shutting_down: false,
        }
    }

    fn id(&self) -> &str {
        &self.spec.observer.id
    }

    fn count_restart(&mut self, kind: &str) {
        *self.restarts.entry(kind.to_owned()).or_default() += 1;
        if let Some(core) = &self.core {
            core.metrics_handle.count("Restarts", "Supervisor", Scope::Worker, 1);
        }
    }

    /// Starts Metrics, the LeaseManager, the Checkpointer, the responders and the parse pool.
    fn start_core(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let spec = self.spec.clone();
        let r = &spec.runtime;
        let me = ctx.address();
        let exited = me.clone().recipient::<ChildExited>();
        let guard = |kind| ExitGuard::new(ChildId::Core { kind, generation }, exited.clone());

        let metrics = Metrics::new(
            spec.observer.id.clone(),
            spec.worker_id.clone(),
            spec.clients.cloudwatch.clone(),
            r.metrics.clone(),
            r.mailboxes.metrics,
            guard("Metrics"),
        )
        .start();
        let metrics_handle = MetricsHandle::new(metrics.clone(), r.metrics.level);

        let initial_position = match spec.observer.initial_position {
            InitialPosition::Latest => Checkpoint::Latest,
            InitialPosition::TrimHorizon => Checkpoint::TrimHorizon,
            InitialPosition::AtTimestamp(_) => Checkpoint::AtTimestamp,
        };
        let lease_manager = LeaseManager::new(
            LeaseManagerSettings {
                stream_name: spec.observer.stream_name.clone(),
                worker_id: spec.worker_id.clone(),
                initial_position,
                leases: r.leases.clone(),
                mailbox: r.mailboxes.lease_manager,
            },
            LeaseTable::new(spec.clients.dynamodb.clone(), spec.observer.id.clone()),
            spec.clients.kinesis.clone(),
            me.clone().recipient::<LeaseEvent>(),
            metrics_handle.clone(),
            guard("LeaseManager"),
        )
        .start();
        let checkpointer = Checkpointer::new(
            r.checkpoint_interval,
            r.mailboxes.checkpointer,
            lease_manager.clone(),
            metrics_handle.clone(),
            guard("Checkpointer"),
        )
        .start();

        // Responders and the parse pool outlive core restarts only in spirit: they are cheap
        // to rebuild, and rebuilding keeps one clear owner of every address.
        let context = Arc::new(ResponderContext::new(r.endpoints.clone(), r.retry.request_timeout));
        let mut routes = vec![];
        let mut responders = vec![];
        for responder in &spec.responders {
            let addr = ResponderActor::new(
                responder.clone(),
                context.clone(),
                r.retry.clone(),
                r.responder_concurrency,
                r.mailboxes.responder,
                metrics_handle.clone(),
            )
            .start_supervised();
            routes.push(Route { responder_id: Arc::from(responder.id()), recipient: addr.clone().recipient() });
            responders.push(addr);
        }
        let criteria = spec.responders.iter().map(|r| r.criteria()).collect();
        let parser = Arc::new(CommandParser::new(spec.command_schemas.clone(), criteria));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let parser = parser_pool::start(parser, threads);

        log::info!(
            "observer {}: worker {} on stream {} (lease table {}), {} responder{}",
            spec.observer.id,
            spec.worker_id,
            spec.observer.stream_name,
            spec.observer.id,
            routes.len(),
            if routes.len() == 1 { "" } else { "s" }
        );
        let dl = &r.dead_letters;
        let dead_letters = dl.enabled().then(|| {
            DeadLetters::new(
                dl.file.clone(),
                dl.stream.clone().map(|s| (spec.clients.kinesis.clone(), s)),
                r.mailboxes.dead_letters,
            )
            .start()
        });
        let outcome_log = spec
            .outcome_log
            .clone()
            .map(|(client, table)| OutcomeLog::new(client, table, r.mailboxes.outcome_log).start());
        self.core = Some(Core {
            generation,
            metrics,
            metrics_handle,
            lease_manager,
            checkpointer,
            parser,
            routes: Arc::new(routes),
            responders,
            dead_letters,
            outcome_log,
        });
        self.core_backoff.started();
    }

    /// Stops every consumer and the core (their guards report `Finished`, which is ignored).
    fn stop_core(&mut self) {
        for (_, slot) in self.consumers.drain() {
            slot.addr.do_send(StopConsumer);
        }
        // Dropping the addresses stops the core actors once their mailboxes drain.
        self.core = None;
    }

    fn start_consumer(&mut self, lease: HeldLeaseInfo, backoff: Backoff, ctx: &mut Context<Self>) {
        let Some(core) = &self.core else { return };
        if self.shutting_down || !lease.deadline.is_valid() {
            return;
        }
        self.next_incarnation += 1;
        let incarnation = self.next_incarnation;
        let links = ConsumerLinks {
            kinesis: self.spec.clients.kinesis.clone(),
            parser: core.parser.clone(),
            routes: core.routes.clone(),
            checkpointer: core.checkpointer.clone(),
            lease_manager: core.lease_manager.clone(),
            metrics: core.metrics_handle.clone(),
            dead_letters: core.dead_letters.clone(),
            outcome_log: core.outcome_log.clone(),
        };
        let settings = self.consumer_settings.clone();
        let exited = ctx.address().recipient::<ChildExited>();
        let guard = ExitGuard::new(ChildId::ShardConsumer { shard: lease.shard.clone(), incarnation }, exited);
        let lease_for_actor = lease.clone();
        let arbiter = &self.spec.arbiters[self.next_arbiter % self.spec.arbiters.len().max(1)];
        self.next_arbiter += 1;
        let addr = ShardConsumer::start_in_arbiter(arbiter, move |_| {
            ShardConsumer::new(settings, links, lease_for_actor, guard)
        });
        let mut backoff = backoff;
        backoff.started();
        self.consumers.insert(lease.shard.clone(), ConsumerSlot { addr, lease, incarnation, backoff });
    }

    fn consumer_exited(&mut self, shard: Arc<str>, incarnation: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        // Only the running incarnation counts: a consumer we stopped was removed already.
        if self.consumers.get(&shard).is_none_or(|s| s.incarnation != incarnation) {
            return;
        }
        let Some(mut slot) = self.consumers.remove(&shard) else {
            return;
        };
        let why = match &reason {
            ExitReason::Finished => return,
            ExitReason::Failed(e) => format!("failed: {e}"),
            ExitReason::Panicked => "panicked".to_owned(),
        };
        if self.shutting_down || !slot.lease.deadline.is_valid() {
            return;
        }
        let delay = slot.backoff.next_delay();
        self.count_restart("ShardConsumer");
        log::warn!(
            "observer {}: the consumer of shard {shard} {why}; restarting it from its latest checkpoint in {} ms (restart {})",
            self.id(),
            delay.as_millis(),
            slot.backoff.restarts
        );
        ctx.run_later(delay, move |act, ctx| {
            let Some(core) = &act.core else { return };
            let request =
                core.checkpointer.send(LatestCheckpoint { shard: slot.lease.shard.clone(), tenure: slot.lease.tenure });
            ctx.spawn(request.into_actor(act).map(move |latest, act, ctx| {
                let mut lease = slot.lease.clone();
                if let Ok(Some(cp)) = latest {
                    lease.checkpoint = cp;
                }
                if act.consumers.contains_key(&lease.shard) {
                    return;
                }
                act.start_consumer(lease, slot.backoff.clone(), ctx);
            }));
        });
    }
}

impl Supervisor {
    /// Graceful handoff of one lease: no more reads, the commands in flight finish (up to
    /// `shutdownTimeoutMillis`), the final checkpoint is written, then the lease is released
    /// for the worker that asked. Nothing is actioned twice.
    fn hand_over(&mut self, shard: Arc<str>, tenure: u64, by: String, ctx: &mut Context<Self>) {
        let Some(core) = &self.core else { return };
        let drain = self
            .consumers
            .get(&shard)
            .filter(|s| s.lease.tenure == tenure)
            .map(|s| (s.addr.send(Drain), s.incarnation));
        let checkpointer = core.checkpointer.clone();
        let lease_manager = core.lease_manager.clone();
        let timeout = self.spec.runtime.shutdown_timeout;
        let id = self.id().to_owned();
        let started = std::time::Instant::now();
        let s = shard.clone();
        let fut = async move {
            let incarnation = match drain {
                Some((d, incarnation)) => {
                    if tokio::time::timeout(timeout, d).await.is_err() {
                        log::warn!(
                            "observer {id}: shard {s}: commands still in flight after {} ms; handing over what is done",
                            timeout.as_millis()
                        );
                    }
                    Some(incarnation)
                }
                None => None,
            };
            let flush = checkpointer.send(FlushShard { shard: s.clone(), tenure });
            let _ = tokio::time::timeout(Duration::from_secs(10), flush).await;
            let released = lease_manager.send(Release { shard: s, tenure }).await.unwrap_or(false);
            (incarnation, released)
        };
        ctx.spawn(fut.into_actor(self).map(move |(incarnation, released), act, _| {
            if let Some(slot) = act.consumers.get(&shard) {
                if Some(slot.incarnation) == incarnation {
                    slot.addr.do_send(StopConsumer);
                    act.consumers.remove(&shard);
                }
            }
            log::info!(
                "observer {}: shard {shard} handed over to {by} in {} ms ({})",
                act.id(),
                started.elapsed().as_millis(),
                if released { "released" } else { "release failed: it will expire" }
            );
        }));
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
        match event {
            LeaseEvent::Acquired(lease) => {
                if let Some(old) = self.consumers.remove(&lease.shard) {
                    old.addr.do_send(StopConsumer);
                }
                self.start_consumer(lease, Backoff::default(), ctx);
            }
            LeaseEvent::Lost { shard, tenure, reason } => {
                if let Some(slot) = self.consumers.get(&shard) {
                    if slot.lease.tenure == tenure {
                        log::warn!("observer {}: stopping the consumer of shard {shard}: {reason}", self.id());
                        slot.addr.do_send(StopConsumer);
                        self.consumers.remove(&shard);
                    }
                }
                if let Some(core) = &self.core {
                    core.checkpointer.do_send(Forget { shard });
                }
            }
            LeaseEvent::HandoffRequested { shard, tenure, by } => self.hand_over(shard, tenure, by, ctx),
            LeaseEvent::Ended { shard, tenure } => {
                if self.consumers.get(&shard).is_some_and(|s| s.lease.tenure == tenure) {
                    self.consumers.remove(&shard);
                }
                // Children of this shard waiting here may start now.
                for slot in self.consumers.values() {
                    slot.addr.do_send(ParentFinished(shard.clone()));
                }
            }
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Self::Context) {
        match msg.child {
            ChildId::ShardConsumer { shard, incarnation } => self.consumer_exited(shard, incarnation, msg.reason, ctx),
            ChildId::Core { kind, generation } => {
                if msg.reason == ExitReason::Finished || self.shutting_down {
                    return;
                }
                if self.core.as_ref().map(|c| c.generation) != Some(generation) {
                    return;
                }
                self.count_restart(kind);
                let delay = self.core_backoff.next_delay();
                log::error!(
                    "observer {}: {kind} {}; restarting the observer's actors in {} ms",
                    self.id(),
                    match &msg.reason {
                        ExitReason::Failed(e) => format!("failed: {e}"),
                        _ => "panicked".to_owned(),
                    },
                    delay.as_millis()
                );
                self.stop_core();
                ctx.run_later(delay, |act, ctx| act.start_core(ctx));
            }
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
        let timeout = self.spec.runtime.shutdown_timeout;
        let drains: Vec<_> = self.consumers.values().map(|s| s.addr.send(Drain)).collect();
        let consumers = self.consumers.len();
        let checkpointer = core.checkpointer.clone();
        let lease_manager = core.lease_manager.clone();
        let metrics = core.metrics.clone();
        let outcome_log = core.outcome_log.clone();
        log::info!("observer {id}: shutting down: finishing the commands in flight on {consumers} shard(s)");
        let fut = async move {
            // 1. No more reads; in-flight commands finish (bounded by shutdownTimeoutMillis).
            if tokio::time::timeout(timeout, futures::future::join_all(drains)).await.is_err() {
                log::warn!(
                    "observer {id}: commands still in flight after {} ms; checkpointing what is done (the rest will be read again by the next owner)",
                    timeout.as_millis()
                );
            }
            // 2. Final checkpoints, 3. leases released so others take them at once.
            let _ = tokio::time::timeout(Duration::from_secs(10), checkpointer.send(FlushAll)).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), lease_manager.send(ReleaseAll)).await;
            // 4. Last metrics and outcome rows.
            let _ = tokio::time::timeout(Duration::from_secs(5), metrics.send(Flush)).await;
            if let Some(log) = outcome_log {
                let _ = tokio::time::timeout(Duration::from_secs(5), log.send(FlushRows)).await;
            }
            log::info!("observer {id}: stopped: checkpoints written, leases released");
        };
        Box::pin(fut.into_actor(self).map(|_, act, ctx| {
            act.stop_core();
            ctx.stop();
        }))
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

impl Handler<ObserveObserver> for Supervisor {
    type Result = ResponseFuture<ObserverSnapshot>;

    fn handle(&mut self, _: ObserveObserver, ctx: &mut Self::Context) -> Self::Result {
        let mut base = ObserverSnapshot {
            id: self.id().to_owned(),
            worker_id: self.spec.worker_id.clone(),
            restarts: self.restarts.clone(),
            supervisor_mailbox_capacity: ctx.parts().capacity(),
            ..ObserverSnapshot::default()
        };
        let consumers: Vec<_> = self.consumers.values().map(|s| s.addr.send(ObserveConsumer)).collect();
        let core = self.core.as_ref().map(|c| {
            (
                c.lease_manager.send(ObserveLeases),
                c.checkpointer.send(ObserveCheckpointer),
                c.metrics.send(ObserveMetrics),
                c.responders.iter().map(|r| r.send(ObserveResponder)).collect::<Vec<_>>(),
            )
        });
        Box::pin(async move {
            for c in futures::future::join_all(consumers).await.into_iter().flatten() {
                base.consumers.push(c);
            }
            base.consumers.sort_by(|a, b| a.shard.cmp(&b.shard));
            if let Some((lm, cp, m, rs)) = core {
                base.lease_manager = lm.await.ok();
                base.checkpointer = cp.await.ok();
                base.metrics = m.await.ok();
                base.responders = futures::future::join_all(rs).await.into_iter().flatten().collect();
            }
            base
        })
    }
}
