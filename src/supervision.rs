//! What supervision needs from every child: a name, a way to report how it ended (including a
//! panic, which in actix silently drops the actor), and a restart backoff.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

/// Which child of a Supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChildId {
    /// A core actor ("LeaseManager", "Checkpointer", "Metrics") of one generation of the
    /// observer's core.
    Core { kind: &'static str, generation: u64 },
    /// One ShardConsumer actor (a restart is a new incarnation).
    ShardConsumer { shard: Arc<str>, incarnation: u64 },
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildId::Core { kind, .. } => f.write_str(kind),
            ChildId::ShardConsumer { shard, .. } => write!(f, "ShardConsumer({shard})"),
        }
    }
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Its work is done (a shard ended, a lease was given up, shutdown): not restarted.
    Finished,
    /// It gave up on an error: restarted with backoff.
    Failed(String),
    /// It panicked (caught at the actor boundary): restarted with backoff.
    Panicked,
}

/// Sent to the Supervisor when a child stops, for whatever reason.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    pub child: ChildId,
    pub reason: ExitReason,
}

/// Held by each child; reports the child's end when dropped. A panicking actor is dropped
/// during unwinding without `stopped()` being called, so this is what catches panics.
pub struct ExitGuard {
    child: ChildId,
    to: Option<Recipient<ChildExited>>,
    reason: Option<ExitReason>,
}

impl ExitGuard {
    pub fn new(child: ChildId, to: Recipient<ChildExited>) -> Self {
        ExitGuard { child, to: Some(to), reason: None }
    }

    /// A guard that reports to nobody (an actor started outside a Supervisor, in a test).
    pub fn detached(child: ChildId) -> Self {
        ExitGuard { child, to: None, reason: None }
    }

    /// Sets how the child is about to end; without it, a stop is `Finished`.
    pub fn set_reason(&mut self, reason: ExitReason) {
        self.reason = Some(reason);
    }

    pub fn child(&self) -> &ChildId {
        &self.child
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            ExitReason::Panicked
        } else {
            self.reason.take().unwrap_or(ExitReason::Finished)
        };
        if let Some(to) = self.to.take() {
            to.do_send(ChildExited { child: self.child.clone(), reason });
        }
    }
}

/// Exponential restart backoff: 100 ms doubling to 30 s, reset once a child has run for a
/// minute without failing.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub restarts: u32,
    next: Duration,
    started: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { restarts: 0, next: Self::INITIAL, started: Instant::now() }
    }
}

impl Backoff {
    const INITIAL: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);
    const HEALTHY: Duration = Duration::from_secs(60);

    /// The delay before the next restart, and counts the restart.
    pub fn next_delay(&mut self) -> Duration {
        if self.started.elapsed() >= Self::HEALTHY {
            self.next = Self::INITIAL;
        }
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        self.restarts += 1;
        d
    }

    /// Marks the (re)start of the child.
    pub fn started(&mut self) {
        self.started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..12).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert_eq!(*delays.last().expect("delays"), 30_000);
        assert_eq!(b.restarts, 12);
    }
}
