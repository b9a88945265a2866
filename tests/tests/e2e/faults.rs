//! End to end under trouble: random CLB faults, a terminal API error mid-plan, and two runs
//! of the same Ingress at once. Whatever happens, the next quiet run converges and every
//! Ingress has exactly one CLB.

use crate::support::engine::*;
use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress_tests::clb_sim::{Faults, ScriptedFault};
use serde_json::json;

fn backends(env: &Env) {
    env.node("node-1", "ins-lll1");
    env.node("node-2", "ins-lll2");
    env.service("web", 80, 30080);
    env.service("api", 8080, 30081);
}

/// Reconciles until converged (or released/ignored), at most `tries` runs; returns the runs.
async fn until_settled(env: &Env, name: &str, tries: usize) -> usize {
    for run in 1..=tries {
        let o = env.reconcile(name).await;
        if matches!(
            o.status,
            OutcomeStatus::Converged | OutcomeStatus::Released | OutcomeStatus::Ignored
        ) && o.code.is_none()
        {
            return run;
        }
    }
    panic!(
        "{name} did not settle in {tries} runs: {:?}",
        env.clb.calls()
    );
}

#[tokio::test]
async fn random_internal_errors_and_dropped_connections_still_converge_to_one_clb() {
    let env = env().await;
    backends(&env);
    env.clb.set_faults(Faults {
        internal_error_rate: 0.15,
        drop_rate: 0.15,
        ..Faults::default()
    });
    let uid = env.ingress(
        "web",
        json!({}),
        rules(&[("", "/", "web", 80), ("a.example.com", "/api", "api", 8080)]),
    );
    until_settled(&env, "web", 5).await;
    env.edit_ingress("web", |i| {
        i["spec"] = rules(&[("b.example.com", "/", "api", 8080)]);
    });
    until_settled(&env, "web", 5).await;
    let faulted = env.clb.calls().iter().filter(|c| !c.ok()).count();
    assert!(faulted > 0, "the faults never fired");

    env.clb.set_faults(Faults::default());
    env.clb.clear_calls();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    assert!(writes(&env.clb.calls()).is_empty(), "{:?}", env.clb.calls());
    let lb = env.lb_of(&uid).expect("exactly one CLB");
    assert_eq!(env.clb.load_balancers().len(), 1);
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "b.example.com".to_string(),
            "/".to_string(),
            vec![
                "ins-lll1:30081@10".to_string(),
                "ins-lll2:30081@10".to_string()
            ]
        )]
    );

    env.clb.set_faults(Faults {
        internal_error_rate: 0.15,
        drop_rate: 0.15,
        ..Faults::default()
    });
    env.delete_ingress("web");
    until_settled(&env, "web", 5).await;
    assert!(env.clb.load_balancers().is_empty());
}

#[tokio::test]
async fn a_terminal_api_error_mid_plan_is_reported_and_the_next_run_finishes() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress(
        "web",
        json!({}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    env.clb.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "CreateRule".into(),
            code: "InvalidParameter".into(),
            count: 1,
        }],
        ..Faults::default()
    });
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some("InvalidParameter"));
    assert_eq!(outcome.actions.applied, 2, "CLB and listener were made");
    assert!(env
        .warnings("web")
        .contains(&"SyncLoadBalancerFailed".to_string()));

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "a.example.com".to_string(),
            "/".to_string(),
            vec![
                "ins-lll1:30080@10".to_string(),
                "ins-lll2:30080@10".to_string()
            ]
        )]
    );
    assert_eq!(env.clb.load_balancers().len(), 1);
}

#[tokio::test]
async fn a_create_rule_hitting_a_quota_still_lets_the_healthy_rules_targets_move_in_the_same_run() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress(
        "web",
        json!({}),
        rules(&[
            ("a.example.com", "/", "web", 80),
            ("b.example.com", "/", "api", 8080),
        ]),
    );
    until_settled(&env, "web", 1).await;
    // A rollout: api's nodePort moves (b's targets change) while a new host comes whose
    // CreateRule hits the rule quota.
    env.service("api", 8080, 30091);
    env.edit_ingress("web", |i| {
        i["spec"] = rules(&[
            ("a.example.com", "/", "web", 80),
            ("b.example.com", "/", "api", 8080),
            ("c.example.com", "/", "web", 80),
        ]);
    });
    env.clb.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "CreateRule".into(),
            code: "LimitExceeded".into(),
            count: 1,
        }],
        ..Faults::default()
    });
    env.clb.clear_calls();
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some("LimitExceeded"));
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "CreateRule"), 1, "tried once, not retried");
    assert_eq!(
        count(&calls, "BatchRegisterTargets"),
        1,
        "c's targets wait for c"
    );
    assert_eq!(count(&calls, "BatchDeregisterTargets"), 1);
    let lb = env.lb_of(&uid).expect("one CLB");
    let both = |port: i32| vec![format!("ins-lll1:{port}@10"), format!("ins-lll2:{port}@10")];
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![
            ("a.example.com".to_string(), "/".to_string(), both(30080)),
            ("b.example.com".to_string(), "/".to_string(), both(30091)),
        ],
        "the healthy rule's targets moved in the failing run"
    );
    let failed: Vec<String> = env
        .events("web")
        .into_iter()
        .filter(|(t, r, _)| t == "Warning" && r == "SyncLoadBalancerFailed")
        .map(|(_, _, note)| note)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("LimitExceeded: CreateRules"),
        "{}",
        failed[0]
    );

    // The next run retries the failed rule and converges.
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(listener_rules(&lb, "HTTP", 80).len(), 3);
}

#[tokio::test]
async fn two_runs_of_one_ingress_at_once_make_one_clb() {
    let env = env().await;
    backends(&env);
    let uid = env.ingress(
        "web",
        json!({}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    let (a, b) = (env.engine(), env.engine());
    let key = IngressKey::new(NS, "web");
    let (oa, ob) = tokio::join!(a.reconcile_one(&key), b.reconcile_one(&key));
    let statuses = [oa.status, ob.status];
    assert!(
        statuses.contains(&OutcomeStatus::Converged),
        "{oa:?} {ob:?}"
    );
    for o in [&oa, &ob] {
        assert!(
            matches!(
                o.status,
                OutcomeStatus::Converged | OutcomeStatus::SkippedBusy
            ),
            "{o:?}"
        );
    }
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 1);
    assert!(env.lb_of(&uid).is_some());
    env.clb.clear_calls();
    env.reconcile("web").await;
    assert!(writes(&env.clb.calls()).is_empty());
}
