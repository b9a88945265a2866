//! What the cluster side observed for one Ingress: plain data handed to the pure model.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

/// Everything `desire` needs to compute the CLB of one Ingress, read by `cluster` with
/// consistent reads. Absent entries mean "looked for and not found": the model turns each
/// into a Warning for the rule that needed it, never a failure of the whole Ingress.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// The Ingress as read (its UID, resourceVersion, annotations, spec, status).
    pub ingress: Ingress,
    /// The IngressClass named by `spec.ingressClassName`, when there is one and it exists.
    pub ingress_class: Option<IngressClass>,
    /// Services of the Ingress's namespace that its backends name, keyed by name.
    pub services: BTreeMap<String, Service>,
    /// EndpointSlices by the Service name they carry in `kubernetes.io/service-name`
    /// (read only for direct-access Ingresses).
    pub endpoint_slices: BTreeMap<String, Vec<EndpointSlice>>,
    /// Pods of not-ready endpoints (direct access only), by name, as the readiness gate
    /// sees them ([`super::readiness`]); empty when every endpoint is ready.
    pub pods: BTreeMap<String, super::readiness::PodGate>,
    /// Every Node of the cluster (read only when some backend is in NodePort mode).
    pub nodes: Vec<Node>,
    /// TLS Secrets named in `spec.tls`, keyed by name; only the keys the model reads
    /// (`qcloud_cert_id`, `qcloud_ca_cert_id`) need to be kept.
    pub secrets: BTreeMap<String, Secret>,
    /// Certificates this function uploaded for `kubernetes.io/tls` Secrets of `secrets`
    /// (filled by the engine from the SSL API, not by the cluster read).
    pub uploaded_certs: super::uploaded_certs::UploadedCerts,
    /// The TkeServiceConfig named by `ingress.cloud.tencent.com/tke-service-config`, as JSON.
    pub tke_service_config: Option<serde_json::Value>,
}
