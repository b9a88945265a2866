//! A Kubernetes Event (core/v1, events.k8s.io/v1, an exporter's default body, or the flat
//! layout of `infra/kubernetes/event-exporter.yaml`) → the change it hints at.

use serde_json::Value;

use super::{kind_change, str_at, Change, SkipReason};
use crate::identity::{FIELD_MANAGER, REPORTING_CONTROLLER};

/// core/v1 has `involvedObject`, events.k8s.io/v1 `regarding`; our exporter layout is flat
/// with the involved object's `kind` and `name` at the top (and `kind` is never "Event" there).
pub(super) fn is_event(v: &Value) -> bool {
    v.get("involvedObject").is_some_and(Value::is_object)
        || v.get("regarding").is_some_and(Value::is_object)
        || (str_at(v, &["kind"]).is_some_and(|k| k != "Event" && k != "EventList")
            && str_at(v, &["name"]).is_some())
}

pub(super) fn change(ev: &Value) -> Result<Change, SkipReason> {
    if is_own(ev) {
        return Err(SkipReason::Own);
    }
    let involved = ev
        .get("involvedObject")
        .or_else(|| ev.get("regarding"))
        .filter(|o| o.is_object())
        .unwrap_or(ev);
    let kind = str_at(involved, &["kind"]).ok_or(SkipReason::Malformed)?;
    let name = str_at(involved, &["name"]).unwrap_or("");
    // Cluster-scoped objects (Nodes) have an empty involved namespace while the Event itself
    // lives in `default`; only namespaced kinds fall back to the Event's own namespace.
    let namespace = str_at(involved, &["namespace"])
        .filter(|ns| !ns.is_empty())
        .or_else(|| str_at(ev, &["metadata", "namespace"]))
        .unwrap_or("");
    kind_change(kind, namespace, name)
}

/// Events we emitted ourselves, whichever field the emitter or the exporter filled.
fn is_own(ev: &Value) -> bool {
    let ours = |s: &str| s == REPORTING_CONTROLLER || s == FIELD_MANAGER;
    [
        str_at(ev, &["reportingController"]),
        str_at(ev, &["reportingComponent"]),
        str_at(ev, &["source", "component"]),
        str_at(ev, &["deprecatedSource", "component"]),
        str_at(ev, &["component"]),
    ]
    .into_iter()
    .flatten()
    .any(ours)
}
