//! Contract tests of kube-sim's audit webhook backend: a test receiver (axum on
//! 127.0.0.1:0) checks the EventList a real kube-apiserver would POST — fields, level per
//! resource, no Secret data, batching by size and wait, retries on non-2xx, then drop.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use clb_ingress_tests::kubectl::Kubectl;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "audit-test-token";

#[derive(Default)]
struct Received {
    /// (Authorization header, raw body) per POST
    posts: Mutex<Vec<(Option<String>, String)>>,
    /// Answer 500 to this many POSTs first.
    fail_first: AtomicU32,
}

impl Received {
    fn posts(&self) -> Vec<(Option<String>, String)> {
        self.posts.lock().unwrap().clone()
    }
    /// Every item of every batch that was answered 2xx or not (all POST bodies).
    fn items(&self) -> Vec<Value> {
        self.posts()
            .iter()
            .flat_map(|(_, b)| {
                serde_json::from_str::<Value>(b).unwrap()["items"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .collect()
    }
}

async fn receive(State(r): State<Arc<Received>>, headers: HeaderMap, body: String) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    r.posts.lock().unwrap().push((auth, body));
    let failing = r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn receiver(fail_first: u32) -> (String, Arc<Received>) {
    let r = Arc::new(Received {
        fail_first: AtomicU32::new(fail_first),
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/audit", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/audit"), r)
}

async fn sim_with(cfg: KubeSimConfig, fail_first: u32) -> (KubeSimHandle, Arc<Received>) {
    let (url, r) = receiver(fail_first).await;
    let sim = kube_sim::spawn(KubeSimConfig {
        audit_webhook: Some(url),
        audit_token: Some(TOKEN.into()),
        ..cfg
    })
    .await
    .unwrap();
    (sim, r)
}

/// Polls a condition (no fixed sleeps): true as soon as it holds, false after 10 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn ingress(name: &str) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    }))
    .unwrap()
}

fn is_micro_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    // 2026-01-01T00:00:00.123456Z
    s.len() == 27
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && s.parse::<jiff::Timestamp>().is_ok()
}

async fn kubectl_apply(sim: &KubeSimHandle, yaml: &str) {
    Kubectl::new(sim).apply_yaml(yaml).await;
}

const APP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
stringData:
  tls.key: SUPER-SECRET-KEY-MATERIAL
"#;

#[tokio::test]
async fn kubectl_apply_produces_the_event_list_a_real_server_sends() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    kubectl_apply(&sim, APP).await;
    assert!(
        eventually(|| r.items().len() >= 3).await,
        "three writes audited"
    );
    let posts = r.posts();
    for (auth, body) in &posts {
        assert_eq!(auth.as_deref(), Some("Bearer audit-test-token"));
        let list: Value = serde_json::from_str(body).unwrap();
        assert_eq!(list["kind"], "EventList");
        assert_eq!(list["apiVersion"], "audit.k8s.io/v1");
        assert!(!body.contains("SUPER-SECRET"), "secret data leaked");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode("SUPER-SECRET-KEY-MATERIAL");
        assert!(!body.contains(&b64), "base64 secret data leaked");
    }
    let items = r.items();
    assert_eq!(
        items.len(),
        3,
        "only the three creates, no reads: {items:#?}"
    );
    let by_resource = |res: &str| -> Value {
        items
            .iter()
            .find(|i| i["objectRef"]["resource"] == res)
            .unwrap_or_else(|| panic!("no {res} event"))
            .clone()
    };
    let ing = by_resource("ingresses");
    assert!(ing.get("kind").is_none(), "items carry no TypeMeta");
    assert_eq!(ing["level"], "RequestResponse");
    assert_eq!(ing["stage"], "ResponseComplete");
    assert_eq!(ing["verb"], "create");
    assert_eq!(ing["user"]["username"], "kubernetes-admin");
    assert!(ing["userAgent"].as_str().unwrap().starts_with("kubectl"));
    assert_eq!(ing["auditID"].as_str().unwrap().len(), 36);
    assert_eq!(ing["sourceIPs"], json!(["127.0.0.1"]));
    assert!(ing["requestURI"]
        .as_str()
        .unwrap()
        .starts_with("/apis/networking.k8s.io/v1/namespaces/default/ingresses?fieldManager=kubectl-client-side-apply"));
    assert_eq!(
        ing["objectRef"],
        json!({"resource": "ingresses", "namespace": "default", "name": "web",
               "apiGroup": "networking.k8s.io", "apiVersion": "v1"})
    );
    assert_eq!(ing["responseStatus"]["code"], 201);
    assert_eq!(ing["requestObject"]["metadata"]["name"], "web");
    assert!(
        ing["requestObject"]["metadata"].get("uid").is_none(),
        "request as sent"
    );
    assert_eq!(
        ing["responseObject"]["metadata"]["uid"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    assert!(
        is_micro_time(&ing["requestReceivedTimestamp"]),
        "{}",
        ing["requestReceivedTimestamp"]
    );
    assert!(is_micro_time(&ing["stageTimestamp"]));

    let svc = by_resource("services");
    assert_eq!(svc["level"], "Metadata");
    assert!(svc.get("requestObject").is_none() && svc.get("responseObject").is_none());
    assert!(
        svc["objectRef"].get("apiGroup").is_none(),
        "core group is omitted"
    );
    assert_eq!(svc["objectRef"]["apiVersion"], "v1");
    let secret = by_resource("secrets");
    assert_eq!(secret["level"], "Metadata");
    assert!(secret.get("requestObject").is_none() && secret.get("responseObject").is_none());
}

#[tokio::test]
async fn audit_id_header_is_used_and_echoed_and_the_token_names_the_user() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = sim.add_token("system:serviceaccount:clb-system:clb-reconciler");
    // RBAC governs service accounts: this one may write Ingresses.
    for obj in [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "ingress-writer"},
               "rules": [{"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
                          "verbs": ["create"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "clb-reconciler"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "ingress-writer"},
               "subjects": [{"kind": "ServiceAccount", "name": "clb-reconciler",
                             "namespace": "clb-system"}]}),
    ] {
        sim.put_object(obj).unwrap();
    }
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            sim.url()
        ))
        .bearer_auth(&token)
        .header("Audit-ID", "clb-ingress-42")
        .header("User-Agent", "clb-ingress/0.1")
        .json(&ingress("web"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["audit-id"], "clb-ingress-42");
    assert!(eventually(|| r.items().len() == 1).await);
    let item = &r.items()[0];
    assert_eq!(item["auditID"], "clb-ingress-42");
    assert_eq!(
        item["user"]["username"],
        "system:serviceaccount:clb-system:clb-reconciler"
    );
    assert_eq!(item["userAgent"], "clb-ingress/0.1");
    // kube-rs sends its bearer token over plain HTTP (kubectl does not: it is the admin)
    let as_reconciler = sim.client_as("clb-reconciler").await;
    Api::<Ingress>::namespaced(as_reconciler, "default")
        .create(&PostParams::default(), &ingress("web2"))
        .await
        .unwrap();
    assert!(eventually(|| r.items().len() == 2).await);
    assert_eq!(r.items()[1]["user"]["username"], "clb-reconciler");
    assert_eq!(r.items()[1]["auditID"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn failed_writes_are_audited_with_their_status() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    api.create(&PostParams::default(), &ingress("web"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &ingress("web"))
        .await
        .unwrap_err();
    assert!(eventually(|| r.items().len() == 2).await);
    let failed = r
        .items()
        .into_iter()
        .find(|i| i["responseStatus"]["code"] == 409)
        .expect("the refused create is audited");
    assert_eq!(failed["responseStatus"]["status"], "Failure");
    assert_eq!(failed["responseStatus"]["reason"], "AlreadyExists");
    assert_eq!(failed["responseObject"]["kind"], "Status");
}

#[tokio::test]
async fn status_writes_are_audited_at_metadata_with_their_subresource_and_deletes_with_options() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    let created = api
        .create(&PostParams::default(), &ingress("web"))
        .await
        .unwrap();
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}})),
    )
    .await
    .unwrap();
    let put = api.get("web").await.unwrap();
    api.replace("web", &PostParams::default(), &put)
        .await
        .unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(eventually(|| r.items().len() == 4).await);
    let items = r.items();
    let mut verbs: Vec<&str> = items.iter().map(|i| i["verb"].as_str().unwrap()).collect();
    verbs.sort();
    assert_eq!(verbs, ["create", "delete", "patch", "update"]);
    let by_verb = |v: &str| items.iter().find(|i| i["verb"] == v).unwrap().clone();
    let status = by_verb("patch");
    assert_eq!(status["objectRef"]["subresource"], "status");
    assert_eq!(status["level"], "Metadata");
    assert!(status.get("requestObject").is_none());
    let update = by_verb("update");
    assert_eq!(
        update["objectRef"]["resourceVersion"],
        json!(put.metadata.resource_version),
        "update carries the precondition the client sent"
    );
    assert_eq!(update["objectRef"]["uid"], json!(created.metadata.uid));
    let delete = by_verb("delete");
    assert_eq!(delete["level"], "RequestResponse");
    assert_eq!(delete["requestObject"]["kind"], "DeleteOptions");
    assert_eq!(delete["objectRef"]["name"], "web");
}

#[tokio::test]
async fn secret_writes_never_carry_secret_data() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    let api: Api<Secret> = Api::namespaced(sim.client().await, "default");
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "tls"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Q0VSVElGSUNBVEU=", "tls.key": "UFJJVkFURUtFWQ=="}
    }))
    .unwrap();
    api.create(&PostParams::default(), &s).await.unwrap();
    api.patch(
        "tls",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"tls.key": "TkVXS0VZ"}})),
    )
    .await
    .unwrap();
    assert!(eventually(|| r.items().len() == 2).await);
    for (_, body) in r.posts() {
        for needle in ["UFJJVkFURUtFWQ==", "TkVXS0VZ", "Q0VSVElGSUNBVEU="] {
            assert!(!body.contains(needle), "secret data in audit: {body}");
        }
    }
}

#[tokio::test]
async fn batches_are_cut_at_the_maximum_size() {
    let cfg = KubeSimConfig {
        audit_batch_max_size: 2,
        // long enough that only the size can cut a batch during the test
        audit_batch_max_wait_ms: 600_000,
        ..KubeSimConfig::default()
    };
    let (sim, r) = sim_with(cfg, 0).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    for n in ["a", "b", "c", "d"] {
        api.create(&PostParams::default(), &ingress(n))
            .await
            .unwrap();
    }
    assert!(eventually(|| r.posts().len() == 2).await);
    let sizes: Vec<usize> = r
        .posts()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["items"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [2, 2]);
}

#[tokio::test]
async fn a_partial_batch_is_sent_after_the_maximum_wait() {
    let cfg = KubeSimConfig {
        audit_batch_max_size: 1000,
        audit_batch_max_wait_ms: 20,
        ..KubeSimConfig::default()
    };
    let (sim, r) = sim_with(cfg, 0).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    api.create(&PostParams::default(), &ingress("a"))
        .await
        .unwrap();
    assert!(
        eventually(|| r.posts().len() == 1).await,
        "flushed by wait, not size"
    );
    assert_eq!(r.items().len(), 1);
}

#[tokio::test]
async fn a_refused_batch_is_retried_until_accepted() {
    let (sim, r) = sim_with(KubeSimConfig::default(), 2).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    api.create(&PostParams::default(), &ingress("a"))
        .await
        .unwrap();
    assert!(eventually(|| sim.audit_stats().batches_delivered == 1).await);
    let posts = r.posts();
    assert_eq!(posts.len(), 3, "two 500s, then accepted");
    assert!(
        posts.iter().all(|(_, b)| *b == posts[0].1),
        "the same batch is re-sent"
    );
    let stats = sim.audit_stats();
    assert_eq!(
        (stats.events, stats.attempts, stats.batches_dropped),
        (1, 3, 0)
    );
}

#[tokio::test]
async fn a_batch_is_dropped_after_the_last_attempt() {
    let cfg = KubeSimConfig {
        audit_max_attempts: 3,
        audit_initial_backoff_ms: 5,
        ..KubeSimConfig::default()
    };
    let (sim, r) = sim_with(cfg, u32::MAX).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    api.create(&PostParams::default(), &ingress("a"))
        .await
        .unwrap();
    assert!(eventually(|| sim.audit_stats().batches_dropped == 1).await);
    assert_eq!(r.posts().len(), 3);
    assert_eq!(sim.audit_stats().batches_delivered, 0);
}

#[tokio::test]
async fn no_webhook_means_no_audit_and_reads_are_never_audited() {
    let plain = kube_sim::spawn(KubeSimConfig::default()).await.unwrap();
    let api: Api<Ingress> = Api::namespaced(plain.client().await, "default");
    api.create(&PostParams::default(), &ingress("a"))
        .await
        .unwrap();
    assert_eq!(plain.audit_stats().events, 0);
    let (sim, r) = sim_with(KubeSimConfig::default(), 0).await;
    let api: Api<Ingress> = Api::namespaced(sim.client().await, "default");
    api.create(&PostParams::default(), &ingress("a"))
        .await
        .unwrap();
    api.get("a").await.unwrap();
    api.list(&Default::default()).await.unwrap();
    assert!(eventually(|| sim.audit_stats().batches_delivered == 1).await);
    assert_eq!(sim.audit_stats().events, 1);
    assert_eq!(r.items().len(), 1);
}
