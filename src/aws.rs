//! AWS clients of an observer: region and credentials from its config, endpoints from the
//! standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (which is how local runs
//! and tests point at emulators), timeouts fit for a long-running consumer.

use std::time::Duration;

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::config::AwsCredentials;

/// Loads the shared SDK config for `region` with `credentials`.
pub async fn sdk_config(region: &str, credentials: &AwsCredentials) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // KCL's kinesisRequestTimeout: a GetRecords of 10 MB fits comfortably.
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        // A paused peer is a failed attempt after 10 s of no progress, not a hung shard.
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled().grace_period(Duration::from_secs(10)).build(),
        );
    if let AwsCredentials::Static { access_key_id, secret_access_key } = credentials {
        loader = loader.credentials_provider(Credentials::new(
            access_key_id.expose(),
            secret_access_key.expose(),
            None,
            None,
            "sauna-config",
        ));
    }
    loader.load().await
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
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
        }
    }

    pub async fn for_observer(region: &str, credentials: &AwsCredentials) -> Self {
        Self::new(&sdk_config(region, credentials).await)
    }
}
