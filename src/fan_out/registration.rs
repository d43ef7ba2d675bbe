//! The stream consumer of an observer: registered by the first worker that needs it, found by
//! the others, never deregistered by sauna (every worker shares it, and a deregistration would
//! end their subscriptions; an operator removes it with `aws kinesis deregister-stream-consumer`).

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ConsumerStatus;

/// A registered stream consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    pub name: String,
    pub arn: String,
    pub status: String,
    /// Epoch milliseconds, when the service says.
    pub created_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "stream {stream}: {call} was denied ({detail}); enhanced fan-out needs the IAM permissions kinesis:DescribeStreamSummary, kinesis:DescribeStreamConsumer, kinesis:RegisterStreamConsumer, kinesis:ListStreamConsumers and kinesis:SubscribeToShard (or set retrieval.mode to POLLING)"
    )]
    Denied { stream: String, call: &'static str, detail: String },
    #[error("stream {stream}: {call} failed: {detail}")]
    Failed { stream: String, call: &'static str, detail: String },
    #[error(
        "stream {stream}: the stream consumer {name} did not become ACTIVE within {waited:?} (last status {status})"
    )]
    NotActive { stream: String, name: String, waited: Duration, status: String },
}

/// The consumer `name` of `stream`, registered if it does not exist, once it is ACTIVE (the
/// service takes a few seconds to activate a new one). Several workers may race to register it:
/// the losers find the winner's.
pub async fn ensure_stream_consumer(
    client: &Client,
    stream: &str,
    name: &str,
    wait_at_most: Duration,
) -> Result<StreamConsumer, RegistrationError> {
    let failed = |call: &'static str, e: String, denied: bool| {
        if denied {
            RegistrationError::Denied { stream: stream.to_owned(), call, detail: e }
        } else {
            RegistrationError::Failed { stream: stream.to_owned(), call, detail: e }
        }
    };
    let summary = client.describe_stream_summary().stream_name(stream).send().await.map_err(|e| {
        let denied = is_denied(&e);
        failed("DescribeStreamSummary", crate::aws_error::explain(&e), denied)
    })?;
    let stream_arn = summary.stream_description_summary().map(|s| s.stream_arn().to_owned()).unwrap_or_default();
    let started = Instant::now();
    let mut last_status = String::from("(none)");
    while started.elapsed() < wait_at_most {
        let described = client.describe_stream_consumer().stream_arn(&stream_arn).consumer_name(name).send().await;
        match described {
            Ok(out) => {
                if let Some(d) = out.consumer_description() {
                    last_status = d.consumer_status().as_str().to_owned();
                    if *d.consumer_status() == ConsumerStatus::Active {
                        return Ok(StreamConsumer {
                            name: name.to_owned(),
                            arn: d.consumer_arn().to_owned(),
                            status: last_status,
                            created_at: Some(d.consumer_creation_timestamp().to_millis().unwrap_or(0)),
                        });
                    }
                }
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                let registered =
                    client.register_stream_consumer().stream_arn(&stream_arn).consumer_name(name).send().await;
                match registered {
                    Ok(_) => log::info!("stream {stream}: registered the stream consumer {name} (enhanced fan-out)"),
                    // Another worker registered it meanwhile.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
                    Err(e) => {
                        let denied = is_denied(&e);
                        return Err(failed("RegisterStreamConsumer", crate::aws_error::explain(&e), denied));
                    }
                }
                continue;
            }
            Err(e) => {
                let denied = is_denied(&e);
                return Err(failed("DescribeStreamConsumer", crate::aws_error::explain(&e), denied));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(RegistrationError::NotActive {
        stream: stream.to_owned(),
        name: name.to_owned(),
        waited: wait_at_most,
        status: last_status,
    })
}

/// Every stream consumer registered on `stream` (for `sauna leases`).
pub async fn list_stream_consumers(client: &Client, stream: &str) -> Result<Vec<StreamConsumer>, RegistrationError> {
    let failed =
        |call: &'static str, e: String| RegistrationError::Failed { stream: stream.to_owned(), call, detail: e };
    let summary = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| failed("DescribeStreamSummary", crate::aws_error::explain(&e)))?;
    let stream_arn = summary.stream_description_summary().map(|s| s.stream_arn().to_owned()).unwrap_or_default();
    let mut out = vec![];
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list_stream_consumers()
            .stream_arn(&stream_arn)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| failed("ListStreamConsumers", crate::aws_error::explain(&e)))?;
        for c in page.consumers() {
            out.push(StreamConsumer {
                name: c.consumer_name().to_owned(),
                arn: c.consumer_arn().to_owned(),
                status: c.consumer_status().as_str().to_owned(),
                created_at: c.consumer_creation_timestamp().to_millis().ok(),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

fn is_denied<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()).is_some_and(|c| c.contains("AccessDenied"))
}
