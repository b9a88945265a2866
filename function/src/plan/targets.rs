//! The target part of a rule's diff: what to register, reweigh and deregister, with the
//! weights [`crate::model::graceful::TargetWeight`] asks for. The phases put registrations
//! before weight changes before deregistrations, so within one plan a new backend serves
//! before an old one stops.

use std::collections::BTreeMap;

use super::{BatchTarget, CloudTarget, Phases, RuleRef};
use crate::model::graceful::TargetWeight;
use crate::model::lb::TargetKey;

/// Adds the target actions of one rule: `desired` against what is `bound` (empty for a rule
/// the plan creates). A target bound twice is judged by its first entry.
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
    for (target, want) in desired {
        match have.get(target) {
            None => {
                if let Some(w) = want.register_weight() {
                    ph.register.push(entry(target, w));
                }
            }
            Some(bound) => {
                if let Some(w) = want.weight_change(*bound) {
                    ph.weights
                        .entry(rule.clone())
                        .or_default()
                        .push(entry(target, w));
                }
            }
        }
    }
    for (target, weight) in have {
        if !desired.contains_key(target) {
            ph.deregister.push(entry(target, weight));
        }
    }
}
