//! DescribeQuota: the quotas clb-sim enforces ([`super::model::Limits`]) as the account's
//! quota list (tke-annotations.md §5: `QuotaSet[]{QuotaId, QuotaCurrent?, QuotaLimit}`).

use serde_json::{json, Value};

use super::clb::Outcome;
use super::model::SimState;
use super::params::{ApiResult, Obj};

pub(crate) fn describe_quota(s: &SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&[])?;
    let l = &s.limits;
    let clbs = |t: &str| s.load_balancers.iter().filter(|lb| lb.lb_type == t).count();
    // Per-CLB, per-listener and per-rule quotas have no single current value: null.
    let quota = |id: &str, current: Option<usize>, limit: usize| -> Value {
        json!({"QuotaId": id, "QuotaCurrent": current, "QuotaLimit": limit})
    };
    Ok(Outcome::new(
        json!({"QuotaSet": [
            quota("TOTAL_OPEN_CLB_QUOTA", Some(clbs("OPEN")), l.clbs_per_type),
            quota("TOTAL_INTERNAL_CLB_QUOTA", Some(clbs("INTERNAL")), l.clbs_per_type),
            quota("TOTAL_LISTENER_QUOTA", None, l.listeners_per_clb),
            quota("TOTAL_LISTENER_RULE_QUOTA", None, l.rules_per_listener),
            quota("TOTAL_TARGET_BIND_QUOTA", None, l.targets_per_rule),
        ]}),
        Vec::new(),
    ))
}
