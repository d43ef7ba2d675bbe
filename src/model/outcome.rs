//! How a record ends. Every record read from a shard ends in exactly one outcome; it is logged
//! once (shard, sequence number, commandId), counted in metrics, and only then covered by the
//! shard's checkpoint.

use std::fmt;

/// The end of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The responder actioned the command.
    Done,
    /// Its time to live had passed when it was read.
    Expired,
    /// Not a command: not UTF-8 JSON, not self-describing, or fails its schema.
    Invalid,
    /// No enabled responder takes its command type.
    Unroutable,
    /// The responder gave up (a permanent error, or transient errors past the retry limit).
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Done, Outcome::Expired, Outcome::Invalid, Outcome::Unroutable, Outcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Expired => "expired",
            Outcome::Invalid => "invalid",
            Outcome::Unroutable => "unroutable",
            Outcome::Failed => "failed",
        }
    }

    /// The CloudWatch metric counting this outcome.
    pub fn metric_name(self) -> &'static str {
        match self {
            Outcome::Done => "CommandsDone",
            Outcome::Expired => "CommandsExpired",
            Outcome::Invalid => "CommandsInvalid",
            Outcome::Unroutable => "CommandsUnroutable",
            Outcome::Failed => "CommandsFailed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
