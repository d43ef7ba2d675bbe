//! The README's "Amazon Kinesis setup" section, checked: its AWS CLI commands run as printed
//! (the PyPI `awscli` the emulator script installs, pointed at the emulators by the standard
//! `AWS_ENDPOINT_URL_*` variables) and do what the text says; its IAM policy lists exactly the
//! AWS operations `sauna run` calls, found by reading the source.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced block that follows `<!-- setup-guide:NAME -->` in the README.
fn block(name: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let marker = format!("<!-- setup-guide:{name} -->");
    let after = readme.split_once(&marker).unwrap_or_else(|| panic!("README has no {marker}")).1;
    let body = after.split_once("```").and_then(|(_, rest)| rest.split_once('\n')).expect("a fenced block").1;
    body.split_once("```").expect("the block ends").0.to_owned()
}

/// Runs each line of a README block with `aws` from the emulators' virtualenv, the guide's
/// stream name replaced by `stream`.
fn run_lines(name: &str, stream: &str) {
    let venv = root().join(".emulators/moto/bin");
    assert!(venv.join("aws").exists(), "awscli is installed by scripts/emulators.sh install");
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    for line in block(name).lines().filter(|l| !l.trim().is_empty()) {
        let line = line.replace("acme-sauna-prioritycommands", stream);
        let out = Command::new("sh").arg("-c").arg(&line).env("PATH", &path).output().expect("sh runs");
        println!("$ {line}\n{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "{line}\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_aws_cli_commands_create_the_stream_it_describes() {
    common::emulators();
    let stream = common::unique_name("setup-guide");
    run_lines("stream", &stream);
    let clients = sauna::AwsClients::for_observer("us-west-2", &sauna::config::AwsCredentials::DefaultChain).await;
    let summary = |clients: sauna::AwsClients, stream: String| async move {
        let d = clients.kinesis.describe_stream_summary().stream_name(&stream).send().await.expect("the stream exists");
        d.stream_description_summary().cloned().expect("summary")
    };
    let s = summary(clients.clone(), stream.clone()).await;
    assert_eq!(s.stream_status().as_str(), "ACTIVE");
    assert_eq!(s.open_shard_count(), 1);
    assert_eq!(s.retention_period_hours(), 8760, "the longest retention");

    run_lines("shards", &stream);
    for _ in 0..200 {
        let s = summary(clients.clone(), stream.clone()).await;
        if s.stream_status().as_str() == "ACTIVE" && s.open_shard_count() == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("update-shard-count did not leave two open shards");
}

/// The AWS operations every SDK client of sauna could call, by service.
const OPERATIONS: &[(&str, &[&str])] = &[
    (
        "kinesis",
        &[
            "list_shards",
            "get_shard_iterator",
            "get_records",
            "describe_stream",
            "describe_stream_summary",
            "register_stream_consumer",
            "deregister_stream_consumer",
            "describe_stream_consumer",
            "list_stream_consumers",
            "subscribe_to_shard",
            "put_record",
            "put_records",
            "create_stream",
        ],
    ),
    (
        "dynamodb",
        &[
            "create_table",
            "describe_table",
            "delete_table",
            "get_item",
            "put_item",
            "update_item",
            "delete_item",
            "scan",
            "query",
            "batch_write_item",
            "batch_get_item",
            "transact_write_items",
            "update_time_to_live",
            "describe_time_to_live",
        ],
    ),
    ("cloudwatch", &["put_metric_data", "list_metrics", "get_metric_data"]),
];

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `service:Action` for every SDK call in the source of `sauna run` (the operator tools
/// `send` and `doctor` have their own needs, documented beside the policy).
fn called_operations() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = vec![];
    walk(&root().join("src"), &mut files);
    let mut found = BTreeSet::new();
    for f in files {
        let cli = root().join("src/cli");
        if f.starts_with(cli.join("send")) || f.starts_with(cli.join("doctor")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        // Unit tests drive stand-ins, not AWS.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (service, ops) in OPERATIONS {
            for op in *ops {
                // `scan` is also the LeaseStore's own method: only the SDK's counts.
                let sdk = *op != "scan" || code.contains("aws_sdk_dynamodb");
                if sdk && code.contains(&format!(".{op}()")) {
                    found.insert(format!("{service}:{}", pascal(op)));
                }
            }
        }
    }
    found
}

#[test]
fn the_readme_iam_policy_grants_every_action_sauna_calls_and_no_other() {
    let policy: Value = serde_json::from_str(&block("policy")).expect("the policy is JSON");
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        assert_eq!(statement["Effect"], "Allow");
        for action in statement["Action"].as_array().expect("actions") {
            granted.insert(action.as_str().expect("an action").to_owned());
        }
    }
    let called = called_operations();
    println!("the code calls: {called:?}");
    let missing: Vec<_> = called.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&called).collect();
    assert!(missing.is_empty(), "called but not in the README's policy: {missing:?}");
    assert!(extra.is_empty(), "in the README's policy but never called: {extra:?}");
}
