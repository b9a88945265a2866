//! Typed Tag API 2018-08-13 calls: adding and removing tags on an existing CLB.

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
