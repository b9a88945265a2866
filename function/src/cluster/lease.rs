//! The per-Ingress Lease: a mutex between concurrent runs, held through the apiserver's
//! optimistic concurrency (kubernetes-triggers.md §3.9).
//!
//! - acquire: create the Lease (409 AlreadyExists = someone was first), or, when it is free or
//!   expired, update it carrying the resourceVersion just read (409 Conflict = lost the race);
//! - busy: a run that finds the Lease held marks it dirty (an annotation, written with the same
//!   resourceVersion guard) and skips; the holder, on release, learns of the mark and runs again.
//!   Either the marker's write lands before the release (the holder sees it) or the release
//!   lands first (the marker's write conflicts, it reads again and finds the Lease free), so a
//!   request for work is never lost;
//! - release: clear the holder and the dirty mark in one guarded update; a holder with no time
//!   left for another run clears only the holder, so the mark waits for the next run.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Api;
use sha2::{Digest, Sha256};

use super::{status_code, ClusterClient, ClusterError};
use crate::identity;
use crate::model::create_epoch::{self, EPOCH_ANNOTATION};

/// Annotation on the Lease asking its holder to run once more.
pub const DIRTY_ANNOTATION: &str = "clb-ingress.cloud.tencent.com/dirty";
/// Prefix of every Lease name.
const LEASE_PREFIX: &str = "clb-ingress-";
/// Longest object name the apiserver accepts (DNS subdomain).
const NAME_MAX: usize = 253;
/// A Lease counts as expired only this long after `renewTime + leaseDurationSeconds`: runs on
/// different machines compare their own clocks with the holder's, and a little skew must not
/// let two runs overlap.
pub const CLOCK_SKEW_MARGIN: SignedDuration = SignedDuration::from_secs(5);
/// Rounds of read-then-guarded-write before giving up; each lost round means another run
/// changed the Lease, so this bounds contention, not failures.
const ATTEMPTS: usize = 8;

/// The Lease name for an Ingress: `clb-ingress-<name>`, or, when that would be too long,
/// a cut of it plus a hash of the full name (so two long names cannot collide).
pub fn lease_name(ingress_name: &str) -> String {
    let plain = format!("{LEASE_PREFIX}{ingress_name}");
    if plain.len() <= NAME_MAX {
        return plain;
    }
    let hash = hex::encode(Sha256::digest(ingress_name.as_bytes()));
    let hash = &hash[..16];
    let keep = NAME_MAX - LEASE_PREFIX.len() - hash.len() - 1;
    let mut cut: String = ingress_name.chars().take(keep).collect();
    while cut.len() > keep {
        cut.pop();
    }
    let cut = cut.trim_end_matches(['.', '-']);
    format!("{LEASE_PREFIX}{cut}-{hash}")
}

/// What a Lease means to a would-be holder at time `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// No holder.
    Free,
    /// Held by the caller already.
    Ours,
    /// Held by someone who has not renewed in time: may be taken over.
    Expired { holder: String },
    /// Held by someone else until (at least) `until`.
    Held { holder: String, until: Timestamp },
}

/// The pure expiry decision. A holder with no renew/acquire time or no duration gives no
/// evidence of being alive and counts as expired.
pub fn lease_state(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> LeaseState {
    let Some(spec) = spec else {
        return LeaseState::Free;
    };
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return LeaseState::Free,
        Some(holder) => holder,
    };
    if holder == me {
        return LeaseState::Ours;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    let until = match (renewed, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(seconds)) if seconds > 0 => renewed
            .checked_add(SignedDuration::from_secs(i64::from(seconds)))
            .ok(),
        _ => None,
    };
    match until {
        Some(until)
            if until
                .checked_add(CLOCK_SKEW_MARGIN)
                .map_or(true, |deadline| now <= deadline) =>
        {
            LeaseState::Held {
                holder: holder.to_owned(),
                until,
            }
        }
        _ => LeaseState::Expired {
            holder: holder.to_owned(),
        },
    }
}

/// A held Lease; hand it back to [`ClusterClient::release_lease`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseGuard {
    pub namespace: String,
    pub name: String,
    pub holder: String,
    pub duration_seconds: i32,
    /// The create-epoch annotation as the acquiring read found it
    /// ([`crate::model::create_epoch`]).
    pub create_epoch: Option<String>,
}

/// The result of trying to take the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// We hold it; `took_over` from a holder whose lease had expired.
    Acquired {
        guard: LeaseGuard,
        took_over: Option<String>,
    },
    /// Someone else holds it; it now carries the dirty mark (ours or an earlier one).
    Busy { holder: String },
}

/// The result of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// Some run found the Lease busy while we held it: run again.
    pub dirty: bool,
}

fn annotation(lease: &Lease, key: &str) -> Option<String> {
    lease.metadata.annotations.as_ref()?.get(key).cloned()
}

fn is_dirty(lease: &Lease) -> bool {
    annotation(lease, DIRTY_ANNOTATION).is_some_and(|v| v == "true")
}

fn clear_dirty(lease: &mut Lease) {
    if let Some(annotations) = lease.metadata.annotations.as_mut() {
        annotations.remove(DIRTY_ANNOTATION);
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(identity::FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

impl ClusterClient {
    fn leases(&self, namespace: &str) -> Api<Lease> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn read_lease(
        &self,
        api: &Api<Lease>,
        target: &str,
    ) -> Result<Option<Lease>, ClusterError> {
        let name = target.rsplit('/').next().unwrap_or(target);
        match api.get(name).await {
            Ok(lease) => Ok(Some(lease)),
            Err(error) if status_code(&error) == Some(404) => Ok(None),
            Err(error) => Err(ClusterError::api("get lease", target, error)),
        }
    }

    /// Takes the Lease of `ingress_name` in `namespace` for `holder` (see
    /// [`ClusterClient::new_holder_identity`]), or marks it dirty when someone else holds it.
    /// `duration_seconds` should exceed the function's timeout, so a killed run is never
    /// overlapped.
    pub async fn acquire_lease(
        &self,
        namespace: &str,
        ingress_name: &str,
        holder: &str,
        duration_seconds: i32,
        now: Timestamp,
    ) -> Result<Acquire, ClusterError> {
        if namespace.is_empty() || ingress_name.is_empty() {
            return Err(ClusterError::Incomplete {
                kind: "Ingress",
                namespace: namespace.to_owned(),
                name: ingress_name.to_owned(),
                missing: "namespace and name for its lease",
            });
        }
        let name = lease_name(ingress_name);
        let target = format!("{namespace}/{name}");
        let api = self.leases(namespace);
        let guard = LeaseGuard {
            namespace: namespace.to_owned(),
            name: name.clone(),
            holder: holder.to_owned(),
            duration_seconds,
            create_epoch: None,
        };
        let held_spec = |transitions: i32| LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(duration_seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };

        for _ in 0..ATTEMPTS {
            let Some(mut lease) = self.read_lease(&api, &target).await? else {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(held_spec(0)),
                };
                match api.create(&post_params(), &lease).await {
                    Ok(_) => {
                        return Ok(Acquire::Acquired {
                            guard,
                            took_over: None,
                        })
                    }
                    Err(error) if status_code(&error) == Some(409) => continue,
                    Err(error) => return Err(ClusterError::api("create lease", &target, error)),
                }
            };
            let state = lease_state(lease.spec.as_ref(), holder, now);
            let took_over = match state {
                LeaseState::Held { holder: other, .. } => {
                    if is_dirty(&lease) {
                        return Ok(Acquire::Busy { holder: other });
                    }
                    let patch = serde_json::json!({
                        "metadata": {
                            "resourceVersion": lease.metadata.resource_version,
                            "annotations": {DIRTY_ANNOTATION: "true"},
                        }
                    });
                    let params = PatchParams {
                        field_manager: Some(identity::FIELD_MANAGER.to_owned()),
                        ..PatchParams::default()
                    };
                    match api.patch(&name, &params, &Patch::Merge(&patch)).await {
                        Ok(_) => {
                            tracing::debug!(lease = %target, holder = %other, "lease busy, marked dirty");
                            return Ok(Acquire::Busy { holder: other });
                        }
                        Err(error) if matches!(status_code(&error), Some(409) | Some(404)) => {
                            continue
                        }
                        Err(error) => {
                            return Err(ClusterError::api("mark lease dirty", &target, error))
                        }
                    }
                }
                LeaseState::Expired { holder: previous } => Some(previous),
                LeaseState::Free | LeaseState::Ours => None,
            };
            let old = lease.spec.take().unwrap_or_default();
            let transitions = old.lease_transitions.unwrap_or(0);
            let changed_hands = old.holder_identity.as_deref() != Some(holder);
            let mut spec = held_spec(if changed_hands {
                transitions.saturating_add(1)
            } else {
                transitions
            });
            if !changed_hands {
                spec.acquire_time = old.acquire_time;
            }
            lease.spec = Some(spec);
            // The run we are starting reads everything afresh, which answers any earlier mark.
            clear_dirty(&mut lease);
            match api.replace(&name, &post_params(), &lease).await {
                Ok(_) => {
                    if let Some(previous) = &took_over {
                        tracing::info!(lease = %target, previous = %previous, "took over an expired lease");
                    }
                    let create_epoch = annotation(&lease, EPOCH_ANNOTATION);
                    let guard = LeaseGuard {
                        create_epoch,
                        ..guard
                    };
                    return Ok(Acquire::Acquired { guard, took_over });
                }
                Err(error) if matches!(status_code(&error), Some(409) | Some(404)) => continue,
                Err(error) => return Err(ClusterError::api("update lease", &target, error)),
            }
        }
        Err(ClusterError::LeaseContended {
            namespace: namespace.to_owned(),
            name,
            attempts: ATTEMPTS,
        })
    }

    /// Moves `renewTime` to `now`, keeping any dirty mark. Fails with
    /// [`ClusterError::LeaseLost`] when someone else holds it now.
    pub async fn renew_lease(
        &self,
        guard: &LeaseGuard,
        now: Timestamp,
    ) -> Result<(), ClusterError> {
        self.settle_lease(guard, |lease| {
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(guard.duration_seconds);
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Gives the Lease up and reports whether it was marked dirty meanwhile (then the caller
    /// runs again). Fails with [`ClusterError::LeaseLost`] when someone else holds it now.
    pub async fn release_lease(&self, guard: LeaseGuard) -> Result<Released, ClusterError> {
        self.give_up_lease(guard, false).await
    }

    /// [`Self::release_lease`] for a holder that cannot run again (no time left): a dirty mark
    /// stays on the free Lease, so the request outlives this run and the next run that takes
    /// the Lease answers it (its fresh read is what the mark asks for).
    pub async fn release_lease_keeping_mark(
        &self,
        guard: LeaseGuard,
    ) -> Result<Released, ClusterError> {
        self.give_up_lease(guard, true).await
    }

    async fn give_up_lease(
        &self,
        guard: LeaseGuard,
        keep_mark: bool,
    ) -> Result<Released, ClusterError> {
        self.settle_lease(&guard, |lease| {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            if !keep_mark {
                clear_dirty(lease);
            }
            Ok(())
        })
        .await
        .map(|dirty| Released { dirty })
    }

    /// Moves the create epoch of `uid` on from `from` (the epoch this run read when it took the
    /// Lease) while `guard` still holds the Lease, in one guarded update; refused when the
    /// Lease changed hands or another run moved the epoch. Returns the new epoch.
    pub async fn bump_create_epoch(
        &self,
        guard: &LeaseGuard,
        uid: &str,
        from: u64,
    ) -> Result<u64, ClusterError> {
        self.settle_lease(guard, |lease| {
            let value =
                create_epoch::bumped(annotation(lease, EPOCH_ANNOTATION).as_deref(), uid, from)?;
            lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(EPOCH_ANNOTATION.to_owned(), value);
            Ok(())
        })
        .await?;
        Ok(from + 1)
    }

    /// Deletes the Lease a gone Ingress left behind when nobody live holds it. Best effort: the
    /// delete carries the read resourceVersion, so a run that takes the Lease meanwhile wins,
    /// and a Lease left behind only costs an object.
    pub async fn forget_lease(&self, namespace: &str, ingress_name: &str) {
        let api = self.leases(namespace);
        let name = lease_name(ingress_name);
        let target = format!("{namespace}/{name}");
        let lease = match self.read_lease(&api, &target).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "reading a gone Ingress's lease");
                return;
            }
        };
        if !matches!(
            lease_state(lease.spec.as_ref(), "", Timestamp::now()),
            LeaseState::Free | LeaseState::Expired { .. }
        ) {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: lease.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            // Refused: the cluster's RBAC lacks `delete` on leases (infra/kubernetes/rbac.yaml
            // grants it), so every gone Ingress leaves its Lease behind; an operator must see it.
            Err(e) if status_code(&e) == Some(403) => {
                tracing::warn!(lease = %target, error = %e, "not allowed to delete a gone Ingress's lease");
            }
            // Taken or changed meanwhile (409), or already gone (404): nothing to do.
            Err(e) => tracing::debug!(error = %e, "deleting a gone Ingress's lease"),
        }
    }

    /// Read, check we still hold it, change, write with the read version; again on conflict
    /// (a dirty mark landing in between is the usual cause). Returns the dirty mark as read
    /// in the round that succeeded.
    async fn settle_lease(
        &self,
        guard: &LeaseGuard,
        change: impl Fn(&mut Lease) -> Result<(), ClusterError>,
    ) -> Result<bool, ClusterError> {
        let target = format!("{}/{}", guard.namespace, guard.name);
        let api = self.leases(&guard.namespace);
        let lost = || ClusterError::LeaseLost {
            namespace: guard.namespace.clone(),
            name: guard.name.clone(),
            holder: guard.holder.clone(),
        };
        for _ in 0..ATTEMPTS {
            let Some(mut lease) = self.read_lease(&api, &target).await? else {
                return Err(lost());
            };
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref());
            if holder != Some(guard.holder.as_str()) {
                return Err(lost());
            }
            let dirty = is_dirty(&lease);
            change(&mut lease)?;
            match api.replace(&guard.name, &post_params(), &lease).await {
                Ok(_) => return Ok(dirty),
                Err(error) if status_code(&error) == Some(409) => continue,
                Err(error) if status_code(&error) == Some(404) => return Err(lost()),
                Err(error) => return Err(ClusterError::api("update lease", &target, error)),
            }
        }
        Err(ClusterError::LeaseContended {
            namespace: guard.namespace.clone(),
            name: guard.name.clone(),
            attempts: ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn spec(holder: Option<&str>, renewed: Option<i64>, duration: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(|s| MicroTime(at(s))),
            lease_duration_seconds: duration,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn no_lease_or_no_holder_is_free() {
        assert_eq!(lease_state(None, "me", at(0)), LeaseState::Free);
        assert_eq!(
            lease_state(Some(&spec(None, Some(0), Some(60))), "me", at(0)),
            LeaseState::Free
        );
        assert_eq!(
            lease_state(Some(&spec(Some(""), Some(0), Some(60))), "me", at(0)),
            LeaseState::Free
        );
    }

    #[test]
    fn our_own_hold_is_ours_even_when_expired() {
        assert_eq!(
            lease_state(Some(&spec(Some("me"), Some(0), Some(60))), "me", at(1000)),
            LeaseState::Ours
        );
    }

    #[test]
    fn another_holder_is_held_until_duration_plus_skew_margin_has_passed() {
        let s = spec(Some("other"), Some(0), Some(60));
        let held = LeaseState::Held {
            holder: "other".into(),
            until: at(60),
        };
        assert_eq!(lease_state(Some(&s), "me", at(30)), held);
        assert_eq!(lease_state(Some(&s), "me", at(60)), held);
        let margin = CLOCK_SKEW_MARGIN.as_secs();
        assert_eq!(lease_state(Some(&s), "me", at(60 + margin)), held);
        assert_eq!(
            lease_state(Some(&s), "me", at(61 + margin)),
            LeaseState::Expired {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn acquire_time_stands_in_for_a_missing_renew_time() {
        let mut s = spec(Some("other"), None, Some(60));
        s.acquire_time = Some(MicroTime(at(100)));
        assert!(matches!(
            lease_state(Some(&s), "me", at(150)),
            LeaseState::Held { .. }
        ));
    }

    #[test]
    fn a_holder_without_times_or_duration_counts_as_expired() {
        for s in [
            spec(Some("other"), None, Some(60)),
            spec(Some("other"), Some(0), None),
            spec(Some("other"), Some(0), Some(0)),
        ] {
            assert_eq!(
                lease_state(Some(&s), "me", at(1)),
                LeaseState::Expired {
                    holder: "other".into()
                }
            );
        }
    }

    #[test]
    fn lease_name_is_prefixed_and_hashed_only_when_too_long() {
        assert_eq!(lease_name("web"), "clb-ingress-web");
        let long_a = format!("{}x", "a".repeat(252));
        let long_b = format!("{}y", "a".repeat(252));
        let (a, b) = (lease_name(&long_a), lease_name(&long_b));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b);
        assert!(a.starts_with("clb-ingress-aaa"));
        assert_eq!(a, lease_name(&long_a));
    }
}

#[cfg(test)]
mod name_properties {
    use super::lease_name;
    use crate::cluster::event_name;
    use proptest::prelude::*;

    const SUBDOMAIN: &str =
        r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?){0,8}";

    fn is_subdomain(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    proptest! {
        #[test]
        fn lease_and_event_names_of_any_ingress_name_are_valid_object_names(
            name in SUBDOMAIN,
            other in SUBDOMAIN,
        ) {
            let lease = lease_name(&name);
            prop_assert!(is_subdomain(&lease), "{}", lease);
            if name != other {
                prop_assert_ne!(lease, lease_name(&other));
            }
            let event = event_name(&name, "uid", "Reason", "note");
            prop_assert!(is_subdomain(&event), "{}", event);
        }
    }
}
