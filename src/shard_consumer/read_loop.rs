//! The read loop of a ShardConsumer: get a shard iterator (after the last record read, else
//! from the lease's checkpoint), fetch, have the batch classified, admit its records, and fetch
//! again — at once after a full batch, after `idleTimeBetweenReads` otherwise (longer after
//! empty reads in a row), never past the in-flight bounds (records and bytes), and never once
//! the lease's deadline has lapsed.

use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;

use super::Phase;
use super::actor::{Reader, ShardConsumer};
use super::reading::{ReadError, RecordBatch, StartPosition};
use crate::lease_manager::{LatestStart, LeaseError, PinLatestStart};
use crate::metrics::{Operation, Unit};
use crate::model::{Checkpoint, SequenceNumber};
use crate::parser_pool::{ParseBatch, Parsed, ParsedBatch};
use crate::supervision::ExitReason;

/// How far before "now" the start of a LATEST shard is recorded: clocks of this host and of
/// Kinesis (which stamps records' arrival) may differ a little, and a reader resuming from the
/// recorded instant must not skip a record the first reader would have read. At worst it reads
/// records written this long before the first start, which the first reader skipped.
const LATEST_CLOCK_MARGIN_MS: i64 = 1000;

/// The most records a shard's first GetRecords asks for.
const FIRST_READ_RECORDS: usize = 100;

/// The size of a record assumed before a shard's first batch says better.
pub(super) const ASSUMED_RECORD_BYTES: usize = 1024;

/// A batch as read, before classification; `full`: it had all the records asked for.
pub(super) struct ReadBatch {
    records: Vec<Unparsed>,
    batch: RecordBatch,
    full: bool,
}

/// A record of a batch, before classification.
pub(super) struct Unparsed {
    pub seq: SequenceNumber,
    pub partition_key: String,
    pub data: Bytes,
}

impl ShardConsumer {
    /// Where a new iterator starts: after the last record read, else at the lease's checkpoint;
    /// `None` for a shard already at SHARD_END. A checkpoint `(S, N)` resumes *at* S, as the
    /// KCL does: what of S it covers (the plain record, or the user records 0..=N of an
    /// aggregate) is skipped when admitted. A LATEST checkpoint resumes where the shard was
    /// first read (see [`ShardConsumer::pin_latest_start`]).
    fn start_position(&self) -> Option<StartPosition> {
        if let Some(seq) = &self.state.last_read {
            return Some(StartPosition::After(seq.clone()));
        }
        Some(match self.lease.checkpoint.clone() {
            Checkpoint::Sequence(at) => StartPosition::At(at.seq),
            Checkpoint::TrimHorizon => StartPosition::TrimHorizon,
            Checkpoint::Latest => StartPosition::Latest,
            Checkpoint::AtTimestamp => {
                StartPosition::AtTimestamp(self.settings.at_timestamp.map(|t| t.timestamp_millis()).unwrap_or(0))
            }
            Checkpoint::ShardEnd => return None,
        })
    }

    /// Gets a shard iterator, then starts fetching.
    pub(super) fn initialize(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.state.phase, Phase::Starting | Phase::Reading) {
            return;
        }
        match self.start_position() {
            None => {
                self.state.phase = Phase::Closing;
                self.check_end(ctx);
            }
            Some(StartPosition::Latest) => self.pin_latest_start(ctx),
            Some(from) => self.open_iterator(from, ctx),
        }
    }

    /// A shard still at LATEST (no record of it has an outcome yet) records, before its first
    /// iterator, the instant reading began; every later reader of the lease — after a handoff,
    /// a restart, a crash — resumes AT_TIMESTAMP from that instant instead of opening a new
    /// LATEST iterator, which would skip everything written in between. The first reader
    /// itself reads from LATEST.
    fn pin_latest_start(&mut self, ctx: &mut Context<Self>) {
        let at = chrono::Utc::now().timestamp_millis() - LATEST_CLOCK_MARGIN_MS;
        let request =
            self.links.latest_start.send(PinLatestStart { shard: self.shard().clone(), tenure: self.lease.tenure, at });
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| {
            match result.unwrap_or_else(|e| Err(LeaseError::Transient(e.to_string()))) {
                Ok(LatestStart::Pinned) => act.open_iterator(StartPosition::Latest, ctx),
                Ok(LatestStart::Since(ms)) => act.open_iterator(StartPosition::AtTimestamp(ms), ctx),
                Err(LeaseError::Transient(e)) => {
                    let delay = act.state.read_backoff.next_delay();
                    log::warn!(
                        "shard {}: cannot record where LATEST starts ({e}); retrying in {} ms",
                        act.shard(),
                        delay.as_millis()
                    );
                    ctx.run_later(delay, |act, ctx| act.initialize(ctx));
                }
                Err(e) => {
                    act.exit.set_reason(ExitReason::Failed(format!("cannot record where LATEST starts: {e}")));
                    ctx.stop();
                }
            }
        }));
    }

    fn open_iterator(&mut self, from: StartPosition, ctx: &mut Context<Self>) {
        let (reader, shard, f) = (self.links.reader.clone(), self.shard().clone(), from.clone());
        let request = async move { reader.iterator(&shard, &f).await };
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| match result {
            Ok(iterator) => {
                act.state.read_backoff.reset();
                act.state.iterator = iterator;
                if act.state.phase == Phase::Starting {
                    let inside = match (&from, act.lease.checkpoint.sub_sequence_number()) {
                        (StartPosition::At(_), n) if n > 0 => format!(" (after user record {n} of its KPL aggregate)"),
                        _ => String::new(),
                    };
                    log::info!("shard {}: reading from {}{inside}", act.shard(), describe(&from));
                    act.state.phase = Phase::Reading;
                }
                if act.state.iterator.is_none() {
                    act.closed(vec![], ctx);
                } else {
                    act.fetch(ctx);
                }
            }
            Err(ReadError::NotFound(why)) => act.not_found(why, ctx),
            Err(e) => {
                act.state.counters.errors += 1;
                let delay = act.state.read_backoff.next_delay();
                log::warn!(
                    "shard {}: GetShardIterator failed ({e}); retrying in {} ms",
                    act.shard(),
                    delay.as_millis()
                );
                act.links.metrics.count("GetShardIterator.Error", Operation::ProcessTask, act.scope(), 1);
                ctx.run_later(delay, |act, ctx| act.initialize(ctx));
            }
        }));
    }

    /// The shard was not found. If the stream no longer lists it, it is past the stream's
    /// retention: whatever it held that was not read is lost, and the shard is over (its
    /// children may start). If the stream cannot be listed either (deleted, unreachable), keep
    /// trying: ending every shard of a stream that is merely unreachable would be worse.
    fn not_found(&mut self, why: String, ctx: &mut Context<Self>) {
        let (reader, shard) = (self.links.reader.clone(), self.shard().clone());
        let check = async move { reader.shard_is_listed(&shard).await };
        ctx.spawn(check.into_actor(self).map(move |listed, act, ctx| match listed {
            Ok(false) => {
                log::error!(
                    "shard {}: the stream no longer has this shard (past its retention period): records of it not read before are lost; ending it so its children start ({why})",
                    act.shard()
                );
                act.state.iterator = None;
                if act.state.phase == Phase::Starting {
                    act.state.phase = Phase::Reading;
                }
                act.closed(vec![], ctx);
            }
            other => {
                act.state.counters.errors += 1;
                let delay = act.state.read_backoff.next_delay();
                let listed = match other {
                    Ok(_) => "the stream still lists it".to_owned(),
                    Err(e) => format!("the stream cannot be listed: {e}"),
                };
                log::warn!("shard {}: not found ({why}); {listed}; retrying in {} ms", act.shard(), delay.as_millis());
                ctx.run_later(delay, |act, ctx| act.initialize(ctx));
            }
        }));
    }

    /// One GetRecords, if reading is allowed now.
    pub(super) fn fetch(&mut self, ctx: &mut Context<Self>) {
        if self.state.phase != Phase::Reading || self.state.reader == Reader::Fetching {
            return;
        }
        let Some(iterator) = self.state.iterator.clone() else { return };
        // The batch being classified is not admitted yet: leave room for it.
        let (classifying, classifying_bytes) = self.state.classifying.unwrap_or_default();
        let room = self.state.tracker.room().saturating_sub(classifying);
        let byte_room = self.state.tracker.byte_room().saturating_sub(classifying_bytes);
        if room == 0 || byte_room == 0 {
            self.state.reader = Reader::Paused;
            return;
        }
        if !self.fence.is_valid() {
            // The lease lapsed (this worker could not renew it): read nothing meanwhile, and
            // look again later (the LeaseManager drops the lease, and the Supervisor stops this
            // consumer; a consumer never stalls for good on a lease it still holds).
            ctx.run_later(self.settings.lease_recheck_interval, |act, ctx| act.fetch(ctx));
            return;
        }
        self.state.reader = Reader::Fetching;
        let started = std::time::Instant::now();
        // Never more than the in-flight bounds leave room for: counted in user records, so a
        // shard of KPL aggregates asks for as many Kinesis records as the last batch suggests,
        // and in bytes, as many as fit at the last batch's average size. At most half the
        // byte bound, so that the next read can be out while this batch is classified.
        let byte_room = byte_room.min(self.state.tracker.max_bytes() / 2);
        let by_bytes = byte_room / self.state.bytes_per_record.max(1);
        let mut records = (room / self.state.user_records_per_record).min(by_bytes).max(1);
        if self.state.counters.batches == 0 {
            // A shard's first read is small: its first commands go out while the next, full
            // read is on its way (a full first batch would be read and parsed whole first).
            records = records.min(FIRST_READ_RECORDS);
        }
        let limit = self.settings.max_records.min(i32::try_from(records).unwrap_or(i32::MAX));
        let reader = self.links.reader.clone();
        let request = async move { reader.records(&iterator, limit).await };
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            act.links.metrics.millis("GetRecords.Time", Operation::ProcessTask, act.scope(), started.elapsed());
            match result {
                Ok(batch) => act.on_records(batch, limit, ctx),
                Err(e) => act.on_fetch_error(e, ctx),
            }
        }));
    }

    fn on_fetch_error(&mut self, e: ReadError, ctx: &mut Context<Self>) {
        self.state.reader = Reader::Idle;
        let m = &self.links.metrics;
        match e {
            ReadError::ExpiredIterator => {
                // Iterators live 5 minutes: restart after the last record read.
                self.state.counters.iterator_restarts += 1;
                m.count("ExpiredIterator", Operation::ProcessTask, self.scope(), 1);
                log::info!("shard {}: shard iterator expired; getting a new one", self.shard());
                self.initialize(ctx);
            }
            ReadError::Throttled => {
                let delay = self.state.read_backoff.next_delay();
                self.state.counters.throttles += 1;
                m.count("GetRecords.Throttled", Operation::ProcessTask, self.scope(), 1);
                log::warn!("shard {}: GetRecords throttled; backing off {} ms", self.shard(), delay.as_millis());
                ctx.run_later(delay, |act, ctx| act.fetch(ctx));
            }
            ReadError::InUse(why) => {
                let delay = self.state.read_backoff.next_delay();
                self.state.counters.throttles += 1;
                m.count("SubscribeToShard.ResourceInUse", Operation::ProcessTask, self.scope(), 1);
                log::info!(
                    "shard {}: the subscription is in use ({why}); subscribing again in {} ms",
                    self.shard(),
                    delay.as_millis()
                );
                ctx.run_later(delay, |act, ctx| act.fetch(ctx));
            }
            ReadError::NotFound(why) => self.not_found(why, ctx),
            ReadError::InvalidArgument(ref why) | ReadError::Other(ref why) => {
                let invalid = matches!(e, ReadError::InvalidArgument(_));
                let delay = self.state.read_backoff.next_delay();
                self.state.counters.errors += 1;
                m.count("GetRecords.Error", Operation::ProcessTask, self.scope(), 1);
                log::warn!("shard {}: GetRecords failed ({why}); retrying in {} ms", self.shard(), delay.as_millis());
                if invalid {
                    ctx.run_later(delay, |act, ctx| act.initialize(ctx));
                } else {
                    ctx.run_later(delay, |act, ctx| act.fetch(ctx));
                }
            }
        }
    }

    /// Counts a batch in and keeps its records with a readable sequence number.
    fn take_batch(&mut self, batch: &mut RecordBatch) -> Vec<Unparsed> {
        self.state.read_backoff.reset();
        self.state.counters.batches += 1;
        let m = self.links.metrics.clone();
        if let Some(ms) = batch.millis_behind_latest {
            self.state.millis_behind_latest = Some(ms);
            m.record("MillisBehindLatest", Operation::ProcessTask, self.scope(), Unit::Milliseconds, ms as f64);
        }
        let mut records = Vec::with_capacity(batch.records.len());
        let mut bytes = 0u64;
        for r in std::mem::take(&mut batch.records) {
            let Some(seq) = SequenceNumber::parse(&r.sequence_number) else {
                log::error!(
                    "shard {}: skipping a record with a malformed sequence number {:?}",
                    self.shard(),
                    r.sequence_number
                );
                continue;
            };
            bytes += r.data.len() as u64;
            records.push(Unparsed { seq, partition_key: r.partition_key, data: r.data });
        }
        self.state.counters.records_read += records.len() as u64;
        self.state.counters.bytes_read += bytes;
        m.count("RecordsProcessed", Operation::ProcessTask, self.scope(), records.len() as u64);
        m.record("DataBytesProcessed", Operation::ProcessTask, self.scope(), Unit::Bytes, bytes as f64);
        if let Some(last) = records.last() {
            self.state.last_read = Some(last.seq.clone());
            self.state.bytes_per_record = (bytes as usize / records.len()).max(1);
        }
        records
    }

    fn on_records(&mut self, mut batch: RecordBatch, limit: i32, ctx: &mut Context<Self>) {
        if self.drop_batch_if_draining() {
            return;
        }
        let full = batch.records.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        let records = self.take_batch(&mut batch);
        self.state.empty_reads = if records.is_empty() { self.state.empty_reads.saturating_add(1) } else { 0 };
        let read = ReadBatch { records, batch, full };
        if self.state.classifying.is_some() {
            // Read ahead while the batch before it is classified: it waits its turn (the
            // reader stays `Fetching`, so no read goes out before it is taken in).
            self.state.next_batch = Some(read);
            return;
        }
        self.classify(read, ctx);
    }

    /// Has a batch classified, then admits its records. After a full batch the next read goes
    /// out at once, while this one is classified: the emulator or Kinesis serves it meanwhile.
    fn classify(&mut self, read: ReadBatch, ctx: &mut Context<Self>) {
        let ReadBatch { records, mut batch, full } = read;
        if records.is_empty() {
            return self.batch_done(batch, full, ctx);
        }
        let bytes = records.iter().map(|r| r.data.len()).sum();
        // The data goes to the parse pool and comes back with the answers.
        let (records, data): (Vec<_>, Vec<_>) = records.into_iter().map(|r| ((r.seq, r.partition_key), r.data)).unzip();
        let parse = self.links.parser.send(ParseBatch { records: data, hash_range: self.lease.hash_range });
        self.state.classifying = Some((records.len() * self.state.user_records_per_record, bytes));
        let read_ahead = full && batch.next_iterator.is_some();
        if read_ahead {
            // Taken: after a read ahead, `batch_done` is not called for this batch.
            self.state.iterator = batch.next_iterator.take();
            self.state.reader = Reader::Idle;
            self.fetch(ctx);
        }
        ctx.spawn(parse.into_actor(self).map(move |result, act, ctx| {
            act.state.classifying = None;
            if act.drop_batch_if_draining() {
                act.state.next_batch = None;
                return;
            }
            match result {
                Ok(ParsedBatch { parsed, records: data }) => {
                    act.state.user_records_per_record = user_records_per_record(&parsed);
                    act.dispatching_after(ctx, |act, ctx| {
                        for (((seq, partition_key), data), parsed) in records.into_iter().zip(data).zip(parsed) {
                            act.admit(Unparsed { seq, partition_key, data }, parsed, ctx);
                        }
                    });
                    // Records in: progress and outcomes to report soon.
                    act.wake_ticking(ctx);
                }
                Err(e) => {
                    // The parse pool is gone: the process is stopping. Nothing was admitted, so
                    // nothing is lost: the next owner reads these again.
                    act.exit.set_reason(ExitReason::Failed(format!("parse pool unavailable: {e}")));
                    ctx.stop();
                    return;
                }
            }
            if !read_ahead {
                return act.batch_done(batch, full, ctx);
            }
            if let Some(next) = act.state.next_batch.take() {
                act.classify(next, ctx);
            } else if act.state.reader == Reader::Paused {
                // Paused on the room this batch held while classified: look again.
                act.state.reader = Reader::Idle;
                act.fetch(ctx);
            }
        }));
    }

    /// After a batch is admitted: fetch again (at once if it was full), or close the shard.
    fn batch_done(&mut self, batch: RecordBatch, full: bool, ctx: &mut Context<Self>) {
        self.state.reader = Reader::Idle;
        match batch.next_iterator {
            Some(it) => {
                self.state.iterator = Some(it);
                if full || self.links.reader.waits_for_records() {
                    self.fetch(ctx);
                } else {
                    let mut wait =
                        idle_wait(self.settings.idle_time, self.settings.max_idle_time, self.state.empty_reads);
                    if self.state.empty_reads >= 2 {
                        wait = crate::timers::aligned(Instant::now(), wait, IDLE_ALIGNMENT);
                    }
                    ctx.run_later(wait, |act, ctx| act.fetch(ctx));
                }
            }
            None => {
                self.state.iterator = None;
                log::info!("shard {}: end of the closed shard reached", self.shard());
                self.closed(batch.child_shards, ctx);
            }
        }
    }

    /// The end of the closed shard was reached.
    fn closed(&mut self, children: Vec<crate::model::ShardInfo>, ctx: &mut Context<Self>) {
        self.state.children = children;
        if self.state.phase == Phase::Reading {
            self.state.phase = Phase::Closing;
        }
        self.check_end(ctx);
    }

    /// A batch that arrives once draining started (a read that was already out) is dropped
    /// unread: nothing of it is checkpointed, so the shard's next owner reads it. Actioning it
    /// here, after the final checkpoint, would action it twice.
    fn drop_batch_if_draining(&mut self) -> bool {
        if matches!(self.state.phase, Phase::Draining | Phase::Frozen | Phase::Finished) {
            self.state.reader = Reader::Idle;
            true
        } else {
            false
        }
    }
}

/// How many user records a Kinesis record of this batch held, on average (rounded up; 1 for
/// plain records).
fn user_records_per_record(parsed: &[Parsed]) -> usize {
    let users: usize = parsed
        .iter()
        .map(|p| match p {
            Parsed::Aggregate(users) => users.len(),
            Parsed::Record(_) | Parsed::OutsideShard { .. } => 1,
        })
        .sum();
    users.div_ceil(parsed.len().max(1)).max(1)
}

/// The wait before the next read after `empty_reads` empty reads in a row: `idle` after a read
/// that had records or after the first empty one, then twice as long for each further empty one,
/// never longer than `max_idle`.
fn idle_wait(idle: Duration, max_idle: Duration, empty_reads: u32) -> Duration {
    let doublings = empty_reads.saturating_sub(1).min(31);
    idle.saturating_mul(1 << doublings).min(max_idle.max(idle))
}

/// How finely the reads of idle shards are lined up (see [`crate::timers`]): the idle shards of
/// an arbiter wake it together for their reads, not one at a time.
const IDLE_ALIGNMENT: Duration = Duration::from_millis(250);

fn describe(from: &StartPosition) -> String {
    match from {
        StartPosition::After(seq) => format!("after {seq}"),
        StartPosition::At(seq) => seq.to_string(),
        StartPosition::TrimHorizon => "TRIM_HORIZON".into(),
        StartPosition::Latest => "LATEST".into(),
        StartPosition::AtTimestamp(_) => "AT_TIMESTAMP".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_with_each_empty_read_after_the_first_up_to_the_longest() {
        let (idle, max) = (Duration::from_millis(1000), Duration::from_millis(4000));
        let waits: Vec<u128> = (0..6).map(|n| idle_wait(idle, max, n).as_millis()).collect();
        assert_eq!(waits, [1000, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(idle_wait(idle, idle, 9), idle, "no backoff when the longest is the idle time");
        assert_eq!(idle_wait(Duration::ZERO, max, 5), Duration::ZERO, "polling without pause stays so");
        assert_eq!(idle_wait(idle, Duration::from_secs(86_400), u32::MAX).as_secs(), 86_400, "no overflow");
    }
}
