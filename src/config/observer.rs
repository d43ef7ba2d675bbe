//! `iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0`: one Kinesis
//! stream to observe.

use apache_avro::types::Value as AvroValue;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use super::avro_json::FieldError;
use super::secret::Secret;

/// Where a shard with no checkpoint yet starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// Only records written after the consumer starts.
    Latest,
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// The first record written at or after this instant.
    AtTimestamp(DateTime<Utc>),
}

/// How the AWS clients of an observer authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCredentials {
    /// The standard provider chain (environment, profile, web identity, ECS, IMDS…): chosen when
    /// the config's keys are the literal `default` or empty.
    DefaultChain,
    Static {
        access_key_id: Secret,
        secret_access_key: Secret,
    },
}

impl AwsCredentials {
    /// Sauna's rule: keys spelled `default` (or left empty) mean "use the provider chain".
    pub fn from_keys(access_key_id: &str, secret_access_key: &str) -> Self {
        let is_default = |s: &str| s.is_empty() || s == "default";
        if is_default(access_key_id) && is_default(secret_access_key) {
            AwsCredentials::DefaultChain
        } else {
            AwsCredentials::Static {
                access_key_id: Secret::new(access_key_id),
                secret_access_key: Secret::new(secret_access_key),
            }
        }
    }
}

/// One enabled Amazon Kinesis observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisObserverConfig {
    /// Names the DynamoDB lease table, the CloudWatch namespace and the application in logs.
    pub id: String,
    pub credentials: AwsCredentials,
    pub region: String,
    pub stream_name: String,
    /// GetRecords limit, 1..=10000.
    pub max_records: i32,
    pub initial_position: InitialPosition,
}

/// The Iglu key of this config and its Avro schema.
pub const KEY: &str = "iglu:com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0";
pub const AVRO_SCHEMA: &str =
    include_str!("../../resources/iglu/schemas/com.snowplowanalytics.sauna.observers/AmazonKinesisConfig/avro/1-0-0");

/// The largest `Limit` GetRecords accepts.
pub const MAX_RECORDS_LIMIT: i32 = 10_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    id: String,
    parameters: RawParameters,
}

#[derive(Deserialize)]
struct RawParameters {
    aws: RawAws,
    kinesis: RawKinesis,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAws {
    access_key_id: String,
    secret_access_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKinesis {
    region: String,
    stream_name: String,
    max_records: i32,
    initial_position: RawPosition,
    initial_position_modifiers: Option<RawModifiers>,
}

#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
enum RawPosition {
    AT_TIMESTAMP,
    LATEST,
    TRIM_HORIZON,
}

#[derive(Deserialize)]
struct RawModifiers {
    timestamp: Option<i64>,
}

impl KinesisObserverConfig {
    /// Builds the typed config from a value already checked against the Avro schema, applying
    /// the rules the schema cannot express.
    pub fn from_avro(value: &AvroValue) -> Result<Self, FieldError> {
        let raw: Raw =
            apache_avro::from_value(value).map_err(|e| FieldError::new("data", format!("cannot decode: {e}")))?;
        let kinesis = raw.parameters.kinesis;
        let at = |field: &str| format!("data.parameters.kinesis.{field}");

        check_id(&raw.id)?;
        if kinesis.region.trim().is_empty() {
            return Err(FieldError::new(
                at("region"),
                "expected an AWS region such as \"us-west-2\", found an empty string",
            ));
        }
        check_stream_name(&kinesis.stream_name).map_err(|m| FieldError::new(at("streamName"), m))?;
        if !(1..=MAX_RECORDS_LIMIT).contains(&kinesis.max_records) {
            return Err(FieldError::new(
                at("maxRecords"),
                format!(
                    "expected an integer from 1 to {MAX_RECORDS_LIMIT} (the GetRecords limit), found {}",
                    kinesis.max_records
                ),
            ));
        }
        let initial_position = match kinesis.initial_position {
            RawPosition::LATEST => InitialPosition::Latest,
            RawPosition::TRIM_HORIZON => InitialPosition::TrimHorizon,
            RawPosition::AT_TIMESTAMP => {
                let ms = kinesis
                    .initial_position_modifiers
                    .and_then(|m| m.timestamp)
                    .ok_or_else(|| {
                        FieldError::new(
                            at("initialPositionModifiers.timestamp"),
                            "expected a timestamp (epoch milliseconds), which initialPosition AT_TIMESTAMP needs; found none",
                        )
                    })?;
                let t = Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
                    FieldError::new(
                        at("initialPositionModifiers.timestamp"),
                        format!("expected epoch milliseconds of a representable instant, found {ms}"),
                    )
                })?;
                InitialPosition::AtTimestamp(t)
            }
        };
        Ok(KinesisObserverConfig {
            id: raw.id,
            credentials: AwsCredentials::from_keys(
                &raw.parameters.aws.access_key_id,
                &raw.parameters.aws.secret_access_key,
            ),
            region: kinesis.region,
            stream_name: kinesis.stream_name,
            max_records: kinesis.max_records,
            initial_position,
        })
    }
}

/// The observer's id names its DynamoDB lease table, so it must be a valid table name.
pub(crate) fn check_id(id: &str) -> Result<(), FieldError> {
    let ok_len = (3..=255).contains(&id.len());
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(FieldError::new(
            "data.id",
            format!(
                "expected 3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.' (the id names the DynamoDB lease table), found {id:?}"
            ),
        ))
    }
}

fn check_stream_name(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a Kinesis stream name (1 to 128 characters of a-z, A-Z, 0-9, '_', '-', '.'), found {name:?}"
        ))
    }
}

/// The AWS regions this version knows (commercial, GovCloud, China, European Sovereign Cloud).
/// A region outside the list is only warned about: AWS opens new ones.
const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Is `region` one of the AWS regions this version knows (exactly, lower case)?
pub fn is_known_region(region: &str) -> bool {
    KNOWN_REGIONS.contains(&region)
}

/// A warning when `region` is not a region this version knows (a misspelling, most likely).
pub fn region_warning(region: &str) -> Option<String> {
    if is_known_region(region) {
        return None;
    }
    let close: Vec<&str> = KNOWN_REGIONS.iter().copied().filter(|r| similar(r, region)).collect();
    let hint = if close.is_empty() { String::new() } else { format!(" (did you mean {}?)", close.join(" or ")) };
    Some(format!(
        "data.parameters.kinesis.region: {region:?} is not an AWS region this version knows{hint}; the observer will fail to connect if it is misspelled"
    ))
}

/// Same length and at most two characters apart, or the same letters in another order.
fn similar(a: &str, b: &str) -> bool {
    let differ = a.len() == b.len() && a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count() <= 2;
    let (mut x, mut y): (Vec<u8>, Vec<u8>) = (a.bytes().collect(), b.bytes().collect());
    x.sort_unstable();
    y.sort_unstable();
    differ || x == y
}
