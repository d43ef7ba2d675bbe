//! The HTTP conventions every responder shares: which answers are done, worth a retry, or
//! final failures.

use std::time::Duration;

use super::Attempt;

/// Sends a request and classifies the answer: 2xx done; 429 (honouring `Retry-After`), 408,
/// 5xx, timeouts and connection errors retried; any other status a permanent failure.
///
/// Error texts never include the URL: webhook URLs carry their tokens.
pub async fn send(request: reqwest::RequestBuilder) -> Attempt {
    match request.send().await {
        Ok(response) => classify(response).await,
        Err(e) => {
            let e = e.without_url();
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            Attempt::Retry { reason: format!("{kind}: {}", error_chain(&e)), retry_after: None }
        }
    }
}

async fn classify(response: reqwest::Response) -> Attempt {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    if response.status().is_success() {
        return attempt_for(status, retry_after, "");
    }
    let body = response.text().await.unwrap_or_default();
    attempt_for(status, retry_after, &body)
}

/// What an answer with this status (and `Retry-After`, and body) comes to: 2xx done; 429, 408
/// and 5xx worth another attempt; any other status a permanent failure.
pub fn attempt_for(status: u16, retry_after: Option<Duration>, body: &str) -> Attempt {
    if (200..300).contains(&status) {
        return Attempt::Done(format!("HTTP {status}"));
    }
    let snippet: String = body.chars().take(200).collect();
    let reason = format!("HTTP {status}: {}", snippet.trim());
    if status == 429 || status == 408 || (500..600).contains(&status) {
        Attempt::Retry { reason, retry_after }
    } else {
        Attempt::Fail(reason)
    }
}

/// `Retry-After` in delta-seconds or as an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
