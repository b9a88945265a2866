//! The sweep at the API minimum (DESIGN §2, issue 9 §1): every Ingress that may be ours is
//! planned from one batched snapshot, and only a non-empty plan takes the Lease; past the
//! shard size, one shard event per slice of them instead; then every orphaned CLB.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::networking::v1::Ingress;
use tokio::time::Instant;

use super::listing::{failed_list, Listing};
use super::regions::wanted;
use super::report::{annotation, covered, is_reported};
use super::shards::fan_out;
use super::{ReconcileError, Reconciler};
use crate::budget::{run_within, Ran};
use crate::cloud::clb::LoadBalancer;
use crate::cloud::fleet::{observe_fleet, Fleet};
use crate::handler::{ActionCounts, IngressKey, LookupError, OutcomeStatus, SweepOutcome};
use crate::model::ownership::TAG_INGRESS_UID;
use crate::model::{class, ClusterView, Decision, LbSource, Problem};
use crate::plan::{self, CloudView};
use crate::shard::ShardSpec;

impl Reconciler {
    /// The sweep, within `deadline`: one snapshot of the cluster and the cloud in batch reads,
    /// every Ingress planned from it, and only those whose plan is not empty (or that have
    /// something to report) reconciled through the one-Ingress path, fresh, under their Lease.
    /// Then every orphaned CLB is released.
    pub async fn sweep_now(&self, deadline: Instant) -> SweepOutcome {
        let mut out = SweepOutcome::default();
        let listing = match self.list_fleet().await {
            Ok(l) => l,
            Err(e) => {
                out.error = Some(format!("{}: {e}", failed_list(&e)));
                return out;
            }
        };
        let orphans = listing.orphans();
        let Listing { lbs, ingresses, .. } = listing;
        let selected = sweep_selection(&lbs, &ingresses);
        match self.shards.as_deref().filter(|d| selected.len() > d.size()) {
            Some(dispatcher) => out.shards = Some(fan_out(dispatcher, selected.len()).await),
            None => match self.sweep_snapshot(lbs, &selected, &mut out).await {
                Ok(keys) => self.sweep_run(keys, deadline, &mut out).await,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            },
        }
        let released = self.release_orphans(&orphans, Some(deadline)).await;
        out.orphans_released = released.released;
        add(&mut out.actions, &released.counts);
        out.error = released.error;
        out.release_held = released.held;
        out
    }

    /// Reads the snapshot and plans every selected Ingress from it: the Ingresses that need
    /// the one-Ingress path; the others are counted converged.
    async fn sweep_snapshot(
        &self,
        lbs: BTreeMap<String, LoadBalancer>,
        selected: &[&Ingress],
        out: &mut SweepOutcome,
    ) -> Result<Vec<SweepKey>, String> {
        let slot = rotation_slot(
            Timestamp::now().as_second(),
            self.sweep.interval,
            self.sweep.full_read_every,
        );
        let due: BTreeSet<String> = lbs
            .keys()
            .enumerate()
            .filter(|(i, _)| is_due(*i, slot, self.sweep.full_read_every))
            .map(|(_, id)| id.clone())
            .collect();
        let fleet = observe_fleet(&self.cloud, lbs, |id| due.contains(id))
            .await
            .map_err(|e| format!("reading CLBs: {e}"))?;
        out.actions.cloud_reads += fleet.calls;
        let snapshot = self
            .cluster
            .snapshot(selected)
            .await
            .map_err(|e| format!("reading the cluster: {e}"))?;
        let mut views: Vec<ClusterView> = selected.iter().map(|i| snapshot.view(i)).collect();
        if let Some(ours) = self.sweep_certificates(&views).await {
            views.iter_mut().for_each(|v| self.fill_uploads(v, &ours));
        }
        let mut keys = Vec::new();
        let mut to_report = Vec::new();
        for (ingress, view) in selected.iter().zip(&views) {
            let Some(key) = key_of(ingress) else {
                continue;
            };
            match self.need_of(view, &fleet) {
                Need::Run => keys.push((key, true, Vec::new())),
                Need::Search(strays) => keys.push((key, true, strays)),
                Need::Look => keys.push((key, false, Vec::new())),
                Need::Nothing => {
                    *out.ingresses.entry(OutcomeStatus::Converged).or_default() += 1;
                }
                Need::Report(problems, status) => to_report.push((key, *ingress, problems, status)),
            }
        }
        // Problems only: one LIST of our Events says which were reported already; only a new
        // (or long unrepeated) one takes the Ingress's Lease to be written.
        if !to_report.is_empty() {
            let (reported, _) = self
                .cluster
                .reported_events(None)
                .await
                .map_err(|e| format!("reading Events: {e}"))?;
            for (key, ingress, problems, status) in to_report {
                if covered(&reported, ingress, &problems) {
                    *out.ingresses.entry(status).or_default() += 1;
                } else {
                    keys.push((key, true, Vec::new()));
                }
            }
        }
        Ok(keys)
    }

    /// What the snapshot shows to do for one Ingress (pure but for the clock-free model and
    /// planner): a non-empty plan, a CLB the batch read could not show, or a status or
    /// annotation to write take the one-Ingress path; problems alone are only to report.
    fn need_of(&self, view: &ClusterView, fleet: &Fleet) -> Need {
        let ingress = &view.ingress;
        let uid = ingress.metadata.uid.as_deref().unwrap_or_default();
        let tagged = || {
            fleet
                .load_balancers
                .values()
                .filter(move |lb| !uid.is_empty() && lb.tag(TAG_INGRESS_UID) == Some(uid))
        };
        let by_uid = || tagged().next();
        let run_if = |run: bool| if run { Need::Run } else { Need::Nothing };
        match self.desire_known(view) {
            Decision::Invalid(problems) => Need::Report(problems, OutcomeStatus::Invalid),
            // Hands off: the one-Ingress path marks its CLB once and then reads only.
            Decision::Skip { .. } => Need::Look,
            Decision::Release => run_if(by_uid().is_some() || annotation(ingress).is_some()),
            Decision::Manage(desired) => {
                // A CLB tagged for it in a region its lookup does not search (one it named
                // before): the run searches there too and releases it as no longer named.
                let region = self.client_in(wanted(ingress).as_deref());
                let searched = self.fixed_regions();
                let strays: BTreeSet<String> = tagged()
                    .map(|lb| lb.region.clone())
                    .filter(|r| !r.is_empty() && r != region.region() && !searched.contains(r))
                    .collect();
                if !strays.is_empty() {
                    return Need::Search(strays.into_iter().collect());
                }
                let lb = match &desired.load_balancer {
                    LbSource::Create(_) => by_uid(),
                    LbSource::Adopt { lb_id } => fleet.load_balancers.get(lb_id),
                };
                // cross-region-id: a CLB in another region than the Ingress names is to be
                // replaced; one in another region than the batch read is looked at alone.
                match lb.map(|lb| lb.region.as_str()) {
                    Some(r) if !r.is_empty() && r != region.region() => return Need::Run,
                    Some(r) if !r.is_empty() && r != self.cloud.region() => return Need::Look,
                    _ => {}
                }
                let Some(seen) = lb.and_then(|lb| fleet.views.get(&lb.load_balancer_id).cloned())
                else {
                    return Need::Run;
                };
                let full = fleet.full.contains(&seen.id);
                let cloud = CloudView {
                    load_balancer: Some(seen),
                };
                match plan::plan(&desired, &cloud) {
                    Ok(p) => {
                        let run = p
                            .actions
                            .iter()
                            .any(|a| full || !a.sets_listener_attribute())
                            || !is_reported(ingress, &cloud, false);
                        let mut problems = desired.problems;
                        problems.extend(p.problems);
                        let look = cloud
                            .load_balancer
                            .as_ref()
                            .is_some_and(|lb| plan::readiness::may_wait_unregistered(view, lb));
                        match (run, problems.is_empty()) {
                            (true, _) => Need::Run,
                            _ if look => Need::Look,
                            (false, true) => Need::Nothing,
                            (false, false) => Need::Report(problems, OutcomeStatus::Converged),
                        }
                    }
                    Err(refusal) => {
                        let mut problems = vec![refusal];
                        problems.extend(desired.problems);
                        Need::Report(problems, OutcomeStatus::Invalid)
                    }
                }
            }
        }
    }

    /// The one-Ingress path for each of `keys` (with or without its look first), a bounded
    /// number at once, within `deadline`.
    async fn sweep_run(&self, keys: Vec<SweepKey>, deadline: Instant, out: &mut SweepOutcome) {
        let ran = run_within(
            keys,
            self.opts.concurrency,
            self.opts.min_start,
            deadline,
            |(key, known, strays)| async move {
                if known {
                    self.reconcile_locked(&key, deadline, &strays).await
                } else {
                    self.reconcile_until(&key, Some(deadline)).await
                }
            },
        )
        .await;
        for (_, r) in ran {
            match r {
                Ran::Done(o) => {
                    *out.ingresses.entry(o.status).or_default() += 1;
                    add(&mut out.actions, &o.actions);
                }
                Ran::CutOff | Ran::NotStarted => out.not_reached += 1,
            }
        }
    }

    /// The Ingresses of one shard: the sweep's own selection (so Ingresses of other classes
    /// cost a shard nothing), narrowed to the shard's bucket.
    pub(super) async fn shard_keys(
        &self,
        spec: &ShardSpec,
    ) -> Result<Vec<IngressKey>, LookupError> {
        let Listing { lbs, ingresses, .. } = self.list_fleet().await.map_err(|e| {
            LookupError(match e {
                ReconcileError::Cloud(e) => format!("listing CLBs: {e}"),
                e => e.to_string(),
            })
        })?;
        Ok(sweep_selection(&lbs, &ingresses)
            .into_iter()
            .filter_map(key_of)
            .filter(|k| spec.contains(k))
            .collect())
    }
}

/// An Ingress the sweep runs the one-Ingress path for: whether its snapshot showed a write
/// (straight under the Lease), and the regions beyond the fixed ones its lookup searches.
type SweepKey = (IngressKey, bool, Vec<String>);

/// What the sweep must do for one Ingress.
enum Need {
    Nothing,
    /// The one-Ingress path, straight under the Lease: the snapshot showed a write to make,
    /// so the look without the Lease would only read again what the sweep already read.
    Run,
    /// [`Need::Run`] with these regions added to the lookup's search.
    Search(Vec<String>),
    /// The one-Ingress path with its look first (it may find nothing to write).
    Look,
    /// Nothing but these problems, to report unless reported already; else counted as the
    /// status.
    Report(Vec<Problem>, OutcomeStatus),
}

/// The Ingresses a sweep looks at: those that may be ours, and those a CLB of ours names.
fn sweep_selection<'a>(
    lbs: &BTreeMap<String, LoadBalancer>,
    ingresses: &'a [Ingress],
) -> Vec<&'a Ingress> {
    let lb_uids: BTreeSet<&str> = lbs
        .values()
        .filter_map(|lb| lb.tag(TAG_INGRESS_UID))
        .collect();
    ingresses
        .iter()
        .filter(|i| {
            let uid = i.metadata.uid.as_deref().unwrap_or_default();
            may_be_ours(i) || lb_uids.contains(uid)
        })
        .filter(|i| key_of(i).is_some())
        .collect()
}

fn key_of(i: &Ingress) -> Option<IngressKey> {
    Some(IngressKey::new(
        i.metadata.namespace.clone()?,
        i.metadata.name.clone()?,
    ))
}

/// The sweep's place in the rotation of full reads: sweeps `interval` apart step through
/// `0..every` in turn, so each CLB is read in full at least every `every` sweeps.
fn rotation_slot(now_seconds: i64, interval: Duration, every: u32) -> u64 {
    let step = interval.as_secs().max(1);
    (now_seconds.max(0) as u64 / step) % u64::from(every.max(1))
}

/// Whether the CLB at `index` (in id order) is read in full in `slot`.
fn is_due(index: usize, slot: u64, every: u32) -> bool {
    index as u64 % u64::from(every.max(1)) == slot
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

fn add(total: &mut ActionCounts, more: &ActionCounts) {
    total.applied += more.applied;
    total.cloud_reads += more.cloud_reads;
    total.cloud_writes += more.cloud_writes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clb_is_due_once_in_every_k_consecutive_sweeps() {
        let every = 10;
        let interval = Duration::from_secs(300);
        for index in 0..37 {
            let due = (0..every)
                .filter(|s| {
                    let slot = rotation_slot(1_800_000_000 + i64::from(*s) * 300, interval, every);
                    is_due(index, slot, every)
                })
                .count();
            assert_eq!(due, 1, "CLB {index}");
        }
    }

    #[test]
    fn a_share_of_one_kth_is_due_per_sweep() {
        let due = (0..1000).filter(|i| is_due(*i, 3, 10)).count();
        assert_eq!(due, 100);
        assert!(
            (0..5).all(|i| is_due(i, 0, 1)),
            "k = 1 reads every CLB in full"
        );
    }
}
