//! Target swaps at the quota (issue 12 §3): the plan registers new targets before it
//! deregisters old ones (no window without targets), but a rule already holding its quota
//! would refuse the registration (`LimitExceeded`) and the swap would never happen. So for
//! such a rule just enough of the old targets go first to make room; the rest keep the
//! availability-first order.

use std::collections::BTreeMap;

use super::{BatchTarget, CloudListener, Phases};

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
    let (first, later): (Vec<BatchTarget>, Vec<BatchTarget>) = std::mem::take(&mut ph.deregister)
        .into_iter()
        .partition(|t| {
            let Some(left) = t.rule.location_id.as_ref().and_then(|id| over.get_mut(id)) else {
                return false;
            };
            if *left == 0 {
                return false;
            }
            *left -= 1;
            true
        });
    ph.make_room = first;
    ph.deregister = later;
}
