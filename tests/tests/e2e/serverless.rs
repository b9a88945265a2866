//! The product end to end, as a user meets it: `kubectl` writes to kube-sim, kube-sim's audit
//! webhook wakes the function's web server (`POST /v1/audit` with the bearer token), a real
//! `Reconciler` drives clb-sim, and the tests look at the CLB and the Ingress status the way a
//! user would. The timer route (`POST /v1/timer`) repairs drift and collects orphans.
//!
//! Every wait polls a condition a bounded number of times; nothing is asserted on time.

use std::collections::BTreeSet;

use crate::support::stack::*;
use serde_json::Value;

const NS: &str = "shop";
const INS1: &str = "ins-demo0001";
const INS2: &str = "ins-demo0002";
const INS3: &str = "ins-demo0003";

fn targets(instances: &[&str], port: u16) -> Vec<String> {
    let mut v: Vec<String> = instances.iter().map(|i| format!("{i}:{port}")).collect();
    v.sort();
    v
}

/// The rules `samples/03-ingress-web.yaml` asks for, with `web` on `web_port` and `api` on
/// 30081, each backed by `instances`.
fn web_rules(instances: &[&str], web_port: u16) -> Vec<RuleTargets> {
    let rule = |domain: &str, url: &str, port: u16| {
        (
            ("HTTP".to_string(), 80, domain.to_string(), url.to_string()),
            targets(instances, port),
        )
    };
    let mut v = vec![
        rule("admin.example.com", "/", web_port),
        rule("shop.example.com", "/", web_port),
        // pathType Prefix /api: exact `=/api` plus prefix `/api/` (Kubernetes semantics).
        rule("shop.example.com", "=/api", 30081),
        rule("shop.example.com", "/api/", 30081),
    ];
    v.sort();
    v
}

/// Waits until the Ingress `name` has a CLB whose rules are `want` and whose VIP is in the
/// Ingress status; returns the CLB.
async fn converged(stack: &Stack, name: &str, want: &[RuleTargets]) -> Value {
    eventually(&format!("{NS}/{name} converges"), || {
        let ing = stack.ingress(NS, name).ok_or("no Ingress")?;
        let uid = ing["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let lb = stack
            .lb_of(&uid)
            .ok_or("no CLB tagged with the Ingress UID")?;
        let got = rules(&lb);
        if got != want {
            return Err(format!("rules {got:?}"));
        }
        let vip = lb["LoadBalancerVips"][0].as_str().unwrap_or("").to_string();
        match ingress_address(&ing) {
            Some(a) if a == vip || lb["Domain"].as_str() == Some(a.as_str()) => Ok(lb),
            other => Err(format!("status address {other:?}, VIP {vip}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_gives_the_ingress_a_tagged_clb_and_our_status_write_does_not_loop() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    let lb = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let uid = stack.ingress_uid(NS, "web");
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();

    assert_eq!(listeners(&lb), vec![("HTTP".to_string(), 80)]);
    assert_eq!(tag(&lb, TAG_CREATED_BY).as_deref(), Some("yes"));
    assert_eq!(tag(&lb, TAG_CLUSTER).as_deref(), Some(CLUSTER_ID));
    assert_eq!(tag(&lb, TAG_UID).as_deref(), Some(uid.as_str()));
    assert_eq!(lbs(&stack.clb.state()).len(), 1, "exactly one CLB");
    let writes_at_convergence = stack.cloud_writes().len();
    // The CLB was created with its tags in the create call: no tag write ever followed.
    let created: Vec<_> = stack
        .cloud_writes()
        .into_iter()
        .filter(|c| c.action == "CreateLoadBalancer")
        .collect();
    assert_eq!(created.len(), 1, "one CreateLoadBalancer");
    assert_eq!(stack.clb.call_count("TagResources"), 0);
    assert_eq!(stack.clb.call_count("ModifyResourceTags"), 0);

    // Quiet: every audit event kube-sim produced (the user's writes and ours) has been
    // answered and nothing runs. A status write that re-triggered a write would never let
    // the stream drain.
    stack.quiet(0).await;
    let reports = stack.audit_reports();
    let reconciles = stack.engine.reconciled();
    let own: u64 = reports
        .iter()
        .filter_map(|r| r["skipped"]["own"].as_u64())
        .sum();
    assert!(
        own >= 1,
        "our own writes (status, Lease, Events) came back through the audit stream and were \
         recognised: {reports:?}"
    );
    for r in &reports {
        let results = r["results"].as_array().map_or(0, Vec::len);
        if r["changes"].as_u64() == Some(0) {
            assert_eq!(results, 0, "a batch without user changes reconciled: {r}");
        }
    }
    let from_reports: usize = reports
        .iter()
        .map(|r| r["results"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        from_reports,
        reconciles.len(),
        "every reconcile came from a batch carrying a user's change"
    );
    // The user made three applies that can concern the Ingress (Nodes, Services, the
    // Ingress itself); those applied before the Ingress existed map to nothing. So one to
    // three reconciles, never one per status write of ours.
    assert!(
        (1..=3).contains(&reconciles.len()),
        "reconciles: {reconciles:?}"
    );
    assert!(reconciles.iter().all(|r| r.key == format!("{NS}/web")));
    assert_eq!(
        stack.cloud_writes().len(),
        writes_at_convergence,
        "no cloud write after convergence"
    );

    // The steady state costs reads only, even for a full sweep.
    let report = stack.fire_timer().await;
    assert!(report["sweep"].is_object(), "{report}");
    assert_eq!(
        stack.cloud_writes().len(),
        writes_at_convergence,
        "a sweep over a converged cluster writes nothing"
    );
    stack.quiet(0).await;
    assert_eq!(
        stack.engine.reconcile_count(),
        reconciles.len(),
        "the sweep caused no further audit-triggered reconcile"
    );
    let after = stack.clb.load_balancer(&lb_id).unwrap();
    assert_eq!(after.tags.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_node_changes_move_the_targets() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;

    // The Service's nodePort changes: the rules of `web` follow, `api` stays.
    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "patch",
            "service",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ports/0/nodePort","value":30090}]"#,
        ])
        .await;
    converged(&stack, "web", &web_rules(&[INS1, INS2], 30090)).await;

    // A third Node joins: every rule gains it.
    stack
        .kubectl
        .apply_yaml(
            r#"apiVersion: v1
kind: Node
metadata:
  name: 10.0.0.13
spec:
  providerID: qcloud:///800002/ins-demo0003
status:
  conditions:
  - type: Ready
    status: "True"
"#,
        )
        .await;
    converged(&stack, "web", &web_rules(&[INS1, INS2, INS3], 30090)).await;

    // A Node leaves: every rule loses it.
    stack.kubectl.run(&["delete", "node", "10.0.0.12"]).await;
    converged(&stack, "web", &web_rules(&[INS1, INS3], 30090)).await;

    // A Node is excluded from load balancers by label: its targets go too.
    stack
        .kubectl
        .run(&[
            "label",
            "node",
            "10.0.0.13",
            "node.kubernetes.io/exclude-from-external-load-balancers=true",
        ])
        .await;
    converged(&stack, "web", &web_rules(&[INS1], 30090)).await;

    stack.quiet(0).await;
    assert_eq!(lbs(&stack.clb.state()).len(), 1, "still exactly one CLB");
    assert_eq!(stack.clb.call_count("CreateLoadBalancer"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ingress_gets_https_with_its_certificate_and_kubectl_delete_releases_only_its_clb() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    stack.kubectl.apply_sample("04-ingress-tls.yaml").await;
    let web = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let secure_rules = vec![(
        (
            "HTTPS".to_string(),
            443,
            "secure.example.com".to_string(),
            "/".to_string(),
        ),
        targets(&[INS1, INS2], 30080),
    )];
    let secure = converged(&stack, "secure", &secure_rules).await;
    let https = &secure["Listeners"][0];
    let cert_ids: BTreeSet<&str> = [
        https["Certificate"]["CertId"].as_str(),
        https["Rules"][0]["Certificate"]["CertId"].as_str(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        cert_ids.contains("Xy8zAbCd"),
        "the HTTPS listener or its rule uses the Secret's certificate: {https}"
    );
    let web_id = web["LoadBalancerId"].as_str().unwrap().to_string();
    let secure_id = secure["LoadBalancerId"].as_str().unwrap().to_string();
    assert_ne!(web_id, secure_id, "one CLB per Ingress");
    stack.quiet(0).await;

    stack
        .kubectl
        .run(&["-n", NS, "delete", "ingress", "web"])
        .await;
    eventually("the deleted Ingress's CLB is released", || {
        match stack.clb.load_balancer(&web_id) {
            None => Ok(()),
            Some(lb) => Err(format!("{} still exists", lb.id)),
        }
    })
    .await;
    stack.quiet(0).await;
    assert!(stack.clb.load_balancer(&secure_id).is_some());
    let deletes: Vec<_> = stack
        .cloud_writes()
        .into_iter()
        .filter(|c| c.action == "DeleteLoadBalancer")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].lb_ids, vec![web_id]);
    assert!(stack
        .cloud_writes()
        .iter()
        .all(|c| c.action == "CreateLoadBalancer" || !c.lb_ids.is_empty()));
    let secure_after = stack.lb_of(&stack.ingress_uid(NS, "secure")).unwrap();
    assert_eq!(
        rules(&secure_after),
        secure_rules,
        "the other Ingress is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_sweep_repairs_a_listener_deleted_behind_our_back() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    let want = web_rules(&[INS1, INS2], 30080);
    let lb = converged(&stack, "web", &want).await;
    stack.quiet(0).await;
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();
    let listener_id = lb["Listeners"][0]["ListenerId"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone deletes the listener in the console: no audit event, nothing triggers.
    assert!(stack.clb.remove_listener(&lb_id, &listener_id));
    assert!(listeners(&stack.clb.state()["LoadBalancers"][0]).is_empty());
    let before = stack.cloud_writes().len();

    let report = stack.fire_timer().await;
    let sweep = &report["sweep"];
    assert!(sweep.is_object(), "{report}");
    assert!(sweep["error"].is_null(), "{report}");
    let lb = stack.lb_of(&stack.ingress_uid(NS, "web")).unwrap();
    assert_eq!(
        lb["LoadBalancerId"].as_str(),
        Some(lb_id.as_str()),
        "same CLB"
    );
    assert_eq!(listeners(&lb), vec![("HTTP".to_string(), 80)]);
    assert_eq!(rules(&lb), want);
    let repair: Vec<String> = stack.cloud_writes()[before..]
        .iter()
        .map(|c| c.action.clone())
        .collect();
    assert!(
        repair.iter().any(|a| a == "CreateListener"),
        "the repair recreated the listener: {repair:?}"
    );
    assert!(
        !repair.iter().any(|a| a.starts_with("Delete")),
        "the repair deleted nothing: {repair:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_sweep_collects_a_clb_whose_ingress_was_deleted_while_the_webhook_was_down() {
    let stack = Stack::start().await;
    // CLBs that are not ours: another cluster's, and one with no tags at all.
    let other_uid = "0f0e0d0c-0000-4000-8000-000000000001";
    let foreign = stack.clb.insert_load_balancer(
        "OPEN",
        "other-cluster",
        &[
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, OTHER_CLUSTER_ID),
            (TAG_UID, other_uid),
        ],
    );
    let untagged = stack.clb.insert_load_balancer("OPEN", "hand-made", &[]);
    let foreign_before = stack.clb.load_balancer(&foreign).unwrap();
    let untagged_before = stack.clb.load_balancer(&untagged).unwrap();

    apply_web(&stack).await;
    let lb = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();
    stack.quiet(0).await;
    let reconciles_before = stack.engine.reconcile_count();

    // The function is down: the delete's audit batch is refused until kube-sim drops it.
    stack
        .tap
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    stack
        .kubectl
        .run(&["-n", NS, "delete", "ingress", "web"])
        .await;
    eventually("kube-sim drops the refused batch", || {
        let s = stack.kube.audit_stats();
        if s.batches_dropped >= 1 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    stack
        .tap
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(stack.tap.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(stack.engine.reconcile_count(), reconciles_before);
    assert!(
        stack.clb.load_balancer(&lb_id).is_some(),
        "nothing released it while the webhook was down"
    );

    let report = stack.fire_timer().await;
    assert_eq!(report["sweep"]["orphans_released"], 1, "{report}");
    assert!(stack.clb.load_balancer(&lb_id).is_none(), "collected");

    // The foreign CLBs: still there, unchanged, and never named by a write.
    assert_eq!(stack.clb.load_balancer(&foreign), Some(foreign_before));
    assert_eq!(stack.clb.load_balancer(&untagged), Some(untagged_before));
    let touching: Vec<_> = stack
        .cloud_writes()
        .into_iter()
        .filter(|c| c.lb_ids.iter().any(|id| *id == foreign || *id == untagged))
        .collect();
    assert!(
        touching.is_empty(),
        "writes naming foreign CLBs: {touching:?}"
    );

    // A second sweep finds nothing left to do.
    let before = stack.cloud_writes().len();
    let report = stack.fire_timer().await;
    assert_eq!(report["sweep"]["orphans_released"], 0, "{report}");
    assert_eq!(stack.cloud_writes().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_in_the_secret_reaches_the_https_rule() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    stack.kubectl.apply_sample("04-ingress-tls.yaml").await;
    let secure_rules = vec![(
        (
            "HTTPS".to_string(),
            443,
            "secure.example.com".to_string(),
            "/".to_string(),
        ),
        targets(&[INS1, INS2], 30080),
    )];
    converged(&stack, "secure", &secure_rules).await;
    let uid = stack.ingress_uid(NS, "secure");

    // Only the Secret changes; the audit event names the Secret, the function maps it to
    // the Ingress that uses it.
    stack
        .kubectl
        .apply_yaml(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: secure-cert
  namespace: shop
type: Opaque
stringData:
  qcloud_cert_id: Rotated01
"#,
        )
        .await;
    let lb = eventually("the HTTPS rule uses the rotated certificate", || {
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        let https = &lb["Listeners"][0];
        let ids = [
            https["Certificate"]["CertId"].as_str(),
            https["Rules"][0]["Certificate"]["CertId"].as_str(),
        ];
        if ids.contains(&Some("Rotated01")) && !ids.contains(&Some("Xy8zAbCd")) {
            Ok(lb)
        } else {
            Err(format!("certificate ids {ids:?}"))
        }
    })
    .await;
    assert_eq!(rules(&lb), secure_rules, "rules and targets unchanged");
    assert_eq!(stack.clb.call_count("CreateLoadBalancer"), 2, "no new CLB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_ingress_to_another_class_releases_its_clb_and_clears_its_address() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    let lb = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();

    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "annotate",
            "ingress",
            "web",
            "kubernetes.io/ingress.class=nginx",
            "--overwrite",
        ])
        .await;
    eventually("the CLB is released and the address cleared", || {
        let ing = stack.ingress(NS, "web").ok_or("Ingress gone")?;
        let address = ingress_address(&ing);
        match (stack.clb.load_balancer(&lb_id), address) {
            (None, None) => Ok(()),
            (lb, address) => Err(format!(
                "CLB present: {}, address {address:?}",
                lb.is_some()
            )),
        }
    })
    .await;
    stack.quiet(0).await;
    let ing = stack.ingress(NS, "web").unwrap();
    assert!(
        ing["metadata"]["annotations"]["kubernetes.io/ingress.qcloud-loadbalance-id"].is_null(),
        "our CLB-id annotation is gone: {ing}"
    );
    assert_eq!(stack.clb.call_count("DeleteLoadBalancer"), 1);
}

/// The CLB released out of class burned its `ClientToken`; the create epoch moved on before
/// the delete (`model::create_epoch`), so the create back in class is a new CLB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_moved_out_of_class_and_back_gets_a_new_clb() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    let lb = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();
    for class in ["nginx", "qcloud"] {
        let annotation = format!("kubernetes.io/ingress.class={class}");
        stack
            .kubectl
            .run(&[
                "-n",
                NS,
                "annotate",
                "ingress",
                "web",
                &annotation,
                "--overwrite",
            ])
            .await;
        if class == "nginx" {
            eventually("the CLB is released", || {
                match stack.clb.load_balancer(&lb_id) {
                    None => Ok(()),
                    Some(_) => Err("still there".into()),
                }
            })
            .await;
        }
    }
    let again = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    assert_ne!(again["LoadBalancerId"].as_str(), Some(lb_id.as_str()));
    assert_eq!(lbs(&stack.clb.state()).len(), 1);
}

/// A CLB deleted in the console: the sweep's create replays the token, proves that CLB gone
/// and creates under the next epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_sweep_recreates_a_clb_deleted_behind_our_back() {
    let stack = Stack::start().await;
    apply_web(&stack).await;
    let lb = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    let lb_id = lb["LoadBalancerId"].as_str().unwrap().to_string();
    stack.quiet(0).await;
    assert!(stack.clb.remove_load_balancer(&lb_id));
    let report = stack.fire_timer().await;
    assert!(report["sweep"].is_object(), "{report}");
    let again = converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    assert_ne!(again["LoadBalancerId"].as_str(), Some(lb_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_batches_with_a_wrong_token_are_refused_and_change_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The same product, but kube-sim presents a token the function does not know.
    let stack = Stack::start_with_audit_token("not-the-function-token").await;
    apply_web(&stack).await;
    eventually("kube-sim gives up on every refused batch", || {
        let s = stack.kube.audit_stats();
        if s.events > 0 && s.batches_dropped > 0 && s.attempts >= 5 * s.batches_dropped {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(stack.kube.audit_stats().batches_delivered, 0);
    assert!(stack.audit_reports().is_empty());
    assert_eq!(stack.engine.reconcile_count(), 0);
    assert!(stack.clb.calls().is_empty(), "no cloud call at all");
    assert!(lbs(&stack.clb.state()).is_empty());
    // The sweep, which carries the right token, still gives the Ingress its CLB.
    let report = stack.fire_timer().await;
    assert!(report["sweep"].is_object(), "{report}");
    converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_resent_after_the_function_acted_changes_nothing_more() {
    let stack = Stack::start().await;
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack.quiet(0).await;
    assert_eq!(stack.engine.reconcile_count(), 0, "no Ingress yet");

    // The batch carrying the Ingress create is acted on, but its answer is lost (503), so
    // kube-sim sends the same batch again, as the apiserver does.
    stack
        .tap
        .fail_after_run
        .store(1, std::sync::atomic::Ordering::SeqCst);
    stack.kubectl.apply_sample("03-ingress-web.yaml").await;
    converged(&stack, "web", &web_rules(&[INS1, INS2], 30080)).await;
    eventually("the batch was re-sent and answered", || {
        let failed = stack
            .tap
            .failed_after_run
            .load(std::sync::atomic::Ordering::SeqCst);
        let s = stack.kube.audit_stats();
        if failed == 1 && s.attempts > s.batches_delivered {
            Ok(())
        } else {
            Err(format!("failed {failed}, {s:?}"))
        }
    })
    .await;
    stack.quiet(0).await;

    let runs: Vec<_> = stack
        .engine
        .reconciled()
        .into_iter()
        .filter(|r| r.key == format!("{NS}/web"))
        .collect();
    assert!(runs.len() >= 2, "the re-sent batch ran again: {runs:?}");
    assert!(runs
        .iter()
        .all(|r| r.outcome.status == clb_ingress::handler::OutcomeStatus::Converged));
    assert!(runs[0].outcome.actions.cloud_writes > 0, "{runs:?}");
    let last = runs.last().unwrap();
    assert_eq!(
        last.outcome.actions.cloud_writes, 0,
        "the repeat made no cloud write: {last:?}"
    );
    assert_eq!(stack.clb.call_count("CreateLoadBalancer"), 1);
    assert_eq!(lbs(&stack.clb.state()).len(), 1);
}
