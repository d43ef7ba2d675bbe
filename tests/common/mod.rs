//! Shared helpers of the integration tests: the local emulators' endpoints (started by
//! `scripts/emulators.sh start`, exported by `scripts/test.sh`) and unique resource names.

#![allow(dead_code)]

pub mod http;
pub mod kinesis;
pub mod proxy;
pub mod sauna;

use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Endpoints of the emulators, from the standard AWS variables.
#[derive(Debug, Clone)]
pub struct Emulators {
    pub kinesis: String,
    pub dynamodb: String,
    pub cloudwatch: String,
}

/// The emulators this test needs; panics with instructions when they are not running.
pub fn emulators() -> Emulators {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: run the tests with scripts/test.sh, or `scripts/emulators.sh start && eval \"$(scripts/emulators.sh env)\"` first"
            )
        })
    };
    let e = Emulators {
        kinesis: var("AWS_ENDPOINT_URL_KINESIS"),
        dynamodb: var("AWS_ENDPOINT_URL_DYNAMODB"),
        cloudwatch: var("AWS_ENDPOINT_URL_CLOUDWATCH"),
    };
    for url in [&e.kinesis, &e.dynamodb, &e.cloudwatch] {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let reachable =
            addr.parse().ok().is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
        assert!(reachable, "no emulator answers at {url}: run scripts/emulators.sh start");
    }
    e
}

/// A name no other test (or earlier run) uses: kinesis-mock keeps deleted streams around
/// briefly, so names are never reused.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("0")
    )
}
