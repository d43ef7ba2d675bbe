//! The consumer at the edges: the in-flight bound holds while reading (and reading ahead), nothing is dispatched
//! after a freeze, a stopped consumer's commands are fenced, an abandoned command keeps the
//! watermark back, a shard past retention ends, a LATEST shard resumes where it was first read.

use super::*;

#[actix_rt::test]
async fn reading_never_exceeds_the_in_flight_bound() {
    let shard = Arc::new(Shard::with(10, |i| format!("key-{i}")));
    let (consumer, seen) = start_with(shard.clone(), Checkpoint::TrimHorizon, 3);
    until("three commands at the responder", || waiting(&seen) == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(snapshot.not_done, 3, "read only what the bound leaves room for");
    for n in 1..=10 {
        until("the command at the responder", || seen.lock().expect("lock").waiting.contains_key(&n.to_string())).await;
        answer(&seen, n).await;
        let s = crate::observe::observe(&consumer).await.expect("snapshot");
        assert!(s.not_done <= 3, "after {n}: {} without an outcome", s.not_done);
    }
    let limits = shard.limits.lock().expect("lock").clone();
    assert!(limits.iter().all(|l| *l <= 3), "GetRecords never asked for more than the room: {limits:?}");
    assert_eq!(reported(&seen).last().map(String::as_str), Some("10"));
}

#[actix_rt::test]
async fn the_next_read_goes_out_while_a_full_batch_is_classified_leaving_room_for_it() {
    let shard = Arc::new(Shard::with(300, |i| format!("key-{i}")));
    let (consumer, seen) = start_with(shard.clone(), Checkpoint::TrimHorizon, 150);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    seen.lock().expect("lock").parse_gate = Some(gate.clone());
    // Read 1 (a shard's first: 100) is full; read 2 goes out while it is classified, for the
    // 50 that the bound leaves beside it, and waits its turn; nothing more is read.
    until("two reads", || shard.limits.lock().expect("lock").len() == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*shard.limits.lock().expect("lock"), [100, 50]);
    assert_eq!(waiting(&seen), 0, "no batch is classified yet");

    gate.add_permits(1000);
    until("150 commands at the responder", || waiting(&seen) == 150).await;
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(snapshot.not_done, 150, "the bound holds");
    while reported(&seen).last().map(String::as_str) != Some("300") {
        let senders = std::mem::take(&mut seen.lock().expect("lock").waiting);
        for tx in senders.into_values() {
            let _ = tx.send(CommandResult::Ended { outcome: Outcome::Done, attempts: 1, detail: "ok".into() });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!((snapshot.counters.records_read, snapshot.counters.outcome(Outcome::Done)), (300, 300));
    let all: Vec<u64> = reported(&seen).iter().map(|s| s.parse().expect("a sequence number")).collect();
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "admitted in order, never backwards: {all:?}");
}

#[actix_rt::test]
async fn after_a_freeze_nothing_more_is_dispatched() {
    // 1 and 2 share a key (2 waits for 1); 3 has its own.
    let shard = Arc::new(Shard::with(3, |i| if i < 3 { "a".into() } else { "b".into() }));
    let (consumer, seen) = start_with(shard, Checkpoint::TrimHorizon, 10);
    until("1 and 3 at the responder", || waiting(&seen) == 2).await;
    // The drain times out (1 and 3 are slow); the Supervisor freezes the consumer before the
    // final checkpoint.
    consumer.send(Freeze).await.expect("frozen");
    let fences = seen.lock().expect("lock").fences.clone();
    assert!(fences.values().all(|f| !f.is_valid()), "the commands out are not attempted again");
    answer(&seen, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!seen.lock().expect("lock").fences.contains_key("2"), "2 is left for the next owner, not sent");
}

#[actix_rt::test]
async fn a_stopped_consumer_fences_its_commands_still_at_responders() {
    let (consumer, seen) = start(2);
    until("both commands at the responder", || waiting(&seen) == 2).await;
    let fences = seen.lock().expect("lock").fences.clone();
    assert!(fences.values().all(Fence::is_valid));
    consumer.send(crate::supervision::Stop).await.expect("stopped");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(fences.values().all(|f| !f.is_valid()), "a successor reads them again: they are not retried here");
}

#[actix_rt::test]
async fn an_abandoned_command_has_no_outcome_and_holds_the_watermark_back() {
    let (consumer, seen) = start(3);
    until("three commands at the responder", || waiting(&seen) == 3).await;
    answer(&seen, 1).await;
    answer_with(&seen, 2, CommandResult::Abandoned { attempts: 1, reason: "lease lost".into() }).await;
    answer(&seen, 3).await;
    let s = crate::observe::observe(&consumer).await.expect("snapshot");
    assert_eq!(s.counters.outcome(Outcome::Done), 2);
    assert_eq!(s.counters.outcomes.iter().sum::<u64>(), 2, "no outcome for the abandoned one (not failed)");
    assert_eq!(s.counters.abandoned, 1);
    assert_eq!(reported(&seen).last().map(String::as_str), Some("1"), "2 is not covered: its next reader actions it");
}

#[actix_rt::test]
async fn a_shard_past_the_retention_period_ends_so_its_children_start() {
    let shard = Arc::new(Shard { not_found: Some(false), ..Shard::default() });
    let (_consumer, seen) = start_with(shard, Checkpoint::TrimHorizon, 10);
    until("SHARD_END", || seen.lock().expect("lock").ended == 1).await;
}

#[actix_rt::test]
async fn a_shard_not_found_but_still_listed_is_retried_not_ended() {
    let shard = Arc::new(Shard { not_found: Some(true), ..Shard::default() });
    let (_consumer, seen) = start_with(shard.clone(), Checkpoint::TrimHorizon, 10);
    until("a second try", || shard.starts.lock().expect("lock").len() >= 2).await;
    assert_eq!(seen.lock().expect("lock").ended, 0);
}

#[actix_rt::test]
async fn a_latest_shard_resumes_where_its_first_reader_started() {
    let shard = Arc::new(Shard::default());
    let (_first, _seen) = start_with(shard.clone(), Checkpoint::Latest, 10);
    until("an iterator", || !shard.starts.lock().expect("lock").is_empty()).await;
    assert_eq!(shard.starts.lock().expect("lock")[0], StartPosition::Latest, "the first reader reads LATEST");

    // A later reader of the same lease (after a handoff, a restart, a crash): its LeaseManager
    // says where the first reader started. (Set before the consumer's first turn to run.)
    let shard = Arc::new(Shard::default());
    let (_later, seen) = start_with(shard.clone(), Checkpoint::Latest, 10);
    seen.lock().expect("lock").latest = Some(LatestStart::Since(1_700_000_000_000));
    until("an iterator", || !shard.starts.lock().expect("lock").is_empty()).await;
    let starts = shard.starts.lock().expect("lock").clone();
    assert_eq!(starts, [StartPosition::AtTimestamp(1_700_000_000_000)], "not a new LATEST iterator");
}

/// An idle shard's consumer ticks a few times, then only at the refresh pace; records bring
/// the quick tick back, so their progress reaches the Checkpointer within a tick.
#[actix_rt::test]
async fn an_idle_consumer_ticks_rarely_and_records_wake_its_tick() {
    let shard = Arc::new(Shard::with(0, |i| format!("key-{i}")));
    let (consumer, seen) = start_with(shard.clone(), Checkpoint::TrimHorizon, 10);
    // The quick tick is every 10 ms (a checkpoint interval of 40 ms): some 30 in 300 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = crate::observe::observe(&consumer).await.expect("snapshot").counters.ticks;
    assert!((1..=5).contains(&idle), "an idle consumer ticked {idle} times in 300 ms");

    let records = Shard::with(2, |i| format!("key-{i}")).records.into_inner().expect("records");
    shard.records.lock().expect("lock").extend(records);
    until("both commands at the responder", || waiting(&seen) == 2).await;
    answer(&seen, 1).await;
    answer(&seen, 2).await;
    let answered = Instant::now();
    until("the progress of both", || reported(&seen).last().map(String::as_str) == Some("2")).await;
    let took = answered.elapsed();
    println!("progress reported {took:?} after the last answer (quick tick 10 ms, idle refresh 5 s)");
    assert!(took < Duration::from_secs(2), "the quick tick came back: {took:?}");
    let busy = crate::observe::observe(&consumer).await.expect("snapshot").counters.ticks;
    assert!(busy > idle, "ticks resumed: {idle} -> {busy}");
}
