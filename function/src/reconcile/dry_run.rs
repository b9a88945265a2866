//! `clb-ingress plan`: observe, desire and plan one Ingress, writing nothing at all (not even
//! the Lease).

use std::fmt;

use serde::Serialize;

use super::prepare::Prepared;
use super::{ReconcileError, Reconciler};
use crate::handler::IngressKey;
use crate::model::ownership::IngressFact;
use crate::model::Problem;
use crate::plan::Plan;

/// The dry run of one Ingress: what `plan` shows.
#[derive(Clone, Debug, Serialize)]
pub struct DryRun {
    pub ingress: String,
    /// `manage`, `release`, `invalid`, `ignored`, `gone`.
    pub decision: &'static str,
    pub plans: Vec<Plan>,
    pub problems: Vec<Problem>,
}

impl DryRun {
    pub fn is_empty(&self) -> bool {
        self.plans.iter().all(Plan::is_empty)
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Ingress {} ({})", self.ingress, self.decision)?;
        if self.is_empty() {
            writeln!(f, "nothing would change")?;
        } else {
            for p in self.plans.iter().filter(|p| !p.is_empty()) {
                write!(f, "{p}")?;
            }
        }
        for p in &self.problems {
            writeln!(f, "  ! {p}")?;
        }
        Ok(())
    }
}

impl Reconciler {
    /// Observe + desire + plan, writing nothing at all (not even the Lease).
    pub async fn dry_run(&self, key: &IngressKey) -> Result<DryRun, ReconcileError> {
        let prepared = self.prepare(key, false, &[]).await?;
        let ingress = key.to_string();
        let dry = |decision, plans, problems| DryRun {
            ingress: ingress.clone(),
            decision,
            plans,
            problems,
        };
        Ok(match prepared {
            Prepared::Gone => {
                let orphans = self.find_orphans().await?;
                let mut plans = Vec::new();
                let mut problems = Vec::new();
                for lb in &orphans.lbs {
                    match self.release_plan(lb, IngressFact::Gone).await? {
                        (Ok(plan), _, _) => plans.push(plan),
                        (Err(p), _, _) => problems.push(p),
                    }
                }
                dry("gone", plans, problems)
            }
            Prepared::Ignored { .. } => dry("ignored", Vec::new(), Vec::new()),
            Prepared::Invalid { problems, .. } => dry("invalid", Vec::new(), problems),
            Prepared::Planned(p) => dry(
                match (p.release, p.skip) {
                    (true, _) => "release",
                    (_, true) => "skip",
                    _ => "manage",
                },
                vec![p.plan],
                p.problems,
            ),
        })
    }
}
