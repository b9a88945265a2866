//! End to end: the steady sweep at the API minimum (issue 9 §1). A fleet of converged
//! Ingresses costs a few batch reads, Kubernetes requests that do not grow with the fleet,
//! and no write; a change the batch read can see is reconciled, and only that Ingress.

use std::time::Duration;

use crate::support::engine::*;
use clb_ingress::handler::{OutcomeStatus, SweepOutcome};
use clb_ingress::reconcile::SweepOptions;
use clb_ingress_tests::clb_sim::client::SimClient;
use serde_json::json;
use tokio::time::Instant;

/// k of the tests: every CLB read in full at least every 10 sweeps.
const K: usize = 10;

fn fleet(env: &Env, from: usize, to: usize) {
    env.node("node-1", "ins-fff1");
    env.node("node-2", "ins-fff2");
    env.service("web", 80, 30080);
    for i in from..to {
        env.ingress(
            &format!("web-{i}"),
            json!({}),
            rules(&[(&format!("h{i}.example.com"), "/", "web", 80)]),
        );
    }
}

async fn sweep(env: &Env) -> SweepOutcome {
    env.engine()
        .with_sweep(SweepOptions {
            full_read_every: K as u32,
            ..SweepOptions::default()
        })
        .sweep_now(Instant::now() + Duration::from_secs(300))
        .await
}

/// (CLB calls, Kubernetes requests) of one sweep of a converged fleet of `n`, asserting the
/// issue's bound on the CLB calls and that nothing is written.
async fn steady_sweep(env: &Env, n: usize) -> (usize, usize) {
    env.clb.clear_calls();
    env.kube.clear_request_log();
    let out = sweep(env).await;
    assert_eq!(
        out.ingresses.get(&OutcomeStatus::Converged),
        Some(&(n as u32)),
        "{out:?}"
    );
    assert_eq!(out.ingresses.len(), 1, "{out:?}");
    let calls = env.clb.calls();
    assert!(writes(&calls).is_empty(), "{:?}", writes(&calls));
    assert_eq!(
        env.kube_writes(),
        Vec::<String>::new(),
        "no Lease, no status, no Event"
    );
    assert_eq!(count(&calls, "DescribeLoadBalancers"), n.div_ceil(100));
    assert_eq!(count(&calls, "DescribeTargetHealth"), n.div_ceil(30));
    assert!(
        count(&calls, "DescribeListeners") <= n.div_ceil(K),
        "{}",
        count(&calls, "DescribeListeners")
    );
    assert_eq!(count(&calls, "DescribeTargets"), 0);
    // The regions holding our CLBs: one global Tag API page (200 CLBs a page).
    assert_eq!(count(&calls, "GetResources"), n.div_ceil(200));
    let bound = n.div_ceil(200) + n.div_ceil(100) + n.div_ceil(30) + n.div_ceil(K) + 2;
    assert!(
        calls.len() <= bound,
        "{} CLB calls for {n} Ingresses (bound {bound})",
        calls.len()
    );
    (calls.len(), env.kube.request_log().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_sweep_of_a_converged_fleet_costs_a_few_batch_reads_and_writes_nothing() {
    let env = env().await;
    fleet(&env, 0, 60);
    let first = sweep(&env).await;
    assert_eq!(
        first.ingresses.get(&OutcomeStatus::Converged),
        Some(&60),
        "{first:?}"
    );
    assert_eq!(env.clb.load_balancers().len(), 60);

    let (clb_60, kube_60) = steady_sweep(&env, 60).await;
    // Ten sweeps in a row read every CLB in full once between them.
    let mut full_reads = 0;
    for _ in 0..K {
        env.clb.clear_calls();
        steady_sweep(&env, 60).await;
        full_reads += count(&env.clb.calls(), "DescribeListeners");
    }
    assert!(
        full_reads >= 60,
        "{full_reads} full reads in {K} sweeps of 60 CLBs"
    );

    fleet(&env, 60, 90);
    let grown = sweep(&env).await;
    assert_eq!(
        grown.ingresses.get(&OutcomeStatus::Converged),
        Some(&90),
        "{grown:?}"
    );
    let (clb_90, kube_90) = steady_sweep(&env, 90).await;
    assert_eq!(
        kube_90, kube_60,
        "Kubernetes requests do not grow with the fleet"
    );
    assert!(clb_90 <= clb_60 + 1 + 3, "{clb_60} → {clb_90}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_reconciles_only_the_ingress_whose_clb_drifted() {
    let env = env().await;
    fleet(&env, 0, 5);
    sweep(&env).await;
    // A target unbound behind our back: DescribeTargetHealth shows it, whatever the rotation.
    let uid = env.get_ingress("web-3").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let lb = env.lb_of(&uid).unwrap();
    env.clb.clear_calls();
    env.kube.clear_request_log();
    let listener = &lb.listeners[0];
    let rule = &listener.rules[0];
    SimClient::new(&env.clb)
        .clb(
            "BatchDeregisterTargets",
            json!({"LoadBalancerId": lb.id, "Targets": [{"ListenerId": listener.id,
                "LocationId": rule.id, "InstanceId": "ins-fff1", "Port": 30080}]}),
        )
        .await;
    env.clb.clear_calls();
    let out = sweep(&env).await;
    assert_eq!(
        out.ingresses.get(&OutcomeStatus::Converged),
        Some(&5),
        "{out:?}"
    );
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "BatchRegisterTargets"), 1, "{calls:?}");
    assert_eq!(writes(&calls).len(), 1);
    let leases: Vec<String> = env
        .kube_writes()
        .into_iter()
        .filter(|w| w.contains("/leases"))
        .collect();
    assert!(
        !leases.is_empty() && leases.iter().all(|w| w.ends_with("clb-ingress-web-3")),
        "{leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_problem_is_written_once_then_later_sweeps_and_runs_write_nothing() {
    let env = env().await;
    fleet(&env, 0, 3);
    // Refused as a whole (a malformed mode), and served but for a rule to a missing Service.
    env.ingress(
        "refused",
        json!({"ingress.cloud.tencent.com/mode": "sometimes"}),
        rules(&[("r.example.com", "/", "web", 80)]),
    );
    env.ingress(
        "partial",
        json!({}),
        rules(&[
            ("p.example.com", "/", "web", 80),
            ("q.example.com", "/", "missing", 80),
        ]),
    );
    env.kube.clear_request_log();
    sweep(&env).await;
    let first = env.kube_writes();
    for (name, reason) in [("refused", "InvalidAnnotationValue"), ("partial", "E4041")] {
        assert!(
            env.warnings(name).iter().any(|r| r == reason),
            "{name}: {:?}",
            env.warnings(name)
        );
    }
    let events_written = first.iter().filter(|w| w.contains("/events")).count();
    assert!(events_written >= 2, "{first:?}");

    for run in 2..=3 {
        env.clb.clear_calls();
        env.kube.clear_request_log();
        let out = sweep(&env).await;
        assert_eq!(
            env.kube_writes(),
            Vec::<String>::new(),
            "sweep {run}: no Lease, no Event: {out:?}"
        );
        assert!(writes(&env.clb.calls()).is_empty());
        assert_eq!(
            out.ingresses.get(&OutcomeStatus::Invalid),
            Some(&1),
            "{out:?}"
        );
        assert_eq!(
            out.ingresses.get(&OutcomeStatus::Converged),
            Some(&4),
            "{out:?}"
        );
    }
    for name in ["refused", "partial"] {
        for _ in 2..=3 {
            env.kube.clear_request_log();
            env.reconcile(name).await;
            assert_eq!(env.kube_writes(), Vec::<String>::new(), "{name}");
        }
    }

    // A changed problem is news: written once.
    env.ingress(
        "refused",
        json!({"ingress.cloud.tencent.com/mode": "never"}),
        rules(&[("r.example.com", "/", "web", 80)]),
    );
    env.kube.clear_request_log();
    sweep(&env).await;
    let events: Vec<String> = env
        .kube_writes()
        .into_iter()
        .filter(|w| w.contains("/events"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
}
