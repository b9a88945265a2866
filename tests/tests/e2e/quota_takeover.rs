//! Limits from the live quota, and taking over from TKE's own controller, end to end: real
//! `kubectl` against kube-sim, whose audit webhook drives the function, which drives
//! clb-sim; the CLB is read back with the official Python SDK.
//!
//! Quota (issue 12 §3): clb-sim's `DescribeQuota` answers the quota it enforces: raised, the
//! plan registers more than the defaults let through; lowered, fewer. What fits is
//! registered in a stable order, the rest reported with TKE's code, and a steady sweep reads
//! the quota no more.
//!
//! Takeover (issue 12 §4): a CLB that TKE's controller left for an Ingress is served by the
//! first sweep without a cloud write, and nothing is deleted or recreated.

use clb_ingress::cloud::{CLB_SERVICE, CLB_VERSION};
use clb_ingress_tests::clb_sim::Limits;
use serde_json::{json, Value};

use crate::support::stack::*;

const NS: &str = "shop";

/// `count` Ready Nodes, instance `ins-q{i:05}` each, in one `kubectl apply`.
async fn apply_nodes(stack: &Stack, count: usize) {
    let docs: Vec<String> = (0..count)
        .map(|i| {
            let ip = format!("10.1.{}.{}", i / 200, i % 200 + 10);
            format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {ip}\nspec:\n  providerID: \
                 qcloud:///800002/{}\nstatus:\n  conditions:\n  - type: Ready\n    status: \
                 \"True\"\n  addresses:\n  - type: InternalIP\n    address: {ip}\n",
                instance(i)
            )
        })
        .collect();
    stack.kubectl.apply_yaml(&docs.join("---\n")).await;
}

fn instance(i: usize) -> String {
    format!("ins-q{i:05}")
}

/// The NodePort Service `web` and an Ingress `big` (one rule, `shop.example.com/`) on it.
async fn apply_big_ingress(stack: &Stack) {
    for file in ["00-namespace.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack
        .kubectl
        .apply_yaml(&shop_ingress_yaml(NS, "big", ""))
        .await;
}

/// The instance ids bound to the one rule of the CLB, as the official SDK reads them.
async fn sdk_targets(stack: &Stack, lb_id: &str) -> Vec<String> {
    let read = sdk_read_clb(stack, lb_id, &["--targets"]).await;
    read["listeners"][0]["rules"][0]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|t| t.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the Ingress's CLB has exactly `want` targets on its rule; its id.
async fn bound(stack: &Stack, want: usize) -> String {
    eventually(&format!("{want} targets bound"), || {
        let uid = stack
            .ingress(NS, "big")
            .and_then(|i| i["metadata"]["uid"].as_str().map(str::to_string))
            .ok_or("no Ingress")?;
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        let n: usize = rules(&lb).iter().map(|(_, t)| t.len()).sum();
        if n == want {
            Ok(lb["LoadBalancerId"].as_str().unwrap_or("").to_string())
        } else {
            Err(format!("{n} targets"))
        }
    })
    .await
}

/// Reasons of the Warning Events on Ingress `big`.
async fn warning_reasons(stack: &Stack) -> Vec<String> {
    let out = stack
        .kubectl
        .run(&["-n", NS, "get", "events", "-o", "json"])
        .await;
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"].as_str() == Some("big"))
        .filter(|e| e["type"].as_str() == Some("Warning"))
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect()
}

/// clb-sim enforcing (and answering) `targets_per_rule`, `nodes` Nodes behind one rule:
/// the first `targets_per_rule` instances in order are bound and the rest reported; the
/// quota is read once, and a steady sweep neither reads it again nor writes.
async fn the_live_target_quota_decides(targets_per_rule: usize, nodes: usize) -> (Stack, String) {
    let stack = Stack::start().await;
    stack.clb.set_limits(Limits {
        targets_per_rule,
        ..Limits::default()
    });
    apply_nodes(&stack, nodes).await;
    apply_big_ingress(&stack).await;
    let lb_id = bound(&stack, targets_per_rule).await;
    stack.quiet(0).await;
    let want: Vec<String> = (0..targets_per_rule).map(instance).collect();
    assert_eq!(sdk_targets(&stack, &lb_id).await, want, "a stable prefix");
    assert!(
        warning_reasons(&stack)
            .await
            .contains(&"TargetLimitExceeded".to_string()),
        "the rest is reported"
    );
    assert_eq!(stack.clb.call_count("DescribeQuota"), 1);
    assert_eq!(
        stack.clb.call_count("BatchDeregisterTargets"),
        0,
        "nothing registered over the quota had to be taken back"
    );

    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    assert_eq!(stack.cloud_writes().len(), writes, "steady: no write");
    assert_eq!(stack.clb.call_count("DescribeQuota"), 1, "steady: no read");
    (stack, lb_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_target_quota_binds_150_of_160_nodes_and_keeps_the_bound_set_current() {
    let (stack, lb_id) = the_live_target_quota_decides(150, 160).await;
    // A bound Node goes: the next one in order takes its place, nothing else moves.
    stack.kubectl.run(&["delete", "node", "10.1.0.10"]).await;
    stack.quiet(0).await;
    eventually("the next Node is bound", || {
        let lb = stack.clb.load_balancer(&lb_id).ok_or("CLB gone")?;
        let ids: Vec<String> = lb
            .listeners
            .iter()
            .flat_map(|l| &l.rules)
            .flat_map(|r| &r.targets)
            .map(|t| t.instance_id.clone().unwrap_or_default())
            .collect();
        if ids.contains(&instance(150)) && !ids.contains(&instance(0)) && ids.len() == 150 {
            Ok(())
        } else {
            Err(format!("{} targets", ids.len()))
        }
    })
    .await;
    let want: Vec<String> = (1..=150).map(instance).collect();
    assert_eq!(sdk_targets(&stack, &lb_id).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_target_quota_binds_85_of_90_nodes_without_a_refused_write() {
    let (stack, _) = the_live_target_quota_decides(85, 90).await;
    let refused = stack
        .clb
        .calls()
        .into_iter()
        .filter(|c| c.code.starts_with("LimitExceeded"))
        .count();
    assert_eq!(refused, 0, "the plan never asked for more than the quota");
}

/// The CLB TKE's controller (l7-lb-controller) leaves for an Ingress, as far as public facts
/// go; every assumption about its shape is here, with its source:
/// - tags `tke-createdBy-flag=yes`, `tke-clusterId`, `tke-lb-ingress-uuid` on a CLB it
///   created (tencent-cloud.md §1.1, official doc: CONFIRMED);
/// - its listeners are named `TKE-DEDICATED-LISTENER` (tencent-cloud.md §1.1, third party:
///   UNCONFIRMED), HTTP:80 for an Ingress without TLS (tencent-cloud.md §1.4: CONFIRMED);
/// - one rule per (host, path) with the path as written: TKE's plain CLB prefix match
///   (UNCONFIRMED, no public statement on `pathType`), so only `Prefix /` and
///   `ImplementationSpecific` paths have the same shape under both controllers;
/// - every Ready Node on the Service's nodePort at the CLB's default weight 10
///   (UNCONFIRMED: the weight TKE registers is not documented).
///
/// Made through the CLB API, as the controller makes it. Returns the CLB id.
async fn tke_controller_leaves(
    stack: &Stack,
    ingress_uid: &str,
    rules: &[(&str, &str, i64)],
    instances: &[&str],
) -> String {
    let cloud = stack.engine.inner().cloud();
    let call = |action: &'static str, body: Value| async move {
        let out: Value = cloud
            .call_typed(CLB_SERVICE, CLB_VERSION, action, &body)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        stack.clb.finish_tasks();
        out
    };
    let created = call(
        "CreateLoadBalancer",
        json!({
            "LoadBalancerType": "OPEN",
            "Forward": 1,
            "LoadBalancerName": "tke-ingress-web",
            "Tags": [
                {"TagKey": TAG_CREATED_BY, "TagValue": "yes"},
                {"TagKey": TAG_CLUSTER, "TagValue": CLUSTER_ID},
                {"TagKey": TAG_UID, "TagValue": ingress_uid},
            ],
        }),
    )
    .await;
    let lb_id = created["LoadBalancerIds"][0].as_str().unwrap().to_string();
    let listener = call(
        "CreateListener",
        json!({"LoadBalancerId": lb_id, "Ports": [80], "Protocol": "HTTP",
               "ListenerNames": ["TKE-DEDICATED-LISTENER"]}),
    )
    .await;
    let listener_id = listener["ListenerIds"][0].as_str().unwrap().to_string();
    let made = call(
        "CreateRule",
        json!({"LoadBalancerId": lb_id, "ListenerId": listener_id,
               "Rules": rules.iter().map(|(host, url, _)| json!({"Domain": host, "Url": url}))
                   .collect::<Vec<_>>()}),
    )
    .await;
    let locations: Vec<String> = made["LocationIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let targets: Vec<Value> = rules
        .iter()
        .zip(&locations)
        .flat_map(|((_, _, port), location)| {
            let listener_id = &listener_id;
            instances.iter().map(move |ins| {
                json!({"ListenerId": listener_id, "LocationId": location,
                       "InstanceId": ins, "Port": port, "Weight": 10})
            })
        })
        .collect();
    call(
        "BatchRegisterTargets",
        json!({"LoadBalancerId": lb_id, "Targets": targets}),
    )
    .await;
    lb_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clb_left_by_tkes_controller_is_taken_over_by_the_first_sweep_without_a_cloud_write() {
    let stack = Stack::start().await;
    // TKE's controller serves the cluster; the function is not deployed yet (its webhook
    // refuses everything, kube-sim drops the batches).
    stack
        .tap
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack
        .kubectl
        .apply_yaml(&format!(
            r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: {NS}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
      - path: /api
        pathType: ImplementationSpecific
        backend:
          service:
            name: api
            port:
              number: 8080
  - host: admin.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"#
        ))
        .await;
    let uid = stack.ingress_uid(NS, "web");
    let lb_id = tke_controller_leaves(
        &stack,
        &uid,
        &[
            ("shop.example.com", "/", 30080),
            ("shop.example.com", "/api", 30081),
            ("admin.example.com", "/", 30080),
        ],
        &["ins-demo0001", "ins-demo0002"],
    )
    .await;
    // As TKE writes it (tencent-cloud.md §1.3).
    stack
        .kubectl
        .annotate_ingress(
            NS,
            "web",
            &format!("kubernetes.io/ingress.qcloud-loadbalance-id={lb_id}"),
        )
        .await;
    eventually("kube-sim gives up the refused batches", || {
        let s = stack.kube.audit_stats();
        if s.events == s.events_dropped {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let before = stack.clb.load_balancer(&lb_id).unwrap();
    let read_before = sdk_read_clb(&stack, &lb_id, &["--targets"]).await;
    stack.clb.clear_calls();

    // The switch (README "Taking over from TKE's controller"): scale l7-lb-controller to 0,
    // deploy the function; its first sweep takes the CLB over.
    stack
        .tap
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let report = stack.fire_timer().await;
    assert!(
        stack.cloud_writes().is_empty(),
        "no cloud write: {:?} (report {report})",
        stack.cloud_writes()
    );
    assert_eq!(report["sweep"]["orphans_released"], 0, "{report}");
    assert_eq!(stack.clb.load_balancer(&lb_id), Some(before), "untouched");
    assert_eq!(
        sdk_read_clb(&stack, &lb_id, &["--targets"]).await,
        read_before
    );
    assert_eq!(lbs(&stack.clb.state()).len(), 1, "no second CLB");
    let ing = stack.ingress(NS, "web").unwrap();
    assert!(ingress_address(&ing).is_some(), "the status names the CLB");

    // And it is the function's now: a Node leaves, its targets leave every rule, in one
    // write, and the CLB, its listener and its rules stay.
    stack.kubectl.run(&["delete", "node", "10.0.0.12"]).await;
    stack.quiet(stack.kube.audit_stats().events_dropped).await;
    let writes: Vec<String> = stack.cloud_writes().into_iter().map(|c| c.action).collect();
    assert_eq!(writes, vec!["BatchDeregisterTargets"]);
    let after = sdk_read_clb(&stack, &lb_id, &["--targets"]).await;
    let rules = after["listeners"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    for r in rules {
        let t: Vec<&str> = r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(t.len(), 1, "{r}");
        assert!(t[0].starts_with("ins-demo0001:"), "{r}");
    }
}
