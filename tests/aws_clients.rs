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
