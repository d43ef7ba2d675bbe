//! The wait for a DynamoDB table this process created (the lease table, the claim table) to
//! become ACTIVE before its first use. Shared by both tables' stores.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::TableStatus;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// A table just created is looked at again after 5 ms, then twice as long each time up to
/// 500 ms: an emulator's table (or one nearly ready) is ACTIVE within milliseconds, so a
/// worker's start does not wait a fixed tenth of a second for it; DynamoDB's takes seconds.
const ACTIVE_POLL: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(500));

/// How long a new table may take to become ACTIVE.
const ACTIVE_WITHIN: Duration = Duration::from_secs(60);

/// Waits until the DynamoDB table `name` is ACTIVE: `Ok(false)` if it is not within a minute.
pub async fn wait_until_active(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<bool, SdkError<DescribeTableError, HttpResponse>> {
    let deadline = tokio::time::Instant::now() + ACTIVE_WITHIN;
    let mut wait = ACTIVE_POLL.0;
    loop {
        let described = client.describe_table().table_name(name).send().await?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(true);
        }
        if tokio::time::Instant::now() + wait > deadline {
            return Ok(false);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(ACTIVE_POLL.1);
    }
}
