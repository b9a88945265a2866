//! The sweep's view of the cluster: one paged LIST per kind it needs, then every Ingress's
//! [`ClusterView`] built from it (issue 9 §1). Secrets and TkeServiceConfigs are read by name,
//! only those a selected Ingress names (a LIST of Secrets would carry every key of the cluster).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::ListParams;
use kube::Api;
use serde::de::DeserializeOwned;

use super::read::{list_all, SERVICE_NAME_LABEL};
use super::{ClusterClient, ClusterError};
use crate::model::backends::traffic_is_local;
use crate::model::refs::{ingress_refs, IngressRefs};
use crate::model::ClusterView;

/// What the sweep read of the cluster, to build views from.
#[derive(Debug, Default)]
pub struct Snapshot {
    classes: BTreeMap<String, IngressClass>,
    /// (namespace, name) → Service.
    services: BTreeMap<(String, String), Service>,
    /// (namespace, Service name) → its EndpointSlices.
    slices: BTreeMap<(String, String), Vec<EndpointSlice>>,
    nodes: Vec<Node>,
    /// Per Ingress (namespace, name): what it names by name (Secrets, TkeServiceConfig).
    named: BTreeMap<(String, String), Named>,
    /// Requests made to the Kubernetes API (LIST pages and GETs).
    pub requests: u32,
}

#[derive(Debug, Default)]
struct Named {
    secrets: BTreeMap<String, k8s_openapi::api::core::v1::Secret>,
    tke_service_config: Option<serde_json::Value>,
}

fn key_of(ingress: &Ingress) -> (String, String) {
    (
        ingress.metadata.namespace.clone().unwrap_or_default(),
        ingress.metadata.name.clone().unwrap_or_default(),
    )
}

impl ClusterClient {
    /// Reads what `ingresses` need: Services, IngressClasses, Nodes (when some backend is in
    /// NodePort mode), EndpointSlices (when some Ingress uses direct access), each by one paged
    /// LIST; the Secrets and TkeServiceConfigs they name, by GET. All or nothing.
    pub async fn snapshot(&self, ingresses: &[&Ingress]) -> Result<Snapshot, ClusterError> {
        let refs: Vec<_> = ingresses.iter().map(|i| (*i, ingress_refs(i))).collect();
        let mut snap = Snapshot::default();
        let services: Vec<Service> = self
            .list_counted(&mut snap.requests, "list services", true)
            .await?;
        snap.services = services
            .into_iter()
            .map(|s| (key_of_meta(&s.metadata), s))
            .collect();
        let classes: Vec<IngressClass> = self
            .list_counted(
                &mut snap.requests,
                "list ingressclasses",
                refs.iter().any(|(_, r)| r.ingress_class.is_some()),
            )
            .await?;
        snap.classes = classes
            .into_iter()
            .filter_map(|c| Some((c.metadata.name.clone()?, c)))
            .collect();
        snap.nodes = self
            .list_counted(
                &mut snap.requests,
                "list nodes",
                refs.iter().any(|(_, r)| r.needs_nodes),
            )
            .await?;
        // NodePort mode needs slices only for `externalTrafficPolicy: Local` Services.
        let local_backend = |ingress: &Ingress, r: &IngressRefs| {
            let (ns, _) = key_of(ingress);
            r.needs_nodes
                && r.services.iter().any(|s| {
                    snap.services
                        .get(&(ns.clone(), s.clone()))
                        .is_some_and(traffic_is_local)
                })
        };
        let need_slices = refs
            .iter()
            .any(|(i, r)| r.needs_endpoint_slices || local_backend(i, r));
        let slices: Vec<EndpointSlice> = self
            .list_counted(&mut snap.requests, "list endpointslices", need_slices)
            .await?;
        for slice in slices {
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned()
            else {
                continue;
            };
            let ns = slice.metadata.namespace.clone().unwrap_or_default();
            snap.slices.entry((ns, service)).or_default().push(slice);
        }
        for (ingress, r) in &refs {
            if r.tls_secrets.is_empty() && r.tke_service_config.is_none() {
                continue;
            }
            let (ns, _) = key_of(ingress);
            let secrets = self.read_secrets(&ns, r).await?;
            let tke_service_config = self.read_tke_service_config(&ns, r).await?;
            snap.requests +=
                (r.tls_secrets.len() + usize::from(r.tke_service_config.is_some())) as u32;
            snap.named.insert(
                key_of(ingress),
                Named {
                    secrets,
                    tke_service_config,
                },
            );
        }
        Ok(snap)
    }

    /// Every object of a kind across namespaces (nothing when not `needed`), counting pages.
    async fn list_counted<K>(
        &self,
        requests: &mut u32,
        op: &'static str,
        needed: bool,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        if !needed {
            return Ok(Vec::new());
        }
        let api: Api<K> = Api::all(self.client.clone());
        let items = list_all(&api, ListParams::default(), self.page_size)
            .await
            .map_err(|e| ClusterError::api(op, "all namespaces", e))?;
        *requests += items.len().div_ceil(self.page_size as usize).max(1) as u32;
        Ok(items)
    }
}

fn key_of_meta(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

impl Snapshot {
    /// The view of one Ingress, as [`ClusterClient::view`] would read it now.
    pub fn view(&self, ingress: &Ingress) -> ClusterView {
        let refs = ingress_refs(ingress);
        let (ns, _) = key_of(ingress);
        let named = self.named.get(&key_of(ingress));
        ClusterView {
            ingress_class: refs
                .ingress_class
                .as_ref()
                .and_then(|c| self.classes.get(c))
                .cloned(),
            services: refs
                .services
                .iter()
                .filter_map(|s| {
                    let found = self.services.get(&(ns.clone(), s.clone()))?;
                    Some((s.clone(), found.clone()))
                })
                .collect(),
            // Read only when some Ingress needs them (direct access or a Local Service); the
            // model looks at them only in those two cases.
            endpoint_slices: refs
                .services
                .iter()
                .filter_map(|s| {
                    let found = self.slices.get(&(ns.clone(), s.clone()))?;
                    Some((s.clone(), found.clone()))
                })
                .collect(),
            nodes: if refs.needs_nodes {
                self.nodes.clone()
            } else {
                Vec::new()
            },
            secrets: named.map(|n| n.secrets.clone()).unwrap_or_default(),
            tke_service_config: named.and_then(|n| n.tke_service_config.clone()),
            uploaded_certs: Default::default(),
            // No Pod reads here: a Pod waiting for the readiness gate looks drained to the
            // sweep, so its bound target shows a change and its own run reads the Pod.
            pods: Default::default(),
            ingress: ingress.clone(),
        }
    }
}
