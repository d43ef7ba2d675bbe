//! SendGrid: `com.sendgrid.sauna.commands/send_email/jsonschema/1-0-*` sent to the v3 mail send
//! API with the config's `apiKeyId` as bearer token (`SendgridConfig` 1-0-1 `emailsEnabled`;
//! 1-0-0 predates real-time email and configures nothing here).

use std::sync::Arc;

use serde::Deserialize;

use super::{
    AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use crate::command::Command;
use crate::config::FieldError;
use crate::config::Secret;
use crate::config::runtime::Endpoints;
use crate::iglu::SchemaCriterion;

pub static MODULE: ResponderModule = ResponderModule {
    name: "SendGrid",
    config_schemas: &[
        ConfigSchema {
            key: "iglu:com.snowplowanalytics.sauna.responders/SendgridConfig/avro/1-0-0",
            avro: include_str!(
                "../../resources/iglu/schemas/com.snowplowanalytics.sauna.responders/SendgridConfig/avro/1-0-0"
            ),
        },
        ConfigSchema {
            key: "iglu:com.snowplowanalytics.sauna.responders/SendgridConfig/avro/1-0-1",
            avro: include_str!(
                "../../resources/iglu/schemas/com.snowplowanalytics.sauna.responders/SendgridConfig/avro/1-0-1"
            ),
        },
    ],
    configure,
};

pub const SEND_EMAIL: &str = "iglu:com.sendgrid.sauna.commands/send_email/jsonschema/1-0-*";

#[derive(Debug)]
pub struct SendgridResponder {
    pub id: String,
    pub api_key: Secret,
}

impl Responder for SendgridResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec![super::criterion(SEND_EMAIL)]
    }

    /// The command's data is a v3 mail/send body as it stands (personalizations, from,
    /// content, attachments, templates, settings…).
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a> {
        let url = format!("{}/v3/mail/send", ctx.endpoints.sendgrid_api_url.trim_end_matches('/'));
        Box::pin(super::http::send(ctx.http().post(url).bearer_auth(self.api_key.expose()).json(&command.data)))
    }

    fn endpoint(&self, endpoints: &Endpoints) -> Option<Secret> {
        Some(Secret::new(endpoints.sendgrid_api_url.clone()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    recipients_enabled: bool,
    /// Absent in 1-0-0.
    #[serde(default)]
    emails_enabled: bool,
    api_key_id: String,
}

fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = super::decode::<RawParameters>(file.value)?;
    let p = raw.parameters;
    let mut configured = Configured::default();
    if p.recipients_enabled {
        configured.warnings.push(format!(
            "data.parameters.recipientsEnabled: the batch contact-list upload of Sauna 0.1 is not part of this observer; ignored ({})",
            file.key
        ));
    }
    if p.emails_enabled {
        if p.api_key_id.trim().is_empty() {
            return Err(FieldError::new(
                "data.parameters.apiKeyId",
                "expected a SendGrid API key, found an empty string",
            ));
        }
        configured.responders.push(Arc::new(SendgridResponder { id: raw.id, api_key: Secret::new(p.api_key_id) }));
    }
    Ok(configured)
}
