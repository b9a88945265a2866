//! End to end, DESIGN §1 row by row: adoption and its refusals, release of created and
//! adopted CLBs, class switches both ways, the sweep's orphan collection, and CLBs without
//! our cluster tag that must never be written.

use crate::support::engine::*;
use clb_ingress::handler::OutcomeStatus;
use serde_json::json;
use tokio::time::Instant;

const EXIST: &str = "kubernetes.io/ingress.existLbId";
const CLASS: &str = "kubernetes.io/ingress.class";

fn backends(env: &Env) {
    env.node("node-1", "ins-bbb1");
    env.service("web", 80, 30080);
}

/// Adds a listener behind our back (as a user would in the console).
async fn user_listener(env: &Env, lb_id: &str, port: i64) {
    env.console_listener(lb_id, port, "user-listener").await;
}

/// No call that changes something named this CLB.
fn never_written(env: &Env, lb_id: &str) {
    let touched: Vec<String> = env
        .clb
        .calls()
        .iter()
        .filter(|c| !c.action.starts_with("Describe") && c.lb_ids.iter().any(|i| i == lb_id))
        .map(|c| c.action.clone())
        .collect();
    assert!(touched.is_empty(), "{lb_id} was written: {touched:?}");
}

#[tokio::test]
async fn existing_clb_is_adopted_then_released_keeping_it_and_foreign_listeners() {
    let env = env().await;
    backends(&env);
    let lb_id = env
        .clb
        .insert_load_balancer("OPEN", "users-own", &[("team", "web")]);
    let uid = env.ingress(
        "web",
        json!({EXIST: lb_id}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    assert_eq!(
        env.sorted_tags(&lb_id),
        vec![
            ("team".into(), "web".into()),
            (TAG_CLUSTER.into(), CLUSTER.into()),
            (TAG_UID.into(), uid.clone()),
        ]
    );
    let lb = env.clb.load_balancer(&lb_id).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "a.example.com".into(),
            "/".into(),
            vec!["ins-bbb1:30080@10".into()]
        )]
    );
    assert_eq!(env.ingress_lb_annotation("web"), Some(lb_id.clone()));

    // After adoption the user adds a listener of their own; it is never ours.
    user_listener(&env, &lb_id, 8080).await;
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty());

    env.delete_ingress("web");
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Released, "{outcome:?}");
    let lb = env
        .clb
        .load_balancer(&lb_id)
        .expect("an adopted CLB is kept");
    assert_eq!(env.sorted_tags(&lb_id), vec![("team".into(), "web".into())]);
    let names: Vec<&str> = lb.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["user-listener"]);
    assert_eq!(count(&env.clb.calls(), "DeleteLoadBalancer"), 0);
}

async fn refused(env: &Env, lb_id: &str, code: &str) {
    env.clb.clear_calls();
    let name = format!("ing-{}", code.to_lowercase());
    env.ingress(
        &name,
        json!({EXIST: lb_id}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    let outcome = env.reconcile(&name).await;
    assert_eq!(
        outcome.status,
        OutcomeStatus::Invalid,
        "{code}: {outcome:?}"
    );
    assert_eq!(outcome.code.as_deref(), Some(code));
    assert!(
        env.warnings(&name).contains(&code.to_string()),
        "{code}: {:?}",
        env.events(&name)
    );
    assert!(
        writes(&env.clb.calls()).is_empty(),
        "{code}: {:?}",
        env.clb.calls()
    );
}

#[tokio::test]
async fn every_exist_lb_refusal_is_a_warning_event_and_no_clb_write() {
    let env = env().await;
    backends(&env);
    refused(&env, "lb-missing01", "E4018").await;
    let tke = env
        .clb
        .insert_load_balancer("OPEN", "tke-made", &[(TAG_CREATED_BY, "yes")]);
    refused(&env, &tke, "E4019").await;
    let other =
        env.clb
            .insert_load_balancer("OPEN", "other-ingress", &[(TAG_UID, "some-other-uid")]);
    refused(&env, &other, "E4020").await;
    let other_cluster =
        env.clb
            .insert_load_balancer("OPEN", "other-cluster", &[(TAG_CLUSTER, "cls-other")]);
    refused(&env, &other_cluster, "E4020").await;
    let busy = env.clb.insert_load_balancer("OPEN", "has-listeners", &[]);
    user_listener(&env, &busy, 80).await;
    refused(&env, &busy, "E4021").await;
}

#[tokio::test]
async fn class_switches_create_and_release_the_clb() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress(
        "web",
        json!({CLASS: "nginx"}),
        rules(&[("", "/", "web", 80)]),
    );
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Ignored, "{outcome:?}");
    assert!(env.clb.load_balancers().is_empty());
    assert!(writes(&env.clb.calls()).is_empty());

    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"][CLASS] = json!("qcloud")
    });
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let lb = env
        .lb_of(&uid)
        .expect("moving into our class creates the CLB");
    assert_eq!(env.ingress_ip("web"), Some(lb.vip.clone()));

    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"][CLASS] = json!("nginx")
    });
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Released, "{outcome:?}");
    assert!(env.clb.load_balancer(&lb.id).is_none());
    assert_eq!(env.ingress_lb_annotation("web"), None);
    assert_eq!(env.ingress_ip("web"), None);
    // Out of class and nothing left: quiet.
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Ignored);
    assert!(writes(&env.clb.calls()).is_empty());
}

#[tokio::test]
async fn clbs_without_our_cluster_tag_are_never_written_even_naming_our_ingress() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    // Same Ingress UID, another cluster; and one with the UID but no cluster tag at all.
    let foreign = env.clb.insert_load_balancer(
        "OPEN",
        "other-cluster",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, "cls-other"),
            (TAG_UID, &uid),
        ],
    );
    let untagged = env
        .clb
        .insert_load_balancer("OPEN", "uid-only", &[(TAG_UID, &uid)]);
    // Orphan-looking CLBs of another cluster and with no tags.
    let gone_other = env.clb.insert_load_balancer(
        "OPEN",
        "gone-other",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, "cls-other"),
            (TAG_UID, "gone-uid"),
        ],
    );
    let bare = env.clb.insert_load_balancer("OPEN", "bare", &[]);

    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let ours = env.lb_of(&uid).expect("our own CLB");
    assert!(![&foreign, &untagged].contains(&&ours.id));
    env.delete_ingress("web");
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Released);
    let sweep = env
        .engine()
        .sweep_now(Instant::now() + std::time::Duration::from_secs(30))
        .await;
    assert_eq!(sweep.error, None);
    assert!(env.clb.load_balancer(&ours.id).is_none());
    for id in [&foreign, &untagged, &gone_other, &bare] {
        assert!(env.clb.load_balancer(id).is_some(), "{id} must survive");
        never_written(&env, id);
    }
}

#[tokio::test]
async fn sweep_reconciles_every_ingress_and_releases_only_proven_orphans() {
    let env = env().await;
    backends(&env);
    let a = env.ingress("a", json!({}), rules(&[("a.example.com", "/", "web", 80)]));
    let b = env.ingress("b", json!({}), rules(&[("b.example.com", "/", "web", 80)]));
    env.ingress(
        "other",
        json!({CLASS: "nginx"}),
        rules(&[("", "/", "web", 80)]),
    );
    // An orphan of ours: tagged with our cluster and a UID no Ingress has.
    let orphan = env.clb.insert_load_balancer(
        "OPEN",
        "orphan",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, CLUSTER),
            (TAG_UID, "uid-gone"),
        ],
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let out = env.engine().sweep_now(deadline).await;
    assert_eq!(out.error, None, "{out:?}");
    assert_eq!(
        out.ingresses.get(&OutcomeStatus::Converged),
        Some(&2),
        "{out:?}"
    );
    assert_eq!(out.orphans_released, 1);
    assert_eq!(out.not_reached, 0);
    assert!(env.lb_of(&a).is_some() && env.lb_of(&b).is_some());
    assert!(env.clb.load_balancer(&orphan).is_none());
    assert_eq!(env.clb.load_balancers().len(), 2);

    // A failed Ingress list proves nothing: no CLB is released.
    let orphan2 = env.clb.insert_load_balancer(
        "OPEN",
        "orphan2",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, CLUSTER),
            (TAG_UID, "uid-gone2"),
        ],
    );
    env.kube
        .fail_next("GET", "/apis/networking.k8s.io/v1/ingresses", 1, 500);
    env.clb.clear_calls();
    let out = env.engine().sweep_now(deadline).await;
    assert!(out.error.is_some(), "{out:?}");
    assert!(env.clb.load_balancer(&orphan2).is_some());
    assert!(writes(&env.clb.calls()).is_empty());
}
