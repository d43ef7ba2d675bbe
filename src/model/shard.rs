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
