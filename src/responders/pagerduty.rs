//! PagerDuty: `com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*` sent to the Events
//! API (`PagerDutyConfig` 1-0-0; the `service_key` travels in each command).

use std::sync::Arc;

use serde::Deserialize;

use super::{
    Attempt, AttemptFuture, ConfigSchema, Configured, Responder, ResponderConfigFile, ResponderContext, ResponderModule,
};
use crate::command::Command;
use crate::config::runtime::Endpoints;
use crate::config::{FieldError, Secret};
use crate::iglu::SchemaCriterion;

pub static MODULE: ResponderModule = ResponderModule {
    name: "PagerDuty",
    config_schemas: &[ConfigSchema {
        key: "iglu:com.snowplowanalytics.sauna.responders/PagerDutyConfig/avro/1-0-0",
        avro: include_str!(
            "../../resources/iglu/schemas/com.snowplowanalytics.sauna.responders/PagerDutyConfig/avro/1-0-0"
        ),
    }],
    configure,
};

pub const CREATE_EVENT: &str = "iglu:com.pagerduty.sauna.commands/create_event/jsonschema/1-0-*";

#[derive(Debug)]
pub struct PagerDutyResponder {
    pub id: String,
}

impl Responder for PagerDutyResponder {
    fn id(&self) -> &str {
        &self.id
    }

    fn criteria(&self) -> Vec<SchemaCriterion> {
        vec![super::criterion(CREATE_EVENT)]
    }

    /// The command's data is an Events API (v1) event as it stands: `service_key`,
    /// `event_type` (trigger / acknowledge / resolve), `incident_key`, `description`,
    /// `details`, `client`, `client_url`, `contexts`.
    fn execute<'a>(&'a self, command: &'a Command, ctx: &'a ResponderContext) -> AttemptFuture<'a> {
        Box::pin(async move {
            let request = ctx.http().post(&ctx.endpoints.pager_duty_events_url).json(&command.data);
            match super::http::send(request).await {
                // The Events API answers 403 when the service key is rate limited.
                Attempt::Fail(reason) if reason.starts_with("HTTP 403") => {
                    Attempt::Retry { reason: format!("{reason} (rate limited)"), retry_after: None }
                }
                other => other,
            }
        })
    }

    fn endpoint(&self, endpoints: &Endpoints) -> Option<Secret> {
        Some(Secret::new(endpoints.pager_duty_events_url.clone()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParameters {
    create_event_enabled: bool,
}

fn configure(file: &ResponderConfigFile<'_>) -> Result<Configured, FieldError> {
    let raw = super::decode::<RawParameters>(file.value)?;
    if !raw.parameters.create_event_enabled {
        return Ok(Configured::default());
    }
    Ok(Configured { responders: vec![Arc::new(PagerDutyResponder { id: raw.id })], warnings: vec![] })
}
