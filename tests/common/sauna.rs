//! `sauna run` as a real process: a config directory for it, and start / SIGTERM / kill -9 /
//! SIGSTOP / SIGCONT.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Runtime tuning for tests: a 2 s failover and short intervals instead of long sleeps.
pub fn fast_runtime() -> Value {
    json!({
        "leases": {
            "failoverTimeMillis": 2000,
            "shardSyncIntervalMillis": 1000,
            "parentShardPollIntervalMillis": 200
        },
        "retrieval": { "idleTimeBetweenReadsMillis": 100 },
        "checkpoint": { "intervalMillis": 200 },
        "metrics": { "flushIntervalMillis": 1000 },
        "retry": { "initialBackoffMillis": 50, "maxBackoffMillis": 500, "requestTimeoutMillis": 3000 },
        "shutdownTimeoutMillis": 10000,
        // The local stand-in for Slack takes any pace (the default is Slack's 1 a second).
        "rateLimits": { "slack": { "perSecond": 0 } }
    })
}

/// Merges `patch` into `base` (objects recursively).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// A config directory: one Kinesis observer, the Slack responder posting to `slack_url`, and
/// runtime tuning.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
    pub observer_id: String,
}

impl ConfigDir {
    pub fn new(
        stream: &str,
        initial_position: &str,
        timestamp_ms: Option<i64>,
        slack_url: &str,
        runtime: &Value,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let observer_id = format!("{stream}-app");
        let c = ConfigDir { dir, observer_id };
        c.write_observer(stream, initial_position, timestamp_ms);
        c.write(
            "slack.json",
            &json!({
                "schema": "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
                "data": { "enabled": true, "id": "slack", "parameters": { "sendMessageEnabled": true, "webhookUrl": slack_url } }
            }),
        );
        c.write("runtime.json", &json!({ "schema": "iglu:rs.sauna.config/RuntimeConfig/avro/1-0-0", "data": runtime }));
        c
    }

    pub fn write_observer(&self, stream: &str, initial_position: &str, timestamp_ms: Option<i64>) {
        self.write(
            "kinesis.json",
            &json!({
                "schema": "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0",
                "data": {
                    "enabled": true,
                    "id": self.observer_id,
                    "parameters": {
                        "aws": { "accessKeyId": "default", "secretAccessKey": "default" },
                        "kinesis": {
                            "region": "us-east-1",
                            "streamName": stream,
                            "maxRecords": 500,
                            "initialPosition": initial_position,
                            "initialPositionModifiers": timestamp_ms.map(|t| json!({ "timestamp": t }))
                        }
                    }
                }
            }),
        );
    }

    pub fn write(&self, name: &str, value: &Value) {
        std::fs::write(self.dir.path().join(name), serde_json::to_vec_pretty(value).expect("json")).expect("write");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// As the value of an environment variable given to [`Sauna::start_with_env`]: the variable is
/// removed from the child's environment.
pub const UNSET: &str = "\0unset";

/// A running `sauna run`.
pub struct Sauna {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Sauna {
    pub fn start(config: &ConfigDir, name: &str) -> Self {
        Self::spawn(config, name, Stdio::null(), &[])
    }

    /// Starts it with extra environment variables, e.g. `AWS_ENDPOINT_URL_KINESIS` pointing
    /// at a fault proxy, while the test itself keeps talking to the emulators directly.
    pub fn start_with_env(config: &ConfigDir, name: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(config, name, Stdio::null(), env)
    }

    /// Starts it with its standard output a pipe that nobody reads (it fills, then blocks).
    pub fn start_with_unread_stdout(config: &ConfigDir, name: &str) -> Self {
        Self::spawn(config, name, Stdio::piped(), &[])
    }

    /// Starts it with its standard output in `<config dir>/<name>.out`.
    pub fn start_capturing_stdout(config: &ConfigDir, name: &str) -> Self {
        let out = std::fs::File::create(config.path().join(format!("{name}.out"))).expect("stdout file");
        Self::spawn(config, name, Stdio::from(out), &[])
    }

    fn spawn(config: &ConfigDir, name: &str, stdout: Stdio, env: &[(&str, &str)]) -> Self {
        let log = config.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sauna"));
        command
            .args(["run", "--config-dir"])
            .arg(config.path())
            .env("RUST_LOG", std::env::var("SAUNA_TEST_LOG").unwrap_or_else(|_| "info".into()));
        for (k, v) in env {
            if *v == UNSET {
                command.env_remove(k);
            } else {
                command.env(k, v);
            }
        }
        let child = command.stdout(stdout).stderr(file).spawn().expect("sauna starts");
        Sauna { child, log, name: name.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.pid().to_string()]).status().expect("kill runs").success();
        assert!(ok, "kill {sig} {} failed", self.pid());
    }

    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    pub fn sigstop(&self) {
        self.signal("-STOP");
    }

    pub fn sigcont(&self) {
        self.signal("-CONT");
    }

    /// kill -9: no shutdown of any kind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > timeout {
                self.kill9();
                panic!("{} did not exit within {timeout:?}; log:\n{}", self.name, self.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until the log holds `n` lines containing `needle`.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let c = self.log_text().lines().filter(|l| l.contains(needle)).count();
            if c >= n {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{}: only {c} of {n} log lines with {needle:?} within {timeout:?}; log:\n{}",
                self.name,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Sauna {
    fn drop(&mut self) {
        // A failing test prints its workers' logs: its config dir, and the logs with it, are gone
        // once it ends, and a failure seen once in CI is otherwise left without its story.
        if std::thread::panicking() || std::env::var_os("SAUNA_TEST_PRINT_LOG").is_some() {
            println!("----- log of {} -----\n{}", self.name, self.log_text());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-CONT", &self.pid().to_string()]).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
