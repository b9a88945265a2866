//! Writing under the Ingress's Lease: one run, and another each time another trigger marked the
//! Lease dirty meanwhile, while the run's deadline leaves time for one; a mark left when time
//! is up stays on the Lease for the next run (issue 10 §1: a re-run request is never lost).

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::options::RELEASE_MARGIN;
use super::Reconciler;
use crate::cluster::{Acquire, LeaseGuard};
use crate::handler::{ActionCounts, IngressKey, IngressOutcome, OutcomeStatus};

/// Added to the time left when sizing a Lease: the clock-skew allowance of other runs.
const LEASE_SLACK: Duration = Duration::from_secs(10);
/// Most passes one run makes under the Lease: a bound for runs without a deadline (the CLI)
/// whose Lease other triggers keep marking.
const MAX_PASSES: u32 = 8;

/// What follows a pass under the Lease.
#[derive(Debug, PartialEq, Eq)]
enum AfterPass {
    /// Nobody asked for another run.
    Done,
    /// Asked, and there is time: run again (the mark was cleared with the release).
    Again,
    /// Asked, but no time or passes are left: the mark stayed on the Lease for the next run.
    LeftMarked,
}

/// The Lease came back `dirty` or not; `more`: a pass may still start.
fn after_pass(dirty: bool, more: bool) -> AfterPass {
    match (dirty, more) {
        (false, _) => AfterPass::Done,
        (true, true) => AfterPass::Again,
        (true, false) => AfterPass::LeftMarked,
    }
}

impl Reconciler {
    /// Runs [`Reconciler::locked_run`] under the Lease (cut off [`RELEASE_MARGIN`] before
    /// `deadline` so the Lease is still given back), again if it was marked dirty. `total`
    /// carries what the look before cost.
    pub(super) async fn under_lease(
        &self,
        key: &IngressKey,
        deadline: Option<Instant>,
        mut total: ActionCounts,
        strays: &[String],
    ) -> Result<IngressOutcome, super::ReconcileError> {
        let holder = self.cluster.new_holder_identity();
        let mut outcome;
        let mut passes = 0;
        loop {
            passes += 1;
            let guard = match self
                .cluster
                .acquire_lease(
                    &key.namespace,
                    &key.name,
                    &holder,
                    self.lease_seconds(deadline),
                    Timestamp::now(),
                )
                .await?
            {
                Acquire::Acquired { guard, .. } => guard,
                Acquire::Busy { holder } => {
                    tracing::info!(ingress = %key, %holder, "lease busy, marked dirty");
                    let mut o = IngressOutcome::new(OutcomeStatus::SkippedBusy);
                    o.actions = total;
                    return Ok(o);
                }
            };
            let result = match deadline {
                Some(d) => {
                    let stop = d.checked_sub(RELEASE_MARGIN).unwrap_or(d);
                    tokio::time::timeout_at(stop, self.locked_run(key, &guard, strays))
                        .await
                        .unwrap_or_else(|_| {
                            Ok(IngressOutcome::failed(
                                "DeadlineExceeded",
                                "cut off before the deadline; the next run resumes",
                            ))
                        })
                }
                None => self.locked_run(key, &guard, strays).await,
            };
            let more = passes < MAX_PASSES && self.time_for_another_pass(deadline);
            let dirty = self.give_back(guard, more).await;
            outcome = match result {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(ingress = %key, error = %e, "reconcile failed");
                    IngressOutcome::failed(&e.code(), e.to_string())
                }
            };
            total.applied += outcome.actions.applied;
            total.cloud_reads += outcome.actions.cloud_reads;
            total.cloud_writes += outcome.actions.cloud_writes;
            match after_pass(dirty, more) {
                AfterPass::Done => break,
                AfterPass::Again => {
                    tracing::info!(ingress = %key, passes, "lease was marked dirty; running again")
                }
                AfterPass::LeftMarked => {
                    tracing::info!(ingress = %key, passes, "lease marked dirty with no time for another pass; the mark stays for the next run");
                    break;
                }
            }
        }
        outcome.actions = total;
        Ok(outcome)
    }

    /// Lease duration for a run that must end by `deadline`: only the time left, so a run
    /// killed anyway blocks the next one briefly.
    fn lease_seconds(&self, deadline: Option<Instant>) -> i32 {
        let Some(deadline) = deadline else {
            return self.opts.lease_seconds;
        };
        let left = deadline.saturating_duration_since(Instant::now()) + LEASE_SLACK;
        i32::try_from(left.as_secs().saturating_add(1))
            .unwrap_or(i32::MAX)
            .min(self.opts.lease_seconds)
            .max(1)
    }

    /// Whether a pass started now still ends [`RELEASE_MARGIN`] before `deadline` with
    /// `min_start` to work in.
    fn time_for_another_pass(&self, deadline: Option<Instant>) -> bool {
        deadline.is_none_or(|d| Instant::now() + self.opts.min_start + RELEASE_MARGIN < d)
    }

    /// Gives the Lease back; whether another trigger marked it dirty meanwhile. Unless this
    /// run goes on (`more`), a mark stays on the Lease for the next run.
    async fn give_back(&self, guard: LeaseGuard, more: bool) -> bool {
        let released = if more {
            self.cluster.release_lease(guard).await
        } else {
            self.cluster.release_lease_keeping_mark(guard).await
        };
        match released {
            Ok(r) => r.dirty,
            Err(e) => {
                // The Lease expires by itself; the next trigger or the sweep runs again.
                tracing::warn!(error = %e, "lease release failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dirty_lease_runs_again_while_time_is_left_and_keeps_its_mark_when_not() {
        assert_eq!(after_pass(false, true), AfterPass::Done);
        assert_eq!(after_pass(false, false), AfterPass::Done);
        assert_eq!(after_pass(true, true), AfterPass::Again);
        assert_eq!(after_pass(true, false), AfterPass::LeftMarked);
    }
}
