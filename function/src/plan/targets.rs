//! The target part of a rule's diff: what to register, reweigh and deregister, with the
//! weights [`crate::model::graceful::TargetWeight`] asks for. The phases put registrations
//! before weight changes before deregistrations, so within one plan a new backend serves
//! before an old one stops.
//!
//! A rule holds at most the quota's targets per rule (issue 12 §3). When the Ingress wants
//! more, those already bound stay (serving ones first, then draining ones: a terminating Pod
//! keeps its weight-0 target until it is gone, so no request in flight is cut) and new ones
//! fill what room is left, serving ones first, in key order; the rest wait, reported by
//! [`crate::model::limits::fit`]. Every run keeps the same set while nothing changes, and a
//! rollout at the limit never deregisters a backend still wanted to let a new one in —
//! except that a rule never ends with no serving target while a serving one waits: then the
//! draining target that has drained longest (already at weight 0) makes room for it.
//! TKE's own behaviour at the limit is not documented (tke-annotations.md §5: U).

use std::collections::BTreeMap;

use super::{BatchTarget, CloudTarget, Phases, RuleRef};
use crate::model::graceful::TargetWeight;
use crate::model::lb::TargetKey;

/// Adds the target actions of one rule: `desired` against what is `bound` (empty for a rule
/// the plan creates), within `ph.targets_per_rule`. A target bound twice is judged by its
/// first entry.
pub(super) fn diff(
    ph: &mut Phases,
    rule: &RuleRef,
    desired: &BTreeMap<TargetKey, TargetWeight>,
    bound: &[CloudTarget],
) {
    let mut have: BTreeMap<&TargetKey, u16> = BTreeMap::new();
    for t in bound {
        have.entry(&t.key).or_insert(t.weight);
    }
    let entry = |target: &TargetKey, weight: u16| BatchTarget {
        rule: rule.clone(),
        target: target.clone(),
        weight,
    };
    let kept: Vec<Kept> = desired
        .iter()
        .filter_map(|(target, want)| {
            have.get(target).map(|bound| Kept {
                target,
                want: *want,
                bound: *bound,
            })
        })
        .collect();
    let new: Vec<(&TargetKey, TargetWeight)> = desired
        .iter()
        .filter(|(target, want)| !have.contains_key(target) && want.register_weight().is_some())
        .map(|(target, want)| (target, *want))
        .collect();
    let chosen = within(ph.targets_per_rule, kept, new);
    for (target, want) in chosen.register {
        if let Some(w) = want.register_weight() {
            ph.register.push(entry(target, w));
        }
    }
    for k in &chosen.keep {
        if let Some(w) = k.want.weight_change(k.bound) {
            ph.weights
                .entry(rule.clone())
                .or_default()
                .push(entry(k.target, w));
        }
    }
    for (target, weight) in have {
        if !chosen.keep.iter().any(|k| k.target == target) {
            ph.deregister.push(entry(target, weight));
        }
    }
}

/// A desired target that is bound: what it should be and the weight it has.
#[derive(Clone, Copy)]
struct Kept<'a> {
    target: &'a TargetKey,
    want: TargetWeight,
    bound: u16,
}

impl Kept<'_> {
    /// Keeping order: serving first, then draining ones still above weight 0 (their drain
    /// has just begun), then those already at 0; by key within each.
    fn rank(&self) -> (bool, bool, &TargetKey) {
        (!self.want.serves(), self.bound == 0, self.target)
    }
}

struct Chosen<'a> {
    keep: Vec<Kept<'a>>,
    register: Vec<(&'a TargetKey, TargetWeight)>,
}

/// Which bound targets stay and which new ones are registered so that the rule holds at
/// most `limit` (see the module comment).
fn within<'a>(
    limit: usize,
    mut keep: Vec<Kept<'a>>,
    mut new: Vec<(&'a TargetKey, TargetWeight)>,
) -> Chosen<'a> {
    keep.sort_by(|a, b| a.rank().cmp(&b.rank()));
    keep.truncate(limit);
    new.sort_by_key(|(target, want)| (!want.serves(), *target));
    let serving_waits = new.first().is_some_and(|(_, want)| want.serves());
    if keep.len() == limit && serving_waits && !keep.iter().any(|k| k.want.serves()) {
        keep.pop();
    }
    new.truncate(limit - keep.len());
    new.sort_by_key(|(target, _)| *target);
    Chosen {
        keep,
        register: new,
    }
}
