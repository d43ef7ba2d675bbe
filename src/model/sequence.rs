//! Positions in a shard: Kinesis sequence numbers, extended sequence numbers (a sequence number
//! and, inside a KPL aggregate, a user record's index) and the lease table's `checkpoint`
//! values (an extended sequence number or one of the KCL's sentinels), ordered the way the KCL
//! orders them, so that a checkpoint can be checked never to move backwards.

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

/// The position of one user record, as the KCL's `ExtendedSequenceNumber`: the sequence number
/// of the Kinesis record and, for the user records of a KPL aggregate, the user record's index
/// in it (its sub-sequence number; 0 for a plain record). Ordered by sequence number, then by
/// sub-sequence number, so the watermark can stop inside an aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedSequenceNumber {
    pub seq: SequenceNumber,
    pub sub: u64,
}

impl ExtendedSequenceNumber {
    pub fn new(seq: SequenceNumber, sub: u64) -> Self {
        ExtendedSequenceNumber { seq, sub }
    }

    /// A plain record (or the first user record of an aggregate).
    pub fn plain(seq: SequenceNumber) -> Self {
        ExtendedSequenceNumber { seq, sub: 0 }
    }
}

/// `S` for sub-sequence number 0, `S/N` otherwise (user record N of the aggregate S).
impl fmt::Display for ExtendedSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            0 => f.write_str(self.seq.as_str()),
            n => write!(f, "{}/{n}", self.seq),
        }
    }
}

/// The `checkpoint` attribute (with `checkpointSubSequenceNumber`): an extended sequence
/// number or one of the KCL's sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    /// The timestamp itself is not stored (as in the KCL): it comes from the observer config.
    AtTimestamp,
    /// Every record of the (closed) shard has an outcome.
    ShardEnd,
    /// Every user record up to and including this one has an outcome: for `(S, N)`, every
    /// record before S and, of S, the plain record itself (N = 0) or the user records 0..=N of
    /// its aggregate (the KCL's convention).
    Sequence(ExtendedSequenceNumber),
}

impl Checkpoint {
    /// After every user record of the Kinesis record `seq` (a plain record; a whole aggregate
    /// is `(S, last index)`).
    pub fn sequence(seq: SequenceNumber) -> Self {
        Checkpoint::Sequence(ExtendedSequenceNumber::plain(seq))
    }

    /// The `checkpoint` attribute (the sequence number, or the sentinel).
    pub fn as_attribute(&self) -> &str {
        match self {
            Checkpoint::TrimHorizon => "TRIM_HORIZON",
            Checkpoint::Latest => "LATEST",
            Checkpoint::AtTimestamp => "AT_TIMESTAMP",
            Checkpoint::ShardEnd => "SHARD_END",
            Checkpoint::Sequence(s) => s.seq.as_str(),
        }
    }

    /// The `checkpointSubSequenceNumber` attribute (0 for the sentinels, as the KCL writes).
    pub fn sub_sequence_number(&self) -> u64 {
        match self {
            Checkpoint::Sequence(s) => s.sub,
            _ => 0,
        }
    }

    /// The `checkpoint` attribute alone (sub-sequence number 0).
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_attributes(s, 0)
    }

    /// The `checkpoint` and `checkpointSubSequenceNumber` attributes; the sub-sequence number
    /// of a sentinel is ignored (the KCL writes 0 there).
    pub fn from_attributes(s: &str, sub: u64) -> Option<Self> {
        Some(match s {
            "TRIM_HORIZON" => Checkpoint::TrimHorizon,
            "LATEST" => Checkpoint::Latest,
            "AT_TIMESTAMP" => Checkpoint::AtTimestamp,
            "SHARD_END" => Checkpoint::ShardEnd,
            other => Checkpoint::Sequence(ExtendedSequenceNumber::new(SequenceNumber::parse(other)?, sub)),
        })
    }

    /// The KCL's order: sentinels that start a shard sort below every sequence number, and
    /// SHARD_END above everything. A checkpoint never moves backwards in this order.
    fn rank(&self) -> (u8, Option<&ExtendedSequenceNumber>) {
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

/// The attribute, with `/N` when the sub-sequence number is not 0.
impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checkpoint::Sequence(s) => s.fmt(f),
            other => f.write_str(other.as_attribute()),
        }
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
        let a = Checkpoint::sequence(seq("100"));
        let b = Checkpoint::sequence(seq("99"));
        assert!(a.is_after(&b));
        assert!(!b.is_after(&a));
        assert!(!Checkpoint::TrimHorizon.is_after(&b));
        assert!(a.is_after(&Checkpoint::Latest));
        assert!(Checkpoint::ShardEnd.is_after(&a));
        assert!(!a.is_after(&Checkpoint::ShardEnd));
    }

    #[test]
    fn sub_sequence_numbers_order_inside_a_record() {
        let at = |s: &str, n: u64| Checkpoint::Sequence(ExtendedSequenceNumber::new(seq(s), n));
        assert!(at("100", 3).is_after(&at("100", 2)), "a later user record of the same aggregate");
        assert!(!at("100", 2).is_after(&at("100", 3)));
        assert!(at("101", 0).is_after(&at("100", 499)), "the next record is after every user record");
        assert!(!at("100", 0).is_after(&Checkpoint::sequence(seq("100"))));
        assert!(Checkpoint::ShardEnd.is_after(&at("100", 7)));
        assert_eq!(at("100", 7).to_string(), "100/7");
        assert_eq!(at("100", 0).to_string(), "100");
        assert_eq!((at("100", 7).as_attribute(), at("100", 7).sub_sequence_number()), ("100", 7));
        assert_eq!(Checkpoint::from_attributes("100", 7), Some(at("100", 7)));
        assert_eq!(Checkpoint::from_attributes("SHARD_END", 3), Some(Checkpoint::ShardEnd));
        assert_eq!(Checkpoint::ShardEnd.sub_sequence_number(), 0);
    }
}
