//! Parsing and schema validation of records on threads of their own (a `SyncArbiter` with one
//! thread per core), so that the CPU-heavy part of a batch uses both cores and never holds up
//! the arbiters that run the ShardConsumers' I/O.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use chrono::Utc;

use crate::command::{Classified, CommandParser};

/// Classify these records (one GetRecords batch), in order.
#[derive(Debug)]
pub struct ParseBatch(pub Vec<Bytes>);

impl Message for ParseBatch {
    type Result = Vec<Classified>;
}

pub struct ParseWorker {
    parser: Arc<CommandParser>,
}

impl Actor for ParseWorker {
    type Context = SyncContext<Self>;
}

impl Handler<ParseBatch> for ParseWorker {
    type Result = MessageResult<ParseBatch>;

    fn handle(&mut self, batch: ParseBatch, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now();
        MessageResult(
            batch
                .0
                .iter()
                .map(|bytes| {
                    // Classification is written not to panic; if it ever does, the record is
                    // invalid rather than the thread dead.
                    std::panic::catch_unwind(AssertUnwindSafe(|| self.parser.classify(bytes, now))).unwrap_or_else(
                        |_| Classified::Invalid {
                            reason: "record data: the parser panicked on this record (a bug: please report it)".into(),
                            command_id: None,
                        },
                    )
                })
                .collect(),
        )
    }
}

/// Starts `threads` parse workers sharing one mailbox.
pub fn start(parser: Arc<CommandParser>, threads: usize) -> Addr<ParseWorker> {
    SyncArbiter::start(threads.max(1), move || ParseWorker { parser: parser.clone() })
}
