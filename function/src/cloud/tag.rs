//! Typed Tag API 2018-08-13 calls: adding and removing tags on an existing CLB, and finding
//! the regions our CLBs live in (the Tag API is global: one call sees every region).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::clb::{nullable, TagInfo};
use super::client::{CloudClient, TAG_SERVICE, TAG_VERSION};
use super::error::CloudError;

/// Most resources (and most tags) one TagResources/UnTagResources call takes.
pub const MAX_PER_REQUEST: usize = 10;

/// The six-segment name of a CLB for the Tag API, with the account (uin) left empty.
///
/// Assumption (tencent-cloud.md §3, [3P]): Terraform's provider tags CLBs as
/// `qcs::clb:<region>:uin/:clb/<lb-id>` in production, which saves us discovering the
/// account id; the generic form has `uin/<uin>`.
pub fn clb_resource_name(region: &str, load_balancer_id: &str) -> String {
    format!("qcs::clb:{region}:uin/:clb/{load_balancer_id}")
}

/// The region and CLB id a six-segment name `qcs::clb:<region>:uin/<uin>:clb/<lb-id>` points
/// at; `None` for anything else (another service, a malformed name).
pub fn clb_of_resource_name(name: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = name.split(':').collect();
    let [qcs, empty, service, region, uin, resource] = parts.as_slice() else {
        return None;
    };
    let id = resource.strip_prefix("clb/")?;
    let ok = *qcs == "qcs"
        && empty.is_empty()
        && *service == "clb"
        && uin.starts_with("uin/")
        && crate::model::cross_region::region_of(region).is_some()
        && !id.is_empty()
        && !id.contains('/');
    ok.then_some((*region, id))
}

/// Most resources one GetResources page returns (tencent-cloud.md §3: default 50, max 200):
/// a cluster with fewer CLBs costs one call.
pub const GET_RESOURCES_MAX_RESULTS: u32 = 200;

/// Most GetResources pages one search reads: a token the API keeps returning must not loop.
const GET_RESOURCES_MAX_PAGES: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagFilter {
    pub tag_key: String,
    /// Any of these values (at most 10).
    pub tag_value: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcesRequest {
    /// At most 6, all must match.
    pub tag_filters: Vec<TagFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination_token: Option<String>,
    pub max_results: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ResourceTagMapping {
    #[serde(deserialize_with = "nullable")]
    pub resource: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct GetResourcesResponse {
    /// Empty on the last page.
    #[serde(deserialize_with = "nullable")]
    pub pagination_token: String,
    #[serde(deserialize_with = "nullable")]
    pub resource_tag_mapping_list: Vec<ResourceTagMapping>,
}

/// The regions CLBs were found in, and the GetResources pages read to find them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaggedRegions {
    pub regions: BTreeSet<String>,
    pub pages: u32,
}

/// The regions of the CLBs among `names`; a name that is not a CLB's is logged and skipped
/// (it proves nothing about any region).
fn clb_regions<'a>(names: impl Iterator<Item = &'a str>, out: &mut BTreeSet<String>) {
    for name in names {
        match clb_of_resource_name(name) {
            Some((region, _)) => {
                out.insert(region.to_string());
            }
            None => tracing::warn!(
                resource = name,
                "GetResources: not a CLB resource name, ignored"
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourcesRequest {
    /// Six-segment names, at most 10.
    pub resource_list: Vec<String>,
    /// At most 10; an existing key gets the new value.
    pub tags: Vec<TagInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnTagResourcesRequest {
    /// Six-segment names, at most 10.
    pub resource_list: Vec<String>,
    /// At most 10.
    pub tag_keys: Vec<String>,
}

/// A resource the Tag API could not (un)tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FailedResource {
    #[serde(deserialize_with = "nullable")]
    pub resource: String,
    #[serde(deserialize_with = "nullable")]
    pub code: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TagBatchResponse {
    #[serde(deserialize_with = "nullable")]
    pub failed_resources: Vec<FailedResource>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

fn check_sizes(action: &str, resources: usize, tags: usize) -> Result<(), CloudError> {
    if resources == 0 || tags == 0 {
        return Err(CloudError::Config(format!(
            "{action}: needs at least one resource and one tag"
        )));
    }
    if resources > MAX_PER_REQUEST || tags > MAX_PER_REQUEST {
        return Err(CloudError::Config(format!(
            "{action}: at most {MAX_PER_REQUEST} resources and {MAX_PER_REQUEST} tags per call"
        )));
    }
    Ok(())
}

fn fail_on_partial(action: &str, resp: TagBatchResponse) -> Result<TagBatchResponse, CloudError> {
    if resp.failed_resources.is_empty() {
        return Ok(resp);
    }
    let message = resp
        .failed_resources
        .iter()
        .map(|f| format!("{}: {}", f.code, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(CloudError::PartialFailure {
        action: action.to_string(),
        failed: resp
            .failed_resources
            .into_iter()
            .map(|f| f.resource)
            .collect(),
        message,
        request_id: resp.request_id,
    })
}

impl CloudClient {
    /// Adds or overwrites tags. Any failed resource makes the call an error.
    pub async fn tag_resources(
        &self,
        req: &TagResourcesRequest,
    ) -> Result<TagBatchResponse, CloudError> {
        const ACTION: &str = "TagResources";
        check_sizes(ACTION, req.resource_list.len(), req.tags.len())?;
        let resp = self
            .call_typed(TAG_SERVICE, TAG_VERSION, ACTION, req)
            .await?;
        fail_on_partial(ACTION, resp)
    }

    /// Removes tag keys. Any failed resource makes the call an error.
    pub async fn untag_resources(
        &self,
        req: &UnTagResourcesRequest,
    ) -> Result<TagBatchResponse, CloudError> {
        const ACTION: &str = "UnTagResources";
        check_sizes(ACTION, req.resource_list.len(), req.tag_keys.len())?;
        let resp = self
            .call_typed(TAG_SERVICE, TAG_VERSION, ACTION, req)
            .await?;
        fail_on_partial(ACTION, resp)
    }

    /// Every region holding a CLB with all of `tags`, by GetResources (global: whatever
    /// region this client names), every page. Any failed page fails the whole search: a
    /// partial answer proves nothing about the regions it left out.
    pub async fn regions_tagged(&self, tags: &[(&str, &str)]) -> Result<TaggedRegions, CloudError> {
        let mut req = GetResourcesRequest {
            tag_filters: tags
                .iter()
                .map(|(k, v)| TagFilter {
                    tag_key: k.to_string(),
                    tag_value: vec![v.to_string()],
                })
                .collect(),
            pagination_token: None,
            max_results: GET_RESOURCES_MAX_RESULTS,
        };
        let mut out = TaggedRegions::default();
        loop {
            let resp: GetResourcesResponse = self
                .call_typed(TAG_SERVICE, TAG_VERSION, "GetResources", &req)
                .await?;
            out.pages += 1;
            clb_regions(
                resp.resource_tag_mapping_list
                    .iter()
                    .map(|m| m.resource.as_str()),
                &mut out.regions,
            );
            if resp.pagination_token.is_empty() {
                return Ok(out);
            }
            if out.pages >= GET_RESOURCES_MAX_PAGES
                || req.pagination_token.as_deref() == Some(resp.pagination_token.as_str())
            {
                return Err(CloudError::Config(format!(
                    "GetResources: still paging after {} pages",
                    out.pages
                )));
            }
            req.pagination_token = Some(resp.pagination_token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clb_resource_name_is_six_segments_with_empty_uin() {
        assert_eq!(
            clb_resource_name("ap-guangzhou", "lb-abc"),
            "qcs::clb:ap-guangzhou:uin/:clb/lb-abc"
        );
    }

    #[test]
    fn a_six_segment_clb_name_gives_its_region_and_id() {
        assert_eq!(
            clb_of_resource_name("qcs::clb:ap-shanghai:uin/100001:clb/lb-abc"),
            Some(("ap-shanghai", "lb-abc"))
        );
        assert_eq!(
            clb_of_resource_name("qcs::clb:ap-guangzhou:uin/:clb/lb-1"),
            Some(("ap-guangzhou", "lb-1"))
        );
    }

    #[test]
    fn a_malformed_or_foreign_name_gives_no_region() {
        for bad in [
            "",
            "lb-abc",
            "qcs::clb:ap-shanghai:uin/1:clb/",
            "qcs::clb::uin/1:clb/lb-1",
            "qcs::clb:Shanghai:uin/1:clb/lb-1",
            "qcs::cvm:ap-shanghai:uin/1:instance/ins-1",
            "qcs::clb:ap-shanghai:1:clb/lb-1",
            "qcs:x:clb:ap-shanghai:uin/1:clb/lb-1",
            "qcs::clb:ap-shanghai:uin/1:clb/lb-1:extra",
            "qcs::clb:ap-shanghai:uin/1:clb/lb-1/x",
        ] {
            assert_eq!(clb_of_resource_name(bad), None, "{bad}");
        }
        let mut regions = BTreeSet::new();
        clb_regions(
            ["qcs::clb:ap-beijing:uin/:clb/lb-2", "garbage"].into_iter(),
            &mut regions,
        );
        assert_eq!(regions, BTreeSet::from(["ap-beijing".to_string()]));
    }

    #[test]
    fn get_resources_serializes_filters_and_reads_pages() {
        let req = GetResourcesRequest {
            tag_filters: vec![TagFilter {
                tag_key: "tke-clusterId".into(),
                tag_value: vec!["cls-1".into()],
            }],
            pagination_token: None,
            max_results: GET_RESOURCES_MAX_RESULTS,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"TagFilters": [{"TagKey": "tke-clusterId", "TagValue": ["cls-1"]}],
                               "MaxResults": 200})
        );
        let resp: GetResourcesResponse = serde_json::from_value(serde_json::json!({
            "PaginationToken": null,
            "ResourceTagMappingList": [{"Resource": "qcs::clb:ap-shanghai:uin/1:clb/lb-1", "Tags": []}],
            "RequestId": "r"
        }))
        .unwrap();
        assert_eq!(resp.pagination_token, "");
        assert_eq!(resp.resource_tag_mapping_list.len(), 1);
    }

    #[test]
    fn requests_serialize_with_api_names() {
        let req = UnTagResourcesRequest {
            resource_list: vec!["r".into()],
            tag_keys: vec!["tke-clusterId".into()],
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"ResourceList": ["r"], "TagKeys": ["tke-clusterId"]})
        );
    }

    #[test]
    fn failed_resources_become_a_partial_failure_error() {
        let resp: TagBatchResponse = serde_json::from_value(serde_json::json!({
            "FailedResources": [{"Resource": "qcs::clb:r:uin/:clb/lb-1", "Code": "X", "Message": null}],
            "RequestId": "req"
        }))
        .unwrap();
        match fail_on_partial("TagResources", resp) {
            Err(CloudError::PartialFailure {
                failed, request_id, ..
            }) => {
                assert_eq!(failed, vec!["qcs::clb:r:uin/:clb/lb-1".to_string()]);
                assert_eq!(request_id, "req");
            }
            other => panic!("{other:?}"),
        }
        let ok: TagBatchResponse =
            serde_json::from_value(serde_json::json!({"FailedResources": null})).unwrap();
        assert!(fail_on_partial("TagResources", ok).is_ok());
        assert!(matches!(
            check_sizes("T", 11, 1),
            Err(CloudError::Config(_))
        ));
        assert!(matches!(check_sizes("T", 1, 0), Err(CloudError::Config(_))));
    }
}
