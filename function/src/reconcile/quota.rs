//! The live quota (issue 12 §3): read with `DescribeQuota` only when an Ingress's CLB comes
//! near a default limit, and remembered for [`QUOTA_TTL`], so a steady run and a steady
//! sweep of CLBs within the defaults make no extra read; a sweep over big CLBs makes one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::Reconciler;
use crate::model::limits::{approaches, Quota};
use crate::model::{desire_within, ClusterView, Decision};

/// How long a read quota is used before the next CLB near a limit reads it again. Quotas
/// change by ticket, rarely; one sweep interval (5 minutes by default) of staleness is the
/// cost of not reading it on every run.
pub const QUOTA_TTL: Duration = Duration::from_secs(300);

/// The last quota read, shared by every run of one engine (one warm instance).
#[derive(Debug, Default)]
pub struct QuotaMemo(Mutex<Option<(Instant, Quota)>>);

impl QuotaMemo {
    /// The quota read within [`QUOTA_TTL`], if any.
    fn fresh(&self) -> Option<Quota> {
        let memo = self.0.lock().ok()?;
        memo.filter(|(at, _)| at.elapsed() < QUOTA_TTL)
            .map(|(_, q)| q)
    }

    fn remember(&self, quota: Quota) {
        if let Ok(mut memo) = self.0.lock() {
            *memo = Some((Instant::now(), quota));
        }
    }
}

impl Reconciler {
    /// `desire` within the best quota known without a read: the remembered live one, else
    /// the defaults. What the sweep's snapshot planning uses (it makes no call of its own).
    pub(super) fn desire_known(&self, view: &ClusterView) -> Decision {
        let quota = self.quota.fresh().unwrap_or_default();
        desire_within(view, &self.cluster_id, &quota)
    }

    /// `desire` within the live quota when the CLB comes near a limit: the remembered one,
    /// or one `DescribeQuota` read (a failed read keeps the defaults, with a log line:
    /// the limits still hold, only a raised quota goes unused for this run).
    pub(super) async fn desire_live(&self, view: &ClusterView) -> Decision {
        if let Some(quota) = self.quota.fresh() {
            return desire_within(view, &self.cluster_id, &quota);
        }
        let decision = desire_within(view, &self.cluster_id, &Quota::DEFAULT);
        let near =
            matches!(&decision, Decision::Manage(d) if approaches(&d.listeners, &Quota::DEFAULT));
        if !near {
            return decision;
        }
        match self.cloud.describe_quota().await {
            Ok(quota) => {
                self.quota.remember(quota);
                if quota == Quota::DEFAULT {
                    decision
                } else {
                    desire_within(view, &self.cluster_id, &quota)
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "DescribeQuota failed; the default quotas hold");
                decision
            }
        }
    }
}
