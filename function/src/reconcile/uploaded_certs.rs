//! Certificates of `kubernetes.io/tls` Secrets (model/uploaded_certs.rs): found among ours in
//! SSL before planning, uploaded only under the Lease, and deleted once no CLB binds them.
//!
//! Deleting rests on positive proof: the certificate carries our marks (cluster tag and
//! Secret-UID tag) on a fresh DescribeCertificates, this run does not want it, and a fresh
//! DescribeLoadBalancerListByCertId, taken after this run's writes, answers for it with no
//! CLB at all. A certificate the answer does not mention is kept.

use std::collections::BTreeSet;

use super::{ReconcileError, Reconciler};
use crate::cloud::clb::TagInfo;
use crate::cloud::ssl::{SslCertificate, UploadCertificateRequest, CERTIFICATE_TYPE_SERVER};
use crate::model::ownership::TAG_CLUSTER_ID;
use crate::model::uploaded_certs::{self, cert_sha256, UploadedCerts};
use crate::model::ClusterView;

impl Reconciler {
    fn our_tag(&self) -> Vec<TagInfo> {
        vec![TagInfo::new(TAG_CLUSTER_ID, &self.cluster_id)]
    }

    /// Fills `view.uploaded_certs`: the current certificate of each Secret that wants one,
    /// uploading the missing ones when `may_upload` (under the Lease). A failed upload is a
    /// per-Secret note (its API code), never a failed run. No Secret wanting one: no call.
    pub(super) async fn resolve_uploads(
        &self,
        view: &mut ClusterView,
        may_upload: bool,
    ) -> Result<(), ReconcileError> {
        let wanted = uploaded_certs::wanted(view);
        if wanted.is_empty() {
            return Ok(());
        }
        let ours = self
            .cloud
            .describe_certificates_by_tags(&self.our_tag())
            .await?;
        let ns = view
            .ingress
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let mut out = UploadedCerts::default();
        for w in wanted {
            if let Some(id) = self.current_of(&w, &ours) {
                out.ids.insert(w.secret, id);
                continue;
            }
            if !may_upload {
                continue;
            }
            match self.upload(&ns, &w.secret).await {
                Ok(id) => {
                    out.ids.insert(w.secret, id);
                }
                Err(code) => {
                    tracing::warn!(secret = %format!("{ns}/{}", w.secret), code = %code, "certificate upload failed");
                    out.failed.insert(w.secret, code);
                }
            }
        }
        view.uploaded_certs = out;
        Ok(())
    }

    /// The id of our current certificate for `w` among `ours`, if uploaded.
    fn current_of(&self, w: &uploaded_certs::Wanted, ours: &[SslCertificate]) -> Option<String> {
        ours.iter()
            .find(|c| uploaded_certs::is_current(&self.cluster_id, w, tag_of(c)))
            .map(|c| c.certificate_id.clone())
    }

    /// The sweep's one SSL read: our certificates, when any view wants one (else no call);
    /// `None` when the read failed (those Ingresses then take the one-Ingress path).
    pub(super) async fn sweep_certificates(
        &self,
        views: &[ClusterView],
    ) -> Option<Vec<SslCertificate>> {
        if views.iter().all(|v| uploaded_certs::wanted(v).is_empty()) {
            return Some(Vec::new());
        }
        self.cloud
            .describe_certificates_by_tags(&self.our_tag())
            .await
            .map_err(|e| tracing::warn!(error = %e, "sweep: certificates not read"))
            .ok()
    }

    /// Fills a snapshot view's uploaded certificates from the sweep's read (no upload).
    pub(super) fn fill_uploads(&self, view: &mut ClusterView, ours: &[SslCertificate]) {
        for w in uploaded_certs::wanted(view) {
            if let Some(id) = self.current_of(&w, ours) {
                view.uploaded_certs.ids.insert(w.secret, id);
            }
        }
    }

    /// Uploads the Secret's certificate as read now, tagged with the hash of what is sent.
    async fn upload(&self, ns: &str, secret: &str) -> Result<String, String> {
        let pair = self
            .cluster
            .tls_key_pair(ns, secret)
            .await
            .map_err(|_| "SecretReadFailed".to_string())?
            .ok_or_else(|| "SecretKeyPairMissing".to_string())?;
        let tags = uploaded_certs::tags_for(
            &self.cluster_id,
            &pair.uid,
            &cert_sha256(pair.cert_pem.as_bytes()),
        );
        let request = UploadCertificateRequest {
            certificate_public_key: pair.cert_pem.clone(),
            certificate_private_key: pair.key_pem().to_string(),
            certificate_type: CERTIFICATE_TYPE_SERVER.into(),
            alias: format!("{ns}/{secret}"),
            tags: tags.into_iter().map(|(k, v)| TagInfo::new(k, v)).collect(),
            repeatable: true,
        };
        self.cloud
            .upload_certificate(&request)
            .await
            .map_err(|e| e.code().unwrap_or("CloudError").to_string())
    }

    /// Deletes our uploaded certificates that no CLB binds any more, except `keep` (the ones
    /// this run binds). Best effort: a failure is logged, the next run that writes retries.
    pub(super) async fn collect_certificates(&self, keep: &BTreeSet<String>) {
        if let Err(e) = self.try_collect_certificates(keep).await {
            tracing::warn!(error = %e, "unused certificates not collected");
        }
    }

    async fn try_collect_certificates(
        &self,
        keep: &BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        let ours: Vec<String> = self
            .cloud
            .describe_certificates_by_tags(&self.our_tag())
            .await?
            .into_iter()
            .filter(|c| uploaded_certs::is_ours(&self.cluster_id, tag_of(c)))
            .map(|c| c.certificate_id)
            .filter(|id| !id.is_empty() && !keep.contains(id))
            .collect();
        if ours.is_empty() {
            return Ok(());
        }
        let bindings = self.cloud.load_balancers_by_cert_ids(&ours).await?;
        for b in bindings {
            if ours.contains(&b.cert_id) && b.load_balancers.is_empty() {
                self.cloud.delete_certificate(&b.cert_id).await?;
                tracing::info!(certificate = %b.cert_id, "deleted an uploaded certificate no CLB uses");
            }
        }
        Ok(())
    }
}

/// A certificate's tags as the model's lookups take them.
fn tag_of(c: &SslCertificate) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| c.tag(k).map(str::to_string)
}

/// Certificate ids bound on the CLB as it was read before this run's writes.
fn bound_cert_ids(cloud: &crate::plan::CloudView) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in cloud.load_balancer.iter().flat_map(|lb| &lb.listeners) {
        let rules = l.rules.iter().filter_map(|r| r.certificate.as_ref());
        for c in l.certificate.iter().chain(rules) {
            out.insert(c.cert_id.clone());
            out.extend(c.ca_cert_id.clone());
        }
    }
    out
}

impl Reconciler {
    /// After a run that wrote: collect unused uploaded certificates when certificates were
    /// in play (bound before, or uploaded for this Ingress); other runs make no SSL call.
    pub(super) async fn collect_after(&self, p: &super::prepare::Planned) {
        let keep: BTreeSet<String> = p.view.uploaded_certs.ids.values().cloned().collect();
        if p.plan.is_empty() || (keep.is_empty() && bound_cert_ids(&p.cloud).is_empty()) {
            return;
        }
        self.collect_certificates(&keep).await;
    }

    /// After a release: when a CLB went, collect the uploaded certificates nothing binds
    /// any more.
    pub(super) async fn collect_if_released(
        &self,
        outcome: Result<crate::handler::IngressOutcome, ReconcileError>,
    ) -> Result<crate::handler::IngressOutcome, ReconcileError> {
        if outcome
            .as_ref()
            .is_ok_and(|o| o.status == crate::handler::OutcomeStatus::Released)
        {
            self.collect_certificates(&BTreeSet::new()).await;
        }
        outcome
    }
}
