//! The automatic TkeServiceConfig `<ingress>-auto-ingress-config`
//! (`ingress.cloud.tencent.com/tke-service-config-auto: "true"`, tke-annotations.md §1.2):
//! written when what the CLB shows differs from it, deleted with its Ingress.
//!
//! It carries an ownerReference to its Ingress, so a cluster's garbage collector deletes it
//! too when the Ingress goes while the function is not told (the sweep cannot name it: a
//! CLB's tags carry the Ingress UID, not its name).

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, DynamicObject, PostParams, Preconditions};
use kube::Api;
use serde_json::{json, Value};

use super::read::{get_optional, tke_service_config_resource};
use super::{ClusterClient, ClusterError};
use crate::model::refs::AUTO_TKE_SERVICE_CONFIG_SUFFIX;

/// The name of the automatic config of Ingress `ingress_name`.
pub fn auto_config_name(ingress_name: &str) -> String {
    format!("{ingress_name}{AUTO_TKE_SERVICE_CONFIG_SUFFIX}")
}

/// Whether `obj` is the automatic config of the Ingress named `ingress_name` (its
/// ownerReference names it): only such an object is ever deleted.
fn owned_by(obj: &Value, ingress_name: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["kind"] == "Ingress" && o["name"] == ingress_name)
}

fn decode(e: serde_json::Error) -> kube::Error {
    kube::Error::SerdeError(e)
}

impl ClusterClient {
    fn service_configs(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            namespace,
            &tke_service_config_resource(),
        )
    }

    /// Makes the automatic config of `ingress` hold `spec`: nothing when `current` (as read
    /// for this run) already does, else a create, or a replace carrying the read
    /// resourceVersion (a concurrent change gives a conflict; the next run writes again).
    /// Returns whether it wrote.
    pub async fn write_auto_config(
        &self,
        ingress: &Ingress,
        current: Option<&Value>,
        spec: Value,
    ) -> Result<bool, ClusterError> {
        if current.map(|c| &c["spec"]) == Some(&spec) {
            return Ok(false);
        }
        let meta = &ingress.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let ingress_name = meta.name.clone().unwrap_or_default();
        let name = auto_config_name(&ingress_name);
        let target = format!("{namespace}/{name}");
        let mut obj = json!({
            "apiVersion": "cloud.tencent.com/v1alpha1",
            "kind": "TkeServiceConfig",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "ownerReferences": [{
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "name": ingress_name,
                    "uid": meta.uid.clone().unwrap_or_default(),
                }],
            },
            "spec": spec,
        });
        let api = self.service_configs(&namespace);
        let params = PostParams::default();
        match current {
            None => {
                let obj: DynamicObject = serde_json::from_value(obj).map_err(|e| {
                    ClusterError::api("encode tkeserviceconfig", &target, decode(e))
                })?;
                api.create(&params, &obj)
                    .await
                    .map_err(|e| ClusterError::api("create tkeserviceconfig", &target, e))?;
            }
            Some(c) => {
                obj["metadata"]["resourceVersion"] = c["metadata"]["resourceVersion"].clone();
                let obj: DynamicObject = serde_json::from_value(obj).map_err(|e| {
                    ClusterError::api("encode tkeserviceconfig", &target, decode(e))
                })?;
                api.replace(&name, &params, &obj)
                    .await
                    .map_err(|e| ClusterError::api("replace tkeserviceconfig", &target, e))?;
            }
        }
        Ok(true)
    }

    /// Deletes the automatic config of the Ingress `ingress_name`, which a fresh read found
    /// gone; only an object whose ownerReference names that Ingress, by the read uid and
    /// resourceVersion. Best effort: a failure is logged and the garbage collector or the
    /// next delete event tries again.
    pub async fn delete_auto_config(&self, namespace: &str, ingress_name: &str) {
        let api = self.service_configs(namespace);
        let name = auto_config_name(ingress_name);
        let found = match get_optional(&api, &name).await {
            Ok(Some(o)) => o,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "reading a gone Ingress's auto config");
                return;
            }
        };
        let Ok(value) = serde_json::to_value(&found) else {
            return;
        };
        if !owned_by(&value, ingress_name) {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: found.metadata.resource_version.clone(),
                uid: found.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&name, &params).await {
            tracing::debug!(error = %e, "deleting a gone Ingress's auto config");
        }
    }
}
