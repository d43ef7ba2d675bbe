//! The consumer with dedup on: each command is claimed before its first attempt and its claim
//! finished with its outcome; a finished claim makes a `duplicate`; a claim another claimer
//! holds is waited for while that claimer holds its lease, and taken over once it has been gone
//! for longer than an attempt can last.

use super::*;
use crate::claims::ClaimRow;
use crate::claims::{ClaimState, Claimer, MemoryClaimTable};

/// Records 1, 2 and 3 are one command written three times (a producer's retries).
fn same(_: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(7)
}

fn other_claimer() -> Claimer {
    Claimer { owner: "other".into(), tenure: 1, shard: "shardId-000000000001".into(), sequence_number: "9".into() }
}

#[actix_rt::test]
async fn a_command_written_three_times_is_actioned_once() {
    let claims = MemoryClaimTable::default();
    // One partition key: one at a time, in order.
    let shard = Arc::new(Shard::with(3, |_| "k".into()));
    let (consumer, seen) = start_claiming(shard, Checkpoint::TrimHorizon, 10, Some(&claims), same);
    until("the first at the responder", || waiting(&seen) == 1).await;
    answer(&seen, 1).await;
    until("all three have an outcome", || reported(&seen).last().map(String::as_str) == Some("3")).await;
    let s = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!((s.counters.outcome(Outcome::Done), s.counters.outcome(Outcome::Duplicate)), (1, 2));
    assert_eq!(seen.lock().expect("lock").fences.len(), 1, "only the first reached the responder");
    let row = claims.row(&same(0).to_string()).expect("claimed");
    assert_eq!((row.state, row.by.sequence_number.as_str()), (ClaimState::Done, "1"));
}

#[actix_rt::test]
async fn a_command_claimed_by_a_live_claimer_waits_for_it_and_is_not_actioned_again() {
    let claims = MemoryClaimTable::default();
    let id = distinct(1).to_string();
    let row = |state| ClaimRow { state, by: other_claimer(), detail: "HTTP 200".into(), attempts: 1, expires_at: 0 };
    claims.put(&id, row(ClaimState::Claimed));
    let shard = Arc::new(Shard::with(1, |_| "k".into()));
    let (consumer, seen) = start_claiming(shard, Checkpoint::TrimHorizon, 10, Some(&claims), distinct);
    // The other claimer holds its lease, longer than the stale time: it is at it.
    seen.lock().expect("lock").lease_owner = Some("other".into());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(seen.lock().expect("lock").fences.is_empty(), "not actioned while the other claimer is at it");
    claims.put(&id, row(ClaimState::Done));
    until("an outcome", || reported(&seen).last().map(String::as_str) == Some("1")).await;
    let s = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(s.counters.outcome(Outcome::Duplicate), 1);
    assert!(seen.lock().expect("lock").fences.is_empty(), "never sent to the responder");
}

#[actix_rt::test]
async fn the_claim_of_a_claimer_gone_longer_than_an_attempt_lasts_is_taken_over_as_a_possible_duplicate() {
    let claims = MemoryClaimTable::default();
    let id = distinct(1).to_string();
    let crashed =
        ClaimRow { state: ClaimState::Claimed, by: other_claimer(), detail: String::new(), attempts: 0, expires_at: 0 };
    claims.put(&id, crashed);
    let started = Instant::now();
    let shard = Arc::new(Shard::with(1, |_| "k".into()));
    // Nobody holds the other claimer's lease any more (it crashed).
    let (_consumer, seen) = start_claiming(shard, Checkpoint::TrimHorizon, 10, Some(&claims), distinct);
    until("the command at the responder", || waiting(&seen) == 1).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "only after the stale time: {:?}", started.elapsed());
    let row = claims.row(&id).expect("row");
    assert_eq!((row.state, row.by.owner.as_str()), (ClaimState::Claimed, "me"), "taken over");
    answer(&seen, 1).await;
    until("the claim finished", || claims.row(&id).is_some_and(|r| r.state == ClaimState::Done)).await;
}
