//! AWS clients of an observer: region and credentials from its config, endpoints from the
//! standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (which is how local runs
//! and tests point at emulators), timeouts fit for a long-running consumer.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_types::service_config::ServiceConfigKey;

use crate::config::AwsCredentials;

/// Loads the shared SDK config for `region` with `credentials`.
pub async fn sdk_config(region: &str, credentials: &AwsCredentials) -> SdkConfig {
    loader(region, credentials)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // KCL's kinesisRequestTimeout: a GetRecords of 10 MB fits comfortably.
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        // A paused peer is a failed attempt after 10 s of no progress, not a hung shard. Only
        // answers are watched: every request body sauna sends is a small JSON document, written
        // at once, and watching each upload was a tenth of an idle call's CPU (a hung request
        // is still ended by the attempt timeout).
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .upload_enabled(false)
                .grace_period(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}

/// The SDK config of a quick check (`sauna doctor`): one attempt per call, each bounded by
/// `timeout`, so that an unreachable endpoint is an answer within `timeout`, not a hang.
pub async fn quick_sdk_config(region: &str, credentials: &AwsCredentials, timeout: Duration) -> SdkConfig {
    loader(region, credentials)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout.min(Duration::from_secs(2)))
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn loader(region: &str, credentials: &AwsCredentials) -> ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
    match credentials {
        AwsCredentials::Static { access_key_id, secret_access_key } => loader.credentials_provider(Credentials::new(
            access_key_id.expose(),
            secret_access_key.expose(),
            None,
            None,
            "sauna-config",
        )),
        AwsCredentials::DefaultChain => loader,
    }
}

/// The endpoint a client of `service` (the SDK's service id: `Kinesis`, `DynamoDB`,
/// `CloudWatch`) built from `sdk` talks to: `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`
/// (or their profile settings), otherwise AWS's own `https://<prefix>.<region>.amazonaws.com`.
pub fn endpoint_of(sdk: &SdkConfig, service: &str, prefix: &str) -> String {
    let key = ServiceConfigKey::builder().service_id(service).env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
    let configured = key.ok().and_then(|key| sdk.service_config().and_then(|c| c.load_config(key)));
    configured.or_else(|| sdk.endpoint_url().map(str::to_owned)).unwrap_or_else(|| {
        let region = sdk.region().map(|r| r.as_ref().to_owned()).unwrap_or_default();
        format!("https://{prefix}.{region}.amazonaws.com")
    })
}

/// The three clients an observer uses.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsClients {
            kinesis: aws_sdk_kinesis::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            // PutMetricData bodies go uncompressed: gzip's state, set up afresh for each
            // flush, cost an idle worker more CPU than the flush's other work, to save some
            // tens of kilobytes every flush interval.
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(sdk).disable_request_compression(true).build(),
            ),
        }
    }

    pub async fn for_observer(region: &str, credentials: &AwsCredentials) -> Self {
        Self::new(&sdk_config(region, credentials).await)
    }
}
