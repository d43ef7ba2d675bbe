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
//! - A steal is a request: the owner is asked to hand the lease over (finish its commands in
//!   flight, checkpoint, release) instead of having it pulled away mid-command, which is what
//!   makes the KCL's stealing action commands twice (awslabs/amazon-kinesis-client#265).
//! - Finished leases (SHARD_END) are neither counted nor taken: they occupy no worker.
//! - A lease left free for half the failover time (nobody below its share took it: its last
//!   owner handed it over and may not take it back) is taken by a worker at its share, one per
//!   cycle, so that no shard is stranded; balancing evens the counts out afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::row::Lease;

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
    /// Who asked its owner to hand it over, if anyone.
    pub handoff: Option<String>,
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
                    Observation { finished: lease.is_finished(), handoff: lease.handoff_requested.clone(), ..prev }
                }
                Some(prev) => Observation {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    last_change: now,
                    finished: lease.is_finished(),
                    never_renewed: prev.never_renewed && lease.owner.is_none(),
                    handoff: lease.handoff_requested.clone(),
                },
                None => Observation {
                    counter: lease.counter,
                    owner: lease.owner.clone(),
                    last_change: now,
                    finished: lease.is_finished(),
                    never_renewed: lease.owner.is_none(),
                    handoff: lease.handoff_requested.clone(),
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
    /// Unowned, or its counter not seen to change for the failover time.
    pub fn is_expired(&self, o: &Observation, now: Instant) -> bool {
        o.owner.is_none() || now.saturating_duration_since(o.last_change) > self.failover
    }

    /// Free (no owner) and untouched for half the failover time: several discovery cycles of
    /// every worker have passed without anyone below its share taking it.
    fn is_stranded(&self, o: &Observation, now: Instant) -> bool {
        o.owner.is_none() && now.saturating_duration_since(o.last_change) >= self.failover / 2
    }

    fn is_very_old(&self, o: &Observation, now: Instant) -> bool {
        o.never_renewed || now.saturating_duration_since(o.last_change) > self.failover * 3
    }
}

/// What this worker holds, or has asked for.
#[derive(Debug, Clone, Copy)]
pub struct OwnLeases<'a> {
    pub held: &'a HashSet<String>,
    /// Leases whose owners it asked to hand them over, not released yet.
    pub requested: &'a HashSet<String>,
    /// Leases it must not take back yet (it has just handed them over).
    pub excluded: &'a HashSet<String>,
    /// Leases whose owners did not answer a handoff request: not asked again for now.
    pub unanswered: &'a HashSet<String>,
}

/// Decides what `me` takes (and, if `allow_steal`, asks others to hand over) this cycle.
pub fn plan(
    observations: &Observations,
    own: OwnLeases<'_>,
    me: &str,
    settings: &TakerSettings,
    now: Instant,
    allow_steal: bool,
    rng: &mut impl rand::Rng,
) -> TakePlan {
    let live: Vec<(&String, &Observation)> = observations.leases.iter().filter(|(_, o)| !o.finished).collect();
    let total = live.len();

    // Available: unowned, or expired in this worker's eyes, and not held by us. A lease the
    // table says is ours but this process does not hold (a restarted LeaseManager) is available.
    let available: Vec<(&String, &Observation)> = live
        .iter()
        .copied()
        .filter(|(k, o)| {
            !own.held.contains(*k)
                && !own.excluded.contains(*k)
                && (settings.is_expired(o, now) || o.owner.as_deref() == Some(me))
        })
        .collect();
    let expired = available.len();
    let view = View { live: &live, own, me, settings, now };
    let counts = worker_counts(&view);
    let num_workers = counts.len();
    let uncapped = if num_workers >= total { total.min(1) } else { total.div_ceil(num_workers) };
    let target = settings.max_leases_for_worker.map_or(uncapped, |m| uncapped.min(m));
    let spillover = settings.max_leases_for_worker.map_or(0, |m| total.saturating_sub(m.saturating_mul(num_workers)));
    let very_old = available.iter().filter(|(_, o)| settings.is_very_old(o, now)).count();
    let mut result = TakePlan { take: vec![], num_workers, total_leases: total, target, spillover, expired, very_old };

    // Leases the table says are ours but this process does not hold (handed to us by a worker
    // we asked, or held by this worker before its LeaseManager restarted) are adopted first,
    // whatever the counts.
    let (adopt, mut available): (Vec<_>, Vec<_>) =
        available.into_iter().partition(|(_, o)| o.owner.as_deref() == Some(me));
    result.take = adopt.into_iter().map(|(k, o)| candidate(k, o, false)).collect();
    let requested_here = own.requested.iter().filter(|k| !own.held.contains(*k)).count();
    let my_count = own.held.len() + requested_here + result.take.len();

    let needed = target.saturating_sub(my_count);
    if needed == 0 {
        // A lease left free for a while is wanted by nobody below its share (the one who gave
        // it up may not take it back): whoever has room takes it, so it is never stranded.
        let room = settings.max_leases_for_worker.unwrap_or(usize::MAX).saturating_sub(my_count);
        let mut stranded: Vec<_> = available.into_iter().filter(|(_, o)| settings.is_stranded(o, now)).collect();
        stranded.shuffle(rng);
        result.take.extend(stranded.into_iter().take(room.min(1)).map(|(k, o)| {
            let mut c = candidate(k, o, false);
            c.owner = None;
            c
        }));
        return result;
    }
    if !available.is_empty() {
        // Very old first, random within each group, so that simultaneous takers spread out.
        available.shuffle(rng);
        available.sort_by_key(|(_, o)| !settings.is_very_old(o, now));
        result.take.extend(available.into_iter().take(needed).map(|(k, o)| candidate(k, o, false)));
        return result;
    }
    if allow_steal {
        // Nothing is free and we are below target.
        let floor = total.checked_div(num_workers).unwrap_or(total);
        let shares = Shares { target, floor, needed };
        result.take.extend(steal(&view, &counts, shares, rng));
    }
    result
}

/// What one take cycle looks at.
#[derive(Clone, Copy)]
struct View<'a> {
    /// Leases that are not finished.
    live: &'a [(&'a String, &'a Observation)],
    own: OwnLeases<'a>,
    me: &'a str,
    settings: &'a TakerSettings,
    now: Instant,
}

fn candidate(key: &str, o: &Observation, stolen: bool) -> Candidate {
    Candidate { key: key.to_owned(), counter: o.counter, owner: o.owner.clone(), stolen }
}

/// How many leases each live worker holds, this one included. A live lease counts for its
/// owner, or, when another worker asked for it, for that worker: it is on its way there. That
/// also makes a worker that holds nothing yet but has asked for leases visible, so that
/// everybody's target accounts for it. Requested leases count as ours, not as their owner's.
fn worker_counts<'a>(view: &View<'a>) -> HashMap<&'a str, usize> {
    let View { live, own, me, settings, now } = *view;
    let requested_here = own.requested.iter().filter(|k| !own.held.contains(*k)).count();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    counts.insert(me, own.held.len() + requested_here);
    for (k, o) in live {
        if own.held.contains(*k) || own.requested.contains(*k) {
            continue;
        }
        let Some(owner) = o.owner.as_deref() else { continue };
        if owner == me || settings.is_expired(o, now) {
            continue;
        }
        match o.handoff.as_deref() {
            Some(by) if by == me => {}
            Some(by) if !by.starts_with(super::OPERATOR) => *counts.entry(by).or_default() += 1,
            Some(_) => {}
            None => *counts.entry(owner).or_default() += 1,
        }
    }
    counts
}

/// The numbers stealing works from: ⌈S/W⌉ (capped), ⌊S/W⌋, and how many this worker lacks.
#[derive(Debug, Clone, Copy)]
struct Shares {
    target: usize,
    floor: usize,
    needed: usize,
}

/// Handoff requests to the most loaded workers, each down to the target and no further.
fn steal(view: &View<'_>, counts: &HashMap<&str, usize>, shares: Shares, rng: &mut impl rand::Rng) -> Vec<Candidate> {
    let View { live, own, me, settings, now } = *view;
    let mut donors: Vec<(&str, usize)> = counts.iter().filter(|(w, _)| **w != me).map(|(w, c)| (*w, *c)).collect();
    donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut budget = shares.needed.min(settings.max_leases_to_steal_at_one_time.unwrap_or(usize::MAX));
    let mut out = vec![];
    for (donor, count) in donors {
        if budget == 0 {
            break;
        }
        // Above target (⌈S/W⌉): down to the target. At the target, when ⌈S/W⌉ > ⌊S/W⌋: one
        // lease, which leaves it balanced at ⌊S/W⌋, and only while we need more than one
        // (taking one to end at the target ourselves would just move the imbalance around).
        let n = if count > shares.target {
            (count - shares.target).min(budget)
        } else if count == shares.target && shares.target > shares.floor && shares.needed > 1 {
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
            .filter(|(k, o)| {
                o.owner.as_deref() == Some(donor)
                    && o.handoff.is_none()
                    && !settings.is_expired(o, now)
                    && !own.requested.contains(*k)
                    && !own.excluded.contains(*k)
                    && !own.unanswered.contains(*k)
            })
            .collect();
        theirs.shuffle(rng);
        for (k, o) in theirs.into_iter().take(n) {
            out.push(candidate(k, o, true));
            budget -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Checkpoint;
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

    fn run(obs: &Observations, held: &HashSet<String>, s: &TakerSettings, now: Instant) -> TakePlan {
        let none = HashSet::new();
        let own = OwnLeases { held, requested: &none, excluded: &none, unanswered: &none };
        plan(obs, own, "me", s, now, true, &mut rng())
    }

    #[test]
    fn a_lone_worker_takes_every_new_lease() {
        let now = Instant::now();
        let mut obs = Observations::default();
        obs.observe(&(0..4).map(|i| lease(&format!("s{i}"), None, 0)).collect::<Vec<_>>(), now);
        let p = run(&obs, &HashSet::new(), &settings(), now);
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
        assert!(run(&obs, &held, &s, t0 + Duration::from_secs(9)).take.is_empty());
        // Renewed in between: the clock restarts.
        obs.observe(&[lease("s0", Some("other"), 6)], t0 + Duration::from_secs(9));
        assert!(run(&obs, &held, &s, t0 + Duration::from_secs(15)).take.is_empty());
        // Unchanged for more than failover: expired, taken.
        obs.observe(&[lease("s0", Some("other"), 6)], t0 + Duration::from_secs(19));
        let p = run(&obs, &held, &s, t0 + Duration::from_secs(20));
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
        let p = run(&obs, &HashSet::new(), &settings(), now);
        // 8 leases, 3 workers: target 3; `a` has 3 too many, `b` is below target.
        assert_eq!(p.target, 3);
        assert_eq!(p.take.len(), 3);
        assert!(p.take.iter().all(|c| c.stolen && c.owner.as_deref() == Some("a")));
        let capped = TakerSettings { max_leases_to_steal_at_one_time: Some(1), ..settings() };
        assert_eq!(run(&obs, &HashSet::new(), &capped, now).take.len(), 1);
    }

    #[test]
    fn pending_requests_count_as_ours_and_are_not_asked_again() {
        let now = Instant::now();
        let leases: Vec<Lease> = (0..6).map(|i| lease(&format!("a{i}"), Some("a"), 1)).collect();
        let mut obs = Observations::default();
        obs.observe(&leases, now);
        let requested: HashSet<String> = ["a0".to_owned(), "a1".to_owned()].into();
        let none = HashSet::new();
        let own = OwnLeases { held: &none, requested: &requested, excluded: &none, unanswered: &none };
        let p = plan(&obs, own, "me", &settings(), now, true, &mut rng());
        // 6 leases, 2 workers: target 3; two are on their way, so one more, not a0 or a1.
        assert_eq!(p.take.len(), 1);
        assert!(!requested.contains(&p.take[0].key));
        let p = plan(&obs, own, "me", &settings(), now, false, &mut rng());
        assert!(p.take.is_empty(), "no steal outside take cycles");
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
        let p = run(&obs, &held, &settings(), now);
        assert_eq!(p.target, 3);
        assert!(p.take.is_empty(), "3/3/2 is balanced: {p:?}");
    }

    #[test]
    fn max_leases_for_worker_caps_and_reports_spillover() {
        let now = Instant::now();
        let mut obs = Observations::default();
        obs.observe(&(0..5).map(|i| lease(&format!("s{i}"), None, 0)).collect::<Vec<_>>(), now);
        let s = TakerSettings { max_leases_for_worker: Some(3), ..settings() };
        let p = run(&obs, &HashSet::new(), &s, now);
        assert_eq!((p.take.len(), p.spillover), (3, 2));
    }

    #[test]
    fn a_stranded_free_lease_is_taken_by_a_worker_at_its_share() {
        let t0 = Instant::now();
        let mut leases = vec![lease("m0", Some("me"), 1), lease("free", None, 9)];
        leases.push(lease("o0", Some("other"), 1));
        let mut obs = Observations::default();
        obs.observe(&leases, t0);
        let held: HashSet<String> = ["m0".to_owned()].into();
        // 3 leases, 2 workers: target 2, we hold 1... make us at target by holding 2.
        let held2: HashSet<String> = ["m0".to_owned(), "x".to_owned()].into();
        assert_eq!(run(&obs, &held, &settings(), t0).take.len(), 1, "below target: taken at once");
        assert!(run(&obs, &held2, &settings(), t0).take.is_empty(), "at target: not yet");
        obs.observe(&leases, t0 + Duration::from_secs(4));
        assert!(run(&obs, &held2, &settings(), t0 + Duration::from_secs(4)).take.is_empty());
        obs.observe(&leases, t0 + Duration::from_secs(6));
        let p = run(&obs, &held2, &settings(), t0 + Duration::from_secs(6));
        assert_eq!(p.take.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["free"], "stranded: taken");
    }

    #[test]
    fn finished_leases_occupy_nobody() {
        let now = Instant::now();
        let mut done = lease("parent", None, 3);
        done.checkpoint = Checkpoint::ShardEnd;
        let mut obs = Observations::default();
        obs.observe(&[done, lease("child", None, 0)], now);
        let p = run(&obs, &HashSet::new(), &settings(), now);
        assert_eq!(p.total_leases, 1);
        assert_eq!(p.take.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), vec!["child"]);
    }
}
