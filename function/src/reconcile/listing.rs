//! The two complete fresh lists every fleet-wide decision rests on (DESIGN §1): the CLBs
//! tagged with our cluster, then every Ingress. The sweep selects and finds orphans from
//! them, a shard picks its Ingresses from them, a gone Ingress's run finds orphans from them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::Ingress;

use super::regions::named_by;
use super::release::{orphans_of, pages, Orphans};
use super::{ReconcileError, Reconciler};
use crate::cloud::clb::LoadBalancer;
use crate::cloud::observe::cluster_load_balancers;

/// Every CLB of our cluster (by id) and every Ingress, listed in that order, fresh.
pub(super) struct Listing {
    pub lbs: BTreeMap<String, LoadBalancer>,
    pub ingresses: Vec<Ingress>,
    /// GetResources pages read to find the regions listed.
    pub tag_reads: u32,
    /// Regions that may hold CLBs of ours that were not listed ([`super::regions`]).
    pub unchecked: Option<String>,
}

impl Reconciler {
    /// The CLBs are listed before the Ingresses: a CLB is tagged only after its Ingress
    /// exists, so an Ingress created between the two lists is in the second and its CLB is
    /// safe. Both lists are complete or the call fails (a partial list proves nothing).
    ///
    /// The CLBs are listed in the cluster's region, `CLB_EXTRA_REGIONS` and the regions
    /// GetResources finds them in first; a region only the listed Ingresses name
    /// (`cross-region-id`) is listed after them, so the Ingresses are then listed once more:
    /// the order holds for every CLB listed.
    pub(super) async fn list_fleet(&self) -> Result<Listing, ReconcileError> {
        let search = self.search_regions(None).await;
        let fixed = search.regions;
        let mut lbs = self.list_regions(&fixed).await?;
        let mut ingresses = self.cluster.list_ingresses().await?;
        let more: Vec<String> = named_by(&ingresses)
            .into_iter()
            .filter(|r| !fixed.contains(r))
            .collect();
        if !more.is_empty() {
            lbs.extend(self.list_regions(&more).await?);
            ingresses = self.cluster.list_ingresses().await?;
        }
        Ok(Listing {
            lbs,
            ingresses,
            tag_reads: search.tag_reads,
            unchecked: search.unchecked,
        })
    }

    async fn list_regions(
        &self,
        regions: &[String],
    ) -> Result<BTreeMap<String, LoadBalancer>, ReconcileError> {
        let mut lbs = BTreeMap::new();
        for region in regions {
            let client = self.cloud.in_region(region);
            lbs.extend(cluster_load_balancers(&client, &self.cluster_id).await?);
        }
        Ok(lbs)
    }
}

impl Listing {
    /// The CLBs whose Ingress UID no listed Ingress has, measured against all of them.
    pub fn orphans(&self) -> Orphans {
        let uids: BTreeSet<String> = self
            .ingresses
            .iter()
            .filter_map(|i| i.metadata.uid.clone())
            .collect();
        Orphans {
            reads: pages(self.lbs.len()) + self.tag_reads,
            unchecked: self.unchecked.clone(),
            total: self.lbs.len(),
            lbs: orphans_of(self.lbs.values().cloned(), &uids),
        }
    }
}

/// Which of the two lists a [`Reconciler::list_fleet`] error came from.
pub(super) fn failed_list(e: &ReconcileError) -> &'static str {
    match e {
        ReconcileError::Cloud(_) => "listing CLBs",
        _ => "listing Ingresses",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::clb::TagInfo;
    use crate::model::ownership::TAG_INGRESS_UID;

    fn lb(id: &str, uid: &str) -> (String, LoadBalancer) {
        let lb = LoadBalancer {
            load_balancer_id: id.into(),
            tags: vec![TagInfo::new(TAG_INGRESS_UID, uid)],
            ..Default::default()
        };
        (id.into(), lb)
    }

    #[test]
    fn the_orphans_of_a_listing_are_the_clbs_no_listed_ingress_owns_measured_against_all() {
        let mut alive = Ingress::default();
        alive.metadata.uid = Some("alive".into());
        let listing = Listing {
            lbs: [lb("lb-1", "alive"), lb("lb-2", "gone")].into(),
            ingresses: vec![alive, Ingress::default()],
            tag_reads: 1,
            unchecked: None,
        };
        let orphans = listing.orphans();
        let ids: Vec<&str> = orphans
            .lbs
            .iter()
            .map(|l| l.load_balancer_id.as_str())
            .collect();
        assert_eq!(ids, vec!["lb-2"]);
        assert_eq!((orphans.total, orphans.reads), (2, 2));
    }
}
