//! Keeping the lease table in step with the stream's shards (`ListShards`).
//!
//! A shard gets a lease when it is first seen. Where it starts:
//! - a child of a shard that already had a lease starts at TRIM_HORIZON: its parent was (or is
//!   being) processed, so all of the child is new;
//! - a shard with no tracked parent (the stream's first sync, or a root) starts at the
//!   observer's initial position, and so do its descendants created in the same sync, which is
//!   what makes AT_TIMESTAMP select the same records in every shard. With LATEST, closed
//!   shards get no lease (they can hold nothing newer).
//!
//! Parent-first order is then enforced by the ShardConsumer, which waits until every parent
//! lease is at SHARD_END or gone.

use std::collections::{HashMap, HashSet};

use super::row::Lease;
use crate::model::{Checkpoint, ShardInfo};

/// The children of `shard` (a split has two, a merge one shared with the adjacent parent).
pub fn children_of<'a>(shards: &'a [ShardInfo], shard: &str) -> Vec<&'a ShardInfo> {
    shards.iter().filter(|s| s.parents.iter().any(|p| p == shard)).collect()
}

/// The leases to create for shards that have none. A shard with a descendant that has a lease
/// gets none: it was consumed already (its lease was cleaned up after its children started),
/// and re-creating it would read it all again.
pub fn new_leases(shards: &[ShardInfo], existing: &HashSet<String>, initial: &Checkpoint) -> Vec<Lease> {
    let by_id: HashMap<&str, &ShardInfo> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
    let consumed = ancestors_of_tracked(shards, existing);
    let mut created: HashMap<String, Checkpoint> = HashMap::new();
    let mut out = vec![];
    for shard in topological(shards, &by_id) {
        if existing.contains(&shard.id) || consumed.contains(shard.id.as_str()) {
            continue;
        }
        let parent_tracked = shard.parents.iter().any(|p| existing.contains(p));
        // Descendants of shards created in this same sync inherit their start (TRIM_HORIZON
        // lineage stays TRIM_HORIZON, AT_TIMESTAMP stays AT_TIMESTAMP).
        let inherited = shard.parents.iter().find_map(|p| created.get(p)).cloned();
        let checkpoint = if parent_tracked {
            Checkpoint::TrimHorizon
        } else if let Some(c) = inherited {
            c
        } else if *initial == Checkpoint::Latest && shard.closed {
            continue;
        } else {
            initial.clone()
        };
        let mut lease = Lease::new(shard.id.clone(), checkpoint);
        lease.parent_shard_ids = shard.parents.clone();
        lease.parent_shard_ids.sort();
        lease.starting_hash_key = Some(shard.starting_hash_key.clone()).filter(|s| !s.is_empty());
        lease.ending_hash_key = Some(shard.ending_hash_key.clone()).filter(|s| !s.is_empty());
        created.insert(shard.id.clone(), lease.checkpoint.clone());
        out.push(lease);
    }
    out
}

/// Every shard that is an ancestor of a shard with a lease.
fn ancestors_of_tracked<'a>(shards: &'a [ShardInfo], existing: &HashSet<String>) -> HashSet<&'a str> {
    let by_id: HashMap<&str, &ShardInfo> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = HashSet::new();
    let mut stack: Vec<&str> = shards.iter().filter(|s| existing.contains(&s.id)).map(|s| s.id.as_str()).collect();
    while let Some(id) = stack.pop() {
        if let Some(s) = by_id.get(id) {
            for p in &s.parents {
                if let Some(parent) = by_id.get(p.as_str())
                    && out.insert(parent.id.as_str())
                {
                    stack.push(parent.id.as_str());
                }
            }
        }
    }
    out
}

/// Shards ordered so that every parent comes before its children.
fn topological<'a>(shards: &'a [ShardInfo], by_id: &HashMap<&str, &'a ShardInfo>) -> Vec<&'a ShardInfo> {
    fn visit<'a>(
        s: &'a ShardInfo,
        by_id: &HashMap<&str, &'a ShardInfo>,
        seen: &mut HashSet<&'a str>,
        out: &mut Vec<&'a ShardInfo>,
    ) {
        if !seen.insert(s.id.as_str()) {
            return;
        }
        for p in &s.parents {
            if let Some(parent) = by_id.get(p.as_str()) {
                visit(parent, by_id, seen, out);
            }
        }
        out.push(s);
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for s in shards {
        visit(s, by_id, &mut seen, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str], closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            starting_hash_key: "0".into(),
            ending_hash_key: "1".into(),
            closed,
        }
    }

    fn stream() -> Vec<ShardInfo> {
        // 0 split into 1 and 2; then 1 and 2 merged into 3.
        vec![
            shard("s3", &["s1", "s2"], false),
            shard("s0", &[], true),
            shard("s1", &["s0"], true),
            shard("s2", &["s0"], true),
        ]
    }

    fn plan(existing: &[&str], initial: Checkpoint) -> Vec<(String, Checkpoint)> {
        let existing = existing.iter().map(|s| s.to_string()).collect();
        new_leases(&stream(), &existing, &initial).into_iter().map(|l| (l.key, l.checkpoint)).collect()
    }

    #[test]
    fn first_sync_from_trim_horizon_covers_every_shard_parents_first() {
        let p = plan(&[], Checkpoint::TrimHorizon);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["s0", "s1", "s2", "s3"]);
        assert!(p.iter().all(|(_, c)| *c == Checkpoint::TrimHorizon));
    }

    #[test]
    fn first_sync_at_timestamp_applies_the_timestamp_to_every_shard() {
        assert!(plan(&[], Checkpoint::AtTimestamp).iter().all(|(_, c)| *c == Checkpoint::AtTimestamp));
    }

    #[test]
    fn first_sync_from_latest_skips_closed_shards() {
        assert_eq!(plan(&[], Checkpoint::Latest), vec![("s3".to_owned(), Checkpoint::Latest)]);
    }

    #[test]
    fn a_consumed_parent_whose_lease_was_cleaned_up_is_not_created_again() {
        // s0's lease was deleted after s1 and s2 started: s0 must not come back.
        let p = plan(&["s1", "s2"], Checkpoint::TrimHorizon);
        assert_eq!(p, vec![("s3".to_owned(), Checkpoint::TrimHorizon)]);
        assert!(plan(&["s3"], Checkpoint::TrimHorizon).is_empty(), "all ancestors of s3 are consumed");
    }

    #[test]
    fn children_of_tracked_shards_start_at_trim_horizon() {
        let p = plan(&["s0"], Checkpoint::Latest);
        assert_eq!(
            p,
            vec![
                ("s1".to_owned(), Checkpoint::TrimHorizon),
                ("s2".to_owned(), Checkpoint::TrimHorizon),
                ("s3".to_owned(), Checkpoint::TrimHorizon),
            ],
            "the whole lineage of a tracked shard starts at TRIM_HORIZON, whatever the initial position"
        );
        let merged = new_leases(&stream(), &HashSet::new(), &Checkpoint::TrimHorizon);
        assert_eq!(merged[3].parent_shard_ids, vec!["s1".to_owned(), "s2".to_owned()]);
        assert_eq!(children_of(&stream(), "s0").len(), 2);
    }
}
