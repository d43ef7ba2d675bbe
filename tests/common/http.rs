//! A local HTTP server standing in for Slack, PagerDuty and SendGrid: it records every request
//! (method, path, headers, body, arrival time) and answers as the test says (status, headers,
//! body, delay).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Self {
        Reply::status(200)
    }

    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: vec![],
            body: if status < 300 { "ok".into() } else { "error".into() },
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Behavior = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

/// The server, on a thread of its own (so that it works from sync and async tests alike);
/// stops when dropped.
pub struct FakeHttp {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    behavior: Arc<Mutex<Behavior>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeHttp {
    /// Starts on a free port of 127.0.0.1, answering 200 to everything.
    pub fn start() -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let behavior: Arc<Mutex<Behavior>> = Arc::new(Mutex::new(Arc::new(|_, _| Reply::ok())));
        let (reqs, beh) = (requests.clone(), behavior.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                let serve = async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (reqs, beh) = (reqs.clone(), beh.clone());
                        tokio::spawn(async move {
                            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                let (reqs, beh) = (reqs.clone(), beh.clone());
                                async move {
                                    let at = Instant::now();
                                    let method = req.method().to_string();
                                    let path = req.uri().to_string();
                                    let headers = req
                                        .headers()
                                        .iter()
                                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                                        .collect();
                                    let body = req
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes().to_vec())
                                        .unwrap_or_default();
                                    let rec = Recorded { method, path, headers, body, at };
                                    let reply = {
                                        let mut all = reqs.lock().expect("lock");
                                        all.push(rec.clone());
                                        let n = all.len();
                                        let f = beh.lock().expect("lock").clone();
                                        f(&rec, n)
                                    };
                                    if !reply.delay.is_zero() {
                                        tokio::time::sleep(reply.delay).await;
                                    }
                                    let mut resp = hyper::Response::builder().status(reply.status);
                                    for (k, v) in &reply.headers {
                                        resp = resp.header(k, v);
                                    }
                                    Ok::<_, std::convert::Infallible>(
                                        resp.body(Full::new(Bytes::from(reply.body))).expect("response"),
                                    )
                                }
                            });
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        FakeHttp { addr, requests, behavior, stop: Some(stop) }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sets how to answer: a function of the request and its 1-based arrival number.
    pub fn behave(&self, f: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) {
        *self.behavior.lock().expect("lock") = Arc::new(f);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let start = Instant::now();
        loop {
            let c = self.count();
            if c >= n {
                return self.requests();
            }
            assert!(start.elapsed() < timeout, "only {c} of {n} requests arrived within {timeout:?}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until no request arrived for `quiet`.
    pub fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> usize {
        let start = Instant::now();
        let mut last = self.count();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let c = self.count();
            if c != last {
                last = c;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return c;
            }
            assert!(start.elapsed() < timeout, "requests kept coming for {timeout:?}");
        }
    }
}
