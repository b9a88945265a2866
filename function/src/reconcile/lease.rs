//! Writing under the Ingress's Lease: one run, and one more when another trigger marked the
//! Lease dirty meanwhile.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::options::RELEASE_MARGIN;
use super::Reconciler;
use crate::cluster::{Acquire, LeaseGuard};
use crate::handler::{ActionCounts, IngressKey, IngressOutcome, OutcomeStatus};

/// Added to the time left when sizing a Lease: the clock-skew allowance of other runs.
const LEASE_SLACK: Duration = Duration::from_secs(10);

impl Reconciler {
    /// Runs [`Reconciler::locked_run`] under the Lease (cut off [`RELEASE_MARGIN`] before
    /// `deadline` so the Lease is still given back), again if it was marked dirty. `total`
    /// carries what the look before cost.
    pub(super) async fn under_lease(
        &self,
        key: &IngressKey,
        deadline: Option<Instant>,
        mut total: ActionCounts,
    ) -> Result<IngressOutcome, super::ReconcileError> {
        let holder = self.cluster.new_holder_identity();
        let mut outcome = IngressOutcome::new(OutcomeStatus::Converged);
        for _ in 0..2 {
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
                    tokio::time::timeout_at(stop, self.locked_run(key))
                        .await
                        .unwrap_or_else(|_| {
                            Ok(IngressOutcome::failed(
                                "DeadlineExceeded",
                                "cut off before the deadline; the next run resumes",
                            ))
                        })
                }
                None => self.locked_run(key).await,
            };
            let dirty = self.give_back(guard).await;
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
            if !dirty {
                break;
            }
            tracing::info!(ingress = %key, "lease was marked dirty; running again");
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

    /// Gives the Lease back; whether another trigger marked it dirty meanwhile.
    async fn give_back(&self, guard: LeaseGuard) -> bool {
        match self.cluster.release_lease(guard).await {
            Ok(r) => r.dirty,
            Err(e) => {
                // The Lease expires by itself; the next trigger or the sweep runs again.
                tracing::warn!(error = %e, "lease release failed");
                false
            }
        }
    }
}
