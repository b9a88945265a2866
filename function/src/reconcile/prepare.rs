//! The look without writes: observe the cloud for a desired state and plan against it.

use super::regions::wanted;
use super::report::is_reported;
use super::{ReconcileError, Reconciler};
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::{observe, observe_named, Lookup, Named};
use crate::cloud::CloudClient;
use crate::model::ownership::IngressFact;
use crate::model::readiness::{gated_pods, GatedPod};
use crate::model::{ClusterView, Desired, LbSource, Problem};
use crate::plan::readiness::gates_to_open;
use crate::plan::{self, CloudView, Plan};

/// What a look without writes found for one Ingress.
pub(super) enum Prepared {
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

impl Prepared {
    /// Cloud reads the look made.
    /// The UID of the Ingress it found.
    pub(super) fn uid(&self) -> Option<&str> {
        let view = match self {
            Prepared::Gone => return None,
            Prepared::Ignored { view } | Prepared::Invalid { view, .. } => view,
            Prepared::Planned(p) => &p.view,
        };
        view.ingress.metadata.uid.as_deref()
    }

    pub(super) fn reads(&self) -> u32 {
        match self {
            Prepared::Planned(p) => p.reads,
            _ => 0,
        }
    }
}

pub(super) struct Planned {
    pub view: ClusterView,
    pub cloud: CloudView,
    pub plan: Plan,
    /// Warnings of the model and the planner.
    pub problems: Vec<Problem>,
    /// Releasing (out of class), not managing.
    pub release: bool,
    /// `mode: skip`: the plan at most marks the CLB; nothing is written on the Ingress.
    pub skip: bool,
    pub reads: u32,
    /// CLBs still tagged for the Ingress that it no longer names: released once the plan
    /// has made the one it names serve.
    pub unnamed: Vec<LoadBalancer>,
    /// Pods waiting for the readiness gate, with the rules that route to them (managed
    /// direct-access Ingresses only).
    pub gates: Vec<GatedPod>,
    /// The client for the region the CLB lives in (`cross-region-id`).
    pub client: CloudClient,
}

impl Planned {
    /// Nothing to apply, nothing to write on the Ingress, nothing to say.
    pub(super) fn is_quiet(&self) -> bool {
        self.problems.is_empty() && self.is_quiet_but_for_problems()
    }

    /// Nothing to apply or to write on the Ingress; there may be problems to report.
    pub(super) fn is_quiet_but_for_problems(&self) -> bool {
        self.plan.is_empty()
            && self.unnamed.is_empty()
            && gates_to_open(&self.gates, self.cloud.load_balancer.as_ref()).is_empty()
            && (self.skip
                || (is_reported(&self.view.ingress, &self.cloud, self.release)
                    && !super::auto_config::is_stale(&self.view, &self.cloud)))
    }
}

impl Reconciler {
    /// Out of our class: the CLB carrying its UID, if any, and the plan to release it.
    pub(super) async fn plan_out_of_class(
        &self,
        view: ClusterView,
    ) -> Result<Prepared, ReconcileError> {
        let uid = view.ingress.metadata.uid.clone().unwrap_or_default();
        if uid.is_empty() {
            return Ok(Prepared::Ignored {
                view: Box::new(view),
            });
        }
        let client = self.client_in(wanted(&view.ingress).as_deref());
        let (cloud, reads) = observe(
            &client,
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
                skip: false,
                reads: reads.calls,
                unnamed: Vec::new(),
                gates: Vec::new(),
                client,
            }))),
            Err(p) => Ok(Prepared::Invalid {
                view: Box::new(view),
                problems: vec![p],
            }),
        }
    }

    /// `mode: skip`: the CLB it has (by UID) or names (`existLbId`), and the plan that at
    /// most marks it so that a release keeps it.
    pub(super) async fn plan_skip(
        &self,
        view: ClusterView,
        uid: &str,
        exist_lb_id: Option<&str>,
    ) -> Result<Prepared, ReconcileError> {
        let lookup = match exist_lb_id {
            Some(id) => Lookup::ById(id),
            None => Lookup::ByUid {
                cluster_id: &self.cluster_id,
                uid,
            },
        };
        let client = self.client_in(wanted(&view.ingress).as_deref());
        let (cloud, reads) = observe(&client, lookup).await?;
        let plan = plan::plan_skip(&cloud, &self.cluster_id, uid);
        Ok(Prepared::Planned(Box::new(Planned {
            view,
            cloud,
            plan,
            problems: Vec::new(),
            release: false,
            skip: true,
            reads: reads.calls,
            unnamed: Vec::new(),
            gates: Vec::new(),
            client,
        })))
    }

    /// Ours: the CLB it has (by UID) or names (`existLbId`), and the plan to converge it.
    /// `strays`: regions beyond the fixed ones where the sweep saw a CLB tagged for it (a
    /// region it named before), searched too so that CLB is released as no longer named.
    pub(super) async fn plan_manage(
        &self,
        view: ClusterView,
        desired: Desired,
        strays: &[String],
    ) -> Result<Prepared, ReconcileError> {
        let exist_lb_id = match &desired.load_balancer {
            LbSource::Create(_) => None,
            LbSource::Adopt { lb_id } => Some(lb_id.as_str()),
        };
        let client = self.client_in(wanted(&view.ingress).as_deref());
        let mut others = self.other_regions(client.region());
        for r in strays {
            if r != client.region() && !others.contains(r) {
                others.push(r.clone());
            }
        }
        let look = || {
            observe_named(
                &client,
                &others,
                &self.cluster_id,
                &desired.ingress_uid,
                exist_lb_id,
            )
        };
        let Named {
            mut cloud,
            mut unnamed,
            reads,
        } = look().await?;
        let mut reads = reads.calls;
        // A CLB still being created (a run stopped right after CreateLoadBalancer) takes no
        // writes yet; wait for it here rather than leave the rest to a later trigger.
        if let Some(lb) = cloud
            .load_balancer
            .as_ref()
            .filter(|lb| lb.status == plan::LB_STATUS_CREATING)
        {
            client
                .wait_load_balancers_ready(std::slice::from_ref(&lb.id))
                .await?;
            let again = look().await?;
            cloud = again.cloud;
            unnamed = again.unnamed;
            reads += again.reads.calls + 1;
        }
        let gates = gated_pods(&desired.listeners, &view.endpoint_slices, &view.pods);
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
                    skip: false,
                    reads,
                    unnamed,
                    gates,
                    client,
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
}
