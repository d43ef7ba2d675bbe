//! Lease fencing as values every actor can carry: the tenure of an acquisition and the
//! deadline until which this worker may act on a lease.
//!
//! A ShardConsumer, a responder retrying one of its commands and the LeaseManager's own writes
//! all check the same [`LeaseDeadline`], so a worker that stalled past the failover time (a GC
//! pause, SIGSTOP, a saturated CPU) does nothing more for a shard another worker may already
//! hold. A [`Tenure`] tells one acquisition of a lease from the next, so a consumer or a
//! checkpoint of an earlier tenure is refused even when the lease is held again.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One acquisition of a lease by this process: unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenure(pub u64);

impl Tenure {
    /// A tenure no earlier acquisition in this process had.
    pub fn next() -> Tenure {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Tenure(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for Tenure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The instant every [`LeaseDeadline`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Until when this worker may act on a lease: pushed forward by every successful renewal,
/// revoked when the lease is lost. Shared by every holder of a clone.
#[derive(Debug, Clone)]
pub struct LeaseDeadline(Arc<AtomicU64>);

impl LeaseDeadline {
    /// A deadline valid until `t`.
    pub fn until(t: Instant) -> Self {
        let ms = t.saturating_duration_since(epoch()).as_millis() as u64;
        LeaseDeadline(Arc::new(AtomicU64::new(ms.max(1))))
    }

    /// Moves the deadline to `t` (after a successful renewal or checkpoint) — unless it has
    /// lapsed or been revoked: a lapsed deadline is final. Between the lapse and the moment the
    /// LeaseManager notices it, others may have taken the lease; a late answer to a renewal
    /// must not make the lease this worker's again (the LeaseManager takes it anew instead,
    /// under a new tenure). Returns whether the deadline moved.
    pub fn extend_to(&self, t: Instant) -> bool {
        let ms = (t.saturating_duration_since(epoch()).as_millis() as u64).max(1);
        let now = epoch().elapsed().as_millis() as u64;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |until| {
                (until != 0 && now < until).then_some(ms.max(until))
            })
            .is_ok()
    }

    /// Ends it now: the lease is no longer this worker's.
    pub fn revoke(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// A deadline that never lapses (tests of single actors).
    pub fn unbounded() -> Self {
        LeaseDeadline(Arc::new(AtomicU64::new(u64::MAX)))
    }

    pub fn is_valid(&self) -> bool {
        let until = self.0.load(Ordering::Acquire);
        until != 0 && (epoch().elapsed().as_millis() as u64) < until
    }
}

/// What a command carries to its responder: the lease deadline, and the liveness of the
/// consumer that sent it. A command whose consumer stopped (it failed and was restarted, or it
/// was frozen before a handoff) is not attempted again: its next reader actions it.
#[derive(Debug, Clone)]
pub struct Fence {
    lease: LeaseDeadline,
    sender: Arc<AtomicBool>,
}

impl Fence {
    /// The fence of one consumer of a lease.
    pub fn new(lease: LeaseDeadline) -> Self {
        Fence { lease, sender: Arc::new(AtomicBool::new(true)) }
    }

    /// A fence that never closes (tests of single actors).
    pub fn unbounded() -> Self {
        Fence::new(LeaseDeadline::unbounded())
    }

    pub fn is_valid(&self) -> bool {
        self.sender.load(Ordering::Acquire) && self.lease.is_valid()
    }

    /// The consumer stopped: its commands are not attempted again.
    pub fn close(&self) {
        self.sender.store(false, Ordering::Release);
    }
}

/// How long before the failover time a worker stops acting on a lease it could not renew:
/// other workers may take it `failover` after its last renewal, and stopping a consumer (and
/// the clock of a stalled host) takes a moment.
pub fn self_fence_margin(failover: Duration) -> Duration {
    (failover / 5).clamp(Duration::from_millis(25), Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_lapse_and_can_be_revoked() {
        let d = LeaseDeadline::until(Instant::now() + Duration::from_secs(60));
        assert!(d.is_valid());
        d.revoke();
        assert!(!d.is_valid());
        let past = LeaseDeadline::until(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!past.is_valid());
        assert_eq!(self_fence_margin(Duration::from_secs(10)), Duration::from_secs(2));
        assert!(!past.extend_to(Instant::now() + Duration::from_secs(60)), "a lapsed deadline is not revived");
        assert!(!past.is_valid());
        assert!(!d.extend_to(Instant::now() + Duration::from_secs(60)), "nor a revoked one");
        assert!(!d.is_valid());
        let live = LeaseDeadline::until(Instant::now() + Duration::from_secs(1));
        assert!(live.extend_to(Instant::now() + Duration::from_secs(60)));
        assert!(live.is_valid());
        assert_eq!(self_fence_margin(Duration::from_secs(2)), Duration::from_millis(400));
    }

    #[test]
    fn a_fence_closes_with_its_consumer_or_its_lease() {
        let lease = LeaseDeadline::until(Instant::now() + Duration::from_secs(60));
        let (a, b) = (Fence::new(lease.clone()), Fence::new(lease.clone()));
        a.close();
        assert!(!a.is_valid() && b.is_valid(), "one consumer's fence, not the lease's");
        lease.revoke();
        assert!(!b.is_valid());
    }

    #[test]
    fn tenures_are_never_reused() {
        let (a, b) = (Tenure::next(), Tenure::next());
        assert!(b > a);
    }
}
