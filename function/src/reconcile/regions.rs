//! Which regions hold our CLBs (`cross-region-id`, tke-annotations.md §4): the cluster's own
//! (the client's configured region), every region a live Ingress names, and every region the
//! global Tag API (GetResources by our tags) finds one in: a CLB left by a deleted Ingress
//! whose annotation went with it is found there. The operator's optional `CLB_EXTRA_REGIONS`
//! are searched too (legacy: needed only while GetResources fails). Ownership is still proven
//! by tags in each region, on a DescribeLoadBalancers there; this only says where to look.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::Ingress;

use super::Reconciler;
use crate::cloud::CloudClient;
use crate::model::cross_region;
use crate::model::ownership::{TAG_CLUSTER_ID, TAG_INGRESS_UID};

/// Where to search for our CLBs, and what could not be checked.
#[derive(Debug, Default)]
pub(super) struct SearchRegions {
    pub regions: Vec<String>,
    /// GetResources pages read.
    pub tag_reads: u32,
    /// Why regions beyond `regions` may hold CLBs of ours nobody looked at (the Tag API
    /// failed): nothing may be concluded about them, so the run does not end clean.
    pub unchecked: Option<String>,
}

/// Environment variable: comma-separated regions to search for our CLBs besides the
/// cluster's and those live Ingresses name.
pub const ENV_CLB_EXTRA_REGIONS: &str = "CLB_EXTRA_REGIONS";

/// The regions of a `CLB_EXTRA_REGIONS` value, or the first entry that is not a region.
pub fn extra_regions(value: Option<&str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in value.unwrap_or_default().split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let region = cross_region::region_of(part).ok_or_else(|| part.to_string())?;
        if !out.iter().any(|r| r == region) {
            out.push(region.to_string());
        }
    }
    Ok(out)
}

/// The region an Ingress asks its CLB to live in, if it names a valid one (a refused value
/// never gets this far: the model reports it and nothing is done).
pub fn wanted(ingress: &Ingress) -> Option<String> {
    let annotations = ingress.metadata.annotations.as_ref()?;
    cross_region::parse(annotations).ok().flatten()
}

/// The regions `ingresses` name, in order, without duplicates.
pub fn named_by(ingresses: &[Ingress]) -> BTreeSet<String> {
    ingresses.iter().filter_map(wanted).collect()
}

impl Reconciler {
    /// The client calling in the region an Ingress's CLB lives in.
    pub(super) fn client_in(&self, wanted: Option<&str>) -> CloudClient {
        self.cloud
            .in_region(cross_region::region_or(wanted, self.cloud.region()))
    }

    /// The cluster's region and the extra ones, without duplicates: where every lookup
    /// searches whatever an Ingress names.
    pub(super) fn fixed_regions(&self) -> Vec<String> {
        let mut out = vec![self.cloud.region().to_string()];
        for r in &self.opts.extra_regions {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    /// The fixed regions and those GetResources finds a CLB of our cluster in (of the
    /// Ingress `uid` too, if given). If GetResources fails, the fixed regions alone, and
    /// `unchecked` says so.
    pub(super) async fn search_regions(&self, uid: Option<&str>) -> SearchRegions {
        let mut out = SearchRegions {
            regions: self.fixed_regions(),
            ..SearchRegions::default()
        };
        let mut tags = vec![(TAG_CLUSTER_ID, self.cluster_id.as_str())];
        tags.extend(uid.map(|u| (TAG_INGRESS_UID, u)));
        match self.cloud.regions_tagged(&tags).await {
            Ok(found) => {
                out.tag_reads = found.pages;
                for r in found.regions {
                    if !out.regions.contains(&r) {
                        out.regions.push(r);
                    }
                }
            }
            Err(e) => {
                out.tag_reads = 1;
                tracing::error!(error = %e, "GetResources failed: only the cluster's region and CLB_EXTRA_REGIONS are searched");
                out.unchecked = Some(format!(
                    "finding the regions of our CLBs (GetResources): {e}; other regions not checked"
                ));
            }
        }
        out
    }

    /// The fixed regions other than `region`: where a lookup by UID searches besides it.
    pub(super) fn other_regions(&self, region: &str) -> Vec<String> {
        self.fixed_regions()
            .into_iter()
            .filter(|r| r != region)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn extra_regions_are_a_comma_list_of_regions_and_a_bad_entry_is_named() {
        assert_eq!(extra_regions(None), Ok(vec![]));
        assert_eq!(
            extra_regions(Some(" ap-shanghai, ,ap-beijing,ap-shanghai")),
            Ok(vec!["ap-shanghai".to_string(), "ap-beijing".to_string()])
        );
        assert_eq!(
            extra_regions(Some("ap-shanghai,Beijing")),
            Err("Beijing".into())
        );
    }

    #[test]
    fn the_regions_named_are_those_of_valid_cross_region_ids_only() {
        let ing = |pairs: &[(&str, &str)]| {
            let mut i = Ingress::default();
            i.metadata.annotations = Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            );
            i
        };
        let vpc = (crate::model::annotations::CROSS_VPC_ID, "vpc-1");
        let named = named_by(&[
            ing(&[(cross_region::CROSS_REGION_ID, "ap-shanghai"), vpc]),
            ing(&[(cross_region::CROSS_REGION_ID, "ap-shanghai"), vpc]),
            ing(&[(cross_region::CROSS_REGION_ID, "Not A Region"), vpc]),
            ing(&[(cross_region::CROSS_REGION_ID, "ap-beijing")]),
            Ingress::default(),
        ]);
        assert_eq!(named, BTreeSet::from(["ap-shanghai".to_string()]));
    }
}
