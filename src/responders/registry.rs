//! Where responders are found: the modules this build knows (for the config loader), and the
//! routes of a running observer (for its consumers).
//!
//! A route is a responder's id and the address of its current actor. Consumers look the
//! address up at every send, so when the Supervisor restarts a responder's actor and swaps the
//! route, the next command goes to the new one.

use std::sync::{Arc, RwLock};

use actix::prelude::*;

use super::{Execute, ExecuteBatch, ResponderModule, pagerduty, sendgrid, slack, stdout, webhook};

/// Every responder this build knows. Adding a responder: write its module, add one line here.
pub static MODULES: &[&ResponderModule] =
    &[&slack::MODULE, &pagerduty::MODULE, &sendgrid::MODULE, &webhook::MODULE, &stdout::MODULE];

/// The index of a route: the position of its responder in the observer's list, which is also
/// what the command parser answers for a command it can route.
pub type RouteIndex = usize;

/// Where a route's commands go: its actor, taking one command (a command's journey with its
/// claim, when dedup is on) or a consumer's batch of them.
#[derive(Clone)]
pub struct RouteTarget {
    pub one: Recipient<Execute>,
    pub batch: Recipient<ExecuteBatch>,
}

impl RouteTarget {
    pub fn of<A>(addr: &Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>> + Handler<Execute> + Handler<ExecuteBatch>,
    {
        RouteTarget { one: addr.clone().recipient(), batch: addr.clone().recipient() }
    }
}

struct Route {
    responder_id: Arc<str>,
    target: RwLock<RouteTarget>,
}

/// The routes of one observer, by [`RouteIndex`].
#[derive(Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Adds a route; its index is the number of routes before it.
    pub fn push(&mut self, responder_id: &str, target: RouteTarget) -> RouteIndex {
        self.routes.push(Route { responder_id: Arc::from(responder_id), target: RwLock::new(target) });
        self.routes.len() - 1
    }

    /// The responder id and current address of a route.
    pub fn get(&self, route: RouteIndex) -> Option<(Arc<str>, RouteTarget)> {
        let r = self.routes.get(route)?;
        let target = r.target.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        Some((r.responder_id.clone(), target))
    }

    /// Points a route at a new actor (after a restart).
    pub fn replace(&self, route: RouteIndex, target: RouteTarget) {
        if let Some(r) = self.routes.get(route) {
            *r.target.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = target;
        }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
