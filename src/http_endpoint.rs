//! The optional HTTP endpoint of the process (`http.listen`): Prometheus's `/metrics`,
//! `/healthz` (liveness) and `/readyz` (readiness), for scrapers and orchestrators.
//!
//! It runs on a thread (arbiter) of its own, so a scrape never holds up an actor: `/metrics`
//! encodes the registry the Metrics actors record into (with the official client's encoders),
//! and each probe asks every observer's Supervisor a [`Probe`], waiting at most a second.
//! Only the configured address is bound, before any observer starts (a failure to bind stops
//! the start, naming the address).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::Arbiter;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::metrics::Exporter;
use crate::observer::{Probe, ProbeAnswer, Supervisor};

/// How long a probe waits for each observer: an actor system that does not answer within this
/// is not alive.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A slow client (or none at all) does not hold a connection open past this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (the caller names it in the error).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// What the endpoint answers from.
pub struct EndpointState {
    pub exporter: Arc<Exporter>,
    pub observers: Vec<(String, Addr<Supervisor>)>,
}

/// Serves `listener` on an arbiter of its own until the arbiter is stopped.
pub fn serve(listener: std::net::TcpListener, state: EndpointState) -> Arbiter {
    let arbiter = Arbiter::new();
    let state = Arc::new(state);
    arbiter.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return log::error!("http endpoint: cannot serve its socket: {e}"),
        };
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: the probes fail for a moment, nothing else.
                    log::warn!("http endpoint: accept failed ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = state.clone();
            actix_rt::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&state, &req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    log::debug!("http endpoint: connection ended: {e}");
                }
            });
        }
    });
    arbiter
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn answer(state: &EndpointState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n".to_owned());
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            metrics(&state.exporter, accept)
        }
        "/healthz" => {
            let (status, body) = liveness(&probe_all(&state.observers).await);
            reply(status, TEXT, body)
        }
        "/readyz" => {
            let (status, body) = readiness(&probe_all(&state.observers).await);
            reply(status, TEXT, body)
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found: try /metrics, /healthz or /readyz\n".to_owned()),
    }
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), the Prometheus text format
/// otherwise.
fn metrics(exporter: &Exporter, accept: &str) -> Response<Full<Bytes>> {
    let (encoded, content_type) = if accept.contains("application/openmetrics-text") {
        (exporter.encode_openmetrics(), OPENMETRICS)
    } else {
        (exporter.encode_text(), prometheus_client::encoding::prometheus_text::CONTENT_TYPE)
    };
    match encoded {
        Ok(body) => reply(StatusCode::OK, content_type, body),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("cannot encode the metrics: {e}\n")),
    }
}

/// What came of asking one observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Answered(ProbeAnswer),
    /// No answer within [`PROBE_TIMEOUT`].
    Silent,
    /// Its Supervisor has stopped.
    Gone,
}

/// Asks every observer at once, each for at most [`PROBE_TIMEOUT`].
async fn probe_all(observers: &[(String, Addr<Supervisor>)]) -> Vec<(String, Heard)> {
    let asks = observers.iter().map(|(id, addr)| async move {
        let heard = match tokio::time::timeout(PROBE_TIMEOUT, addr.send(Probe)).await {
            Ok(Ok(answer)) => Heard::Answered(answer),
            Ok(Err(_)) => Heard::Gone,
            Err(_) => Heard::Silent,
        };
        (id.clone(), heard)
    });
    futures::future::join_all(asks).await
}

fn not_alive(id: &str, heard: &Heard) -> Option<String> {
    match heard {
        Heard::Answered(_) => None,
        Heard::Silent => Some(format!("observer {id}: no answer within {} ms", PROBE_TIMEOUT.as_millis())),
        Heard::Gone => Some(format!("observer {id}: stopped")),
    }
}

/// 200 when every observer answered, 503 naming those that did not.
pub fn liveness(heard: &[(String, Heard)]) -> (StatusCode, String) {
    let problems: Vec<String> = heard.iter().filter_map(|(id, h)| not_alive(id, h)).collect();
    verdict(problems)
}

/// 200 when every observer is ready, 503 naming each that is not and why.
pub fn readiness(heard: &[(String, Heard)]) -> (StatusCode, String) {
    let problems: Vec<String> = heard
        .iter()
        .filter_map(|(id, h)| match h {
            Heard::Answered(ProbeAnswer { ready: Err(why) }) => Some(format!("observer {id}: not ready: {why}")),
            other => not_alive(id, other),
        })
        .collect();
    if heard.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no observer is running\n".to_owned());
    }
    verdict(problems)
}

fn verdict(problems: Vec<String>) -> (StatusCode, String) {
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.iter().map(|p| format!("{p}\n")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Heard {
        Heard::Answered(ProbeAnswer { ready: Ok(()) })
    }

    fn not_ready(why: &str) -> Heard {
        Heard::Answered(ProbeAnswer { ready: Err(why.to_owned()) })
    }

    fn of(list: &[(&str, Heard)]) -> Vec<(String, Heard)> {
        list.iter().map(|(id, h)| ((*id).to_owned(), h.clone())).collect()
    }

    #[test]
    fn alive_when_every_observer_answers_ready_or_not() {
        assert_eq!(liveness(&of(&[("a", ready()), ("b", not_ready("starting"))])), (StatusCode::OK, "ok\n".into()));
        let (status, body) = liveness(&of(&[("a", ready()), ("b", Heard::Silent), ("c", Heard::Gone)]));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "observer b: no answer within 1000 ms\nobserver c: stopped\n");
    }

    #[test]
    fn ready_only_when_every_observer_is() {
        assert_eq!(readiness(&of(&[("a", ready()), ("b", ready())])), (StatusCode::OK, "ok\n".into()));
        let (status, body) = readiness(&of(&[("a", ready()), ("b", not_ready("shutting down"))]));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "observer b: not ready: shutting down\n");
        let (status, body) = readiness(&of(&[("a", Heard::Silent)]));
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "observer a: no answer within 1000 ms\n")
        );
        assert_eq!(readiness(&[]).0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
