//! Twenty real LeaseManagers, each on a thread of its own, sharing one lease table in memory
//! with DynamoDB's conditional-write semantics, injected latency and failures: they join,
//! crash, freeze past the failover time (their thread blocked, as under SIGSTOP) and resume.
//! The table checks, at every write it applies, that no other worker still holds a live
//! deadline for that lease — never two live owners — and at the end the leases are balanced.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::Arbiter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const SHARDS: usize = 100;
const WORKERS: usize = 20;

/// The deadlines every worker holds, by (shard, worker): what the table checks writes against.
type Holders = Arc<Mutex<HashMap<(String, String), LeaseDeadline>>>;

/// A stand-in Supervisor for one worker: records its leases' deadlines, answers a handoff
/// request at once (there is no consumer to drain), forgets lost and ended leases.
struct Worker {
    name: String,
    holders: Holders,
    lm: Option<Addr<LeaseManager>>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Manage(Addr<LeaseManager>);

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Handler<Manage> for Worker {
    type Result = ();

    fn handle(&mut self, msg: Manage, _: &mut Self::Context) {
        self.lm = Some(msg.0);
    }
}

impl Handler<LeaseEvent> for Worker {
    type Result = ();

    fn handle(&mut self, e: LeaseEvent, _: &mut Self::Context) {
        let mut holders = self.holders.lock().expect("lock");
        match e.change {
            LeaseChange::Acquired(a) => {
                holders.insert((a.shard.to_string(), self.name.clone()), a.deadline);
            }
            LeaseChange::Lost { shard, .. } | LeaseChange::Ended { shard, .. } => {
                holders.remove(&(shard.to_string(), self.name.clone()));
            }
            LeaseChange::HandoffRequested { shard, tenure, .. } => {
                if let Some(lm) = &self.lm {
                    lm.do_send(Release { shard, tenure });
                }
            }
            LeaseChange::Ready => {}
        }
    }
}

struct Running {
    arbiter: Arbiter,
    lm: Addr<LeaseManager>,
}

fn start_worker(name: &str, table: &MemoryLeaseTable, shards: &FixedShards, holders: &Holders) -> Running {
    let arbiter = Arbiter::new();
    let (name, table, shards, holders) = (name.to_owned(), table.clone(), shards.clone(), holders.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    arbiter.spawn(async move {
        let worker = Worker { name: name.clone(), holders, lm: None }.start();
        let mut s = settings(&name);
        s.leases.failover_time = Duration::from_millis(1000);
        s.leases.renew_interval = Duration::from_millis(300);
        s.leases.discovery_interval = Duration::from_millis(300);
        s.leases.take_interval = Duration::from_millis(2000);
        s.leases.signal_poll_interval = Some(Duration::from_millis(100));
        let exit = ExitGuard::detached(ChildId::Core { kind: "LeaseManager", generation: 1 });
        let lm = LeaseManager::new(
            s,
            Arc::new(table),
            Arc::new(shards),
            worker.clone().recipient(),
            MetricsHandle::disabled(),
            exit,
        )
        .start();
        worker.do_send(Manage(lm.clone()));
        let _ = tx.send(lm);
    });
    let lm = rx.recv().expect("the worker starts");
    Running { arbiter, lm }
}

/// Who holds a live deadline for each lease, and how many each live worker holds.
fn census(holders: &Holders) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, usize>) {
    let mut by_shard: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for ((shard, worker), d) in holders.lock().expect("lock").iter() {
        if d.is_valid() {
            by_shard.entry(shard.clone()).or_default().push(worker.clone());
            *by_worker.entry(worker.clone()).or_default() += 1;
        }
    }
    (by_shard, by_worker)
}

async fn balanced(holders: &Holders, workers: usize, what: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (by_shard, by_worker) = census(holders);
        let (lo, hi) = (SHARDS / workers, SHARDS.div_ceil(workers));
        let ok =
            by_shard.len() == SHARDS && by_worker.len() == workers && by_worker.values().all(|n| (lo..=hi).contains(n));
        if ok {
            return start.elapsed();
        }
        let counts: Vec<usize> = by_worker.values().copied().collect();
        assert!(start.elapsed() < timeout, "{what}: {} leases held, counts {counts:?}", by_shard.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn twenty_lease_managers_joining_crashing_and_freezing_never_share_a_lease() {
    let table = MemoryLeaseTable::new("cluster");
    let shards = FixedShards(Arc::new(Mutex::new((0..SHARDS).map(shard).collect())));
    let holders: Holders = Arc::default();
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let (h, v) = (holders.clone(), violations.clone());
    table.watch_writes(Arc::new(move |call, row| {
        let Some(owner) = row.owner.as_deref() else { return };
        for ((shard, worker), d) in h.lock().expect("lock").iter() {
            if *shard == row.key && worker != owner && d.is_valid() {
                v.lock().expect("lock").push(format!("{call:?} of {shard} by {owner} while {worker} holds it"));
            }
        }
    }));
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(9)));
    // Any call but the first one of each LeaseManager (there is no Supervisor here to restart a
    // LeaseManager whose table is unusable at start).
    table.inject_faults(Arc::new(move |call, _| {
        let mut rng = rng.lock().expect("lock");
        let fail = call != TableCall::Describe && rng.random_bool(0.02);
        fail.then(|| LeaseTableError::Other("injected: 500 Internal Server Error".into()))
    }));
    table.set_latency(Duration::from_millis(2));

    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    for i in 0..10 {
        let name = format!("w{i:02}");
        running.insert(name.clone(), start_worker(&name, &table, &shards, &holders));
    }
    let took = balanced(&holders, 10, "10 workers start", Duration::from_secs(45)).await;
    println!("10 workers on {SHARDS} leases: balanced after {took:?}");

    for i in 10..WORKERS {
        let name = format!("w{i:02}");
        running.insert(name.clone(), start_worker(&name, &table, &shards, &holders));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = balanced(&holders, WORKERS, "10 more join", Duration::from_secs(45)).await;
    println!("{WORKERS} workers: balanced after {took:?}");

    // Three crash (their LeaseManagers stop without releasing anything)...
    for name in ["w03", "w07", "w15"] {
        let r = running.remove(name).expect("running");
        r.lm.do_send(crate::supervision::Stop);
        r.arbiter.stop();
    }
    // ...and three freeze (their threads blocked, as under SIGSTOP) until the others have
    // taken all their leases, then resume.
    let frozen = ["w01", "w11", "w18"];
    let mut resume = vec![];
    for name in frozen {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        running[name].arbiter.spawn_fn(move || {
            let _ = rx.recv_timeout(Duration::from_secs(60));
        });
        resume.push(tx);
    }
    let took = balanced(&holders, WORKERS - 6, "crashes and freezes", Duration::from_secs(45)).await;
    println!("3 crashed, 3 frozen: the {} others balanced after {took:?}", WORKERS - 6);
    for tx in resume {
        let _ = tx.send(());
    }
    let took = balanced(&holders, WORKERS - 3, "the frozen ones resume", Duration::from_secs(45)).await;
    println!("the 3 frozen ones resumed: {} workers balanced after {took:?}", WORKERS - 3);

    let violations = violations.lock().expect("lock").clone();
    assert!(
        violations.is_empty(),
        "{} writes while another worker held the lease: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    for r in running.values() {
        r.arbiter.stop();
    }
}
