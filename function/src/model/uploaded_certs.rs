//! Standard `kubernetes.io/tls` Secrets (PEM `tls.crt`/`tls.key`, no `qcloud_cert_id`): the
//! function uploads the certificate to Tencent Cloud SSL itself and binds the id exactly like
//! a `qcloud_cert_id` (tencent-cloud-more.md §3.4). This module is the pure part: which
//! Secrets want an upload, how an uploaded certificate is marked ours (SSL tags, which
//! UploadCertificate takes [SDK]), and which uploaded certificate is the current one.
//!
//! A certificate is ours when it carries our cluster tag and a Secret-UID tag; it is the
//! current one for a Secret when its UID and the SHA-256 of the Secret's `tls.crt` match, so
//! a changed Secret gets a new upload and the old one is deleted once no CLB binds it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::ownership::TAG_CLUSTER_ID;
use super::tls::CERT_ID_KEY;
use super::view::ClusterView;

/// SSL tag naming the UID of the Secret an uploaded certificate came from.
pub const TAG_SECRET_UID: &str = "clb-ingress-secret-uid";
/// SSL tag holding the SHA-256 (hex) of the Secret's `tls.crt` that was uploaded.
pub const TAG_CERT_SHA256: &str = "clb-ingress-cert-sha256";
/// The PEM certificate chain of a `kubernetes.io/tls` Secret (public: may be kept in views).
pub const TLS_CRT_KEY: &str = "tls.crt";
/// The PEM private key: read only on upload, never kept in a view.
pub const TLS_KEY_KEY: &str = "tls.key";

/// The outcome of looking up (and under the Lease, uploading) the views' certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadedCerts {
    /// Secret name → id of our uploaded certificate of its current `tls.crt`.
    pub ids: BTreeMap<String, String>,
    /// Secret name → why its upload failed (an API error code, never content).
    pub failed: BTreeMap<String, String>,
}

/// One Secret whose certificate must be in SSL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub secret: String,
    pub secret_uid: String,
    pub sha256: String,
}

/// SHA-256 (hex) of a `tls.crt`, as bytes read.
pub fn cert_sha256(tls_crt: &[u8]) -> String {
    hex::encode(Sha256::digest(tls_crt))
}

fn tls_crt(secret: &Secret) -> Option<&[u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(TLS_CRT_KEY))
        .map(|b| b.0.as_slice())
        .filter(|b| !b.is_empty())
}

/// Whether the model should expect an upload for this Secret: no certificate id, but a PEM
/// certificate (a `kubernetes.io/tls` Secret, or any carrying `tls.crt`).
pub fn wants_upload(secret: &Secret) -> bool {
    let has_id = secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(CERT_ID_KEY))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(CERT_ID_KEY));
    !has_id && tls_crt(secret).is_some()
}

/// The Secrets of the view that want an uploaded certificate, by name.
pub fn wanted(view: &ClusterView) -> Vec<Wanted> {
    view.secrets
        .iter()
        .filter(|(_, s)| wants_upload(s))
        .filter_map(|(name, s)| {
            Some(Wanted {
                secret: name.clone(),
                secret_uid: s.metadata.uid.clone().filter(|u| !u.is_empty())?,
                sha256: cert_sha256(tls_crt(s)?),
            })
        })
        .collect()
}

/// The tags an upload carries: our cluster, the Secret's UID, the certificate's hash.
pub fn tags_for(cluster_id: &str, secret_uid: &str, sha256: &str) -> Vec<(String, String)> {
    vec![
        (TAG_CLUSTER_ID.to_string(), cluster_id.to_string()),
        (TAG_SECRET_UID.to_string(), secret_uid.to_string()),
        (TAG_CERT_SHA256.to_string(), sha256.to_string()),
    ]
}

/// Ours: our cluster tag and a Secret-UID tag (only this function sets that key).
pub fn is_ours(cluster_id: &str, tag: impl Fn(&str) -> Option<String>) -> bool {
    tag(TAG_CLUSTER_ID).as_deref() == Some(cluster_id)
        && tag(TAG_SECRET_UID).is_some_and(|u| !u.is_empty())
}

/// The current certificate of `w`: ours, for its Secret UID and its `tls.crt` hash.
pub fn is_current(cluster_id: &str, w: &Wanted, tag: impl Fn(&str) -> Option<String>) -> bool {
    is_ours(cluster_id, &tag)
        && tag(TAG_SECRET_UID).as_deref() == Some(w.secret_uid.as_str())
        && tag(TAG_CERT_SHA256).as_deref() == Some(w.sha256.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(v: serde_json::Value) -> Secret {
        serde_json::from_value(v).unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_tls_secret_without_a_certificate_id_wants_an_upload_one_with_an_id_does_not() {
        let crt = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"; // base64 of a PEM header
        let tls = secret(
            json!({"metadata": {"name": "t", "uid": "u1"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": crt}}),
        );
        let with_id = secret(json!({"metadata": {"name": "i", "uid": "u2"},
            "data": {"tls.crt": crt, "qcloud_cert_id": "Y2VydA=="}}));
        let empty = secret(json!({"metadata": {"name": "e", "uid": "u3"}, "data": {}}));
        assert!(wants_upload(&tls));
        assert!(!wants_upload(&with_id));
        assert!(!wants_upload(&empty));
        let view = ClusterView {
            secrets: [
                ("t".into(), tls),
                ("i".into(), with_id),
                ("e".into(), empty),
            ]
            .into(),
            ..Default::default()
        };
        let w = wanted(&view);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].secret.as_str(), w[0].secret_uid.as_str()),
            ("t", "u1")
        );
        assert_eq!(w[0].sha256.len(), 64);
    }

    #[test]
    fn the_current_certificate_matches_cluster_uid_and_hash_and_ours_needs_both_marks() {
        let w = Wanted {
            secret: "t".into(),
            secret_uid: "u1".into(),
            sha256: "abc".into(),
        };
        let all = [
            (TAG_CLUSTER_ID, "cls-1"),
            (TAG_SECRET_UID, "u1"),
            (TAG_CERT_SHA256, "abc"),
        ];
        assert!(is_current("cls-1", &w, tags(&all)));
        assert!(!is_current("cls-2", &w, tags(&all)));
        let rotated = [
            (TAG_CLUSTER_ID, "cls-1"),
            (TAG_SECRET_UID, "u1"),
            (TAG_CERT_SHA256, "old"),
        ];
        assert!(!is_current("cls-1", &w, tags(&rotated)));
        assert!(is_ours("cls-1", tags(&rotated)));
        // A user's certificate tagged only with the cluster is never ours.
        assert!(!is_ours("cls-1", tags(&[(TAG_CLUSTER_ID, "cls-1")])));
        assert!(!is_ours("cls-1", tags(&[(TAG_SECRET_UID, "u1")])));
    }
}
