//! End to end, the histories that broke DESIGN §1 (issue 8 §1), one test each: a replayed
//! ClientToken answering a CLB that lost our tags, two Ingresses adopting one CLB at once, a
//! slow read after create, a missing IngressClass.

mod e2e_support;

use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress_tests::clb_sim::Faults;
use e2e_support::*;
use serde_json::json;

const EXIST: &str = "kubernetes.io/ingress.existLbId";

fn backends(env: &Env) {
    env.node("node-1", "ins-bbb1");
    env.service("web", 80, 30080);
}

/// Writes (anything but Describe*) that named `lb_id`, by action.
fn writes_naming(env: &Env, lb_id: &str) -> Vec<String> {
    writes(&env.clb.calls())
        .into_iter()
        .filter(|c| c.lb_ids.iter().any(|i| i == lb_id))
        .map(|c| c.action.clone())
        .collect()
}

fn sorted_tags(env: &Env, lb_id: &str) -> Vec<(String, String)> {
    let mut t = env.clb.load_balancer(lb_id).expect("CLB exists").tags;
    t.sort();
    t
}

#[tokio::test]
async fn a_replayed_client_token_answering_a_clb_without_our_cluster_tag_is_never_written() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let lb = env.lb_of(&uid).expect("created");
    // The user takes the CLB away from the cluster in the console: our cluster tag goes, and
    // so does our listener. The lookup by UID no longer finds it; the create that follows
    // replays the same ClientToken, which answers this very CLB.
    assert!(env
        .clb
        .set_tags(&lb.id, &[(TAG_CREATED_BY, "yes"), (TAG_UID, &uid)]));
    for l in &lb.listeners {
        assert!(env.clb.remove_listener(&lb.id, &l.id));
    }
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_ne!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some("E4017"), "{outcome:?}");
    let touched: Vec<String> = writes_naming(&env, &lb.id)
        .into_iter()
        .filter(|a| a != "CreateLoadBalancer")
        .collect();
    assert!(touched.is_empty(), "{} was written: {touched:?}", lb.id);
    assert!(env.clb.load_balancer(&lb.id).unwrap().listeners.is_empty());
    assert_eq!(
        sorted_tags(&env, &lb.id),
        vec![
            (TAG_CREATED_BY.into(), "yes".into()),
            (TAG_UID.into(), uid.clone())
        ]
    );
    assert_eq!(env.clb.load_balancers().len(), 1);
    assert!(!env.warnings("web").is_empty(), "{:?}", env.events("web"));
}

#[tokio::test]
async fn two_ingresses_adopting_one_clb_at_once_leave_one_owner_and_the_other_e4020() {
    let env = env().await;
    backends(&env);
    let lb_id = env.clb.insert_load_balancer("OPEN", "shared", &[]);
    let a = env.ingress(
        "a",
        json!({EXIST: lb_id}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    let b = env.ingress(
        "b",
        json!({EXIST: lb_id}),
        rules(&[("b.example.com", "/", "web", 80)]),
    );
    // Both runs find the CLB free: each tag lands only after both have looked.
    env.clb.set_faults(Faults {
        latency_rate: 1.0,
        latency_ms: 300,
        actions: vec!["TagResources".into()],
        ..Faults::default()
    });
    let engine = env.engine();
    let (ka, kb) = (IngressKey::new(NS, "a"), IngressKey::new(NS, "b"));
    let (oa, ob) = tokio::join!(engine.reconcile_one(&ka), engine.reconcile_one(&kb));
    env.clb.set_faults(Faults::default());
    let outcomes = [
        (a.clone(), "a.example.com", oa),
        (b.clone(), "b.example.com", ob),
    ];
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, _, o)| o.status == OutcomeStatus::Converged)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let (winner_uid, winner_host, _) = winners[0];
    let (_, _, loser) = outcomes
        .iter()
        .find(|(_, _, o)| o.status != OutcomeStatus::Converged)
        .expect("a loser");
    assert_eq!(loser.code.as_deref(), Some("E4020"), "{loser:?}");
    assert_eq!(
        sorted_tags(&env, &lb_id),
        vec![
            (TAG_CLUSTER.into(), CLUSTER.into()),
            (TAG_UID.into(), winner_uid.clone())
        ]
    );
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "CreateLoadBalancer"), 0);
    assert_eq!(count(&calls, "CreateListener"), 1, "only the winner's");
    let lb = env.clb.load_balancer(&lb_id).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80)
            .into_iter()
            .map(|(d, _, _)| d)
            .collect::<Vec<_>>(),
        vec![winner_host.to_string()]
    );
}

#[tokio::test]
async fn a_slow_read_after_create_does_not_make_a_second_clb() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    // A read replica behind the create: the new CLB is not found by id for five reads.
    env.clb.set_faults(Faults {
        lagging_id_reads: 5,
        ..Faults::default()
    });
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    assert_eq!(
        env.clb.faults().lagging_id_reads,
        0,
        "every lagging read served"
    );
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 1);
    assert_eq!(env.clb.load_balancers().len(), 1);
    assert!(env.lb_of(&uid).is_some());
}

#[tokio::test]
async fn an_ingress_naming_a_missing_ingress_class_keeps_its_clb_and_says_so() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let lb = env.lb_of(&uid).expect("created");
    // Helm or GitOps re-creates the IngressClass: for a moment it does not exist.
    env.edit_ingress("web", |i| i["spec"]["ingressClassName"] = json!("edge"));
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Invalid, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some("IngressClassNotFound"));
    assert!(writes(&env.clb.calls()).is_empty());
    assert!(env.clb.load_balancer(&lb.id).is_some());
    assert!(env
        .warnings("web")
        .contains(&"IngressClassNotFound".to_string()));
    assert_eq!(env.ingress_ip("web"), Some(lb.vip.clone()));
    // The class appears, naming our controller: managed again, nothing to change.
    env.put(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "edge"},
        "spec": {"controller": clb_ingress::identity::INGRESS_CLASS_CONTROLLER}
    }));
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty());
}
