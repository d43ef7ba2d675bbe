//! The LeaseManager at the edges: a shutdown racing a take, a batch of takes longer than the
//! failover time, an owner that never answers a handoff request and then dies, the start of a
//! LATEST shard, and the change signal that lets a released lease be taken at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

#[actix_rt::test]
async fn a_lease_taken_while_shutting_down_is_released_not_stranded() {
    let table = MemoryLeaseTable::new("t");
    table.set_call_latency(TableCall::Take, Duration::from_millis(300));
    let (lm, seen) = start(&table);
    // The first scan's take is out for 300 ms; the shutdown comes in the middle of it.
    until("the take is out", Duration::from_secs(3), || table.row(SHARD).is_some()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    lm.send(ReleaseAll).await.expect("released");
    until("the late take is given back", Duration::from_secs(3), || {
        table.row(SHARD).is_some_and(|l| l.owner.is_none() && l.counter >= 2)
    })
    .await;
    assert!(all_acquired(&seen).is_empty(), "no consumer is started for it");
}

#[actix_rt::test]
async fn a_worker_leaving_has_moved_the_change_signal_after_its_last_release_when_it_goes() {
    let table = MemoryLeaseTable::new("t");
    for n in 0..3 {
        table.put(Lease::new(shard(n).id, Checkpoint::TrimHorizon));
    }
    let (lm, seen) = start_with(&table, "me", 3, |_| {});
    until("3 leases taken", Duration::from_secs(5), || all_acquired(&seen).len() == 3).await;
    // Calls on shard 0's row take 200 ms and the signal's 1 s. The shutdown comes while a
    // renewal of shard 0 is out, so its release goes out after the others' releases have moved
    // the signal, and the bump it asks for waits behind theirs. A process that exited when the
    // last release was answered would leave the others to find shard 0 free at their next
    // regular scan, seconds later.
    let slow = shard(0).id;
    table.set_key_latency(&slow, Duration::from_millis(200));
    table.set_call_latency(TableCall::Signal, Duration::from_secs(1));
    let renewing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let at_releases: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (watched, record, flag, key) = (table.clone(), at_releases.clone(), renewing.clone(), slow.clone());
    table.inject_faults(Arc::new(move |call, k| {
        match call {
            TableCall::Renew if k == key => flag.store(true, std::sync::atomic::Ordering::Release),
            // The signal's value as each release is applied.
            TableCall::Release => record.lock().expect("lock").push(watched.signal_value()),
            _ => {}
        }
        None
    }));
    until("a renewal of shard 0 is out", Duration::from_secs(5), || {
        renewing.load(std::sync::atomic::Ordering::Acquire)
    })
    .await;
    lm.send(ReleaseAll).await.expect("released");
    assert!((0..3).all(|n| table.row(&shard(n).id).is_some_and(|l| l.owner.is_none())), "every lease released");
    let seen_at_releases = at_releases.lock().expect("lock").clone();
    let last_release = seen_at_releases.iter().copied().max().expect("releases seen");
    assert!(
        table.signal_value() > last_release,
        "the signal moved after the last release (values at the releases: {seen_at_releases:?}, now {})",
        table.signal_value()
    );
}

#[actix_rt::test]
async fn a_big_take_batch_hands_over_each_lease_with_a_live_deadline() {
    let table = MemoryLeaseTable::new("t");
    for n in 0..100 {
        table.put(Lease::new(shard(n).id, Checkpoint::TrimHorizon));
    }
    // 100 leases, every call 30 ms: one after the other, the takes (and their read-backs)
    // would take 6 s, four times the failover time.
    table.set_latency(Duration::from_millis(30));
    let started = Instant::now();
    let (_lm, seen) = start_with(&table, "me", 100, |_| {});
    until("100 leases taken", Duration::from_secs(10), || all_acquired(&seen).len() == 100).await;
    let took = started.elapsed();
    let valid = seen.valid_on_arrival.lock().expect("lock").clone();
    println!("100 leases taken in {took:?} (failover 1.5 s)");
    assert!(valid.iter().all(|v| *v), "every lease arrived with a live deadline: {valid:?}");
    assert!(took < Duration::from_millis(1500), "taken within the failover time: {took:?}");
}

/// Renews `key` as a foreign (KCL) worker would, ignoring handoff requests, until stopped.
fn foreign_owner(table: &MemoryLeaseTable, keys: &[&str], alive: Arc<Mutex<bool>>) {
    for key in keys {
        table.put({
            let mut l = Lease::new(*key, Checkpoint::TrimHorizon);
            l.owner = Some("kcl-worker".into());
            l.counter = 1;
            l
        });
    }
    let (table, keys) = (table.clone(), keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
    actix_rt::spawn(async move {
        while *alive.lock().expect("lock") {
            for key in &keys {
                table.update(key, |l| l.counter += 1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[actix_rt::test]
async fn a_request_a_foreign_owner_never_answers_is_withdrawn_and_its_leases_taken_when_it_dies() {
    let table = MemoryLeaseTable::new("t");
    let alive = Arc::new(Mutex::new(true));
    let keys = ["shardId-000000000000", "shardId-000000000001"];
    foreign_owner(&table, &keys, alive.clone());
    let (_lm, seen) = start_with(&table, "me", 2, |_| {});
    // Below its share (1 of 2), it asks the owner to hand one over...
    let requested = || keys.iter().any(|k| table.row(k).is_some_and(|l| l.handoff_requested.as_deref() == Some("me")));
    until("a handoff request", Duration::from_secs(3), requested).await;
    // ...which a KCL worker never accepts: withdrawn after the failover time, and that lease
    // is not asked for again for a while (here each of the two is asked once).
    let mut asked = std::collections::BTreeSet::new();
    let quiet_since = {
        let start = Instant::now();
        let mut quiet_since = None;
        while start.elapsed() < Duration::from_secs(8) {
            for k in keys {
                if table.row(k).is_some_and(|l| l.handoff_requested.is_some()) {
                    asked.insert(k);
                    quiet_since = None;
                }
            }
            if asked.len() == 2 && quiet_since.is_none() && !requested() {
                quiet_since = Some(Instant::now());
            }
            if quiet_since.is_some_and(|t| t.elapsed() > Duration::from_millis(1500)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        quiet_since
    };
    assert!(quiet_since.is_some(), "both requests withdrawn and not made again: asked {asked:?}");
    assert!(all_acquired(&seen).is_empty());

    // The foreign worker dies: both leases are taken one failover time after its last renewal.
    *alive.lock().expect("lock") = false;
    let died = Instant::now();
    until("both leases taken", Duration::from_secs(6), || all_acquired(&seen).len() == 2).await;
    let took = died.elapsed();
    println!("the leases of a dead foreign owner were taken {took:?} after it died (failover 1.5 s)");
    assert!(took < Duration::from_millis(1500 + 800), "{took:?}");
}

#[actix_rt::test]
async fn a_pending_request_does_not_delay_taking_the_lease_of_an_owner_that_died() {
    let table = MemoryLeaseTable::new("t");
    let alive = Arc::new(Mutex::new(true));
    let keys = ["shardId-000000000000", "shardId-000000000001"];
    foreign_owner(&table, &keys, alive.clone());
    let (_lm, seen) = start_with(&table, "me", 2, |_| {});
    let requested = || keys.iter().any(|k| table.row(k).is_some_and(|l| l.handoff_requested.as_deref() == Some("me")));
    until("a handoff request", Duration::from_secs(3), requested).await;
    // The owner dies while the request is pending.
    *alive.lock().expect("lock") = false;
    let died = Instant::now();
    until("both leases taken", Duration::from_secs(6), || all_acquired(&seen).len() == 2).await;
    let took = died.elapsed();
    println!("taken {took:?} after the owner died, a request pending (failover 1.5 s)");
    assert!(took < Duration::from_millis(1500 + 800), "not 3 x failover: {took:?}");
}

#[actix_rt::test]
async fn a_latest_shard_remembers_where_it_was_first_read() {
    let table = MemoryLeaseTable::new("t");
    let (lm, seen) = start_with(&table, "me", 1, |s| s.initial_position = Checkpoint::Latest);
    until("the lease is taken", Duration::from_secs(3), || acquired(&seen).is_some()).await;
    let lease = acquired(&seen).expect("acquired");
    let pin = |at| PinLatestStart { shard: lease.shard.clone(), tenure: lease.tenure, at };
    assert_eq!(lm.send(pin(1_000)).await.expect("answer"), Ok(LatestStart::Pinned), "the first reader");
    assert_eq!(table.row(SHARD).and_then(|l| l.latest_started_at), Some(1_000));
    assert_eq!(lm.send(pin(2_000)).await.expect("answer"), Ok(LatestStart::Since(1_000)), "a restarted reader");

    // The next owner (here: a new LeaseManager after this one stopped) resumes there too.
    lm.send(crate::supervision::Stop).await.expect("stopped");
    let (lm, seen) = start_with(&table, "me", 1, |s| s.initial_position = Checkpoint::Latest);
    until("the lease is taken again", Duration::from_secs(3), || acquired(&seen).is_some()).await;
    let lease = acquired(&seen).expect("acquired");
    let pin = PinLatestStart { shard: lease.shard.clone(), tenure: lease.tenure, at: 3_000 };
    assert_eq!(lm.send(pin).await.expect("answer"), Ok(LatestStart::Since(1_000)));
}

#[actix_rt::test]
async fn released_leases_are_taken_by_another_worker_at_once_not_at_its_next_scan() {
    let table = MemoryLeaseTable::new("t");
    let slow_scans = |s: &mut LeaseManagerSettings| {
        s.leases.discovery_interval = Duration::from_secs(5);
        s.leases.take_interval = Duration::from_secs(10);
    };
    let (a, seen_a) = start_with(&table, "a", 2, slow_scans);
    until("a holds both", Duration::from_secs(3), || all_acquired(&seen_a).len() == 2).await;
    let (_b, seen_b) = start_with(&table, "b", 2, slow_scans);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    a.send(ReleaseAll).await.expect("released");
    until("b holds both", Duration::from_secs(6), || all_acquired(&seen_b).len() == 2).await;
    let took = released.elapsed();
    println!("released leases taken by the other worker {took:?} after the release (its scans 5 s apart)");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[actix_rt::test]
async fn a_leaving_worker_withdraws_its_requests_so_no_lease_is_handed_to_it() {
    let table = MemoryLeaseTable::new("t");
    let (a, seen_a) = start_with(&table, "a", 2, |_| {});
    until("a holds both", Duration::from_secs(3), || all_acquired(&seen_a).len() == 2).await;
    let (b, _seen_b) = start_with(&table, "b", 2, |_| {});
    let requested = |l: &Lease| l.handoff_requested.as_deref() == Some("b");
    let asked = || (0..2).map(|n| shard(n).id).find(|k| table.row(k).is_some_and(|l| requested(&l)));
    until("b asks a for one", Duration::from_secs(3), || asked().is_some()).await;
    let key = asked().expect("asked");
    // b leaves before a answers (a's Supervisor here never drains on its own).
    b.send(ReleaseAll).await.expect("b left");
    assert!(table.row(&key).is_some_and(|l| l.handoff_requested.is_none()), "the request is withdrawn");
    // a now hands over as it would after its drain: the asker is gone, so to nobody.
    let tenure = all_acquired(&seen_a).into_iter().find(|l| *l.shard == *key).expect("a holds it").tenure;
    assert!(a.send(Release { shard: Arc::from(key.as_str()), tenure }).await.expect("answer"));
    let row = table.row(&key).expect("row");
    assert_eq!(row.owner, None, "free for whoever takes it, not given to a departed worker");
}
