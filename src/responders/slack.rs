//! Slack: `com.slack.sauna.commands/send_message/jsonschema/1-0-*` posted to an incoming
//! webhook (`SlackConfig` 1-0-0 `webhookUrl`).

use std::sync::Arc;

use serde::Deserialize;

use super::{
    AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use crate::command::Command;
use crate::config::FieldError;
use crate::config::Secret;
use crate::config::runtime::{Endpoints, RateLimit};
use crate::iglu::SchemaCriterion;

pub static MODULE: ResponderModule = ResponderModule {
    name: "Slack",
    config_schemas: &[ConfigSchema {
        key: "iglu:com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0",
        avro: include_str!(
            "../../resources/iglu/schemas/com.snowplowanalytics.sauna.responders/SlackConfig/avro/1-0-0"
        ),
    }],
    configure,
};

pub const SEND_MESSAGE: &str = "iglu:com.slack.sauna.commands/send_message/jsonschema/1-0-*";

/// Posts `send_message` commands to one incoming webhook.
#[derive(Debug)]
pub struct SlackResponder {
    pub id: String,
    /// The webhook URL carries its own token, so it is a secret.
    pub webhook_url: Secret,
}

impl Responder for SlackResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec![super::criterion(SEND_MESSAGE)]
    }

    /// Slack accepts about one message a second per incoming webhook, and short bursts.
    fn default_rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit { every: std::time::Duration::from_secs(1), burst: 3 })
    }

    /// The command's data is an incoming-webhook message as it stands (text, channel,
    /// username, icons, attachments…): it is posted unchanged.
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a> {
        Box::pin(super::http::send(ctx.http().post(self.webhook_url.expose()).json(&command.data)))
    }

    fn endpoint(&self, _: &Endpoints) -> Option<Secret> {
        Some(self.webhook_url.clone())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    send_message_enabled: bool,
    webhook_url: String,
}

fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = super::decode::<RawParameters>(file.value)?;
    if !raw.parameters.send_message_enabled {
        return Ok(Configured::default());
    }
    crate::config::runtime::check_http_url(&raw.parameters.webhook_url)
        .map_err(|m| FieldError::new("data.parameters.webhookUrl", m))?;
    Ok(Configured {
        responders: vec![Arc::new(SlackResponder { id: raw.id, webhook_url: Secret::new(raw.parameters.webhook_url) })],
        warnings: vec![],
    })
}
