//! Trigger decoders: audit EventList, CLS-shipped audit, Events, timer → changes → Work.
//!
//! Decoding is pure: a payload is recognised by its shape (never by the route it came in on),
//! every item becomes either a [`Change`] or a counted [`SkipReason`], and one bad item never
//! fails the batch. Changes are symbolic where the mapping needs the cluster's Ingresses
//! (`Service`, `Secret`, `Namespace`, `Nodes`): `handler::resolve` turns them into Ingress keys
//! through one Ingress listing per batch, supplied by the engine (`handler::IngressLookup`).

mod audit;
mod cls;
mod envelope;
mod event;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use envelope::HttpEnvelope;

use crate::shard::{ShardSpec, SHARD_EVENT_KEY};

/// One Ingress, by namespace and name; displayed and parsed as `ns/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IngressKey {
    pub namespace: String,
    pub name: String,
}

impl IngressKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for IngressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl FromStr for IngressKey {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self::new(ns, name))
            }
            _ => Err(DecodeError::BadKey(s.to_string())),
        }
    }
}

/// What one run must do: reconcile these Ingresses, and/or sweep everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub ingresses: BTreeSet<IngressKey>,
    pub sweep: bool,
    /// Ingresses of `ingresses` that a record says were deleted, with the UID it named.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: BTreeMap<IngressKey, String>,
    /// The run is one shard of a sharded sweep: `ingresses` are that shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSpec>,
}

/// A change seen in a trigger, before it is mapped to Ingresses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// The Ingress itself changed.
    Ingress(IngressKey),
    /// The Ingress was deleted, and the record names its UID: its CLBs are released by that
    /// UID, without listing the cluster.
    IngressDeleted { key: IngressKey, uid: String },
    /// A Service (or its Endpoints/EndpointSlices) changed: Ingresses of the namespace using it.
    Service { namespace: String, name: String },
    /// A Secret changed: Ingresses of the namespace naming it in `tls[].secretName`.
    Secret { namespace: String, name: String },
    /// Something namespace-wide and unnamed (deletecollection, a generateName create, an
    /// EndpointSlice whose Service cannot be told, a TkeServiceConfig): every Ingress there.
    Namespace { namespace: String },
    /// A Node changed: every NodePort-mode Ingress, coalesced into one lookup.
    Nodes,
    /// An IngressClass changed, or the timer fired: the sweep (every Ingress, and orphans).
    Sweep,
    /// One shard of a sharded sweep: the Ingresses of its bucket, never orphans.
    SweepShard(ShardSpec),
}

/// Why an item produced no change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Audit stage other than ResponseComplete (the request may still fail).
    Incomplete,
    /// responseStatus.code ≥ 400: nothing was persisted.
    Failed,
    /// `dryRun` in the request URI: nothing was persisted.
    DryRun,
    /// get/list/watch and non-resource requests change nothing.
    Read,
    /// Our own write (user agent, audit-ID prefix, reporting controller).
    Own,
    /// A resource or subresource that never affects a CLB (e.g. `ingresses/status`).
    Unrelated,
    /// An item whose shape is not understood; kept out so the rest of the batch still counts.
    Malformed,
}

/// Where a payload came from, as recognised by its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// audit.k8s.io/v1 EventList (or a bare audit Event / array of them) from the webhook.
    Audit,
    /// Audit records shipped to CLS and delivered by the SCF CLS trigger.
    Cls,
    /// One Kubernetes Event, raw or in an exporter's layout.
    Event,
    /// The SCF timer trigger.
    Timer,
    /// A shard event sent by the coordinating sweep (SCF async Invoke or local HTTP).
    Shard,
}

/// A decoded, deduplicated batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decoded {
    pub source: Source,
    /// Items in the payload (audit events, CLS records, Events).
    pub items: usize,
    pub changes: BTreeSet<Change>,
    pub skipped: BTreeMap<SkipReason, usize>,
}

impl Decoded {
    fn new(source: Source) -> Self {
        Self {
            source,
            items: 0,
            changes: BTreeSet::new(),
            skipped: BTreeMap::new(),
        }
    }

    fn record(&mut self, result: Result<Change, SkipReason>) {
        self.items += 1;
        match result {
            Ok(change) => {
                self.changes.insert(change);
            }
            Err(reason) => *self.skipped.entry(reason).or_default() += 1,
        }
    }
}

/// A payload, by shape: either changes, or an HTTP envelope whose body is itself a payload.
#[derive(Debug)]
pub enum Payload {
    Decoded(Decoded),
    Http(HttpEnvelope),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not JSON: {0}")]
    Json(String),
    #[error("payload not recognised: {0}")]
    Unrecognised(&'static str),
    #[error("CLS payload: {0}")]
    Cls(String),
    #[error("HTTP envelope: {0}")]
    Envelope(&'static str),
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    #[error("not an ingress key (want NAMESPACE/NAME): {0:?}")]
    BadKey(String),
}

/// Parses JSON bytes and recognises the payload by shape.
pub fn decode_bytes(bytes: &[u8]) -> Result<Payload, DecodeError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    decode(&value)
}

/// Recognises a payload by its shape and decodes it.
pub fn decode(value: &Value) -> Result<Payload, DecodeError> {
    match value {
        Value::Array(items) => {
            let mut audit = Decoded::new(Source::Audit);
            let mut any_audit = false;
            for item in items {
                any_audit |= is_audit_event(item);
                audit.record(item_change(item));
            }
            if !any_audit && !items.is_empty() {
                audit.source = Source::Event;
            }
            Ok(Payload::Decoded(audit))
        }
        Value::Object(map) => {
            if let Some(cls) = map.get("clslogs") {
                return cls::decode(cls).map(Payload::Decoded);
            }
            if map.get("Type").and_then(Value::as_str) == Some("Timer") {
                let mut timer = Decoded::new(Source::Timer);
                timer.record(Ok(Change::Sweep));
                return Ok(Payload::Decoded(timer));
            }
            if let Some(body) = map.get(SHARD_EVENT_KEY) {
                let spec = ShardSpec::from_event_body(body)?;
                let mut shard = Decoded::new(Source::Shard);
                shard.record(Ok(Change::SweepShard(spec)));
                return Ok(Payload::Decoded(shard));
            }
            if map.contains_key("httpMethod") {
                return envelope::decode(map).map(Payload::Http);
            }
            if let Some(items) = map.get("items") {
                let Some(items) = items.as_array() else {
                    return Err(DecodeError::Unrecognised("`items` is not a list"));
                };
                let mut audit = Decoded::new(Source::Audit);
                for item in items {
                    audit.record(item_change(item));
                }
                return Ok(Payload::Decoded(audit));
            }
            if is_audit_event(value) {
                let mut audit = Decoded::new(Source::Audit);
                audit.record(audit::change(value));
                return Ok(Payload::Decoded(audit));
            }
            if event::is_event(value) {
                let mut ev = Decoded::new(Source::Event);
                ev.record(event::change(value));
                return Ok(Payload::Decoded(ev));
            }
            Err(DecodeError::Unrecognised(
                "expected an audit EventList, an Event, a CLS, timer or shard event, or an HTTP envelope",
            ))
        }
        _ => Err(DecodeError::Unrecognised(
            "payload is not a JSON object or list",
        )),
    }
}

/// An item of a list: an audit event or a Kubernetes Event, whichever shape it has.
fn item_change(item: &Value) -> Result<Change, SkipReason> {
    if is_audit_event(item) {
        audit::change(item)
    } else if event::is_event(item) {
        event::change(item)
    } else {
        Err(SkipReason::Malformed)
    }
}

/// Items inside a webhook EventList carry no `kind`, so recognise the audit-only fields.
fn is_audit_event(v: &Value) -> bool {
    v.get("auditID").is_some() && v.get("stage").is_some()
}

/// Which Ingresses a Kubernetes object of `kind` affects (Event `involvedObject.kind`).
fn kind_change(kind: &str, namespace: &str, name: &str) -> Result<Change, SkipReason> {
    let named = |make: fn(String, String) -> Change| {
        if namespace.is_empty() || name.is_empty() {
            Err(SkipReason::Malformed)
        } else {
            Ok(make(namespace.to_string(), name.to_string()))
        }
    };
    match kind {
        "Ingress" => named(|ns, n| Change::Ingress(IngressKey::new(ns, n))),
        "Service" | "Endpoints" => named(|namespace, name| Change::Service { namespace, name }),
        "Secret" => named(|namespace, name| Change::Secret { namespace, name }),
        "EndpointSlice" | "TkeServiceConfig" if !namespace.is_empty() => Ok(Change::Namespace {
            namespace: namespace.to_string(),
        }),
        "Node" => Ok(Change::Nodes),
        "IngressClass" => Ok(Change::Sweep),
        _ => Err(SkipReason::Unrelated),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decoded(v: Value) -> Decoded {
        match decode(&v) {
            Ok(Payload::Decoded(d)) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shard_event_decodes_to_one_shard_change() {
        let d =
            decoded(json!({"clbIngressSweepShard": {"index": 1, "count": 4, "generation": "g-7"}}));
        assert_eq!(d.source, Source::Shard);
        assert_eq!(d.items, 1);
        let spec = ShardSpec::new(1, 4, "g-7").unwrap();
        assert_eq!(
            d.changes.into_iter().collect::<Vec<_>>(),
            vec![Change::SweepShard(spec)]
        );
    }

    #[test]
    fn malformed_or_out_of_range_shard_events_are_clear_errors() {
        for (bad, says) in [
            (
                json!({"clbIngressSweepShard": {"index": 0, "count": 0, "generation": "g"}}),
                "count",
            ),
            (
                json!({"clbIngressSweepShard": {"index": 3, "count": 3, "generation": "g"}}),
                "index 3",
            ),
            (
                json!({"clbIngressSweepShard": {"index": 0, "count": 2}}),
                "generation",
            ),
            (
                json!({"clbIngressSweepShard": {"index": "0", "count": 2, "generation": "g"}}),
                "integers",
            ),
            (json!({"clbIngressSweepShard": "0/2"}), "not an object"),
        ] {
            match decode(&bad) {
                Err(e @ DecodeError::Shard(_)) => {
                    assert!(e.to_string().contains(says), "{e} should say {says}")
                }
                other => panic!("{bad} decoded as {other:?}"),
            }
        }
    }
}
