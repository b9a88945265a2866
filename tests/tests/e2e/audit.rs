//! The whole loop as deployed in web-function mode: kube-sim's audit webhook posts batches to
//! the function's HTTP server (`runtime::web`), which reconciles through the engine against
//! clb-sim. A user creating and deleting an Ingress through the Kubernetes API is all it takes.

use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use clb_ingress::handler::{Engine, WebhookToken};
use clb_ingress::runtime::web::{serve, ServeOptions};
use clb_ingress_tests::kube_sim::{self, KubeSimConfig};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::json;

const TOKEN: &str = "e2e-audit-token-0123456789";

/// Polls `cond` every few milliseconds, up to `tries` times.
async fn eventually(tries: usize, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn an_ingress_created_and_deleted_through_the_api_gets_and_loses_its_clb_via_audit() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fn_addr = listener.local_addr().unwrap();
    // The function's own simulators; kube-sim with the audit webhook replaces the harness's.
    let base = env().await;
    let kube = kube_sim::spawn(KubeSimConfig {
        audit_webhook: Some(format!("http://{fn_addr}/v1/audit")),
        audit_token: Some(TOKEN.into()),
        audit_batch_max_wait_ms: 20,
        ..KubeSimConfig::default()
    })
    .await
    .unwrap();
    let cluster = clb_ingress::cluster::ClusterClient::from_kubeconfig_yaml(
        &clb_ingress_tests::function_rbac::install(&kube).unwrap(),
    )
    .await
    .unwrap();
    let env = Env {
        clb: base.clb,
        kube,
        cluster,
        cloud: base.cloud,
    };
    env.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    env.node("node-1", "ins-hhh1");
    env.service("web", 80, 30080);

    let engine: Arc<dyn Engine> = Arc::new(env.engine());
    let mut opts = ServeOptions::new(WebhookToken::new(TOKEN).unwrap());
    opts.ack_within = Duration::from_secs(5);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, engine, opts, async {
        let _ = stopped.await;
    }));

    // The user creates an Ingress through the API (an audited write).
    let admin = env.kube.client().await;
    let ingresses: Api<Ingress> = Api::namespaced(admin, NS);
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": NS},
        "spec": rules(&[("shop.example.com", "/", "web", 80)])
    }))
    .unwrap();
    let created = ingresses
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();

    assert!(
        eventually(500, || env.ingress_ip("web").is_some()).await,
        "status never written; CLB calls: {:?}",
        env.clb.calls()
    );
    let lb = env.lb_of(&uid).expect("CLB created from the audit event");
    assert_eq!(env.ingress_ip("web"), Some(lb.vip.clone()));
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "shop.example.com".to_string(),
            "/".to_string(),
            vec!["ins-hhh1:30080@10".to_string()]
        )]
    );

    // An orphan the delete must not find: its Ingress vanished without an audit record.
    let other_uid = env.ingress(
        "other",
        json!({}),
        rules(&[("other.example.com", "/", "web", 80)]),
    );
    env.reconcile("other").await;
    let orphan = env.lb_of(&other_uid).expect("the other Ingress's CLB");
    assert!(env
        .kube
        .delete_object("networking.k8s.io/v1", "Ingress", Some(NS), "other"));

    env.kube.clear_request_log();
    ingresses
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        eventually(500, || env.clb.load_balancer(&lb.id).is_none()).await,
        "CLB not released; CLB calls: {:?}",
        env.clb.calls()
    );
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 2);
    // The delete record named the UID: its CLB was found by that UID, with no LIST of the
    // cluster's Ingresses and no scan of the fleet (the orphan waits for the sweep).
    let lists: Vec<String> = env
        .kube
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/ingresses"))
        .map(|r| r.path)
        .collect();
    assert_eq!(lists, Vec::<String>::new());
    assert!(env.clb.load_balancer(&orphan.id).is_some());
    let _ = stop.send(());
}
