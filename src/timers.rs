//! Timers lined up on one process-wide clock. An idle worker's CPU goes less to what its
//! timers do (a consumer's progress tick, an idle shard's next read, a look at the leases'
//! deadlines) than to waking a thread for each of them: many actors on one arbiter, each with
//! a period of its own started at its own moment, would wake it hundreds of times a second.
//! Lined up on multiples of their period since the process's first timer, they wake it
//! together.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::prelude::*;

/// The instant the steps of every lined-up timer count from (the first use).
fn epoch(now: Instant) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| now)
}

/// `wait` from `now`, lengthened to end on a multiple of `step` since the process's first
/// lined-up timer: at most `step` later than asked.
pub fn aligned(now: Instant, wait: Duration, step: Duration) -> Duration {
    let epoch = epoch(now);
    let step = step.max(Duration::from_millis(1)).as_nanos();
    let at = (now + wait).saturating_duration_since(epoch).as_nanos();
    let lined_up = at.div_ceil(step) * step;
    wait + Duration::from_nanos(u64::try_from(lined_up - at).unwrap_or(0))
}

/// Runs `f` on the actor every `period`, on the multiples of `period` of the process-wide
/// clock (`run_interval`, lined up): the first run is between half a period and a period
/// and a half away.
pub fn run_aligned<A, F>(ctx: &mut Context<A>, period: Duration, mut f: F)
where
    A: Actor<Context = Context<A>>,
    F: FnMut(&mut A, &mut Context<A>) + 'static,
{
    let wait = aligned(Instant::now(), period / 2, period);
    ctx.run_later(wait, move |act, ctx| {
        f(act, ctx);
        run_aligned(ctx, period, f);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_end_on_the_same_steps() {
        let step = Duration::from_millis(250);
        aligned(Instant::now(), Duration::ZERO, step); // the steps start at the first use
        let start = Instant::now();
        let first = start + aligned(start, Duration::from_millis(1), step);
        for (from, wait) in [(3, 1000), (170, 1000), (999, 2000), (5, 4000)] {
            let now = start + Duration::from_millis(from);
            let w = aligned(now, Duration::from_millis(wait), step);
            assert!(w >= Duration::from_millis(wait) && w < Duration::from_millis(wait) + step, "{w:?}");
            let offset = (now + w).duration_since(first).as_nanos() % step.as_nanos();
            assert_eq!(offset, 0, "ends on a step: {from} + {wait} ms");
        }
        // A period that is a multiple of the step ends on the same steps.
        let w = aligned(start, Duration::ZERO, step * 2);
        assert_eq!((start + w).duration_since(first).as_nanos() % step.as_nanos(), 0);
    }

    struct Ticking {
        at: Vec<Instant>,
    }

    impl Actor for Ticking {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "Vec<Instant>")]
    struct Ticks;

    impl Handler<Ticks> for Ticking {
        type Result = MessageResult<Ticks>;

        fn handle(&mut self, _: Ticks, _: &mut Self::Context) -> Self::Result {
            MessageResult(self.at.clone())
        }
    }

    #[actix_rt::test]
    async fn two_actors_started_apart_tick_together_once_a_period() {
        let period = Duration::from_millis(40);
        let start =
            |ctx: &mut Context<Ticking>| run_aligned(ctx, period, |act: &mut Ticking, _| act.at.push(Instant::now()));
        let a = Ticking::create(|ctx| {
            start(ctx);
            Ticking { at: vec![] }
        });
        tokio::time::sleep(Duration::from_millis(13)).await;
        let b = Ticking::create(|ctx| {
            start(ctx);
            Ticking { at: vec![] }
        });
        tokio::time::sleep(period * 8).await;
        let (a, b) = (a.send(Ticks).await.expect("a"), b.send(Ticks).await.expect("b"));
        assert!(a.len() >= 5 && b.len() >= 5, "about one tick a period: {} and {}", a.len(), b.len());
        // Each tick of b is within a few milliseconds of one of a's (one wake for both), all
        // but one at most: on a loaded machine the thread can be taken off the CPU between the
        // two actors of one wake. Ticks that were not lined up would all be ~13 ms apart.
        let apart: Vec<Duration> =
            b.iter().map(|t| a.iter().map(|u| if u > t { *u - *t } else { *t - *u }).min().expect("ticks")).collect();
        let off = apart.iter().filter(|d| **d >= Duration::from_millis(8)).count();
        assert!(off <= 1, "b's ticks from a's nearest: {apart:?}");
    }
}
