//! Which Pods waiting for the readiness gate may have it now ([`crate::model::readiness`]):
//! those whose target is bound, at a weight above 0, on every rule of the CLB as read that
//! the desired state routes to them. Pure: decided from a read made after the writes, never
//! from what the plan meant to do.

use super::{CloudLb, ListenerRef, RuleRef};
use crate::model::lb::{ListenerKey, RuleKey, TargetKey};
use crate::model::readiness::{GatedPod, PodGate};

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
    fn a_target_bound_at_weight_zero_does_not_open_the_gate() {
        let lb = lb(vec![cloud_rule("/a", &[("10.0.0.1", 0)])]);
        let pods = [gated("p", true, &[("/a", "10.0.0.1")])];
        assert!(gates_to_open(&pods, Some(&lb)).is_empty());
    }
}
