//! Retrying operations whose errors say they are transient, with exponential backoff, full
//! jitter and a deadline.

use backon::Retryable;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Remembers the last error the retry loops it is passed to waited on, for a caller whose
/// deadline around the whole operation ends the wait from outside (and says why it waited).
/// Clones share what they remember.
#[derive(Debug, Clone, Default)]
pub struct RetryObserver(Arc<Mutex<Option<String>>>);

impl RetryObserver {
    /// `what: error` of the last retried error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, what: &str, e: &dyn std::fmt::Display) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{what}: {e}"));
    }
}

/// Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
/// Jitter"): the n-th wait is uniform in `[0, min(cap, base * 2^n)]`, so that machines that
/// failed together do not retry together. Ends when the waits would exceed `budget`.
/// (backon's own `with_jitter` adds up to one delay on top of the delay, which keeps every
/// wait above the exponential curve.)
#[derive(Debug, Clone)]
pub struct FullJitter {
    base: Duration,
    cap: Duration,
    budget: Duration,
    spent: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl FullJitter {
    pub fn new(base: Duration, cap: Duration, budget: Duration) -> FullJitter {
        FullJitter {
            base,
            cap,
            budget,
            spent: Duration::ZERO,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same with a fixed random sequence (tests).
    pub fn with_seed(mut self, seed: u64) -> FullJitter {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The upper end of the next wait: `min(cap, base * 2^attempt)`.
    fn ceiling(&self) -> Duration {
        self.base.saturating_mul(1u32 << self.attempt.min(20)).min(self.cap)
    }
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ceiling = u64::try_from(self.ceiling().as_micros()).unwrap_or(u64::MAX);
        let wait = Duration::from_micros(self.rng.u64(0..=ceiling));
        if self.spent + wait > self.budget {
            return None;
        }
        self.spent += wait;
        self.attempt = self.attempt.saturating_add(1);
        Some(wait)
    }
}

fn backoff(deadline: Duration) -> FullJitter {
    FullJitter::new(Duration::from_millis(250), Duration::from_secs(5), deadline)
}

/// Retries `op` while `retryable` says so, until `deadline` has been spent waiting.
pub async fn retry_while<T, E, F, Fut>(
    what: &str,
    deadline: Duration,
    retryable: fn(&E) -> bool,
    op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_observed(what, deadline, retryable, None, op).await
}

/// `retry_while`, telling `observer` (if any) each error it waits on.
pub async fn retry_observed<T, E, F, Fut>(
    what: &str,
    deadline: Duration,
    retryable: fn(&E) -> bool,
    observer: Option<&RetryObserver>,
    op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    op.retry(backoff(deadline))
        .when(retryable)
        .notify(|e, wait| {
            if let Some(o) = observer {
                o.record(what, e);
            }
            // sets the unit's status line under systemd, and logs it
            crate::notify::status(&format!("{what}: retrying in {:.1}s: {e}", wait.as_secs_f64()));
        })
        .await
}

/// Calls `op` every `interval` while `retryable` says its error is transient, until
/// `deadline` has passed: for waits on something that comes true by itself soon (a local
/// etcd starting, a learner catching up), where a growing backoff would notice it late. The
/// unit's status line says what it waits for, at most once a second.
pub async fn poll_while<T, E, F, Fut>(
    what: &str,
    deadline: Duration,
    interval: Duration,
    retryable: fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = tokio::time::Instant::now();
    let mut said: Option<tokio::time::Instant> = None;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !retryable(&e) || started.elapsed() + interval > deadline => return Err(e),
            Err(e) => {
                if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    crate::notify::status(&format!(
                        "{what}: trying every {:.2}s: {e}",
                        interval.as_secs_f64()
                    ));
                    said = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(interval).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Busy(u32);

    impl std::fmt::Display for Busy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "busy ({})", self.0)
        }
    }

    #[tokio::test]
    async fn the_observer_passed_in_remembers_the_last_retried_error_and_no_other_does() {
        let observer = RetryObserver::default();
        let other = RetryObserver::default();
        let mut n = 0;
        let r = retry_observed(
            "asking",
            Duration::from_secs(30),
            |_: &Busy| true,
            Some(&observer.clone()),
            || {
                n += 1;
                let attempt = n;
                async move {
                    if attempt < 3 {
                        Err(Busy(attempt))
                    } else {
                        Ok(attempt)
                    }
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(observer.last_error().as_deref(), Some("asking: busy (2)"));
        assert_eq!(other.last_error(), None);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_exponential_ceiling() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        let mut b = FullJitter::new(base, cap, Duration::from_secs(3600)).with_seed(7);
        let waits: Vec<Duration> = b.by_ref().take(2000).collect();
        assert_eq!(waits.len(), 2000);
        for (n, w) in waits.iter().enumerate() {
            let ceiling = base.saturating_mul(1 << n.min(20)).min(cap);
            assert!(*w <= ceiling, "wait {n} = {w:?} above {ceiling:?}");
        }
        // Full jitter: once capped, waits fall all over [0, cap], also below half of it
        // (backon's jitter never goes below the delay itself).
        let capped = &waits[10..];
        assert!(capped.iter().filter(|w| **w < cap / 4).count() > 100);
        assert!(capped.iter().filter(|w| **w > cap * 3 / 4).count() > 100);
    }

    #[test]
    fn full_jitter_stops_at_the_budget() {
        let budget = Duration::from_secs(10);
        let waits: Vec<Duration> =
            FullJitter::new(Duration::from_millis(250), Duration::from_secs(5), budget)
                .with_seed(1)
                .collect();
        assert!(!waits.is_empty());
        assert!(waits.iter().sum::<Duration>() <= budget);
    }

    #[tokio::test(start_paused = true)]
    async fn polling_tries_at_a_fixed_interval_until_success_or_the_deadline() {
        let mut calls = 0u32;
        let started = tokio::time::Instant::now();
        let ok: Result<u32, Busy> = poll_while(
            "w",
            Duration::from_secs(10),
            Duration::from_millis(100),
            |_| true,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 5 {
                        Err(Busy(n))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(ok.unwrap(), 5);
        // four waits of exactly the interval: no growth, no jitter
        assert_eq!(started.elapsed(), Duration::from_millis(400));
        let mut calls = 0u32;
        let failed: Result<(), Busy> = poll_while(
            "w",
            Duration::from_secs(1),
            Duration::from_millis(100),
            |_| true,
            || {
                calls += 1;
                let n = calls;
                async move { Err(Busy(n)) }
            },
        )
        .await;
        assert_eq!(
            failed.unwrap_err().0,
            11,
            "one call at the start, then one per interval up to the deadline"
        );
        let mut calls = 0u32;
        let permanent: Result<(), Busy> = poll_while(
            "w",
            Duration::from_secs(1),
            Duration::from_millis(100),
            |_| false,
            || {
                calls += 1;
                async { Err(Busy(0)) }
            },
        )
        .await;
        assert!(permanent.is_err());
        assert_eq!(calls, 1, "a permanent error is not retried");
    }
}
