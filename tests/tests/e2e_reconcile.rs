//! End to end: one Ingress reconciled through the real kube client (against kube-sim) and
//! the real cloud client (against clb-sim), asserting what a user sees on the CLB and the
//! Ingress, and the call counts in both simulators' logs.

mod e2e_support;

use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress_tests::clb_sim::client::SimClient;
use e2e_support::*;
use serde_json::json;

fn web_ingress(env: &Env, name: &str) -> String {
    env.node("node-1", "ins-aaa1");
    env.node("node-2", "ins-aaa2");
    env.service("web", 80, 30080);
    env.service("api", 8080, 30081);
    env.ingress(
        name,
        json!({}),
        rules(&[("", "/", "web", 80), ("a.example.com", "/api", "api", 8080)]),
    )
}

#[tokio::test]
async fn new_ingress_gets_a_clb_tagged_at_birth_and_its_status_and_annotation() {
    let env = env().await;
    let uid = web_ingress(&env, "web");
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");

    let lb = env.lb_of(&uid).expect("a CLB tagged with the Ingress UID");
    let mut tags = lb.tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            (TAG_CLUSTER.to_string(), CLUSTER.to_string()),
            (TAG_CREATED_BY.to_string(), "yes".to_string()),
            (TAG_UID.to_string(), uid.clone()),
        ]
    );
    // Tags at birth: no Tag API call was needed.
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "TagResources"), 0);
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![
            (
                lb.vip.clone(),
                "/".to_string(),
                vec![
                    "ins-aaa1:30080@10".to_string(),
                    "ins-aaa2:30080@10".to_string()
                ]
            ),
            (
                "a.example.com".to_string(),
                "/api".to_string(),
                vec![
                    "ins-aaa1:30081@10".to_string(),
                    "ins-aaa2:30081@10".to_string()
                ]
            ),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(lb.listeners[0].name, "TKE-DEDICATED-LISTENER");
    assert_eq!(env.ingress_ip("web"), Some(lb.vip.clone()));
    assert_eq!(env.ingress_lb_annotation("web"), Some(lb.id.clone()));
    assert!(env
        .events("web")
        .iter()
        .any(|(t, r, _)| t == "Normal" && r == "EnsuredLoadBalancer"));

    // The ClientToken was sent: the same create again returns the same CLB, not a second one.
    let token = clb_ingress::model::desired::client_token(CLUSTER, &uid);
    let again = SimClient::new(&env.clb)
        .clb(
            "CreateLoadBalancer",
            json!({"LoadBalancerType": "OPEN", "Forward": 1, "ClientToken": token}),
        )
        .await;
    assert_eq!(again.response()["LoadBalancerIds"][0], lb.id.as_str());
    assert_eq!(env.clb.load_balancers().len(), 1);
}

#[tokio::test]
async fn unchanged_ingress_costs_three_clb_reads_and_no_writes_anywhere() {
    let env = env().await;
    web_ingress(&env, "web");
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    env.clb.clear_calls();
    env.kube.clear_request_log();

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let calls = env.clb.calls();
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "DescribeLoadBalancers",
            "DescribeListeners",
            "DescribeTargets"
        ]
    );
    assert_eq!(env.kube_writes(), Vec::<String>::new());
    assert_eq!(outcome.actions.cloud_reads, 3);
    assert_eq!(outcome.actions.cloud_writes, 0);
}

#[tokio::test]
async fn clb_is_found_by_its_uid_tag_not_by_the_annotation_or_status() {
    let env = env().await;
    let uid = web_ingress(&env, "web");
    env.reconcile("web").await;
    let lb = env.lb_of(&uid).unwrap();
    // Someone scribbles over the informational annotation and the status.
    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"]["kubernetes.io/ingress.qcloud-loadbalance-id"] =
            json!("lb-bogus");
        i["status"] = json!({"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}});
    });
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged);
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 0);
    assert_eq!(writes(&env.clb.calls()).len(), 0);
    assert_eq!(env.ingress_lb_annotation("web"), Some(lb.id.clone()));
    assert_eq!(env.ingress_ip("web"), Some(lb.vip.clone()));
}

#[tokio::test]
async fn deleted_ingress_releases_the_clb_it_created() {
    let env = env().await;
    let uid = web_ingress(&env, "web");
    env.reconcile("web").await;
    let lb = env.lb_of(&uid).unwrap();
    env.delete_ingress("web");

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Released, "{outcome:?}");
    assert!(env.clb.load_balancer(&lb.id).is_none());
    assert_eq!(count(&env.clb.calls(), "DeleteLoadBalancer"), 1);
}

#[tokio::test]
async fn plan_of_an_unchanged_ingress_says_nothing_would_change_and_writes_nothing() {
    let env = env().await;
    web_ingress(&env, "web");
    env.reconcile("web").await;
    env.clb.clear_calls();
    env.kube.clear_request_log();
    let dry = env
        .engine()
        .dry_run(&IngressKey::new(NS, "web"))
        .await
        .unwrap();
    assert!(dry.is_empty());
    assert!(dry.to_string().contains("nothing would change"), "{dry}");
    assert_eq!(writes(&env.clb.calls()).len(), 0);
    assert_eq!(env.kube_writes(), Vec::<String>::new());

    // A new Ingress: the plan lists the calls, and still nothing is written.
    env.ingress("fresh", json!({}), rules(&[("", "/", "web", 80)]));
    let dry = env
        .engine()
        .dry_run(&IngressKey::new(NS, "fresh"))
        .await
        .unwrap();
    assert!(dry.to_string().contains("CreateLoadBalancer"), "{dry}");
    assert_eq!(writes(&env.clb.calls()).len(), 0);
    assert_eq!(env.kube_writes(), Vec::<String>::new());
}
