//! events.k8s.io/v1 Events about an Ingress, with repeats folded into `series`.
//!
//! A stateless function has no recorder cache to remember what it already said, so the Event's
//! name is derived from what makes it "the same event" (regarding UID, reason, note): any later
//! run finds it by GET and bumps `series` instead of creating another object.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use sha2::{Digest, Sha256};

use super::read::list_all;
use super::{status_code, ClusterClient, ClusterError};
use crate::identity;

/// events.k8s.io/v1 validation limit on `note` (bytes).
pub const NOTE_MAX_BYTES: usize = 1024;
/// Longest object name the apiserver accepts (DNS subdomain).
const NAME_MAX: usize = 253;
/// Hex characters of the hash in an Event name (64 bits: collisions are not a concern).
const NAME_HASH_HEX: usize = 16;
/// Attempts at a series update that keeps losing resourceVersion races to concurrent runs.
const SERIES_ATTEMPTS: usize = 5;

/// Label on every Event we write, naming the Ingress's UID: how a run lists what it already
/// said about one Ingress (or, in the sweep, about all of them) in one paged LIST.
pub const EVENT_UID_LABEL: &str = "clb-ingress.cloud.tencent.com/ingress-uid";
/// A problem already reported within this long is not written again (not even its series):
/// a lasting problem costs no write and no Lease per run, and its Event is refreshed at most
/// this often so it outlives the apiserver's event TTL (one hour by default).
pub const EVENT_REPEAT_AFTER: SignedDuration = SignedDuration::from_secs(30 * 60);

/// `type` of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One thing to tell the user about an Ingress.
#[derive(Clone, Debug)]
pub struct EventRecord<'a> {
    pub type_: EventType,
    /// Stable CamelCase code (e.g. `EnsuringLoadBalancer`, `E4041`).
    pub reason: &'a str,
    /// What we were doing (e.g. `Reconcile`, `Release`).
    pub action: &'a str,
    /// Human text; truncated to [`NOTE_MAX_BYTES`].
    pub note: &'a str,
}

/// Whether an Event was new or a repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Created {
        name: String,
    },
    Repeated {
        name: String,
        count: i32,
    },
    /// Recorded within the repeat interval already: nothing written.
    Recent {
        name: String,
    },
}

/// Our Events, by (namespace, name), with when each was last observed: what the runs before
/// this one already reported.
#[derive(Clone, Debug, Default)]
pub struct Reported {
    last_seen: BTreeMap<(String, String), Timestamp>,
}

impl Reported {
    /// Whether `reason`/`note` about `ingress` was recorded since `now - EVENT_REPEAT_AFTER`.
    pub fn covers(&self, ingress: &Ingress, reason: &str, note: &str, now: Timestamp) -> bool {
        let (Some(ns), Some(name), Some(uid)) = (
            ingress.metadata.namespace.as_deref(),
            ingress.metadata.name.as_deref(),
            ingress.metadata.uid.as_deref(),
        ) else {
            return false;
        };
        let key = (
            ns.to_string(),
            event_name(name, uid, reason, truncate_note(note)),
        );
        self.last_seen
            .get(&key)
            .is_some_and(|seen| is_recent(*seen, now))
    }

    fn insert(&mut self, event: &Event) {
        let (Some(ns), Some(name), Some(seen)) = (
            event.metadata.namespace.clone(),
            event.metadata.name.clone(),
            last_observed(event),
        ) else {
            return;
        };
        self.last_seen.insert((ns, name), seen);
    }
}

/// When an Event was last seen: its series' last observation, else its own time.
fn last_observed(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(event.event_time.as_ref().map(|t| t.0))
}

fn is_recent(seen: Timestamp, now: Timestamp) -> bool {
    seen + EVENT_REPEAT_AFTER > now
}

/// `note` cut to at most [`NOTE_MAX_BYTES`] bytes on a character boundary.
pub fn truncate_note(note: &str) -> &str {
    if note.len() <= NOTE_MAX_BYTES {
        return note;
    }
    let mut end = NOTE_MAX_BYTES;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    &note[..end]
}

/// `<regarding name>.<16 hex of sha256(uid, reason, note)>`, the regarding name cut so the whole
/// stays a valid object name. `note` is the (truncated) note as stored.
pub fn event_name(regarding_name: &str, regarding_uid: &str, reason: &str, note: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [regarding_uid, reason, note] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hash = hex::encode(hasher.finalize());
    let keep = NAME_MAX - NAME_HASH_HEX - 1;
    // Object names are ASCII, but don't rely on outside input for a slice boundary.
    let mut prefix: String = regarding_name.chars().take(keep).collect();
    while prefix.len() > keep {
        prefix.pop();
    }
    let prefix = prefix.trim_end_matches(['.', '-']);
    format!("{prefix}.{}", &hash[..NAME_HASH_HEX])
}

/// The next `series` of an Event seen again: the first repeat is count 2 (the API requires a
/// series count of at least 2), later ones add one.
fn next_series_count(existing: Option<&EventSeries>) -> i32 {
    existing.map_or(2, |series| series.count.saturating_add(1).max(2))
}

impl ClusterClient {
    /// Records `record` about `ingress`: creates the Event, or, when the same (Ingress UID,
    /// reason, note) was recorded before by any run, bumps its `series`.
    pub async fn emit_event(
        &self,
        ingress: &Ingress,
        record: &EventRecord<'_>,
        now: Timestamp,
    ) -> Result<EventOutcome, ClusterError> {
        self.record_event(ingress, record, now, false).await
    }

    /// [`Self::emit_event`], but writes nothing when the same Event was recorded within
    /// [`EVENT_REPEAT_AFTER`]: the run's report of a problem that has not changed.
    pub async fn emit_event_unless_recent(
        &self,
        ingress: &Ingress,
        record: &EventRecord<'_>,
        now: Timestamp,
    ) -> Result<EventOutcome, ClusterError> {
        self.record_event(ingress, record, now, true).await
    }

    /// Our Events about the Ingress with `uid` in `namespace`, or, with neither, about every
    /// Ingress: one paged LIST by [`EVENT_UID_LABEL`].
    pub async fn reported_events(
        &self,
        scope: Option<(&str, &str)>,
    ) -> Result<(Reported, u32), ClusterError> {
        let (api, params): (Api<Event>, ListParams) = match scope {
            Some((namespace, uid)) => (
                Api::namespaced(self.client.clone(), namespace),
                ListParams::default().labels(&format!("{EVENT_UID_LABEL}={uid}")),
            ),
            None => (
                Api::all(self.client.clone()),
                ListParams::default().labels(EVENT_UID_LABEL),
            ),
        };
        let where_ = scope.map_or("all namespaces", |(ns, _)| ns);
        let events = list_all(&api, params, self.page_size)
            .await
            .map_err(|e| ClusterError::api("list events", where_, e))?;
        let pages = events.len().div_ceil(self.page_size.max(1) as usize).max(1) as u32;
        let mut reported = Reported::default();
        for e in &events {
            reported.insert(e);
        }
        Ok((reported, pages))
    }

    async fn record_event(
        &self,
        ingress: &Ingress,
        record: &EventRecord<'_>,
        now: Timestamp,
        unless_recent: bool,
    ) -> Result<EventOutcome, ClusterError> {
        let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
        let ingress_name = ingress.metadata.name.clone().unwrap_or_default();
        let incomplete = |missing| ClusterError::Incomplete {
            kind: "Ingress",
            namespace: namespace.clone(),
            name: ingress_name.clone(),
            missing,
        };
        if ingress_name.is_empty() {
            return Err(incomplete("metadata.name"));
        }
        if namespace.is_empty() {
            return Err(incomplete("metadata.namespace"));
        }
        let Some(uid) = ingress.metadata.uid.clone() else {
            return Err(incomplete("metadata.uid"));
        };
        let note = truncate_note(record.note);
        let name = event_name(&ingress_name, &uid, record.reason, note);
        let target = format!("{namespace}/{name}");
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);

        for _ in 0..SERIES_ATTEMPTS {
            let existing = match api.get(&name).await {
                Ok(event) => Some(event),
                Err(error) if status_code(&error) == Some(404) => None,
                Err(error) => return Err(ClusterError::api("get event", &target, error)),
            };
            let Some(existing) = existing else {
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        labels: Some([(EVENT_UID_LABEL.to_string(), uid.clone())].into()),
                        ..ObjectMeta::default()
                    },
                    event_time: Some(MicroTime(now)),
                    regarding: Some(ObjectReference {
                        api_version: Some("networking.k8s.io/v1".into()),
                        kind: Some("Ingress".into()),
                        namespace: Some(namespace.clone()),
                        name: Some(ingress_name.clone()),
                        uid: Some(uid.clone()),
                        resource_version: ingress.metadata.resource_version.clone(),
                        field_path: None,
                    }),
                    reason: Some(record.reason.to_owned()),
                    action: Some(record.action.to_owned()),
                    note: Some(note.to_owned()),
                    type_: Some(record.type_.as_str().to_owned()),
                    reporting_controller: Some(identity::REPORTING_CONTROLLER.to_owned()),
                    reporting_instance: Some(self.instance.to_string()),
                    ..Event::default()
                };
                let params = PostParams {
                    field_manager: Some(identity::FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                match api.create(&params, &event).await {
                    Ok(_) => return Ok(EventOutcome::Created { name }),
                    // A concurrent run created it first: count ours as a repeat.
                    Err(error) if status_code(&error) == Some(409) => continue,
                    Err(error) => return Err(ClusterError::api("create event", &target, error)),
                }
            };
            if unless_recent && last_observed(&existing).is_some_and(|seen| is_recent(seen, now)) {
                return Ok(EventOutcome::Recent { name });
            }
            let count = next_series_count(existing.series.as_ref());
            // The label too: an Event written before it existed becomes listable.
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": existing.metadata.resource_version,
                    "labels": {EVENT_UID_LABEL: uid},
                },
                "series": {"count": count, "lastObservedTime": MicroTime(now)},
            });
            let params = PatchParams {
                field_manager: Some(identity::FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match api.patch(&name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(EventOutcome::Repeated { name, count }),
                // Another run bumped it between our GET and PATCH; read again so neither
                // repeat is lost. A 404 means it expired meanwhile: create it afresh.
                Err(error) if matches!(status_code(&error), Some(409) | Some(404)) => continue,
                Err(error) => return Err(ClusterError::api("patch event series", &target, error)),
            }
        }
        Err(ClusterError::Conflict {
            kind: "Event",
            namespace,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_name_is_stable_and_differs_by_uid_reason_and_note() {
        let a = event_name("web", "uid-1", "E4041", "service missing");
        assert_eq!(a, event_name("web", "uid-1", "E4041", "service missing"));
        assert!(a.starts_with("web."));
        assert_eq!(a.len(), "web.".len() + NAME_HASH_HEX);
        assert_ne!(a, event_name("web", "uid-2", "E4041", "service missing"));
        assert_ne!(a, event_name("web", "uid-1", "E4042", "service missing"));
        assert_ne!(a, event_name("web", "uid-1", "E4041", "service missing!"));
        // Field boundaries are length-prefixed, so shifting text between fields changes it.
        assert_ne!(
            event_name("web", "u", "ab", "c"),
            event_name("web", "u", "a", "bc")
        );
    }

    #[test]
    fn event_name_of_a_longest_ingress_name_stays_a_valid_object_name() {
        let long = "a".repeat(253);
        let name = event_name(&long, "uid", "Reason", "note");
        assert_eq!(name.len(), NAME_MAX);
        let dotted = format!("{}.b", "a".repeat(235));
        let name = event_name(&dotted, "uid", "Reason", "note");
        assert!(name.len() <= NAME_MAX);
        assert!(!name.contains(".."));
    }

    #[test]
    fn note_is_truncated_to_1kib_on_a_char_boundary() {
        assert_eq!(truncate_note("short"), "short");
        let ascii = "x".repeat(2000);
        assert_eq!(truncate_note(&ascii).len(), NOTE_MAX_BYTES);
        let wide = "证".repeat(400); // 3 bytes each: 1024 is not a boundary
        let cut = truncate_note(&wide);
        assert_eq!(cut.len(), 1023);
        assert!(cut.chars().all(|c| c == '证'));
    }

    #[test]
    fn first_repeat_is_series_count_two_then_increments() {
        assert_eq!(next_series_count(None), 2);
        let series = EventSeries {
            count: 2,
            last_observed_time: MicroTime(Timestamp::UNIX_EPOCH),
        };
        assert_eq!(next_series_count(Some(&series)), 3);
        let odd = EventSeries {
            count: 0,
            last_observed_time: MicroTime(Timestamp::UNIX_EPOCH),
        };
        assert_eq!(next_series_count(Some(&odd)), 2);
    }
}
