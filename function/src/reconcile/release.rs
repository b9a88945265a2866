//! Orphan release: CLBs of our cluster whose Ingress UID no Ingress has any more (DESIGN §1:
//! positive proof from complete fresh lists; a failed list never gets here).

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use super::{ReconcileError, Reconciler};
use crate::cloud::apply::apply;
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::{cloud_lb, cluster_load_balancers, read_listeners};
use crate::handler::{ActionCounts, IngressOutcome, OutcomeStatus};
use crate::model::lifecycle;
use crate::model::ownership::{IngressFact, TAG_INGRESS_UID};
use crate::model::Problem;
use crate::plan::{self, CloudView, Plan};

/// CLBs of our cluster whose Ingress UID matches no existing Ingress, by complete fresh
/// lists.
pub(super) struct Orphans {
    pub lbs: Vec<LoadBalancer>,
    /// DescribeLoadBalancers pages read to find them.
    pub reads: u32,
}

/// Pages `describe_all_load_balancers` reads for `n` CLBs (it stops at TotalCount).
pub(super) fn pages(n: usize) -> u32 {
    n.div_ceil(crate::cloud::clb::DESCRIBE_PAGE_LIMIT as usize)
        .max(1) as u32
}

/// CLBs carrying an Ingress UID that is not among `uids` (a CLB with our cluster tag but no
/// UID tag names no Ingress and is left alone).
pub(super) fn orphans_of(
    lbs: impl Iterator<Item = LoadBalancer>,
    uids: &BTreeSet<String>,
) -> Vec<LoadBalancer> {
    lbs.filter(|lb| {
        lb.tag(TAG_INGRESS_UID)
            .is_some_and(|uid| !uid.is_empty() && !uids.contains(uid))
    })
    .collect()
}

impl Reconciler {
    /// Every CLB tagged with our cluster whose Ingress UID no Ingress has. The CLBs are
    /// listed before the Ingresses: a CLB is tagged only after its Ingress exists, so an
    /// Ingress created between the two lists is in the second and its CLB is safe.
    pub(super) async fn find_orphans(&self) -> Result<Orphans, ReconcileError> {
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
    pub(super) async fn release_plan(
        &self,
        lb: &LoadBalancer,
    ) -> Result<(Result<Plan, Problem>, CloudView, u32), ReconcileError> {
        let uid = lb.tag(TAG_INGRESS_UID).unwrap_or_default().to_string();
        let mut cloud_lb = cloud_lb(lb)?;
        let mut reads = 0;
        let tags: BTreeMap<String, String> = cloud_lb.tags.clone();
        if !matches!(
            lifecycle::release_action(
                IngressFact::Gone,
                &tags,
                &cloud_lb.attributes,
                &self.cluster_id,
                &uid
            ),
            Ok(lifecycle::Releasing::Delete)
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
    pub(super) async fn release_orphans(
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
                    for p in &plan.problems {
                        tracing::warn!(lb = %lb.load_balancer_id, problem = %p, "orphan kept");
                    }
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

    /// For an Ingress found gone: release every orphan, as one outcome.
    pub(super) async fn release_orphans_outcome(&self) -> Result<IngressOutcome, ReconcileError> {
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
}
