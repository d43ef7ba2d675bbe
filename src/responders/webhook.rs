//! A generic webhook: sends the commands of the types the user names to one HTTP endpoint
//! (`rs.sauna.responders/WebhookConfig` 1-0-0), for services Sauna has no responder for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use crate::command::{Command, CommandData};
use crate::config::FieldError;
use crate::config::Secret;
use crate::config::runtime::Endpoints;
use crate::iglu::SchemaCriterion;

pub static MODULE: ResponderModule = ResponderModule {
    name: "Webhook",
    config_schemas: &[ConfigSchema {
        key: "iglu:rs.sauna.responders/WebhookConfig/avro/1-0-0",
        avro: include_str!("../../resources/iglu/schemas/rs.sauna.responders/WebhookConfig/avro/1-0-0"),
    }],
    configure,
};

/// What the request body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Body {
    /// The self-describing command: `{"schema": …, "data": …}`.
    Command,
    /// The command's data alone.
    Data,
}

#[derive(Debug)]
pub struct WebhookResponder {
    pub id: String,
    /// Query strings may carry tokens: the whole URL is a secret.
    pub url: Secret,
    pub method: reqwest::Method,
    pub headers: Vec<(String, Secret)>,
    pub timeout: Option<Duration>,
    pub criteria: Vec<SchemaCriterion>,
    pub body: Body,
}

impl Responder for WebhookResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        self.criteria.clone()
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn endpoint(&self, _: &Endpoints) -> Option<Secret> {
        Some(self.url.clone())
    }

    /// The body as configured, plus `Sauna-Command-Id` and `Sauna-Command-Schema` headers so
    /// the receiver can deduplicate and dispatch without parsing.
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a> {
        let request = ctx
            .http()
            .request(self.method.clone(), self.url.expose())
            .header("Sauna-Command-Id", command.envelope.command_id.to_string())
            .header("Sauna-Command-Schema", command.schema.to_string());
        let mut request = match self.body {
            Body::Command => request.json(&CommandBody { data: &command.data, schema: command.schema.to_string() }),
            Body::Data => request.json(&command.data),
        };
        for (name, value) in &self.headers {
            request = request.header(name, value.expose());
        }
        if let Some(t) = self.timeout {
            request = request.timeout(t);
        }
        Box::pin(super::http::send(request))
    }
}

/// The `command` body: `{"data": …, "schema": "iglu:…"}` (its fields in the order of their
/// names, as a JSON object of them printed them).
#[derive(Serialize)]
struct CommandBody<'a> {
    data: &'a CommandData,
    schema: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    url: String,
    method: String,
    headers: BTreeMap<String, String>,
    timeout_millis: Option<i64>,
    commands: Vec<String>,
    body: Body,
}

fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = super::decode::<RawParameters>(file.value)?;
    let p = raw.parameters;
    crate::config::runtime::check_http_url(&p.url).map_err(|m| FieldError::new("data.parameters.url", m))?;
    let method = reqwest::Method::from_bytes(p.method.as_bytes())
        .map_err(|_| FieldError::new("data.parameters.method", "expected POST, PUT or PATCH"))?;
    let mut headers = vec![];
    for (name, value) in p.headers {
        let ok_name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
        let ok_value = reqwest::header::HeaderValue::from_str(&value).is_ok();
        if !ok_name || !ok_value {
            return Err(FieldError::new(
                format!("data.parameters.headers.{name}"),
                "expected a valid HTTP header name and value",
            ));
        }
        headers.push((name, Secret::new(value)));
    }
    let timeout = match p.timeout_millis {
        None => None,
        Some(ms) if (1..=600_000).contains(&ms) => Some(Duration::from_millis(ms as u64)),
        Some(ms) => {
            return Err(FieldError::new(
                "data.parameters.timeoutMillis",
                format!("expected null or milliseconds from 1 to 600000, found {ms}"),
            ));
        }
    };
    let criteria = super::parse_criteria(&p.commands, "data.parameters.commands")?;
    Ok(Configured {
        responders: vec![Arc::new(WebhookResponder {
            id: raw.id,
            url: Secret::new(p.url),
            method,
            headers,
            timeout,
            criteria,
            body: p.body,
        })],
        warnings: vec![],
    })
}
