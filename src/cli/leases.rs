//! What `sauna leases` shows: the lease table of an observer, one line per shard, with the
//! state an operator cares about (running, waiting on a parent, ended, free).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::lease_manager::{Lease, LeaseStore, RowError};
use crate::lease_manager::{LeaseTable, LeaseTableError};

/// Where a shard's lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Owned by a worker, parents finished: being consumed.
    Running,
    /// A parent shard's lease is not at SHARD_END yet: it starts when it is.
    WaitingOnParent,
    /// Checkpointed at SHARD_END: every record has an outcome.
    Ended,
    /// No owner: the next worker with room takes it.
    Free,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Running => "running",
            LeaseState::WaitingOnParent => "waiting on parent",
            LeaseState::Ended => "ended",
            LeaseState::Free => "free",
        }
    }
}

/// One lease, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseLine {
    pub shard: String,
    pub owner: Option<String>,
    pub counter: u64,
    /// The `checkpoint` attribute (a sequence number or a sentinel).
    pub checkpoint: String,
    /// Inside a KPL aggregate: the index of the last user record covered.
    pub checkpoint_sub_sequence_number: u64,
    pub owner_switches_since_checkpoint: u64,
    pub parents: Vec<String>,
    pub children: Vec<String>,
    pub state: LeaseState,
    pub handoff_requested: Option<String>,
}

/// The lease table of one observer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseReport {
    pub observer: String,
    pub stream: String,
    pub table: String,
    pub leases: Vec<LeaseLine>,
    /// With `retrieval.mode: FAN_OUT`: the observer's stream consumer as the stream lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_consumer: Option<StreamConsumerLine>,
    /// Rows that should be leases but cannot be read (another program wrote them): their
    /// shards are not processed, and their children wait, until they are fixed.
    pub malformed: Vec<MalformedRow>,
    /// Rows that are not leases (KCL 3.5 worker metrics, coordinator state, sauna's change
    /// signal…), left alone.
    pub other_rows: usize,
}

/// The stream consumer of a fan-out observer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamConsumerLine {
    pub name: String,
    /// `ACTIVE`, `CREATING`, `DELETING`, `NOT REGISTERED` (no worker has run yet), or why the
    /// stream's consumers could not be listed.
    pub status: String,
    pub arn: Option<String>,
}

/// A row that should be a lease and cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MalformedRow {
    pub shard: String,
    pub problem: String,
}

/// The state of each lease, judged against the whole table.
pub fn lines(leases: &[Lease]) -> Vec<LeaseLine> {
    let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    leases
        .iter()
        .map(|l| {
            let parent_pending =
                l.parent_shard_ids.iter().any(|p| by_key.get(p.as_str()).is_some_and(|parent| !parent.is_finished()));
            let state = if l.is_finished() {
                LeaseState::Ended
            } else if parent_pending {
                LeaseState::WaitingOnParent
            } else if l.owner.is_some() {
                LeaseState::Running
            } else {
                LeaseState::Free
            };
            LeaseLine {
                shard: l.key.clone(),
                owner: l.owner.clone(),
                counter: l.counter,
                checkpoint: l.checkpoint.as_attribute().to_owned(),
                checkpoint_sub_sequence_number: l.checkpoint.sub_sequence_number(),
                owner_switches_since_checkpoint: l.owner_switches_since_checkpoint,
                parents: l.parent_shard_ids.clone(),
                children: l.child_shard_ids.clone(),
                state,
                handoff_requested: l.handoff_requested.clone(),
            }
        })
        .collect()
}

/// The stream consumer `name` of `stream`, as the stream lists it.
pub async fn stream_consumer(client: &aws_sdk_kinesis::Client, stream: &str, name: &str) -> StreamConsumerLine {
    match crate::fan_out::list_stream_consumers(client, stream).await {
        Ok(all) => match all.into_iter().find(|c| c.name == name) {
            Some(c) => StreamConsumerLine { name: c.name, status: c.status, arn: Some(c.arn) },
            None => StreamConsumerLine { name: name.to_owned(), status: "NOT REGISTERED".into(), arn: None },
        },
        Err(e) => StreamConsumerLine { name: name.to_owned(), status: format!("UNKNOWN ({e})"), arn: None },
    }
}

/// Reads the lease table of an observer.
pub async fn read(observer: &str, stream: &str, table: &LeaseTable) -> Result<LeaseReport, LeaseTableError> {
    let (leases, skipped) = table.scan().await?;
    let malformed: Vec<MalformedRow> = skipped
        .iter()
        .filter(|(_, e)| matches!(e, RowError::Malformed { .. }))
        .map(|(key, e)| MalformedRow { shard: key.clone(), problem: e.to_string() })
        .collect();
    Ok(LeaseReport {
        observer: observer.to_owned(),
        stream: stream.to_owned(),
        table: table.name().to_owned(),
        leases: lines(&leases),
        stream_consumer: None,
        other_rows: skipped.len() - malformed.len(),
        malformed,
    })
}

/// The text form: a header per observer, then one aligned line per shard.
pub fn to_text(reports: &[LeaseReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(
            out,
            "observer {} (stream {}, lease table {}): {} lease{}{}",
            r.observer,
            r.stream,
            r.table,
            r.leases.len(),
            if r.leases.len() == 1 { "" } else { "s" },
            if r.other_rows > 0 { format!(", {} other rows", r.other_rows) } else { String::new() }
        );
        if let Some(c) = &r.stream_consumer {
            let arn = c.arn.as_deref().map(|a| format!(" {a}")).unwrap_or_default();
            let _ = writeln!(out, "enhanced fan-out: stream consumer {} {}{arn}", c.name, c.status);
        }
        let rows: Vec<[String; 6]> = r
            .leases
            .iter()
            .map(|l| {
                [
                    l.shard.clone(),
                    l.owner.clone().unwrap_or_else(|| "-".into()),
                    l.counter.to_string(),
                    match l.checkpoint_sub_sequence_number {
                        0 => l.checkpoint.clone(),
                        n => format!("{}/{n}", l.checkpoint),
                    },
                    if l.parents.is_empty() { "-".into() } else { l.parents.join(",") },
                    match &l.handoff_requested {
                        Some(by) => format!("{} (handoff requested by {by})", l.state.as_str()),
                        None => l.state.as_str().to_owned(),
                    },
                ]
            })
            .collect();
        let header = ["SHARD", "OWNER", "COUNTER", "CHECKPOINT", "PARENTS", "STATE"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        for m in &r.malformed {
            let _ = writeln!(
                out,
                "{:<w$}  MALFORMED: {} (not processed, and its children wait, until the row is fixed)",
                m.shard,
                m.problem,
                w = widths[0]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Checkpoint, SequenceNumber};

    #[test]
    fn states_follow_the_lineage() {
        let mut parent = Lease::new("p", Checkpoint::sequence(SequenceNumber::parse("5").expect("seq")));
        parent.owner = Some("w1".into());
        let mut child = Lease::new("c", Checkpoint::TrimHorizon);
        child.parent_shard_ids = vec!["p".into(), "gone".into()];
        child.owner = Some("w2".into());
        let free = Lease::new("f", Checkpoint::TrimHorizon);
        let l = lines(&[parent.clone(), child.clone(), free]);
        assert_eq!(
            l.iter().map(|l| l.state).collect::<Vec<_>>(),
            [LeaseState::Running, LeaseState::WaitingOnParent, LeaseState::Free]
        );
        parent.checkpoint = Checkpoint::ShardEnd;
        let l = lines(&[parent, child]);
        assert_eq!(l.iter().map(|l| l.state).collect::<Vec<_>>(), [LeaseState::Ended, LeaseState::Running]);
    }

    #[test]
    fn a_checkpoint_inside_a_kpl_aggregate_shows_its_user_record() {
        let at = crate::model::ExtendedSequenceNumber::new(SequenceNumber::parse("4959").expect("seq"), 7);
        let lines = lines(&[Lease::new("s", Checkpoint::Sequence(at))]);
        assert_eq!((lines[0].checkpoint.as_str(), lines[0].checkpoint_sub_sequence_number), ("4959", 7));
        let report = LeaseReport {
            observer: "o".into(),
            stream: "st".into(),
            table: "t".into(),
            leases: lines,
            stream_consumer: None,
            other_rows: 0,
            malformed: vec![],
        };
        assert!(to_text(&[report]).contains(" 4959/7 "), "the table shows S/N");
    }
}
