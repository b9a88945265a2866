//! The one read that sees a private key: a `kubernetes.io/tls` Secret's `tls.crt` and
//! `tls.key`, fetched fresh right before the certificate is uploaded to SSL and dropped
//! after. [`TlsKeyPair`]'s `Debug` hides the key, and nothing here logs.

use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::read::get_optional;
use super::{ClusterClient, ClusterError};
use crate::model::uploaded_certs::{TLS_CRT_KEY, TLS_KEY_KEY};

/// PEM certificate chain and private key of one Secret.
pub struct TlsKeyPair {
    pub uid: String,
    pub cert_pem: String,
    key_pem: String,
}

impl TlsKeyPair {
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for TlsKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsKeyPair")
            .field("uid", &self.uid)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `tls.crt` and `tls.key` as UTF-8 PEM text; `None` when either is missing or not text.
fn key_pair(secret: Secret) -> Option<TlsKeyPair> {
    let uid = secret.metadata.uid.filter(|u| !u.is_empty())?;
    let mut data = secret.data?;
    let mut text = |key: &str| {
        data.remove(key)
            .and_then(|b| String::from_utf8(b.0).ok())
            .filter(|s| !s.trim().is_empty())
    };
    let cert_pem = text(TLS_CRT_KEY)?;
    let key_pem = text(TLS_KEY_KEY)?;
    Some(TlsKeyPair {
        uid,
        cert_pem,
        key_pem,
    })
}

impl ClusterClient {
    /// The Secret's key pair, or `None` when the Secret or either key is missing.
    pub async fn tls_key_pair(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<TlsKeyPair>, ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let secret = get_optional(&secrets, name)
            .await
            .map_err(|e| ClusterError::api("get secret", format!("{ns}/{name}"), e))?;
        Ok(secret.and_then(key_pair))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_needs_both_keys_and_its_debug_hides_the_key() {
        let s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t", "uid": "u1"},
            "data": {"tls.crt": "Y2VydA==", "tls.key": "U0VDUkVUS0VZ"}
        }))
        .unwrap();
        let pair = key_pair(s).unwrap();
        assert_eq!(pair.cert_pem, "cert");
        assert_eq!(pair.key_pem(), "SECRETKEY");
        assert!(!format!("{pair:?}").contains("SECRETKEY"));
        let no_key: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t", "uid": "u1"}, "data": {"tls.crt": "Y2VydA=="}
        }))
        .unwrap();
        assert!(key_pair(no_key).is_none());
    }
}
