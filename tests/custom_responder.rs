//! The README's worked example (`examples/custom_responder/`): a responder added by one module
//! and one line of registration runs a command from a stream through to its (local) API.

mod common;

#[path = "../examples/custom_responder/opsgenie.rs"]
mod opsgenie;

use std::path::PathBuf;
use std::time::Duration;

use common::http::{FakeHttp, Reply};
use common::kinesis::{TestStream, command};
use common::sauna::{ConfigDir, fast_runtime, merge};
use sauna::config_dir::Catalog;
use serde_json::json;
use uuid::Uuid;

#[actix_rt::test]
async fn the_example_responder_actions_a_command_from_the_stream() {
    let stream = TestStream::create("custom", 1).await;
    let opsgenie_api = FakeHttp::start();
    opsgenie_api.behave(|_, _| Reply::status(202));
    let iglu = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/custom_responder/iglu");
    let mut runtime = fast_runtime();
    merge(&mut runtime, &json!({ "igluRepositories": [iglu.display().to_string()] }));
    let dir = ConfigDir::new(&stream.name, "TRIM_HORIZON", None, "http://127.0.0.1:9/unused", &runtime);
    dir.write(
        "opsgenie.json",
        &json!({"schema": "iglu:com.acme.sauna.responders/OpsgenieConfig/avro/1-0-0",
            "data": {"enabled": true, "id": "opsgenie", "parameters": {"apiKey": "genie-key-1", "apiUrl": opsgenie_api.url("")}}}),
    );

    // Without the module, its config is an unknown schema; with it (what the example's main
    // does in its one line), the directory loads and the responder is there.
    let refused = sauna::config_dir::load_dir(dir.path()).expect_err("unknown without the module");
    assert!(refused.to_string().contains("unknown schema iglu:com.acme.sauna.responders/OpsgenieConfig/avro/1-0-0"));
    let configuration = sauna::config_dir::load_dir_with(dir.path(), &Catalog::with(&[&opsgenie::MODULE]))
        .expect("loads with the module");
    assert!(configuration.responders.iter().any(|r| r.id() == "opsgenie"));

    let alert = json!({"message": "srv01 is down", "alias": "srv01-down", "priority": "P1",
                       "tags": ["web"], "details": {"region": "eu-west-1"}});
    stream
        .put(vec![(
            "srv01".into(),
            command(
                &Uuid::new_v4(),
                "iglu:com.opsgenie.sauna.commands/create_alert/jsonschema/1-0-0",
                alert.clone(),
                None,
                "2026-01-01T00:00:00Z",
            ),
        )])
        .await;
    let observers = sauna::Observers::start(configuration).await;
    let start = std::time::Instant::now();
    while opsgenie_api.count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "no request reached the OpsGenie stand-in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = &opsgenie_api.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v2/alerts"));
    assert_eq!(r.header("authorization"), Some("GenieKey genie-key-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), alert);
    let snapshot = observers.observe().await.remove(0);
    let start = std::time::Instant::now();
    let mut snapshot = snapshot;
    while snapshot.consumers.first().map(|c| c.counters.outcomes[0]) != Some(1) {
        assert!(start.elapsed() < Duration::from_secs(10), "outcome done: {:?}", snapshot.consumers);
        tokio::time::sleep(Duration::from_millis(50)).await;
        snapshot = observers.observe().await.remove(0);
    }
    observers.shutdown().await;
}

#[test]
fn the_readme_shows_the_example_module_as_it_is() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let module = std::fs::read_to_string(root.join("examples/custom_responder/opsgenie.rs")).expect("module");
    let body: String =
        module.lines().skip_while(|l| l.starts_with("//!") || l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert!(
        readme.contains(&body),
        "README's \"Write your own responder\" must show examples/custom_responder/opsgenie.rs"
    );
    let main = std::fs::read_to_string(root.join("examples/custom_responder/main.rs")).expect("main");
    assert!(
        main.contains("sauna::cli::main(&[&opsgenie::MODULE])")
            && readme.contains("sauna::cli::main(&[&opsgenie::MODULE])")
    );
}

#[test]
fn the_readme_try_script_runs_the_example_end_to_end() {
    common::emulators();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The example binary `cargo test` built beside the sauna binary.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sauna")).with_file_name("examples").join("custom_responder");
    assert!(bin.exists(), "cargo test builds the example: {}", bin.display());
    let out = std::process::Command::new(root.join("examples/custom_responder/try.sh"))
        .env("SAUNA_EXAMPLE_BIN", &bin)
        .output()
        .expect("try.sh runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "try.sh failed");
    assert!(text.contains("OpsGenie <- /v2/alerts auth=GenieKey message='Disk full on web-42'"), "{text}");
    assert!(text.contains("] done ") || text.contains("done shard="), "{text}");
}
