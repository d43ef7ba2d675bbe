//! A shard as the stream describes it: its id, its lineage and its hash-key range. Used by
//! shard sync (which leases to create), the consumer (a closed shard's children) and the
//! LeaseManager (the children's leases at SHARD_END).

/// A shard as `ListShards` (or a closed shard's `ChildShards`) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    /// Parent and adjacent parent (a merge has two).
    pub parents: Vec<String>,
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    /// Closed shards have an ending sequence number.
    pub closed: bool,
}

/// A shard's hash key range (`startingHashKey` ..= `endingHashKey`): which user records of a
/// KPL aggregate belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    /// The whole hash key space (0 ..= 2^128 − 1).
    pub const ALL: HashKeyRange = HashKeyRange { start: 0, end: u128::MAX };

    /// From the decimal strings of ListShards and the lease table; `None` if either is not a
    /// 128-bit decimal number, or the range is empty.
    pub fn parse(start: &str, end: &str) -> Option<Self> {
        let (start, end) = (start.trim().parse::<u128>().ok()?, end.trim().parse::<u128>().ok()?);
        (start <= end).then_some(HashKeyRange { start, end })
    }

    pub fn contains(&self, hash_key: u128) -> bool {
        (self.start..=self.end).contains(&hash_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_key_ranges_parse_the_full_128_bits() {
        let all = HashKeyRange::parse("0", "340282366920938463463374607431768211455").expect("valid");
        assert_eq!(all, HashKeyRange::ALL);
        let half = HashKeyRange::parse("0", "170141183460469231731687303715884105727").expect("valid");
        assert!(half.contains(0) && half.contains(u128::MAX / 2) && !half.contains(u128::MAX / 2 + 1));
        assert_eq!(HashKeyRange::parse("0", "340282366920938463463374607431768211456"), None, "2^128");
        assert_eq!(HashKeyRange::parse("5", "4"), None);
        assert_eq!(HashKeyRange::parse("", "4"), None);
    }
}
