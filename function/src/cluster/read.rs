//! Consistent reads: the [`ClusterView`] of one Ingress, and every Ingress of the cluster.
//!
//! Every GET and LIST leaves `resourceVersion` unset, which the apiserver serves as a quorum
//! read (kubernetes-triggers.md §3.1): we act on what we read, so a stale cache is not allowed.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Api;
use serde::de::DeserializeOwned;

use super::{status_code, ClusterClient, ClusterError};
use crate::model::backends::traffic_is_local;
use crate::model::class::is_ours;
use crate::model::refs::{ingress_refs, IngressRefs};
use crate::model::ClusterView;

/// Label carrying the owning Service of an EndpointSlice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The only Secret data keys the model reads (tencent-cloud.md §1.5); nothing else leaves here.
/// `tls.crt` is the public certificate chain: kept so that a changed certificate is seen
/// (its hash marks our upload); `tls.key` never is.
pub const KEPT_SECRET_KEYS: [&str; 3] = ["qcloud_cert_id", "qcloud_ca_cert_id", "tls.crt"];

/// TkeServiceConfig's API (tencent-cloud.md §1.8); served only where TKE installed the CRD.
pub(super) fn tke_service_config_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cloud.tencent.com", "v1alpha1", "TkeServiceConfig"),
        "tkeserviceconfigs",
    )
}

/// GET that maps any 404 (object missing, or resource not served) to `None`. kube's own
/// `get_opt` checks only the Status `reason`, which a non-Status 404 body does not carry.
pub(super) async fn get_optional<K>(api: &Api<K>, name: &str) -> Result<Option<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(error) if status_code(&error) == Some(404) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Every object of a LIST, following `continue` tokens page by page.
pub(super) async fn list_all<K>(
    api: &Api<K>,
    params: ListParams,
    page_size: u32,
) -> Result<Vec<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.limit(page_size);
    let mut items = Vec::new();
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(items),
        }
    }
}

/// The Secret with only the certificate-id keys: no `tls.key`, no `stringData`, and no
/// annotations (kubectl's last-applied-configuration would carry the whole data again).
pub fn strip_secret(secret: Secret) -> Secret {
    let data = secret.data.map(|data| {
        data.into_iter()
            .filter(|(key, _)| KEPT_SECRET_KEYS.contains(&key.as_str()))
            .collect::<BTreeMap<_, _>>()
    });
    Secret {
        metadata: ObjectMeta {
            name: secret.metadata.name,
            namespace: secret.metadata.namespace,
            uid: secret.metadata.uid,
            resource_version: secret.metadata.resource_version,
            ..ObjectMeta::default()
        },
        type_: secret.type_,
        data,
        immutable: secret.immutable,
        string_data: None,
    }
}

impl ClusterClient {
    /// Everything one Ingress needs, or `None` when the Ingress does not exist.
    pub async fn view(&self, ns: &str, name: &str) -> Result<Option<ClusterView>, ClusterError> {
        let target = format!("{ns}/{name}");
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
        let Some(ingress) = get_optional(&ingresses, name)
            .await
            .map_err(|e| ClusterError::api("get ingress", &target, e))?
        else {
            return Ok(None);
        };
        let refs = ingress_refs(&ingress);
        let (ingress_class, services, endpoint_slices, nodes, secrets, tke_service_config) = futures::try_join!(
            self.read_ingress_class(&refs),
            self.read_services(ns, &refs),
            self.read_endpoint_slices(ns, refs.needs_endpoint_slices, &refs.services),
            self.read_nodes(&refs),
            self.read_secrets(ns, &refs),
            self.read_tke_service_config(ns, &refs),
        )?;
        // NodePort mode reads slices only for `externalTrafficPolicy: Local` Services, which
        // are known once the Services are read.
        let mut endpoint_slices = endpoint_slices;
        if !refs.needs_endpoint_slices {
            let local: BTreeSet<String> = services
                .iter()
                .filter(|(_, s)| traffic_is_local(s))
                .map(|(n, _)| n.clone())
                .collect();
            endpoint_slices = self.read_endpoint_slices(ns, true, &local).await?;
        }
        // The readiness gate is only ever ours to set: no Pod read for another class.
        let pods = if refs.needs_endpoint_slices && is_ours(&ingress, ingress_class.as_ref()) {
            self.read_gated_pods(ns, endpoint_slices.values().flatten())
                .await?
        } else {
            Default::default()
        };
        Ok(Some(ClusterView {
            ingress,
            ingress_class,
            services,
            endpoint_slices,
            nodes,
            secrets,
            tke_service_config,
            uploaded_certs: Default::default(),
            pods,
        }))
    }

    /// Every Ingress of every namespace, paged.
    pub async fn list_ingresses(&self) -> Result<Vec<Ingress>, ClusterError> {
        let ingresses: Api<Ingress> = Api::all(self.client.clone());
        list_all(&ingresses, ListParams::default(), self.page_size)
            .await
            .map_err(|e| ClusterError::api("list ingresses", "all namespaces", e))
    }

    /// Every Ingress of `namespace` (or of the cluster), paged, served from the apiserver's
    /// cache (`resourceVersion=0`): for mapping changes to Ingresses only, never for acting on
    /// (a missed one is caught by its own trigger or the sweep).
    pub async fn list_ingresses_cached(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<Ingress>, ClusterError> {
        let ingresses: Api<Ingress> = match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        list_all(
            &ingresses,
            ListParams::default().match_any(),
            self.page_size,
        )
        .await
        .map_err(|e| ClusterError::api("list ingresses", namespace.unwrap_or("all namespaces"), e))
    }

    async fn read_ingress_class(
        &self,
        refs: &IngressRefs,
    ) -> Result<Option<IngressClass>, ClusterError> {
        let Some(name) = &refs.ingress_class else {
            return Ok(None);
        };
        let classes: Api<IngressClass> = Api::all(self.client.clone());
        get_optional(&classes, name)
            .await
            .map_err(|e| ClusterError::api("get ingressclass", name, e))
    }

    async fn read_services(
        &self,
        ns: &str,
        refs: &IngressRefs,
    ) -> Result<BTreeMap<String, Service>, ClusterError> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let found = try_join_all(refs.services.iter().map(|name| {
            let services = &services;
            async move {
                get_optional(services, name)
                    .await
                    .map(|service| service.map(|s| (name.clone(), s)))
                    .map_err(|e| ClusterError::api("get service", format!("{ns}/{name}"), e))
            }
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn read_endpoint_slices(
        &self,
        ns: &str,
        needed: bool,
        services: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Vec<EndpointSlice>>, ClusterError> {
        if !needed {
            return Ok(BTreeMap::new());
        }
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let found = try_join_all(services.iter().map(|name| {
            let slices = &slices;
            async move {
                let selector = format!("{SERVICE_NAME_LABEL}={name}");
                list_all(
                    slices,
                    ListParams::default().labels(&selector),
                    self.page_size,
                )
                .await
                .map(|items| (name.clone(), items))
                .map_err(|e| {
                    ClusterError::api("list endpointslices", format!("{ns} {selector}"), e)
                })
            }
        }))
        .await?;
        Ok(found
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .collect())
    }

    async fn read_nodes(&self, refs: &IngressRefs) -> Result<Vec<Node>, ClusterError> {
        if !refs.needs_nodes {
            return Ok(Vec::new());
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        list_all(&nodes, ListParams::default(), self.page_size)
            .await
            .map_err(|e| ClusterError::api("list nodes", "cluster", e))
    }

    pub(super) async fn read_secrets(
        &self,
        ns: &str,
        refs: &IngressRefs,
    ) -> Result<BTreeMap<String, Secret>, ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let found = try_join_all(refs.tls_secrets.iter().map(|name| {
            let secrets = &secrets;
            async move {
                get_optional(secrets, name)
                    .await
                    .map(|secret| secret.map(|s| (name.clone(), strip_secret(s))))
                    .map_err(|e| ClusterError::api("get secret", format!("{ns}/{name}"), e))
            }
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    pub(super) async fn read_tke_service_config(
        &self,
        ns: &str,
        refs: &IngressRefs,
    ) -> Result<Option<serde_json::Value>, ClusterError> {
        let Some(name) = &refs.tke_service_config else {
            return Ok(None);
        };
        let configs: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &tke_service_config_resource());
        let found = get_optional(&configs, name)
            .await
            .map_err(|e| ClusterError::api("get tkeserviceconfig", format!("{ns}/{name}"), e))?;
        found.map(serde_json::to_value).transpose().map_err(|e| {
            ClusterError::api(
                "decode tkeserviceconfig",
                format!("{ns}/{name}"),
                kube::Error::SerdeError(e),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn stripped_secret_keeps_only_certificate_ids_and_the_public_certificate() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "cert", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"tls.key\":\"c2VjcmV0\"}}"},
                "labels": {"a": "b"}
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.key": "c2VjcmV0",
                "tls.crt": "Y2VydA==",
                "qcloud_cert_id": "SWQxMjM=",
                "qcloud_ca_cert_id": "Q0Ex"
            },
            "stringData": {"tls.key": "secret"}
        }))
        .unwrap();
        let stripped = strip_secret(secret);
        let data = stripped.data.clone().unwrap();
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["qcloud_ca_cert_id", "qcloud_cert_id", "tls.crt"]
        );
        assert_eq!(data["qcloud_cert_id"], ByteString(b"Id123".to_vec()));
        assert!(stripped.string_data.is_none());
        assert!(stripped.metadata.annotations.is_none());
        assert_eq!(stripped.metadata.name.as_deref(), Some("cert"));
        assert_eq!(stripped.metadata.uid.as_deref(), Some("u1"));
        let debug = format!("{stripped:?}");
        assert!(!debug.contains("tls.key") && !debug.contains("last-applied"));
    }
}
