//! Holding on to leases and taking new ones: the renewal round, self-fencing, and the scan →
//! plan → take cycle (the plan itself is the pure [`super::taker`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::actor::LeaseManager;
use super::row::Lease;
use super::store::{LeaseStore, LeaseTableError};
use super::taker::{self, Candidate, OwnLeases, TakePlan};
use super::writes::{HeldLease, LeaseWrite};
use super::{AcquiredLease, LeaseEvent};
use crate::metrics::{Operation, Scope};
use crate::model::{LeaseDeadline, Tenure};

/// What came of one candidate of a take cycle.
enum TakeResult {
    /// Taken; the row as read back right after.
    Taken(Lease),
    /// Its owner was asked to hand it over.
    Requested,
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
        self.events.do_send(LeaseEvent::HandoffRequested { shard: Arc::from(key), tenure, by });
        self.enqueue(key, LeaseWrite::Renew, ctx);
    }

    /// Self-fencing: a lease not renewed within failover (minus a margin) is dropped here,
    /// before any other worker may take it.
    pub(super) fn fence(&mut self) {
        let lapsed: Vec<(String, u128)> = self
            .state
            .held
            .iter()
            .filter(|(_, h)| !h.deadline.is_valid())
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
            return;
        }
        self.state.scan_in_flight = true;
        let table = self.table.clone();
        ctx.spawn(async move { table.scan().await }.into_actor(self).map(move |result, act, ctx| match result {
            Ok((leases, skipped)) => {
                if !skipped.is_empty() {
                    log::debug!(
                        "lease table {}: {} rows are not leases (left untouched)",
                        act.table.name(),
                        skipped.len()
                    );
                }
                let plan = act.plan(&leases, allow_steal);
                act.take(plan, ctx);
            }
            Err(e) => {
                act.scan_done(ctx);
                log::warn!("lease table {}: scan failed ({e}); will retry", act.table.name());
            }
        }));
    }

    fn scan_done(&mut self, ctx: &mut Context<Self>) {
        self.state.scan_in_flight = false;
        if std::mem::take(&mut self.state.steal_pending) {
            self.scan_cycle(true, ctx);
        }
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

    /// Folds a scan into what this worker knows and decides what to take.
    fn plan(&mut self, leases: &[Lease], allow_steal: bool) -> TakePlan {
        let now = Instant::now();
        self.state.counters.take_cycles += allow_steal as u64;
        self.notice_taken_from_us(leases);
        // A request is pending while the row still carries it; the owner answers by handing
        // the lease to us (adopted below), and a request nobody answers expires.
        let failover = self.settings.leases.failover_time;
        let worker_id = self.worker_id().to_owned();
        let pending: HashSet<&str> = leases
            .iter()
            .filter(|l| l.handoff_requested.as_deref() == Some(worker_id.as_str()))
            .map(|l| l.key.as_str())
            .collect();
        self.state.requested.retain(|k, t| pending.contains(k.as_str()) && t.elapsed() < failover * 3);
        self.state.given_up.retain(|_, t| t.elapsed() < failover * 2);
        self.state.observations.observe(leases, now);

        let held: HashSet<String> = self.state.held.keys().cloned().collect();
        let requested: HashSet<String> = self.state.requested.keys().cloned().collect();
        // What this worker just handed over goes to others, unless it is alone.
        let excluded: HashSet<String> = if self.state.last_plan.num_workers > 1 {
            self.state.given_up.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        let own = OwnLeases { held: &held, requested: &requested, excluded: &excluded };
        let settings = self.taker_settings();
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
    /// hand over. The cycle ends when all answers are in, so no scan sees a half-taken lease.
    fn take(&mut self, plan: TakePlan, ctx: &mut Context<Self>) {
        let candidates = plan.take.clone();
        self.state.last_plan = plan;
        if candidates.is_empty() {
            self.scan_done(ctx);
            return;
        }
        let (table, worker_id) = (self.table.clone(), self.worker_id().to_owned());
        let fut = async move {
            let mut results = vec![];
            for c in candidates {
                let sent_at = Instant::now();
                let r = take_one(&*table, &c, &worker_id).await;
                results.push((c, sent_at, r));
            }
            results
        };
        ctx.spawn(fut.into_actor(self).map(|results, act, ctx| {
            for (c, sent_at, r) in results {
                match r {
                    TakeResult::Taken(lease) => act.acquired(c, lease, sent_at),
                    TakeResult::Requested => {
                        act.state.counters.handoffs_requested += 1;
                        let owner = c.owner.as_deref().unwrap_or("its owner");
                        log::info!("lease {}: asked {owner} to hand it over (balancing)", c.key);
                        act.state.requested.insert(c.key.clone(), Instant::now());
                    }
                    TakeResult::NotTaken(why) => log::debug!("lease {}: not taken: {why}", c.key),
                }
            }
            act.scan_done(ctx);
        }));
    }

    /// A take succeeded: hold the lease and have its consumer started.
    fn acquired(&mut self, c: Candidate, lease: Lease, sent_at: Instant) {
        let key = lease.key.clone();
        self.state.observations.record_write(&key, lease.counter, lease.owner.as_deref(), Instant::now());
        self.state.requested.remove(&key);
        if self.state.held.contains_key(&key) || !self.state.taking {
            return;
        }
        let tenure = Tenure::next();
        let deadline = LeaseDeadline::until(self.valid_until(sent_at));
        self.state.counters.taken += 1;
        self.metrics.count("TakenLeases", Operation::TakeLeases, Scope::Worker, 1);
        let from = match &c.owner {
            Some(p) if p == self.worker_id() => " (handed over to this worker)".to_owned(),
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
        };
        let held = HeldLease {
            lease,
            tenure,
            deadline,
            renewed_at: sent_at,
            write_in_flight: false,
            queue: VecDeque::new(),
            handoff_to: None,
        };
        self.state.held.insert(key, held);
        self.events.do_send(LeaseEvent::Acquired(info));
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
            Ok(Some(l)) if l.owner.as_deref() == Some(worker_id) && l.counter == counter => TakeResult::Taken(l),
            Ok(other) => TakeResult::NotTaken(format!("changed again right after the take ({other:?})")),
            Err(e) => TakeResult::NotTaken(format!("read after take failed ({e}); leaving it to expire")),
        },
        Err(LeaseTableError::ConditionFailed) => TakeResult::NotTaken("another worker moved it first".to_owned()),
        Err(e) => TakeResult::NotTaken(format!("take failed ({e})")),
    }
}
