//! The core of an observer: the actors of one generation — Metrics, the LeaseManager, the
//! Checkpointer, the responders with their routes, the parse pool, dead letters and the outcome
//! log. A failure of Metrics, the LeaseManager or the Checkpointer replaces the whole core.

use std::sync::Arc;

use actix::prelude::*;
use actix_rt::ArbiterHandle;

use super::Supervisor;
use crate::checkpointer::{CheckpointWriter, Checkpointer};
use crate::claims::ClaimTable;
use crate::command::CommandParser;
use crate::config::InitialPosition;
use crate::dead_letters::DeadLetters;
use crate::lease_manager::{KinesisShards, LeaseEvent, LeaseManager, LeaseManagerSettings, LeaseTable};
use crate::metrics::{Metrics, MetricsHandle};
use crate::model::{Backoff, Checkpoint};
use crate::outcome_log::OutcomeLog;
use crate::parser_pool::{self, ParseWorker};
use crate::responders::{ResponderActor, ResponderContext, ResponderSpec, RouteIndex, RouteTarget, Routes};
use crate::supervision::{ChildExited, ChildId, ExitGuard, ExitReason, LiveChildren, Stop};

/// The running actor of one responder, and what restarts it.
pub(super) struct ResponderSlot {
    pub addr: Addr<ResponderActor>,
    pub spec: Arc<ResponderSpec>,
    pub incarnation: u64,
    pub backoff: Backoff,
}

/// The core actors of one generation of the observer.
pub(super) struct Core {
    pub generation: u64,
    pub metrics: Addr<Metrics>,
    pub metrics_handle: MetricsHandle,
    pub lease_manager: Addr<LeaseManager>,
    pub checkpointer: Addr<Checkpointer>,
    pub parser: Addr<ParseWorker>,
    pub routes: Arc<Routes>,
    pub responders: Vec<ResponderSlot>,
    pub dead_letters: Option<Addr<DeadLetters>>,
    pub outcome_log: Option<Addr<OutcomeLog>>,
    /// The claim table (dedup on), and whether it is known to exist.
    pub claims: Option<Arc<ClaimTable>>,
    pub claims_ready: bool,
    /// The stream consumer of enhanced fan-out, once registered and ACTIVE.
    pub stream_consumer: StreamConsumerState,
}

/// Enhanced fan-out's stream consumer, as far as this core knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StreamConsumerState {
    /// Polling: none is needed.
    NotUsed,
    Registering,
    Active(String),
}

impl Core {
    pub fn responder_addrs(&self) -> Vec<Addr<ResponderActor>> {
        self.responders.iter().map(|r| r.addr.clone()).collect()
    }
}

impl Supervisor {
    /// Starts Metrics, the LeaseManager, the Checkpointer, the responders and the parse pool.
    pub(super) fn start_core(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let spec = self.spec.clone();
        let r = &spec.runtime;
        let exited = ctx.address().recipient::<ChildExited>();
        let live = self.live.clone();
        let guard = |kind| ExitGuard::new(ChildId::Core { kind, generation }, exited.clone(), &live);

        let metrics = Metrics::new(
            spec.observer.id.clone(),
            spec.worker_id.clone(),
            spec.clients.cloudwatch.clone(),
            r.metrics.clone(),
            r.mailboxes.metrics,
            spec.prometheus.clone(),
            guard("Metrics"),
        )
        .start();
        let metrics_handle = MetricsHandle::new(metrics.clone().recipient(), r.metrics.level, r.mailboxes.metrics)
            .exporting(spec.prometheus.is_some());
        let lease_manager = self.start_lease_manager(metrics_handle.clone(), guard("LeaseManager"), ctx);
        let writer = CheckpointWriter {
            checkpoint: lease_manager.clone().recipient(),
            end_shard: lease_manager.clone().recipient(),
        };
        let checkpointer = Checkpointer::new(
            r.checkpoint_interval,
            r.mailboxes.checkpointer,
            writer,
            metrics_handle.clone(),
            guard("Checkpointer"),
        )
        .start();
        let (routes, responders) = self.start_responders(&metrics_handle, ctx);
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
        let RecordKeepers { dead_letters, outcome_log, claims } = start_records_keepers(&spec);
        if let Some(table) = claims.clone() {
            self.prepare_claims(table, generation, ctx);
        }
        let fan_out = spec.runtime.retrieval.mode == crate::config::runtime::RetrievalMode::FanOut;
        if fan_out {
            self.prepare_stream_consumer(generation, ctx);
        }
        self.core = Some(Core {
            generation,
            metrics,
            metrics_handle,
            lease_manager,
            checkpointer,
            parser,
            routes,
            responders,
            dead_letters,
            outcome_log,
            claims_ready: claims.is_none(),
            claims,
            stream_consumer: if fan_out { StreamConsumerState::Registering } else { StreamConsumerState::NotUsed },
        });
        self.core_backoff.started();
    }

    fn start_lease_manager(
        &self,
        metrics: MetricsHandle,
        exit: ExitGuard,
        ctx: &mut Context<Self>,
    ) -> Addr<LeaseManager> {
        let spec = &self.spec;
        let initial_position = match spec.observer.initial_position {
            InitialPosition::Latest => Checkpoint::Latest,
            InitialPosition::TrimHorizon => Checkpoint::TrimHorizon,
            InitialPosition::AtTimestamp(_) => Checkpoint::AtTimestamp,
        };
        let settings = LeaseManagerSettings {
            stream_name: spec.observer.stream_name.clone(),
            worker_id: spec.worker_id.clone(),
            generation: self.generation,
            initial_position,
            leases: spec.runtime.leases.clone(),
            mailbox: spec.runtime.mailboxes.lease_manager,
        };
        let per_call = spec.runtime.leases.renew_interval;
        let table = Arc::new(LeaseTable::for_lease_manager(&spec.clients.dynamodb, spec.observer.id.clone(), per_call));
        let shards = Arc::new(KinesisShards::new(spec.clients.kinesis.clone(), spec.observer.stream_name.clone()));
        LeaseManager::new(settings, table, shards, ctx.address().recipient::<LeaseEvent>(), metrics, exit).start()
    }

    /// One actor per responder, each behind a route of its own.
    fn start_responders(
        &mut self,
        metrics: &MetricsHandle,
        ctx: &mut Context<Self>,
    ) -> (Arc<Routes>, Vec<ResponderSlot>) {
        let spec = self.spec.clone();
        let r = &spec.runtime;
        let context = Arc::new(ResponderContext::new(r.endpoints.clone(), r.retry.request_timeout));
        let mut routes = Routes::default();
        let mut slots = vec![];
        for (route, responder) in spec.responders.iter().enumerate() {
            let spec = Arc::new(
                ResponderSpec::new(
                    responder.clone(),
                    context.clone(),
                    r.retry.clone(),
                    responder.concurrency().unwrap_or(r.responder_concurrency),
                    r.mailboxes.responder,
                    metrics.clone(),
                )
                .with_rate_limit(
                    r.rate_limits.get(responder.id()).copied().unwrap_or_else(|| responder.default_rate_limit()),
                ),
            );
            let incarnation = self.next_incarnation();
            let addr = self.start_responder(&spec, route, incarnation, 0, std::time::Duration::ZERO, ctx);
            routes.push(responder.id(), RouteTarget::of(&addr));
            slots.push(ResponderSlot { addr, spec, incarnation, backoff: Backoff::restarts() });
        }
        (Arc::new(routes), slots)
    }

    /// A responder's actor stopped: unless it finished, a new one takes its route at once and
    /// waits out the restart backoff with the commands in its mailbox.
    pub(super) fn responder_exited(
        &mut self,
        route: RouteIndex,
        incarnation: u64,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        if reason == ExitReason::Finished || self.shutting_down {
            return;
        }
        let next = self.next_incarnation();
        let id = self.id().to_owned();
        let (arbiter, live) = (self.spec.responder_arbiter.clone(), self.live.clone());
        let Some(core) = self.core.as_mut() else { return };
        let Some(slot) = core.responders.get_mut(route).filter(|s| s.incarnation == incarnation) else { return };
        let delay = slot.backoff.next_delay();
        let restarts = slot.backoff.failures();
        slot.addr = start_responder(&slot.spec, (route, next), restarts, delay, (&arbiter, &live), ctx);
        slot.incarnation = next;
        slot.backoff.started();
        core.routes.replace(route, RouteTarget::of(&slot.addr));
        log::warn!(
            "observer {id}: responder {} restarting in {} ms (restart {restarts})",
            slot.spec.responder.id(),
            delay.as_millis()
        );
        self.count_restart("Responder");
    }

    /// Stops every consumer and every actor of the core, explicitly (actix keeps an actor with
    /// timers alive when its addresses are dropped: a LeaseManager left behind would go on
    /// renewing and taking leases beside its successor). Their guards report `Finished`.
    pub(super) fn stop_core(&mut self) {
        for (_, slot) in self.consumers.drain() {
            slot.addr.do_send(Stop);
        }
        self.waiting_for_core.clear();
        let Some(core) = self.core.take() else { return };
        core.lease_manager.do_send(Stop);
        core.checkpointer.do_send(Stop);
        core.metrics.do_send(Stop);
        for r in &core.responders {
            r.addr.do_send(Stop);
        }
        if let Some(d) = &core.dead_letters {
            d.do_send(Stop);
        }
        if let Some(o) = &core.outcome_log {
            o.do_send(Stop);
        }
        // The parse pool's threads end when its last address (here and in the consumers) goes.
    }

    fn start_responder(
        &self,
        spec: &Arc<ResponderSpec>,
        route: RouteIndex,
        incarnation: u64,
        restarts: u32,
        delay: std::time::Duration,
        ctx: &mut Context<Self>,
    ) -> Addr<ResponderActor> {
        let arbiter = self.spec.responder_arbiter.clone();
        start_responder(spec, (route, incarnation), restarts, delay, (&arbiter, &self.live), ctx)
    }
}

/// Starts the actor of responder `route` on the responders' arbiter, reporting its exit to
/// the Supervisor.
fn start_responder(
    spec: &Arc<ResponderSpec>,
    (route, incarnation): (RouteIndex, u64),
    restarts: u32,
    delay: std::time::Duration,
    (arbiter, live): (&ArbiterHandle, &LiveChildren),
    ctx: &mut Context<Supervisor>,
) -> Addr<ResponderActor> {
    let exited = ctx.address().recipient::<ChildExited>();
    let exit = ExitGuard::new(ChildId::Responder { route, incarnation }, exited, live);
    let spec = spec.clone();
    ResponderActor::start_in_arbiter(arbiter, move |_| ResponderActor::new(spec, restarts, delay, exit))
}

/// The keepers of what became of records: dead letters, the outcome log, the claim table
/// (each when configured).
struct RecordKeepers {
    dead_letters: Option<Addr<DeadLetters>>,
    outcome_log: Option<Addr<OutcomeLog>>,
    claims: Option<Arc<ClaimTable>>,
}

fn start_records_keepers(spec: &super::SupervisorSpec) -> RecordKeepers {
    let r = &spec.runtime;
    let dl = &r.dead_letters;
    let dead_letters = dl.enabled().then(|| {
        let stream = dl.stream.clone().map(|s| (spec.clients.kinesis.clone(), s));
        DeadLetters::new(dl.file.clone(), stream, r.mailboxes.dead_letters).start()
    });
    let outcome_log =
        spec.outcome_log.clone().map(|(client, table)| OutcomeLog::new(client, table, r.mailboxes.outcome_log).start());
    let claims = r.dedup.enabled.then(|| {
        let name = r.dedup.table_of(&spec.observer.id);
        Arc::new(ClaimTable::new(
            &spec.clients.dynamodb,
            name,
            r.retry.request_timeout,
            r.dedup.max_concurrent_requests,
        ))
    });
    RecordKeepers { dead_letters, outcome_log, claims }
}
