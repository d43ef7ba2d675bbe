//! A fault-injecting HTTP/1.1 proxy between `sauna run` and an emulator.
//!
//! Why it exists: no emulator throttles, fails or stalls on demand (kinesis-mock and dynalite
//! never answer `ProvisionedThroughputExceededException` or a 5xx), and faking the SDK would
//! skip exactly what these faults exercise in sauna: the SDK's own retries, timeouts and
//! connection pool, then sauna's handling of what gets through. So the real process talks to
//! the real emulator through this proxy, which forwards every request unchanged (method, path,
//! headers, body; only `Host` and the hop-by-hop headers are its own) and the answer back, and,
//! while a rule matches, answers with a fault instead.
//!
//! A request's operation is its `X-Amz-Target` header after the dot (`GetRecords`,
//! `UpdateItem`); rules name operations that way. Besides whole-request faults, a PutRecords
//! can be answered as a partial failure ([`Fault::FailEntries`]): its first entries are kept
//! from the stream and marked throttled in the answer, as the service does when a shard is over
//! its write limit (which no emulator does). Every injected fault and every forwarded
//! request is counted, so a test can prove that its fault really happened.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

/// What a matching request gets instead of the upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status and body (content type as the request's), not forwarded.
    Status(u16, String),
    /// The service's throttling answer: HTTP 400 `ProvisionedThroughputExceededException`,
    /// shaped as Kinesis or DynamoDB sends it (by the `X-Amz-Target` prefix).
    Throttle,
    /// The connection is closed (RST) with no answer.
    Reset,
    /// Held this long, then forwarded.
    Stall(Duration),
    /// Forwarded, and the answer's body ended cleanly after this long, as a service ends a
    /// long answer (an event stream's subscription) of its own accord.
    EndAfter(Duration),
    /// The service is unreachable: matching requests have their connection closed with no
    /// answer, and while the rule covers every operation, new connections are closed at once.
    Outage,
    /// A Kinesis PutRecords partly refused: the request's first `n` entries (all, if it has
    /// fewer) are not forwarded, and the answer gives them `ErrorCode`
    /// `ProvisionedThroughputExceededException` at their positions, the upstream's results for
    /// the rest, and the matching `FailedRecordCount`. Other requests are forwarded unchanged.
    FailEntries(usize),
}

/// A fault's kind, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Status,
    Throttle,
    Reset,
    Stall,
    EndAfter,
    Outage,
    FailEntries,
}

impl Fault {
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Status(..) => Kind::Status,
            Fault::Throttle => Kind::Throttle,
            Fault::Reset => Kind::Reset,
            Fault::Stall(_) => Kind::Stall,
            Fault::EndAfter(_) => Kind::EndAfter,
            Fault::Outage => Kind::Outage,
            Fault::FailEntries(_) => Kind::FailEntries,
        }
    }
}

/// Which requests a rule applies to.
#[derive(Debug, Clone)]
pub enum Ops {
    All,
    Only(Vec<String>),
}

/// Which operations, what, and for how many matching requests (`None`: until cleared).
#[derive(Debug, Clone)]
pub struct Rule {
    ops: Ops,
    fault: Fault,
    remaining: Option<u64>,
}

impl Rule {
    /// `fault` on every request, until cleared.
    pub fn all(fault: Fault) -> Rule {
        Rule { ops: Ops::All, fault, remaining: None }
    }

    /// `fault` on the named operations (`X-Amz-Target` after the dot), until cleared.
    pub fn on(ops: &[&str], fault: Fault) -> Rule {
        Rule { ops: Ops::Only(ops.iter().map(|s| (*s).to_owned()).collect()), fault, remaining: None }
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u64) -> Rule {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, op: &str) -> bool {
        match &self.ops {
            Ops::All => true,
            Ops::Only(ops) => ops.iter().any(|o| o == op),
        }
    }
}

/// One fault as injected. `op` is `(connect)` for a connection refused by an outage.
#[derive(Debug, Clone)]
pub struct Injection {
    pub at: Instant,
    pub kind: Kind,
    pub op: String,
}

/// One request forwarded and answered (2xx or not): when, which operation, its body.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub at: Instant,
    pub op: String,
    pub status: u16,
    pub body: Bytes,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    injections: Vec<Injection>,
    forwarded: BTreeMap<String, u64>,
    requests: Vec<Forwarded>,
    /// Only count what is forwarded, keeping no request (a benchmark's hundreds of thousands
    /// of bodies would be most of its memory).
    counting_only: bool,
}

/// What every connection task shares.
struct Shared {
    upstream: String,
    state: Mutex<State>,
    client: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fault for a request of `op`, if a rule matches (the first one set wins); counts it.
    fn decide(&self, op: &str) -> Option<Fault> {
        let mut s = self.lock();
        let i = s.rules.iter().position(|r| r.matches(op) && r.remaining != Some(0))?;
        let rule = &mut s.rules[i];
        let fault = rule.fault.clone();
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                s.rules.remove(i);
            }
        }
        s.injections.push(Injection { at: Instant::now(), kind: fault.kind(), op: op.to_owned() });
        Some(fault)
    }

    /// A new connection during an outage of every operation is refused (and counted).
    fn refuse_connection(&self) -> bool {
        let mut s = self.lock();
        let out = s.rules.iter().any(|r| matches!(r.ops, Ops::All) && r.fault == Fault::Outage);
        if out {
            s.injections.push(Injection { at: Instant::now(), kind: Kind::Outage, op: "(connect)".into() });
        }
        out
    }

    /// Forwards the request; the answer's body is streamed back as it comes (an event stream
    /// lasts minutes), ended after `end_after` if set.
    async fn forward(
        &self,
        op: &str,
        req: hyper::http::request::Parts,
        body: Bytes,
        end_after: Option<Duration>,
    ) -> Answer {
        let request_body = body.clone();
        let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut headers = req.headers;
        // Hop-by-hop headers and the framing are the client's business; Host names the proxy.
        strip(&mut headers);
        headers.remove(header::HOST);
        let sent = self.client.request(req.method, format!("{}{path}", self.upstream)).headers(headers).body(body);
        let resp = match sent.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Broken(format!("upstream {}: {e}", self.upstream)),
        };
        let status = resp.status();
        let mut headers = resp.headers().clone();
        {
            let mut s = self.lock();
            *s.forwarded.entry(op.to_owned()).or_default() += 1;
            if !s.counting_only {
                let seen =
                    Forwarded { at: Instant::now(), op: op.to_owned(), status: status.as_u16(), body: request_body };
                s.requests.push(seen);
            }
        }
        strip(&mut headers);
        let until = end_after.map(|d| tokio::time::Instant::now() + d);
        let chunks = futures::stream::unfold(Some(resp), move |resp| async move {
            let mut resp = resp?;
            let next = match until {
                Some(until) => match tokio::time::timeout_at(until, resp.chunk()).await {
                    Ok(next) => next,
                    Err(_) => return None,
                },
                None => resp.chunk().await,
            };
            match next {
                Ok(Some(chunk)) => Some((Ok(hyper::body::Frame::data(chunk)), Some(resp))),
                Ok(None) => None,
                Err(e) => Some((Err(BoxError::from(e)), None)),
            }
        });
        let mut out = Response::new(BoxBody::new(StreamBody::new(chunks)));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Answer::Reply(out)
    }
}

impl Shared {
    /// [`Fault::FailEntries`]: forwards all but the first `n` entries, then answers for all.
    async fn fail_entries(&self, op: &str, req: hyper::http::request::Parts, body: Bytes, n: usize) -> Answer {
        let Ok(mut request) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return self.forward(op, req, body, None).await;
        };
        let stream = request["StreamName"].as_str().unwrap_or("(unnamed)").to_owned();
        let Some(entries) = request.get_mut("Records").and_then(|r| r.as_array_mut()) else {
            return self.forward(op, req, body, None).await;
        };
        let failed = n.min(entries.len());
        let kept = entries.split_off(failed);
        let refused = serde_json::json!({
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": format!("Rate exceeded for shard in stream {stream} (injected by the fault proxy)")
        });
        let mut results = vec![refused; failed];
        let mut failed_count = failed as u64;
        let mut headers = HeaderMap::new();
        if !kept.is_empty() {
            *entries = kept;
            let Ok(forwarded) = serde_json::to_vec(&request) else {
                return Answer::Broken("cannot serialize the request".into());
            };
            let Answer::Reply(resp) = self.forward(op, req, Bytes::from(forwarded), None).await else {
                return Answer::Broken("upstream failed".into());
            };
            if resp.status() != 200 {
                return Answer::Reply(resp);
            }
            headers = resp.headers().clone();
            let Ok(collected) = resp.into_body().collect().await else {
                return Answer::Broken("upstream answer cut".into());
            };
            let answer: serde_json::Value = serde_json::from_slice(&collected.to_bytes()).unwrap_or_default();
            failed_count += answer["FailedRecordCount"].as_u64().unwrap_or(0);
            results.extend(answer["Records"].as_array().cloned().unwrap_or_default());
        }
        let body = serde_json::json!({ "FailedRecordCount": failed_count, "Records": results }).to_string();
        headers.remove("x-amz-crc32");
        let mut out = reply(200, "application/x-amz-json-1.1", body);
        for (k, v) in &headers {
            if k != header::CONTENT_TYPE {
                out.headers_mut().insert(k, v.clone());
            }
        }
        Answer::Reply(out)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

fn full(body: Bytes) -> ProxyBody {
    Full::new(body).map_err(|never| match never {}).boxed()
}

fn strip(headers: &mut HeaderMap) {
    const HOP: [HeaderName; 5] =
        [header::CONNECTION, header::TRANSFER_ENCODING, header::CONTENT_LENGTH, header::TE, header::UPGRADE];
    for h in HOP {
        headers.remove(h);
    }
    headers.remove("keep-alive");
}

/// How the proxy answers one request.
enum Answer {
    Reply(Response<ProxyBody>),
    /// Close the connection with no answer.
    Drop,
    /// Forwarding failed: the client sees what it would see of a dead upstream.
    Broken(String),
}

/// The name of the proxy's threads.
pub const PROXY_THREAD: &str = "fault-proxy";

/// The proxy, on a thread of its own (so that it works from sync and async tests alike);
/// stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream_url` (`http://host:port`).
    pub fn start(upstream_url: &str) -> FaultProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        // No timeout of its own: a stall is the test's to decide. No proxy from the environment.
        let client = reqwest::Client::builder().no_proxy().http1_only().build().expect("reqwest client");
        let shared = Arc::new(Shared {
            upstream: upstream_url.trim_end_matches('/').to_owned(),
            state: Mutex::default(),
            client,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        // Its threads are named, so that a benchmark can count their CPU out of its own.
        let thread = std::thread::Builder::new().name(PROXY_THREAD.into());
        let spawned = thread.spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(PROXY_THREAD)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                tokio::select! {
                    _ = accept_loop(listener, s) => {}
                    _ = stopped => {}
                }
            });
        });
        spawned.expect("the proxy's thread");
        FaultProxy { addr, shared, stop: Some(stop) }
    }

    /// From now on counts the requests it forwards (`forwarded`) without keeping them
    /// (`requests` stays as it is).
    pub fn count_only(&self) {
        self.shared.lock().counting_only = true;
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (after those already set: the first matching one applies).
    pub fn inject(&self, rule: Rule) {
        self.shared.lock().rules.push(rule);
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        self.shared.lock().rules.clear();
    }

    /// Faults injected so far, by kind and operation.
    pub fn injected(&self) -> BTreeMap<(Kind, String), u64> {
        let mut out = BTreeMap::new();
        for i in &self.shared.lock().injections {
            *out.entry((i.kind, i.op.clone())).or_default() += 1;
        }
        out
    }

    /// Faults of `kind` injected so far, on any operation.
    pub fn injected_count(&self, kind: Kind) -> u64 {
        self.shared.lock().injections.iter().filter(|i| i.kind == kind).count() as u64
    }

    /// Every fault injected, in order.
    pub fn injections(&self) -> Vec<Injection> {
        self.shared.lock().injections.clone()
    }

    /// Every request answered by the upstream, in order.
    pub fn requests(&self) -> Vec<Forwarded> {
        self.shared.lock().requests.clone()
    }

    /// Requests of `op` answered by the upstream.
    pub fn forwarded(&self, op: &str) -> u64 {
        self.shared.lock().forwarded.get(op).copied().unwrap_or(0)
    }

    /// Waits until at least `n` faults of `kind` were injected; panics after `timeout`.
    pub async fn wait_injected(&self, kind: Kind, n: u64, timeout: Duration) {
        let start = Instant::now();
        while self.injected_count(kind) < n {
            assert!(
                start.elapsed() < timeout,
                "only {} of {n} {kind:?} faults injected within {timeout:?}: {:?}",
                self.injected_count(kind),
                self.injected()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Every close by the proxy is then an RST, as a reset connection is; the proxy only
        // closes first on a fault (otherwise the client closes first, and it makes no odds).
        let _ = stream.set_zero_linger();
        if shared.refuse_connection() {
            drop(stream);
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let service = service_fn(move |req| handle(req, shared.clone(), k.clone()));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

/// One request: read it whole, then fault or forward it.
async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    kill: Arc<Notify>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let op = target.split_once('.').map(|(_, op)| op).unwrap_or(&target).to_owned();
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    let answer = match body.collect().await {
        Err(_) => Answer::Drop,
        Ok(body) => match shared.decide(&op) {
            Some(Fault::Status(code, text)) => Answer::Reply(reply(code, &content_type, text)),
            Some(Fault::Throttle) => Answer::Reply(throttle(&target)),
            Some(Fault::Reset | Fault::Outage) => Answer::Drop,
            Some(Fault::Stall(d)) => {
                tokio::time::sleep(d).await;
                shared.forward(&op, parts, body.to_bytes(), None).await
            }
            Some(Fault::EndAfter(d)) => shared.forward(&op, parts, body.to_bytes(), Some(d)).await,
            Some(Fault::FailEntries(n)) => shared.fail_entries(&op, parts, body.to_bytes(), n).await,
            None => shared.forward(&op, parts, body.to_bytes(), None).await,
        },
    };
    match answer {
        Answer::Reply(r) => Ok(r),
        Answer::Broken(why) => {
            eprintln!("fault proxy: forwarding {op} failed ({why}); closing the client's connection");
            kill.notify_one();
            std::future::pending().await
        }
        Answer::Drop => {
            // The connection task drops the connection; this answer is never written.
            kill.notify_one();
            std::future::pending().await
        }
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(full(Bytes::from(body)))
        .expect("a valid response")
}

/// The throttling answer as each service shapes it (the SDK reads the error code from
/// `__type`, dropping any namespace before a `#`).
fn throttle(target: &str) -> Response<ProxyBody> {
    let (content_type, body) = if target.starts_with("DynamoDB") {
        (
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#,
        )
    } else {
        (
            "application/x-amz-json-1.1",
            r#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}"#,
        )
    };
    reply(400, content_type, body.to_owned())
}
