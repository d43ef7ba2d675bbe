//! Which leases a worker takes: pure arithmetic over what it has observed of the lease table,
//! so that it can be unit-tested and simulated with thousands of leases and workers.
//!
//! The Java KCL 2.x algorithm, improved where its users complain:
//! - Expiry needs no clock agreement: a lease is expired when *this* worker has seen its
//!   `leaseCounter` unchanged for `failover` on its own monotonic clock (or it is unowned).
//! - Each worker aims at ⌈leases / workers⌉ (capped by `maxLeasesForWorker`; the excess is
//!   reported as spillover). Available leases are taken in random order, the ones nobody has
//!   renewed for 3 × failover (and new ones) first.
//! - Stealing happens only when no lease is available, and only from workers above the target.
//!   The KCL steals one lease per cycle from the single most loaded worker, so a new worker
//!   needs as many cycles as its share (awslabs/amazon-kinesis-client#708); here a worker steals
//!   what it needs in one cycle, from the most loaded workers first, each down to the target
//!   and no further, capped by `maxLeasesToStealAtOneTime`.
//! - Finished leases (SHARD_END) are neither counted nor taken: they occupy no worker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::lease::Lease;

/// What this worker knows of one lease from its scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub counter: u64,
    pub owner: Option<String>,
    /// When this worker last saw the counter change (or first saw the lease).
    pub last_change: Instant,
    pub finished: bool,
    /// Never seen owned and renewed by anyone since this worker first saw it unowned.
    pub never_renewed: bool,
}

/// The observations of every lease, updated scan after scan.
#[derive(Debug, Default, Clone)]
pub struct Observations {
    pub leases: BTreeMap<String, Observation>,
}

impl Observations {
    /// Folds a scan in: a lease whose counter moved is renewed as of `now`; a lease seen for the
    /// first time is renewed as of `now` if owned (we cannot know better), never if unowned.
    pub fn observe(&mut self, scan: &[Lease], now: Instant) {
        let mut next = BTreeMap::new();
        for lease in scan {
            let obs = match self.leases.remove(&lease.key) {
                Some(prev) if prev.counter == lease.counter && prev.owner == lease.owner => {
                    Observation {
                        finished: lease.is_finished(),
                        ..prev
                    }
                }
                Some(prev) => Observation {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    last_change: now,
                    finished: lease.is_finished(),
                    never_renewed: prev.never_renewed && lease.owner.is_none(),
                },
                None => Observation {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    last_change: now,
                    finished: lease.is_finished(),
                    never_renewed: lease.owner.is_none(),
                },
            };
            next.insert(lease.key.clone(), obs);
        }
        self.leases = next;
    }

    /// Records a write of our own (take, renew) so the next scan does not mistake it.
    pub fn record_write(&mut self, key: &str, counter: u64, owner: Option<&str>, now: Instant) {
        if let Some(o) = self.leases.get_mut(key) {
            o.counter = counter;
            o.owner = owner.map(str::to_owned);
            o.last_change = now;
            o.never_renewed = false;
        }
    }
}

/// The settings the arithmetic needs.
#[derive(Debug, Clone)]
pub struct TakerSettings {
    pub failover: Duration,
    pub max_leases_for_worker: Option<usize>,
    pub max_leases_to_steal_at_one_time: Option<usize>,
}

/// A lease to take, with what it looked like when chosen (the take is conditional on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub counter: u64,
    pub owner: Option<String>,
    pub stolen: bool,
}

/// The decision of one take cycle, with the numbers behind it (for metrics and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakePlan {
    pub take: Vec<Candidate>,
    /// Workers seen alive (owning a non-expired lease), this one included.
    pub num_workers: usize,
    /// Leases that are not finished.
    pub total_leases: usize,
    pub target: usize,
    /// Leases beyond `workers × maxLeasesForWorker`: nobody will process them.
    pub spillover: usize,
    pub expired: usize,
    pub very_old: usize,
}

impl TakerSettings {
    fn is_expired(&self, o: &Observation, now: Instant) -> bool {
        o.owner.is_none() || now.saturating_duration_since(o.last_change) > self.failover
    }

    fn is_very_old(&self, o: &Observation, now: Instant) -> bool {
        o.never_renewed || now.saturating_duration_since(o.last_change) > self.failover * 3
    }
}

/// Decides what `me` (holding `held`) takes this cycle.
pub fn plan(
    observations: &Observations,
    held: &HashSet<String>,
    me: &str,
    settings: &TakerSettings,
    now: Instant,
    rng: &mut impl rand::Rng,
) -> TakePlan {
    let live: Vec<(&String, &Observation)> = observations
        .leases
        .iter()
        .filter(|(_, o)| !o.finished)
        .collect();
    let total = live.len();

    // Available: unowned, or expired in this worker's eyes, and not held by us. A lease the
    // table says is ours but this process does not hold (a restarted LeaseManager) is available.
    let mut available: Vec<(&String, &Observation)> = live
        .iter()
        .copied()
        .filter(|(k, o)| {
            !held.contains(*k) && (settings.is_expired(o, now) || o.owner.as_deref() == Some(me))
        })
        .collect();
    let expired = available.len();

    let mut counts: HashMap<&str, usize> = HashMap::new();
    counts.insert(me, held.len());
    for (k, o) in &live {
        if held.contains(*k) {
            continue;
        }
        if let Some(owner) = o.owner.as_deref() {
            if owner != me && !settings.is_expired(o, now) {
                *counts.entry(owner).or_default() += 1;
            }
        }
    }
    let num_workers = counts.len();
    let uncapped = if num_workers >= total {
        total.min(1)
    } else {
        total.div_ceil(num_workers)
    };
    let target = settings
        .max_leases_for_worker
        .map_or(uncapped, |m| uncapped.min(m));
    let spillover = settings
        .max_leases_for_worker
        .map_or(0, |m| total.saturating_sub(m.saturating_mul(num_workers)));
    let mine = held.len();
    let very_old = available
        .iter()
        .filter(|(_, o)| settings.is_very_old(o, now))
        .count();

    let mut result = TakePlan {
        take: vec![],
        num_workers,
        total_leases: total,
        target,
        spillover,
        expired,
        very_old,
    };
    let needed = target.saturating_sub(mine);
    if needed == 0 {
        return result;
    }

    if !available.is_empty() {
        // Very old first, random within each group, so that simultaneous takers spread out.
        available.shuffle(rng);
        available.sort_by_key(|(_, o)| !settings.is_very_old(o, now));
        result.take = available
            .into_iter()
            .take(needed)
            .map(|(k, o)| Candidate {
                key: k.clone(),
                counter: o.counter,
                owner: o.owner.clone(),
                stolen: false,
            })
            .collect();
        return result;
    }

    // Steal: nothing is free and we are below target.
    let mut donors: Vec<(&str, usize)> = counts
        .iter()
        .filter(|(w, _)| **w != me)
        .map(|(w, c)| (*w, *c))
        .collect();
    donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let cap = settings
        .max_leases_to_steal_at_one_time
        .unwrap_or(usize::MAX);
    let mut budget = needed.min(cap);
    for (donor, count) in donors {
        if budget == 0 {
            break;
        }
        // Above target: down to the target. At target: one lease, and only when we need more
        // than one (taking one from a worker at target when we need exactly one would just move
        // the imbalance around: ⌈S/W⌉ and ⌊S/W⌋ are both balanced).
        let n = if count > target {
            (count - target).min(budget)
        } else if count == target && needed > 1 && result.take.is_empty() {
            1
        } else {
            0
        };
        if n == 0 {
            continue;
        }
        let mut theirs: Vec<(&String, &Observation)> = live
            .iter()
            .copied()
            .filter(|(_, o)| o.owner.as_deref() == Some(donor) && !settings.is_expired(o, now))
            .collect();
        theirs.shuffle(rng);
        for (k, o) in theirs.into_iter().take(n) {
            result.take.push(Candidate {
                key: k.clone(),
                counter: o.counter,
                owner: o.owner.clone(),
                stolen: true,
            });
            budget -= 1;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease_manager::lease::Checkpoint;
    use rand::SeedableRng;

    fn lease(key: &str, owner: Option<&str>, counter: u64) -> Lease {
        let mut l = Lease::new(key, Checkpoint::TrimHorizon);
        l.owner = owner.map(str::to_owned);
        l.counter = counter;
        l
    }

    fn settings() -> TakerSettings {
        TakerSettings {
            failover: Duration::from_secs(10),
            max_leases_for_worker: None,
            max_leases_to_steal_at_one_time: None,
        }
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn a_lone_worker_takes_every_new_lease() {
        let now = Instant::now();
        let mut obs = Observations::default();
        obs.observe(
            &(0..4)
                .map(|i| lease(&format!("s{i}"), None, 0))
                .collect::<Vec<_>>(),
            now,
        );
        let p = plan(&obs, &HashSet::new(), "me", &settings(), now, &mut rng());
        assert_eq!(p.take.len(), 4);
        assert_eq!((p.num_workers, p.target, p.very_old), (1, 4, 4));
    }

    #[test]
    fn owned_leases_expire_only_after_failover_without_counter_change() {
        let t0 = Instant::now();
        let mut obs = Observations::default();
        obs.observe(&[lease("s0", Some("other"), 5)], t0);
        let s = settings();
        let held = HashSet::new();
        // Just seen: assumed alive; `other` is at target 1, we need 1: no steal from a worker at target.
        assert!(
            plan(
                &obs,
                &held,
                "me",
                &s,
                t0 + Duration::from_secs(9),
                &mut rng()
            )
            .take
            .is_empty()
        );
        // Renewed in between: the clock restarts.
        obs.observe(
            &[lease("s0", Some("other"), 6)],
            t0 + Duration::from_secs(9),
        );
        assert!(
            plan(
                &obs,
                &held,
                "me",
                &s,
                t0 + Duration::from_secs(15),
                &mut rng()
            )
            .take
            .is_empty()
        );
        // Unchanged for more than failover: expired, taken.
        obs.observe(
            &[lease("s0", Some("other"), 6)],
            t0 + Duration::from_secs(19),
        );
        let p = plan(
            &obs,
            &held,
            "me",
            &s,
            t0 + Duration::from_secs(20),
            &mut rng(),
        );
        assert_eq!(p.take.len(), 1);
        assert_eq!(p.take[0].counter, 6);
        assert!(!p.take[0].stolen);
    }

    #[test]
    fn a_new_worker_steals_its_share_in_one_cycle_from_the_most_loaded() {
        let now = Instant::now();
        let mut leases = vec![];
        for i in 0..6 {
            leases.push(lease(&format!("a{i}"), Some("a"), 1));
        }
        for i in 0..2 {
            leases.push(lease(&format!("b{i}"), Some("b"), 1));
        }
        let mut obs = Observations::default();
        obs.observe(&leases, now);
        let p = plan(&obs, &HashSet::new(), "me", &settings(), now, &mut rng());
        // 8 leases, 3 workers: target 3; `a` has 3 too many, `b` is below target.
        assert_eq!(p.target, 3);
        assert_eq!(p.take.len(), 3);
        assert!(
            p.take
                .iter()
                .all(|c| c.stolen && c.owner.as_deref() == Some("a"))
        );
        let capped = TakerSettings {
            max_leases_to_steal_at_one_time: Some(1),
            ..settings()
        };
        assert_eq!(
            plan(&obs, &HashSet::new(), "me", &capped, now, &mut rng())
                .take
                .len(),
            1
        );
    }

    #[test]
    fn balanced_counts_are_left_alone() {
        let now = Instant::now();
        let mut leases = vec![];
        for (w, n) in [("a", 3), ("b", 3)] {
            for i in 0..n {
                leases.push(lease(&format!("{w}{i}"), Some(w), 1));
            }
        }
        leases.push(lease("m0", Some("me"), 1));
        leases.push(lease("m1", Some("me"), 1));
        let mut obs = Observations::default();
        obs.observe(&leases, now);
        let held: HashSet<String> = ["m0".to_owned(), "m1".to_owned()].into();
        let p = plan(&obs, &held, "me", &settings(), now, &mut rng());
        assert_eq!(p.target, 3);
        assert!(p.take.is_empty(), "3/3/2 is balanced: {p:?}");
    }

    #[test]
    fn max_leases_for_worker_caps_and_reports_spillover() {
        let now = Instant::now();
        let mut obs = Observations::default();
        obs.observe(
            &(0..5)
                .map(|i| lease(&format!("s{i}"), None, 0))
                .collect::<Vec<_>>(),
            now,
        );
        let s = TakerSettings {
            max_leases_for_worker: Some(3),
            ..settings()
        };
        let p = plan(&obs, &HashSet::new(), "me", &s, now, &mut rng());
        assert_eq!((p.take.len(), p.spillover), (3, 2));
    }

    #[test]
    fn finished_leases_occupy_nobody() {
        let now = Instant::now();
        let mut done = lease("parent", None, 3);
        done.checkpoint = Checkpoint::ShardEnd;
        let mut obs = Observations::default();
        obs.observe(&[done, lease("child", None, 0)], now);
        let p = plan(&obs, &HashSet::new(), "me", &settings(), now, &mut rng());
        assert_eq!(p.total_leases, 1);
        assert_eq!(
            p.take.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            vec!["child"]
        );
    }
}
