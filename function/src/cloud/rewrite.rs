//! The CLB's redirect API (tke-annotations.md §2.2, SDK): AutoRewrite, ManualRewrite,
//! DeleteRewrite (async writes, waited on) and DescribeRewrite (a read).

use serde::{Deserialize, Serialize};

use super::clb::{config_error, nullable, RuleOutput, WriteResponse};
use super::client::CloudClient;
use super::error::CloudError;

/// DeleteRewrite's answer for a pair that does not exist [SDK].
pub const REWRITE_NOT_FOUND: &str = "InvalidParameter.SomeRewriteNotFound";

/// One redirect pair (`RewriteLocationMap`): the source rule answers with a redirect to the
/// target rule. `RewriteCode` needs `TakeUrl` and `SourceDomain` (the source rule's domain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RewriteLocationMap {
    pub source_location_id: String,
    pub target_location_id: String,
    /// 301, 302 or 307.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_url: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_domain: Option<String>,
}

/// ManualRewrite and DeleteRewrite take the same request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RewriteRequest {
    pub load_balancer_id: String,
    pub source_listener_id: String,
    pub target_listener_id: String,
    pub rewrite_infos: Vec<RewriteLocationMap>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AutoRewriteRequest {
    pub load_balancer_id: String,
    /// The HTTPS:443 listener.
    pub listener_id: String,
    /// Empty = every domain of the listener.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Parallel to `domains`: 301, 302 or 307.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrite_codes: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub take_urls: Vec<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRewriteRequest {
    pub load_balancer_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_listener_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_location_ids: Vec<String>,
}

/// Each redirect's source rule, with its `RewriteTarget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DescribeRewriteResponse {
    #[serde(deserialize_with = "nullable")]
    pub rewrite_set: Vec<RuleOutput>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

impl CloudClient {
    pub async fn auto_rewrite(
        &self,
        req: &AutoRewriteRequest,
    ) -> Result<WriteResponse, CloudError> {
        self.clb_async("AutoRewrite", req).await
    }

    pub async fn manual_rewrite(&self, req: &RewriteRequest) -> Result<WriteResponse, CloudError> {
        if req.rewrite_infos.is_empty() {
            return Err(config_error("ManualRewrite", "no RewriteInfos"));
        }
        self.clb_async("ManualRewrite", req).await
    }

    pub async fn delete_rewrite(&self, req: &RewriteRequest) -> Result<WriteResponse, CloudError> {
        if req.rewrite_infos.is_empty() {
            return Err(config_error("DeleteRewrite", "no RewriteInfos"));
        }
        self.clb_async("DeleteRewrite", req).await
    }

    pub async fn describe_rewrite(
        &self,
        req: &DescribeRewriteRequest,
    ) -> Result<DescribeRewriteResponse, CloudError> {
        self.clb("DescribeRewrite", req).await
    }
}
