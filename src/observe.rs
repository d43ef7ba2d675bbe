//! The one way to look inside an actor: every actor that has state worth seeing implements
//! [`Observable`] (a typed snapshot, built from the actor's own counters) and answers
//! [`Observe`] with it. Tests, `sauna` operators' tools and the observer's own snapshot all use
//! the same message.
//!
//! (Quickwit's actors have `ObservableState` for the same reason: a test drives an actor by its
//! messages and checks it by its snapshot, never by reaching into its fields.)

use std::marker::PhantomData;

use actix::prelude::*;

/// An actor with a typed snapshot of its state.
pub trait Observable: Actor {
    type Snapshot: Send + 'static;

    fn snapshot(&self, ctx: &mut Self::Context) -> Self::Snapshot;
}

/// Asks actor `A` for its [`Observable::Snapshot`].
pub struct Observe<A>(PhantomData<fn() -> A>);

impl<A> Observe<A> {
    pub fn new() -> Self {
        Observe(PhantomData)
    }
}

impl<A> Default for Observe<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A> std::fmt::Debug for Observe<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observe")
    }
}

impl<A: Observable> Message for Observe<A> {
    type Result = A::Snapshot;
}

/// Implements `Handler<Observe<Self>>` for an [`Observable`] actor (a blanket impl of actix's
/// trait is not allowed here).
macro_rules! answers_observe {
    ($actor:ty) => {
        impl actix::Handler<$crate::observe::Observe<$actor>> for $actor {
            type Result = actix::MessageResult<$crate::observe::Observe<$actor>>;

            fn handle(&mut self, _: $crate::observe::Observe<$actor>, ctx: &mut Self::Context) -> Self::Result {
                actix::MessageResult($crate::observe::Observable::snapshot(self, ctx))
            }
        }
    };
}
pub(crate) use answers_observe;

/// The snapshot of the actor at `addr` (`None` if it is gone).
pub async fn observe<A>(addr: &Addr<A>) -> Option<A::Snapshot>
where
    A: Observable + Handler<Observe<A>>,
    A::Context: actix::dev::ToEnvelope<A, Observe<A>>,
{
    addr.send(Observe::new()).await.ok()
}
