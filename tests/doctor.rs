//! `sauna doctor` as a real process against the emulators: a good directory passes (before and
//! after a first run, polling and fan-out); a missing stream, an unreachable or silent DynamoDB,
//! credentials that cannot be found and an AccessDenied (injected by a [`FaultProxy`], since
//! the emulators accept any credentials) are each named in one line, with exit code 1.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::http::FakeHttp;
use common::kinesis::{TestStream, lease_rows};
use common::proxy::{Fault, FaultProxy, Rule};
use common::sauna::{ConfigDir, Sauna, fast_runtime, merge};
use serde_json::{Value, json};

/// The Slack webhook path: a secret that doctor must never print.
const SECRET_PATH: &str = "/services/T000/B000/SECRET-TOKEN";

/// `sauna doctor --config-dir DIR`, with extra environment variables and some removed.
fn doctor(config: &ConfigDir, env: &[(&str, &str)], remove: &[&str]) -> (Output, Duration) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sauna"));
    cmd.arg("doctor").arg("--config-dir").arg(config.path()).envs(env.iter().copied());
    for name in remove {
        cmd.env_remove(name);
    }
    let started = Instant::now();
    let out = cmd.output().expect("sauna doctor runs");
    let took = started.elapsed();
    println!(
        "sauna doctor ({took:?}): {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, took)
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn fails(out: &Output) -> Vec<String> {
    lines(out).into_iter().filter(|l| l.starts_with("FAIL ")).collect()
}

fn has(out: &Output, prefix: &str) -> bool {
    lines(out).iter().any(|l| l.starts_with(prefix))
}

fn config(stream: &str, slack: &FakeHttp, runtime_patch: Value) -> ConfigDir {
    let mut runtime = fast_runtime();
    merge(&mut runtime, &runtime_patch);
    ConfigDir::new(stream, "TRIM_HORIZON", None, &slack.url(SECRET_PATH), &runtime)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_directory_passes_before_and_after_the_first_run() {
    let stream = TestStream::create("doctor-good", 2).await;
    let slack = FakeHttp::start();
    let config = config(&stream.name, &slack, json!({}));
    let id = config.observer_id.clone();
    let (out, _) = doctor(&config, &[], &[]);
    assert!(out.status.success());
    assert!(fails(&out).is_empty());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("SECRET-TOKEN"), "the webhook URL's path is a secret");
    for line in [
        format!("observer {id} (stream {}, region us-east-1):", stream.name),
        "ok   region us-east-1 is an AWS region".to_owned(),
        "ok   credentials resolve (default provider chain".to_owned(),
        format!("ok   stream {}: ACTIVE, 2 open shards", stream.name),
        "ok   shard shardId-000000000000: an iterator was obtained and read (ListShards, GetShardIterator, GetRecords)"
            .to_owned(),
        format!("warn lease table {id} does not exist yet: the first run creates it"),
        format!("warn claim table {id}-claims does not exist yet: the first run creates it"),
        format!("ok   CloudWatch: PutMetricData accepted (namespace {id}, one SaunaDoctor datum)"),
        format!("ok   responder slack: http://{} resolves (127.0.0.1)", slack.addr),
        "doctor: 6 ok, 2 warnings, 0 failed".to_owned(),
    ] {
        assert!(has(&out, &line), "no line {line:?}");
    }
    let metrics = stream.clients.cloudwatch.list_metrics().namespace(&id).send().await.expect("ListMetrics");
    assert!(metrics.metrics().iter().any(|m| m.metric_name() == Some("SaunaDoctor")), "the datum was written");

    // After a first run the tables exist, and are checked.
    let mut sauna = Sauna::start(&config, "first-run");
    let started = Instant::now();
    while lease_rows(&stream.clients, &id).await.len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no leases: {}", sauna.log_tail(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sauna.sigterm();
    assert!(sauna.wait_exit(Duration::from_secs(30)).success());
    let (out, _) = doctor(&config, &[], &[]);
    assert!(out.status.success());
    assert!(has(&out, &format!("ok   lease table {id}: ACTIVE, hash key leaseKey (DescribeTable, Scan)")));
    assert!(has(&out, &format!("ok   claim table {id}-claims: ACTIVE, hash key commandId (DescribeTable)")));
    assert!(has(&out, "doctor: 8 ok, 0 warnings, 0 failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_fan_out_the_stream_consumer_is_checked() {
    let stream = TestStream::create("doctor-fan-out", 1).await;
    let slack = FakeHttp::start();
    let config =
        config(&stream.name, &slack, json!({ "retrieval": { "mode": "FAN_OUT" }, "dedup": { "enabled": false } }));
    let id = config.observer_id.clone();
    let (out, _) = doctor(&config, &[], &[]);
    assert!(out.status.success());
    assert!(has(&out, "ok   shard shardId-000000000000: an iterator was obtained (ListShards, GetShardIterator)"));
    assert!(has(&out, &format!("warn stream consumer {id} is not registered yet: the first run registers it")));
    assert!(!lines(&out).iter().any(|l| l.contains("claim table")), "dedup is off");

    let arn = stream
        .clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&stream.name)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary()
        .expect("a summary")
        .stream_arn()
        .to_owned();
    stream
        .clients
        .kinesis
        .register_stream_consumer()
        .stream_arn(arn)
        .consumer_name(&id)
        .send()
        .await
        .expect("register");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (out, _) = doctor(&config, &[], &[]);
    assert!(out.status.success());
    assert!(
        has(&out, &format!("ok   stream consumer {id}: ACTIVE"))
            || has(&out, &format!("ok   stream consumer {id}: CREATING")),
        "the registered consumer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_stream_is_one_line() {
    let slack = FakeHttp::start();
    let name = common::unique_name("doctor-no-such-stream");
    let config = config(&name, &slack, json!({}));
    let (out, _) = doctor(&config, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let kinesis = common::emulators().kinesis;
    assert_eq!(
        fails(&out),
        [format!(
            "FAIL stream {name} does not exist in region us-east-1 (endpoint {kinesis}); the shard checks were skipped"
        )]
    );
    assert!(has(&out, "doctor: 4 ok, 2 warnings, 1 failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_silent_dynamodb_is_named_within_the_timeout() {
    let stream = TestStream::create("doctor-ddb", 1).await;
    let slack = FakeHttp::start();
    let config = config(&stream.name, &slack, json!({}));
    let id = config.observer_id.clone();
    let (out, took) = doctor(&config, &[("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")], &[]);
    assert_eq!(out.status.code(), Some(1));
    let refused = "endpoint http://127.0.0.1:9 unreachable (Connection refused";
    let f = fails(&out);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f[0].starts_with(&format!("FAIL lease table {id}: {refused}")), "{f:?}");
    assert!(f[1].starts_with(&format!("FAIL claim table {id}-claims: {refused}")), "{f:?}");
    assert!(has(&out, &format!("ok   stream {}: ACTIVE", stream.name)));
    assert!(took < Duration::from_secs(20), "a refused connection is an answer, not a wait: {took:?}");

    // An endpoint that takes the connection and never answers: each call ends at its bound.
    let proxy = FaultProxy::start(&common::emulators().dynamodb);
    proxy.inject(Rule::all(Fault::Stall(Duration::from_secs(60))));
    let (out, took) = doctor(&config, &[("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url())], &[]);
    assert_eq!(out.status.code(), Some(1));
    let silent = format!("endpoint {} unreachable (no answer within 5s)", proxy.url());
    assert_eq!(
        fails(&out),
        [format!("FAIL lease table {id}: {silent}"), format!("FAIL claim table {id}-claims: {silent}")]
    );
    assert!(took < Duration::from_secs(20), "the checks run at once, each bounded by 5 s: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_that_cannot_be_found_are_named() {
    let stream = TestStream::create("doctor-creds", 1).await;
    let slack = FakeHttp::start();
    let config = config(&stream.name, &slack, json!({}));
    let empty = config.path().join("empty-aws-file");
    std::fs::write(&empty, "").expect("write");
    let empty = empty.to_str().expect("path");
    let env =
        [("AWS_CONFIG_FILE", empty), ("AWS_SHARED_CREDENTIALS_FILE", empty), ("AWS_EC2_METADATA_DISABLED", "true")];
    let remove = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ];
    let (out, _) = doctor(&config, &env, &remove);
    assert_eq!(out.status.code(), Some(1));
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("FAIL no AWS credentials found (default provider chain"), "{f:?}");
    assert!(f[0].contains("Environment: environment variable not set"), "{f:?}");
    assert!(f[0].ends_with("the AWS checks were skipped"), "{f:?}");

    // The same environment, with static keys in the config: they are what is used.
    let path = config.path().join("kinesis.json");
    let mut observer: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    observer["data"]["parameters"]["aws"] = json!({ "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "not-a-secret" });
    config.write("kinesis.json", &observer);
    let (out, _) = doctor(&config, &env, &remove);
    assert!(out.status.success());
    assert!(has(&out, "ok   credentials resolve (static keys from the config)"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-a-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_denied_names_the_iam_action() {
    let stream = TestStream::create("doctor-denied", 1).await;
    let slack = FakeHttp::start();
    let config = config(&stream.name, &slack, json!({}));
    let proxy = FaultProxy::start(&common::emulators().kinesis);
    let denied = |action: &str| {
        Fault::Status(
            400,
            json!({ "__type": "AccessDeniedException",
                    "message": format!("User: arn:aws:iam::123:user/x is not authorized to perform: {action} on resource: arn:aws:kinesis:us-east-1:123:stream/{}", stream.name) })
            .to_string(),
        )
    };
    proxy.inject(Rule::on(&["DescribeStreamSummary"], denied("kinesis:DescribeStreamSummary")));
    let env = [("AWS_ENDPOINT_URL_KINESIS", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (out, _) = doctor(&config, &env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let f = fails(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with(&format!("FAIL stream {}: access denied: needs kinesis:DescribeStreamSummary (", stream.name)),
        "{f:?}"
    );

    // A denial whose message names no action: the line names the action that was called.
    proxy.clear();
    proxy.inject(Rule::on(
        &["GetShardIterator"],
        Fault::Status(400, json!({ "__type": "AccessDeniedException", "message": "Access denied" }).to_string()),
    ));
    let (out, _) = doctor(&config, &env, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        fails(&out),
        [
            "FAIL shard shardId-000000000000: access denied: needs kinesis:GetShardIterator (AccessDeniedException: Access denied)"
        ]
    );
}
