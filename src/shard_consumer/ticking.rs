//! The consumer's tick: progress to the Checkpointer, outcome counts and in-flight levels to
//! the metrics. It runs every quarter of the checkpoint interval while there is news to report,
//! and only every few seconds (the refresh a restarted Checkpointer or Metrics needs) once a
//! tick found none: an idle shard's consumer otherwise woke its arbiter four times a second for
//! nothing, which was a fifth of an idle worker's CPU. Anything that makes news (records
//! admitted, a command completed) brings the quick tick back at once.
//!
//! Both cadences are lined up on the process-wide clock ([`crate::timers`]), so the consumers of
//! an arbiter still wake it together.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::{PROGRESS_REFRESH, ShardConsumer};

/// Where the tick is.
#[derive(Debug, Default)]
pub(super) struct Ticking {
    /// The next tick, once scheduled.
    next: Option<SpawnHandle>,
    /// The last tick found no news: the next one is a refresh away.
    slow: bool,
}

impl ShardConsumer {
    /// The quick cadence: a quarter of the checkpoint interval (10 ms to 250 ms).
    fn tick_every(&self) -> Duration {
        (self.settings.checkpoint_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    pub(super) fn start_ticking(&mut self, ctx: &mut Context<Self>) {
        self.schedule_tick(self.tick_every(), ctx);
    }

    /// There is (or is about to be) news: the quick tick, if the slow one is scheduled.
    pub(super) fn wake_ticking(&mut self, ctx: &mut Context<Self>) {
        if !self.state.ticking.slow {
            return;
        }
        self.state.ticking.slow = false;
        if let Some(next) = self.state.ticking.next.take() {
            ctx.cancel_future(next);
        }
        self.schedule_tick(self.tick_every(), ctx);
    }

    fn schedule_tick(&mut self, period: Duration, ctx: &mut Context<Self>) {
        let wait = crate::timers::aligned(Instant::now(), period / 2, period);
        self.state.ticking.next = Some(ctx.run_later(wait, |act, ctx| act.tick(ctx)));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.state.counters.ticks += 1;
        let progressed = self.send_progress(false);
        let counted = self.report_outcomes();
        let changed = self.sample_levels();
        // Commands still out bring news later (their completions wake the tick too).
        let news = progressed || counted || changed || self.state.tracker.not_done() > 0;
        self.state.ticking.slow = !news;
        let period = if news { self.tick_every() } else { PROGRESS_REFRESH };
        self.schedule_tick(period, ctx);
    }
}
