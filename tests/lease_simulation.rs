//! A deterministic simulation of the lease algorithm with 1,000 shards and 50 workers joining,
//! leaving (gracefully and by crashing) and pausing (as under SIGSTOP), over an in-memory lease
//! table with DynamoDB's conditional-write semantics.
//!
//! The workers use the library's own taking arithmetic (`taker::plan`, `Observations`) and the
//! LeaseManager's rules: renew every failover / 3 − ε, look for free and expired leases every
//! renew interval, steal (by handoff request) every take interval, drop a lease not renewed
//! within failover minus the self-fencing margin, hand over gracefully when asked.
//!
//! Checked: every shard is processed again within failover + one take interval of losing its
//! worker; no shard ever has two live owners; and how many take cycles convergence to
//! ⌈S/W⌉/⌊S/W⌋ takes after workers join and after workers fail (bounded here, stated in the
//! README).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sauna::lease_manager::Lease;
use sauna::lease_manager::taker::{self, Observations, OwnLeases, TakerSettings};
use sauna::model::{Checkpoint, self_fence_margin};

const SHARDS: usize = 1000;
const FAILOVER: Duration = Duration::from_secs(10);
const EPSILON: Duration = Duration::from_millis(25);
const TICK: Duration = Duration::from_millis(50);
/// Time a worker takes to finish its commands in flight and checkpoint before releasing.
const DRAIN: Duration = Duration::from_millis(300);

fn renew_interval() -> Duration {
    FAILOVER / 3 - EPSILON
}

fn take_interval() -> Duration {
    (FAILOVER + EPSILON) * 2
}

#[derive(Debug, Clone)]
struct Row {
    owner: Option<String>,
    counter: u64,
    handoff: Option<String>,
}

/// The lease table: conditional writes, as DynamoDB evaluates them.
#[derive(Default)]
struct Table {
    rows: BTreeMap<String, Row>,
}

impl Table {
    fn scan(&self) -> Vec<Lease> {
        self.rows
            .iter()
            .map(|(k, r)| {
                let mut l = Lease::new(k.clone(), Checkpoint::TrimHorizon);
                l.owner = r.owner.clone();
                l.counter = r.counter;
                l.handoff_requested = r.handoff.clone();
                l
            })
            .collect()
    }

    fn renew(&mut self, key: &str, me: &str, counter: u64, handing_off: bool) -> Result<u64, Row> {
        let r = self.rows.get_mut(key).expect("row");
        if r.counter == counter && r.owner.as_deref() == Some(me) && (handing_off || r.handoff.is_none()) {
            r.counter += 1;
            Ok(r.counter)
        } else {
            Err(r.clone())
        }
    }

    fn take(&mut self, key: &str, counter: u64, prev: Option<&str>, me: &str) -> Option<u64> {
        let r = self.rows.get_mut(key).expect("row");
        (r.counter == counter && r.owner.as_deref() == prev).then(|| {
            r.counter += 1;
            if prev != Some(me) {
                r.handoff = None;
            }
            r.owner = Some(me.to_owned());
            r.counter
        })
    }

    fn request_handoff(&mut self, key: &str, owner: &str, me: &str) -> bool {
        let r = self.rows.get_mut(key).expect("row");
        let ok = r.owner.as_deref() == Some(owner) && r.handoff.is_none();
        if ok {
            r.handoff = Some(me.to_owned());
        }
        ok
    }

    fn release(&mut self, key: &str, me: &str, counter: u64, to: Option<&str>) -> bool {
        let r = self.rows.get_mut(key).expect("row");
        let ok = r.counter == counter && r.owner.as_deref() == Some(me);
        if ok {
            r.counter += 1;
            r.owner = to.map(str::to_owned);
            r.handoff = None;
        }
        ok
    }
}

struct Held {
    counter: u64,
    renewed_at: Instant,
    /// When a handoff was requested, and by whom.
    handoff: Option<(Instant, String)>,
}

struct Worker {
    id: String,
    started_at: Instant,
    alive: bool,
    paused_until: Option<Instant>,
    held: BTreeMap<String, Held>,
    observations: Observations,
    requested: BTreeMap<String, Instant>,
    given_up: BTreeMap<String, Instant>,
    num_workers_seen: usize,
    next_renew: Instant,
    next_discovery: Instant,
    next_take: Instant,
}

impl Worker {
    fn new(id: String, now: Instant) -> Self {
        Worker {
            id,
            started_at: now,
            alive: true,
            paused_until: None,
            held: BTreeMap::new(),
            observations: Observations::default(),
            requested: BTreeMap::new(),
            given_up: BTreeMap::new(),
            num_workers_seen: 0,
            next_renew: now + renew_interval(),
            next_discovery: now + renew_interval(),
            // A worker's first scan at start-up takes and balances at once.
            next_take: now,
        }
    }

    fn running(&self, now: Instant) -> bool {
        self.alive && now >= self.started_at && self.paused_until.is_none_or(|t| now >= t)
    }

    fn deadline_valid(&self, h: &Held, now: Instant) -> bool {
        now < h.renewed_at + FAILOVER - self_fence_margin(FAILOVER)
    }

    fn tick(&mut self, table: &mut Table, now: Instant, rng: &mut StdRng) {
        if !self.running(now) {
            return;
        }
        self.paused_until = None;
        // Self-fencing first: after a pause, nothing is done for a lapsed lease.
        let lapsed: Vec<String> =
            self.held.iter().filter(|(_, h)| !self.deadline_valid(h, now)).map(|(k, _)| k.clone()).collect();
        for k in lapsed {
            self.held.remove(&k);
        }
        // Graceful handoffs whose drain is over: release.
        let drained: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.handoff.as_ref().is_some_and(|(t, _)| now >= *t + DRAIN))
            .map(|(k, _)| k.clone())
            .collect();
        for k in drained {
            let h = self.held.remove(&k).expect("held");
            let to = h.handoff.map(|(_, by)| by);
            if table.release(&k, &self.id, h.counter, to.as_deref()) {
                self.given_up.insert(k, now);
            }
        }
        if now >= self.next_renew {
            self.next_renew = now + renew_interval();
            let keys: Vec<String> = self.held.keys().cloned().collect();
            for k in keys {
                let h = self.held.get_mut(&k).expect("held");
                match table.renew(&k, &self.id, h.counter, h.handoff.is_some()) {
                    Ok(c) => {
                        h.counter = c;
                        h.renewed_at = now;
                    }
                    Err(row) if row.owner.as_deref() == Some(&*self.id) && row.counter == h.counter => {
                        // A handoff was requested: drain, then hand it to the requester.
                        h.handoff = Some((now, row.handoff.unwrap_or_default()));
                    }
                    Err(_) => {
                        self.held.remove(&k);
                    }
                }
            }
        }
        let steal = now >= self.next_take;
        if steal || now >= self.next_discovery {
            self.next_discovery = now + renew_interval();
            if steal {
                self.next_take = now + take_interval();
            }
            self.scan_and_take(table, now, steal, rng);
        }
    }

    fn scan_and_take(&mut self, table: &mut Table, now: Instant, steal: bool, rng: &mut StdRng) {
        let scan = table.scan();
        let pending: HashSet<&str> =
            scan.iter().filter(|l| l.handoff_requested.as_deref() == Some(&*self.id)).map(|l| l.key.as_str()).collect();
        self.requested.retain(|k, t| pending.contains(k.as_str()) && now.duration_since(*t) < FAILOVER * 3);
        self.given_up.retain(|_, t| now.duration_since(*t) < FAILOVER * 2);
        self.observations.observe(&scan, now);
        let held: HashSet<String> = self.held.keys().cloned().collect();
        let requested: HashSet<String> = self.requested.keys().cloned().collect();
        let excluded: HashSet<String> =
            if self.num_workers_seen > 1 { self.given_up.keys().cloned().collect() } else { HashSet::new() };
        let settings =
            TakerSettings { failover: FAILOVER, max_leases_for_worker: None, max_leases_to_steal_at_one_time: None };
        let mine = OwnLeases { held: &held, requested: &requested, excluded: &excluded, unanswered: &HashSet::new() };
        let plan = taker::plan(&self.observations, mine, &self.id, &settings, now, steal, rng);
        self.num_workers_seen = plan.num_workers;
        for c in plan.take {
            if c.stolen {
                let owner = c.owner.clone().unwrap_or_default();
                if table.request_handoff(&c.key, &owner, &self.id) {
                    self.requested.insert(c.key, now);
                }
            } else if let Some(counter) = table.take(&c.key, c.counter, c.owner.as_deref(), &self.id) {
                self.requested.remove(&c.key);
                self.observations.record_write(&c.key, counter, Some(&self.id), now);
                self.held.insert(c.key, Held { counter, renewed_at: now, handoff: None });
            }
        }
    }
}

struct Sim {
    now: Instant,
    start: Instant,
    table: Table,
    workers: Vec<Worker>,
    rng: StdRng,
    /// Per shard: since when no live worker holds it (None: someone does).
    uncovered_since: HashMap<String, Instant>,
    /// Per shard: longest time without a live holder after it was first held.
    longest_gap: Duration,
    first_held: HashSet<String>,
    max_live_owners: usize,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let start = Instant::now();
        let mut table = Table::default();
        for i in 0..SHARDS {
            table.rows.insert(format!("shardId-{i:012}"), Row { owner: None, counter: 0, handoff: None });
        }
        Sim {
            now: start,
            start,
            table,
            workers: vec![],
            rng: StdRng::seed_from_u64(seed),
            uncovered_since: HashMap::new(),
            longest_gap: Duration::ZERO,
            first_held: HashSet::new(),
            max_live_owners: 0,
        }
    }

    fn t(&self) -> Duration {
        self.now - self.start
    }

    fn join(&mut self, n: usize) {
        for _ in 0..n {
            let id = format!("worker-{:02}", self.workers.len());
            let w = Worker::new(id, self.now + Duration::from_millis(self.rng.random_range(0..2000)));
            self.workers.push(w);
        }
    }

    fn step(&mut self) {
        self.now += TICK;
        let mut order: Vec<usize> = (0..self.workers.len()).collect();
        order.shuffle(&mut self.rng);
        for i in order {
            let now = self.now;
            self.workers[i].tick(&mut self.table, now, &mut self.rng);
        }
        self.check();
    }

    /// Live holders: running workers holding the lease with a valid deadline.
    fn check(&mut self) {
        let now = self.now;
        let mut holders: HashMap<&str, usize> = HashMap::new();
        for w in self.workers.iter().filter(|w| w.running(now)) {
            for (k, h) in &w.held {
                if w.deadline_valid(h, now) {
                    *holders.entry(k.as_str()).or_default() += 1;
                }
            }
        }
        self.max_live_owners = self.max_live_owners.max(holders.values().copied().max().unwrap_or(0));
        for k in self.table.rows.keys() {
            if holders.contains_key(k.as_str()) {
                self.first_held.insert(k.clone());
                if let Some(since) = self.uncovered_since.remove(k) {
                    self.longest_gap = self.longest_gap.max(now - since);
                }
            } else if self.first_held.contains(k) {
                self.uncovered_since.entry(k.clone()).or_insert(now);
            }
        }
    }

    fn balanced(&self) -> bool {
        if self.workers.iter().any(|w| w.alive && (self.now < w.started_at)) {
            return false;
        }
        let live: Vec<&Worker> = self.workers.iter().filter(|w| w.running(self.now)).collect();
        let w = live.len();
        if w == 0 {
            return false;
        }
        let (lo, hi) = (SHARDS / w, SHARDS.div_ceil(w));
        let held: usize = live.iter().map(|w| w.held.len()).sum();
        held == SHARDS && live.iter().all(|w| (lo..=hi).contains(&w.held.len()))
    }

    /// Runs until balanced; returns the time it took, in take intervals (rounded up).
    fn until_balanced(&mut self, limit: Duration) -> (Duration, u32) {
        let from = self.now;
        while !self.balanced() {
            if self.now - from >= limit {
                let counts: Vec<(String, usize, usize)> = self
                    .workers
                    .iter()
                    .filter(|w| w.running(self.now))
                    .map(|w| (w.id.clone(), w.held.len(), w.requested.len()))
                    .collect();
                let free = self.table.rows.values().filter(|r| r.owner.is_none()).count();
                let flagged = self.table.rows.values().filter(|r| r.handoff.is_some()).count();
                panic!(
                    "not balanced after {limit:?} at t={:?}: free {free}, handoff flags {flagged}, (worker, held, requested): {counts:?}",
                    self.t()
                );
            }
            self.step();
        }
        let took = self.now - from;
        (took, took.as_millis().div_ceil(take_interval().as_millis()) as u32)
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.step();
        }
    }
}

#[test]
fn a_thousand_shards_and_fifty_workers_joining_leaving_and_pausing() {
    let mut sim = Sim::new(1947);
    let limit = take_interval() * 10;

    // 20 workers start within 2 s of each other.
    sim.join(20);
    let (took, cycles) = sim.until_balanced(limit);
    println!("20 workers on {SHARDS} shards: balanced after {took:?} ({cycles} take cycles)");
    assert!(cycles <= 4, "cold start converges within 4 take cycles, took {cycles}");

    // 30 more join.
    sim.run_for(Duration::from_secs(5));
    sim.join(30);
    let (took, cycles) = sim.until_balanced(limit);
    println!("30 workers joined (50): balanced after {took:?} ({cycles} take cycles)");
    assert!(cycles <= 4, "joiners reach their share within 4 take cycles, took {cycles}");
    sim.run_for(Duration::from_secs(5));

    // 10 crash and 5 leave gracefully.
    let idx: Vec<usize> = (0..50).collect();
    for &i in &idx[0..10] {
        sim.workers[i].alive = false;
    }
    for &i in &idx[10..15] {
        let keys: Vec<String> = sim.workers[i].held.keys().cloned().collect();
        for k in keys {
            let c = sim.workers[i].held[&k].counter;
            let id = sim.workers[i].id.clone();
            sim.table.release(&k, &id, c, None);
        }
        sim.workers[i].held.clear();
        sim.workers[i].alive = false;
    }
    let (took, cycles) = sim.until_balanced(limit);
    println!("10 crashed, 5 left (35 live): balanced after {took:?} ({cycles} take cycles)");
    assert!(cycles <= 4, "recovery converges within 4 take cycles, took {cycles}");
    sim.run_for(Duration::from_secs(5));

    // 5 pause (as under SIGSTOP) for a minute, far longer than the failover time.
    let pause_until = sim.now + Duration::from_secs(60);
    for &i in &idx[15..20] {
        sim.workers[i].paused_until = Some(pause_until);
    }
    let (took, cycles) = sim.until_balanced(limit);
    println!("5 paused (30 running): balanced among the running after {took:?} ({cycles} take cycles)");
    assert!(cycles <= 4, "the others take over within 4 take cycles, took {cycles}");
    // The paused ones come back, drop the leases they no longer hold, and get a share again.
    sim.run_for(pause_until.saturating_duration_since(sim.now) + TICK);
    let (took, cycles) = sim.until_balanced(limit);
    println!("5 paused workers resumed (35): balanced after {took:?} ({cycles} take cycles)");
    assert!(cycles <= 4, "resumed workers converge within 4 take cycles, took {cycles}");
    sim.run_for(Duration::from_secs(30));
    assert!(sim.balanced(), "stays balanced");

    println!(
        "longest time any shard went without a live worker: {:?} (bound: failover {FAILOVER:?} + take interval {:?}); most live owners of one shard at once: {}",
        sim.longest_gap,
        take_interval(),
        sim.max_live_owners
    );
    assert!(sim.longest_gap <= FAILOVER + take_interval(), "{:?}", sim.longest_gap);
    assert_eq!(sim.max_live_owners, 1, "never two live owners");
}
