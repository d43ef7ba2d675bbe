//! The AWS half of `sauna doctor`: what an observer's first run asks of Kinesis, DynamoDB and
//! CloudWatch, each asked once, read-only wherever that can tell (the one write is a single
//! CloudWatch datum), each call bounded by [`TIMEOUT`].
//!
//! Every failure becomes one line that says what is wrong in the operator's terms: the IAM
//! action an AccessDenied names (or the action called, when the message does not name one),
//! refused credentials, or the endpoint that did not answer.

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use aws_sdk_dynamodb::types::{KeyType, TableStatus};
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::{ConsumerStatus, ShardIteratorType, StreamStatus};

use super::Check;
use crate::aws::AwsClients;
use crate::config::runtime::RetrievalMode;
use crate::config::{AwsCredentials, KinesisObserverConfig, RuntimeConfig};

/// The bound of every AWS call (and of the credential chain).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The metric `doctor` writes to check that CloudWatch takes the observer's metrics.
pub const METRIC: &str = "SaunaDoctor";

/// Every AWS check of one observer, in the order a first run needs them.
pub async fn observer_checks(o: &KinesisObserverConfig, runtime: &RuntimeConfig) -> Vec<Check> {
    let sdk = crate::aws::quick_sdk_config(&o.region, &o.credentials, TIMEOUT).await;
    let credentials = credentials(&sdk, &o.credentials).await;
    if credentials.is_fail() {
        return vec![credentials];
    }
    let clients = AwsClients::new(&sdk);
    let kinesis = Endpoint(crate::aws::endpoint_of(&sdk, "Kinesis", "kinesis"));
    let dynamodb = Endpoint(crate::aws::endpoint_of(&sdk, "DynamoDB", "dynamodb"));
    let cloudwatch = Endpoint(crate::aws::endpoint_of(&sdk, "CloudWatch", "monitoring"));
    let fan_out = (runtime.retrieval.mode == RetrievalMode::FanOut).then(|| runtime.retrieval.consumer_name_of(&o.id));
    let claims = runtime.dedup.enabled.then(|| runtime.dedup.table_of(&o.id));
    let (stream, leases, claims, metrics) = futures::join!(
        stream_checks(&clients.kinesis, &kinesis, o, fan_out.as_deref()),
        table_check(&clients.dynamodb, &dynamodb, "lease table", &o.id, "leaseKey", true),
        async {
            match &claims {
                Some(name) => {
                    Some(table_check(&clients.dynamodb, &dynamodb, "claim table", name, "commandId", false).await)
                }
                None => None,
            }
        },
        async {
            match runtime.metrics.enabled {
                true => Some(metrics_check(&clients.cloudwatch, &cloudwatch, &o.id).await),
                false => None,
            }
        },
    );
    let mut out = vec![credentials];
    out.extend(stream);
    out.push(leases);
    out.extend(claims);
    out.extend(metrics);
    out
}

/// The credentials resolve: the config's static keys, or the default provider chain.
async fn credentials(sdk: &SdkConfig, configured: &AwsCredentials) -> Check {
    let source = match configured {
        AwsCredentials::Static { .. } => "static keys from the config",
        AwsCredentials::DefaultChain => "default provider chain: the config's keys are \"default\"",
    };
    let Some(provider) = sdk.credentials_provider() else {
        return Check::fail(format!("no AWS credentials provider ({source}); the AWS checks were skipped"));
    };
    match tokio::time::timeout(TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Check::ok(format!("credentials resolve ({source})")),
        Ok(Err(e)) => {
            // Every attempt of the chain says so; what each lacked is the news.
            let why = one_line(&e).replace("the credential provider was not enabled: ", "");
            Check::fail(format!("no AWS credentials found ({source}): {why}; the AWS checks were skipped"))
        }
        Err(_) => Check::fail(format!(
            "no AWS credentials within {TIMEOUT:?} ({source}; instance metadata unreachable?); the AWS checks were skipped"
        )),
    }
}

/// An error and its causes on one line (the provider chain lists its attempts a line each).
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // A provider chain repeats its attempts' own errors as their sources.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    let joined = parts.join(": ");
    let lines: Vec<&str> = joined.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(if lines[i - 1].ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

/// The stream is readable, a shard iterator can be had, and (fan-out) the stream consumer.
async fn stream_checks(
    client: &aws_sdk_kinesis::Client,
    endpoint: &Endpoint,
    o: &KinesisObserverConfig,
    consumer: Option<&str>,
) -> Vec<Check> {
    let stream = &o.stream_name;
    let described =
        call(client.describe_stream_summary().stream_name(stream).send(), "kinesis:DescribeStreamSummary", endpoint);
    let summary = match described.await {
        Ok(s) => s,
        Err(f) if f.is("ResourceNotFoundException") => {
            return vec![Check::fail(format!(
                "stream {stream} does not exist in region {} (endpoint {endpoint}); the shard checks were skipped",
                o.region
            ))];
        }
        Err(f) => return vec![Check::fail(format!("stream {stream}: {f}; the shard checks were skipped"))],
    };
    let Some(d) = summary.stream_description_summary() else {
        return vec![Check::fail(format!("stream {stream}: DescribeStreamSummary answered no description"))];
    };
    let open = match d.open_shard_count() {
        1 => "1 open shard".to_owned(),
        n => format!("{n} open shards"),
    };
    let status = match d.stream_status() {
        StreamStatus::Active => Check::ok(format!("stream {stream}: ACTIVE, {open}")),
        StreamStatus::Updating => Check::ok(format!("stream {stream}: UPDATING (resharding, readable), {open}")),
        other => {
            let status = other.as_str();
            return vec![Check::fail(format!(
                "stream {stream} is {status}, not readable; the shard checks were skipped"
            ))];
        }
    };
    let mut out = vec![status, shard_check(client, endpoint, stream, consumer.is_none()).await];
    if let Some(name) = consumer {
        out.push(consumer_check(client, endpoint, d.stream_arn(), name).await);
    }
    out
}

/// ListShards, GetShardIterator on the first (open) shard, and for polling one GetRecords.
async fn shard_check(client: &aws_sdk_kinesis::Client, endpoint: &Endpoint, stream: &str, polling: bool) -> Check {
    let listed = match call(client.list_shards().stream_name(stream).send(), "kinesis:ListShards", endpoint).await {
        Ok(l) => l,
        Err(f) => return Check::fail(format!("shards of {stream}: {f}")),
    };
    let shards = listed.shards();
    let first = shards
        .iter()
        .find(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
        .or(shards.first());
    let Some(shard) = first.map(|s| s.shard_id().to_owned()) else {
        return Check::fail(format!("stream {stream} lists no shards"));
    };
    let got =
        client.get_shard_iterator().stream_name(stream).shard_id(&shard).shard_iterator_type(ShardIteratorType::Latest);
    let iterator = match call(got.send(), "kinesis:GetShardIterator", endpoint).await {
        Ok(out) => out.shard_iterator().map(str::to_owned),
        Err(f) => return Check::fail(format!("shard {shard}: {f}")),
    };
    let Some(iterator) = iterator else {
        return Check::fail(format!("shard {shard}: GetShardIterator answered no iterator"));
    };
    if !polling {
        return Check::ok(format!("shard {shard}: an iterator was obtained (ListShards, GetShardIterator)"));
    }
    match call(client.get_records().shard_iterator(iterator).limit(1).send(), "kinesis:GetRecords", endpoint).await {
        Ok(_) => Check::ok(format!(
            "shard {shard}: an iterator was obtained and read (ListShards, GetShardIterator, GetRecords)"
        )),
        Err(f) => Check::fail(format!("shard {shard}: {f}")),
    }
}

/// `retrieval.mode: FAN_OUT`: the observer's stream consumer, or that the first run registers it.
async fn consumer_check(client: &aws_sdk_kinesis::Client, endpoint: &Endpoint, arn: &str, name: &str) -> Check {
    let described = client.describe_stream_consumer().stream_arn(arn).consumer_name(name).send();
    match call(described, "kinesis:DescribeStreamConsumer", endpoint).await {
        Ok(out) => match out.consumer_description().map(|d| d.consumer_status().clone()) {
            Some(ConsumerStatus::Active) => Check::ok(format!("stream consumer {name}: ACTIVE (enhanced fan-out)")),
            Some(ConsumerStatus::Creating) => {
                Check::ok(format!("stream consumer {name}: CREATING (the first run waits until it is ACTIVE)"))
            }
            other => Check::fail(format!(
                "stream consumer {name} is {}: being deregistered, it cannot be used or registered again until it is gone",
                other.as_ref().map_or("(no status)", ConsumerStatus::as_str)
            )),
        },
        Err(f) if f.is("ResourceNotFoundException") => Check::warn(format!(
            "stream consumer {name} is not registered yet: the first run registers it (kinesis:RegisterStreamConsumer, which cannot be checked without registering one)"
        )),
        Err(f) => Check::fail(format!("stream consumer {name}: {f}")),
    }
}

/// A table the observer keeps (`what`), with hash key `key`: there and readable, or absent
/// (the first run creates it). `scan`: also one Scan of one item (the lease table's reads).
async fn table_check(
    client: &aws_sdk_dynamodb::Client,
    endpoint: &Endpoint,
    what: &str,
    name: &str,
    key: &str,
    scan: bool,
) -> Check {
    let described = match call(client.describe_table().table_name(name).send(), "dynamodb:DescribeTable", endpoint)
        .await
    {
        Ok(d) => d,
        Err(f) if f.is("ResourceNotFoundException") => {
            return Check::warn(format!(
                "{what} {name} does not exist yet: the first run creates it (on-demand, hash key {key}); whether it may (dynamodb:CreateTable) cannot be checked without creating a table"
            ));
        }
        Err(f) => return Check::fail(format!("{what} {name}: {f}")),
    };
    let Some(table) = described.table() else {
        return Check::fail(format!("{what} {name}: DescribeTable answered no table"));
    };
    let hash = table.key_schema().iter().find(|k| *k.key_type() == KeyType::Hash).map(|k| k.attribute_name());
    if hash != Some(key) {
        return Check::fail(format!(
            "{what} {name} exists, but its hash key is {}, not {key}: another application's table?",
            hash.unwrap_or("(none)")
        ));
    }
    let status = table.table_status().map_or("(no status)", TableStatus::as_str);
    if !matches!(table.table_status(), Some(TableStatus::Active | TableStatus::Updating | TableStatus::Creating)) {
        return Check::fail(format!("{what} {name} is {status}, not usable"));
    }
    if scan && let Err(f) = call(client.scan().table_name(name).limit(1).send(), "dynamodb:Scan", endpoint).await {
        return Check::fail(format!("{what} {name}: {f}"));
    }
    let calls = if scan { "DescribeTable, Scan" } else { "DescribeTable" };
    Check::ok(format!("{what} {name}: {status}, hash key {key} ({calls})"))
}

/// `metrics.enabled`: CloudWatch takes one datum in the observer's namespace.
async fn metrics_check(client: &aws_sdk_cloudwatch::Client, endpoint: &Endpoint, namespace: &str) -> Check {
    let datum = MetricDatum::builder().metric_name(METRIC).value(1.0).unit(StandardUnit::Count).build();
    let put = client.put_metric_data().namespace(namespace).metric_data(datum).send();
    match call(put, "cloudwatch:PutMetricData", endpoint).await {
        Ok(_) => Check::ok(format!("CloudWatch: PutMetricData accepted (namespace {namespace}, one {METRIC} datum)")),
        Err(f) => Check::fail(format!("CloudWatch metrics (namespace {namespace}): {f}")),
    }
}

/// An endpoint URL, for messages.
struct Endpoint(String);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a call failed, in one line; `code` is the service's error code, if it answered.
#[derive(Debug)]
struct Failure {
    message: String,
    code: Option<String>,
}

impl Failure {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One AWS call of IAM action `action`, bounded by [`TIMEOUT`] (the SDK's own timeout is the
/// same; this one also covers what the SDK does before sending, signing included).
async fn call<T, E, R>(
    fut: impl Future<Output = Result<T, SdkError<E, R>>>,
    action: &str,
    endpoint: &Endpoint,
) -> Result<T, Failure>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match tokio::time::timeout(TIMEOUT + Duration::from_secs(1), fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(describe(&e, action, endpoint)),
        Err(_) => Err(unreachable(endpoint, &format!("no answer within {TIMEOUT:?}"))),
    }
}

fn unreachable(endpoint: &Endpoint, why: &str) -> Failure {
    Failure { message: format!("endpoint {endpoint} unreachable ({why})"), code: None }
}

/// Error codes of credentials the service did not accept.
const REFUSED_CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
];

fn describe<E, R>(e: &SdkError<E, R>, action: &str, endpoint: &Endpoint) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("(no error code)");
            let text = s.err().message().unwrap_or_default();
            let message = if is_denied(code, text) {
                format!("access denied: needs {} ({code}: {text})", denied_action(text).unwrap_or(action))
            } else if REFUSED_CREDENTIALS.contains(&code) {
                format!("the credentials were refused ({code}: {text})")
            } else {
                format!("{action} failed: {code}: {text}")
            };
            Failure { message, code: Some(code.to_owned()) }
        }
        SdkError::TimeoutError(_) => unreachable(endpoint, &format!("no answer within {TIMEOUT:?}")),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            unreachable(endpoint, &format!("no answer within {TIMEOUT:?}"))
        }
        SdkError::DispatchFailure(d) if d.is_io() => unreachable(endpoint, &root_cause(e)),
        _ => Failure { message: format!("{action} failed: {}", DisplayErrorContext(e)), code: None },
    }
}

fn is_denied(code: &str, text: &str) -> bool {
    code.contains("AccessDenied")
        || code.contains("NotAuthorized")
        || code == "UnauthorizedOperation"
        || code == "AuthorizationError"
        || text.contains("is not authorized to perform")
}

/// The IAM action an AccessDenied message names: `… is not authorized to perform:
/// kinesis:DescribeStreamSummary on resource: …` → `kinesis:DescribeStreamSummary`.
pub fn denied_action(message: &str) -> Option<&str> {
    let rest = &message[message.find("perform:")? + "perform:".len()..];
    let action = rest.split_whitespace().next()?.trim_end_matches([',', '.', ';']);
    action.contains(':').then_some(action)
}

/// The innermost cause of an error (e.g. `Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
