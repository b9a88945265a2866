//! `tke-service-config-auto: "true"`: after a run, `<ingress>-auto-ingress-config` shows the
//! CLB's listener and rule attributes as they are; with the Ingress gone, it goes too.

use serde_json::Value;

use super::prepare::Planned;
use super::{ReconcileError, Reconciler};
use crate::cloud::apply::Applied;
use crate::cloud::observe::{observe, Lookup};
use crate::model::service_config::auto_config_on;
use crate::model::ClusterView;
use crate::plan::{auto_config_spec, CloudView};

/// The spec the automatic config should hold for the CLB in `cloud`, when the Ingress asks
/// for one and has a CLB.
fn wanted(view: &ClusterView, cloud: &CloudView) -> Option<Value> {
    if !auto_config_on(view) {
        return None;
    }
    cloud.load_balancer.as_ref().map(auto_config_spec)
}

/// The automatic config (as read for this run) does not show the CLB (as observed).
pub(super) fn is_stale(view: &ClusterView, cloud: &CloudView) -> bool {
    wanted(view, cloud)
        .is_some_and(|spec| view.tke_service_config.as_ref().map(|c| &c["spec"]) != Some(&spec))
}

impl Reconciler {
    /// Writes the automatic config after `applied`: from the CLB as observed when nothing
    /// was written to it, else as a fresh read shows it (one DescribeLoadBalancers, one
    /// DescribeListeners, one DescribeTargets). Returns the cloud reads it made.
    pub(super) async fn keep_auto_config(
        &self,
        p: &Planned,
        applied: &Applied,
    ) -> Result<u32, ReconcileError> {
        if !auto_config_on(&p.view) {
            return Ok(0);
        }
        let mut reads = 0;
        let fresh;
        let cloud = if applied.writes == 0 {
            &p.cloud
        } else {
            let id = p
                .plan
                .load_balancer_id
                .clone()
                .or_else(|| applied.created.as_ref().map(|c| c.id.clone()));
            let Some(id) = id else {
                return Ok(0);
            };
            let (view, r) = observe(&self.cloud, Lookup::ById(&id)).await?;
            reads = r.calls;
            fresh = view;
            &fresh
        };
        if let Some(spec) = wanted(&p.view, cloud) {
            self.cluster
                .write_auto_config(&p.view.ingress, p.view.tke_service_config.as_ref(), spec)
                .await?;
        }
        Ok(reads)
    }
}
