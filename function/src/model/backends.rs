//! Ingress backend → CLB targets. NodePort mode: every eligible node's CVM instance with the
//! Service's nodePort (with `externalTrafficPolicy: Local`, only Nodes that run an endpoint).
//! Direct mode (`direct-access`): every endpoint's IP (an ENI IP under VPC-CNI) with the
//! endpoint port. Each target carries the weight [`super::graceful`] gives it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressServiceBackend;

use super::graceful::{self, Graceful, TargetWeight};
use super::lb::{Backend, TargetKey};
use super::problem::{codes, Problem};
use super::readiness::{self, PodGate};
use super::view::ClusterView;

/// The Service port an Ingress backend names, by number or by name.
fn service_port<'a>(svc: &'a Service, backend: &IngressServiceBackend) -> Option<&'a ServicePort> {
    let ports = svc.spec.as_ref()?.ports.as_ref()?;
    let want = backend.port.as_ref()?;
    if let Some(n) = want.number {
        return ports.iter().find(|p| p.port == n);
    }
    let name = want.name.as_deref()?;
    ports.iter().find(|p| p.name.as_deref() == Some(name))
}

fn port_u16(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p > 0)
}

/// The targets of one Service backend (target → weight), or the problem that prevents them.
/// An empty map is not an error: the rule stays and answers 503 until targets appear.
/// `graceful` is the Ingress's grace-shutdown switches (direct access only).
pub fn service_targets(
    view: &ClusterView,
    backend: &IngressServiceBackend,
    direct: bool,
    graceful: Graceful,
) -> Result<BTreeMap<TargetKey, TargetWeight>, Problem> {
    let name = &backend.name;
    let svc = view.services.get(name).ok_or_else(|| {
        Problem::warning(
            codes::SERVICE_NOT_FOUND,
            format!("Service {name} not found; its CLB rules keep the targets they have until it is back"),
        )
    })?;
    let svc_type = svc
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP");
    let port = service_port(svc, backend).ok_or_else(|| {
        Problem::warning(
            codes::SERVICE_PORT_NOT_FOUND,
            format!("Service {name} has no port {}", describe_port(backend)),
        )
    })?;
    if direct {
        if svc_type == "ExternalName" {
            return Err(Problem::warning(
                codes::SERVICE_TYPE,
                format!("Service {name} is ExternalName; direct access needs endpoints"),
            ));
        }
        return Ok(endpoint_targets(
            slices_of(view, name),
            port.name.as_deref(),
            graceful,
            &view.pods,
        ));
    }
    if svc_type != "NodePort" && svc_type != "LoadBalancer" {
        return Err(Problem::warning(
            codes::SERVICE_TYPE,
            format!("Service {name} is {svc_type}; NodePort mode needs NodePort or LoadBalancer"),
        ));
    }
    let node_port = port.node_port.and_then(port_u16).ok_or_else(|| {
        Problem::warning(
            codes::SERVICE_PORT_NOT_FOUND,
            format!("Service {name} port {} has no nodePort", port.port),
        )
    })?;
    let endpoint_nodes =
        traffic_is_local(svc).then(|| endpoint_node_weights(slices_of(view, name)));
    Ok(view
        .nodes
        .iter()
        .filter_map(|node| {
            let (id, node_weight) = graceful::node_target(node)?;
            let weight = match &endpoint_nodes {
                None => node_weight,
                Some(on_nodes) => node_weight.max(*on_nodes.get(node.metadata.name.as_deref()?)?),
            };
            Some((
                TargetKey {
                    backend: Backend::Instance(id),
                    port: node_port,
                },
                weight,
            ))
        })
        .collect())
}

/// `spec.externalTrafficPolicy` value that keeps traffic on the Node it arrives at (core/v1).
pub const EXTERNAL_TRAFFIC_POLICY_LOCAL: &str = "Local";

/// `externalTrafficPolicy: Local`: in NodePort mode only Nodes that run an endpoint are
/// targets, so the cluster side must read the Service's EndpointSlices too.
pub fn traffic_is_local(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some(EXTERNAL_TRAFFIC_POLICY_LOCAL)
}

fn slices_of<'a>(view: &'a ClusterView, service: &str) -> &'a [EndpointSlice] {
    view.endpoint_slices
        .get(service)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Per Node name, how its endpoints make it a target under `externalTrafficPolicy: Local`:
/// a ready endpoint serves; only terminating or not-ready ones drain (the Node keeps its
/// target at weight 0 until they are gone). Nodes without endpoints are absent.
fn endpoint_node_weights(slices: &[EndpointSlice]) -> BTreeMap<&str, TargetWeight> {
    let mut out: BTreeMap<&str, TargetWeight> = BTreeMap::new();
    for ep in slices.iter().flat_map(|s| s.endpoints.iter().flatten()) {
        let Some(node) = ep.node_name.as_deref() else {
            continue;
        };
        let weight = graceful::endpoint_weight(ep.conditions.as_ref(), Graceful::default())
            .unwrap_or(TargetWeight::Drain);
        let slot = out.entry(node).or_insert(weight);
        *slot = (*slot).min(weight);
    }
    out
}

fn describe_port(backend: &IngressServiceBackend) -> String {
    match &backend.port {
        Some(p) => match (&p.number, &p.name) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => format!("{name:?}"),
            (None, None) => "(none given)".into(),
        },
        None => "(none given)".into(),
    }
}

/// Endpoints of the slices, on the slice port whose name matches the Service port's (unnamed
/// matches unnamed), weighted by their conditions.
fn endpoint_targets(
    slices: &[EndpointSlice],
    port_name: Option<&str>,
    graceful: Graceful,
    pods: &BTreeMap<String, PodGate>,
) -> BTreeMap<TargetKey, TargetWeight> {
    let mut out = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
            continue;
        }
        let port = slice
            .ports
            .as_ref()
            .and_then(|ps| {
                ps.iter().find(|p| {
                    p.name.as_deref().filter(|n| !n.is_empty())
                        == port_name.filter(|n| !n.is_empty())
                })
            })
            .and_then(|p| p.port)
            .and_then(port_u16);
        let Some(port) = port else { continue };
        for ep in slice.endpoints.iter().flatten() {
            // A Pod waiting for the readiness gate must be registered for the gate to open.
            let weight = readiness::endpoint_weight(ep, pods)
                .or_else(|| graceful::endpoint_weight(ep.conditions.as_ref(), graceful));
            let Some(weight) = weight else {
                continue;
            };
            for addr in &ep.addresses {
                // The same IP twice (a Pod replaced in place): serving wins.
                let slot = out
                    .entry(TargetKey {
                        backend: Backend::EniIp(addr.clone()),
                        port,
                    })
                    .or_insert(weight);
                *slot = (*slot).min(weight);
            }
        }
    }
    out
}
