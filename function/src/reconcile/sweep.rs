//! The sweep: every Ingress that may be ours (or, past the shard size, one shard event per
//! slice of them), then every orphaned CLB.

use std::collections::{BTreeMap, BTreeSet};

use futures::{stream, StreamExt};
use k8s_openapi::api::networking::v1::Ingress;
use tokio::time::Instant;

use super::release::{orphans_of, pages, Orphans};
use super::shards::fan_out;
use super::Reconciler;
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::cluster_load_balancers;
use crate::handler::{ActionCounts, IngressKey, IngressOutcome, LookupError, SweepOutcome};
use crate::model::class;
use crate::model::ownership::TAG_INGRESS_UID;
use crate::shard::ShardSpec;

impl Reconciler {
    /// The sweep, within `deadline`.
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
        let uids: BTreeSet<String> = ingresses
            .iter()
            .filter_map(|i| i.metadata.uid.clone())
            .collect();
        let keys = sweep_keys(&lbs, &ingresses);
        match self.shards.as_deref().filter(|d| keys.len() > d.size()) {
            Some(dispatcher) => out.shards = Some(fan_out(dispatcher, keys.len()).await),
            None => {
                let min_start = self.opts.min_start;
                let results: Vec<Option<IngressOutcome>> = stream::iter(keys)
                    .map(|key| async move {
                        if Instant::now() + min_start > deadline {
                            return None;
                        }
                        tokio::time::timeout_at(
                            deadline,
                            self.reconcile_until(&key, Some(deadline)),
                        )
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
            }
        }
        let orphans = Orphans {
            reads: pages(lbs.len()),
            total: lbs.len(),
            lbs: orphans_of(lbs.into_values(), &uids),
        };
        let released = self.release_orphans(&orphans, Some(deadline)).await;
        out.orphans_released = released.released;
        add(&mut out.actions, &released.counts);
        out.error = released.error;
        out.release_held = released.held;
        out
    }

    /// The Ingresses of one shard: the sweep's own selection (so Ingresses of other classes
    /// cost a shard nothing), narrowed to the shard's bucket.
    pub(super) async fn shard_keys(
        &self,
        spec: &ShardSpec,
    ) -> Result<Vec<IngressKey>, LookupError> {
        let lbs = cluster_load_balancers(&self.cloud, &self.cluster_id)
            .await
            .map_err(|e| LookupError(format!("listing CLBs: {e}")))?;
        let ingresses = self
            .cluster
            .list_ingresses()
            .await
            .map_err(|e| LookupError(e.to_string()))?;
        Ok(sweep_keys(&lbs, &ingresses)
            .into_iter()
            .filter(|k| spec.contains(k))
            .collect())
    }
}

/// The Ingresses a sweep reconciles: those that may be ours, and those a CLB of ours names.
fn sweep_keys(lbs: &BTreeMap<String, LoadBalancer>, ingresses: &[Ingress]) -> Vec<IngressKey> {
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
        .filter_map(|i| {
            Some(IngressKey::new(
                i.metadata.namespace.clone()?,
                i.metadata.name.clone()?,
            ))
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

fn add(total: &mut ActionCounts, more: &ActionCounts) {
    total.applied += more.applied;
    total.cloud_reads += more.cloud_reads;
    total.cloud_writes += more.cloud_writes;
}
