//! The report step: the Ingress's status and annotation, and Events with stable reasons.
//! Events are best effort: a failed Event write never fails the reconcile.

use jiff::Timestamp;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};

use super::prepare::Planned;
use super::{ReconcileError, Reconciler};
use crate::cloud::apply::{Applied, ApplyError, LbAddress};
use crate::cluster::{current_status, EventRecord, EventType, Reported, LB_ID_ANNOTATION};
use crate::handler::{ActionCounts, IngressOutcome, OutcomeStatus};
use crate::model::problem::codes;
use crate::model::Problem;
use crate::plan::CloudView;

/// Event reasons of our own (problems use their codes).
pub mod reasons {
    /// Something on the CLB was created or changed.
    pub const ENSURED: &str = "EnsuredLoadBalancer";
    /// The CLB (or our part of an adopted one) was released.
    pub const RELEASED: &str = "ReleasedLoadBalancer";
    /// A cloud call failed mid-plan; the next run resumes.
    pub const SYNC_FAILED: &str = "SyncLoadBalancerFailed";
    /// `mode: skip`: the CLB was marked to be kept; nothing else is written.
    pub const SKIPPED: &str = "SkippedLoadBalancer";
}

/// Our `existLbId`-style annotation naming the CLB in use.
pub(super) fn annotation(ingress: &Ingress) -> Option<&str> {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LB_ID_ANNOTATION))
        .map(String::as_str)
}

/// `status.loadBalancer.ingress`: the VIP as `ip`, or, for a domain-name CLB without a VIP,
/// its domain as `hostname`.
pub(super) fn status_entries(a: &LbAddress) -> Vec<IngressLoadBalancerIngress> {
    let entry = match crate::plan::front(&a.vips, a.domain.as_deref()) {
        Some(crate::plan::Front::Ip(ip)) => IngressLoadBalancerIngress {
            ip: Some(ip.to_string()),
            ..Default::default()
        },
        Some(crate::plan::Front::Hostname(h)) => IngressLoadBalancerIngress {
            hostname: Some(h.to_string()),
            ..Default::default()
        },
        None => return Vec::new(),
    };
    vec![entry]
}

/// Whether the Ingress already shows what the report would write for `cloud`.
pub(super) fn is_reported(ingress: &Ingress, cloud: &CloudView, release: bool) -> bool {
    if release {
        return annotation(ingress).is_none();
    }
    match cloud.load_balancer.as_ref().map(LbAddress::of) {
        Some(a) => {
            current_status(ingress) == status_entries(&a).as_slice()
                && annotation(ingress) == Some(a.id.as_str())
        }
        None => true,
    }
}

impl Reconciler {
    /// After a plan was applied: status, annotation and a Normal Event for what changed.
    pub(super) async fn report(
        &self,
        p: &Planned,
        applied: &Applied,
    ) -> Result<IngressOutcome, ReconcileError> {
        let ingress = &p.view.ingress;
        let mut counts = ActionCounts {
            cloud_reads: p.reads,
            applied: applied.actions as u32,
            cloud_writes: applied.writes,
        };
        let lb_id = p
            .plan
            .load_balancer_id
            .clone()
            .or_else(|| applied.created.as_ref().map(|c| c.id.clone()));
        let lb_id = lb_id.as_deref().unwrap_or("?");
        let status = if p.skip {
            if applied.actions > 0 {
                let note = format!(
                    "mode: skip: CLB {lb_id} is left alone and kept when this Ingress is deleted"
                );
                self.event(ingress, EventType::Normal, reasons::SKIPPED, &note)
                    .await;
            }
            OutcomeStatus::Skipped
        } else if p.release {
            self.report_release(ingress, &p.cloud).await?;
            if applied.actions > 0 {
                let note = format!("CLB {lb_id}: released ({} call(s))", applied.actions);
                self.event(ingress, EventType::Normal, reasons::RELEASED, &note)
                    .await;
            }
            OutcomeStatus::Released
        } else {
            let address = applied
                .created
                .clone()
                .or_else(|| p.cloud.load_balancer.as_ref().map(LbAddress::of));
            if let Some(a) = &address {
                let entries = status_entries(a);
                if !entries.is_empty() {
                    self.cluster.write_status(ingress, entries).await?;
                }
                self.cluster.set_lb_annotation(ingress, Some(&a.id)).await?;
            }
            for id in &applied.disowned {
                let note = format!(
                    "CLB {id} no longer carries our tags (taken out of the cluster): it is left \
                     alone; this Ingress gets a new CLB"
                );
                self.event(ingress, EventType::Warning, codes::TAGS_TAMPERED, &note)
                    .await;
            }
            counts.cloud_reads += self.keep_auto_config(p, applied).await?;
            if applied.actions > 0 {
                let note = format!("CLB {lb_id}: {} call(s) applied", applied.actions);
                self.event(ingress, EventType::Normal, reasons::ENSURED, &note)
                    .await;
            }
            OutcomeStatus::Converged
        };
        let mut outcome = IngressOutcome::new(status);
        outcome.actions = counts;
        Ok(stopped(outcome, applied))
    }

    /// Cloud calls failed in the plan: what the rest of it did is reported as usual, then one
    /// Warning per failed call, with its code; the next run retries them.
    pub(super) async fn report_failed(&self, p: &Planned, e: ApplyError) -> IngressOutcome {
        let mut counts = ActionCounts {
            cloud_reads: p.reads,
            applied: e.applied.actions as u32,
            cloud_writes: e.applied.writes,
        };
        if e.applied.actions > 0 && !p.release {
            match self.report(p, &e.applied).await {
                Ok(done) => counts.cloud_reads = done.actions.cloud_reads,
                Err(err) => tracing::warn!(error = %err, "report after a partly failed plan"),
            }
        }
        for (action, error) in e.failures() {
            let code = error.code().unwrap_or("CloudError");
            let note = format!("{code}: {action} failed: {error}; retried on the next run");
            self.event(
                &p.view.ingress,
                EventType::Warning,
                reasons::SYNC_FAILED,
                &note,
            )
            .await;
        }
        let note = e.to_string();
        let err = ReconcileError::Apply(Box::new(e));
        let mut outcome = IngressOutcome::failed(&err.code(), note);
        outcome.actions = counts;
        outcome
    }

    /// Refused as a whole: one Warning per problem, the first one as the outcome.
    pub(super) async fn report_invalid(
        &self,
        ingress: &Ingress,
        problems: &[Problem],
    ) -> IngressOutcome {
        self.warn_all(ingress, problems).await;
        invalid_outcome(problems)
    }

    /// Out of our class with no CLB: drop our annotation.
    pub(super) async fn report_ignored(
        &self,
        ingress: &Ingress,
    ) -> Result<IngressOutcome, ReconcileError> {
        self.cluster.set_lb_annotation(ingress, None).await?;
        Ok(IngressOutcome::new(OutcomeStatus::Ignored))
    }

    /// After an out-of-class release: drop our annotation and the status entries that
    /// pointed at the released CLB (another controller's entries stay).
    async fn report_release(
        &self,
        ingress: &Ingress,
        cloud: &CloudView,
    ) -> Result<(), ReconcileError> {
        if let Some(lb) = &cloud.load_balancer {
            let ours = status_entries(&LbAddress::of(lb));
            let current = current_status(ingress);
            let kept: Vec<IngressLoadBalancerIngress> = current
                .iter()
                .filter(|e| !ours.contains(e))
                .cloned()
                .collect();
            if kept.len() != current.len() {
                self.cluster.write_status(ingress, kept).await?;
            }
        }
        self.cluster.set_lb_annotation(ingress, None).await?;
        Ok(())
    }

    /// One Warning per problem, each written only when it is new or its Event is older than
    /// [`crate::cluster::EVENT_REPEAT_AFTER`]: a lasting problem is not written again.
    pub(super) async fn warn_all(&self, ingress: &Ingress, problems: &[Problem]) {
        for p in problems {
            let record = EventRecord {
                type_: EventType::Warning,
                reason: p.code,
                action: "Reconcile",
                note: &p.to_string(),
            };
            let written = self
                .cluster
                .emit_event_unless_recent(ingress, &record, Timestamp::now())
                .await;
            if let Err(e) = written {
                tracing::warn!(reason = p.code, error = %e, "event write failed");
            }
        }
    }

    /// Whether every one of `problems` was reported about `ingress` recently (one LIST of
    /// the Ingress's Events): then a run with nothing else to do takes no Lease. A failed
    /// read answers no, so the problem is reported.
    pub(super) async fn all_reported(&self, ingress: &Ingress, problems: &[Problem]) -> bool {
        let (Some(ns), Some(uid)) = (
            ingress.metadata.namespace.as_deref(),
            ingress.metadata.uid.as_deref(),
        ) else {
            return false;
        };
        match self.cluster.reported_events(Some((ns, uid))).await {
            Ok((reported, _)) => covered(&reported, ingress, problems),
            Err(e) => {
                tracing::warn!(error = %e, "reading the Ingress's Events failed");
                false
            }
        }
    }

    pub(super) async fn event(
        &self,
        ingress: &Ingress,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let record = EventRecord {
            type_,
            reason,
            action: "Reconcile",
            note,
        };
        if let Err(e) = self
            .cluster
            .emit_event(ingress, &record, Timestamp::now())
            .await
        {
            tracing::warn!(reason, error = %e, "event write failed");
        }
    }
}

/// Refused as a whole: the first problem is the outcome.
pub(super) fn invalid_outcome(problems: &[Problem]) -> IngressOutcome {
    let first = problems.first();
    IngressOutcome {
        code: first.map(|p| p.code.to_string()),
        message: first.map(|p| p.message.clone()),
        ..IngressOutcome::new(OutcomeStatus::Invalid)
    }
}

/// Whether `reported` holds a recent Event for each of `problems` about `ingress`, as
/// [`Reconciler::warn_all`] would write them.
pub(super) fn covered(reported: &Reported, ingress: &Ingress, problems: &[Problem]) -> bool {
    let now = Timestamp::now();
    problems
        .iter()
        .all(|p| reported.covers(ingress, p.code, &p.to_string(), now))
}

/// A plan cut short by `stop_after` is not converged: the next run finishes it.
fn stopped(mut outcome: IngressOutcome, applied: &Applied) -> IngressOutcome {
    if applied.stopped {
        outcome.status = OutcomeStatus::Failed;
        outcome.code = Some("Interrupted".into());
        outcome.message = Some(format!(
            "stopped after {} action(s) (stop_after)",
            applied.actions
        ));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_the_vip_as_ip_else_the_domain_as_hostname() {
        let with_vip = LbAddress {
            id: "lb-1".into(),
            vips: vec!["1.2.3.4".into()],
            domain: Some("lb-1.clb.example".into()),
        };
        assert_eq!(status_entries(&with_vip)[0].ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(status_entries(&with_vip)[0].hostname, None);
        let domain_only = LbAddress {
            vips: vec![],
            ..with_vip
        };
        assert_eq!(
            status_entries(&domain_only)[0].hostname.as_deref(),
            Some("lb-1.clb.example")
        );
        let neither = LbAddress {
            domain: None,
            ..domain_only
        };
        assert!(status_entries(&neither).is_empty());
    }
}
