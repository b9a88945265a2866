//! `kubernetes.io/ingress.extensiveParameters` may tune the CLB we create (ISP, zone, SLA,
//! IPv6, …), never what makes it one CLB of ours: how many are made, which tags mark them,
//! the token that keeps a retried create from making two, or the type the annotations chose.

use serde_json::{Map, Value};

use super::annotations::EXTENSIVE_PARAMETERS;
use super::lb::LbType;
use super::ownership::{TAG_CLUSTER_ID, TAG_CREATED_BY, TAG_INGRESS_UID, TAG_LIFECYCLE_OWNER};
use super::problem::{codes, Problem};

/// Tag keys that decide ownership or lifecycle: ours alone to set.
const OWNERSHIP_TAG_KEYS: [&str; 4] = [
    TAG_CREATED_BY,
    TAG_CLUSTER_ID,
    TAG_INGRESS_UID,
    TAG_LIFECYCLE_OWNER,
];

/// One E4026 problem per key that would change the count, ownership or identity of the CLB
/// we create; `lb_type` is the type the annotations chose (subnet: INTERNAL, else OPEN).
pub fn refused(params: &Map<String, Value>, lb_type: LbType) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut refuse = |key: &str, why: String| {
        out.push(Problem::error(
            codes::BAD_EXTENSIVE_PARAMETERS,
            format!("{EXTENSIVE_PARAMETERS}: {key} {why}"),
        ))
    };
    if let Some(n) = params.get("Number").filter(|n| n.as_u64() != Some(1)) {
        refuse(
            "Number",
            format!("{n} would create more than the one CLB we own"),
        );
    }
    if params.contains_key("ClientToken") {
        refuse(
            "ClientToken",
            "is ours: it keeps a retried create from making a second CLB".into(),
        );
    }
    if let Some(v) = params
        .get("LoadBalancerType")
        .filter(|v| v.as_str() != Some(lb_type.as_api()))
    {
        refuse(
            "LoadBalancerType",
            format!(
                "{v} differs from {} (set by {})",
                lb_type.as_api(),
                super::annotations::SUBNET_ID
            ),
        );
    }
    if let Some(v) = params.get("Forward").filter(|v| v.as_u64() != Some(1)) {
        refuse(
            "Forward",
            format!("{v}: only application CLBs (1) are managed"),
        );
    }
    if let Some(tags) = params.get("Tags") {
        match tags.as_array() {
            None => refuse("Tags", "must be a list of {TagKey, TagValue}".into()),
            Some(list) => {
                for key in list
                    .iter()
                    .filter_map(|t| t.get("TagKey").and_then(Value::as_str))
                    .filter(|k| OWNERSHIP_TAG_KEYS.contains(k))
                {
                    refuse("Tags", format!("may not set {key}: it records ownership"));
                }
            }
        }
    }
    out
}
