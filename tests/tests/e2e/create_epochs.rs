//! End to end, the CreateLoadBalancer ClientToken across the CLBs one Ingress loses while it
//! lives (`model::create_epoch`): each cycle costs one create (two when a user took the CLB
//! out of the cluster: the replay that answers it, then the next epoch's), never a replay of
//! every CLB lost before, and never a second CLB.

use crate::support::engine::*;
use clb_ingress::cloud::apply::ApplyOptions;
use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress::model::create_epoch::EPOCH_ANNOTATION;
use serde_json::json;

const CLASS: &str = "kubernetes.io/ingress.class";
const EXIST: &str = "kubernetes.io/ingress.existLbId";
const CYCLES: usize = 6;

fn backends(env: &Env) {
    env.node("node-1", "ins-bbb1");
    env.service("web", 80, 30080);
}

fn set_annotation(env: &Env, key: &str, value: Option<&str>) {
    env.edit_ingress("web", |i| match value {
        Some(v) => i["metadata"]["annotations"][key] = json!(v),
        None => {
            if let Some(a) = i["metadata"]["annotations"].as_object_mut() {
                a.remove(key);
            }
        }
    });
}

/// The create epoch the Ingress's Lease records.
fn recorded_epoch(env: &Env) -> Option<String> {
    let lease = env.kube.get_object(
        "coordination.k8s.io/v1",
        "Lease",
        Some(NS),
        "clb-ingress-web",
    )?;
    lease["metadata"]["annotations"][EPOCH_ANNOTATION]
        .as_str()
        .map(str::to_string)
}

/// Runs the Ingress into our class and checks it got a CLB of its own with exactly one
/// CreateLoadBalancer, and no other CLB of ours exists; the CLB's id.
async fn converges_with_one_create(env: &Env, uid: &str, cycle: usize) -> String {
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(
        outcome.status,
        OutcomeStatus::Converged,
        "cycle {cycle}: {outcome:?}"
    );
    assert_eq!(
        count(&env.clb.calls(), "CreateLoadBalancer"),
        1,
        "cycle {cycle}"
    );
    let lb = env.lb_of(uid).expect("a CLB of ours");
    assert_eq!(env.ingress_ip("web").as_deref(), Some(lb.vip.as_str()));
    lb.id
}

/// The Ingress `web` (its Node and Service first) with `annotations`, run to its first CLB
/// with one create: its UID and that CLB's id.
async fn first_clb(env: &Env, annotations: serde_json::Value) -> (String, String) {
    backends(env);
    let uid = env.ingress("web", annotations, rules(&[("", "/", "web", 80)]));
    let lb = converges_with_one_create(env, &uid, 0).await;
    (uid, lb)
}

/// Flips the Ingress out of our class and runs it: its CLB is released.
async fn flip_out(env: &Env) {
    set_annotation(env, CLASS, Some("nginx"));
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Released, "{outcome:?}");
}

#[tokio::test]
async fn an_ingress_flipped_out_of_the_class_and_back_six_times_gets_a_clb_with_one_create_each_time(
) {
    let env = env().await;
    let (uid, first) = first_clb(&env, json!({CLASS: "qcloud"})).await;
    let mut seen = vec![first];
    for cycle in 1..=CYCLES {
        env.clb.clear_calls();
        flip_out(&env).await;
        assert_eq!(count(&env.clb.calls(), "DeleteLoadBalancer"), 1);
        assert!(env.clb.load_balancers().is_empty(), "cycle {cycle}");
        set_annotation(&env, CLASS, Some("qcloud"));
        let id = converges_with_one_create(&env, &uid, cycle).await;
        assert!(!seen.contains(&id), "cycle {cycle} was answered an old CLB");
        seen.push(id);
        assert_eq!(env.clb.load_balancers().len(), 1);
    }
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:{CYCLES}")));
    // Steady: nothing written, no epoch moved.
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty(), "{:?}", env.clb.calls());
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:{CYCLES}")));
}

#[tokio::test]
async fn created_then_adopted_then_created_again_six_times_costs_one_create_each_time() {
    let env = env().await;
    let user_lb = env.clb.insert_load_balancer("OPEN", "users-own", &[]);
    let (uid, mut created) = first_clb(&env, json!({})).await;
    for cycle in 1..=CYCLES {
        // Switch to the user's CLB: it is adopted, the created one released (deleted).
        set_annotation(&env, EXIST, Some(&user_lb));
        env.clb.clear_calls();
        let outcome = env.reconcile("web").await;
        assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
        assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 0);
        assert!(env.clb.load_balancer(&created).is_none(), "cycle {cycle}");
        // And back: the adopted CLB is released (kept, untagged), one new CLB is created.
        set_annotation(&env, EXIST, None);
        let id = converges_with_one_create(&env, &uid, cycle).await;
        assert_ne!(id, created);
        assert_eq!(env.sorted_tags(&user_lb), Vec::<(String, String)>::new());
        assert_eq!(env.clb.load_balancers().len(), 2);
        created = id;
    }
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:{CYCLES}")));
}

#[tokio::test]
async fn a_clb_taken_out_of_the_cluster_six_times_costs_the_same_two_creates_each_time() {
    let env = env().await;
    let (uid, _) = first_clb(&env, json!({})).await;
    for cycle in 1..=CYCLES {
        let lb = env.lb_of(&uid).expect("ours");
        assert!(env
            .clb
            .set_tags(&lb.id, &[(TAG_CREATED_BY, "yes"), (TAG_UID, &uid)]));
        env.clb.clear_calls();
        let outcome = env.reconcile("web").await;
        assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
        // The replay of this epoch's token answers the disowned CLB; the next epoch's makes
        // the new one. Every CLB disowned before stays out of it.
        assert_eq!(
            count(&env.clb.calls(), "CreateLoadBalancer"),
            2,
            "cycle {cycle}"
        );
        let new = env.lb_of(&uid).expect("a new CLB of ours");
        assert_ne!(new.id, lb.id);
        assert_eq!(env.clb.load_balancers().len(), cycle + 1);
        assert_eq!(
            env.warnings("web").len(),
            cycle,
            "one E4017 per disowned CLB"
        );
    }
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:{CYCLES}")));
}

#[tokio::test]
async fn a_run_stopped_after_moving_the_epoch_on_leaves_its_clb_found_by_its_tags() {
    let env = env().await;
    let (uid, lb) = first_clb(&env, json!({})).await;
    set_annotation(&env, CLASS, Some("nginx"));
    // Killed between the epoch's move and the delete.
    let stopped = env
        .engine_with(ApplyOptions {
            stop_after: Some(0),
            ..Default::default()
        })
        .reconcile_one(&IngressKey::new(NS, "web"))
        .await;
    assert_ne!(stopped.status, OutcomeStatus::Released, "{stopped:?}");
    assert!(env.clb.load_balancer(&lb).is_some());
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:1")));
    // Back in the class before any run finished the release: the CLB is found by its tags,
    // nothing is created.
    set_annotation(&env, CLASS, None);
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 0);
    assert_eq!(env.lb_of(&uid).map(|l| l.id), Some(lb));
}

#[tokio::test]
async fn a_lease_deleted_by_hand_costs_replays_of_the_lost_clbs_once_and_still_one_clb() {
    let env = env().await;
    let (uid, _) = first_clb(&env, json!({CLASS: "qcloud"})).await;
    for cycle in 1..=2 {
        flip_out(&env).await;
        set_annotation(&env, CLASS, Some("qcloud"));
        converges_with_one_create(&env, &uid, cycle).await;
    }
    flip_out(&env).await;
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:3")));
    // The record is lost: the next create starts from epoch 0 again, replays the three CLBs
    // lost before (each proven gone) and moves the epoch on past them.
    assert!(env.kube.delete_object(
        "coordination.k8s.io/v1",
        "Lease",
        Some(NS),
        "clb-ingress-web"
    ));
    set_annotation(&env, CLASS, Some("qcloud"));
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 4);
    assert!(env.lb_of(&uid).is_some());
    assert_eq!(env.clb.load_balancers().len(), 1);
    assert_eq!(recorded_epoch(&env), Some(format!("{uid}:3")));
}
