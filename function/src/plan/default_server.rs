//! The listener's default domain (`DefaultServer`), where requests for hosts no rule names
//! go: kept on the domain the desired listener names (the Ingress's `spec.defaultBackend`,
//! see `model::desired::default_backend_rule`). A listener that names none is left as the
//! CLB has it.

use super::{Action, CloudListener, ListenerRef, RuleKey};
use crate::model::lb::Domain;

/// Checks the observed listener against the wanted default domain (already resolved):
/// a `SetDefaultServer` when the domain has rules but is not the default, or the domain to
/// mark on a new rule (`CreateRule.Rules[].DefaultServer`) when it has no rule yet.
pub(super) fn diff(
    modify: &mut Vec<Action>,
    listener: &ListenerRef,
    wanted: Option<&Domain>,
    cl: &CloudListener,
) -> Option<Domain> {
    let wanted = wanted?;
    let Domain::Name(name) = wanted else {
        return None;
    };
    let mut rules = cl.rules.iter().filter(|r| &r.domain == name).peekable();
    if rules.peek().is_none() {
        return Some(wanted.clone());
    }
    if !rules.any(|r| r.default_server) {
        modify.push(Action::SetDefaultServer {
            listener: listener.clone(),
            domain: wanted.clone(),
        });
    }
    None
}

/// Which of the rules about to be created carries `DefaultServer=true`: the first of the
/// wanted domain (one is enough, the flag belongs to the domain).
pub(super) fn new_rule_index<T>(rules: &[(&RuleKey, T)], wanted: Option<&Domain>) -> Option<usize> {
    let wanted = wanted?;
    rules.iter().position(|(k, _)| &k.domain == wanted)
}
