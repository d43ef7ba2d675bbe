//! What the health probes of `http.listen` ask an observer: [`Probe`]. Answering at all is the
//! liveness (the Supervisor's mailbox is being served); the answer says whether the observer is
//! ready: its lease table was reached and its LeaseManager's first take cycle ran, and no
//! graceful stop has begun.

use actix::prelude::*;

use super::Supervisor;

/// Are you there, and are you ready?
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ProbeAnswer")]
pub struct Probe;

/// A Supervisor's answer to [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// `Err`: why the observer is not ready.
    pub ready: Result<(), String>,
}

/// Where an observer is, as far as readiness goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessState {
    pub shutting_down: bool,
    /// The generation of the running core (`Err`: it is being restarted, after this failure).
    pub core: Result<u64, String>,
    /// The generation whose LeaseManager ran its first take cycle.
    pub ready: Option<u64>,
}

/// Ready when the running core's LeaseManager reached the lease table and ran its first take
/// cycle, and no graceful stop has begun. A core restarted after a failure is not ready until
/// its own LeaseManager has done the same.
pub fn readiness(s: ReadinessState) -> Result<(), String> {
    if s.shutting_down {
        return Err("shutting down (finishing the commands in flight, releasing the leases)".to_owned());
    }
    match s.core {
        Err(why) => Err(format!("its actors are restarting after a failure ({why})")),
        Ok(g) if s.ready == Some(g) => Ok(()),
        Ok(_) => Err("the lease table has not been reached or the first take cycle has not run yet".to_owned()),
    }
}

impl Supervisor {
    pub(super) fn readiness_state(&self) -> ReadinessState {
        ReadinessState {
            shutting_down: self.shutting_down,
            core: match &self.core {
                Some(c) => Ok(c.generation),
                None => Err(self.core_failure.clone().unwrap_or_else(|| "not started".to_owned())),
            },
            ready: self.ready_generation,
        }
    }
}

impl Handler<Probe> for Supervisor {
    type Result = MessageResult<Probe>;

    fn handle(&mut self, _: Probe, _: &mut Self::Context) -> Self::Result {
        MessageResult(ProbeAnswer { ready: readiness(self.readiness_state()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(shutting_down: bool, core: Option<u64>, ready: Option<u64>) -> ReadinessState {
        ReadinessState { shutting_down, core: core.ok_or_else(|| "LeaseManager failed: boom".to_owned()), ready }
    }

    #[test]
    fn ready_only_once_the_running_core_ran_its_first_take_cycle() {
        assert!(readiness(state(false, Some(1), None)).expect_err("no take cycle yet").contains("lease table"));
        assert_eq!(readiness(state(false, Some(1), Some(1))), Ok(()));
        // A core restarted after a failure: the earlier generation's readiness does not count.
        let why = readiness(state(false, None, Some(1))).expect_err("restarting");
        assert_eq!(why, "its actors are restarting after a failure (LeaseManager failed: boom)");
        assert!(readiness(state(false, Some(2), Some(1))).is_err());
        assert_eq!(readiness(state(false, Some(2), Some(2))), Ok(()));
    }

    #[test]
    fn a_graceful_stop_is_never_ready() {
        for core in [None, Some(1)] {
            let why = readiness(state(true, core, Some(1))).expect_err("stopping");
            assert!(why.starts_with("shutting down"), "{why}");
        }
    }
}
