//! Where responders are found: the modules this build knows (for the config loader), and the
//! routes of a running observer (for its consumers).
//!
//! A route is a responder's id and the address of its current actor. Consumers look the
//! address up at every send, so when the Supervisor restarts a responder's actor and swaps the
//! route, the next command goes to the new one.

use std::sync::{Arc, RwLock};

use actix::Recipient;

use super::{Execute, ResponderModule, pagerduty, sendgrid, slack, stdout, webhook};

/// Every responder this build knows. Adding a responder: write its module, add one line here.
pub static MODULES: &[&ResponderModule] =
    &[&slack::MODULE, &pagerduty::MODULE, &sendgrid::MODULE, &webhook::MODULE, &stdout::MODULE];

/// The index of a route: the position of its responder in the observer's list, which is also
/// what the command parser answers for a command it can route.
pub type RouteIndex = usize;

struct Route {
    responder_id: Arc<str>,
    recipient: RwLock<Recipient<Execute>>,
}

/// The routes of one observer, by [`RouteIndex`].
#[derive(Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Adds a route; its index is the number of routes before it.
    pub fn push(&mut self, responder_id: &str, recipient: Recipient<Execute>) -> RouteIndex {
        self.routes.push(Route { responder_id: Arc::from(responder_id), recipient: RwLock::new(recipient) });
        self.routes.len() - 1
    }

    /// The responder id and current address of a route.
    pub fn get(&self, route: RouteIndex) -> Option<(Arc<str>, Recipient<Execute>)> {
        let r = self.routes.get(route)?;
        let recipient = r.recipient.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        Some((r.responder_id.clone(), recipient))
    }

    /// Points a route at a new actor (after a restart).
    pub fn replace(&self, route: RouteIndex, recipient: Recipient<Execute>) {
        if let Some(r) = self.routes.get(route) {
            *r.recipient.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = recipient;
        }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
