//! The engine: one Ingress through DESIGN §2's pipeline, and the sweep.
//!
//! ```text
//! reconcile(key)   prepare: observe (cluster view) → desire (pure) → observe (cloud) → plan (pure)
//!                  quiet (empty plan, status shown, nothing to say)? done: no Lease, no write
//!                  else under the Lease: prepare again (fresh) → apply → report
//! sweep            sweep.rs: one batched snapshot (paged LISTs; CLBs 100 a page, targets 30
//!                  CLBs a call, full reads for a rotating share); plan every Ingress from it;
//!                  only a non-empty plan runs reconcile(key); then release.rs (orphans)
//! ```
//!
//! Kubernetes access is `cluster/`'s, CLB calls `cloud/`'s; this module wires them and never
//! imports the runtimes (the sweep's shard dispatcher comes in as a [`ShardInvoker`]).

mod auto_config;
mod dry_run;
mod epoch;
mod lease;
mod listing;
mod lookup;
mod options;
mod prepare;
mod quota;
mod readiness;
mod regions;
mod release;
mod report;
mod shards;
mod sweep;
mod uploaded_certs;

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::cloud::apply::{apply, ApplyError, ApplyOptions};
use crate::cloud::{CloudClient, CloudError};
use crate::cluster::{ClusterClient, ClusterError, LeaseGuard};
use crate::handler::{
    ActionCounts, Engine, IngressKey, IngressOutcome, OutcomeStatus, SweepOutcome,
};
use crate::model::release_guard::ReleaseGuard;
use crate::model::Decision;

pub use dry_run::DryRun;
pub use options::{
    engine_from_env, EnvError, ReconcilerOptions, SweepOptions, DEFAULT_LEASE_SECONDS,
    ENV_CLB_VPC_ID, ENV_CLUSTER_ID, ENV_SWEEP_FULL_READ_EVERY, ENV_SWEEP_INTERVAL_SECONDS,
    RELEASE_MARGIN,
};
pub use regions::ENV_CLB_EXTRA_REGIONS;
pub use report::reasons;
pub use shards::ShardInvoker;

use prepare::Prepared;
use report::annotation;

/// The engine: cluster and cloud clients and the cluster's id.
#[derive(Clone, Debug)]
pub struct Reconciler {
    cluster: ClusterClient,
    cloud: CloudClient,
    cluster_id: String,
    opts: ReconcilerOptions,
    sweep: SweepOptions,
    /// Set when a big sweep may fan out to shards.
    shards: Option<Arc<dyn ShardInvoker>>,
    /// How many CLBs one run may release (DESIGN §1).
    release_guard: ReleaseGuard,
    /// The account's live quota, once a CLB near a default limit made it worth a read.
    quota: Arc<quota::QuotaMemo>,
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Apply(#[from] Box<ApplyError>),
}

impl ReconcileError {
    /// Stable code for outcomes and Events: the API's error code where there is one.
    pub fn code(&self) -> String {
        let cloud = |e: &CloudError| e.code().unwrap_or("CloudError").to_string();
        match self {
            ReconcileError::Cluster(ClusterError::Conflict { .. }) => "Conflict".into(),
            ReconcileError::Cluster(_) => "KubernetesError".into(),
            ReconcileError::Cloud(e) => cloud(e),
            ReconcileError::Apply(a) => cloud(&a.error),
        }
    }
}

impl Reconciler {
    /// Converges one Ingress now.
    pub async fn reconcile_one(&self, key: &IngressKey) -> IngressOutcome {
        self.reconcile_until(key, None).await
    }

    /// [`Self::reconcile_one`] within `deadline` (the work under the Lease stops
    /// [`RELEASE_MARGIN`] before it, so the Lease is still given back).
    pub async fn reconcile_until(
        &self,
        key: &IngressKey,
        deadline: Option<Instant>,
    ) -> IngressOutcome {
        self.reconcile_deleted_until(key, None, deadline).await
    }

    /// [`Self::reconcile_until`] for an Ingress a delete record named with `deleted_uid`:
    /// once a fresh GET shows that UID gone, its CLBs are found by the UID tag, not by a
    /// scan of the cluster.
    pub async fn reconcile_deleted_until(
        &self,
        key: &IngressKey,
        deleted_uid: Option<&str>,
        deadline: Option<Instant>,
    ) -> IngressOutcome {
        outcome_of(key, self.reconcile_inner(key, deleted_uid, deadline).await)
    }

    /// The one-Ingress path straight under the Lease, for an Ingress the sweep's snapshot
    /// showed a write to make (the run under the Lease looks again, fresh); its lookup also
    /// searches `strays` (see [`Self::plan_manage`]).
    pub(super) async fn reconcile_locked(
        &self,
        key: &IngressKey,
        deadline: Instant,
        strays: &[String],
    ) -> IngressOutcome {
        let run = self.under_lease(key, Some(deadline), ActionCounts::default(), strays);
        outcome_of(key, run.await)
    }

    /// Looks without writing (no Lease either); only what needs writing goes under the Lease.
    async fn reconcile_inner(
        &self,
        key: &IngressKey,
        deleted_uid: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<IngressOutcome, ReconcileError> {
        let first = self.prepare(key, false, &[]).await?;
        let reads = first.reads();
        // The name came back with another UID: the deleted one is gone for good, and its
        // CLBs go now, beside the new Ingress's run.
        let replaced = deleted_uid.filter(|uid| first.uid().is_some_and(|now| now != *uid));
        if let Some(uid) = replaced {
            let r = self.release_uid(uid, deadline).await;
            if let Some(e) = r.error.as_ref().or(r.held.as_ref()) {
                tracing::warn!(ingress = %key, uid, error = %e, "releasing the deleted UID");
            }
        }
        match &first {
            // No Lease for an Ingress that is gone (its namespace may be gone too): releasing
            // orphans rests on positive proof by UID, and two runs releasing the same CLB
            // only find it already gone.
            Prepared::Gone => {
                let outcome = match deleted_uid {
                    Some(uid) => Ok(self.release_uid(uid, deadline).await.outcome()),
                    None => self.release_orphans_outcome().await,
                };
                let outcome = self.collect_if_released(outcome).await;
                self.cluster.forget_lease(&key.namespace, &key.name).await;
                self.cluster
                    .delete_auto_config(&key.namespace, &key.name)
                    .await;
                return outcome;
            }
            Prepared::Ignored { view } if annotation(&view.ingress).is_none() => {
                return Ok(IngressOutcome::new(OutcomeStatus::Ignored));
            }
            // A lasting problem reported before costs no Lease and no write.
            Prepared::Invalid { view, problems }
                if self.all_reported(&view.ingress, problems).await =>
            {
                return Ok(report::invalid_outcome(problems));
            }
            Prepared::Planned(p)
                if p.is_quiet()
                    || (p.is_quiet_but_for_problems()
                        && self.all_reported(&p.view.ingress, &p.problems).await) =>
            {
                let status = if p.skip {
                    OutcomeStatus::Skipped
                } else {
                    OutcomeStatus::Converged
                };
                let mut outcome = IngressOutcome::new(status);
                outcome.actions.cloud_reads = reads;
                return Ok(outcome);
            }
            _ => {}
        }
        let total = ActionCounts {
            cloud_reads: reads,
            ..ActionCounts::default()
        };
        self.under_lease(key, deadline, total, &[]).await
    }

    /// observe → desire → observe the cloud → plan, writing nothing but, when `may_upload`
    /// (under the Lease), the SSL uploads of `kubernetes.io/tls` Secrets the plan binds.
    async fn prepare(
        &self,
        key: &IngressKey,
        may_upload: bool,
        strays: &[String],
    ) -> Result<Prepared, ReconcileError> {
        let Some(mut view) = self.cluster.view(&key.namespace, &key.name).await? else {
            return Ok(Prepared::Gone);
        };
        self.resolve_uploads(&mut view, may_upload).await?;
        match self.desire_live(&view).await {
            Decision::Invalid(problems) => Ok(Prepared::Invalid {
                view: Box::new(view),
                problems,
            }),
            Decision::Release => self.plan_out_of_class(view).await,
            Decision::Manage(desired) => self.plan_manage(view, *desired, strays).await,
            Decision::Skip {
                ingress_uid,
                exist_lb_id,
            } => {
                self.plan_skip(view, &ingress_uid, exist_lb_id.as_deref())
                    .await
            }
        }
    }

    /// One full run under the Lease: prepare again (fresh), apply, report.
    async fn locked_run(
        &self,
        key: &IngressKey,
        guard: &LeaseGuard,
        strays: &[String],
    ) -> Result<IngressOutcome, ReconcileError> {
        match self.prepare(key, true, strays).await? {
            Prepared::Gone => {
                let outcome = self.release_orphans_outcome().await;
                self.collect_if_released(outcome).await
            }
            Prepared::Ignored { view } => self.report_ignored(&view.ingress).await,
            Prepared::Invalid { view, problems } => {
                Ok(self.report_invalid(&view.ingress, &problems).await)
            }
            Prepared::Planned(mut p) => {
                self.warn_all(&p.view.ingress, &p.problems).await;
                let epochs = Arc::new(self.epochs(guard, &p.view));
                epochs.stamp(&mut p.plan).await;
                if epoch::release_retires_created(&p.plan, &p.cloud) {
                    epochs.retire().await?;
                }
                let opts = ApplyOptions {
                    token_advance: Some(epochs.clone()),
                    ..self.opts.apply.clone()
                };
                match apply(&p.client, &p.plan, &p.cloud, &opts).await {
                    Ok(applied) => {
                        self.open_gates(key, &p, applied.writes > 0).await;
                        self.collect_after(&p).await;
                        let mut outcome = self.report(&p, &applied).await?;
                        if !applied.stopped && !p.unnamed.is_empty() {
                            if epoch::unnamed_include_created(&p.unnamed) {
                                epochs.retire().await?;
                            }
                            self.report_unnamed(&p, &mut outcome).await;
                        }
                        Ok(outcome)
                    }
                    Err(e) => Ok(self.report_failed(&p, e).await),
                }
            }
        }
    }
}

impl Reconciler {
    /// The create epoch of the Ingress in `view`, as the Lease `guard` holds was read.
    fn epochs(&self, guard: &LeaseGuard, view: &crate::model::ClusterView) -> epoch::Epochs {
        let uid = view.ingress.metadata.uid.as_deref().unwrap_or_default();
        epoch::Epochs::new(self.cluster.clone(), guard.clone(), &self.cluster_id, uid)
    }
}

fn outcome_of(key: &IngressKey, r: Result<IngressOutcome, ReconcileError>) -> IngressOutcome {
    r.unwrap_or_else(|e| {
        tracing::warn!(ingress = %key, error = %e, "reconcile failed");
        IngressOutcome::failed(&e.code(), e.to_string())
    })
}

impl Reconciler {
    pub fn new(
        cluster: ClusterClient,
        cloud: CloudClient,
        cluster_id: impl Into<String>,
        opts: ReconcilerOptions,
    ) -> Self {
        Self {
            cluster,
            cloud,
            cluster_id: cluster_id.into(),
            opts,
            sweep: SweepOptions::default(),
            shards: None,
            release_guard: ReleaseGuard::default(),
            quota: Arc::default(),
        }
    }

    /// Lifts the mass-release guard for the runs of this engine (one `clb-ingress sweep
    /// --allow-mass-release`).
    pub fn allow_mass_release(mut self) -> Self {
        self.release_guard.lifted = true;
        self
    }

    /// Replaces the mass-release guard (its bounds, or lifted for this run).
    pub fn with_release_guard(mut self, guard: ReleaseGuard) -> Self {
        self.release_guard = guard;
        self
    }

    /// Sets how the sweep spreads its full CLB reads.
    pub fn with_sweep(mut self, sweep: SweepOptions) -> Self {
        self.sweep = sweep;
        self
    }

    /// Lets the sweep fan out to shards when it finds more Ingresses than `dispatcher.size()`.
    pub fn with_shards(mut self, dispatcher: impl ShardInvoker + 'static) -> Self {
        self.shards = Some(Arc::new(dispatcher));
        self
    }

    pub fn cluster(&self) -> &ClusterClient {
        &self.cluster
    }

    pub fn cloud(&self) -> &CloudClient {
        &self.cloud
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn options(&self) -> &ReconcilerOptions {
        &self.opts
    }
}

impl Engine for Reconciler {
    fn reconcile(&self, key: IngressKey, deadline: Instant) -> BoxFuture<'_, IngressOutcome> {
        Box::pin(async move { self.reconcile_until(&key, Some(deadline)).await })
    }

    fn reconcile_deleted(
        &self,
        key: IngressKey,
        uid: String,
        deadline: Instant,
    ) -> BoxFuture<'_, IngressOutcome> {
        Box::pin(async move {
            self.reconcile_deleted_until(&key, Some(&uid), Some(deadline))
                .await
        })
    }

    fn sweep(&self, deadline: Instant) -> BoxFuture<'_, SweepOutcome> {
        Box::pin(self.sweep_now(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_come_from_the_api_where_there_is_one() {
        let api = CloudError::Api {
            action: "CreateRule".into(),
            code: "LimitExceeded".into(),
            message: "m".into(),
            request_id: "r".into(),
        };
        assert_eq!(ReconcileError::Cloud(api).code(), "LimitExceeded");
        assert_eq!(
            ReconcileError::Cloud(CloudError::Config("x".into())).code(),
            "CloudError"
        );
    }
}
