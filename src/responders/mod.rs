//! Responders: the actors that action commands, one module per external service.
//!
//! A responder module provides three things: the config schemas it is configured by, the
//! command criteria it accepts, and `execute`. Registering it is one line in [`MODULES`].
//!
//! This module is the contract (what a responder is, what one attempt comes to); [`http`] the
//! HTTP conventions they share; `actor` the machinery around every responder (mailbox,
//! concurrency, timeouts, retries); `batch` how a consumer's commands reach it many at once;
//! `registry` the modules and a running observer's routes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apache_avro::types::Value as AvroValue;

use crate::command::Command;
use crate::config::runtime::{Endpoints, RateLimit};
use crate::config::{FieldError, Secret};
use crate::iglu::{SchemaCriterion, SchemaKey};

mod actor;
mod attempts;
mod batch;
pub mod http;
mod pagerduty;
mod registry;
mod sendgrid;
mod slack;
mod stdout;
mod webhook;

pub use actor::{CommandResult, Execute, ResponderActor, ResponderSnapshot, ResponderSpec};
pub use batch::{Answer, Answers, ExecuteBatch};
pub use registry::{MODULES, RouteIndex, RouteTarget, Routes};

/// An Avro config schema embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSchema {
    /// The Iglu key config files name it by.
    pub key: &'static str,
    /// The Avro schema text.
    pub avro: &'static str,
}

/// One enabled config file of a responder, already checked against its Avro schema.
pub struct ResponderConfigFile<'a> {
    pub key: &'a SchemaKey,
    pub value: &'a AvroValue,
}

/// What one config file configures.
#[derive(Debug, Default)]
pub struct Configured {
    pub responders: Vec<Arc<dyn Responder>>,
    /// Things the user should know but that do not stop the program (a batch-only action
    /// enabled in a config, say).
    pub warnings: Vec<String>,
}

/// A responder module's registration.
pub struct ResponderModule {
    /// Human name, for logs.
    pub name: &'static str,
    pub config_schemas: &'static [ConfigSchema],
    /// Builds the responders one enabled config file asks for.
    pub configure: fn(&ResponderConfigFile<'_>) -> Result<Configured, FieldError>,
}

/// What one attempt at a command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Actioned; the detail is for the log (e.g. "HTTP 200").
    Done(String),
    /// A transient failure (timeout, connection error, 5xx, 429): worth another attempt, not
    /// before `retry_after` when the service said so.
    Retry { reason: String, retry_after: Option<Duration> },
    /// A permanent failure (a 4xx other than 429): another attempt would fail the same way.
    Fail(String),
}

/// What every responder gets to do its work: one shared HTTP client (connection pools, TLS),
/// the configured API base URLs, and the per-attempt timeout.
#[derive(Debug, Clone)]
pub struct ResponderContext {
    /// Built at the first request ([`ResponderContext::http`]): building it reads the system's
    /// root certificates (~18 M instructions, a fifth of sauna's start), which a process whose
    /// responders make no HTTP request (stdout) need not do. Shared by the context's clones.
    http: Arc<OnceLock<reqwest::Client>>,
    pub endpoints: Endpoints,
    pub request_timeout: Duration,
}

impl ResponderContext {
    pub fn new(endpoints: Endpoints, request_timeout: Duration) -> Self {
        ResponderContext { http: Arc::default(), endpoints, request_timeout }
    }

    /// The shared HTTP client, with the per-attempt timeout and sauna's user agent.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.request_timeout)
                .connect_timeout(self.request_timeout.min(Duration::from_secs(10)))
                .user_agent(concat!("sauna/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }
}

/// The future of one attempt.
pub type AttemptFuture<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

/// The future of one attempt at each of many commands, in their order.
pub type AttemptsFuture<'a> = Pin<Box<dyn Future<Output = Vec<Attempt>> + Send + 'a>>;

/// A configured responder. `Debug` must not print secrets (hold them in
/// [`crate::config::Secret`]).
///
/// A responder only makes one attempt at a time; the shared [`ResponderActor`] around it gives
/// it a mailbox, a concurrency limit, timeouts, retries with backoff, restarts and metrics.
pub trait Responder: Send + Sync + fmt::Debug {
    /// The config id, unique in the config directory.
    fn id(&self) -> &str;
    /// The command types this responder actions.
    fn criteria(&self) -> Vec<SchemaCriterion>;
    /// One attempt at actioning `command`.
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a>;
    /// Whether the first attempts at the commands a consumer sends together are made together,
    /// with [`Responder::execute_batch`]: for a responder whose attempts cost less together
    /// than apart (stdout writes many lines at once). Retries are still made one by one.
    fn takes_batches(&self) -> bool {
        false
    }
    /// One attempt at each of `commands`, answered in their order, made under one timeout and
    /// one set of permits (called only if [`Responder::takes_batches`], and never for a
    /// responder with a pace). The default makes them all at once with `execute`.
    fn execute_batch<'a>(&'a self, commands: Vec<&'a Command>, ctx: &'a ResponderContext) -> AttemptsFuture<'a> {
        Box::pin(futures::future::join_all(commands.into_iter().map(|command| self.execute(command, ctx))))
    }
    /// Its own per-attempt timeout, if it has one (otherwise `retry.requestTimeoutMillis`).
    fn timeout(&self) -> Option<Duration> {
        None
    }
    /// How many commands it takes at once, when that is its own rather than
    /// `responderConcurrency` (which is about requests in flight to a service): `None` for
    /// every responder that sends requests.
    fn concurrency(&self) -> Option<usize> {
        None
    }
    /// Its pace when the runtime config's `rateLimits` does not name it (the service's own
    /// limit, so that a burst of commands does not meet a storm of 429s); `None`: no limit.
    fn default_rate_limit(&self) -> Option<RateLimit> {
        None
    }
    /// The URL it sends to, if it has one: `sauna doctor` resolves its host (and prints nothing
    /// else of it, since a webhook URL holds a token). `endpoints` are the runtime config's.
    fn endpoint(&self, endpoints: &Endpoints) -> Option<Secret> {
        let _ = endpoints;
        None
    }
}

/// Parses the command criteria a responder config lists (`field` names the array).
pub fn parse_criteria(list: &[String], field: &str) -> Result<Vec<SchemaCriterion>, FieldError> {
    if list.is_empty() {
        return Err(FieldError::new(
            field,
            "expected at least one Iglu criterion such as iglu:com.acme/thing/jsonschema/1-*-*",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, c)| c.parse().map_err(|e| FieldError::new(format!("{field}[{i}]"), format!("{e}"))))
        .collect()
}

/// Parses a criterion written in a responder module; a bad literal is a programming error.
pub(crate) fn criterion(s: &'static str) -> SchemaCriterion {
    s.parse().unwrap_or_else(|e| panic!("responder criterion literal {s:?}: {e}"))
}

/// What every responder config's `data` holds besides `enabled` (which the loader handles):
/// its `id`, and its own `parameters`.
#[derive(Debug, serde::Deserialize)]
pub struct ConfigData<P> {
    pub id: String,
    pub parameters: P,
}

/// Decodes a responder config (already checked against its Avro schema) into its id and its
/// parameters `P`, a serde struct of the schema's `parameters` record.
pub fn decode<P: serde::de::DeserializeOwned>(value: &AvroValue) -> Result<ConfigData<P>, FieldError> {
    apache_avro::from_value(value).map_err(|e| FieldError::new("data", format!("cannot decode: {e}")))
}

#[cfg(test)]
mod context_tests {
    use std::time::Duration;

    use super::ResponderContext;
    use crate::config::runtime::Endpoints;

    /// No client (nor the root certificates it reads) until a responder asks for one; then one
    /// client for the context and every clone of it.
    #[test]
    fn the_http_client_is_built_at_first_use_and_shared_by_clones() {
        let endpoints = Endpoints {
            pager_duty_events_url: "http://127.0.0.1:9/events".to_owned(),
            sendgrid_api_url: "http://127.0.0.1:9".to_owned(),
        };
        let context = ResponderContext::new(endpoints, Duration::from_secs(1));
        let clone = context.clone();
        assert!(context.http.get().is_none(), "built before its first use");
        let first: *const reqwest::Client = clone.http();
        assert!(context.http.get().is_some(), "a clone's first use builds it for the context too");
        assert!(std::ptr::eq(first, context.http()), "one client, shared");
    }
}
