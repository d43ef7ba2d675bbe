//! One line for an AWS SDK error, saying what an operator can act on: no credentials, access
//! denied (AWS's message names the action and the resource), an endpoint that cannot be
//! reached, a timeout, or the service's error code and message. The SDK's own `Debug` text is
//! pages long and its `Display` is often just "dispatch failure"; neither belongs in a log line
//! an operator reads at 3 a.m.

use std::error::Error;
use std::fmt::Debug;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The error, in one line.
pub fn explain<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
    R: Debug + 'static,
{
    let chain = causes(e);
    if let SdkError::ServiceError(s) = e {
        let err = s.err();
        let code = err.code().unwrap_or("an error without a code");
        let message = err.message().unwrap_or_default();
        if code.contains("AccessDenied")
            || code.contains("UnauthorizedOperation")
            || code == "UnrecognizedClientException"
        {
            return format!("access denied ({code}): {message}");
        }
        return if message.is_empty() { code.to_owned() } else { format!("{code}: {message}") };
    }
    if mentions_credentials(&chain) {
        return format!(
            "no AWS credentials found (give aws.accessKeyId and aws.secretAccessKey in the observer config, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or task role): {}",
            last(&chain)
        );
    }
    match e {
        SdkError::TimeoutError(_) => "timed out waiting for the service".to_owned(),
        SdkError::DispatchFailure(d) if d.is_timeout() => format!("timed out reaching the endpoint: {}", last(&chain)),
        SdkError::DispatchFailure(d) if d.is_io() => format!("the endpoint is unreachable: {}", last(&chain)),
        SdkError::DispatchFailure(_) => format!("the request could not be sent: {}", last(&chain)),
        SdkError::ResponseError(_) => format!("the service's answer could not be read: {}", last(&chain)),
        SdkError::ConstructionFailure(_) => format!("the request could not be built: {}", last(&chain)),
        _ => last(&chain),
    }
}

/// Every message of the error's source chain, outermost first.
fn causes(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if out.last() != Some(&text) {
            out.push(text);
        }
        source = s.source();
    }
    out
}

/// The innermost cause: the one that says what really happened.
fn last(chain: &[String]) -> String {
    chain.last().cloned().unwrap_or_default().replace('\n', " ")
}

fn mentions_credentials(chain: &[String]) -> bool {
    chain.iter().any(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("credential") || c.contains("no identity") || c.contains("identity resolver")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::operation::list_shards::ListShardsError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service(code: &str, message: &str) -> SdkError<ListShardsError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::empty());
        SdkError::service_error(ListShardsError::generic(meta), raw)
    }

    #[test]
    fn access_denied_keeps_the_action_and_resource_aws_names() {
        let text = explain(&service(
            "AccessDeniedException",
            "User: arn:aws:iam::123:user/x is not authorized to perform: kinesis:ListShards on resource: arn:aws:kinesis:us-west-2:123:stream/s",
        ));
        assert!(text.starts_with("access denied (AccessDeniedException)"), "{text}");
        assert!(text.contains("kinesis:ListShards") && text.contains("stream/s"), "{text}");
    }

    #[test]
    fn other_service_errors_are_their_code_and_message() {
        assert_eq!(
            explain(&service("ResourceNotFoundException", "Stream s under account 123 not found.")),
            "ResourceNotFoundException: Stream s under account 123 not found."
        );
    }

    #[test]
    fn a_timeout_says_so_in_one_line() {
        let e: SdkError<ListShardsError, HttpResponse> = SdkError::timeout_error("operation timeout (all attempts)");
        let text = explain(&e);
        assert!(text.contains("timed out") && !text.contains('\n'), "{text}");
    }
}
