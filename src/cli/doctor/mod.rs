//! `sauna doctor`: before a first run, checks what each enabled observer will need — its
//! credentials, region, stream, shards, lease and claim tables, stream consumer, CloudWatch —
//! and what the responders will talk to, and says in one line each what is wrong (the IAM
//! action missing, the endpoint unreachable, the stream absent). Nothing is created; the one
//! write is a single CloudWatch datum, since only a write shows that metrics are accepted.
//!
//! [`aws_checks`] asks AWS; this module checks the region name and the responders' hosts (a
//! DNS resolution only, no request), prints the lines and decides the exit code.

mod aws_checks;

use std::fmt;
use std::process::ExitCode;

use clap::Args;

use super::DirArgs;
use crate::config::Secret;
use crate::config_dir::{self, Catalog};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Only the observer with this id.
    #[arg(long, value_name = "ID")]
    observer: Option<String>,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Not a problem found, but something that could not be verified or looks unusual.
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub verdict: Verdict,
    pub text: String,
}

impl Check {
    pub fn ok(text: impl Into<String>) -> Self {
        Check { verdict: Verdict::Ok, text: text.into() }
    }

    pub fn warn(text: impl Into<String>) -> Self {
        Check { verdict: Verdict::Warn, text: text.into() }
    }

    pub fn fail(text: impl Into<String>) -> Self {
        Check { verdict: Verdict::Fail, text: text.into() }
    }

    pub fn is_fail(&self) -> bool {
        self.verdict == Verdict::Fail
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{tag} {}", self.text)
    }
}

/// Runs `sauna doctor`: one group of lines per observer, then the responders, then a count.
pub fn run(args: &DoctorArgs, catalog: &Catalog) -> ExitCode {
    let configuration = match config_dir::load_dir_with(&args.dir.config_dir, catalog) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                println!("{}", Check::fail(format!("config: {e}")));
            }
            return ExitCode::FAILURE;
        }
    };
    let observers: Vec<_> =
        configuration.observers.iter().filter(|o| args.observer.as_ref().is_none_or(|id| *id == o.id)).collect();
    if observers.is_empty() {
        eprintln!("error: no enabled observer with id {:?}", args.observer.as_deref().unwrap_or(""));
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut all: Vec<Check> = configuration.warnings.iter().map(|w| Check::warn(format!("config: {w}"))).collect();
    all.iter().for_each(|c| println!("{c}"));
    for o in observers {
        println!("observer {} (stream {}, region {}):", o.id, o.stream_name, o.region);
        let mut checks = vec![region_check(&o.region)];
        checks.extend(runtime.block_on(aws_checks::observer_checks(o, &configuration.runtime)));
        checks.iter().for_each(|c| println!("{c}"));
        all.extend(checks);
    }
    if !configuration.responders.is_empty() {
        println!("responders:");
        for r in &configuration.responders {
            let check = match r.endpoint(&configuration.runtime.endpoints) {
                Some(url) => runtime.block_on(resolve_check(r.id(), &url)),
                None => Check::ok(format!("responder {}: no network endpoint to check", r.id())),
            };
            println!("{check}");
            all.push(check);
        }
    }
    let count = |v: Verdict| all.iter().filter(|c| c.verdict == v).count();
    let failed = count(Verdict::Fail);
    let warnings = count(Verdict::Warn);
    let s = if warnings == 1 { "" } else { "s" };
    println!("doctor: {} ok, {warnings} warning{s}, {failed} failed", count(Verdict::Ok));
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn region_check(region: &str) -> Check {
    if crate::config::observer::is_known_region(region) {
        Check::ok(format!("region {region} is an AWS region"))
    } else {
        Check::warn(format!(
            "region {region} is not among the AWS regions this build knows (a newer region, or a typo?)"
        ))
    }
}

/// Where a URL points, without its path, query or credentials (which may hold a token).
fn host_of(url: &str) -> Option<(String, String, u16)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    let port = parsed.port_or_known_default()?;
    let shown = format!("{}://{host}{}", parsed.scheme(), parsed.port().map(|p| format!(":{p}")).unwrap_or_default());
    Some((shown, host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

/// The responder's host resolves (DNS only: nothing is sent to it).
async fn resolve_check(id: &str, url: &Secret) -> Check {
    let Some((shown, host, port)) = host_of(url.expose()) else {
        return Check::fail(format!("responder {id}: its URL has no host to resolve"));
    };
    match tokio::time::timeout(aws_checks::TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await {
        Ok(Ok(addresses)) => {
            let addresses: Vec<_> = addresses.map(|a| a.ip().to_string()).collect();
            match addresses.first() {
                Some(first) => Check::ok(format!(
                    "responder {id}: {shown} resolves ({first}{})",
                    if addresses.len() > 1 { format!(" and {} more", addresses.len() - 1) } else { String::new() }
                )),
                None => Check::fail(format!("responder {id}: {host} resolves to no address")),
            }
        }
        Ok(Err(e)) => Check::fail(format!("responder {id}: {host} does not resolve ({e})")),
        Err(_) => Check::fail(format!("responder {id}: {host} did not resolve within {:?}", aws_checks::TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_with_their_verdict() {
        assert_eq!(Check::ok("a").to_string(), "ok   a");
        assert_eq!(Check::warn("b").to_string(), "warn b");
        assert_eq!(Check::fail("c").to_string(), "FAIL c");
    }

    #[test]
    fn regions() {
        assert_eq!(region_check("us-west-2").verdict, Verdict::Ok);
        assert_eq!(region_check("eu-central-2").verdict, Verdict::Ok);
        assert_eq!(region_check("us-west-9").verdict, Verdict::Warn);
        assert_eq!(region_check("US-WEST-2").verdict, Verdict::Warn);
    }

    #[test]
    fn hosts_are_shown_without_paths_or_tokens() {
        let slack = host_of("https://hooks.slack.com/services/T000/B000/SECRET").expect("a host");
        assert_eq!(slack, ("https://hooks.slack.com".into(), "hooks.slack.com".into(), 443));
        let local = host_of("http://user:pw@127.0.0.1:8080/x?token=1").expect("a host");
        assert_eq!(local, ("http://127.0.0.1:8080".into(), "127.0.0.1".into(), 8080));
        let v6 = host_of("http://[::1]:9/").expect("a host");
        assert_eq!(v6, ("http://[::1]:9".into(), "::1".into(), 9));
        assert_eq!(host_of("not a url"), None);
    }

    #[test]
    fn the_denied_action_is_read_from_the_message() {
        let m = "User: arn:aws:iam::123:user/x is not authorized to perform: kinesis:DescribeStreamSummary on resource: arn:aws:kinesis:us-east-1:123:stream/s";
        assert_eq!(aws_checks::denied_action(m), Some("kinesis:DescribeStreamSummary"));
        let m = "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: dynamodb:DescribeTable.";
        assert_eq!(aws_checks::denied_action(m), Some("dynamodb:DescribeTable"));
        assert_eq!(aws_checks::denied_action("Access denied"), None);
        assert_eq!(aws_checks::denied_action("perform: nothing"), None);
    }

    #[tokio::test]
    async fn a_loopback_host_resolves_without_the_network() {
        let c = resolve_check("slack", &Secret::new("http://127.0.0.1:9/slack/T/B/SECRET")).await;
        assert_eq!(c.verdict, Verdict::Ok, "{c}");
        assert_eq!(c.text, "responder slack: http://127.0.0.1:9 resolves (127.0.0.1)");
        let c = resolve_check("hook", &Secret::new("mailto:x")).await;
        assert!(c.is_fail());
    }
}
