//! Client-side rate limiting per API action.
//!
//! Tencent limits each action separately (20 requests/second for the CLB actions we use),
//! so one limiter per action lets a sweep's describes proceed while writes queue. A
//! sliding window of grant times guarantees at most `per_sec` grants in *any* one-second
//! window, which a refilling token bucket with a full burst does not (it allows up to
//! twice the rate across a window boundary).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

/// Shared, cheaply cloned limiter: `per_sec` permits per action per sliding second.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_sec: usize,
    windows: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl RateLimiter {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: per_sec.max(1) as usize,
            windows: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits until a request for `action` may be sent, then records it as sent.
    pub async fn acquire(&self, action: &str) {
        loop {
            let wait = {
                let now = Instant::now();
                let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
                let grants = windows.entry(action.to_string()).or_default();
                while grants
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    grants.pop_front();
                }
                if grants.len() < self.per_sec {
                    grants.push_back(now);
                    return;
                }
                // Full: the oldest grant leaves the window first.
                grants
                    .front()
                    .map(|t| (*t + WINDOW).saturating_duration_since(now))
                    .unwrap_or(Duration::ZERO)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Spawns `n` concurrent acquirers and returns the grant times relative to start.
    async fn grant_times(limiter: &RateLimiter, action: &'static str, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..n {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire(action).await;
                Instant::now() - start
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out.sort();
        out
    }

    #[tokio::test(start_paused = true)]
    async fn grants_at_most_the_rate_in_any_one_second_window() {
        let limiter = RateLimiter::new(20);
        let times = grant_times(&limiter, "DescribeTargets", 95).await;
        assert_eq!(times.len(), 95);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u - *t < WINDOW).count();
            assert!(
                in_window <= 20,
                "{in_window} grants in the second after {t:?}"
            );
        }
        // 95 permits at 20/s need four full windows after the first burst.
        assert!(
            times[94] >= Duration::from_secs(4),
            "last grant at {:?}",
            times[94]
        );
        assert_eq!(times.iter().filter(|t| **t < WINDOW).count(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn each_action_has_its_own_budget() {
        let limiter = RateLimiter::new(5);
        let granted = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for action in ["CreateRule", "DescribeListeners"] {
            for _ in 0..5 {
                let l = limiter.clone();
                let g = granted.clone();
                handles.push(tokio::spawn(async move {
                    l.acquire(action).await;
                    g.fetch_add(1, Ordering::SeqCst);
                }));
            }
        }
        for h in handles {
            h.await.unwrap();
        }
        // Both actions got their full burst without time passing.
        assert_eq!(granted.load(Ordering::SeqCst), 10);
        let elapsed_probe = Instant::now();
        limiter.acquire("CreateRule").await;
        assert!(
            Instant::now() - elapsed_probe >= WINDOW,
            "sixth CreateRule must wait for the window"
        );
    }
}
