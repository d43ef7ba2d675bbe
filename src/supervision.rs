//! The contract between the observer's Supervisor and every actor it supervises: a name
//! ([`ChildId`]), and a way to report how the child ended ([`ExitGuard`], which also catches a
//! panic, since actix silently drops a panicking actor). The Supervisor restarts failed children
//! with [`crate::model::Backoff::restarts`]. This is the program's one restart mechanism.

use std::fmt;
use std::sync::Arc;

use actix::prelude::*;

/// Which child of a Supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChildId {
    /// A core actor ("LeaseManager", "Checkpointer", "Metrics") of one generation of the
    /// observer's core.
    Core { kind: &'static str, generation: u64 },
    /// One ShardConsumer actor (a restart is a new incarnation).
    ShardConsumer { shard: Arc<str>, incarnation: u64 },
    /// The actor of responder number `route` (a restart is a new incarnation).
    Responder { route: usize, incarnation: u64 },
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildId::Core { kind, .. } => f.write_str(kind),
            ChildId::ShardConsumer { shard, .. } => write!(f, "ShardConsumer({shard})"),
            ChildId::Responder { route, .. } => write!(f, "Responder(#{route})"),
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
