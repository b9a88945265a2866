//! Which Pods waiting for the readiness gate may have it now ([`crate::model::readiness`]):
//! those whose target is bound, at a weight above 0, on every rule of the CLB as read that
//! the desired state routes to them. Pure: decided from a read made after the writes, never
//! from what the plan meant to do.

use std::collections::BTreeSet;

use super::{CloudLb, ListenerRef, RuleRef};
use crate::model::lb::{Backend, ListenerKey, RuleKey, TargetKey};
use crate::model::readiness::{not_ready_pod, GatedPod, PodGate};
use crate::model::refs::ingress_refs;
use crate::model::ClusterView;

/// The Pods of `gated` whose every route is bound and serving on `lb`. A Pod no rule routes
/// to (its Service is on no rule, or every rule gives it weight 0) waits: nothing proves the
/// CLB serves it.
pub fn gates_to_open<'a>(gated: &'a [GatedPod], lb: Option<&CloudLb>) -> Vec<&'a PodGate> {
    let Some(lb) = lb else {
        return Vec::new();
    };
    let serving = |(listener, rule, target): &(ListenerKey, RuleKey, TargetKey)| {
        let r = RuleRef {
            listener: ListenerRef {
                key: *listener,
                id: None,
            },
            key: rule.clone(),
            location_id: None,
        };
        lb.rule(&r).is_some_and(|(_, cloud_rule)| {
            cloud_rule
                .targets
                .iter()
                .any(|t| &t.key == target && t.weight > 0)
        })
    };
    gated
        .iter()
        .filter(|g| g.pod.awaits_clb() && !g.routes.is_empty() && g.routes.iter().all(serving))
        .map(|g| &g.pod)
        .collect()
}

/// For the sweep, which reads no Pods: `view` (direct access) has a not-ready endpoint naming
/// a Pod whose address no rule of `lb` binds. That Pod may be waiting for the gate and not
/// yet registered (a run that failed before registering it): only its own look, which reads
/// the Pod, can tell. A registered waiting Pod needs nothing here (the sweep sees its bound
/// target as a drain to make and runs the Ingress anyway). The cost stays with Pods that were
/// never ready: a cluster whose Pods are Ready never takes this path.
pub fn may_wait_unregistered(view: &ClusterView, lb: &CloudLb) -> bool {
    if !ingress_refs(&view.ingress).direct_access {
        return false;
    }
    let bound: BTreeSet<&str> = lb
        .listeners
        .iter()
        .flat_map(|l| &l.rules)
        .flat_map(|r| &r.targets)
        .filter_map(|t| match &t.key.backend {
            Backend::EniIp(ip) => Some(ip.as_str()),
            Backend::Instance(_) => None,
        })
        .collect();
    view.endpoint_slices
        .values()
        .flatten()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|ep| not_ready_pod(ep).is_some())
        .any(|ep| ep.addresses.iter().any(|a| !bound.contains(a.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lb::{Backend, Domain, LbType, Protocol};
    use crate::plan::{CloudListener, CloudRule, CloudTarget};

    fn target(ip: &str) -> TargetKey {
        TargetKey {
            backend: Backend::EniIp(ip.into()),
            port: 8080,
        }
    }

    fn key(domain: Domain, url: &str) -> RuleKey {
        RuleKey {
            domain,
            url: url.into(),
        }
    }

    fn cloud_rule(url: &str, targets: &[(&str, u16)]) -> CloudRule {
        CloudRule {
            location_id: format!("loc-{url}"),
            domain: "1.2.3.4".into(),
            url: url.into(),
            certificate: None,
            default_server: false,
            attributes: Default::default(),
            targets: targets
                .iter()
                .map(|(ip, w)| CloudTarget {
                    key: target(ip),
                    weight: *w,
                })
                .collect(),
            redirect: None,
        }
    }

    fn lb(rules: Vec<CloudRule>) -> CloudLb {
        CloudLb {
            id: "lb-1".into(),
            name: "n".into(),
            lb_type: LbType::Open,
            vips: vec!["1.2.3.4".into()],
            domain: None,
            status: 1,
            tags: Default::default(),
            listeners: vec![CloudListener {
                id: "lbl-1".into(),
                protocol: Protocol::Http,
                port: 80,
                name: "l".into(),
                certificate: None,
                sni: false,
                keepalive: None,
                rules,
            }],
            attributes: Default::default(),
        }
    }

    fn gated(name: &str, awaits: bool, routes: &[(&str, &str)]) -> GatedPod {
        GatedPod {
            pod: PodGate {
                name: name.into(),
                uid: format!("uid-{name}"),
                resource_version: "1".into(),
                declares: true,
                met: !awaits,
                containers_ready: false,
            },
            routes: routes
                .iter()
                .map(|(url, ip)| (ListenerKey::HTTP_80, key(Domain::Default, url), target(ip)))
                .collect(),
        }
    }

    fn names(pods: Vec<&PodGate>) -> Vec<&str> {
        pods.into_iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn a_pod_gets_the_gate_only_once_every_rule_routing_to_it_serves_it() {
        let lb = lb(vec![
            cloud_rule("/a", &[("10.0.0.1", 10), ("10.0.0.2", 10)]),
            cloud_rule("/b", &[("10.0.0.1", 10)]),
        ]);
        let pods = [
            gated("on-both", true, &[("/a", "10.0.0.1"), ("/b", "10.0.0.1")]),
            gated(
                "on-one-of-two",
                true,
                &[("/a", "10.0.0.2"), ("/b", "10.0.0.2")],
            ),
            gated("on-a-missing-rule", true, &[("/c", "10.0.0.1")]),
            gated("no-route", true, &[]),
            gated("already-met", false, &[("/a", "10.0.0.1")]),
        ];
        assert_eq!(names(gates_to_open(&pods, Some(&lb))), ["on-both"]);
        assert!(gates_to_open(&pods, None).is_empty());
    }

    #[test]
    fn the_sweep_looks_only_at_a_direct_access_ingress_with_an_unbound_not_ready_pod() {
        let view = |direct: &str, eps: serde_json::Value| ClusterView {
            ingress: serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web", "namespace": "shop",
                    "annotations": {"ingress.cloud.tencent.com/direct-access": direct}},
            }))
            .unwrap(),
            endpoint_slices: [(
                "pods".to_string(),
                vec![serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "pods-1"}, "addressType": "IPv4", "endpoints": eps,
                }))
                .unwrap()],
            )]
            .into(),
            ..ClusterView::default()
        };
        let ep = |ip: &str, ready: bool, pod: bool| {
            let mut e = serde_json::json!({"addresses": [ip], "conditions": {"ready": ready}});
            if pod {
                e["targetRef"] = serde_json::json!({"kind": "Pod", "name": ip});
            }
            e
        };
        let lb = lb(vec![cloud_rule("/a", &[("10.0.0.1", 0)])]);
        let unbound = serde_json::json!([ep("10.0.0.1", false, true), ep("10.0.0.2", false, true)]);
        assert!(may_wait_unregistered(&view("true", unbound.clone()), &lb));
        assert!(!may_wait_unregistered(&view("false", unbound), &lb));
        // Bound (at any weight), ready, or naming no Pod: nothing to look at.
        let quiet = serde_json::json!([
            ep("10.0.0.1", false, true),
            ep("10.0.0.3", true, true),
            ep("10.0.0.4", false, false),
        ]);
        assert!(!may_wait_unregistered(&view("true", quiet), &lb));
    }

    #[test]
    fn a_target_bound_at_weight_zero_does_not_open_the_gate() {
        let lb = lb(vec![cloud_rule("/a", &[("10.0.0.1", 0)])]);
        let pods = [gated("p", true, &[("/a", "10.0.0.1")])];
        assert!(gates_to_open(&pods, Some(&lb)).is_empty());
    }
}
