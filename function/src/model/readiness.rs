//! The Pod readiness gate of direct access (tencent-cloud.md §1.6, tke-annotations.md §4): a
//! Pod that lists [`READINESS_GATE`] in `spec.readinessGates` is not Ready until the
//! controller sets that condition, which TKE does once the Pod's target is bound on the CLB.
//! A rollout then waits for the CLB. Pure: the Pod facts come in, the weights and the Pods
//! to mark go out.
//!
//! Which endpoints need a Pod read: only not-ready, not-terminating ones that name a Pod
//! (`targetRef`). An unmet gate keeps the Pod not Ready, so its endpoint shows
//! `ready: false`; a cluster whose Pods are all Ready costs no Pod read at all.
//!
//! What a Pod waiting for the gate weighs: TKE registers it (its CLB health check keeps
//! traffic off a backend that does not answer yet) and sets the gate once it is bound, so
//! such a Pod is a serving target ([`TargetWeight::Serve`]), not a drained one as
//! [`super::graceful`] would make a not-ready endpoint. The gate alone never makes a Pod
//! Ready: Ready also needs `ContainersReady`, so setting it while the containers still start
//! is safe, and a Pod whose gate is met but whose containers are not ready is an ordinary
//! not-ready endpoint again (it drains), unless its containers are ready and only the
//! EndpointSlice has not caught up yet.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use serde::Serialize;

use super::desired::DesiredListener;
use super::graceful::TargetWeight;
use super::lb::{Backend, ListenerKey, RuleKey, TargetKey};

/// The readiness gate condition type TKE's direct access uses.
/// ASSUMPTION (tke-annotations.md §4 and tencent-cloud.md §1.6: the mechanism is confirmed,
/// this exact type string is U, taken from public Pod dumps): correct it here only.
pub const READINESS_GATE: &str = "cloud.tencent.com/load-balancer-backendgroup-ready";

/// Pod condition the kubelet sets when every container passes its readiness probe.
const CONTAINERS_READY: &str = "ContainersReady";

/// What the gate needs of one Pod, from a fresh GET.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodGate {
    pub name: String,
    pub uid: String,
    /// The version read: the status patch is conditional on it.
    pub resource_version: String,
    /// `spec.readinessGates` names [`READINESS_GATE`].
    pub declares: bool,
    /// `status.conditions` has [`READINESS_GATE`] at `"True"`: never written again.
    pub met: bool,
    /// `status.conditions` has `ContainersReady` at `"True"`.
    pub containers_ready: bool,
}

impl PodGate {
    /// The Pod as the gate sees it.
    pub fn of(pod: &Pod) -> PodGate {
        let condition = |kind: &str| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == kind && c.status == "True")
        };
        let declares = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .into_iter()
            .flatten()
            .any(|g| g.condition_type == READINESS_GATE);
        PodGate {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            resource_version: pod.metadata.resource_version.clone().unwrap_or_default(),
            declares,
            met: condition(READINESS_GATE),
            containers_ready: condition(CONTAINERS_READY),
        }
    }

    /// Declares the gate and it is not met yet: the Pod waits for the CLB.
    pub fn awaits_clb(&self) -> bool {
        self.declares && !self.met
    }

    /// The weight of this Pod's not-ready, not-terminating endpoint when the gate decides it;
    /// `None` leaves it to the graceful rules. Waiting for the CLB, or met with ready
    /// containers (the Pod is Ready, its EndpointSlice not yet): it serves.
    fn not_ready_weight(&self) -> Option<TargetWeight> {
        (self.awaits_clb() || (self.declares && self.containers_ready))
            .then_some(TargetWeight::Serve)
    }
}

/// The Pod a not-ready, not-terminating endpoint names (in the slice's own namespace), or
/// `None` when the endpoint is ready, terminating, or names no Pod there.
pub fn not_ready_pod(ep: &Endpoint) -> Option<&str> {
    let c = ep.conditions.as_ref();
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    if ready || terminating {
        return None;
    }
    let r = ep.target_ref.as_ref()?;
    (r.kind.as_deref() == Some("Pod"))
        .then_some(r.name.as_deref())
        .flatten()
        .filter(|n| !n.is_empty())
}

/// The Pods to read for the gate: those of not-ready, not-terminating endpoints in `slices`
/// of namespace `ns` (a targetRef elsewhere is not a Pod of these Services). Empty when every
/// endpoint is ready.
pub fn pods_to_read<'a>(
    ns: &str,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeSet<String> {
    slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|ep| {
            ep.target_ref
                .as_ref()
                .and_then(|r| r.namespace.as_deref())
                .is_none_or(|n| n == ns)
        })
        .filter_map(not_ready_pod)
        .map(str::to_string)
        .collect()
}

/// The weight the gate gives endpoint `ep`, given the Pods read (`None`: the graceful rules
/// decide; so does a Pod that was not read or is gone).
pub fn endpoint_weight(ep: &Endpoint, pods: &BTreeMap<String, PodGate>) -> Option<TargetWeight> {
    pods.get(not_ready_pod(ep)?)?.not_ready_weight()
}

/// A Pod waiting for the gate and the CLB rules that route to it (listener, rule, target),
/// for each rule where the desired state has one of its IPs as a serving target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GatedPod {
    pub pod: PodGate,
    pub routes: Vec<(ListenerKey, RuleKey, TargetKey)>,
}

/// The Pods of `pods` waiting for the gate, with their routes in the desired `listeners`. A Pod's IPs are
/// the addresses of the endpoints naming it.
pub fn gated_pods(
    listeners: &BTreeMap<ListenerKey, DesiredListener>,
    slices: &BTreeMap<String, Vec<EndpointSlice>>,
    pods: &BTreeMap<String, PodGate>,
) -> Vec<GatedPod> {
    let mut ips: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ep in slices
        .values()
        .flatten()
        .flat_map(|s| s.endpoints.iter().flatten())
    {
        if let Some(pod) =
            not_ready_pod(ep).filter(|p| pods.get(*p).is_some_and(PodGate::awaits_clb))
        {
            ips.entry(pod)
                .or_default()
                .extend(ep.addresses.iter().map(String::as_str));
        }
    }
    ips.into_iter()
        .filter_map(|(name, ips)| {
            let routes = listeners
                .iter()
                .flat_map(|(lk, l)| l.rules.iter().map(move |(rk, r)| (lk, rk, r)))
                .flat_map(|(lk, rk, r)| {
                    r.targets
                        .iter()
                        .filter(|(t, w)| {
                            w.serves() && matches!(&t.backend, Backend::EniIp(ip) if ips.contains(ip.as_str()))
                        })
                        .map(move |(t, _)| (*lk, rk.clone(), t.clone()))
                })
                .collect();
            Some(GatedPod {
                pod: pods.get(name)?.clone(),
                routes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::desired::DesiredRule;
    use crate::model::lb::Domain;

    fn pod(gates: &[&str], conditions: &[(&str, &str)]) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p1", "uid": "u1", "resourceVersion": "7"},
            "spec": {
                "containers": [{"name": "c", "image": "i"}],
                "readinessGates": gates.iter().map(|g| serde_json::json!({"conditionType": g})).collect::<Vec<_>>(),
            },
            "status": {
                "conditions": conditions.iter().map(|(t, s)| serde_json::json!({"type": t, "status": s})).collect::<Vec<_>>(),
            },
        }))
        .unwrap()
    }

    fn endpoint(ip: &str, ready: bool, terminating: bool, pod: Option<&str>) -> serde_json::Value {
        let mut ep = serde_json::json!({
            "addresses": [ip],
            "conditions": {"ready": ready, "terminating": terminating},
        });
        if let Some(p) = pod {
            ep["targetRef"] = serde_json::json!({"kind": "Pod", "name": p, "namespace": "shop"});
        }
        ep
    }

    fn slice(eps: Vec<serde_json::Value>) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s"},
            "addressType": "IPv4",
            "ports": [{"port": 8080}],
            "endpoints": eps,
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_is_read_only_for_a_not_ready_endpoint_that_names_it() {
        let s = slice(vec![
            endpoint("10.0.0.1", true, false, Some("ready")),
            endpoint("10.0.0.2", false, true, Some("terminating")),
            endpoint("10.0.0.3", false, false, Some("starting")),
            endpoint("10.0.0.4", false, false, None),
        ]);
        assert_eq!(
            pods_to_read("shop", [&s]),
            BTreeSet::from(["starting".to_string()])
        );
        assert!(pods_to_read("other", [&s]).is_empty());
        let all_ready = slice(vec![endpoint("10.0.0.1", true, false, Some("ready"))]);
        assert!(pods_to_read("shop", [&all_ready]).is_empty());
    }

    #[test]
    fn the_gate_and_the_containers_are_read_from_the_pod() {
        let g = PodGate::of(&pod(&[READINESS_GATE], &[("ContainersReady", "True")]));
        assert!(g.declares && !g.met && g.containers_ready && g.awaits_clb());
        assert_eq!((g.name.as_str(), g.resource_version.as_str()), ("p1", "7"));
        let met = PodGate::of(&pod(&[READINESS_GATE], &[(READINESS_GATE, "True")]));
        assert!(met.met && !met.awaits_clb());
        let other = PodGate::of(&pod(&["example.com/other"], &[]));
        assert!(!other.declares && !other.awaits_clb());
        let false_ = PodGate::of(&pod(&[READINESS_GATE], &[(READINESS_GATE, "False")]));
        assert!(false_.awaits_clb());
    }

    #[test]
    fn a_pod_waiting_for_the_clb_is_registered_to_serve_and_others_follow_the_graceful_rules() {
        let pods = |p: Pod| BTreeMap::from([("p1".to_string(), PodGate::of(&p))]);
        let ep: Endpoint =
            serde_json::from_value(endpoint("10.0.0.3", false, false, Some("p1"))).unwrap();
        let waiting = pods(pod(&[READINESS_GATE], &[]));
        assert_eq!(endpoint_weight(&ep, &waiting), Some(TargetWeight::Serve));
        // Met, containers ready: the slice has not caught up with a Ready Pod.
        let caught_up = pods(pod(
            &[READINESS_GATE],
            &[(READINESS_GATE, "True"), ("ContainersReady", "True")],
        ));
        assert_eq!(endpoint_weight(&ep, &caught_up), Some(TargetWeight::Serve));
        // Met, containers not ready: an ordinary not-ready Pod.
        let failing = pods(pod(&[READINESS_GATE], &[(READINESS_GATE, "True")]));
        assert_eq!(endpoint_weight(&ep, &failing), None);
        // No gate, or a Pod not read (gone): the graceful rules decide.
        assert_eq!(endpoint_weight(&ep, &pods(pod(&[], &[]))), None);
        assert_eq!(endpoint_weight(&ep, &BTreeMap::new()), None);
        // A terminating endpoint of a waiting Pod still drains.
        let term: Endpoint =
            serde_json::from_value(endpoint("10.0.0.3", false, true, Some("p1"))).unwrap();
        assert_eq!(endpoint_weight(&term, &waiting), None);
    }

    fn rule(targets: &[(&str, TargetWeight)]) -> DesiredRule {
        DesiredRule {
            certificate: None,
            targets: targets
                .iter()
                .map(|(ip, w)| {
                    (
                        TargetKey {
                            backend: Backend::EniIp(ip.to_string()),
                            port: 8080,
                        },
                        *w,
                    )
                })
                .collect(),
        }
    }

    fn key(url: &str) -> RuleKey {
        RuleKey {
            domain: Domain::Name("shop.example.com".into()),
            url: url.into(),
        }
    }

    #[test]
    fn a_waiting_pod_is_routed_by_every_rule_that_serves_one_of_its_ips() {
        let mut listeners = BTreeMap::new();
        listeners.insert(
            ListenerKey::HTTP_80,
            DesiredListener {
                rules: BTreeMap::from([
                    (key("/a"), rule(&[("10.0.0.3", TargetWeight::Serve)])),
                    (key("/b"), rule(&[("10.0.0.3", TargetWeight::Fixed(0))])),
                    (key("/c"), rule(&[("10.0.0.9", TargetWeight::Serve)])),
                ]),
                ..DesiredListener::default()
            },
        );
        let slices = BTreeMap::from([(
            "svc".to_string(),
            vec![slice(vec![
                endpoint("10.0.0.3", false, false, Some("p1")),
                endpoint("10.0.0.9", false, false, Some("plain")),
            ])],
        )]);
        let pods = BTreeMap::from([
            ("p1".to_string(), PodGate::of(&pod(&[READINESS_GATE], &[]))),
            ("plain".to_string(), PodGate::of(&pod(&[], &[]))),
        ]);
        let gated = gated_pods(&listeners, &slices, &pods);
        assert_eq!(gated.len(), 1, "only the Pod that declares the gate");
        assert_eq!(gated[0].pod.name, "p1");
        let urls: Vec<&str> = gated[0]
            .routes
            .iter()
            .map(|(_, r, _)| r.url.as_str())
            .collect();
        assert_eq!(urls, ["/a"], "a weight-0 rule does not route to it");
    }
}
