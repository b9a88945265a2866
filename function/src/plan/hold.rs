//! Rules whose Service or TLS Secret is missing hold what the CLB has (issue 10 §1): the
//! model lists them in [`Desired::held`]; here they keep their cloud rule (with its targets
//! and certificate) and their listener, and nothing is created for them. A Secret deleted and
//! re-created, or a Service missing for a moment, leaves the CLB as it is; only a change of
//! the Ingress itself removes a rule.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::{resolve_domain, CloudListener};
use crate::model::{Desired, DesiredListener, ListenerKey, RuleKey};

/// The held rules per listener, `Domain::Default` resolved as the desired ones are.
pub(super) fn resolved(
    desired: &Desired,
    default: Option<&str>,
) -> BTreeMap<ListenerKey, BTreeSet<RuleKey>> {
    desired
        .held
        .iter()
        .map(|(listener, keys)| {
            let keys = keys
                .iter()
                .map(|k| RuleKey {
                    domain: resolve_domain(&k.domain, default),
                    url: k.url.clone(),
                })
                .collect();
            (*listener, keys)
        })
        .collect()
}

/// The listeners to plan: the desired ones, and an empty one for each listener of ours that
/// only held rules still name, so that it is neither deleted nor changed (no certificate, no
/// SNI asked of it). A held rule of a listener the CLB does not have holds nothing.
pub(super) fn with_held_listeners<'a>(
    desired: &'a Desired,
    ours: &BTreeMap<ListenerKey, &CloudListener>,
) -> Cow<'a, BTreeMap<ListenerKey, DesiredListener>> {
    let kept: Vec<ListenerKey> = desired
        .held
        .keys()
        .filter(|k| !desired.listeners.contains_key(k) && ours.contains_key(k))
        .copied()
        .collect();
    if kept.is_empty() {
        return Cow::Borrowed(&desired.listeners);
    }
    let mut all = desired.listeners.clone();
    for k in kept {
        all.insert(k, DesiredListener::default());
    }
    Cow::Owned(all)
}
