//! `MemoryClaimTable`: the claim table in memory, with the conditional semantics of
//! [`super::ClaimTable`] — for unit tests of the consumer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{ClaimAnswer, ClaimError, ClaimState, ClaimStore, Claimer, Held};

/// One row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub state: ClaimState,
    pub by: Claimer,
    pub detail: String,
    pub attempts: u32,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryClaimTable {
    rows: Arc<Mutex<HashMap<String, ClaimRow>>>,
}

impl MemoryClaimTable {
    pub fn row(&self, command_id: &str) -> Option<ClaimRow> {
        self.lock().get(command_id).cloned()
    }

    /// Writes a row as another worker would.
    pub fn put(&self, command_id: &str, row: ClaimRow) {
        self.lock().insert(command_id.to_owned(), row);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClaimRow>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn new_row(me: &Claimer, expires_at: i64) -> ClaimRow {
    ClaimRow { state: ClaimState::Claimed, by: me.clone(), detail: String::new(), attempts: 0, expires_at }
}

#[async_trait]
impl ClaimStore for MemoryClaimTable {
    fn name(&self) -> &str {
        "memory"
    }

    async fn ensure_exists(&self) -> Result<bool, ClaimError> {
        Ok(false)
    }

    async fn claim(
        &self,
        command_id: &str,
        me: &Claimer,
        expires_at: i64,
        stale: Option<&Held>,
    ) -> Result<ClaimAnswer, ClaimError> {
        let mut rows = self.lock();
        let Some(row) = rows.get(command_id).cloned() else {
            rows.insert(command_id.to_owned(), new_row(me, expires_at));
            return Ok(ClaimAnswer::Granted { taken_over: None });
        };
        Ok(match row.state {
            ClaimState::Released => {
                rows.insert(command_id.to_owned(), new_row(me, expires_at));
                ClaimAnswer::Granted { taken_over: None }
            }
            ClaimState::Done | ClaimState::Failed => {
                ClaimAnswer::Finished { state: row.state, by: row.by, detail: row.detail }
            }
            ClaimState::Claimed if row.by == *me => ClaimAnswer::Granted { taken_over: None },
            ClaimState::Claimed => {
                let seen = Held { by: row.by.clone() };
                if stale == Some(&seen) {
                    rows.insert(command_id.to_owned(), new_row(me, expires_at));
                    ClaimAnswer::Granted { taken_over: Some(row.by) }
                } else {
                    ClaimAnswer::Held(seen)
                }
            }
        })
    }

    async fn finish(
        &self,
        command_id: &str,
        me: &Claimer,
        state: ClaimState,
        detail: &str,
        attempts: u32,
    ) -> Result<bool, ClaimError> {
        let mut rows = self.lock();
        match rows.get_mut(command_id) {
            Some(r) if r.by == *me && r.state == ClaimState::Claimed => {
                r.state = state;
                r.detail = detail.to_owned();
                r.attempts = attempts;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, command_id: &str, me: &Claimer) -> Result<bool, ClaimError> {
        let mut rows = self.lock();
        match rows.get_mut(command_id) {
            Some(r) if r.by == *me && r.state == ClaimState::Claimed => {
                r.state = ClaimState::Released;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
