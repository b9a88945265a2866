//! The function's Kubernetes identity as deployed: the objects of
//! `infra/kubernetes/rbac.yaml` stored in a kube-sim, and a kubeconfig with a token of its
//! service account, so the end-to-end tests run the function with exactly those rights
//! (kube-sim enforces RBAC for service accounts).

use serde::Deserialize as _;
use serde_json::Value;

use crate::kube_sim::{rbac, ApiError, KubeSimHandle};

/// The manifest, compiled in so a change to it rebuilds the tests.
pub const RBAC_YAML: &str = include_str!("../../infra/kubernetes/rbac.yaml");
/// The function's service account (rbac.yaml).
pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "clb-ingress";

/// `system:serviceaccount:kube-system:clb-ingress`.
pub fn user() -> String {
    rbac::service_account_user(NAMESPACE, NAME)
}

/// Stores every object of rbac.yaml (as `kubectl apply` would) and returns a kubeconfig
/// for the function's service account.
pub fn install(kube: &KubeSimHandle) -> Result<String, ApiError> {
    for doc in serde_yaml::Deserializer::from_str(RBAC_YAML) {
        let obj = Value::deserialize(doc)
            .map_err(|e| ApiError::bad_request(format!("rbac.yaml does not parse: {e}")))?;
        if !obj.is_null() {
            kube.put_object(obj)?;
        }
    }
    kubeconfig(kube)
}

/// A kubeconfig with a fresh token of the function's service account (rbac.yaml installed).
pub fn kubeconfig(kube: &KubeSimHandle) -> Result<String, ApiError> {
    kube.service_account_kubeconfig(NAMESPACE, NAME)
}
