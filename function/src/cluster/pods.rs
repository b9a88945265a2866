//! The Pods of the readiness gate ([`crate::model::readiness`]): a GET for each Pod of a
//! not-ready endpoint, and the one status write that opens its gate.

use std::collections::BTreeMap;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::Api;

use super::read::get_optional;
use super::{status_code, ClusterClient, ClusterError};
use crate::identity;
use crate::model::readiness::{pods_to_read, PodGate, READINESS_GATE};

impl ClusterClient {
    /// The Pods named by the not-ready endpoints of `slices` (namespace `ns`), as the gate
    /// sees them. A Pod that is gone is absent; so is every Pod when RBAC does not grant
    /// `get pods` (a cluster that has not applied the new role keeps direct access working,
    /// without the gate).
    pub(super) async fn read_gated_pods<'a>(
        &self,
        ns: &str,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Result<BTreeMap<String, PodGate>, ClusterError> {
        let names = pods_to_read(ns, slices);
        let found = try_join_all(names.iter().map(|name| async move {
            let gate = self.read_pod_gate(ns, name).await?;
            Ok::<_, ClusterError>(gate.map(|g| (name.clone(), g)))
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// One Pod as the gate sees it; `None` when it is gone or RBAC refuses the read.
    pub async fn read_pod_gate(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<PodGate>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match get_optional(&api, name).await {
            Ok(pod) => Ok(pod.map(|p| PodGate::of(&p))),
            Err(e) if status_code(&e) == Some(403) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e,
                    "cannot read the Pod (RBAC: get pods); its readiness gate is left alone");
                Ok(None)
            }
            Err(e) => Err(ClusterError::api("get pod", format!("{ns}/{name}"), e)),
        }
    }

    /// Sets the gate's condition to `True` on `pod` as read: a strategic merge patch of
    /// `pods/status` (conditions merge by type, so no other condition is touched) carrying
    /// the read uid and resourceVersion as preconditions, so a Pod changed or replaced since
    /// is never marked on stale facts ([`ClusterError::Conflict`]; the next run decides again).
    pub async fn open_gate(&self, ns: &str, pod: &PodGate) -> Result<(), ClusterError> {
        if pod.resource_version.is_empty() {
            return Err(ClusterError::Incomplete {
                kind: "Pod",
                namespace: ns.to_string(),
                name: pod.name.clone(),
                missing: "metadata.resourceVersion",
            });
        }
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = serde_json::json!({
            "metadata": {"uid": pod.uid, "resourceVersion": pod.resource_version},
            "status": {"conditions": [{
                "type": READINESS_GATE,
                "status": "True",
                "lastTransitionTime": now,
                "reason": "LoadBalancerTargetRegistered",
            }]},
        });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let params = PatchParams {
            field_manager: Some(identity::FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match api
            .patch_status(&pod.name, &params, &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(pod = %format!("{ns}/{}", pod.name), "opened the readiness gate");
                Ok(())
            }
            Err(e) if status_code(&e) == Some(409) => Err(ClusterError::Conflict {
                kind: "Pod",
                namespace: ns.to_string(),
                name: pod.name.clone(),
            }),
            Err(e) => Err(ClusterError::api(
                "patch pod status",
                format!("{ns}/{}", pod.name),
                e,
            )),
        }
    }
}
