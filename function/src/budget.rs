//! The function's time budget: work items run a bounded number at once, none started too
//! close to the deadline (it would be cut off half-way) and each cut off at the deadline, so
//! the run answers before the platform kills it and the next run resumes the rest.

use std::future::Future;

use futures::{stream, StreamExt};
use tokio::time::{Duration, Instant};

/// How one item of [`run_within`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran<T> {
    Done(T),
    /// Started, then cut off at the deadline.
    CutOff,
    /// Not started: fewer than `min_start` were left before the deadline.
    NotStarted,
}

/// Runs `work` for each of `items`, at most `concurrency` (at least one) at once; an item is
/// started only while `min_start` is left before `deadline`, and cut off at `deadline`. The
/// results come in completion order, each beside its item.
pub async fn run_within<I, T, F, Fut>(
    items: impl IntoIterator<Item = I>,
    concurrency: usize,
    min_start: Duration,
    deadline: Instant,
    work: F,
) -> Vec<(I, Ran<T>)>
where
    I: Clone,
    F: Fn(I) -> Fut,
    Fut: Future<Output = T>,
{
    let work = &work;
    stream::iter(items)
        .map(|item| async move {
            if Instant::now() + min_start > deadline {
                return (item, Ran::NotStarted);
            }
            let ran = match tokio::time::timeout_at(deadline, work(item.clone())).await {
                Ok(t) => Ran::Done(t),
                Err(_) => Ran::CutOff,
            };
            (item, ran)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn items_past_the_start_margin_are_not_started_and_a_running_one_is_cut_off() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ran = run_within(
            [1u64, 20, 30],
            1,
            Duration::from_secs(5),
            deadline,
            |secs| async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                secs
            },
        )
        .await;
        ran.sort_by_key(|(i, _)| *i);
        assert_eq!(
            ran,
            vec![(1, Ran::Done(1)), (20, Ran::CutOff), (30, Ran::NotStarted)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_bound_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let deadline = Instant::now() + Duration::from_secs(100);
        let ran = run_within(0..10, 3, Duration::ZERO, deadline, |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        })
        .await;
        assert_eq!(ran.len(), 10);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
