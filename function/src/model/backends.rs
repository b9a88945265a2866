//! Ingress backend → CLB targets. NodePort mode: every eligible node's CVM instance with the
//! Service's nodePort. Direct mode (`direct-access`): every ready endpoint's IP (an ENI IP
//! under VPC-CNI) with the endpoint port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressServiceBackend;

use super::lb::{Backend, TargetKey, DEFAULT_WEIGHT};
use super::problem::{codes, Problem};
use super::refs::node_backend_instance;
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
pub fn service_targets(
    view: &ClusterView,
    backend: &IngressServiceBackend,
    direct: bool,
) -> Result<BTreeMap<TargetKey, u16>, Problem> {
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
        let slices = view
            .endpoint_slices
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        return Ok(endpoint_targets(slices, port.name.as_deref()));
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
    Ok(view
        .nodes
        .iter()
        .filter_map(node_backend_instance)
        .map(|id| {
            (
                TargetKey {
                    backend: Backend::Instance(id),
                    port: node_port,
                },
                DEFAULT_WEIGHT,
            )
        })
        .collect())
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

/// Ready endpoints of the slices, on the slice port whose name matches the Service port's
/// (unnamed matches unnamed). A missing `ready` condition counts as ready (EndpointSlice API).
fn endpoint_targets(slices: &[EndpointSlice], port_name: Option<&str>) -> BTreeMap<TargetKey, u16> {
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
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            for addr in &ep.addresses {
                out.insert(
                    TargetKey {
                        backend: Backend::EniIp(addr.clone()),
                        port,
                    },
                    DEFAULT_WEIGHT,
                );
            }
        }
    }
    out
}
