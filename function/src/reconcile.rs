//! One Ingress and the sweep: observe, desire, plan, apply, report (DESIGN §2).
//!
//! A run first looks without writing anything (no Lease either): when the cloud and the
//! Ingress status already match and nothing needs saying, it ends there, so the steady
//! state costs three CLB reads and no Kubernetes write. Otherwise it takes the Ingress's
//! Lease, looks again (another run may have just finished the job), applies, reports, and
//! runs once more if another trigger marked the Lease dirty meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use serde::Serialize;
use tokio::time::Instant;

use crate::cloud::apply::{apply, Applied, ApplyError, ApplyOptions, LbAddress};
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::{cloud_lb, cluster_load_balancers, observe, read_listeners, Lookup};
use crate::cloud::{CloudClient, CloudError};
use crate::cluster::{
    Acquire, ClusterClient, ClusterError, EventRecord, EventType, LeaseGuard, LB_ID_ANNOTATION,
};
use crate::handler::{
    ActionCounts, Engine, IngressKey, IngressLookup, IngressOutcome, IngressSummary, LookupError,
    OutcomeStatus, SweepOutcome,
};
use crate::model::ownership::{self, IngressFact, TAG_INGRESS_UID};
use crate::model::refs::ingress_refs;
use crate::model::{class, desire, ClusterView, Decision, Desired, LbSource, Problem};
use crate::plan::{self, CloudView, Plan};

/// Environment variable naming the cluster (DESIGN §4).
pub const ENV_CLUSTER_ID: &str = "CLUSTER_ID";
/// Environment variable naming the VPC for INTERNAL CLBs (see [`ApplyOptions::vpc_id`]).
pub const ENV_CLB_VPC_ID: &str = "CLB_VPC_ID";

/// Lease duration: longer than the longest SCF run (900 s), so a run killed mid-plan is never
/// overlapped by another before its Lease expires.
pub const DEFAULT_LEASE_SECONDS: i32 = 960;

/// Time kept before a run's deadline to give the Lease back.
pub const RELEASE_MARGIN: Duration = Duration::from_secs(2);
/// Added to the time left when sizing a Lease: the clock-skew allowance of other runs.
const LEASE_SLACK: Duration = Duration::from_secs(10);

/// Event reasons of our own (problems use their codes).
pub mod reasons {
    /// Something on the CLB was created or changed.
    pub const ENSURED: &str = "EnsuredLoadBalancer";
    /// The CLB (or our part of an adopted one) was released.
    pub const RELEASED: &str = "ReleasedLoadBalancer";
    /// A cloud call failed mid-plan; the next run resumes.
    pub const SYNC_FAILED: &str = "SyncLoadBalancerFailed";
}

/// Tuning of a [`Reconciler`].
#[derive(Clone, Debug)]
pub struct ReconcilerOptions {
    pub lease_seconds: i32,
    /// Ingresses reconciled at once by the sweep.
    pub concurrency: usize,
    /// The sweep starts no reconcile with less than this left before its deadline.
    pub min_start: Duration,
    pub apply: ApplyOptions,
}

impl Default for ReconcilerOptions {
    fn default() -> Self {
        Self {
            lease_seconds: DEFAULT_LEASE_SECONDS,
            concurrency: 4,
            min_start: Duration::from_secs(5),
            apply: ApplyOptions::default(),
        }
    }
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
        match self {
            ReconcileError::Cluster(ClusterError::Conflict { .. }) => "Conflict".into(),
            ReconcileError::Cluster(_) => "KubernetesError".into(),
            ReconcileError::Cloud(e) => cloud_code(e),
            ReconcileError::Apply(a) => cloud_code(&a.error),
        }
    }
}

fn cloud_code(e: &CloudError) -> String {
    e.code()
        .map(str::to_string)
        .unwrap_or_else(|| "CloudError".into())
}

/// The engine: cluster and cloud clients and the cluster's id.
#[derive(Clone, Debug)]
pub struct Reconciler {
    cluster: ClusterClient,
    cloud: CloudClient,
    cluster_id: String,
    opts: ReconcilerOptions,
}

/// `CLUSTER_ID`, the cluster from `KUBECONFIG`/`KUBECONFIG_DATA`/in-cluster, the cloud from
/// `TENCENTCLOUD_*` and the endpoint overrides, `CLB_VPC_ID` for INTERNAL CLBs.
pub async fn engine_from_env() -> Result<Reconciler, EnvError> {
    let cluster_id = std::env::var(ENV_CLUSTER_ID)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(EnvError::MissingClusterId)?;
    let cluster = ClusterClient::from_env().await?;
    let cloud = CloudClient::from_env()?;
    let opts = ReconcilerOptions {
        apply: ApplyOptions {
            vpc_id: std::env::var(ENV_CLB_VPC_ID)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            stop_after: None,
        },
        ..ReconcilerOptions::default()
    };
    Ok(Reconciler::new(cluster, cloud, cluster_id, opts))
}

/// Configuration errors of [`engine_from_env`].
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{ENV_CLUSTER_ID} must be set (the TKE cluster id, e.g. cls-xxxxxxxx)")]
    MissingClusterId,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// What a look without writes found for one Ingress.
enum Prepared {
    /// The Ingress does not exist.
    Gone,
    /// Out of our class and no CLB carries its UID.
    Ignored { view: Box<ClusterView> },
    /// Refused as a whole (bad annotation, or a CLB that is not ours to use).
    Invalid {
        view: Box<ClusterView>,
        problems: Vec<Problem>,
    },
    /// A plan (possibly empty) to keep or release the CLB.
    Planned(Box<Planned>),
}

struct Planned {
    view: ClusterView,
    cloud: CloudView,
    plan: Plan,
    /// Warnings of the model and the planner.
    problems: Vec<Problem>,
    /// Releasing (out of class), not managing.
    release: bool,
    reads: u32,
}

impl Planned {
    /// Nothing to apply, nothing to write on the Ingress, nothing to say.
    fn is_quiet(&self) -> bool {
        if !self.plan.is_empty() || !self.problems.is_empty() {
            return false;
        }
        let ingress = &self.view.ingress;
        if self.release {
            return annotation(ingress).is_none();
        }
        let address = self.cloud.load_balancer.as_ref().map(|lb| LbAddress {
            id: lb.id.clone(),
            vips: lb.vips.clone(),
            domain: lb.domain.clone(),
        });
        match address {
            Some(a) => {
                current_status(ingress) == status_entries(&a).as_slice()
                    && annotation(ingress) == Some(a.id.as_str())
            }
            None => true,
        }
    }
}

fn annotation(ingress: &Ingress) -> Option<&str> {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LB_ID_ANNOTATION))
        .map(String::as_str)
}

fn current_status(ingress: &Ingress) -> &[IngressLoadBalancerIngress] {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

/// `status.loadBalancer.ingress`: the VIP as `ip`, or, for a domain-name CLB without a VIP,
/// its domain as `hostname`.
fn status_entries(a: &LbAddress) -> Vec<IngressLoadBalancerIngress> {
    if let Some(ip) = a.vips.first() {
        return vec![IngressLoadBalancerIngress {
            ip: Some(ip.clone()),
            ..Default::default()
        }];
    }
    a.domain
        .iter()
        .map(|d| IngressLoadBalancerIngress {
            hostname: Some(d.clone()),
            ..Default::default()
        })
        .collect()
}

/// The dry run of one Ingress: what `plan` shows.
#[derive(Clone, Debug, Serialize)]
pub struct DryRun {
    pub ingress: String,
    /// `manage`, `release`, `invalid`, `ignored`, `gone`.
    pub decision: &'static str,
    pub plans: Vec<Plan>,
    pub problems: Vec<Problem>,
}

impl DryRun {
    pub fn is_empty(&self) -> bool {
        self.plans.iter().all(Plan::is_empty)
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Ingress {} ({})", self.ingress, self.decision)?;
        if self.is_empty() {
            writeln!(f, "nothing would change")?;
        } else {
            for p in self.plans.iter().filter(|p| !p.is_empty()) {
                write!(f, "{p}")?;
            }
        }
        for p in &self.problems {
            writeln!(f, "  ! {p}")?;
        }
        Ok(())
    }
}

/// CLBs of our cluster whose Ingress UID matches no existing Ingress, by complete fresh
/// lists (a failed list never gets here, so it never leads to a release).
struct Orphans {
    lbs: Vec<LoadBalancer>,
    /// DescribeLoadBalancers pages read to find them.
    reads: u32,
}

/// Pages `describe_all_load_balancers` reads for `n` CLBs (it stops at TotalCount).
fn pages(n: usize) -> u32 {
    n.div_ceil(crate::cloud::clb::DESCRIBE_PAGE_LIMIT as usize)
        .max(1) as u32
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
        }
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

    /// Observe + desire + plan, writing nothing at all (not even the Lease).
    pub async fn dry_run(&self, key: &IngressKey) -> Result<DryRun, ReconcileError> {
        let prepared = self.prepare(key).await?;
        let ingress = key.to_string();
        Ok(match prepared {
            Prepared::Gone => {
                let orphans = self.find_orphans().await?;
                let mut plans = Vec::new();
                let mut problems = Vec::new();
                for lb in &orphans.lbs {
                    match self.release_plan(lb).await? {
                        (Ok(plan), _, _) => plans.push(plan),
                        (Err(p), _, _) => problems.push(p),
                    }
                }
                DryRun {
                    ingress,
                    decision: "gone",
                    plans,
                    problems,
                }
            }
            Prepared::Ignored { .. } => DryRun {
                ingress,
                decision: "ignored",
                plans: Vec::new(),
                problems: Vec::new(),
            },
            Prepared::Invalid { problems, .. } => DryRun {
                ingress,
                decision: "invalid",
                plans: Vec::new(),
                problems,
            },
            Prepared::Planned(p) => DryRun {
                ingress,
                decision: if p.release { "release" } else { "manage" },
                plans: vec![p.plan],
                problems: p.problems,
            },
        })
    }

    /// Reads the Ingress and its CLB and plans, without writing.
    async fn prepare(&self, key: &IngressKey) -> Result<Prepared, ReconcileError> {
        let Some(view) = self.cluster.view(&key.namespace, &key.name).await? else {
            return Ok(Prepared::Gone);
        };
        match desire(&view, &self.cluster_id) {
            Decision::Invalid(problems) => Ok(Prepared::Invalid {
                view: Box::new(view),
                problems,
            }),
            Decision::Release => {
                let uid = view.ingress.metadata.uid.clone().unwrap_or_default();
                if uid.is_empty() {
                    return Ok(Prepared::Ignored {
                        view: Box::new(view),
                    });
                }
                let (cloud, reads) = observe(
                    &self.cloud,
                    Lookup::ByUid {
                        cluster_id: &self.cluster_id,
                        uid: &uid,
                    },
                )
                .await?;
                if cloud.load_balancer.is_none() {
                    return Ok(Prepared::Ignored {
                        view: Box::new(view),
                    });
                }
                match plan::plan_release(&cloud, IngressFact::OutOfClass, &self.cluster_id, &uid) {
                    Ok(plan) => Ok(Prepared::Planned(Box::new(Planned {
                        view,
                        cloud,
                        plan,
                        problems: Vec::new(),
                        release: true,
                        reads: reads.calls,
                    }))),
                    Err(p) => Ok(Prepared::Invalid {
                        view: Box::new(view),
                        problems: vec![p],
                    }),
                }
            }
            Decision::Manage(desired) => self.prepare_manage(view, *desired).await,
        }
    }

    async fn prepare_manage(
        &self,
        view: ClusterView,
        desired: Desired,
    ) -> Result<Prepared, ReconcileError> {
        let lookup = match &desired.load_balancer {
            LbSource::Create(_) => Lookup::ByUid {
                cluster_id: &self.cluster_id,
                uid: &desired.ingress_uid,
            },
            LbSource::Adopt { lb_id } => Lookup::ById(lb_id),
        };
        let (mut cloud, reads) = observe(&self.cloud, lookup).await?;
        let mut reads = reads.calls;
        // A CLB still being created (a run stopped right after CreateLoadBalancer) takes no
        // writes yet; wait for it here rather than leave the rest to a later trigger.
        if let Some(lb) = cloud
            .load_balancer
            .as_ref()
            .filter(|lb| lb.status == plan::LB_STATUS_CREATING)
        {
            self.cloud
                .wait_load_balancers_ready(std::slice::from_ref(&lb.id))
                .await?;
            let (again, more) = observe(&self.cloud, lookup).await?;
            cloud = again;
            reads += more.calls + 1;
        }
        match plan::plan(&desired, &cloud) {
            Ok(plan) => {
                let mut problems = desired.problems;
                problems.extend(plan.problems.iter().cloned());
                Ok(Prepared::Planned(Box::new(Planned {
                    view,
                    cloud,
                    plan,
                    problems,
                    release: false,
                    reads,
                })))
            }
            Err(refusal) => {
                let mut problems = vec![refusal];
                problems.extend(desired.problems);
                Ok(Prepared::Invalid {
                    view: Box::new(view),
                    problems,
                })
            }
        }
    }

    /// Converges one Ingress now (see the module doc for the order of things).
    pub async fn reconcile_one(&self, key: &IngressKey) -> IngressOutcome {
        self.reconcile_until(key, None).await
    }

    /// [`Self::reconcile_one`] within `deadline`: the work under the Lease stops
    /// [`RELEASE_MARGIN`] before it so the Lease is still given back (a run cut off by the
    /// platform instead holds it until it expires), and the Lease is taken only for the time
    /// left, so a run killed anyway blocks the next one briefly.
    pub async fn reconcile_until(
        &self,
        key: &IngressKey,
        deadline: Option<Instant>,
    ) -> IngressOutcome {
        match self.reconcile_inner(key, deadline).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(ingress = %key, error = %e, "reconcile failed");
                IngressOutcome::failed(&e.code(), e.to_string())
            }
        }
    }

    /// Lease duration for a run that must end by `deadline`.
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

    async fn reconcile_inner(
        &self,
        key: &IngressKey,
        deadline: Option<Instant>,
    ) -> Result<IngressOutcome, ReconcileError> {
        let first = self.prepare(key).await?;
        let reads = prepared_reads(&first);
        match &first {
            // No Lease for an Ingress that is gone (its namespace may be gone too): releasing
            // orphans rests on positive proof by UID, and two runs releasing the same CLB
            // only find it already gone.
            Prepared::Gone => return self.release_orphans_outcome().await,
            Prepared::Ignored { view } if annotation(&view.ingress).is_none() => {
                return Ok(IngressOutcome::new(OutcomeStatus::Ignored));
            }
            Prepared::Planned(p) if p.is_quiet() => {
                let mut outcome = IngressOutcome::new(OutcomeStatus::Converged);
                outcome.actions.cloud_reads = reads;
                return Ok(outcome);
            }
            _ => {}
        }
        drop(first);
        let holder = self.cluster.new_holder_identity();
        let mut total = ActionCounts {
            cloud_reads: reads,
            ..ActionCounts::default()
        };
        // One run, plus one more if another trigger asked while we held the Lease.
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
            let dirty = self.release(guard).await;
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

    async fn release(&self, guard: LeaseGuard) -> bool {
        match self.cluster.release_lease(guard).await {
            Ok(r) => r.dirty,
            Err(e) => {
                // The Lease expires by itself; the next trigger or the sweep runs again.
                tracing::warn!(error = %e, "lease release failed");
                false
            }
        }
    }

    /// One full run under the Lease: look again, apply, report.
    async fn locked_run(&self, key: &IngressKey) -> Result<IngressOutcome, ReconcileError> {
        match self.prepare(key).await? {
            Prepared::Gone => self.release_orphans_outcome().await,
            Prepared::Ignored { view } => {
                self.cluster.set_lb_annotation(&view.ingress, None).await?;
                Ok(IngressOutcome::new(OutcomeStatus::Ignored))
            }
            Prepared::Invalid { view, problems } => {
                self.warn_all(&view.ingress, &problems).await;
                let first = problems.first();
                Ok(IngressOutcome {
                    code: first.map(|p| p.code.to_string()),
                    message: first.map(|p| p.message.clone()),
                    ..IngressOutcome::new(OutcomeStatus::Invalid)
                })
            }
            Prepared::Planned(p) => self.execute(*p).await,
        }
    }

    async fn execute(&self, p: Planned) -> Result<IngressOutcome, ReconcileError> {
        let ingress = &p.view.ingress;
        self.warn_all(ingress, &p.problems).await;
        let mut counts = ActionCounts {
            cloud_reads: p.reads,
            ..ActionCounts::default()
        };
        let applied = match apply(&self.cloud, &p.plan, &p.cloud, &self.opts.apply).await {
            Ok(a) => a,
            Err(e) => {
                counts.applied = e.applied.actions as u32;
                counts.cloud_writes = e.applied.writes;
                let note = e.to_string();
                self.event(ingress, EventType::Warning, reasons::SYNC_FAILED, &note)
                    .await;
                let err = ReconcileError::Apply(Box::new(e));
                let mut outcome = IngressOutcome::failed(&err.code(), note);
                outcome.actions = counts;
                return Ok(outcome);
            }
        };
        counts.applied = applied.actions as u32;
        counts.cloud_writes = applied.writes;
        let lb_id = p
            .plan
            .load_balancer_id
            .clone()
            .or_else(|| applied.created.as_ref().map(|c| c.id.clone()));
        if p.release {
            self.report_release(ingress, &p.cloud).await?;
            if applied.actions > 0 {
                let note = format!(
                    "CLB {}: released ({} call(s))",
                    lb_id.as_deref().unwrap_or("?"),
                    applied.actions
                );
                self.event(ingress, EventType::Normal, reasons::RELEASED, &note)
                    .await;
            }
            let mut outcome = IngressOutcome::new(OutcomeStatus::Released);
            outcome.actions = counts;
            return Ok(self.stopped(outcome, &applied));
        }
        let address = applied.created.clone().or_else(|| {
            p.cloud.load_balancer.as_ref().map(|lb| LbAddress {
                id: lb.id.clone(),
                vips: lb.vips.clone(),
                domain: lb.domain.clone(),
            })
        });
        if let Some(a) = &address {
            let entries = status_entries(a);
            if !entries.is_empty() {
                self.cluster.write_status(ingress, entries).await?;
            }
            self.cluster.set_lb_annotation(ingress, Some(&a.id)).await?;
        }
        if applied.actions > 0 {
            let note = format!(
                "CLB {}: {} call(s) applied",
                lb_id.as_deref().unwrap_or("?"),
                applied.actions
            );
            self.event(ingress, EventType::Normal, reasons::ENSURED, &note)
                .await;
        }
        let mut outcome = IngressOutcome::new(OutcomeStatus::Converged);
        outcome.actions = counts;
        Ok(self.stopped(outcome, &applied))
    }

    /// A plan cut short by `stop_after` is not converged: the next run finishes it.
    fn stopped(&self, mut outcome: IngressOutcome, applied: &Applied) -> IngressOutcome {
        if applied.stopped {
            outcome.status = OutcomeStatus::Failed;
            outcome.code = Some("Interrupted".into());
            outcome.message = Some(format!(
                "stopped after {} action(s) (stop_after)",
                applied.actions
            ));
        }
        outcome
    }

    /// After an out-of-class release: drop our annotation and the status entries that
    /// pointed at the released CLB (another controller's entries stay).
    async fn report_release(
        &self,
        ingress: &Ingress,
        cloud: &CloudView,
    ) -> Result<(), ReconcileError> {
        if let Some(lb) = &cloud.load_balancer {
            let ours = status_entries(&LbAddress {
                id: lb.id.clone(),
                vips: lb.vips.clone(),
                domain: lb.domain.clone(),
            });
            let current = current_status(ingress);
            let kept: Vec<IngressLoadBalancerIngress> = current
                .iter()
                .filter(|e| !ours.contains(e))
                .cloned()
                .collect();
            if kept.len() != current.len() {
                self.cluster.write_status(ingress, kept).await?;
            }
        }
        self.cluster.set_lb_annotation(ingress, None).await?;
        Ok(())
    }

    async fn warn_all(&self, ingress: &Ingress, problems: &[Problem]) {
        for p in problems {
            self.event(ingress, EventType::Warning, p.code, &p.to_string())
                .await;
        }
    }

    /// Events are best effort: a failed Event write never fails the reconcile.
    async fn event(&self, ingress: &Ingress, type_: EventType, reason: &str, note: &str) {
        let action = match type_ {
            EventType::Normal => "Reconcile",
            EventType::Warning => "Reconcile",
        };
        let record = EventRecord {
            type_,
            reason,
            action,
            note,
        };
        if let Err(e) = self
            .cluster
            .emit_event(ingress, &record, Timestamp::now())
            .await
        {
            tracing::warn!(reason, error = %e, "event write failed");
        }
    }

    /// Every CLB tagged with our cluster whose Ingress UID no Ingress has. The CLBs are
    /// listed before the Ingresses: a CLB is tagged only after its Ingress exists, so an
    /// Ingress created between the two lists is in the second and its CLB is safe.
    async fn find_orphans(&self) -> Result<Orphans, ReconcileError> {
        let lbs = cluster_load_balancers(&self.cloud, &self.cluster_id).await?;
        let reads = pages(lbs.len());
        let ingresses = self.cluster.list_ingresses().await?;
        let uids: BTreeSet<String> = ingresses
            .iter()
            .filter_map(|i| i.metadata.uid.clone())
            .collect();
        Ok(Orphans {
            lbs: orphans_of(lbs.into_values(), &uids),
            reads,
        })
    }

    /// The release plan of one orphaned CLB; reads its listeners only when release keeps
    /// the CLB (then only our listeners go).
    async fn release_plan(
        &self,
        lb: &LoadBalancer,
    ) -> Result<(Result<Plan, Problem>, CloudView, u32), ReconcileError> {
        let uid = lb.tag(TAG_INGRESS_UID).unwrap_or_default().to_string();
        let mut cloud_lb = cloud_lb(lb)?;
        let mut reads = 0;
        let tags: BTreeMap<String, String> = cloud_lb.tags.clone();
        if !matches!(
            ownership::release_action(IngressFact::Gone, &tags, &self.cluster_id, &uid),
            Ok(ownership::Release::DeleteLoadBalancer)
        ) {
            reads += read_listeners(&self.cloud, &mut cloud_lb, false).await?;
        }
        let cloud = CloudView {
            load_balancer: Some(cloud_lb),
        };
        let plan = plan::plan_release(&cloud, IngressFact::Gone, &self.cluster_id, &uid);
        Ok((plan, cloud, reads))
    }

    /// Releases every orphan (positive proof: fresh lists of CLBs, then Ingresses).
    async fn release_orphans(
        &self,
        orphans: &Orphans,
        deadline: Option<Instant>,
    ) -> (u32, ActionCounts, Option<String>) {
        let mut released = 0;
        let mut counts = ActionCounts {
            cloud_reads: orphans.reads,
            ..ActionCounts::default()
        };
        let mut error = None;
        for lb in &orphans.lbs {
            if deadline.is_some_and(|d| Instant::now() + self.opts.min_start > d) {
                error = Some("deadline reached before every orphan was released".into());
                break;
            }
            match self.release_plan(lb).await {
                Ok((Ok(plan), cloud, reads)) => {
                    counts.cloud_reads += reads;
                    match apply(&self.cloud, &plan, &cloud, &self.opts.apply).await {
                        Ok(a) => {
                            counts.applied += a.actions as u32;
                            counts.cloud_writes += a.writes;
                            if !a.stopped {
                                released += 1;
                            }
                            tracing::info!(lb = %lb.load_balancer_id, "released orphaned CLB");
                        }
                        Err(e) => {
                            counts.applied += e.applied.actions as u32;
                            counts.cloud_writes += e.applied.writes;
                            tracing::warn!(lb = %lb.load_balancer_id, error = %e, "orphan release failed");
                            error = Some(e.to_string());
                        }
                    }
                }
                Ok((Err(p), _, _)) => {
                    tracing::warn!(lb = %lb.load_balancer_id, problem = %p, "orphan not released");
                }
                Err(e) => {
                    tracing::warn!(lb = %lb.load_balancer_id, error = %e, "orphan release failed");
                    error = Some(e.to_string());
                }
            }
        }
        (released, counts, error)
    }

    async fn release_orphans_outcome(&self) -> Result<IngressOutcome, ReconcileError> {
        let orphans = self.find_orphans().await?;
        let (released, counts, error) = self.release_orphans(&orphans, None).await;
        let mut outcome = match (&error, released) {
            (Some(e), _) => IngressOutcome::failed("ReleaseFailed", e.clone()),
            (None, 0) => IngressOutcome::new(OutcomeStatus::Ignored),
            (None, _) => IngressOutcome::new(OutcomeStatus::Released),
        };
        outcome.actions = counts;
        Ok(outcome)
    }

    /// The sweep: every Ingress that may be ours, then every orphaned CLB.
    pub async fn sweep_now(&self, deadline: Instant) -> SweepOutcome {
        let mut out = SweepOutcome::default();
        let lbs = match cluster_load_balancers(&self.cloud, &self.cluster_id).await {
            Ok(l) => l,
            Err(e) => {
                out.error = Some(format!("listing CLBs: {e}"));
                return out;
            }
        };
        let ingresses = match self.cluster.list_ingresses().await {
            Ok(i) => i,
            Err(e) => {
                out.error = Some(format!("listing Ingresses: {e}"));
                return out;
            }
        };
        let lb_uids: BTreeSet<&str> = lbs
            .values()
            .filter_map(|lb| lb.tag(TAG_INGRESS_UID))
            .collect();
        let uids: BTreeSet<String> = ingresses
            .iter()
            .filter_map(|i| i.metadata.uid.clone())
            .collect();
        let keys: Vec<IngressKey> = ingresses
            .iter()
            .filter(|i| {
                let uid = i.metadata.uid.as_deref().unwrap_or_default();
                may_be_ours(i) || lb_uids.contains(uid)
            })
            .filter_map(|i| {
                Some(IngressKey::new(
                    i.metadata.namespace.clone()?,
                    i.metadata.name.clone()?,
                ))
            })
            .collect();
        let min_start = self.opts.min_start;
        let results: Vec<Option<IngressOutcome>> = stream::iter(keys)
            .map(|key| async move {
                if Instant::now() + min_start > deadline {
                    return None;
                }
                tokio::time::timeout_at(deadline, self.reconcile_until(&key, Some(deadline)))
                    .await
                    .ok()
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                Some(o) => {
                    *out.ingresses.entry(o.status).or_default() += 1;
                    add(&mut out.actions, &o.actions);
                }
                None => out.not_reached += 1,
            }
        }
        let orphans = Orphans {
            reads: pages(lbs.len()),
            lbs: orphans_of(lbs.into_values(), &uids),
        };
        let (released, counts, error) = self.release_orphans(&orphans, Some(deadline)).await;
        out.orphans_released = released;
        add(&mut out.actions, &counts);
        out.error = error;
        out
    }
}

fn add(total: &mut ActionCounts, more: &ActionCounts) {
    total.applied += more.applied;
    total.cloud_reads += more.cloud_reads;
    total.cloud_writes += more.cloud_writes;
}

fn prepared_reads(p: &Prepared) -> u32 {
    match p {
        Prepared::Planned(p) => p.reads,
        _ => 0,
    }
}

/// CLBs carrying an Ingress UID that is not among `uids` (a CLB with our cluster tag but no
/// UID tag names no Ingress and is left alone).
fn orphans_of(
    lbs: impl Iterator<Item = LoadBalancer>,
    uids: &BTreeSet<String>,
) -> Vec<LoadBalancer> {
    lbs.filter(|lb| {
        lb.tag(TAG_INGRESS_UID)
            .is_some_and(|uid| !uid.is_empty() && !uids.contains(uid))
    })
    .collect()
}

/// Whether the sweep should look at an Ingress that has no CLB: ours by its annotation,
/// or naming an IngressClass (which only the full view can judge).
fn may_be_ours(i: &Ingress) -> bool {
    class::is_ours(i, None)
        || i.spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref())
            .is_some_and(|n| !n.is_empty())
}

impl IngressLookup for Reconciler {
    fn ingresses(
        &self,
        namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
        Box::pin(async move {
            let all = self
                .cluster
                .list_ingresses()
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            Ok(all
                .iter()
                .filter(|i| {
                    namespace.is_none() || i.metadata.namespace.as_deref() == namespace.as_deref()
                })
                .filter_map(|i| {
                    let refs = ingress_refs(i);
                    Some(IngressSummary {
                        key: IngressKey::new(
                            i.metadata.namespace.clone()?,
                            i.metadata.name.clone()?,
                        ),
                        services: refs.services,
                        tls_secrets: refs.tls_secrets,
                        node_port: !refs.direct_access,
                    })
                })
                .collect())
        })
    }
}

impl Engine for Reconciler {
    fn reconcile(&self, key: IngressKey, deadline: Instant) -> BoxFuture<'_, IngressOutcome> {
        Box::pin(async move { self.reconcile_until(&key, Some(deadline)).await })
    }

    fn sweep(&self, deadline: Instant) -> BoxFuture<'_, SweepOutcome> {
        Box::pin(self.sweep_now(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::clb::TagInfo;

    fn lb(id: &str, tags: &[(&str, &str)]) -> LoadBalancer {
        LoadBalancer {
            load_balancer_id: id.into(),
            tags: tags.iter().map(|(k, v)| TagInfo::new(*k, *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn status_is_the_vip_as_ip_else_the_domain_as_hostname() {
        let with_vip = LbAddress {
            id: "lb-1".into(),
            vips: vec!["1.2.3.4".into()],
            domain: Some("lb-1.clb.example".into()),
        };
        assert_eq!(status_entries(&with_vip)[0].ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(status_entries(&with_vip)[0].hostname, None);
        let domain_only = LbAddress {
            vips: vec![],
            ..with_vip
        };
        assert_eq!(
            status_entries(&domain_only)[0].hostname.as_deref(),
            Some("lb-1.clb.example")
        );
        let neither = LbAddress {
            domain: None,
            ..domain_only
        };
        assert!(status_entries(&neither).is_empty());
    }

    #[test]
    fn orphans_are_clbs_naming_a_uid_no_ingress_has() {
        let uids: BTreeSet<String> = ["alive".to_string()].into();
        let lbs = vec![
            lb("lb-alive", &[(TAG_INGRESS_UID, "alive")]),
            lb("lb-gone", &[(TAG_INGRESS_UID, "gone")]),
            lb("lb-no-uid", &[("tke-clusterId", "c")]),
            lb("lb-empty-uid", &[(TAG_INGRESS_UID, "")]),
        ];
        let ids: Vec<String> = orphans_of(lbs.into_iter(), &uids)
            .into_iter()
            .map(|l| l.load_balancer_id)
            .collect();
        assert_eq!(ids, vec!["lb-gone".to_string()]);
    }

    #[test]
    fn listing_pages_match_the_describe_page_size() {
        assert_eq!(pages(0), 1);
        assert_eq!(pages(100), 1);
        assert_eq!(pages(101), 2);
    }

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
