//! `iglu:com.snowplowanalytics.sauna.loggers/AmazonDynamodbConfig/avro/1-0-0`: Sauna's outcome
//! log, one DynamoDB row per command outcome.

use apache_avro::types::Value as AvroValue;
use serde::Deserialize;

use super::avro_json::FieldError;
use super::observer::AwsCredentials;

/// The Iglu key of this config and its Avro schema.
pub const KEY: &str = "iglu:com.snowplowanalytics.sauna.loggers/AmazonDynamodbConfig/avro/1-0-0";
pub const AVRO_SCHEMA: &str =
    include_str!("../../resources/iglu/schemas/com.snowplowanalytics.sauna.loggers/AmazonDynamodbConfig/avro/1-0-0");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamodbLoggerConfig {
    pub id: String,
    pub region: String,
    pub credentials: AwsCredentials,
    pub table_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    id: String,
    parameters: RawParameters,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    aws_region: String,
    aws_access_key_id: String,
    aws_secret_access_key: String,
    dynamodb_table_name: String,
}

impl DynamodbLoggerConfig {
    pub fn from_avro(value: &AvroValue) -> Result<Self, FieldError> {
        let raw: Raw =
            apache_avro::from_value(value).map_err(|e| FieldError::new("data", format!("cannot decode: {e}")))?;
        let p = raw.parameters;
        if p.aws_region.trim().is_empty() {
            return Err(FieldError::new(
                "data.parameters.awsRegion",
                "expected an AWS region such as \"us-west-2\", found an empty string",
            ));
        }
        let table_ok = (3..=255).contains(&p.dynamodb_table_name.len())
            && p.dynamodb_table_name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !table_ok {
            return Err(FieldError::new(
                "data.parameters.dynamodbTableName",
                format!(
                    "expected a DynamoDB table name (3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.'), found {:?}",
                    p.dynamodb_table_name
                ),
            ));
        }
        Ok(DynamodbLoggerConfig {
            id: raw.id,
            region: p.aws_region,
            credentials: AwsCredentials::from_keys(&p.aws_access_key_id, &p.aws_secret_access_key),
            table_name: p.dynamodb_table_name,
        })
    }
}
