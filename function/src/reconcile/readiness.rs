//! The readiness gate's write: once the CLB serves a waiting Pod on every rule that routes
//! to it, its condition is set (once; [`crate::plan::readiness`] decides which Pods).

use super::prepare::{Planned, Prepared};
use super::Reconciler;
use crate::cluster::ClusterError;
use crate::handler::IngressKey;
use crate::model::readiness::PodGate;
use crate::plan::readiness::gates_to_open;

impl Reconciler {
    /// Opens the gate of every Pod of `p` the CLB now serves. After writes (`wrote`) the
    /// cluster and the CLB are read again, so the gate rests on what the CLB shows, not on
    /// what the plan meant to do; without writes the reads `p` was planned from are fresh.
    /// A failed write is logged and left to the next run (the sweep sees the waiting Pod's
    /// bound target as a change and runs this Ingress again).
    pub(super) async fn open_gates(&self, key: &IngressKey, p: &Planned, wrote: bool) {
        if p.gates.is_empty() {
            return;
        }
        let fresh;
        let p = if wrote {
            match self.prepare(key, false, &[]).await {
                Ok(Prepared::Planned(again)) => {
                    fresh = again;
                    &*fresh
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(ingress = %key, error = %e,
                        "reading back for the readiness gate; left to the next run");
                    return;
                }
            }
        } else {
            p
        };
        for pod in gates_to_open(&p.gates, p.cloud.load_balancer.as_ref()) {
            if let Err(e) = self.open_gate(&key.namespace, pod).await {
                tracing::warn!(ingress = %key, pod = %pod.name, error = %e,
                    "opening the readiness gate; left to the next run");
            }
        }
    }

    /// One Pod's gate. The kubelet writes a starting Pod's status often, so a lost race on
    /// the resourceVersion is read again once: the same Pod (uid), still waiting, is marked
    /// on the new version (its target, by IP, is what the CLB read proved).
    async fn open_gate(&self, ns: &str, pod: &PodGate) -> Result<(), ClusterError> {
        match self.cluster.open_gate(ns, pod).await {
            Err(ClusterError::Conflict { .. }) => {
                match self.cluster.read_pod_gate(ns, &pod.name).await? {
                    Some(now) if now.uid == pod.uid && now.awaits_clb() => {
                        self.cluster.open_gate(ns, &now).await
                    }
                    _ => Ok(()),
                }
            }
            other => other,
        }
    }
}
