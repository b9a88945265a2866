//! Exponential backoff with jitter under a per-call deadline.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::error::CloudError;

/// How one call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Backoff cap before the first retry; doubles per retry.
    pub base: Duration,
    /// Largest backoff cap.
    pub max: Duration,
    /// Total time one call (all its attempts and pauses) may take.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // The SDK's retryer waits 2^n seconds; we start lower because a busy CLB
        // (ResourceInOperating) is usually free again within a second or two.
        Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The cap for the pause after failed attempt `attempt` (1-based): `base * 2^(attempt-1)`,
    /// at most `max`.
    pub fn cap(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The pause after failed attempt `attempt`: uniform in `[cap/2, cap]` ("equal
    /// jitter"), so concurrent runs spread out yet each still backs off.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let cap = self.cap(attempt);
        let cap_ns = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        let low = cap_ns / 2;
        Duration::from_nanos(rng.random_range(low..=cap_ns))
    }
}

/// Runs `op` until it succeeds, fails terminally, or the next pause would cross the
/// deadline. `op` gets the attempt number (1-based). The deadline bounds retrying, not
/// one attempt: an attempt is bounded by its own HTTP timeout, and a first attempt that
/// queued behind the rate limiter is still sent.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    action: &str,
    mut op: F,
) -> Result<T, CloudError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let start = Instant::now();
    let deadline = start + policy.deadline;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let err = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !err.is_retryable() {
            return Err(err);
        }
        let pause = policy.backoff(attempt, &mut rand::rng());
        if Instant::now() + pause >= deadline {
            return Err(CloudError::DeadlineExceeded {
                action: action.to_string(),
                attempts: attempt,
                last: Box::new(err),
            });
        }
        tracing::debug!(action, attempt, pause_ms = pause.as_millis() as u64, error = %err, "retrying cloud call");
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
        }
    }

    fn api(code: &str) -> CloudError {
        CloudError::Api {
            action: "A".into(),
            code: code.into(),
            message: String::new(),
            request_id: "r".into(),
        }
    }

    /// Replays a fixed sequence of outcomes and counts how many were consumed.
    async fn run(
        outcomes: Vec<Result<u32, CloudError>>,
        p: RetryPolicy,
    ) -> (Result<u32, CloudError>, usize) {
        let queue = Arc::new(Mutex::new(VecDeque::from(outcomes)));
        let calls = Arc::new(Mutex::new(0usize));
        let (q, c) = (queue.clone(), calls.clone());
        let result = retry(&p, "A", move |_| {
            let q = q.clone();
            let c = c.clone();
            async move {
                *c.lock().unwrap() += 1;
                q.lock().unwrap().pop_front().unwrap_or(Ok(0))
            }
        })
        .await;
        let n = *calls.lock().unwrap();
        (result, n)
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_stops_at_max() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..=12 {
            let cap = p.cap(attempt);
            assert_eq!(cap, (p.base * 2u32.pow(attempt - 1)).min(p.max));
            for _ in 0..200 {
                let d = p.backoff(attempt, &mut rng);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "attempt {attempt}: {d:?} outside [{:?}, {cap:?}]",
                    cap / 2
                );
            }
        }
        assert_eq!(p.cap(40), p.max, "huge attempt numbers saturate at max");
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_until_success() {
        let (r, n) = run(
            vec![
                Err(api("RequestLimitExceeded")),
                Err(api("FailedOperation.ResourceInOperating")),
                Err(CloudError::Network {
                    action: "A".into(),
                    message: "reset".into(),
                    timeout: false,
                }),
                Ok(42),
            ],
            policy(),
        )
        .await;
        assert_eq!(r.unwrap(), 42);
        assert_eq!(n, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_error_is_returned_after_one_attempt() {
        let (r, n) = run(vec![Err(api("InvalidParameter")), Ok(1)], policy()).await;
        assert_eq!(r.unwrap_err().code(), Some("InvalidParameter"));
        assert_eq!(n, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn endless_throttling_ends_in_deadline_exceeded_with_bounded_attempts() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_millis(400),
            deadline: Duration::from_secs(2),
        };
        let outcomes = (0..100).map(|_| Err(api("RequestLimitExceeded"))).collect();
        let (r, n) = run(outcomes, p).await;
        match r {
            Err(CloudError::DeadlineExceeded { attempts, last, .. }) => {
                assert_eq!(attempts as usize, n);
                assert_eq!(last.code(), Some("RequestLimitExceeded"));
            }
            other => panic!("expected DeadlineExceeded, got {other:?}"),
        }
        // Pauses are at least 50, 100, 200, 200, ... ms, so 2 s fit at most ~11 attempts;
        // at most 400 ms each, so at least 5.
        assert!((5..=12).contains(&n), "{n} attempts");
    }
}
