//! `Backoff`: the one exponential backoff of the program — supervision restarts, read errors,
//! responder retries, dead-letter and outcome-log writes all wait by it.
//!
//! The n-th consecutive failure waits `initial × 2ⁿ⁻¹`, capped at `max`. With jitter, half of
//! that delay is fixed and half random ("equal jitter"), so that many commands failing together
//! do not retry together, and no retry comes sooner than half the nominal delay. A supervised
//! child's backoff starts over once it has run healthy for a while.

use std::time::{Duration, Instant};

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: bool,
    /// Consecutive failures so far.
    failures: u32,
    /// After running this long since the last (re)start, the next failure starts over.
    reset_after: Option<Duration>,
    started: Instant,
}

impl Backoff {
    /// `initial` doubling up to `max`, no jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            jitter: false,
            failures: 0,
            reset_after: None,
            started: Instant::now(),
        }
    }

    /// The restarts of a supervised child: 100 ms doubling to 30 s, starting over once the
    /// child has run a minute without failing.
    pub fn restarts() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30)).reset_after(Duration::from_secs(60))
    }

    /// Half of every delay random.
    pub fn jittered(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// Starts over when the next failure comes `healthy` or more after [`Backoff::started`].
    pub fn reset_after(mut self, healthy: Duration) -> Self {
        self.reset_after = Some(healthy);
        self
    }

    /// The delay after the `n`-th consecutive failure (`n` ≥ 1), jitter included.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(31));
        let nominal = self.initial.saturating_mul(factor).min(self.max);
        if !self.jitter {
            return nominal;
        }
        let half = nominal / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// Counts a failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        if self.reset_after.is_some_and(|healthy| self.started.elapsed() >= healthy) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.delay(self.failures)
    }

    /// A success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The (re)start of a supervised child: its healthy time counts from now.
    pub fn started(&mut self) {
        self.started = Instant::now();
    }

    /// Consecutive failures (restarts, for a supervised child) so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_its_cap() {
        let mut b = Backoff::restarts();
        let delays: Vec<u128> = (0..12).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert_eq!(*delays.last().expect("delays"), 30_000);
        assert_eq!(b.failures(), 12);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_keeps_half_of_the_delay() {
        let b = Backoff::new(Duration::from_millis(400), Duration::from_secs(1)).jittered();
        for n in 1..6 {
            let nominal = Duration::from_millis(400).saturating_mul(2u32.pow(n - 1)).min(Duration::from_secs(1));
            let d = b.delay(n);
            assert!(d >= nominal / 2 && d <= nominal, "attempt {n}: {d:?} vs nominal {nominal:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let b = Backoff::new(Duration::from_millis(1), Duration::from_secs(5));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn a_healthy_child_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).reset_after(Duration::ZERO);
        b.next_delay();
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::from_millis(10), "healthy for zero time: every failure is a first");
    }
}
