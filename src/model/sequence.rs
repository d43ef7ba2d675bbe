//! Positions in a shard: Kinesis sequence numbers and the lease table's `checkpoint` values
//! (a sequence number or one of the KCL's sentinels), ordered the way the KCL orders them, so
//! that a checkpoint can be checked never to move backwards.

use std::cmp::Ordering;
use std::fmt;

/// A Kinesis sequence number: a decimal string of up to 128 bits' worth of digits, compared as
/// the number it is (the KCL compares them as BigInteger).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// A sequence number is digits only; anything else is not one.
    pub fn parse(s: &str) -> Option<Self> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| SequenceNumber(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn significant(&self) -> &str {
        let t = self.0.trim_start_matches('0');
        if t.is_empty() { "0" } else { t }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `checkpoint` attribute: a sequence number or one of the KCL's sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    /// The timestamp itself is not stored (as in the KCL): it comes from the observer config.
    AtTimestamp,
    /// Every record of the (closed) shard has an outcome.
    ShardEnd,
    /// Every record up to and including this one has an outcome.
    Sequence(SequenceNumber),
}

impl Checkpoint {
    pub fn as_attribute(&self) -> &str {
        match self {
            Checkpoint::TrimHorizon => "TRIM_HORIZON",
            Checkpoint::Latest => "LATEST",
            Checkpoint::AtTimestamp => "AT_TIMESTAMP",
            Checkpoint::ShardEnd => "SHARD_END",
            Checkpoint::Sequence(s) => s.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TRIM_HORIZON" => Checkpoint::TrimHorizon,
            "LATEST" => Checkpoint::Latest,
            "AT_TIMESTAMP" => Checkpoint::AtTimestamp,
            "SHARD_END" => Checkpoint::ShardEnd,
            other => Checkpoint::Sequence(SequenceNumber::parse(other)?),
        })
    }

    /// The KCL's order: sentinels that start a shard sort below every sequence number, and
    /// SHARD_END above everything. A checkpoint never moves backwards in this order.
    fn rank(&self) -> (u8, Option<&SequenceNumber>) {
        match self {
            Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => (0, None),
            Checkpoint::Sequence(s) => (1, Some(s)),
            Checkpoint::ShardEnd => (2, None),
        }
    }

    /// True when moving from `self` to `next` would go backwards.
    pub fn is_after(&self, next: &Checkpoint) -> bool {
        self.rank() > next.rank()
    }

    /// A shard whose checkpoint is one of these has not processed a record yet.
    pub fn is_start_position(&self) -> bool {
        matches!(self, Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_attribute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).expect("digits")
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(seq("9") < seq("10"));
        assert!(seq("0010") == seq("10").clone() || seq("0010") <= seq("10"));
        assert_eq!(seq("0010").cmp(&seq("10")), Ordering::Equal);
        let big = "49590338271490256608559692538361571095921575989136588898";
        let bigger = "49590338271490256608559692538361571095921575989136588899";
        assert!(seq(big) < seq(bigger));
        assert!(SequenceNumber::parse("12a").is_none());
        assert!(SequenceNumber::parse("").is_none());
    }

    #[test]
    fn checkpoints_order_like_the_kcl() {
        let a = Checkpoint::Sequence(seq("100"));
        let b = Checkpoint::Sequence(seq("99"));
        assert!(a.is_after(&b));
        assert!(!b.is_after(&a));
        assert!(!Checkpoint::TrimHorizon.is_after(&b));
        assert!(a.is_after(&Checkpoint::Latest));
        assert!(Checkpoint::ShardEnd.is_after(&a));
        assert!(!a.is_after(&Checkpoint::ShardEnd));
    }
}
