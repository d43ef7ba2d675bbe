//! The project's AWS client construction against the emulators: region and credentials from an
//! observer config, endpoints from the standard AWS variables.

mod common;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use sauna::AwsClients;
use sauna::config::AwsCredentials;

#[actix_rt::test]
async fn clients_from_an_observer_config_reach_the_emulators() {
    common::emulators();
    // `default` keys: the provider chain, here the test environment's variables.
    let chain = AwsClients::for_observer("us-east-1", &AwsCredentials::from_keys("default", "")).await;
    // Static keys from the file: emulators accept any.
    let fixed = AwsClients::for_observer("us-east-1", &AwsCredentials::from_keys("AKIDEXAMPLE", "secret")).await;

    let stream = common::unique_name("aws-clients");
    chain
        .kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(2)
        .send()
        .await
        .expect("CreateStream on the Kinesis emulator");
    let mut active = false;
    for _ in 0..100 {
        let d =
            fixed.kinesis.describe_stream_summary().stream_name(&stream).send().await.expect("DescribeStreamSummary");
        let summary = d.stream_description_summary().expect("summary");
        if summary.stream_status().as_str() == "ACTIVE" {
            assert_eq!(summary.open_shard_count(), 2);
            active = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(active, "the stream became ACTIVE");

    let table = common::unique_name("aws-clients");
    fixed
        .dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder().attribute_name("leaseKey").key_type(KeyType::Hash).build().expect("key"),
        )
        .send()
        .await
        .expect("CreateTable on the DynamoDB emulator");
    let described = chain.dynamodb.describe_table().table_name(&table).send().await.expect("DescribeTable");
    let t = described.table().expect("table");
    assert_eq!(t.table_name(), Some(table.as_str()));
    assert_eq!(t.key_schema()[0].attribute_name(), "leaseKey");

    chain
        .cloudwatch
        .put_metric_data()
        .namespace(&table)
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("RecordsProcessed")
                .value(3.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData on the CloudWatch emulator");
    let metrics = fixed.cloudwatch.list_metrics().namespace(&table).send().await.expect("ListMetrics");
    assert_eq!(metrics.metrics().len(), 1);
    assert_eq!(metrics.metrics()[0].metric_name(), Some("RecordsProcessed"));
}

/// Records come back from GetRecords exactly as they were put, through the SDK JSON reader that
/// sauna patches (vendor/aws-smithy-json, PATCH.md): partition keys the emulator has to escape
/// (quotes, backslashes, control characters, text beyond ASCII), and data of every byte value in
/// sizes around the reader's scanning steps, up to most of a megabyte.
#[actix_rt::test]
async fn get_records_reads_back_what_was_put_through_the_patched_json_reader() {
    let stream = common::kinesis::TestStream::create("patched-json", 1).await;
    let keys = ["plain", "a \"quoted\" key", "back\\slash\\", "tab\tnew\nline\u{1}", "été 世界 🦀", "/\\\"/"];
    let sizes = [1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 1000, 100_000, 900_000];
    let records: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let data = (0..=255u8).cycle().skip(i).take(size).collect();
            (keys[i % keys.len()].to_string(), data)
        })
        .collect();
    stream.put(records.clone()).await;
    let read: Vec<(String, Vec<u8>)> = stream
        .records()
        .await
        .iter()
        .map(|r| (r.partition_key().unwrap_or_default().to_string(), r.data().as_ref().to_vec()))
        .collect();
    assert_eq!(read.len(), records.len());
    for (i, (got, put)) in read.iter().zip(&records).enumerate() {
        assert_eq!(got.0, put.0, "record {i}: partition key");
        assert!(got.1 == put.1, "record {i}: {} bytes read back for {} put", got.1.len(), put.1.len());
    }
}

/// The SDK's JSON reader in the build is the patched copy (vendor/aws-smithy-json): an SDK update
/// that moves to another aws-smithy-json leaves the patch unused, and with it a sixth of the CPU
/// per command; this says so at once instead of in the next benchmark.
#[test]
fn the_sdk_json_reader_is_the_vendored_patched_copy() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).expect("Cargo.lock");
    let packages: Vec<&str> = lock.split("[[package]]").filter(|p| p.contains("name = \"aws-smithy-json\"")).collect();
    let patched = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/aws-smithy-json/Cargo.toml"))
        .expect("vendor/aws-smithy-json/Cargo.toml");
    let version = patched
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the vendored crate's version");
    // The newest aws-smithy-json in the build is the one the AWS SDK crates use.
    let newest = packages
        .iter()
        .max_by_key(|p| {
            let v = p.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap_or_default().trim_end_matches('"');
            v.split('.').map(|n| n.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>()
        })
        .expect("aws-smithy-json is in Cargo.lock");
    assert!(
        newest.contains(&format!("version = \"{version}\"")) && !newest.contains("source = "),
        "the SDK uses an aws-smithy-json other than the patched {version} in vendor/: port the patch or drop it \
         (vendor/aws-smithy-json/PATCH.md)\n{newest}"
    );
}
