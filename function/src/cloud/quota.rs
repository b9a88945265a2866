//! `DescribeQuota`: the account's per-CLB limits (tke-annotations.md §5), so a plan is held
//! to the live quota rather than the defaults when it comes near them.

use serde::{Deserialize, Serialize};

use super::clb::nullable;
use super::client::CloudClient;
use super::error::CloudError;
use crate::model::limits::Quota;

/// DescribeQuota takes no parameters of its own.
#[derive(Debug, Clone, Default, Serialize)]
struct DescribeQuotaRequest {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct DescribeQuotaResponse {
    #[serde(deserialize_with = "nullable")]
    quota_set: Vec<QuotaEntry>,
}

/// One `Quota` of the answer; `QuotaCurrent` (null for per-CLB quotas) is not needed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct QuotaEntry {
    #[serde(deserialize_with = "nullable")]
    quota_id: String,
    quota_limit: Option<u64>,
}

impl CloudClient {
    /// The account's listener, rule and target quotas (a default where the answer has none).
    pub async fn describe_quota(&self) -> Result<Quota, CloudError> {
        let resp: DescribeQuotaResponse = self
            .clb("DescribeQuota", &DescribeQuotaRequest::default())
            .await?;
        Ok(Quota::from_quota_set(resp.quota_set.iter().filter_map(
            |q| q.quota_limit.map(|limit| (q.quota_id.as_str(), limit)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::limits::{QUOTA_RULES, QUOTA_TARGETS};

    #[test]
    fn the_answer_with_nulls_reads_as_the_quota_it_names() {
        let resp: DescribeQuotaResponse = serde_json::from_value(serde_json::json!({
            "QuotaSet": [
                {"QuotaId": "TOTAL_OPEN_CLB_QUOTA", "QuotaCurrent": 3, "QuotaLimit": 100},
                {"QuotaId": QUOTA_RULES, "QuotaCurrent": null, "QuotaLimit": 80},
                {"QuotaId": QUOTA_TARGETS, "QuotaCurrent": null, "QuotaLimit": null},
            ],
            "RequestId": "r-1"
        }))
        .unwrap();
        let q = Quota::from_quota_set(
            resp.quota_set
                .iter()
                .filter_map(|q| q.quota_limit.map(|l| (q.quota_id.as_str(), l))),
        );
        assert_eq!(q.rules_per_listener, 80);
        assert_eq!(q.targets_per_rule, Quota::DEFAULT.targets_per_rule);
    }
}
