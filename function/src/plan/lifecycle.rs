//! The plan's side of the lifecycle annotations (model/lifecycle.rs): CLB attributes and
//! lifecycle tags of a managed Ingress, and the one mark a `mode: skip` Ingress leaves.

use super::{Action, CloudLb, CloudView, Phases, Plan};
use crate::model::lifecycle::{self, LbAttributes, TAG_SKIP, TAG_SKIP_VALUE};
use crate::model::ownership;
use crate::model::Desired;

/// Adds the lifecycle tags (head, right after the CLB exists) and the attribute writes
/// (with the other modifications) a managed Ingress needs. A new CLB gets its lifecycle
/// owner in the create call itself, and its attributes diffed against a fresh CLB's.
pub(super) fn lb_actions(ph: &mut Phases, desired: &Desired, lb: Option<&CloudLb>) {
    let fresh = LbAttributes::new_clb();
    let have = match lb {
        Some(lb) => {
            let (set, unset) = lifecycle::tag_changes(&desired.lifecycle, &lb.tags);
            if !set.is_empty() {
                ph.head.push(Action::TagResources { tags: set });
            }
            if !unset.is_empty() {
                ph.head.push(Action::UnTagResources { keys: unset });
            }
            &lb.attributes
        }
        None => &fresh,
    };
    let change = lifecycle::attribute_changes(&desired.lifecycle.attributes, have);
    if change.delete_protect.is_some() || change.pass_to_target.is_some() {
        ph.modify.push(Action::ModifyLoadBalancerAttributes {
            delete_protect: change.delete_protect,
            pass_to_target: change.pass_to_target,
        });
    }
    if let Some(security_groups) = change.security_groups {
        ph.modify
            .push(Action::SetSecurityGroups { security_groups });
    }
}

/// The plan of an Ingress in `mode: skip`: nothing, except marking the CLB tagged for it
/// (once) so that its release keeps listeners and targets. A CLB not tagged for this
/// Ingress and cluster (an existLbId not adopted yet, or someone else's) is never written.
pub fn plan_skip(cloud: &CloudView, cluster_id: &str, ingress_uid: &str) -> Plan {
    let Some(lb) = cloud
        .load_balancer
        .as_ref()
        .filter(|lb| ownership::is_ours(&lb.tags, cluster_id, ingress_uid))
    else {
        return Plan::default();
    };
    let actions = if lifecycle::skip_marked(&lb.tags) {
        Vec::new()
    } else {
        vec![Action::TagResources {
            tags: [(TAG_SKIP.to_string(), TAG_SKIP_VALUE.to_string())].into(),
        }]
    };
    Plan {
        load_balancer_id: Some(lb.id.clone()),
        actions,
        problems: Vec::new(),
    }
}
