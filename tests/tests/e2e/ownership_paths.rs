//! End to end, the histories that broke DESIGN §1 (issue 8 §1), one test each: a replayed
//! ClientToken answering a CLB that lost our tags, two Ingresses adopting one CLB at once, a
//! slow read after create, a missing IngressClass.

use crate::support::engine::*;
use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress_tests::clb_sim::{Faults, ScriptedFault};
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

#[tokio::test]
async fn a_clb_taken_out_of_the_cluster_is_never_written_and_the_ingress_gets_one_new_clb_once() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let lb = env.lb_of(&uid).expect("created");
    // The user takes the CLB away from the cluster in the console: our cluster tag goes, our
    // listener stays and keeps serving. The lookup by UID no longer finds it; the create that
    // follows replays the same ClientToken, which answers this very CLB.
    assert!(env
        .clb
        .set_tags(&lb.id, &[(TAG_CREATED_BY, "yes"), (TAG_UID, &uid)]));
    let listeners_before = env.clb.load_balancer(&lb.id).unwrap().listeners;
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let touched: Vec<String> = writes_naming(&env, &lb.id)
        .into_iter()
        .filter(|a| a != "CreateLoadBalancer")
        .collect();
    assert!(touched.is_empty(), "{} was written: {touched:?}", lb.id);
    assert_eq!(
        env.clb.load_balancer(&lb.id).unwrap().listeners,
        listeners_before
    );
    assert_eq!(
        env.sorted_tags(&lb.id),
        vec![
            (TAG_CREATED_BY.into(), "yes".into()),
            (TAG_UID.into(), uid.clone())
        ]
    );
    // The replay, then one create under the token derived from the disowned CLB's id.
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 2);
    let new = env.lb_of(&uid).expect("a new CLB of ours");
    assert_ne!(new.id, lb.id);
    assert_eq!(env.clb.load_balancers().len(), 2);
    assert_eq!(env.ingress_ip("web").as_deref(), Some(new.vip.as_str()));
    assert_eq!(env.warnings("web"), vec!["E4017".to_string()]);
    // Steady from then on: found by its tags, nothing created or written, no new Warning.
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty(), "{:?}", env.clb.calls());
    assert_eq!(env.warnings("web").len(), 1);
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
        env.sorted_tags(&lb_id),
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

const OUR_LISTENER: &str = "TKE-DEDICATED-LISTENER";

fn our_listeners(env: &Env, lb_id: &str) -> usize {
    env.clb
        .load_balancer(lb_id)
        .expect("CLB exists")
        .listeners
        .iter()
        .filter(|l| l.name == OUR_LISTENER)
        .count()
}

#[tokio::test]
async fn an_adopted_clb_keeps_our_tags_until_every_listener_of_ours_is_confirmed_gone() {
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
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    // A second listener of ours (a killed run or an older version left it).
    env.console_listener(&lb_id, 8080, OUR_LISTENER).await;
    env.delete_ingress("web");
    // The listener delete answers "not found" (one went meanwhile): nothing proves the
    // others went with it.
    env.clb.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "DeleteLoadBalancerListeners".into(),
            code: "InvalidParameter.ListenerIdNotFound".into(),
            count: 1,
        }],
        ..Faults::default()
    });
    let first = env.reconcile("web").await;
    assert_eq!(our_listeners(&env, &lb_id), 2, "{first:?}");
    assert_eq!(
        env.sorted_tags(&lb_id),
        vec![
            ("team".into(), "web".into()),
            (TAG_CLUSTER.into(), CLUSTER.into()),
            (TAG_UID.into(), uid.clone())
        ],
        "our tags stay while listeners of ours remain: they lead the next run back"
    );
    let second = env.reconcile("web").await;
    assert_eq!(second.status, OutcomeStatus::Released, "{second:?}");
    assert_eq!(our_listeners(&env, &lb_id), 0);
    assert_eq!(env.sorted_tags(&lb_id), vec![("team".into(), "web".into())]);
}

#[tokio::test]
async fn the_sweep_never_releases_an_orphan_adopted_by_a_new_ingress_while_it_ran() {
    let env = env().await;
    backends(&env);
    let z = env.ingress("z", json!({}), rules(&[("z.example.com", "/", "web", 80)]));
    assert_eq!(env.reconcile("z").await.status, OutcomeStatus::Converged);
    assert!(env.lb_of(&z).is_some());
    // An orphan of ours: a user's CLB adopted by an Ingress that is gone.
    let orphan = env.clb.insert_load_balancer(
        "OPEN",
        "users-own",
        &[("team", "o"), (TAG_CLUSTER, CLUSTER), (TAG_UID, "uid-gone")],
    );
    env.console_listener(&orphan, 80, OUR_LISTENER).await;
    env.clb.clear_calls();
    // The sweep lists the CLBs, then spends a while reading the fleet (its batched
    // DescribeTargetHealth is slow; the one-Ingress runs below never call it).
    env.clb.set_faults(Faults {
        latency_rate: 1.0,
        latency_ms: 4000,
        actions: vec!["DescribeTargetHealth".into()],
        ..Faults::default()
    });
    let engine = env.engine();
    let sweep = tokio::spawn(async move {
        engine
            .sweep_now(tokio::time::Instant::now() + std::time::Duration::from_secs(60))
            .await
    });
    for _ in 0..2000 {
        if count(&env.clb.calls(), "DescribeLoadBalancers") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(
        count(&env.clb.calls(), "DescribeLoadBalancers") > 0,
        "the sweep has listed the CLBs and is reading the fleet"
    );
    // Meanwhile another run released the orphan (our listener and tags gone), and a new
    // Ingress adopted it.
    let listener = env.clb.load_balancer(&orphan).unwrap().listeners[0]
        .id
        .clone();
    assert!(env.clb.remove_listener(&orphan, &listener));
    assert!(env.clb.set_tags(&orphan, &[("team", "o")]));
    let y = env.ingress(
        "y",
        json!({EXIST: orphan}),
        rules(&[("y.example.com", "/", "web", 80)]),
    );
    assert_eq!(env.reconcile("y").await.status, OutcomeStatus::Converged);
    let out = sweep.await.expect("sweep ran");
    env.clb.set_faults(Faults::default());
    assert_eq!(out.orphans_released, 0, "{out:?}");
    assert_eq!(
        env.sorted_tags(&orphan),
        vec![
            ("team".into(), "o".into()),
            (TAG_CLUSTER.into(), CLUSTER.into()),
            (TAG_UID.into(), y.clone())
        ]
    );
    let lb = env.clb.load_balancer(&orphan).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80)
            .into_iter()
            .map(|(d, _, _)| d)
            .collect::<Vec<_>>(),
        vec!["y.example.com".to_string()]
    );
}

#[tokio::test]
async fn switching_exist_lb_id_releases_the_clb_no_longer_named_after_the_new_one_serves() {
    let env = env().await;
    backends(&env);
    let a = env.clb.insert_load_balancer("OPEN", "a", &[("team", "a")]);
    let b = env.clb.insert_load_balancer("OPEN", "b", &[("team", "b")]);
    let uid = env.ingress(
        "web",
        json!({EXIST: a}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"][EXIST] = json!(b.clone())
    });
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    assert_eq!(our_listeners(&env, &b), 1);
    assert_eq!(
        env.sorted_tags(&b),
        vec![
            ("team".into(), "b".into()),
            (TAG_CLUSTER.into(), CLUSTER.into()),
            (TAG_UID.into(), uid.clone())
        ]
    );
    assert_eq!(
        env.ingress_ip("web"),
        Some(env.clb.load_balancer(&b).unwrap().vip)
    );
    // The CLB no longer named: our listener deleted, our two tags removed, the CLB kept.
    assert_eq!(our_listeners(&env, &a), 0);
    assert_eq!(env.sorted_tags(&a), vec![("team".into(), "a".into())]);
    // New before old: every write to the old CLB comes after the last write to the new one.
    let calls = env.clb.calls();
    let written = |id: &str| {
        calls
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.action.starts_with("Describe") && c.lb_ids.iter().any(|i| i == id))
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    let (to_a, to_b) = (written(&a), written(&b));
    assert!(!to_a.is_empty() && !to_b.is_empty());
    assert!(to_a.iter().min() > to_b.iter().max(), "{calls:?}");
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty());
}

#[tokio::test]
async fn created_to_adopted_deletes_the_created_clb_and_adopted_to_created_releases_the_adopted_one(
) {
    let env = env().await;
    backends(&env);
    let b = env.clb.insert_load_balancer("OPEN", "b", &[("team", "b")]);
    let uid = env.ingress("web", json!({}), rules(&[("", "/", "web", 80)]));
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let created = env.lb_of(&uid).expect("created");
    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"][EXIST] = json!(b.clone())
    });
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    assert!(
        env.clb.load_balancer(&created.id).is_none(),
        "created: deleted"
    );
    assert_eq!(our_listeners(&env, &b), 1);
    assert_eq!(env.lb_of(&uid).map(|l| l.id), Some(b.clone()));

    env.edit_ingress("web", |i| {
        i["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(EXIST);
    });
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let fresh = env.lb_of(&uid).expect("one CLB of ours again");
    assert_ne!(fresh.id, b);
    assert!(fresh
        .tags
        .contains(&(TAG_CREATED_BY.to_string(), "yes".to_string())));
    assert_eq!(env.ingress_ip("web"), Some(fresh.vip.clone()));
    assert_eq!(our_listeners(&env, &b), 0);
    assert_eq!(env.sorted_tags(&b), vec![("team".into(), "b".into())]);
}

#[tokio::test]
async fn a_sweep_that_would_release_most_of_the_fleet_releases_none() {
    let env = env().await;
    backends(&env);
    // A wrong kubeconfig or an emptied cluster: five CLBs of ours, no Ingress at all.
    let orphans: Vec<String> = (0..5)
        .map(|n| {
            env.clb.insert_load_balancer(
                "OPEN",
                &format!("o{n}"),
                &[
                    (TAG_CREATED_BY, "yes"),
                    (TAG_CLUSTER, CLUSTER),
                    (TAG_UID, &format!("uid-gone-{n}")),
                ],
            )
        })
        .collect();
    env.clb.clear_calls();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let out = env.engine().sweep_now(deadline).await;
    assert_eq!(out.orphans_released, 0, "{out:?}");
    assert!(
        out.release_held
            .as_deref()
            .is_some_and(|why| why.contains("5 of the cluster's 5")),
        "{out:?}"
    );
    assert!(writes(&env.clb.calls()).is_empty());
    for id in &orphans {
        assert!(env.clb.load_balancer(id).is_some());
    }
    // A gone Ingress's trigger releases orphans too: held the same way.
    let outcome = env.reconcile("gone").await;
    assert_eq!(
        outcome.code.as_deref(),
        Some("MassReleaseHeld"),
        "{outcome:?}"
    );
    assert!(writes(&env.clb.calls()).is_empty());
    // The documented switch lifts the guard for one run.
    let out = env.engine().allow_mass_release().sweep_now(deadline).await;
    assert_eq!((out.orphans_released, out.release_held), (5, None));
    assert!(env.clb.load_balancers().is_empty());
    // A small share is released without it: three orphans are within max(3, 10%).
    for n in 0..3 {
        env.clb.insert_load_balancer(
            "OPEN",
            &format!("p{n}"),
            &[
                (TAG_CREATED_BY, "yes"),
                (TAG_CLUSTER, CLUSTER),
                (TAG_UID, &format!("uid-gone-p{n}")),
            ],
        );
    }
    let out = env.engine().sweep_now(deadline).await;
    assert_eq!((out.orphans_released, out.release_held), (3, None));
}
