//! End to end: one Ingress reconciled through the real kube client (against kube-sim) and
//! the real cloud client (against clb-sim), asserting what a user sees on the CLB and the
//! Ingress, and the call counts in both simulators' logs.

use crate::support::engine::*;
use clb_ingress::handler::{IngressKey, OutcomeStatus};
use clb_ingress_tests::clb_sim::client::SimClient;
use clb_ingress_tests::function_rbac;
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
    env.clb.clear_calls();
    env.kube.clear_request_log();

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Released, "{outcome:?}");
    assert!(env.clb.load_balancer(&lb.id).is_none());
    // One list of our cluster's CLBs, a read of the orphan taken after the proof that its
    // Ingress is gone, then the delete; no Lease taken for a gone Ingress, and the one its
    // earlier runs left is deleted.
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "DescribeLoadBalancers"), 2);
    assert_eq!(count(&calls, "DeleteLoadBalancer"), 1);
    assert_eq!(writes(&calls).len(), 1);
    assert_eq!(
        env.kube_writes(),
        vec!["DELETE /apis/coordination.k8s.io/v1/namespaces/shop/leases/clb-ingress-web"]
    );
    // ... and it really went: rbac.yaml grants the delete to the function's account.
    assert_eq!(env.kube_forbidden(), Vec::<String>::new());
    assert!(env
        .kube
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "clb-ingress-web"
        )
        .is_none());
    // Nothing left: the next run is quiet.
    env.clb.clear_calls();
    env.kube.clear_request_log();
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Ignored);
    assert!(writes(&env.clb.calls()).is_empty());
    assert_eq!(env.kube_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn without_lease_delete_in_the_role_a_gone_ingresss_lease_is_refused_and_stays() {
    let env = env().await;
    web_ingress(&env, "web");
    env.reconcile("web").await;
    // The ClusterRole as rbac.yaml had it before: Leases without `delete`.
    let mut role = env
        .kube
        .get_object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "clb-ingress",
        )
        .expect("rbac.yaml's ClusterRole");
    for rule in role["rules"].as_array_mut().unwrap() {
        if rule["resources"] == json!(["leases"]) {
            rule["verbs"] = json!(["get", "create", "update", "patch"]);
        }
    }
    env.put(role);
    env.delete_ingress("web");
    env.kube.clear_request_log();

    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Released);
    assert_eq!(
        env.kube_forbidden(),
        vec!["DELETE /apis/coordination.k8s.io/v1/namespaces/shop/leases/clb-ingress-web (system:serviceaccount:kube-system:clb-ingress)"]
    );
    assert!(env
        .kube
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "clb-ingress-web"
        )
        .is_some());
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

#[tokio::test]
async fn tls_default_certificate_goes_on_the_listener_and_host_certificates_switch_on_sni() {
    let env = env().await;
    env.node("node-1", "ins-ccc1");
    env.service("web", 80, 30080);
    env.cert_secret("tls-default", "cert-default");
    env.cert_secret("tls-b", "cert-b");
    let mut spec = rules(&[("a.example.com", "/", "web", 80)]);
    spec["tls"] = json!([{"secretName": "tls-default"}]);
    let uid = env.ingress("tls", json!({}), spec);
    assert_eq!(env.reconcile("tls").await.status, OutcomeStatus::Converged);
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(lb.listeners.len(), 1, "HTTPS only, no HTTP:80");
    let l = &lb.listeners[0];
    assert_eq!((l.protocol.as_str(), l.port, l.sni), ("HTTPS", 443, false));
    assert_eq!(
        l.certificate.as_ref().map(|c| c.cert_id.as_str()),
        Some("cert-default")
    );

    // A host with its own certificate: SNI on, per-domain certificates on the rules.
    env.edit_ingress("tls", |i| {
        i["spec"]["tls"] = json!([{"secretName": "tls-default"},
                                  {"hosts": ["b.example.com"], "secretName": "tls-b"}]);
        i["spec"]["rules"]
            .as_array_mut()
            .unwrap()
            .push(rules(&[("b.example.com", "/", "web", 80)])["rules"][0].clone());
    });
    let outcome = env.reconcile("tls").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    let l = &lb.listeners[0];
    assert!(l.sni, "SNI switched on");
    let mut certs: Vec<(String, Option<String>)> = l
        .rules
        .iter()
        .map(|r| {
            (
                r.domain().to_string(),
                r.certificate.as_ref().map(|c| c.cert_id.clone()),
            )
        })
        .collect();
    certs.sort();
    assert_eq!(
        certs,
        vec![
            ("a.example.com".into(), Some("cert-default".into())),
            ("b.example.com".into(), Some("cert-b".into())),
        ]
    );
    env.clb.clear_calls();
    env.reconcile("tls").await;
    assert!(writes(&env.clb.calls()).is_empty(), "{:?}", env.clb.calls());
}

#[tokio::test]
async fn nodeport_mode_binds_node_instances_and_direct_mode_binds_pod_ips() {
    let env = env().await;
    env.node("node-1", "ins-ddd1");
    env.node("node-2", "ins-ddd2");
    env.service("web", 80, 30080);
    env.direct_service("pods", 80, 8080, &["10.0.0.5", "10.0.0.6"]);
    let np = env.ingress(
        "np",
        json!({}),
        rules(&[("np.example.com", "/", "web", 80)]),
    );
    let direct = env.ingress(
        "direct",
        json!({"ingress.cloud.tencent.com/direct-access": "true"}),
        rules(&[("d.example.com", "/", "pods", 80)]),
    );
    assert_eq!(env.reconcile("np").await.status, OutcomeStatus::Converged);
    assert_eq!(
        env.reconcile("direct").await.status,
        OutcomeStatus::Converged
    );
    assert_eq!(
        listener_rules(&env.lb_of(&np).unwrap(), "HTTP", 80)[0].2,
        vec!["ins-ddd1:30080@10", "ins-ddd2:30080@10"]
    );
    assert_eq!(
        listener_rules(&env.lb_of(&direct).unwrap(), "HTTP", 80)[0].2,
        vec!["10.0.0.5:8080@10", "10.0.0.6:8080@10"]
    );

    // A node leaves and a pod moves: only the difference is written.
    env.kube.delete_object("v1", "Node", None, "node-2");
    env.direct_service("pods", 80, 8080, &["10.0.0.5", "10.0.0.7"]);
    env.clb.clear_calls();
    env.reconcile("np").await;
    env.reconcile("direct").await;
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "BatchRegisterTargets"), 1);
    assert_eq!(count(&calls, "BatchDeregisterTargets"), 2);
    assert_eq!(writes(&calls).len(), 3, "{calls:?}");
    assert_eq!(
        listener_rules(&env.lb_of(&np).unwrap(), "HTTP", 80)[0].2,
        vec!["ins-ddd1:30080@10"]
    );
    assert_eq!(
        listener_rules(&env.lb_of(&direct).unwrap(), "HTTP", 80)[0].2,
        vec!["10.0.0.5:8080@10", "10.0.0.7:8080@10"]
    );
}

#[tokio::test]
async fn a_broken_backend_is_a_warning_while_the_good_rules_converge() {
    let env = env().await;
    env.node("node-1", "ins-eee1");
    env.service("web", 80, 30080);
    let uid = env.ingress(
        "mixed",
        json!({}),
        rules(&[
            ("good.example.com", "/", "web", 80),
            ("bad.example.com", "/", "missing", 80),
            ("port.example.com", "/", "web", 81),
        ]),
    );
    let outcome = env.reconcile("mixed").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "good.example.com".to_string(),
            "/".to_string(),
            vec!["ins-eee1:30080@10".to_string()]
        )]
    );
    let mut warnings = env.warnings("mixed");
    warnings.sort();
    assert_eq!(warnings, vec!["E4041", "E4042"]);
    assert_eq!(env.ingress_ip("mixed"), Some(lb.vip.clone()));
}

#[tokio::test]
async fn a_260_node_ingress_costs_one_create_per_lb_protocol_listener_and_gets_100_targets_a_rule()
{
    let env = env().await;
    const NODES: usize = 260;
    const PER_RULE: usize = clb_ingress::model::limits::TARGETS_PER_RULE;
    for n in 0..NODES {
        env.node(&format!("node-{n}"), &format!("ins-{n:05}"));
    }
    env.service("web", 80, 30080);
    env.cert_secret("tls-default", "cert-default");
    let mix = |host: &str| {
        json!([{"host": host, "path": "/", "backend": {"serviceName": "web", "servicePort": "80"}}])
            .to_string()
    };
    let mut spec = rules(&[
        ("a.example.com", "/", "web", 80),
        ("b.example.com", "/", "web", 80),
    ]);
    spec["tls"] = json!([{"secretName": "tls-default"}]);
    let uid = env.ingress(
        "big",
        json!({
            "kubernetes.io/ingress.rule-mix": "true",
            "kubernetes.io/ingress.http-rules": mix("a.example.com"),
            "kubernetes.io/ingress.https-rules": mix("b.example.com"),
        }),
        spec,
    );
    let outcome = env.reconcile("big").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    // L = 2 listeners (2 protocols), R = 2 rules (1 per listener), T = 2 × 100 targets: the
    // clb-sim's default quota of 100 a rule; the other 160 Nodes are reported, not bound.
    assert_eq!(listener_rules(&lb, "HTTP", 80)[0].2.len(), PER_RULE);
    assert_eq!(listener_rules(&lb, "HTTPS", 443)[0].2.len(), PER_RULE);
    assert!(
        env.warnings("big")
            .contains(&"TargetLimitExceeded".to_string()),
        "{:?}",
        env.warnings("big")
    );
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "CreateLoadBalancer"), 1);
    assert_eq!(count(&calls, "CreateListener"), 2);
    assert_eq!(count(&calls, "CreateRule"), 2);
    assert_eq!(
        count(&calls, "BatchRegisterTargets"),
        (2 * PER_RULE).div_ceil(500)
    );
    let other_writes: Vec<&str> = writes(&calls)
        .iter()
        .map(|c| c.action.as_str())
        .filter(|a| {
            ![
                "CreateLoadBalancer",
                "CreateListener",
                "CreateRule",
                "BatchRegisterTargets",
            ]
            .contains(a)
        })
        .collect();
    assert!(other_writes.is_empty(), "{other_writes:?}");
    assert_eq!(outcome.actions.cloud_writes, 6);

    // The steady state writes nothing: the limit Warning was reported already, so the run
    // looks once (three reads) and takes no Lease (issue 9: a lasting problem costs
    // nothing), and, a CLB at a default limit on a fresh engine, reads the live quota once.
    env.clb.clear_calls();
    env.kube.clear_request_log();
    env.reconcile("big").await;
    let calls = env.clb.calls();
    assert!(writes(&calls).is_empty(), "{calls:?}");
    assert_eq!(count(&calls, "DescribeQuota"), 1);
    assert_eq!(calls.len(), 3 + 1);
    assert_eq!(env.kube_writes(), Vec::<String>::new());
}

/// How many actions the plan of `name` has now (a dry run).
async fn plan_len(env: &Env, name: &str) -> usize {
    let dry = env
        .engine()
        .dry_run(&IngressKey::new(NS, name))
        .await
        .unwrap();
    dry.plans.iter().map(|p| p.actions.len()).sum()
}

/// Reconciles `name` with the apply stopped after `k` of its `n` planned actions, then
/// lets the next run finish, and checks that the run after that has nothing to write.
async fn stop_then_finish(env: &Env, name: &str, k: usize, n: usize) {
    let key = IngressKey::new(NS, name);
    let stopped = env
        .engine_with(clb_ingress::cloud::apply::ApplyOptions {
            stop_after: Some(k),
            ..Default::default()
        })
        .reconcile_one(&key)
        .await;
    if k < n {
        assert_eq!(stopped.status, OutcomeStatus::Failed, "k={k}: {stopped:?}");
        assert_eq!(stopped.code.as_deref(), Some("Interrupted"));
        assert_eq!(stopped.actions.applied as usize, k);
    }
    let outcome = env.reconcile(name).await;
    assert_eq!(
        outcome.status,
        OutcomeStatus::Converged,
        "k={k}: {outcome:?}"
    );
    // Converged means converged: the run after makes no write.
    env.clb.clear_calls();
    let again = env.reconcile(name).await;
    assert_eq!(again.actions.cloud_writes, 0, "k={k}");
    assert!(
        writes(&env.clb.calls()).is_empty(),
        "k={k}: {:?}",
        env.clb.calls()
    );
}

#[tokio::test]
async fn a_create_stopped_after_any_number_of_actions_is_finished_by_the_next_run() {
    let env = env().await;
    env.node("node-1", "ins-fff1");
    env.service("web", 80, 30080);
    env.service("api", 8080, 30081);
    let spec = rules(&[("", "/", "web", 80), ("a.example.com", "/api", "api", 8080)]);
    env.ingress("probe", json!({}), spec.clone());
    // Create LB, listener, rules, register.
    let n = plan_len(&env, "probe").await;
    assert_eq!(n, 4);
    for k in 0..=n {
        let name = format!("web-{k}");
        let uid = env.ingress(&name, json!({}), spec.clone());
        stop_then_finish(&env, &name, k, n).await;
        let lb = env.lb_of(&uid).expect("one CLB despite the interruption");
        assert_eq!(
            listener_rules(&lb, "HTTP", 80)
                .iter()
                .map(|r| r.2.len())
                .sum::<usize>(),
            2,
            "k={k}"
        );
    }
}

#[tokio::test]
async fn a_change_stopped_after_any_number_of_actions_is_finished_by_the_next_run() {
    let env = env().await;
    env.node("node-1", "ins-ggg1");
    env.service("web", 80, 30080);
    env.service("api", 8080, 30081);
    let before = rules(&[
        ("old.example.com", "/", "web", 80),
        ("keep.example.com", "/", "web", 80),
    ]);
    let after = rules(&[
        ("new.example.com", "/", "api", 8080),
        ("keep.example.com", "/", "api", 8080),
    ]);
    let mut n = 0;
    for k in 0.. {
        let name = format!("chg-{k}");
        let uid = env.ingress(&name, json!({}), before.clone());
        assert_eq!(env.reconcile(&name).await.status, OutcomeStatus::Converged);
        env.edit_ingress(&name, |i| i["spec"] = after.clone());
        if k == 0 {
            // Create rule, register on the kept rule, register on the new one (a batch never
            // mixes them: plan::depends::register_groups), deregister, delete rule.
            n = plan_len(&env, &name).await;
            assert_eq!(n, 5);
        }
        stop_then_finish(&env, &name, k, n).await;
        let lb = env.lb_of(&uid).unwrap();
        assert_eq!(
            listener_rules(&lb, "HTTP", 80),
            vec![
                (
                    "keep.example.com".to_string(),
                    "/".to_string(),
                    vec!["ins-ggg1:30081@10".to_string()]
                ),
                (
                    "new.example.com".to_string(),
                    "/".to_string(),
                    vec!["ins-ggg1:30081@10".to_string()]
                ),
            ],
            "k={k}"
        );
        if k == n {
            break;
        }
    }
}

#[tokio::test]
async fn a_busy_lease_skips_the_run_and_marks_it_dirty() {
    let env = env().await;
    web_ingress(&env, "web");
    let held = env
        .cluster
        .acquire_lease(NS, "web", "someone-else", 60, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(
        held,
        clb_ingress::cluster::Acquire::Acquired { .. }
    ));
    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::SkippedBusy, "{outcome:?}");
    assert!(env.clb.load_balancers().is_empty());
    let lease = env
        .kube
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "clb-ingress-web",
        )
        .unwrap();
    assert_eq!(
        lease["metadata"]["annotations"][clb_ingress::cluster::DIRTY_ANNOTATION],
        "true"
    );
}

/// Writes the function made to its Lease (create, take, give back); marks are PATCHes.
fn lease_writes(env: &Env) -> usize {
    env.kube
        .request_log()
        .iter()
        .filter(|r| r.path.contains("/leases") && (r.method == "POST" || r.method == "PUT"))
        .count()
}

#[tokio::test]
async fn a_rerun_asked_for_during_the_second_pass_is_run_not_dropped() {
    let env = env().await;
    let uid = web_ingress(&env, "web");
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    let hosts = |n: usize| {
        let all = [
            ("", "/", "web", 80),
            ("a.example.com", "/api", "api", 8080),
            ("b.example.com", "/", "web", 80),
            ("c.example.com", "/", "web", 80),
            ("d.example.com", "/", "web", 80),
        ];
        rules(&all[..n])
    };
    env.edit_ingress("web", |i| i["spec"] = hosts(3));
    // Tasks run until the test ends them: a pass waiting on one is paused there.
    env.clb.set_task_ms(600_000);
    env.kube.clear_request_log();
    let engine = env.engine();
    let run = tokio::spawn(async move { engine.reconcile_one(&IngressKey::new(NS, "web")).await });
    // In pass 1, then in pass 2 (the Lease taken for the 1st, then the 2nd time): another
    // trigger finds the Lease held and marks it dirty, and the Ingress gains a host.
    for (pass, more) in [(1, 4), (2, 5)] {
        loop {
            if lease_writes(&env) >= 2 * pass - 1 && env.clb.running_tasks() > 0 {
                break;
            }
            env.clb.finish_tasks();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let busy = env
            .cluster
            .acquire_lease(NS, "web", "another-trigger", 60, jiff::Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(busy, clb_ingress::cluster::Acquire::Busy { .. }));
        env.edit_ingress("web", |i| i["spec"] = hosts(more));
        env.clb.finish_tasks();
    }
    env.clb.set_task_ms(1);
    env.clb.finish_tasks();
    let outcome = run.await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(
        listener_rules(&lb, "HTTP", 80).len(),
        5,
        "the host added during the second pass is on the CLB"
    );
    assert_eq!(
        lease_writes(&env),
        6,
        "three passes, each taking and giving back the Lease"
    );
    let lease = env
        .kube
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "clb-ingress-web",
        )
        .unwrap();
    assert!(lease["metadata"]["annotations"][clb_ingress::cluster::DIRTY_ANNOTATION].is_null());
}

/// Runs the real binary against the simulators; returns (success, stdout, stderr).
async fn run_binary(env: &Env, args: &[&str]) -> (bool, String, String) {
    let bin = clb_ingress_tests::function::binary();
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p clb-ingress",
        bin.display()
    );
    let c = env.clb.config().clone();
    let output = tokio::process::Command::new(&bin)
        .args(args)
        .env_clear()
        .envs(clb_ingress_tests::function::env(
            &env.clb,
            &function_rbac::kubeconfig(&env.kube).unwrap(),
            CLUSTER,
        ))
        .output()
        .await
        .expect("clb-ingress runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !stdout.contains(&c.secret_key) && !stderr.contains(&c.secret_key),
        "the secret key leaked"
    );
    (output.status.success(), stdout, stderr)
}

#[tokio::test]
async fn the_plan_command_prints_nothing_would_change_for_an_unchanged_ingress() {
    let env = env().await;
    web_ingress(&env, "web");
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
    env.clb.clear_calls();
    env.kube.clear_request_log();
    let (ok, stdout, stderr) = run_binary(&env, &["plan", &format!("{NS}/web")]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("nothing would change"), "{stdout}");
    assert!(writes(&env.clb.calls()).is_empty());
    assert_eq!(env.kube_writes(), Vec::<String>::new());

    let (ok, stdout, stderr) =
        run_binary(&env, &["plan", &format!("{NS}/web"), "--output", "json"]).await;
    assert!(ok, "{stdout}\n{stderr}");
    let dry: serde_json::Value = serde_json::from_str(&stdout).expect("JSON plan");
    assert_eq!(dry["decision"], "manage");
    assert_eq!(dry["plans"][0]["actions"], json!([]));
}

#[tokio::test]
async fn the_reconcile_command_releases_the_clb_of_a_deleted_ingress() {
    let env = env().await;
    let uid = web_ingress(&env, "web");
    let (ok, stdout, stderr) = run_binary(&env, &["reconcile", &format!("{NS}/web")]).await;
    assert!(ok, "{stdout}\n{stderr}");
    let lb = env.lb_of(&uid).expect("created by the binary");
    env.delete_ingress("web");
    let (ok, stdout, stderr) = run_binary(&env, &["reconcile", &format!("{NS}/web")]).await;
    assert!(ok, "{stdout}\n{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).expect("JSON outcome");
    assert_eq!(outcome["status"], "released", "{stdout}");
    assert!(env.clb.load_balancer(&lb.id).is_none());
}

#[tokio::test]
async fn an_internal_clb_takes_the_configured_vpc_and_is_refused_cleanly_without_one() {
    let env = env().await;
    env.node("node-1", "ins-iii1");
    env.service("web", 80, 30080);
    let annotations = json!({"kubernetes.io/ingress.subnetId": "subnet-abc123"});
    let uid = env.ingress(
        "private",
        annotations.clone(),
        rules(&[("", "/", "web", 80)]),
    );

    // No VPC configured: a clear failure, a Warning Event, and no CLB written.
    let outcome = env.reconcile("private").await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert!(outcome.message.unwrap_or_default().contains("CLB_VPC_ID"));
    assert!(env
        .warnings("private")
        .contains(&"SyncLoadBalancerFailed".to_string()));
    assert!(writes(&env.clb.calls()).is_empty());

    let engine = env.engine_with(clb_ingress::cloud::apply::ApplyOptions {
        vpc_id: Some("vpc-cluster1".into()),
        ..Default::default()
    });
    let outcome = engine.reconcile_one(&IngressKey::new(NS, "private")).await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(
        (
            lb.lb_type.as_str(),
            lb.vpc_id.as_str(),
            lb.subnet_id.as_str()
        ),
        ("INTERNAL", "vpc-cluster1", "subnet-abc123")
    );
}

#[tokio::test]
async fn a_sweep_out_of_time_reports_what_it_did_not_reach_and_releases_nothing() {
    let env = env().await;
    env.node("node-1", "ins-jjj1");
    env.service("web", 80, 30080);
    env.ingress("a", json!({}), rules(&[("a.example.com", "/", "web", 80)]));
    env.ingress("b", json!({}), rules(&[("b.example.com", "/", "web", 80)]));
    let orphan = env.clb.insert_load_balancer(
        "OPEN",
        "orphan",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, CLUSTER),
            (TAG_UID, "uid-gone"),
        ],
    );
    let out = env.engine().sweep_now(tokio::time::Instant::now()).await;
    assert_eq!(out.not_reached, 2, "{out:?}");
    assert_eq!(out.orphans_released, 0);
    assert!(out.error.is_some());
    assert!(env.clb.load_balancer(&orphan).is_some());
    assert!(writes(&env.clb.calls()).is_empty());
}

#[tokio::test]
async fn a_clb_left_creating_by_a_killed_run_is_waited_for_and_finished() {
    // The task must outlast the time from the send to the run's first read even on a loaded
    // machine (150 ms did not), or the run finds the CLB ready and never waits on it.
    let env = env_with(clb_ingress_tests::clb_sim::SimConfig {
        task_ms: 1500,
        ..Default::default()
    })
    .await;
    env.node("node-1", "ins-kkk1");
    env.service("web", 80, 30080);
    let uid = env.ingress(
        "web",
        json!({}),
        rules(&[("a.example.com", "/", "web", 80)]),
    );
    // What a run killed right after sending CreateLoadBalancer leaves behind.
    let spec = match clb_ingress::model::desire(
        &env.cluster.view(NS, "web").await.unwrap().unwrap(),
        CLUSTER,
    ) {
        clb_ingress::model::Decision::Manage(d) => match d.load_balancer {
            clb_ingress::model::LbSource::Create(spec) => spec,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let sent = SimClient::new(&env.clb)
        .clb("CreateLoadBalancer", spec.create_request())
        .await;
    assert_eq!(sent.error_code(), None);
    let lb_id = sent.response()["LoadBalancerIds"][0]
        .as_str()
        .unwrap()
        .to_string();
    env.clb.clear_calls();

    let outcome = env.reconcile("web").await;
    assert_eq!(outcome.status, OutcomeStatus::Converged, "{outcome:?}");
    let calls = env.clb.calls();
    assert_eq!(count(&calls, "CreateLoadBalancer"), 0);
    // Found creating, waited on (read again until ready), then planned afresh.
    let before_listener: Vec<&str> = calls
        .iter()
        .map(|c| c.action.as_str())
        .take_while(|a| *a != "CreateListener")
        .collect();
    assert!(
        before_listener
            .iter()
            .filter(|a| **a == "DescribeLoadBalancers")
            .count()
            >= 3,
        "{before_listener:?}"
    );
    let lb = env.lb_of(&uid).unwrap();
    assert_eq!(lb.id, lb_id);
    assert_eq!(
        listener_rules(&lb, "HTTP", 80),
        vec![(
            "a.example.com".to_string(),
            "/".to_string(),
            vec!["ins-kkk1:30080@10".to_string()]
        )]
    );
}

#[tokio::test]
async fn a_run_out_of_time_gives_its_lease_back_so_the_next_run_is_not_blocked() {
    let env = env().await;
    web_ingress(&env, "web");
    let key = IngressKey::new(NS, "web");
    // Less time left than the release margin: the locked work is cut at once.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
    let outcome = env.engine().reconcile_until(&key, Some(deadline)).await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.code.as_deref(), Some("DeadlineExceeded"));
    let lease = env
        .kube
        .get_object(
            "coordination.k8s.io/v1",
            "Lease",
            Some(NS),
            "clb-ingress-web",
        )
        .expect("the lease was taken");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{lease}"
    );
    assert!(lease["spec"]["leaseDurationSeconds"].as_i64().unwrap() <= 12);
    assert_eq!(env.reconcile("web").await.status, OutcomeStatus::Converged);
}

#[tokio::test]
async fn the_lookup_maps_a_namespace_to_its_ingresses_with_their_services_and_mode() {
    use clb_ingress::handler::IngressLookup;
    let env = env().await;
    env.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}));
    let mut spec = rules(&[("a.example.com", "/", "web", 80)]);
    spec["tls"] = json!([{"secretName": "tls-a"}]);
    env.ingress("np", json!({}), spec);
    env.ingress(
        "direct",
        json!({"ingress.cloud.tencent.com/direct-access": "true"}),
        rules(&[("b.example.com", "/", "pods", 80)]),
    );
    env.put(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "elsewhere", "namespace": "other"},
        "spec": rules(&[("c.example.com", "/", "web", 80)])
    }));
    let mut found = env.engine().ingresses(Some(NS.into())).await.unwrap();
    found.sort_by(|a, b| a.key.cmp(&b.key));
    let names: Vec<String> = found.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(names, vec!["shop/direct", "shop/np"]);
    assert!(!found[0].node_port && found[1].node_port);
    assert!(found[1].services.contains("web") && found[1].tls_secrets.contains("tls-a"));
    assert_eq!(env.engine().ingresses(None).await.unwrap().len(), 3);
}
