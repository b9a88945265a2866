//! The readiness gate's write: once the CLB serves a waiting Pod on every rule that routes
//! to it, its condition is set (once; [`crate::plan::readiness`] decides which Pods).

use super::prepare::{Planned, Prepared};
use super::Reconciler;
use crate::handler::IngressKey;
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
            match self.prepare(key, false).await {
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
            if let Err(e) = self.cluster.open_gate(&key.namespace, pod).await {
                tracing::warn!(ingress = %key, pod = %pod.name, error = %e,
                    "opening the readiness gate; left to the next run");
            }
        }
    }
}
