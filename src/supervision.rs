//! The contract between the observer's Supervisor and every actor it supervises: a name
//! ([`ChildId`]), and a way to report how the child ended ([`ExitGuard`], which also catches a
//! panic, since actix silently drops a panicking actor). The Supervisor restarts failed children
//! with [`crate::model::Backoff::restarts`]. This is the program's one restart mechanism.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use actix::prelude::*;

/// Stop now: what the Supervisor sends a child it replaces or no longer needs. Actix keeps an
/// actor with timers alive after its addresses are dropped, so every child is stopped
/// explicitly, never left to its mailbox running dry.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Implements `Handler<Stop>` (stop at once) for an actor.
macro_rules! stops_on_request {
    ($actor:ty) => {
        impl actix::Handler<$crate::supervision::Stop> for $actor {
            type Result = ();

            fn handle(&mut self, _: $crate::supervision::Stop, ctx: &mut Self::Context) {
                actix::ActorContext::stop(ctx);
            }
        }
    };
}
pub(crate) use stops_on_request;

/// How many children of each kind are alive (their actor not dropped yet): what shows that a
/// restart left no actor behind.
#[derive(Debug, Clone, Default)]
pub struct LiveChildren(Arc<Mutex<BTreeMap<&'static str, usize>>>);

impl LiveChildren {
    fn add(&self, kind: &'static str, delta: isize) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(kind).or_default();
        *n = n.saturating_add_signed(delta);
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.to_string(), *n)).collect()
    }
}

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

impl ChildId {
    /// The kind of child, for counts and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ChildId::Core { kind, .. } => kind,
            ChildId::ShardConsumer { .. } => "ShardConsumer",
            ChildId::Responder { .. } => "Responder",
        }
    }
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
    live: Option<LiveChildren>,
}

impl ExitGuard {
    /// The guard of a child that reports to `to` and counts in `live` while it exists.
    pub fn new(child: ChildId, to: Recipient<ChildExited>, live: &LiveChildren) -> Self {
        live.add(child.kind(), 1);
        ExitGuard { child, to: Some(to), reason: None, live: Some(live.clone()) }
    }

    /// A guard that reports to nobody (an actor started outside a Supervisor, in a test).
    pub fn detached(child: ChildId) -> Self {
        ExitGuard { child, to: None, reason: None, live: None }
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
        if let Some(live) = self.live.take() {
            live.add(self.child.kind(), -1);
        }
        if let Some(to) = self.to.take() {
            to.do_send(ChildExited { child: self.child.clone(), reason });
        }
    }
}
