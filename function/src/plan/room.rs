//! Swaps at the quota (issue 12 §3): the plan registers new targets before it deregisters
//! old ones, creates new rules before it deletes old ones and new listeners before it deletes
//! old ones (no window without them), but a rule, listener or CLB already holding its quota
//! would refuse the addition (`LimitExceeded`, TKE's E4004/E4005) on every run and the swap
//! would never happen. So just enough of what is no longer wanted goes first to make room,
//! in the plan's stable order; the rest keeps the availability-first order. Only what the
//! plan deletes anyway is moved: nothing still wanted is deleted to make room, and when the
//! wanted things alone exceed the quota the API's refusal is reported as before.

use std::collections::BTreeMap;

use super::{Action, CloudListener, Phases};

/// Moves the first deletions of our unwanted listeners into `ph.clear_ports` (deleted before
/// any listener is created) while the CLB's `present` listeners, less those already cleared,
/// plus the new ones would exceed `listeners_per_lb`.
pub(super) fn make_listener_room(ph: &mut Phases, present: usize, listeners_per_lb: usize) {
    let peak = present.saturating_sub(ph.clear_ports.len()) + ph.new_listeners.len();
    let over = peak.saturating_sub(listeners_per_lb);
    let n = over.min(ph.delete_listeners.len());
    ph.clear_ports.extend(ph.delete_listeners.drain(..n));
}

/// Moves, per existing rule, the deregistrations that must precede its registrations for
/// bound + new to stay within `targets_per_rule` into `ph.make_room`.
pub(super) fn make_room(ph: &mut Phases, cloud: &[CloudListener], targets_per_rule: usize) {
    let bound: BTreeMap<&str, usize> = cloud
        .iter()
        .flat_map(|l| &l.rules)
        .map(|r| (r.location_id.as_str(), r.targets.len()))
        .collect();
    let mut registering: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &ph.register {
        if let Some(id) = t.rule.location_id.as_deref() {
            *registering.entry(id).or_default() += 1;
        }
    }
    let mut over: BTreeMap<String, usize> = registering
        .iter()
        .filter_map(|(id, new)| {
            let peak = bound.get(id).copied().unwrap_or(0) + new;
            (peak > targets_per_rule).then(|| (id.to_string(), peak - targets_per_rule))
        })
        .collect();
    if over.is_empty() {
        return;
    }
    // Targets already at weight 0 (drained) go first: removing them cuts no request.
    let mut later = std::mem::take(&mut ph.deregister);
    for drained in [true, false] {
        later.retain(|t| {
            if (t.weight == 0) != drained {
                return true;
            }
            let Some(left) = t.rule.location_id.as_ref().and_then(|id| over.get_mut(id)) else {
                return true;
            };
            if *left == 0 {
                return true;
            }
            *left -= 1;
            ph.make_room.push(t.clone());
            false
        });
    }
    ph.deregister = later;
}

/// Splits off, per existing listener, the rule deletions that must precede its rule
/// creations for existing + new to stay within `rules_per_listener`, into
/// `ph.make_rule_room`.
pub(super) fn make_rule_room(ph: &mut Phases, cloud: &[CloudListener], rules_per_listener: usize) {
    for create in &ph.create_rules {
        let Action::CreateRules { listener, rules } = create else {
            continue;
        };
        let Some(id) = listener.id.as_deref() else {
            continue;
        };
        let existing = cloud
            .iter()
            .find(|l| l.id == id)
            .map_or(0, |l| l.rules.len());
        let mut over = (existing + rules.len()).saturating_sub(rules_per_listener);
        for delete in ph.delete_rules.iter_mut() {
            let Action::DeleteRules {
                listener: of,
                location_ids,
                keys,
            } = delete
            else {
                continue;
            };
            if over == 0 || of.id.as_deref() != Some(id) {
                continue;
            }
            let n = over.min(location_ids.len());
            ph.make_rule_room.push(Action::DeleteRules {
                listener: of.clone(),
                location_ids: location_ids.drain(..n).collect(),
                keys: keys.drain(..n).collect(),
            });
            over -= n;
        }
    }
    ph.delete_rules.retain(
        |a| !matches!(a, Action::DeleteRules { location_ids, .. } if location_ids.is_empty()),
    );
}
