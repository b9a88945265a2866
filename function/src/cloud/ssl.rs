//! Typed SSL Certificates API 2019-12-05 calls (tencent-cloud-more.md §3.3), and the CLB's
//! own "which CLBs use this certificate" read: what uploading `kubernetes.io/tls` Secrets
//! needs. The private key only travels inside [`UploadCertificateRequest`], whose `Debug`
//! hides it; nothing here logs a request body.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::clb::{nullable, TagInfo};
use super::client::CloudClient;
use super::error::CloudError;

/// SSL API service name and version.
pub const SSL_SERVICE: &str = "ssl";
pub const SSL_VERSION: &str = "2019-12-05";

/// Largest `Limit` of DescribeCertificates [SDK: max 1000].
pub const DESCRIBE_CERTIFICATES_LIMIT: u64 = 1000;

/// Most certificate ids one DescribeLoadBalancerListByCertId takes [SDK: ≤ 20].
pub const CERT_IDS_PER_BINDING_READ: usize = 20;

/// `CertificateType` of a server certificate.
pub const CERTIFICATE_TYPE_SERVER: &str = "SVR";

#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadCertificateRequest {
    /// PEM chain, server certificate first.
    pub certificate_public_key: String,
    /// PEM private key. Never printed (see the `Debug` below).
    pub certificate_private_key: String,
    pub certificate_type: String,
    pub alias: String,
    pub tags: Vec<TagInfo>,
    /// `true` (the API's default): always a new certificate of ours. With `false` an
    /// identical certificate uploaded by someone else would come back (`RepeatCertId`)
    /// without our tags, so we could neither find it again nor ever prove it ours.
    pub repeatable: bool,
}

impl fmt::Debug for UploadCertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadCertificateRequest")
            .field("certificate_type", &self.certificate_type)
            .field("alias", &self.alias)
            .field("tags", &self.tags)
            .field("certificate_private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UploadCertificateResponse {
    #[serde(deserialize_with = "nullable")]
    pub certificate_id: String,
    /// With `Repeatable: false`, the id of the identical certificate already there.
    #[serde(deserialize_with = "nullable")]
    pub repeat_cert_id: String,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

impl UploadCertificateResponse {
    /// The certificate to bind. Whether `CertificateId` is empty when `RepeatCertId` is set
    /// is undocumented (tencent-cloud-more.md §3.3, UNVERIFIED): whichever is non-empty.
    pub fn id(&self) -> Option<&str> {
        [&self.certificate_id, &self.repeat_cert_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
    }
}

/// One entry of `DescribeCertificates.Certificates`, the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SslCertificate {
    #[serde(deserialize_with = "nullable")]
    pub certificate_id: String,
    #[serde(deserialize_with = "nullable")]
    pub alias: String,
    #[serde(deserialize_with = "nullable")]
    pub certificate_type: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<TagInfo>,
}

impl SslCertificate {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.tag_key == key)
            .map(|t| t.tag_value.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeCertificatesRequest<'a> {
    offset: u64,
    limit: u64,
    tags: &'a [TagInfo],
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct DescribeCertificatesResponse {
    total_count: u64,
    #[serde(deserialize_with = "nullable")]
    certificates: Vec<SslCertificate>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct DeleteCertificateResponse {
    delete_result: Option<bool>,
}

/// `DescribeLoadBalancerListByCertId.CertSet[]`: the CLBs using one certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CertBindings {
    #[serde(deserialize_with = "nullable")]
    pub cert_id: String,
    #[serde(deserialize_with = "nullable")]
    pub load_balancers: Vec<BoundLoadBalancer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BoundLoadBalancer {
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ListByCertIdResponse {
    #[serde(deserialize_with = "nullable")]
    cert_set: Vec<CertBindings>,
}

/// The SSL API's answer for a certificate id that does not exist (any more).
pub fn is_certificate_gone(e: &CloudError) -> bool {
    matches!(
        e.code(),
        Some("FailedOperation.CertificateNotFound" | "ResourceNotFound")
    )
}

impl CloudClient {
    /// Uploads a server certificate; the id to bind (see [`UploadCertificateResponse::id`]).
    pub async fn upload_certificate(
        &self,
        request: &UploadCertificateRequest,
    ) -> Result<String, CloudError> {
        let resp: UploadCertificateResponse = self
            .call_typed(SSL_SERVICE, SSL_VERSION, "UploadCertificate", request)
            .await?;
        resp.id()
            .map(str::to_string)
            .ok_or_else(|| CloudError::Unexpected {
                action: "UploadCertificate".into(),
                message: "the answer names no certificate id".into(),
            })
    }

    /// Every certificate carrying all of `tags`, page by page (all or an error).
    pub async fn describe_certificates_by_tags(
        &self,
        tags: &[TagInfo],
    ) -> Result<Vec<SslCertificate>, CloudError> {
        let mut out = Vec::new();
        loop {
            let req = DescribeCertificatesRequest {
                offset: out.len() as u64,
                limit: DESCRIBE_CERTIFICATES_LIMIT,
                tags,
            };
            let page: DescribeCertificatesResponse = self
                .call_typed(SSL_SERVICE, SSL_VERSION, "DescribeCertificates", &req)
                .await?;
            let got = page.certificates.len();
            out.extend(page.certificates);
            if got == 0 || out.len() as u64 >= page.total_count {
                return Ok(out);
            }
        }
    }

    /// Deletes a certificate without the SSL service's async resource check (the caller
    /// has proven it unused on a fresh read). A certificate already gone counts as deleted.
    pub async fn delete_certificate(&self, certificate_id: &str) -> Result<(), CloudError> {
        let req = serde_json::json!({"CertificateId": certificate_id, "IsCheckResource": false});
        let resp: Result<DeleteCertificateResponse, CloudError> = self
            .call_typed(SSL_SERVICE, SSL_VERSION, "DeleteCertificate", &req)
            .await;
        match resp {
            Ok(r) if r.delete_result == Some(false) => Err(CloudError::Unexpected {
                action: "DeleteCertificate".into(),
                message: format!("certificate {certificate_id} was not deleted"),
            }),
            Ok(_) => Ok(()),
            Err(e) if is_certificate_gone(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The CLBs (any, not only ours) each certificate is bound to, 20 ids a call.
    pub async fn load_balancers_by_cert_ids(
        &self,
        cert_ids: &[String],
    ) -> Result<Vec<CertBindings>, CloudError> {
        let mut out = Vec::new();
        for chunk in cert_ids.chunks(CERT_IDS_PER_BINDING_READ) {
            let req = serde_json::json!({ "CertIds": chunk });
            let resp: ListByCertIdResponse =
                self.clb("DescribeLoadBalancerListByCertId", &req).await?;
            out.extend(resp.cert_set);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_request_debug_never_shows_the_private_key() {
        let req = UploadCertificateRequest {
            certificate_public_key: "-----BEGIN CERTIFICATE-----".into(),
            certificate_private_key: "-----BEGIN PRIVATE KEY-----SECRETBYTES".into(),
            certificate_type: CERTIFICATE_TYPE_SERVER.into(),
            alias: "shop/web-tls".into(),
            tags: vec![],
            repeatable: false,
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("SECRETBYTES"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn upload_answer_takes_whichever_id_is_set() {
        let r = |c: &str, rep: &str| UploadCertificateResponse {
            certificate_id: c.into(),
            repeat_cert_id: rep.into(),
            request_id: String::new(),
        };
        assert_eq!(r("c1", "").id(), Some("c1"));
        assert_eq!(r("", "c0").id(), Some("c0"));
        assert_eq!(r("", "").id(), None);
    }

    #[test]
    fn upload_request_uses_the_sdk_field_names() {
        let v = serde_json::to_value(UploadCertificateRequest {
            tags: vec![TagInfo::new("k", "v")],
            ..Default::default()
        })
        .unwrap();
        for key in [
            "CertificatePublicKey",
            "CertificatePrivateKey",
            "CertificateType",
            "Alias",
            "Tags",
            "Repeatable",
        ] {
            assert!(v.get(key).is_some(), "{key}: {v}");
        }
        assert_eq!(v["Tags"][0]["TagKey"], "k");
    }
}
