//! The LeaseManager driven alone, against a lease table in memory with DynamoDB's
//! conditional-write semantics, a stream of the test's own making, and a stand-in Supervisor.
//! `edges`: the hardening cases (late answers, shutdown races, big take batches, foreign
//! owners, LATEST starts, the change signal).

mod cluster;
mod edges;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::*;
use crate::metrics::MetricsHandle;
use crate::model::ShardInfo;
use crate::supervision::{ChildId, ExitGuard};

/// What the stand-in Supervisor saw: every lease event, and for each acquired lease whether
/// its deadline was still valid when the event arrived.
#[derive(Clone, Default)]
struct Seen {
    events: Arc<Mutex<Vec<LeaseChange>>>,
    valid_on_arrival: Arc<Mutex<Vec<bool>>>,
}

impl Seen {
    fn lock(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, Vec<LeaseChange>>> {
        self.events.lock()
    }
}

/// Stands in for the Supervisor.
struct Events(Seen);

impl Actor for Events {
    type Context = Context<Self>;
}

impl Handler<LeaseEvent> for Events {
    type Result = ();

    fn handle(&mut self, e: LeaseEvent, _: &mut Self::Context) {
        assert_eq!(e.generation, 1, "events carry the generation of their LeaseManager");
        if let LeaseChange::Acquired(a) = &e.change {
            self.0.valid_on_arrival.lock().expect("lock").push(a.deadline.is_valid());
        }
        self.0.events.lock().expect("lock").push(e.change);
    }
}

const SHARD: &str = "shardId-000000000000";

fn shard(n: usize) -> ShardInfo {
    ShardInfo {
        id: format!("shardId-{n:012}"),
        parents: vec![],
        starting_hash_key: "0".into(),
        ending_hash_key: "340282366920938463463374607431768211455".into(),
        closed: false,
    }
}

fn settings(worker: &str) -> LeaseManagerSettings {
    let failover = Duration::from_millis(1500);
    LeaseManagerSettings {
        stream_name: "s".into(),
        worker_id: worker.into(),
        generation: 1,
        initial_position: Checkpoint::TrimHorizon,
        leases: LeaseSettings {
            failover_time: failover,
            renew_interval: Duration::from_millis(100),
            take_interval: Duration::from_millis(400),
            discovery_interval: Duration::from_millis(100),
            max_leases_for_worker: None,
            max_leases_to_steal_at_one_time: None,
            shard_sync_interval: Duration::from_secs(60),
            parent_shard_poll_interval: Duration::from_millis(50),
            cleanup_leases_upon_shard_completion: true,
            worker_id: None,
            signal_poll_interval: Some(Duration::from_millis(50)),
        },
        mailbox: 64,
    }
}

fn start(table: &MemoryLeaseTable) -> (Addr<LeaseManager>, Seen) {
    start_with(table, "me", 1, |_| {})
}

/// A LeaseManager of worker `worker` on a stream of `shards` shards, with its settings tweaked.
fn start_with(
    table: &MemoryLeaseTable,
    worker: &str,
    shards: usize,
    tweak: impl FnOnce(&mut LeaseManagerSettings),
) -> (Addr<LeaseManager>, Seen) {
    let seen = Seen::default();
    let events = Events(seen.clone()).start();
    let shards = FixedShards(Arc::new(Mutex::new((0..shards).map(shard).collect())));
    let exit = ExitGuard::detached(ChildId::Core { kind: "LeaseManager", generation: 1 });
    let mut settings = settings(worker);
    tweak(&mut settings);
    let table: Arc<dyn LeaseStore> = Arc::new(table.clone());
    let lm = LeaseManager::new(settings, table, Arc::new(shards), events.recipient(), MetricsHandle::disabled(), exit)
        .start();
    (lm, seen)
}

async fn until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn acquired(seen: &Seen) -> Option<AcquiredLease> {
    all_acquired(seen).into_iter().next()
}

fn all_acquired(seen: &Seen) -> Vec<AcquiredLease> {
    seen.lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            LeaseChange::Acquired(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

#[actix_rt::test]
async fn a_refused_write_whose_re_read_shows_another_owner_gives_the_lease_up() {
    let table = MemoryLeaseTable::new("t");
    let (lm, seen) = start(&table);
    until("the lease is taken", Duration::from_secs(3), || acquired(&seen).is_some()).await;
    let lease = acquired(&seen).expect("acquired");
    assert!(lease.deadline.is_valid());

    // Another worker takes the lease (as after an expiry in its eyes): our next renewal is
    // refused on its condition, and the re-read shows the other owner.
    assert!(table.update(SHARD, |l| {
        l.owner = Some("other".into());
        l.counter += 1;
    }));
    let lost = || {
        seen.lock().expect("lock").iter().find_map(|e| match e {
            LeaseChange::Lost { tenure, reason, .. } => Some((*tenure, reason.clone())),
            _ => None,
        })
    };
    until("the lease is given up", Duration::from_secs(3), || lost().is_some()).await;
    let (tenure, reason) = lost().expect("lost");
    assert_eq!(tenure, lease.tenure);
    assert!(reason.contains("owner is now other"), "{reason}");
    assert!(!lease.deadline.is_valid(), "the consumer's deadline is revoked at once");
    let snapshot = crate::observe::observe(&lm).await.expect("snapshot");
    assert!(snapshot.held.is_empty(), "{:?}", snapshot.held);
    assert_eq!(snapshot.counters.lost, 1);
    assert_eq!(table.row(SHARD).and_then(|l| l.owner).as_deref(), Some("other"), "its row is left to its owner");

    // A checkpoint of that tenure is refused now.
    let write = WriteCheckpoint { shard: Arc::from(SHARD), tenure, checkpoint: Checkpoint::TrimHorizon };
    assert!(matches!(lm.send(write).await, Ok(Err(LeaseError::NotHeld(_)))));
}

#[actix_rt::test]
async fn a_refused_write_whose_re_read_shows_our_own_write_keeps_the_lease() {
    let table = MemoryLeaseTable::new("t");
    let (lm, seen) = start(&table);
    until("the lease is taken", Duration::from_secs(3), || acquired(&seen).is_some()).await;
    let before = crate::observe::observe(&lm).await.expect("snapshot").counters.renewals;

    // Every renewal is applied, but its answer is lost and the retry is refused on its
    // condition (what a retried request whose first try succeeded looks like).
    let t = table.clone();
    let refused = Arc::new(Mutex::new(0u32));
    let r = refused.clone();
    table.inject_faults(Arc::new(move |call, key| {
        if call != TableCall::Renew {
            return None;
        }
        t.update(key, |l| l.counter += 1);
        *r.lock().expect("lock") += 1;
        Some(LeaseTableError::ConditionFailed)
    }));
    until("three refused renewals", Duration::from_secs(3), || *refused.lock().expect("lock") >= 3).await;
    table.clear_faults();
    let snapshot = crate::observe::observe(&lm).await.expect("snapshot");
    assert_eq!(snapshot.held.len(), 1, "the lease is still held");
    assert!(snapshot.counters.renewals >= before + 3, "each refused renewal was confirmed by the re-read");
    assert_eq!(snapshot.counters.lost, 0);
    assert!(seen.lock().expect("lock").iter().all(|e| !matches!(e, LeaseChange::Lost { .. })));
}

#[actix_rt::test]
async fn a_lease_not_renewed_within_the_failover_time_is_dropped_before_anyone_may_take_it() {
    let table = MemoryLeaseTable::new("t");
    let (lm, seen) = start(&table);
    until("the lease is taken", Duration::from_secs(3), || acquired(&seen).is_some()).await;
    let lease = acquired(&seen).expect("acquired");
    // DynamoDB stops answering.
    table.inject_faults(Arc::new(|_, _| Some(LeaseTableError::Other("injected outage".into()))));
    let since = Instant::now();
    until("the deadline lapses", Duration::from_secs(3), || !lease.deadline.is_valid()).await;
    let fenced_after = since.elapsed();
    // Other workers may take it 1.5 s (the failover time) after the last renewal; this worker
    // stopped at least the self-fencing margin (300 ms) before.
    assert!(fenced_after < Duration::from_millis(1500 - 300 + 50), "fenced after {fenced_after:?}");
    until("the Supervisor is told", Duration::from_secs(1), || {
        seen.lock().expect("lock").iter().any(|e| matches!(e, LeaseChange::Lost { .. }))
    })
    .await;
    assert!(crate::observe::observe(&lm).await.expect("snapshot").held.is_empty());
}

#[actix_rt::test]
async fn ready_is_told_once_after_the_first_take_cycle_ran_and_not_while_the_table_cannot_be_scanned() {
    let table = MemoryLeaseTable::new("t");
    table.inject_faults(Arc::new(|call, _| {
        (call == TableCall::Scan).then(|| LeaseTableError::Other("injected: unreachable".into()))
    }));
    let (_lm, seen) = start(&table);
    let is_ready = |e: &LeaseChange| matches!(e, LeaseChange::Ready);
    // Several discovery intervals (100 ms) of failing scans: not ready.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!seen.lock().expect("lock").iter().any(is_ready), "not ready while no scan succeeded");
    table.clear_faults();
    until("ready", Duration::from_secs(3), || seen.lock().expect("lock").iter().any(is_ready)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = seen.lock().expect("lock").clone();
    assert_eq!(events.iter().filter(|e| is_ready(e)).count(), 1, "told once: {events:?}");
    let ready_at = events.iter().position(is_ready).expect("ready");
    let acquired_at = events.iter().position(|e| matches!(e, LeaseChange::Acquired(_))).expect("the lease is taken");
    assert!(acquired_at < ready_at, "the first cycle's takes are told before it is ready: {events:?}");
}
