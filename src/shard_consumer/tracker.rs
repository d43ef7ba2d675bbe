//! The bookkeeping of one shard's records between "read" and "covered by the checkpoint":
//! - commands with the same partition key go out one at a time, in sequence order (a PagerDuty
//!   `resolve` never overtakes its `trigger`); different keys overlap;
//! - at most `max_in_flight` records are read and without an outcome (so at most that many
//!   commands are at responders at once), and at most `max_bytes` of their data;
//! - the watermark is the highest extended sequence number (sequence number, and the index of a
//!   user record inside a KPL aggregate) up to which every record has an outcome — the only
//!   thing a checkpoint may ever cover; it can stop inside an aggregate.
//!
//! Pure data structure: the ShardConsumer drives it, the tests below exercise it directly.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::ExtendedSequenceNumber;

struct Slot<T> {
    seq: ExtendedSequenceNumber,
    /// The record's data bytes, counted against `max_bytes` until it has its outcome.
    bytes: usize,
    key: Option<Arc<str>>,
    payload: Option<T>,
    dispatched: bool,
    done: bool,
}

/// Records of one shard, in sequence order, until the watermark passes them.
pub struct Tracker<T> {
    max_in_flight: usize,
    max_bytes: usize,
    /// The data bytes of the records without an outcome.
    bytes: usize,
    slots: VecDeque<Slot<T>>,
    /// Index of `slots[0]`.
    base: u64,
    /// Keys with a command out, each with its queued followers in order. Hashed with aHash:
    /// two lookups per command, so a quarter of the tracker's work with the standard library's
    /// SipHash, and still keyed at random, as keys chosen by producers need.
    keys_out: HashMap<Arc<str>, VecDeque<u64>, ahash::RandomState>,
    /// Admitted commands whose key is free, waiting for an in-flight place.
    ready: VecDeque<u64>,
    in_flight: usize,
    not_done: usize,
    watermark: Option<ExtendedSequenceNumber>,
}

impl<T> Tracker<T> {
    /// At most `max_in_flight` records without an outcome (no bound on their bytes).
    pub fn new(max_in_flight: usize) -> Self {
        Tracker {
            max_in_flight: max_in_flight.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
            slots: VecDeque::new(),
            base: 0,
            keys_out: HashMap::default(),
            ready: VecDeque::new(),
            in_flight: 0,
            not_done: 0,
            watermark: None,
        }
    }

    /// At most `max_bytes` of data in the records without an outcome: reading pauses at the
    /// bound (one batch may pass it: a read asks for records, not bytes).
    pub fn with_byte_bound(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(1);
        self
    }

    fn next_index(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Adds a record whose outcome is known but not final yet (its dead letter is being
    /// written): it holds the watermark until [`Tracker::complete`], takes no in-flight place.
    pub fn admit_waiting(&mut self, seq: ExtendedSequenceNumber, bytes: usize) -> u64 {
        let idx = self.next_index();
        self.slots.push_back(Slot { seq, bytes, key: None, payload: None, dispatched: false, done: false });
        self.not_done += 1;
        self.bytes += bytes;
        idx
    }

    /// Adds a record that needs nothing (a KPL aggregate of another shard's range): the
    /// watermark passes it as soon as everything before it has an outcome. Returns true when
    /// the watermark moved.
    pub fn admit_done(&mut self, seq: ExtendedSequenceNumber) -> bool {
        self.slots.push_back(Slot { seq, bytes: 0, key: None, payload: None, dispatched: false, done: true });
        self.advance()
    }

    /// Adds a command for a responder (`bytes` of record data); it goes out when its key is
    /// free and a place is.
    pub fn admit(&mut self, seq: ExtendedSequenceNumber, key: Arc<str>, payload: T, bytes: usize) -> u64 {
        let idx = self.next_index();
        self.bytes += bytes;
        self.slots.push_back(Slot {
            seq,
            bytes,
            key: Some(key.clone()),
            payload: Some(payload),
            dispatched: false,
            done: false,
        });
        self.not_done += 1;
        match self.keys_out.get_mut(&key) {
            Some(queue) => queue.push_back(idx),
            None => {
                self.keys_out.insert(key, VecDeque::new());
                self.ready.push_back(idx);
            }
        }
        idx
    }

    /// The next command to send, if a place is free.
    pub fn next_dispatch(&mut self) -> Option<(u64, T)> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        while let Some(idx) = self.ready.pop_front() {
            let slot = self.slot_mut(idx)?;
            if let Some(payload) = slot.payload.take() {
                slot.dispatched = true;
                self.in_flight += 1;
                return Some((idx, payload));
            }
        }
        None
    }

    /// Records the outcome of a dispatched command; its key's next command becomes ready.
    /// Returns true when the watermark moved.
    pub fn complete(&mut self, idx: u64) -> bool {
        let Some(slot) = self.slot_mut(idx) else {
            return false;
        };
        if slot.done {
            return false;
        }
        slot.done = true;
        let (key, bytes, dispatched) = (slot.key.clone(), slot.bytes, slot.dispatched);
        self.bytes = self.bytes.saturating_sub(bytes);
        if dispatched {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.not_done = self.not_done.saturating_sub(1);
        if let Some(key) = key {
            match self.keys_out.get_mut(&key).and_then(VecDeque::pop_front) {
                Some(next) => self.ready.push_back(next),
                None => {
                    self.keys_out.remove(&key);
                }
            }
        }
        self.advance()
    }

    /// A dispatched command came back without an outcome (its fence closed): it keeps holding
    /// the watermark, and so does its key (its followers must not overtake it), but it is no
    /// longer in flight. The shard's next reader actions it.
    pub fn abandon(&mut self, idx: u64) {
        let Some(slot) = self.slot_mut(idx) else { return };
        if slot.done || !slot.dispatched {
            return;
        }
        slot.dispatched = false;
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// How many more records may be read now (the in-flight bound minus those without an
    /// outcome; 0 when their bytes reach the byte bound, or the records kept behind a slow one
    /// reach their own bound).
    pub fn room(&self) -> usize {
        if self.slots.len() >= self.max_in_flight.saturating_mul(10).max(10_000) || self.bytes >= self.max_bytes {
            return 0;
        }
        self.max_in_flight.saturating_sub(self.not_done)
    }

    /// How many more bytes of record data may be read now.
    pub fn byte_room(&self) -> usize {
        self.max_bytes.saturating_sub(self.bytes)
    }

    /// The byte bound (`usize::MAX` without one).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The data bytes of the records without an outcome.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn slot_mut(&mut self, idx: u64) -> Option<&mut Slot<T>> {
        let i = usize::try_from(idx.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(i)
    }

    /// Drops the done prefix, moving the watermark to its last record.
    fn advance(&mut self) -> bool {
        let mut moved = false;
        while self.slots.front().is_some_and(|s| s.done) {
            if let Some(slot) = self.slots.pop_front() {
                self.watermark = Some(slot.seq);
                self.base += 1;
                moved = true;
            }
        }
        moved
    }

    pub fn watermark(&self) -> Option<&ExtendedSequenceNumber> {
        self.watermark.as_ref()
    }

    /// Records read and still without an outcome.
    pub fn not_done(&self) -> usize {
        self.not_done
    }

    /// At most how many commands [`Tracker::next_dispatch`] gives now (those ready, within the
    /// free in-flight places): a size for the batches they go out in.
    pub fn dispatchable(&self) -> usize {
        self.ready.len().min(self.max_in_flight.saturating_sub(self.in_flight))
    }

    /// Commands at responders right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn all_done(&self) -> bool {
        self.not_done == 0
    }

    /// Whether more may be read without exceeding the bounds: `max_in_flight` records without
    /// an outcome, `max_bytes` of their data, or ten times that many records kept behind a
    /// slow command.
    pub fn wants_more(&self) -> bool {
        self.room() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SequenceNumber;

    fn seq(n: u64) -> ExtendedSequenceNumber {
        sub(n, 0)
    }

    /// User record `i` of the aggregate at sequence number `n`.
    fn sub(n: u64, i: u64) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::new(SequenceNumber::parse(&n.to_string()).expect("digits"), i)
    }

    fn key(k: &str) -> Arc<str> {
        Arc::from(k)
    }

    #[test]
    fn same_key_goes_out_one_at_a_time_in_order() {
        let mut t = Tracker::new(10);
        let a1 = t.admit(seq(1), key("a"), "a1", 0);
        let _b1 = t.admit(seq(2), key("b"), "b1", 0);
        let a2 = t.admit(seq(3), key("a"), "a2", 0);
        assert_eq!(t.next_dispatch(), Some((a1, "a1")));
        assert_eq!(t.next_dispatch().map(|d| d.1), Some("b1"));
        assert_eq!(t.next_dispatch(), None, "a2 waits for a1");
        t.complete(a1);
        assert_eq!(t.next_dispatch(), Some((a2, "a2")));
    }

    /// `dispatchable` bounds what `next_dispatch` gives, and is reached when keys are free.
    #[test]
    fn dispatchable_counts_what_may_go_now() {
        let mut t = Tracker::new(3);
        assert_eq!(t.dispatchable(), 0);
        for (n, k) in ["a", "b", "a", "c", "d"].iter().enumerate() {
            t.admit(seq(n as u64 + 1), key(k), n, 0);
        }
        assert_eq!(t.dispatchable(), 3, "four keys free, three places");
        let out: Vec<_> = std::iter::from_fn(|| t.next_dispatch()).collect();
        assert_eq!(out.len(), 3);
        assert_eq!(t.dispatchable(), 0, "no place left");
        t.complete(out[0].0);
        assert_eq!(t.dispatchable(), 1, "a's second and d are ready, one place");
        assert_eq!(std::iter::from_fn(|| t.next_dispatch()).count(), 1);
    }

    #[test]
    fn watermark_covers_only_the_done_prefix() {
        let mut t = Tracker::new(10);
        let a = t.admit(seq(10), key("a"), (), 0);
        let b = t.admit(seq(20), key("b"), (), 0);
        let invalid = t.admit_waiting(seq(30), 0);
        t.next_dispatch();
        t.next_dispatch();
        assert!(!t.complete(invalid), "30 is done but 10 is not: no move");
        assert!(!t.complete(b), "20 is done but 10 is not: no move");
        assert_eq!(t.watermark(), None);
        assert!(t.complete(a));
        assert_eq!(t.watermark(), Some(&seq(30)), "10, 20 and the invalid 30 are all covered");
        assert!(t.all_done());
        assert!(t.wants_more());
    }

    #[test]
    fn in_flight_is_bounded_and_other_keys_pass_a_slow_one() {
        let mut t = Tracker::new(2);
        let slow = t.admit(seq(1), key("slow"), (), 0);
        t.admit(seq(2), key("slow"), (), 0);
        let f1 = t.admit(seq(3), key("f1"), (), 0);
        let f2 = t.admit(seq(4), key("f2"), (), 0);
        assert_eq!(t.next_dispatch().map(|d| d.0), Some(slow));
        assert_eq!(t.next_dispatch().map(|d| d.0), Some(f1));
        assert_eq!(t.next_dispatch(), None, "two in flight: the bound");
        t.complete(f1);
        assert_eq!(t.next_dispatch().map(|d| d.0), Some(f2), "f2 overtakes the queued slow #2");
        assert_eq!(t.in_flight(), 2);
        assert_eq!(t.not_done(), 3);
        assert!(!t.wants_more());
    }

    #[test]
    fn an_abandoned_command_holds_the_watermark_and_its_key() {
        let mut t = Tracker::new(10);
        let a1 = t.admit(seq(1), key("a"), "a1", 0);
        t.admit(seq(2), key("a"), "a2", 0);
        let b = t.admit(seq(3), key("b"), "b", 0);
        assert_eq!(t.next_dispatch().map(|d| d.0), Some(a1));
        assert_eq!(t.next_dispatch().map(|d| d.0), Some(b));
        t.abandon(a1);
        t.complete(b);
        assert_eq!(t.next_dispatch(), None, "a2 never overtakes the abandoned a1");
        assert_eq!(t.watermark(), None, "nothing from 1 on is covered");
        assert_eq!((t.in_flight(), t.not_done()), (0, 2));
        assert_eq!(t.room(), 8);
    }

    #[test]
    fn strict_order_is_one_key() {
        let mut t = Tracker::new(10);
        let a = t.admit(seq(1), key(""), 1, 0);
        t.admit(seq(2), key(""), 2, 0);
        assert_eq!(t.next_dispatch(), Some((a, 1)));
        assert_eq!(t.next_dispatch(), None);
    }

    #[test]
    fn the_watermark_stops_inside_an_aggregate() {
        let mut t = Tracker::new(10);
        let plain = t.admit(seq(1), key("p"), (), 0);
        let u: Vec<u64> = (0..4).map(|i| t.admit(sub(2, i), key(&format!("u{i}")), (), 0)).collect();
        let after = t.admit(seq(3), key("q"), (), 0);
        while t.next_dispatch().is_some() {}
        t.complete(plain);
        t.complete(u[0]);
        t.complete(u[1]);
        t.complete(u[3]);
        assert_eq!(t.watermark(), Some(&sub(2, 1)), "user records 0 and 1 of 2 done, 2 is not");
        t.complete(after);
        assert_eq!(
            t.watermark(),
            Some(&sub(2, 1)),
            "the record after the aggregate does not move it past user record 2"
        );
        t.complete(u[2]);
        assert_eq!(t.watermark(), Some(&seq(3)));
    }

    #[test]
    fn records_that_need_nothing_are_passed_once_the_prefix_is_done() {
        let mut t: Tracker<()> = Tracker::new(10);
        let a = t.admit(seq(1), key("a"), (), 0);
        assert!(!t.admit_done(sub(2, 6)), "1 has no outcome: no move");
        t.next_dispatch();
        assert!(t.complete(a));
        assert_eq!(t.watermark(), Some(&sub(2, 6)));
        assert!(t.admit_done(sub(3, 0)), "nothing before it: the watermark moves at once");
        assert_eq!((t.watermark(), t.not_done(), t.room()), (Some(&seq(3)), 0, 10));
    }

    #[test]
    fn reading_pauses_at_the_byte_bound_and_resumes_as_outcomes_free_bytes() {
        let mut t: Tracker<()> = Tracker::new(100).with_byte_bound(1000);
        let big = t.admit(seq(1), key("a"), (), 600);
        assert_eq!((t.room(), t.byte_room()), (99, 400));
        let invalid = t.admit_waiting(seq(2), 500);
        assert_eq!((t.room(), t.byte_room(), t.bytes()), (0, 0, 1100), "past the bound: no room, whatever the count");
        assert!(!t.wants_more());
        t.next_dispatch();
        t.complete(big);
        assert_eq!((t.room(), t.byte_room()), (99, 500), "the first record's bytes are free again");
        t.complete(invalid);
        assert_eq!((t.room(), t.byte_room(), t.bytes()), (100, 1000, 0));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// One step of a run: admit a record (a command of key `k`, or one with an outcome
        /// pending, or one needing nothing) of `n` user records, dispatch, or complete the
        /// `i`-th record in flight.
        #[derive(Debug, Clone)]
        enum Step {
            Admit { users: u64, key: u8, kind: u8 },
            Dispatch,
            Complete(usize),
            Abandon(usize),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (1u64..5, 0u8..4, 0u8..6).prop_map(|(users, key, kind)| Step::Admit { users, key, kind }),
                Just(Step::Dispatch),
                (0usize..16).prop_map(Step::Complete),
                (0usize..16).prop_map(Step::Abandon),
            ]
        }

        proptest! {
            /// Whatever the order of outcomes: the watermark never moves backwards, never passes
            /// a record without an outcome, and at most one command per key is out, in order.
            #[test]
            fn the_watermark_never_passes_a_record_without_an_outcome(steps in proptest::collection::vec(step(), 1..120)) {
                let mut t: Tracker<(ExtendedSequenceNumber, u8)> = Tracker::new(4);
                // Every admitted record: (position, index, key, done).
                let mut all: Vec<(ExtendedSequenceNumber, u64, Option<u8>, bool)> = vec![];
                let mut out: Vec<(u64, ExtendedSequenceNumber, u8)> = vec![];
                let mut waiting: Vec<u64> = vec![];
                let mut abandoned: Vec<u64> = vec![];
                let mut next_seq = 1;
                let mut last_watermark = None;
                for s in steps {
                    match s {
                        Step::Admit { users, key: k, kind } => {
                            for i in 0..users {
                                let pos = sub(next_seq, i);
                                match kind {
                                    0 => {
                                        let idx = t.admit_waiting(pos.clone(), 0);
                                        waiting.push(idx);
                                        all.push((pos, idx, None, false));
                                    }
                                    1 => {
                                        t.admit_done(pos.clone());
                                        all.push((pos, u64::MAX, None, true));
                                    }
                                    _ => {
                                        let idx = t.admit(pos.clone(), key(&k.to_string()), (pos.clone(), k), 0);
                                        all.push((pos, idx, Some(k), false));
                                    }
                                }
                            }
                            next_seq += 1;
                        }
                        Step::Dispatch => {
                            while let Some((idx, (pos, k))) = t.next_dispatch() {
                                prop_assert!(!out.iter().any(|(_, _, ok)| *ok == k), "two commands of key {k} out");
                                prop_assert!(!abandoned.iter().any(|a| all.iter().any(|r| r.1 == *a && r.2 == Some(k))), "a key held by an abandoned command");
                                let earlier_open = all.iter().any(|r| r.2 == Some(k) && r.0 < pos && !r.3);
                                prop_assert!(!earlier_open, "{pos} of key {k} overtook an earlier one");
                                out.push((idx, pos, k));
                            }
                            prop_assert!(out.len() <= 4, "the in-flight bound");
                        }
                        Step::Complete(i) => {
                            let n = out.len() + waiting.len();
                            if n > 0 {
                                let idx = if i % n < out.len() { out.remove(i % n).0 } else { waiting.remove(i % n - out.len()) };
                                t.complete(idx);
                                if let Some(r) = all.iter_mut().find(|r| r.1 == idx) { r.3 = true; }
                            }
                        }
                        Step::Abandon(i) => {
                            if !out.is_empty() {
                                let (idx, _, _) = out.remove(i % out.len());
                                t.abandon(idx);
                                abandoned.push(idx);
                            }
                        }
                    }
                    let w = t.watermark().cloned();
                    prop_assert!(w >= last_watermark, "backwards: {w:?} after {last_watermark:?}");
                    if let Some(w) = &w {
                        let open = all.iter().find(|r| !r.3 && r.0 <= *w);
                        prop_assert!(open.is_none(), "watermark {w} passes {open:?} without an outcome");
                    }
                    last_watermark = w;
                }
            }
        }
    }
}
