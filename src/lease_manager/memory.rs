//! `MemoryLeaseTable`: a lease table in memory with DynamoDB's conditional-write semantics, so
//! that real LeaseManagers can be driven in process — alone in a unit test, or many of them
//! together in a simulation — with no emulator. Faults and latency can be injected per call.
//!
//! It applies exactly the conditions and updates [`super::LeaseTable`] sends to DynamoDB; the
//! emulator tests then show that the DynamoDB expressions mean the same.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::row::Lease;
use super::store::{LeaseStore, LeaseTableError, Scan};
use crate::model::Checkpoint;

/// Which call a fault hook is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableCall {
    /// `ensure_exists`.
    Describe,
    Scan,
    Get,
    Create,
    Renew,
    AcceptHandoff,
    WithdrawHandoff,
    PinLatestStart,
    Take,
    Checkpoint,
    Release,
    RequestHandoff,
    Delete,
    Signal,
}

impl TableCall {
    fn is_write(self) -> bool {
        !matches!(self, TableCall::Describe | TableCall::Scan | TableCall::Get | TableCall::Signal)
    }
}

/// Decides, per call and key, whether it fails (before it is applied) and how long it takes.
pub type FaultHook = Arc<dyn Fn(TableCall, &str) -> Option<LeaseTableError> + Send + Sync>;

/// Sees every write that succeeded, with the row as it is after it (under the table's lock, so
/// in the order the writes were applied): where a simulation checks its invariants.
pub type WriteHook = Arc<dyn Fn(TableCall, &Lease) + Send + Sync>;

#[derive(Clone, Default)]
pub struct MemoryLeaseTable {
    name: String,
    rows: Arc<Mutex<BTreeMap<String, Lease>>>,
    fault: Arc<Mutex<Option<FaultHook>>>,
    on_write: Arc<Mutex<Option<WriteHook>>>,
    latency: Arc<Mutex<Duration>>,
    call_latency: Arc<Mutex<Vec<(TableCall, Duration)>>>,
    key_latency: Arc<Mutex<Vec<(String, Duration)>>>,
    signal: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for MemoryLeaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLeaseTable").field("name", &self.name).finish()
    }
}

impl MemoryLeaseTable {
    pub fn new(name: impl Into<String>) -> Self {
        MemoryLeaseTable { name: name.into(), ..Default::default() }
    }

    /// Writes a row as another program would (no condition).
    pub fn put(&self, lease: Lease) {
        self.lock().insert(lease.key.clone(), lease);
    }

    /// Changes a row as another program would (no condition); false if there is none.
    pub fn update(&self, key: &str, change: impl FnOnce(&mut Lease)) -> bool {
        self.lock().get_mut(key).map(change).is_some()
    }

    /// A copy of one row.
    pub fn row(&self, key: &str) -> Option<Lease> {
        self.lock().get(key).cloned()
    }

    /// Every call asks `hook` first; `Some(error)` fails it without applying it.
    pub fn inject_faults(&self, hook: FaultHook) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Every successful write is shown to `hook`.
    pub fn watch_writes(&self, hook: WriteHook) {
        *self.on_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// The change signal's value, read at once (whatever latency its calls are given).
    pub fn signal_value(&self) -> u64 {
        self.signal.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn clear_faults(&self) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Every call takes at least this long (applied at the end, as a slow answer would).
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Adds `latency` to every call on the row of `key` (one slow partition, as it were).
    pub fn set_key_latency(&self, key: &str, latency: Duration) {
        let mut l = self.key_latency.lock().unwrap_or_else(|p| p.into_inner());
        l.retain(|(k, _)| k != key);
        l.push((key.to_owned(), latency));
    }

    /// Calls of this kind take at least this long (on top of [`MemoryLeaseTable::set_latency`]).
    pub fn set_call_latency(&self, call: TableCall, latency: Duration) {
        let mut l = self.call_latency.lock().unwrap_or_else(|p| p.into_inner());
        l.retain(|(c, _)| *c != call);
        l.push((call, latency));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lease>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `apply` on the rows unless a fault is injected, then waits the latency.
    async fn call<T>(
        &self,
        what: TableCall,
        key: &str,
        apply: impl FnOnce(&mut BTreeMap<String, Lease>) -> Result<T, LeaseTableError>,
    ) -> Result<T, LeaseTableError> {
        let fault = self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let result = match fault.and_then(|hook| hook(what, key)) {
            Some(e) => Err(e),
            None => {
                let mut rows = self.lock();
                let result = apply(&mut rows);
                let watcher = self.on_write.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let (Ok(_), Some(watch), Some(row)) = (&result, watcher, rows.get(key))
                    && what.is_write()
                {
                    watch(what, row);
                }
                result
            }
        };
        let latency = {
            let all = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
            let per_call = self.call_latency.lock().unwrap_or_else(|p| p.into_inner());
            let per_key = self.key_latency.lock().unwrap_or_else(|p| p.into_inner());
            all + per_call.iter().find(|(c, _)| *c == what).map(|(_, d)| *d).unwrap_or_default()
                + per_key.iter().find(|(k, _)| k == key).map(|(_, d)| *d).unwrap_or_default()
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        result
    }
}

/// The row of `key`, if it is at `counter` and owned by `owner`; otherwise the write is refused.
fn held<'a>(
    rows: &'a mut BTreeMap<String, Lease>,
    key: &str,
    owner: Option<&str>,
    counter: u64,
) -> Result<&'a mut Lease, LeaseTableError> {
    match rows.get_mut(key) {
        Some(l) if l.counter == counter && l.owner.as_deref() == owner => Ok(l),
        _ => Err(LeaseTableError::ConditionFailed),
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseTable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn ensure_exists(&self) -> Result<bool, LeaseTableError> {
        self.call(TableCall::Describe, "", |_| Ok(false)).await
    }

    async fn scan(&self) -> Result<Scan, LeaseTableError> {
        self.call(TableCall::Scan, "", |rows| Ok((rows.values().cloned().collect(), vec![]))).await
    }

    async fn get(&self, key: &str) -> Result<Option<Lease>, LeaseTableError> {
        self.call(TableCall::Get, key, |rows| Ok(rows.get(key).cloned())).await
    }

    async fn create_if_absent(&self, lease: &Lease) -> Result<bool, LeaseTableError> {
        self.call(TableCall::Create, &lease.key, |rows| {
            if rows.contains_key(&lease.key) {
                return Ok(false);
            }
            rows.insert(lease.key.clone(), lease.clone());
            Ok(true)
        })
        .await
    }

    async fn renew(&self, key: &str, owner: &str, counter: u64, handing_off: bool) -> Result<u64, LeaseTableError> {
        self.call(TableCall::Renew, key, |rows| {
            let l = held(rows, key, Some(owner), counter)?;
            if !handing_off && l.handoff_requested.is_some() {
                return Err(LeaseTableError::ConditionFailed);
            }
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn accept_handoff(&self, key: &str, owner: &str, counter: u64, by: &str) -> Result<u64, LeaseTableError> {
        self.call(TableCall::AcceptHandoff, key, |rows| {
            let l = held(rows, key, Some(owner), counter)?;
            if l.handoff_requested.as_deref() != Some(by) {
                return Err(LeaseTableError::ConditionFailed);
            }
            l.handoff_accepted = Some(by.to_owned());
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn withdraw_handoff(&self, key: &str, requester: &str) -> Result<bool, LeaseTableError> {
        self.call(TableCall::WithdrawHandoff, key, |rows| {
            let Some(l) = rows.get_mut(key) else { return Ok(false) };
            if l.handoff_requested.as_deref() != Some(requester) {
                return Ok(false);
            }
            l.handoff_requested = None;
            l.handoff_accepted = None;
            Ok(true)
        })
        .await
    }

    async fn pin_latest_start(&self, key: &str, owner: &str, counter: u64, at: i64) -> Result<u64, LeaseTableError> {
        self.call(TableCall::PinLatestStart, key, |rows| {
            let l = held(rows, key, Some(owner), counter)?;
            l.latest_started_at.get_or_insert(at);
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn take(
        &self,
        key: &str,
        counter: u64,
        previous_owner: Option<&str>,
        me: &str,
    ) -> Result<u64, LeaseTableError> {
        self.call(TableCall::Take, key, |rows| {
            let l = held(rows, key, previous_owner, counter)?;
            if previous_owner != Some(me) {
                l.handoff_requested = None;
                l.handoff_accepted = None;
                l.owner_switches_since_checkpoint += 1;
            }
            l.owner = Some(me.to_owned());
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn checkpoint(
        &self,
        key: &str,
        owner: &str,
        counter: u64,
        checkpoint: &Checkpoint,
        child_shard_ids: &[String],
    ) -> Result<u64, LeaseTableError> {
        self.call(TableCall::Checkpoint, key, |rows| {
            let l = held(rows, key, Some(owner), counter)?;
            l.checkpoint = checkpoint.clone();
            l.owner_switches_since_checkpoint = 0;
            if !child_shard_ids.is_empty() {
                l.child_shard_ids = child_shard_ids.to_vec();
                l.child_shard_ids.sort();
            }
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn release(&self, key: &str, owner: &str, counter: u64, to: Option<&str>) -> Result<u64, LeaseTableError> {
        self.call(TableCall::Release, key, |rows| {
            let l = held(rows, key, Some(owner), counter)?;
            if to.is_some() && l.handoff_requested.as_deref() != to {
                return Err(LeaseTableError::ConditionFailed);
            }
            l.handoff_requested = None;
            l.handoff_accepted = None;
            match to {
                Some(to) => {
                    l.owner = Some(to.to_owned());
                    l.owner_switches_since_checkpoint += 1;
                }
                None => l.owner = None,
            }
            l.counter += 1;
            Ok(l.counter)
        })
        .await
    }

    async fn request_handoff(&self, key: &str, owner: Option<&str>, requester: &str) -> Result<bool, LeaseTableError> {
        self.call(TableCall::RequestHandoff, key, |rows| {
            let Some(l) = rows.get_mut(key) else { return Ok(false) };
            let owned = match owner {
                Some(o) => l.owner.as_deref() == Some(o),
                None => l.owner.is_some(),
            };
            if !owned || l.handoff_requested.is_some() || l.checkpoint == Checkpoint::ShardEnd {
                return Ok(false);
            }
            l.handoff_requested = Some(requester.to_owned());
            Ok(true)
        })
        .await
    }

    async fn delete_finished(&self, key: &str) -> Result<bool, LeaseTableError> {
        self.call(TableCall::Delete, key, |rows| match rows.get(key) {
            Some(l) if l.checkpoint == Checkpoint::ShardEnd => {
                rows.remove(key);
                Ok(true)
            }
            _ => Ok(false),
        })
        .await
    }

    async fn bump_signal(&self) -> Result<(), LeaseTableError> {
        let signal = self.signal.clone();
        self.call(TableCall::Signal, "", move |_| {
            signal.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            Ok(())
        })
        .await
    }

    async fn read_signal(&self) -> Result<u64, LeaseTableError> {
        let signal = self.signal.clone();
        self.call(TableCall::Signal, "", move |_| Ok(signal.load(std::sync::atomic::Ordering::Acquire))).await
    }
}
