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
    /// Its commandId was actioned (or given up on) already: a producer wrote it twice, or it
    /// is read again after a crash. Not actioned again, not dead-lettered.
    Duplicate,
}

impl Outcome {
    pub const ALL: [Outcome; 6] =
        [Outcome::Done, Outcome::Expired, Outcome::Invalid, Outcome::Unroutable, Outcome::Failed, Outcome::Duplicate];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Expired => "expired",
            Outcome::Invalid => "invalid",
            Outcome::Unroutable => "unroutable",
            Outcome::Failed => "failed",
            Outcome::Duplicate => "duplicate",
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
            Outcome::Duplicate => "CommandsDuplicate",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
