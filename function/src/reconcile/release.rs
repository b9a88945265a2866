//! Orphan release: CLBs of our cluster whose Ingress UID no Ingress has any more (DESIGN §1:
//! positive proof from complete fresh lists; a failed list never gets here).

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use super::prepare::Planned;
use super::report::reasons;
use super::{ReconcileError, Reconciler};
use crate::cloud::apply::apply;
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::{cloud_lb, read_listeners, read_load_balancer, tagged_for};
use crate::cluster::EventType;
use crate::handler::{ActionCounts, IngressOutcome, OutcomeStatus};
use crate::model::lifecycle;
use crate::model::ownership::{IngressFact, TAG_INGRESS_UID};
use crate::model::Problem;
use crate::plan::{self, CloudView, Plan};

/// CLBs of our cluster whose Ingress UID matches no existing Ingress, by complete fresh
/// lists.
pub(super) struct Orphans {
    pub lbs: Vec<LoadBalancer>,
    /// Every CLB of the cluster (tagged with our cluster), orphaned or not: what the
    /// mass-release guard measures the orphans against.
    pub total: usize,
    /// DescribeLoadBalancers and GetResources pages read to find them.
    pub reads: u32,
    /// Regions that may hold orphans nobody looked at: the run releases those it found and
    /// still ends failed.
    pub unchecked: Option<String>,
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
    /// Every CLB tagged with our cluster whose Ingress UID no Ingress has, by complete fresh
    /// lists (CLBs first, see [`Reconciler::list_fleet`]).
    pub(super) async fn find_orphans(&self) -> Result<Orphans, ReconcileError> {
        Ok(self.list_fleet().await?.orphans())
    }

    /// The release plan of one CLB whose Ingress `fact` proved it unused; reads its listeners
    /// only when release keeps the CLB (then only our listeners go).
    pub(super) async fn release_plan(
        &self,
        lb: &LoadBalancer,
        fact: IngressFact,
    ) -> Result<(Result<Plan, Problem>, CloudView, u32), ReconcileError> {
        let uid = lb.tag(TAG_INGRESS_UID).unwrap_or_default().to_string();
        // `lb` comes from a list taken before the proof that its Ingress is gone, maybe
        // minutes ago; the release rests on a read of the CLB taken now, and release_action
        // refuses unless its tags still name this cluster and the UID proven gone.
        let mut reads = 1;
        let client = self.cloud.in_region(&lb.region);
        let Some(fresh) = read_load_balancer(&client, &lb.load_balancer_id).await? else {
            return Ok((Ok(Plan::default()), CloudView::default(), reads));
        };
        let mut cloud_lb = cloud_lb(&fresh)?;
        let tags: BTreeMap<String, String> = cloud_lb.tags.clone();
        if !matches!(
            lifecycle::release_action(fact, &tags, &cloud_lb.attributes, &self.cluster_id, &uid),
            Ok(lifecycle::Releasing::Delete)
        ) {
            reads += read_listeners(&client, &mut cloud_lb, false).await?;
        }
        let cloud = CloudView {
            load_balancer: Some(cloud_lb),
        };
        let plan = plan::plan_release(&cloud, fact, &self.cluster_id, &uid);
        Ok((plan, cloud, reads))
    }

    /// Releases every orphan (positive proof: fresh lists of CLBs, then Ingresses, then a
    /// fresh read of each CLB), unless there are more than the mass-release guard allows:
    /// then none, and the outcome and an error-level log line say why.
    pub(super) async fn release_orphans(
        &self,
        orphans: &Orphans,
        deadline: Option<Instant>,
    ) -> Releases {
        let mut out = Releases {
            counts: ActionCounts {
                cloud_reads: orphans.reads,
                ..ActionCounts::default()
            },
            ..Releases::default()
        };
        if let Some(why) = self.release_guard.holds(orphans.lbs.len(), orphans.total) {
            tracing::error!(orphans = orphans.lbs.len(), total = orphans.total, "{why}");
            out.held = Some(why);
            return out;
        }
        self.release_all(&orphans.lbs, IngressFact::Gone, deadline, &mut out)
            .await;
        if out.error.is_none() {
            out.error = orphans.unchecked.clone();
        }
        out
    }

    /// Releases each of `lbs` by the seed's rules, on `fact` and a fresh read of each.
    async fn release_all(
        &self,
        lbs: &[LoadBalancer],
        fact: IngressFact,
        deadline: Option<Instant>,
        out: &mut Releases,
    ) {
        for lb in lbs {
            if deadline.is_some_and(|d| Instant::now() + self.opts.min_start > d) {
                out.error = Some("deadline reached before every release was done".into());
                break;
            }
            let id = &lb.load_balancer_id;
            match self.release_plan(lb, fact).await {
                Ok((Ok(plan), cloud, reads)) => {
                    out.counts.cloud_reads += reads;
                    for p in &plan.problems {
                        tracing::warn!(lb = %id, problem = %p, "CLB kept");
                    }
                    if plan.is_empty() {
                        continue;
                    }
                    let client = self.cloud.in_region(&lb.region);
                    match apply(&client, &plan, &cloud, &self.opts.apply).await {
                        Ok(a) => {
                            out.counts.applied += a.actions as u32;
                            out.counts.cloud_writes += a.writes;
                            if !a.stopped {
                                out.released += 1;
                            }
                            tracing::info!(lb = %id, ?fact, "released CLB");
                        }
                        Err(e) => {
                            out.counts.applied += e.applied.actions as u32;
                            out.counts.cloud_writes += e.applied.writes;
                            tracing::warn!(lb = %id, error = %e, "release failed");
                            out.error = Some(e.to_string());
                        }
                    }
                }
                Ok((Err(p), _, reads)) => {
                    out.counts.cloud_reads += reads;
                    tracing::warn!(lb = %id, problem = %p, "not released");
                }
                Err(e) => {
                    tracing::warn!(lb = %id, error = %e, "release failed");
                    out.error = Some(e.to_string());
                }
            }
        }
    }

    /// The CLBs still tagged for a live Ingress of ours that it no longer names (its
    /// `existLbId` switched, added or removed), released by the seed's rules once the one it
    /// names serves: created, deleted; adopted, our listeners deleted and our two tags removed.
    pub(super) async fn release_unnamed(&self, lbs: &[LoadBalancer]) -> Releases {
        let mut out = Releases::default();
        self.release_all(lbs, IngressFact::NoLongerNamed, None, &mut out)
            .await;
        out
    }

    /// Once the CLB the Ingress names serves: release those it no longer names, and say so.
    pub(super) async fn report_unnamed(&self, p: &Planned, outcome: &mut IngressOutcome) {
        let r = self.release_unnamed(&p.unnamed).await;
        outcome.actions.applied += r.counts.applied;
        outcome.actions.cloud_reads += r.counts.cloud_reads;
        outcome.actions.cloud_writes += r.counts.cloud_writes;
        let ids: Vec<&str> = p
            .unnamed
            .iter()
            .map(|lb| lb.load_balancer_id.as_str())
            .collect();
        let ingress = &p.view.ingress;
        if r.released > 0 {
            let note = format!(
                "released {} CLB(s) this Ingress no longer names ({})",
                r.released,
                ids.join(", ")
            );
            self.event(ingress, EventType::Normal, reasons::RELEASED, &note)
                .await;
        }
        if let Some(e) = r.error {
            let note = format!(
                "releasing the CLB(s) no longer named ({}): {e}",
                ids.join(", ")
            );
            self.event(ingress, EventType::Warning, reasons::SYNC_FAILED, &note)
                .await;
            outcome.status = OutcomeStatus::Failed;
            outcome.code = Some("ReleaseFailed".into());
            outcome.message = Some(note);
        }
    }

    /// For an Ingress found gone: release every orphan, as one outcome.
    pub(super) async fn release_orphans_outcome(&self) -> Result<IngressOutcome, ReconcileError> {
        let orphans = self.find_orphans().await?;
        Ok(self.release_orphans(&orphans, None).await.outcome())
    }

    /// The CLBs of the Ingress `uid`, which a delete record named and a fresh GET proved gone
    /// (404, or its name now has another UID: a UID belongs to one object for good): one
    /// DescribeLoadBalancers by the UID tag, then each released by the seed's rules on a
    /// fresh read of its own. No LIST of the cluster and no scan of the fleet: that stays the
    /// sweep's job. The deleted Ingress's `cross-region-id` is gone with it: GetResources
    /// (global) by our cluster and the UID tags says which regions to read; if it fails, the
    /// cluster's region and `CLB_EXTRA_REGIONS` are read and the outcome is failed (retried),
    /// releasing what was found there. One Ingress has one CLB (two while an `existLbId` switch settles); more
    /// for one UID than the mass-release guard lets one run release is held the same way.
    pub(super) async fn release_uid(&self, uid: &str, deadline: Option<Instant>) -> Releases {
        let search = self.search_regions(Some(uid)).await;
        let mut out = Releases {
            counts: ActionCounts {
                cloud_reads: search.tag_reads + 1,
                ..ActionCounts::default()
            },
            ..Releases::default()
        };
        let mut lbs = Vec::new();
        for (i, region) in search.regions.iter().enumerate() {
            out.counts.cloud_reads = search.tag_reads + i as u32 + 1;
            match tagged_for(&self.cloud.in_region(region), &self.cluster_id, uid).await {
                Ok(found) => lbs.extend(found),
                Err(e) => {
                    out.error = Some(format!("finding the CLBs of {uid}: {e}"));
                    return out;
                }
            }
        }
        if let Some(why) = self.release_guard.holds(lbs.len(), lbs.len()) {
            tracing::error!(uid, tagged = lbs.len(), "{why}");
            out.held = Some(why);
            return out;
        }
        self.release_all(&lbs, IngressFact::Gone, deadline, &mut out)
            .await;
        if out.error.is_none() {
            out.error = search.unchecked;
        }
        out
    }
}

impl Releases {
    /// The releases for one Ingress, as its outcome.
    pub(super) fn outcome(self) -> IngressOutcome {
        let r = self;
        let mut outcome = match (&r.held, &r.error, r.released) {
            (Some(why), _, _) => IngressOutcome::failed("MassReleaseHeld", why.clone()),
            (None, Some(e), _) => IngressOutcome::failed("ReleaseFailed", e.clone()),
            (None, None, 0) => IngressOutcome::new(OutcomeStatus::Ignored),
            (None, None, _) => IngressOutcome::new(OutcomeStatus::Released),
        };
        outcome.actions = r.counts;
        outcome
    }
}

/// What a batch of releases did.
#[derive(Debug, Default)]
pub(super) struct Releases {
    pub released: u32,
    pub counts: ActionCounts,
    /// The last failure; the next run resumes.
    pub error: Option<String>,
    /// Why the mass-release guard released nothing.
    pub held: Option<String>,
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
