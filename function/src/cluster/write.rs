//! Writes on the Ingress itself: its load-balancer status and the informational CLB id
//! annotation. Both are skipped entirely when nothing would change, so a steady-state run
//! makes no write (and causes no audit record that would wake us again).

use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress, IngressStatus};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

use super::{status_code, ClusterClient, ClusterError};
use crate::identity;

/// Read-only annotation TKE's controller writes with the CLB id (tencent-cloud.md §1.3, §1.7).
pub const LB_ID_ANNOTATION: &str = "kubernetes.io/ingress.qcloud-loadbalance-id";

/// What a conditional write did.
#[derive(Clone, Debug)]
pub enum WriteOutcome {
    /// Already as desired: no request was sent.
    Unchanged,
    /// Written; the object as the server returned it (new resourceVersion).
    Written(Box<Ingress>),
}

/// The status entries currently on the Ingress (none and an empty list are the same).
pub fn current_status(ingress: &Ingress) -> &[IngressLoadBalancerIngress] {
    ingress
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

fn ids(ingress: &Ingress) -> (String, String) {
    (
        ingress.metadata.namespace.clone().unwrap_or_default(),
        ingress.metadata.name.clone().unwrap_or_default(),
    )
}

impl ClusterClient {
    /// Replaces `status.loadBalancer.ingress` through the `/status` subresource, carrying the
    /// resourceVersion of `ingress` as read. A newer version on the server gives
    /// [`ClusterError::Conflict`]; an equal status sends nothing.
    pub async fn write_status(
        &self,
        ingress: &Ingress,
        desired: Vec<IngressLoadBalancerIngress>,
    ) -> Result<WriteOutcome, ClusterError> {
        if current_status(ingress) == desired.as_slice() {
            return Ok(WriteOutcome::Unchanged);
        }
        let (namespace, name) = ids(ingress);
        let incomplete = |missing| ClusterError::Incomplete {
            kind: "Ingress",
            namespace: namespace.clone(),
            name: name.clone(),
            missing,
        };
        if name.is_empty() {
            return Err(incomplete("metadata.name"));
        }
        if namespace.is_empty() {
            return Err(incomplete("metadata.namespace"));
        }
        // Ingress allows unconditional updates: without the read version a stale writer would
        // silently win, so refuse rather than send one.
        if ingress.metadata.resource_version.is_none() {
            return Err(incomplete("metadata.resourceVersion"));
        }
        let mut body = ingress.clone();
        let status = body.status.get_or_insert_with(IngressStatus::default);
        let lb = status.load_balancer.get_or_insert_with(Default::default);
        lb.ingress = (!desired.is_empty()).then_some(desired);

        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &namespace);
        let params = PostParams {
            field_manager: Some(identity::FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match api.replace_status(&name, &params, &body).await {
            Ok(written) => {
                tracing::info!(ingress = %format!("{namespace}/{name}"), "wrote ingress status");
                Ok(WriteOutcome::Written(Box::new(written)))
            }
            Err(error) if status_code(&error) == Some(409) => Err(ClusterError::Conflict {
                kind: "Ingress",
                namespace,
                name,
            }),
            Err(error) => Err(ClusterError::api(
                "update ingress status",
                format!("{namespace}/{name}"),
                error,
            )),
        }
    }

    /// Sets (or with `None` removes) the informational CLB id annotation by merge patch;
    /// nothing is sent when it already has that value.
    pub async fn set_lb_annotation(
        &self,
        ingress: &Ingress,
        lb_id: Option<&str>,
    ) -> Result<WriteOutcome, ClusterError> {
        let current = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(LB_ID_ANNOTATION))
            .map(String::as_str);
        if current == lb_id {
            return Ok(WriteOutcome::Unchanged);
        }
        let (namespace, name) = ids(ingress);
        if name.is_empty() || namespace.is_empty() {
            let missing = if name.is_empty() {
                "metadata.name"
            } else {
                "metadata.namespace"
            };
            return Err(ClusterError::Incomplete {
                kind: "Ingress",
                namespace,
                name,
                missing,
            });
        }
        // Unconditional on purpose: the annotation is informational, only we write it, and a
        // version guard would make it fail after our own status write bumped the version.
        let patch = serde_json::json!({
            "metadata": {"annotations": {LB_ID_ANNOTATION: lb_id}}
        });
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &namespace);
        let params = PatchParams {
            field_manager: Some(identity::FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&name, &params, &Patch::Merge(&patch))
            .await
            .map(|written| WriteOutcome::Written(Box::new(written)))
            .map_err(|e| {
                ClusterError::api("patch ingress annotation", format!("{namespace}/{name}"), e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn ingress() -> Ingress {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "41", "uid": "u1"},
            "spec": {},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}
        }))
        .unwrap()
    }

    fn lb(ip: &str) -> Vec<IngressLoadBalancerIngress> {
        vec![IngressLoadBalancerIngress {
            ip: Some(ip.into()),
            ..Default::default()
        }]
    }

    /// A client whose one expected request is checked by `check` and answered with `answer`.
    fn scripted(
        check: impl FnOnce(&http::Method, &str, serde_json::Value) + Send + 'static,
        answer: (u16, serde_json::Value),
    ) -> (ClusterClient, tokio::task::JoinHandle<()>) {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("one request");
            let method = request.method().clone();
            let uri = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            check(&method, &uri, serde_json::from_slice(&bytes).unwrap());
            let response = Response::builder()
                .status(answer.0)
                .body(Body::from(serde_json::to_vec(&answer.1).unwrap()))
                .unwrap();
            send.send_response(response);
        });
        let client = kube::Client::new(mock, "default");
        (ClusterClient::new(client), server)
    }

    #[tokio::test]
    async fn status_write_is_a_put_on_the_status_subresource_with_the_read_version() {
        let mut answer = serde_json::to_value(ingress()).unwrap();
        answer["metadata"]["resourceVersion"] = "42".into();
        answer["status"]["loadBalancer"]["ingress"][0]["ip"] = "2.2.2.2".into();
        let (cluster, server) = scripted(
            |method, uri, body| {
                assert_eq!(method, http::Method::PUT);
                assert!(
                    uri.starts_with(
                        "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web/status?"
                    ),
                    "{uri}"
                );
                assert!(uri.contains("fieldManager=clb-ingress"), "{uri}");
                assert_eq!(body["metadata"]["resourceVersion"], "41");
                assert_eq!(
                    body["status"]["loadBalancer"]["ingress"][0]["ip"],
                    "2.2.2.2"
                );
            },
            (200, answer),
        );
        let outcome = cluster
            .write_status(&ingress(), lb("2.2.2.2"))
            .await
            .unwrap();
        server.await.unwrap();
        let WriteOutcome::Written(written) = outcome else {
            panic!("expected a write")
        };
        assert_eq!(written.metadata.resource_version.as_deref(), Some("42"));
    }

    #[tokio::test]
    async fn status_write_conflict_is_its_own_error() {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
            "code": 409, "message": "the object has been modified"
        });
        let (cluster, server) = scripted(|_, _, _| {}, (409, status));
        let error = cluster
            .write_status(&ingress(), lb("2.2.2.2"))
            .await
            .unwrap_err();
        server.await.unwrap();
        assert!(error.is_conflict(), "{error}");
    }

    #[tokio::test]
    async fn status_write_without_a_read_version_is_refused_before_any_request() {
        // With the server side gone, any request would fail as a transport error instead.
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        drop(handle);
        let cluster = ClusterClient::new(kube::Client::new(mock, "default"));
        let mut unversioned = ingress();
        unversioned.metadata.resource_version = None;
        let error = cluster
            .write_status(&unversioned, lb("2.2.2.2"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ClusterError::Incomplete {
                missing: "metadata.resourceVersion",
                ..
            }
        ));
    }
}
