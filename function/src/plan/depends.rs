//! Which action of a plan needs which earlier one: plain data, so that apply can go on past a
//! failed action and skip only what the failure leaves without its ground (issue 10 §1: one
//! failing CreateRule must not keep the targets of healthy rules from being updated).
//!
//! An action depends on an earlier one when
//! - it works on the CLB the earlier one creates or adopts (CreateLoadBalancer, TagResources:
//!   everything after them);
//! - it names a listener by natural key that the earlier CreateListeners makes, or creates a
//!   listener after a DeleteListeners (placed before creations only to free its port or
//!   room under the CLB's listener quota, `room.rs`);
//! - it creates rules on a listener after a DeleteRules on it, or registers targets on a rule
//!   after a DeregisterTargets on it (placed first only to make room under the quota);
//! - it puts a certificate on a domain of a listener whose SNI the earlier ModifyListener
//!   turns on;
//! - it names a rule by natural key that the earlier CreateRules makes (targets, attributes),
//!   or makes a domain the default server, or sets its certificate, when that domain's rule
//!   is being created;
//! - it takes targets off a rule that the earlier action adds targets to or re-weights
//!   (targets leave only once their replacements are in, as in the plan's order);
//! - it deletes a listener after the earlier DeleteRules on it, or after the earlier
//!   CreateListeners of the listener that replaces it;
//! - it removes our tags after the earlier DeleteListeners (nothing of ours may be left);
//! - it works on a CLB whose `mode: skip` mark the earlier UnTagResources takes off (a mark
//!   left by an Ingress released before this one adopted the CLB, or by this one before
//!   skip went off): while the mark stays, a release would keep whatever we wrote;
//! - it redirects between rules (ManualRewrite) the earlier CreateRules makes, either end;
//! - it deletes a rule or listener that the earlier DeleteRewrite frees of its redirect (the
//!   API refuses to delete a redirected rule).
//!
//! Apply skips an action when any action it depends on failed or was skipped, so the rule
//! is applied transitively.

use super::{Action, BatchTarget, ListenerRef, RuleRef};
use crate::model::lb::Domain;
use crate::model::lifecycle::TAG_SKIP;

/// For each action of `actions`, the indexes of the earlier actions it depends on.
pub fn dependencies(actions: &[Action]) -> Vec<Vec<usize>> {
    actions
        .iter()
        .enumerate()
        .map(|(j, later)| {
            actions[..j]
                .iter()
                .enumerate()
                .filter(|(_, earlier)| depends_on(later, earlier))
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// Whether `later` needs `earlier` (placed before it in the plan) to have succeeded.
pub fn depends_on(later: &Action, earlier: &Action) -> bool {
    match earlier {
        Action::CreateLoadBalancer { .. } | Action::TagResources { .. } => true,
        Action::DeleteListeners { .. } => matches!(
            later,
            Action::CreateListeners { .. } | Action::UnTagResources { .. }
        ),
        Action::CreateListeners {
            protocol, ports, ..
        } => {
            let made = |r: &ListenerRef| {
                r.id.is_none() && r.key.protocol == *protocol && ports.contains(&r.key.port)
            };
            matches!(later, Action::DeleteListeners { .. })
                || listeners_named(later).into_iter().any(made)
        }
        Action::ModifyListener {
            listener,
            sni_on: true,
            ..
        } => match later {
            Action::CreateRules { listener: l, .. }
            | Action::ModifyDomainAttributes { listener: l, .. } => l.key == listener.key,
            _ => false,
        },
        Action::CreateRules { listener, rules } => {
            let made = |r: &RuleRef| {
                r.location_id.is_none()
                    && r.listener.key == listener.key
                    && rules.iter().any(|n| n.key == r.key)
            };
            let domain_made = |l: &ListenerRef, d: &Domain| {
                l.key == listener.key && rules.iter().any(|n| &n.key.domain == d)
            };
            match later {
                Action::SetDefaultServer {
                    listener: l,
                    domain,
                }
                | Action::ModifyDomainAttributes {
                    listener: l,
                    domain,
                    ..
                } => domain_made(l, domain),
                _ => rules_named(later).into_iter().any(made),
            }
        }
        Action::RegisterTargets { targets } | Action::ModifyTargetWeight { targets } => match later
        {
            Action::DeregisterTargets { targets: leaving } => leaving
                .iter()
                .any(|t| targets.iter().any(|a| same_rule(&a.rule, &t.rule))),
            _ => false,
        },
        Action::DeleteRules { listener, .. } => match later {
            Action::DeleteListeners { listeners } => {
                listeners.iter().any(|l| same_listener(l, listener))
            }
            Action::CreateRules { listener: l, .. } => same_listener(l, listener),
            _ => false,
        },
        Action::DeregisterTargets { targets: leaving } => match later {
            Action::RegisterTargets { targets } => leaving
                .iter()
                .any(|t| targets.iter().any(|a| same_rule(&a.rule, &t.rule))),
            _ => false,
        },
        Action::DeleteRewrite { pairs } => {
            let freed = pairs.iter().flat_map(|p| [&p.source, &p.target]);
            match later {
                Action::DeleteRules {
                    listener,
                    location_ids,
                    ..
                } => freed.into_iter().any(|r| {
                    same_listener(&r.listener, listener)
                        && r.location_id
                            .as_ref()
                            .is_some_and(|id| location_ids.contains(id))
                }),
                Action::DeleteListeners { listeners } => freed
                    .into_iter()
                    .any(|r| listeners.iter().any(|l| same_listener(l, &r.listener))),
                _ => false,
            }
        }
        Action::UnTagResources { keys } => keys.iter().any(|k| k == TAG_SKIP),
        Action::ModifyListener { .. }
        | Action::ModifyDomainAttributes { .. }
        | Action::ModifyRule { .. }
        | Action::SetKeepalive { .. }
        | Action::SetDefaultServer { .. }
        | Action::DeleteLoadBalancer { .. }
        | Action::ModifyLoadBalancerAttributes { .. }
        | Action::SetSecurityGroups { .. }
        | Action::ManualRewrite { .. } => false,
    }
}

/// Every listener an action names (directly or through its rules).
fn listeners_named(a: &Action) -> Vec<&ListenerRef> {
    match a {
        Action::DeleteListeners { listeners } => listeners.iter().collect(),
        Action::ModifyListener { listener, .. }
        | Action::CreateRules { listener, .. }
        | Action::ModifyDomainAttributes { listener, .. }
        | Action::SetKeepalive { listener, .. }
        | Action::SetDefaultServer { listener, .. }
        | Action::DeleteRules { listener, .. } => vec![listener],
        _ => rules_named(a).into_iter().map(|r| &r.listener).collect(),
    }
}

/// Every rule an action names.
fn rules_named(a: &Action) -> Vec<&RuleRef> {
    match a {
        Action::ModifyRule { rule, .. } => vec![rule],
        Action::RegisterTargets { targets }
        | Action::ModifyTargetWeight { targets }
        | Action::DeregisterTargets { targets } => targets.iter().map(|t| &t.rule).collect(),
        Action::ManualRewrite { pairs } | Action::DeleteRewrite { pairs } => {
            pairs.iter().flat_map(|p| [&p.source, &p.target]).collect()
        }
        _ => Vec::new(),
    }
}

fn same_listener(a: &ListenerRef, b: &ListenerRef) -> bool {
    match (&a.id, &b.id) {
        (Some(x), Some(y)) => x == y,
        _ => a.key == b.key,
    }
}

fn same_rule(a: &RuleRef, b: &RuleRef) -> bool {
    match (&a.location_id, &b.location_id) {
        (Some(x), Some(y)) => x == y,
        _ => a.listener.key == b.listener.key && a.key == b.key,
    }
}

/// Targets to register in two groups, those of rules that exist and those of rules the plan
/// creates: a batch never mixes them, so a failing CreateRules holds back only the targets of
/// new rules (one call more only when a plan has both).
pub(super) fn register_groups(targets: Vec<BatchTarget>) -> [Vec<BatchTarget>; 2] {
    let (existing, new) = targets
        .into_iter()
        .partition(|t| t.rule.location_id.is_some());
    [existing, new]
}

/// Where apply stands in a plan: which actions ran and how they ended, so that it runs an
/// action only on the ground of the ones it depends on.
#[derive(Clone, Debug)]
pub struct Progress {
    deps: Vec<Vec<usize>>,
    /// Per action: `Some(true)` succeeded, `Some(false)` failed, `None` not run (yet).
    ran: Vec<Option<bool>>,
}

impl Progress {
    pub fn new(actions: &[Action]) -> Self {
        Progress {
            deps: dependencies(actions),
            ran: vec![None; actions.len()],
        }
    }

    /// Whether action `j` may run: every action it depends on ran and succeeded.
    pub fn may_run(&self, j: usize) -> bool {
        self.deps
            .get(j)
            .is_some_and(|d| d.iter().all(|i| self.ran.get(*i) == Some(&Some(true))))
    }

    /// Action `j` ran and succeeded or failed.
    pub fn record(&mut self, j: usize, succeeded: bool) {
        if let Some(slot) = self.ran.get_mut(j) {
            *slot = Some(succeeded);
        }
    }
}
