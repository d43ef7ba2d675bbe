//! The process: one actix System, one Supervisor per enabled observer, SIGTERM/SIGINT handling,
//! and the optional HTTP endpoint (`http.listen`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::Arbiter;

use crate::aws::AwsClients;
use crate::config_dir::Configuration;
use crate::http_endpoint::{self, EndpointState};
use crate::metrics::Exporter;
use crate::observe::Observe;
use crate::observer::{
    InjectConsumerFailure, InjectCoreFailure, ObserverSnapshot, Shutdown, Supervisor, SupervisorSpec,
};

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("the actor system failed: {0}")]
    System(std::io::Error),
    #[error("cannot listen on {addr} (http.listen): {source}")]
    HttpListen { addr: SocketAddr, source: std::io::Error },
}

/// The running observers of a process.
pub struct Observers {
    supervisors: Vec<(String, Addr<Supervisor>)>,
    /// Kept alive for as long as the observers run; stopped on drop.
    arbiters: Vec<Arbiter>,
    /// The Prometheus registry every observer records into (with `http.listen`).
    exporter: Option<Arc<Exporter>>,
}

impl Observers {
    /// Starts every enabled observer of `configuration` (inside a running actix System).
    pub async fn start(configuration: Configuration) -> Observers {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let arbiters: Vec<Arbiter> = (0..cores).map(|_| Arbiter::new()).collect();
        let handles: Vec<_> = arbiters.iter().map(Arbiter::handle).collect();
        let responders = Arbiter::new();
        let worker_id = worker_id(configuration.runtime.leases.worker_id.as_deref());
        let outcome_log = match configuration.loggers.first() {
            Some(l) => Some((AwsClients::for_observer(&l.region, &l.credentials).await.dynamodb, l.table_name.clone())),
            None => None,
        };
        let exporter = configuration.runtime.http.listen.map(|_| Arc::new(Exporter::new()));
        let mut supervisors = vec![];
        for observer in &configuration.observers {
            let clients = AwsClients::for_observer(&observer.region, &observer.credentials).await;
            let spec = SupervisorSpec {
                observer: observer.clone(),
                runtime: configuration.runtime.clone(),
                worker_id: worker_id.clone(),
                clients,
                responders: configuration.responders.clone(),
                command_schemas: Arc::clone(&configuration.command_schemas),
                arbiters: handles.clone(),
                responder_arbiter: responders.handle(),
                outcome_log: outcome_log.clone(),
                prometheus: exporter.as_ref().map(|e| e.observer(&observer.id)),
            };
            supervisors.push((observer.id.clone(), Supervisor::new(spec).start()));
        }
        let mut arbiters = arbiters;
        arbiters.push(responders);
        Observers { supervisors, arbiters, exporter }
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener`, on a thread of its own (stopped
    /// with the returned arbiter).
    pub fn serve_http(&self, listener: std::net::TcpListener) -> Arbiter {
        let state =
            EndpointState { exporter: self.exporter.clone().unwrap_or_default(), observers: self.supervisors.clone() };
        http_endpoint::serve(listener, state)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.supervisors.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn supervisor(&self, id: &str) -> Option<&Addr<Supervisor>> {
        self.supervisors.iter().find(|(i, _)| i == id).map(|(_, a)| a)
    }

    /// A snapshot of every observer.
    pub async fn observe(&self) -> Vec<ObserverSnapshot> {
        let mut out = vec![];
        for (_, s) in &self.supervisors {
            if let Ok(snapshot) = s.send(Observe::<Supervisor>::new()).await {
                out.push(snapshot);
            }
        }
        out
    }

    /// Fails the consumer of `shard` of observer `id` (tests of supervision).
    pub async fn inject_consumer_failure(&self, id: &str, shard: &str, panic: bool) -> bool {
        match self.supervisor(id) {
            Some(s) => s.send(InjectConsumerFailure { shard: shard.to_owned(), panic }).await.unwrap_or(false),
            None => false,
        }
    }

    /// Fails the core of observer `id` as a failing Checkpointer would (tests of supervision).
    pub async fn inject_core_failure(&self, id: &str) -> bool {
        match self.supervisor(id) {
            Some(s) => s.send(InjectCoreFailure).await.unwrap_or(false),
            None => false,
        }
    }

    /// Graceful stop of every observer: in-flight commands finish, checkpoints are written,
    /// leases released.
    pub async fn shutdown(self) {
        let stops: Vec<_> = self.supervisors.iter().map(|(_, s)| s.send(Shutdown)).collect();
        futures::future::join_all(stops).await;
        for a in &self.arbiters {
            a.stop();
        }
    }
}

/// `<hostname>:<random UUID>`: unique per process, readable in the lease table.
pub fn default_worker_id() -> String {
    worker_id(None)
}

/// `<prefix>:<random UUID>`, the prefix being the configured `leases.workerId` or the hostname.
/// Every process has an identity of its own in its conditional writes: two processes started
/// with the same configured id would otherwise both "own" every lease, each taking the other's
/// renewals for its own.
fn worker_id(prefix: Option<&str>) -> String {
    let prefix = prefix.map(str::to_owned).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    });
    format!("{prefix}:{}", uuid::Uuid::new_v4())
}

/// Runs the observers until SIGTERM or SIGINT, then stops them gracefully. A second signal
/// during the graceful stop exits at once.
pub fn run(configuration: Configuration) -> Result<(), RunError> {
    // Bound before anything starts: an address in use stops the start, naming it.
    let listener = match configuration.runtime.http.listen {
        Some(addr) => {
            let l = http_endpoint::bind(addr).map_err(|source| RunError::HttpListen { addr, source })?;
            let at = l.local_addr().map_or_else(|_| addr.to_string(), |a| a.to_string());
            log::info!("http endpoint listening on {at}: /metrics (Prometheus), /healthz, /readyz");
            Some(l)
        }
        None => None,
    };
    let system = actix::System::new();
    system.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
        let observers = Observers::start(configuration).await;
        let endpoint = listener.map(|l| observers.serve_http(l));
        log::info!("sauna running: observers [{}]; stop with SIGTERM or SIGINT", observers.ids().join(", "));
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::info!("{which} received: stopping gracefully (send it again to stop at once)");
        let graceful = observers.shutdown();
        tokio::select! {
            _ = graceful => {}
            _ = term.recv() => { log::warn!("second signal: stopping at once"); }
            _ = int.recv() => { log::warn!("second signal: stopping at once"); }
        }
        // Let the last log lines and releases leave before the runtime goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(endpoint) = endpoint {
            endpoint.stop();
        }
        Ok::<(), RunError>(())
    })?;
    Ok(())
}
