//! Graceful backends (tke-annotations.md §4, kubernetes-triggers.md §3.5): which weight each
//! target should have while its Pod or Node comes and goes, so that a rollout or a drain never
//! sends a request to a backend that is going away and never leaves a rule without one that
//! serves. Pure.
//!
//! - Direct access: a terminating endpoint (`conditions.terminating: true`, with
//!   `enable-grace-shutdown`) or a not-ready one (with `enable-grace-shutdown-tkex`) keeps its
//!   target at weight 0 until it leaves the EndpointSlice; then it is deregistered.
//! - NodePort: a Node that is NotReady, cordoned (`spec.unschedulable`) or tainted for removal
//!   by the cluster autoscaler keeps its targets at weight 0 until it is deleted.
//! - A serving target's weight is the user's (console) once registered; only weight 0 — what a
//!   drain leaves behind — is raised back to the default when the backend serves again.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointConditions;
use serde::Serialize;

use super::annotations::parse_bool;
use super::lb::DEFAULT_WEIGHT;
use super::problem::{codes, Problem};
use super::refs::{node_instance_id, node_is_excluded, node_is_ready, TAINT_TO_BE_DELETED};

/// `"true"`: a terminating Pod's target goes to weight 0 and stays bound until the endpoint is
/// gone (INTL annotation page + graceful-shutdown page, C).
pub const GRACE_SHUTDOWN: &str = "ingress.cloud.tencent.com/enable-grace-shutdown";
/// `"true"`: a not-ready endpoint's target goes to weight 0 instead of being deregistered (C).
pub const GRACE_SHUTDOWN_TKEX: &str = "ingress.cloud.tencent.com/enable-grace-shutdown-tkex";

/// Both graceful-shutdown switches are on unless the Ingress turns them off.
/// ASSUMPTION (tke-annotations.md §4: "Default-on since v2.2.0" is U, 3P-TCCLI): a TKE user of a
/// recent controller expects a rollout not to drop requests without writing any annotation.
pub const GRACE_DEFAULT: bool = true;

/// What the weight of one desired target should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetWeight {
    /// A serving backend with no weight asked by the Ingress: registered at
    /// [`DEFAULT_WEIGHT`]; once bound its weight is left to the user, except 0 (a drain's
    /// leftover), which is raised back to [`DEFAULT_WEIGHT`].
    Serve,
    /// A weight the Ingress asks for: asserted on every run.
    Fixed(u16),
    /// A backend going away: weight 0 while it stays bound, never registered anew.
    Drain,
}

impl TargetWeight {
    /// The weight a new registration of this target carries; `None` = do not register.
    pub fn register_weight(self) -> Option<u16> {
        match self {
            TargetWeight::Serve => Some(DEFAULT_WEIGHT),
            TargetWeight::Fixed(w) => Some(w),
            TargetWeight::Drain => None,
        }
    }

    /// The weight to write on a target bound at `bound`; `None` = leave it as it is.
    pub fn weight_change(self, bound: u16) -> Option<u16> {
        let want = match self {
            TargetWeight::Serve if bound == 0 => DEFAULT_WEIGHT,
            TargetWeight::Serve => return None,
            TargetWeight::Fixed(w) => w,
            TargetWeight::Drain => 0,
        };
        (want != bound).then_some(want)
    }

    /// The target takes traffic once the plan has run.
    pub fn serves(self) -> bool {
        !matches!(self, TargetWeight::Drain | TargetWeight::Fixed(0))
    }
}

/// The two switches, as the Ingress's annotations set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Graceful {
    /// `enable-grace-shutdown`: terminating endpoints drain.
    pub terminating: bool,
    /// `enable-grace-shutdown-tkex`: not-ready endpoints drain.
    pub not_ready: bool,
}

impl Default for Graceful {
    fn default() -> Self {
        Graceful {
            terminating: GRACE_DEFAULT,
            not_ready: GRACE_DEFAULT,
        }
    }
}

/// Reads the switches; a value that is not a bool keeps the default and is a Warning.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Graceful, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut flag = |key: &str| match annotations.get(key).map(|v| v.trim()) {
        None | Some("") => GRACE_DEFAULT,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            problems.push(Problem::warning(
                codes::INVALID_ANNOTATION,
                format!("{key}: {v:?} is not a bool; the default ({GRACE_DEFAULT}) applies"),
            ));
            GRACE_DEFAULT
        }),
    };
    let graceful = Graceful {
        terminating: flag(GRACE_SHUTDOWN),
        not_ready: flag(GRACE_SHUTDOWN_TKEX),
    };
    (graceful, problems)
}

/// The weight of a direct-access endpoint's target; `None` = not a target at all.
/// A terminating endpoint is judged by `terminating` alone (the apiserver also marks it not
/// ready). Missing conditions count as ready and not terminating (EndpointSlice API).
pub fn endpoint_weight(
    conditions: Option<&EndpointConditions>,
    graceful: Graceful,
) -> Option<TargetWeight> {
    let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    if terminating {
        graceful.terminating.then_some(TargetWeight::Drain)
    } else if !ready {
        graceful.not_ready.then_some(TargetWeight::Drain)
    } else {
        Some(TargetWeight::Serve)
    }
}

/// The Node is being taken out: NotReady, cordoned, or about to be removed by the autoscaler.
pub fn node_is_draining(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let autoscaled_away = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .any(|taint| taint.key == TAINT_TO_BE_DELETED);
    cordoned || autoscaled_away || !node_is_ready(node)
}

/// The CVM instance of a Node in NodePort mode and its weight; `None` when the Node is not a
/// target (excluded by label, or no CVM behind it: super/virtual nodes).
pub fn node_target(node: &Node) -> Option<(String, TargetWeight)> {
    if node_is_excluded(node) {
        return None;
    }
    let weight = if node_is_draining(node) {
        TargetWeight::Drain
    } else {
        TargetWeight::Serve
    };
    Some((node_instance_id(node)?, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(ready: Option<bool>, terminating: Option<bool>) -> EndpointConditions {
        EndpointConditions {
            ready,
            serving: None,
            terminating,
        }
    }

    #[test]
    fn a_serving_target_is_registered_at_the_default_and_its_console_weight_is_left_alone() {
        assert_eq!(TargetWeight::Serve.register_weight(), Some(DEFAULT_WEIGHT));
        assert_eq!(TargetWeight::Serve.weight_change(37), None);
        assert_eq!(TargetWeight::Serve.weight_change(DEFAULT_WEIGHT), None);
    }

    #[test]
    fn a_serving_target_left_at_zero_by_a_drain_is_raised_back() {
        assert_eq!(TargetWeight::Serve.weight_change(0), Some(DEFAULT_WEIGHT));
    }

    #[test]
    fn a_draining_target_goes_to_zero_and_is_never_registered() {
        assert_eq!(TargetWeight::Drain.register_weight(), None);
        assert_eq!(TargetWeight::Drain.weight_change(10), Some(0));
        assert_eq!(TargetWeight::Drain.weight_change(0), None);
        assert!(!TargetWeight::Drain.serves());
    }

    #[test]
    fn a_fixed_weight_is_asserted_on_every_difference() {
        assert_eq!(TargetWeight::Fixed(50).register_weight(), Some(50));
        assert_eq!(TargetWeight::Fixed(50).weight_change(10), Some(50));
        assert_eq!(TargetWeight::Fixed(50).weight_change(50), None);
    }

    #[test]
    fn terminating_and_not_ready_endpoints_drain_by_default() {
        let g = Graceful::default();
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), Some(true))), g),
            Some(TargetWeight::Drain)
        );
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), None)), g),
            Some(TargetWeight::Drain)
        );
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(true), Some(false))), g),
            Some(TargetWeight::Serve)
        );
        assert_eq!(endpoint_weight(None, g), Some(TargetWeight::Serve));
    }

    #[test]
    fn switching_grace_off_drops_the_endpoint_at_once() {
        let off = Graceful {
            terminating: false,
            not_ready: false,
        };
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), Some(true))), off),
            None
        );
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), None)), off),
            None
        );
        // Only tkex off: a terminating endpoint still drains.
        let tkex_off = Graceful {
            terminating: true,
            not_ready: false,
        };
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), Some(true))), tkex_off),
            Some(TargetWeight::Drain)
        );
        assert_eq!(
            endpoint_weight(Some(&conditions(Some(false), None)), tkex_off),
            None
        );
    }

    #[test]
    fn grace_annotations_parse_bools_and_warn_on_anything_else() {
        let ann = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(parse(&BTreeMap::new()), (Graceful::default(), vec![]));
        let (g, p) = parse(&ann(GRACE_SHUTDOWN, "false"));
        assert!(!g.terminating && g.not_ready && p.is_empty());
        let (g, p) = parse(&ann(GRACE_SHUTDOWN_TKEX, "off"));
        assert_eq!(g, Graceful::default());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, codes::INVALID_ANNOTATION);
    }

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    fn ready_node(spec: serde_json::Value, ready: &str) -> Node {
        let mut spec = spec;
        spec["providerID"] = "qcloud:///1/ins-abc".into();
        node(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        }))
    }

    #[test]
    fn a_cordoned_not_ready_or_autoscaled_node_drains_and_a_labelled_one_is_no_target() {
        let serve = Some(("ins-abc".to_string(), TargetWeight::Serve));
        let drain = Some(("ins-abc".to_string(), TargetWeight::Drain));
        assert_eq!(
            node_target(&ready_node(serde_json::json!({}), "True")),
            serve
        );
        assert_eq!(
            node_target(&ready_node(
                serde_json::json!({"unschedulable": true}),
                "True"
            )),
            drain
        );
        assert_eq!(
            node_target(&ready_node(serde_json::json!({}), "False")),
            drain
        );
        assert_eq!(
            node_target(&ready_node(
                serde_json::json!({"taints": [{"key": TAINT_TO_BE_DELETED, "effect": "NoSchedule"}]}),
                "True"
            )),
            drain
        );
        let mut labelled = ready_node(serde_json::json!({}), "True");
        labelled.metadata.labels = Some(BTreeMap::from([(
            super::super::refs::LABEL_EXCLUDE_FROM_LB.to_string(),
            String::new(),
        )]));
        assert_eq!(node_target(&labelled), None);
    }
}
