//! Holding on to leases and taking new ones: the renewal round, self-fencing, and the scan →
//! plan → take cycle (the plan itself is the pure [`super::taker`]).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::StreamExt;

use super::actor::LeaseManager;
use super::row::{Lease, RowError};
use super::store::{LeaseStore, LeaseTableError};
use super::taker::{self, Candidate, OwnLeases, TakePlan};
use super::writes::{HeldLease, LeaseWrite};
use super::{AcquiredLease, LeaseChange};
use crate::metrics::{Operation, Scope};
use crate::model::{LeaseDeadline, Tenure};

/// How many takes (or handoff requests) of one cycle are out at once.
const TAKES_AT_ONCE: usize = 16;

/// One candidate of a take cycle was answered (sent by the cycle to its LeaseManager).
#[derive(Message)]
#[rtype(result = "()")]
struct TakeAnswered {
    candidate: Candidate,
    sent_at: Instant,
    result: TakeResult,
}

/// Every candidate of the cycle was answered.
#[derive(Message)]
#[rtype(result = "()")]
struct TakeCycleDone;

impl Handler<TakeAnswered> for LeaseManager {
    type Result = ();

    fn handle(&mut self, msg: TakeAnswered, ctx: &mut Self::Context) {
        self.take_answered(msg, ctx);
    }
}

impl Handler<TakeCycleDone> for LeaseManager {
    type Result = ();

    fn handle(&mut self, _: TakeCycleDone, ctx: &mut Self::Context) {
        self.cycle_ran();
        self.scan_done(ctx);
    }
}

/// What came of one candidate of a take cycle.
enum TakeResult {
    /// Taken; the row as read back right after.
    Taken(Box<Lease>),
    /// Its owner was asked to hand it over.
    Requested,
    /// Another worker took it first: there may be other free leases for this one.
    Lost,
    NotTaken(String),
}

impl LeaseManager {
    /// Renews every held lease, and first drops those this worker could not renew in time.
    pub(super) fn renew_all(&mut self, ctx: &mut Context<Self>) {
        self.fence();
        let keys: Vec<String> = self.state.held.keys().cloned().collect();
        for key in &keys {
            self.enqueue(key, LeaseWrite::Renew, ctx);
        }
        let held = self.state.held.len() as u64;
        self.metrics.count("CurrentLeases", Operation::RenewAllLeases, Scope::Worker, held);
        // Leases asked for are handed over within a drain: look for them at renewal pace,
        // whatever the discovery interval, so they are not left to expire.
        if !self.state.requested.is_empty() {
            self.scan_cycle(false, ctx);
        }
    }

    /// The owner learnt that its lease is wanted elsewhere: the Supervisor drains the consumer,
    /// flushes the checkpoint and releases it; renewals go on meanwhile.
    pub(super) fn handoff_requested(&mut self, key: &str, by: String, ctx: &mut Context<Self>) {
        let Some(h) = self.state.held.get_mut(key) else { return };
        if h.handoff_to.is_some() {
            return;
        }
        h.handoff_to = Some(by.clone());
        let tenure = h.tenure;
        log::info!("lease {key}: handoff requested by {by}; finishing its commands in flight, then releasing it");
        self.tell(LeaseChange::HandoffRequested { shard: Arc::from(key), tenure, by });
        self.enqueue(key, LeaseWrite::Renew, ctx);
    }

    /// Self-fencing: a lease not renewed within failover (minus a margin) is dropped here,
    /// before any other worker may take it.
    pub(super) fn fence(&mut self) {
        let lapsed: Vec<(String, u128)> = self
            .state
            .held
            .iter()
            .filter(|(_, h)| !h.deadline.is_valid() && !h.releasing)
            .map(|(k, h)| (k.clone(), h.renewed_at.elapsed().as_millis()))
            .collect();
        let failover = self.settings.leases.failover_time.as_millis();
        for (key, age) in lapsed {
            self.lose(&key, format!("not renewed for {age} ms (failover time {failover} ms)"));
        }
    }

    /// Scans the table and takes what it should: every discovery interval only free and
    /// expired leases, every take interval also handoff requests (balancing).
    pub(super) fn scan_cycle(&mut self, allow_steal: bool, ctx: &mut Context<Self>) {
        if !self.state.taking || !self.state.started {
            return;
        }
        if self.state.scan_in_flight {
            self.state.steal_pending |= allow_steal;
            self.state.rescan_pending = true;
            return;
        }
        self.state.scan_in_flight = true;
        let table = self.table.clone();
        ctx.spawn(crate::tasks::own_task(async move { table.scan().await }).into_actor(self).map(
            move |result, act, ctx| match result {
                Ok((leases, skipped)) => {
                    act.warn_malformed(&skipped);
                    let plan = act.plan(&leases, allow_steal, ctx);
                    act.schedule_expiry_scan(ctx);
                    act.take(plan, ctx);
                }
                Err(e) => {
                    act.scan_done(ctx);
                    log::warn!("lease table {}: scan failed ({e}); will retry", act.table.name());
                }
            },
        ));
    }

    fn scan_done(&mut self, ctx: &mut Context<Self>) {
        self.state.scan_in_flight = false;
        let rescan = std::mem::take(&mut self.state.rescan_pending);
        if std::mem::take(&mut self.state.steal_pending) {
            self.scan_cycle(true, ctx);
        } else if rescan {
            self.scan_cycle(false, ctx);
        }
    }

    /// A row this program cannot read is no lease it can take, and a parent's blocks its
    /// children: said loudly, once per problem.
    fn warn_malformed(&mut self, skipped: &[(String, RowError)]) {
        let mut now: BTreeMap<String, String> = BTreeMap::new();
        for (key, e) in skipped {
            if let RowError::Malformed { .. } = e {
                now.insert(key.clone(), e.to_string());
            }
        }
        for (key, problem) in &now {
            if self.state.malformed.get(key) != Some(problem) {
                log::error!(
                    "lease table {}: the row of {key:?} is not a lease this program can read ({problem}); its shard is not processed (and its children wait) until the row is fixed — `sauna leases` shows it",
                    self.table.name()
                );
            }
        }
        self.state.malformed = now;
    }

    /// When the lease of another worker will look expired before the next regular scan (its
    /// counter has not been seen to move for a while), scan right then: a worker that died is
    /// replaced one failover time after it was last seen alive, not up to a discovery interval
    /// later. Live workers' leases are seen to move at every scan and never trigger this.
    fn schedule_expiry_scan(&mut self, ctx: &mut Context<Self>) {
        if self.state.expiry_scan_scheduled {
            return;
        }
        let failover = self.settings.leases.failover_time;
        let now = Instant::now();
        let worker_id = self.worker_id().to_owned();
        let next = self
            .state
            .observations
            .leases
            .iter()
            .filter(|(k, o)| {
                !o.finished && o.owner.as_deref().is_some_and(|w| w != worker_id) && !self.state.held.contains_key(*k)
            })
            .map(|(_, o)| o.last_change + failover)
            .filter(|at| *at > now)
            .min();
        let Some(at) = next else { return };
        let wait = at - now + Duration::from_millis(5);
        if wait >= self.settings.leases.discovery_interval {
            return;
        }
        self.state.expiry_scan_scheduled = true;
        ctx.run_later(wait, |act, ctx| {
            act.state.expiry_scan_scheduled = false;
            act.scan_cycle(false, ctx);
        });
    }

    /// A lease we hold that the table shows with another owner was taken from us (our next
    /// renewal would find out too; this is sooner).
    fn notice_taken_from_us(&mut self, leases: &[Lease]) {
        let worker_id = self.worker_id().to_owned();
        let taken: Vec<(String, String)> = leases
            .iter()
            .filter(|l| {
                self.state.held.get(&l.key).is_some_and(|h| !h.write_in_flight)
                    && l.owner.as_deref() != Some(worker_id.as_str())
            })
            .map(|l| {
                let owner = l.owner.as_deref().unwrap_or("none");
                (l.key.clone(), format!("the table shows owner {owner} at counter {}", l.counter))
            })
            .collect();
        for (key, why) in taken {
            self.lose(&key, why);
        }
    }

    /// The handoff requests this worker made that still stand. A request stands while the row
    /// carries it and its owner is alive; one its owner never accepted within the failover time
    /// (the owner is not sauna) is withdrawn, and that lease is not asked for again for a while.
    fn review_requests(&mut self, leases: &[Lease], now: Instant, ctx: &mut Context<Self>) {
        let failover = self.settings.leases.failover_time;
        let settings = self.taker_settings();
        let worker_id = self.worker_id().to_owned();
        let rows: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
        let mut withdraw = vec![];
        let observations = &self.state.observations;
        self.state.requested.retain(|k, asked| {
            let Some(l) = rows.get(k.as_str()) else { return false };
            if l.handoff_requested.as_deref() != Some(worker_id.as_str()) {
                return false;
            }
            if observations.leases.get(k).is_some_and(|o| settings.is_expired(o, now)) {
                // Its owner is gone: the lease is free to take like any expired one.
                return false;
            }
            // A sauna owner accepts at its next renewal (every failover / 3); two failover
            // times leave room for a slow one.
            let accepted = l.handoff_accepted.as_deref() == Some(worker_id.as_str());
            if !accepted && asked.elapsed() > failover * 2 {
                withdraw.push(k.clone());
                return false;
            }
            true
        });
        self.state.unanswered.retain(|_, t| t.elapsed() < failover * 10);
        for key in withdraw {
            log::warn!(
                "lease {key}: its owner never accepted the handoff request (it is not a sauna worker?); withdrawn, not asked again for {} s",
                (failover * 10).as_secs()
            );
            self.state.unanswered.insert(key.clone(), Instant::now());
            let (table, worker_id) = (self.table.clone(), worker_id.clone());
            ctx.spawn(actix::fut::wrap_future(async move {
                let _ = table.withdraw_handoff(&key, &worker_id).await;
            }));
        }
    }

    /// Folds a scan into what this worker knows and decides what to take.
    fn plan(&mut self, leases: &[Lease], allow_steal: bool, ctx: &mut Context<Self>) -> TakePlan {
        let now = Instant::now();
        self.state.counters.take_cycles += allow_steal as u64;
        self.notice_taken_from_us(leases);
        self.state.observations.observe(leases, now);
        self.review_requests(leases, now, ctx);
        let failover = self.settings.leases.failover_time;
        self.state.given_up.retain(|_, t| t.elapsed() < failover * 2);

        let held: HashSet<String> = self.state.held.keys().cloned().collect();
        let requested: HashSet<String> = self.state.requested.keys().cloned().collect();
        let unanswered: HashSet<String> = self.state.unanswered.keys().cloned().collect();
        // What this worker just handed over goes to others, unless it is alone.
        let excluded: HashSet<String> = if self.state.last_plan.num_workers > 1 {
            self.state.given_up.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        let own = OwnLeases { held: &held, requested: &requested, excluded: &excluded, unanswered: &unanswered };
        let settings = self.taker_settings();
        let worker_id = self.worker_id().to_owned();
        let plan =
            taker::plan(&self.state.observations, own, &worker_id, &settings, now, allow_steal, &mut rand::rng());
        if allow_steal {
            self.report_plan(&plan);
        }
        plan
    }

    fn report_plan(&self, plan: &TakePlan) {
        if plan.spillover > 0 {
            log::warn!(
                "{} leases beyond {} workers x maxLeasesForWorker: some shards may not be processed",
                plan.spillover,
                plan.num_workers
            );
        }
        self.metrics.count("NumWorkers", Operation::TakeLeases, Scope::Worker, plan.num_workers as u64);
        self.metrics.count("ExpiredLeases", Operation::TakeLeases, Scope::Worker, plan.expired as u64);
        self.metrics.count("LeaseSpillover", Operation::TakeLeases, Scope::Worker, plan.spillover as u64);
    }

    /// Takes (then reads the row back: checkpoint, parents) or, for a steal, asks the owner to
    /// hand over — several at a time, each lease held the moment its take is answered (with a
    /// deadline counted from its own request), so a batch of hundreds never holds leases whose
    /// deadlines lapse before their consumers start. The cycle ends when every answer is in, so
    /// no scan sees a half-taken batch.
    fn take(&mut self, plan: TakePlan, ctx: &mut Context<Self>) {
        let candidates = plan.take.clone();
        self.state.last_plan = plan;
        if candidates.is_empty() {
            self.cycle_ran();
            self.scan_done(ctx);
            return;
        }
        let (table, worker_id, me) = (self.table.clone(), self.worker_id().to_owned(), ctx.address());
        let answers = futures::stream::iter(candidates)
            .map(move |c| {
                let (table, worker_id) = (table.clone(), worker_id.clone());
                async move {
                    let sent_at = Instant::now();
                    let result = take_one(&*table, &c, &worker_id).await;
                    TakeAnswered { candidate: c, sent_at, result }
                }
            })
            .buffer_unordered(TAKES_AT_ONCE);
        ctx.spawn(actix::fut::wrap_future(async move {
            let mut answers = std::pin::pin!(answers);
            while let Some(answer) = answers.next().await {
                me.do_send(answer);
            }
            me.do_send(TakeCycleDone);
        }));
    }

    /// A take cycle ran to its end (the table was scanned, every take answered): the first one
    /// makes this worker ready (`/readyz`). Its takes' events went out before this one.
    fn cycle_ran(&mut self) {
        if !self.state.ready {
            self.state.ready = true;
            self.tell(LeaseChange::Ready);
        }
    }

    fn take_answered(&mut self, a: TakeAnswered, ctx: &mut Context<Self>) {
        let c = a.candidate;
        match a.result {
            TakeResult::Taken(lease) => self.acquired(c, *lease, a.sent_at, ctx),
            TakeResult::Requested => {
                self.state.counters.handoffs_requested += 1;
                let owner = c.owner.as_deref().unwrap_or("its owner");
                log::info!("lease {}: asked {owner} to hand it over (balancing)", c.key);
                self.state.requested.insert(c.key.clone(), Instant::now());
            }
            TakeResult::Lost => {
                log::debug!("lease {}: not taken: another worker moved it first; scanning again", c.key);
                self.state.rescan_pending = true;
            }
            TakeResult::NotTaken(why) => log::debug!("lease {}: not taken: {why}", c.key),
        }
    }

    /// A take succeeded: hold the lease and have its consumer started.
    fn acquired(&mut self, c: Candidate, lease: Lease, sent_at: Instant, ctx: &mut Context<Self>) {
        let key = lease.key.clone();
        self.state.observations.record_write(&key, lease.counter, lease.owner.as_deref(), Instant::now());
        self.state.requested.remove(&key);
        if self.state.held.contains_key(&key) {
            return;
        }
        if !self.state.taking {
            // Taken while shutting down: give it straight back, or it would stay this departed
            // worker's until it expires.
            let (table, worker_id) = (self.table.clone(), self.worker_id().to_owned());
            ctx.spawn(actix::fut::wrap_future(async move {
                match table.release(&key, &worker_id, lease.counter, None).await {
                    Ok(_) => log::info!("lease {key}: taken while shutting down; released"),
                    Err(e) => {
                        log::warn!("lease {key}: taken while shutting down; release failed ({e}): it will expire")
                    }
                }
            }));
            return;
        }
        let tenure = Tenure::next();
        let deadline = LeaseDeadline::until(self.valid_until(sent_at));
        self.state.counters.taken += 1;
        self.metrics.count("TakenLeases", Operation::TakeLeases, Scope::Worker, 1);
        let from = match &c.owner {
            Some(p) if p == self.worker_id() => {
                " (the table names this worker: handed over to it, or its own from before)".to_owned()
            }
            Some(p) => format!(" from {p} (expired)"),
            None => String::new(),
        };
        log::info!("lease {key}: taken{from} at checkpoint {} (tenure {tenure})", lease.checkpoint);
        let info = AcquiredLease {
            shard: Arc::from(key.as_str()),
            tenure,
            checkpoint: lease.checkpoint.clone(),
            parents: lease.parent_shard_ids.clone(),
            deadline: deadline.clone(),
            hash_range: lease.hash_key_range(),
        };
        let held = HeldLease {
            lease,
            tenure,
            deadline,
            renewed_at: sent_at,
            write_in_flight: false,
            queue: VecDeque::new(),
            handoff_to: None,
            handoff_accepted: false,
            releasing: false,
        };
        self.state.held.insert(key, held);
        self.tell(LeaseChange::Acquired(info));
    }
}

/// Takes one candidate, or asks its owner to hand it over.
async fn take_one(table: &dyn LeaseStore, c: &Candidate, worker_id: &str) -> TakeResult {
    if c.stolen {
        let owner = c.owner.clone().unwrap_or_default();
        return match table.request_handoff(&c.key, Some(&owner), worker_id).await {
            Ok(true) => TakeResult::Requested,
            Ok(false) => TakeResult::NotTaken("its owner changed, or a handoff is already pending".to_owned()),
            Err(e) => TakeResult::NotTaken(format!("handoff request failed ({e})")),
        };
    }
    match table.take(&c.key, c.counter, c.owner.as_deref(), worker_id).await {
        Ok(counter) => match table.get(&c.key).await {
            Ok(Some(l)) if l.owner.as_deref() == Some(worker_id) && l.counter == counter => {
                TakeResult::Taken(Box::new(l))
            }
            Ok(other) => TakeResult::NotTaken(format!("changed again right after the take ({other:?})")),
            Err(e) => TakeResult::NotTaken(format!("read after take failed ({e}); leaving it to expire")),
        },
        Err(LeaseTableError::ConditionFailed) => TakeResult::Lost,
        Err(e) => TakeResult::NotTaken(format!("take failed ({e})")),
    }
}
