//! The create epoch: which CreateLoadBalancer `ClientToken` an Ingress creates with now.
//!
//! A token answers the CLB it first made for as long as the API remembers it, even after that
//! CLB was deleted or taken out of the cluster. One token per Ingress UID would make every
//! later create replay every CLB the Ingress ever lost (each a sustained proof that it is
//! gone). So the token is derived from (cluster, UID, epoch), and the epoch moves on, under
//! the Ingress's Lease, before a CLB made with the current token stops being ours: before we
//! delete or disown one, and when a replay proved the token's CLB gone or not ours. Each
//! epoch's token is sent for at most one CLB, so a create after any number of such cycles is
//! one CreateLoadBalancer, and a run killed after a create (or a stale read) still replays
//! the token that made the CLB rather than minting a second one.
//!
//! The epoch lives in an annotation of the Lease as `<uid>:<n>`: the UID keeps an Ingress
//! re-created under the same name (same Lease) from inheriting its predecessor's epoch.

use sha2::{Digest, Sha256};

use super::desired::client_token;

/// Annotation on the Ingress's Lease holding its create epoch.
pub const EPOCH_ANNOTATION: &str = "clb-ingress.cloud.tencent.com/create-epoch";

/// The epoch of `uid` recorded in `value` (the annotation), 0 when the annotation is missing,
/// malformed or belongs to another UID (an earlier Ingress of the same name): epoch 0 is the
/// token every CLB was created with before epochs existed, so a missing record replays it.
pub fn epoch_of(value: Option<&str>, uid: &str) -> u64 {
    value
        .and_then(|v| v.rsplit_once(':'))
        .filter(|(owner, _)| *owner == uid)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// The annotation value recording epoch `n` for `uid`.
pub fn epoch_value(uid: &str, n: u64) -> String {
    format!("{uid}:{n}")
}

/// The `ClientToken` of epoch `n`: 64 hex characters (the API's limit), the same for every
/// run that reads the same epoch. Epoch 0 is [`client_token`] itself.
pub fn epoch_token(cluster_id: &str, uid: &str, n: u64) -> String {
    if n == 0 {
        return client_token(cluster_id, uid);
    }
    let digest = Sha256::digest(format!("clb-ingress/{cluster_id}/{uid}/epoch/{n}").as_bytes());
    hex::encode(digest)
}

/// Why moving the epoch on from `from` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EpochMoved {
    /// The record says another epoch than the one the run decided on: another run moved it
    /// (this one lost the Lease meanwhile). Creating with either token could make a second
    /// CLB, so the run stops and the next one starts from the record.
    #[error("the create epoch of {uid} is {found}, not {expected}: another run moved it")]
    Stale {
        uid: String,
        expected: u64,
        found: u64,
    },
}

/// The annotation value after a run that decided on epoch `from` moves it on: compare and
/// set, so only a run that still sees its own epoch advances it.
pub fn bumped(value: Option<&str>, uid: &str, from: u64) -> Result<String, EpochMoved> {
    let found = epoch_of(value, uid);
    if found != from {
        return Err(EpochMoved::Stale {
            uid: uid.to_string(),
            expected: from,
            found,
        });
    }
    Ok(epoch_value(uid, from + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_belongs_to_one_uid_and_anything_else_reads_as_zero() {
        assert_eq!(epoch_of(Some("uid-1:7"), "uid-1"), 7);
        assert_eq!(epoch_of(Some("uid-1:7"), "uid-2"), 0);
        assert_eq!(epoch_of(None, "uid-1"), 0);
        for bad in ["", "uid-1", "uid-1:", "uid-1:x", "uid-1:-1", ":3"] {
            assert_eq!(epoch_of(Some(bad), "uid-1"), 0, "{bad}");
        }
        assert_eq!(epoch_of(Some(&epoch_value("uid-1", 12)), "uid-1"), 12);
    }

    #[test]
    fn epoch_zero_is_the_token_clbs_were_always_created_with_and_later_epochs_are_new() {
        assert_eq!(
            epoch_token("cls-1", "uid-1", 0),
            client_token("cls-1", "uid-1")
        );
        let tokens: Vec<String> = (0..6).map(|n| epoch_token("cls-1", "uid-1", n)).collect();
        for (i, a) in tokens.iter().enumerate() {
            assert_eq!(a.len(), 64);
            assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(tokens[i + 1..].iter().all(|b| b != a), "epoch {i} repeats");
        }
        assert_eq!(tokens[3], epoch_token("cls-1", "uid-1", 3));
        assert_ne!(tokens[3], epoch_token("cls-1", "uid-2", 3));
        assert_ne!(tokens[3], epoch_token("cls-2", "uid-1", 3));
    }

    #[test]
    fn only_a_run_that_still_sees_its_own_epoch_moves_it_on() {
        assert_eq!(bumped(None, "uid-1", 0).as_deref(), Ok("uid-1:1"));
        assert_eq!(
            bumped(Some("uid-1:4"), "uid-1", 4).as_deref(),
            Ok("uid-1:5")
        );
        // A re-created Ingress starts over from its own epoch 0.
        assert_eq!(
            bumped(Some("old-uid:9"), "uid-1", 0).as_deref(),
            Ok("uid-1:1")
        );
        // Another run moved it since this one read it: refused, nothing skipped.
        assert_eq!(
            bumped(Some("uid-1:5"), "uid-1", 4),
            Err(EpochMoved::Stale {
                uid: "uid-1".into(),
                expected: 4,
                found: 5
            })
        );
    }
}
