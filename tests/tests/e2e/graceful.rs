//! Graceful backends end to end: real `kubectl` against kube-sim, whose audit webhook drives
//! the function, which drives clb-sim; targets read back with the official SDK. A
//! direct-access rollout never leaves the rule without a serving target and drains every old
//! Pod to weight 0 before it deregisters it; a cordoned Node drains before its deletion
//! deregisters it; `externalTrafficPolicy: Local` keeps only Nodes with an endpoint; a weight
//! set in the console is never written back.

use std::collections::BTreeMap;

use crate::support::stack::*;

pub(super) const NS: &str = "shop";
pub(super) const HOST: &str = "shop.example.com";

/// An Ingress `web` for `HOST/` on Service `svc` port 80, with extra annotation lines.
pub(super) fn ingress_yaml(svc: &str, annotations: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: {NS}
  annotations:
    kubernetes.io/ingress.class: qcloud
{annotations}
spec:
  rules:
  - host: {HOST}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: {svc}
            port:
              number: 80
"#
    )
}

/// A ClusterIP Service `pods` (port 80 → "http" 8080) for direct access.
pub(super) const PODS_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: pods
  namespace: shop
spec:
  type: ClusterIP
  selector:
    app: pods
  ports:
  - name: http
    port: 80
    targetPort: 8080
"#;

/// An endpoint: address, ready, terminating, and the Node it runs on.
type Ep<'a> = (&'a str, bool, bool, &'a str);

/// The one EndpointSlice of Service `svc` (generated-style name), as the endpoint-slice
/// controller would write it.
fn slice_yaml(svc: &str, endpoints: &[Ep]) -> String {
    let mut out = format!(
        r#"apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}-x7k2p
  namespace: {NS}
  labels:
    kubernetes.io/service-name: {svc}
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
"#
    );
    for (ip, ready, terminating, node) in endpoints {
        out.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  nodeName: \"{node}\"\n  conditions: {{ready: {ready}, serving: {}, terminating: {terminating}}}\n",
            *ready || *terminating
        ));
    }
    out
}

/// `target → weight` of the CLB's one rule for `HOST/`, from clb-sim's state.
pub(super) fn weights(stack: &Stack, lb_id: &str) -> BTreeMap<String, i64> {
    let lb = stack.clb.load_balancer(lb_id).expect("CLB");
    lb.listeners
        .iter()
        .flat_map(|l| &l.rules)
        .filter(|r| r.domain() == HOST && r.url == "/")
        .flat_map(|r| &r.targets)
        .map(|t| (t.key().0, t.weight))
        .collect()
}

/// Waits for the Ingress's CLB to have a serving target on `HOST/`; returns the CLB id.
async fn served(stack: &Stack) -> String {
    eventually("web is served", || {
        let uid = stack
            .ingress(NS, "web")
            .and_then(|i| i["metadata"]["uid"].as_str().map(str::to_string))
            .ok_or("no Ingress")?;
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        let id = lb["LoadBalancerId"].as_str().unwrap_or("").to_string();
        let w = weights(stack, &id);
        if w.values().any(|w| *w > 0) {
            Ok(id)
        } else {
            Err(format!("targets {w:?}"))
        }
    })
    .await
}

/// The annotation line of a direct-access Ingress, for [`ingress_yaml`].
pub(super) const DIRECT: &str = "    ingress.cloud.tencent.com/direct-access: \"true\"";

/// Applies the direct-access Ingress `web` for Service `pods` and waits until it is served
/// and every run is done; returns the CLB id.
pub(super) async fn serve_direct(stack: &Stack) -> String {
    stack
        .kubectl
        .apply_yaml(&ingress_yaml("pods", DIRECT))
        .await;
    let lb_id = served(stack).await;
    stack.quiet(0).await;
    lb_id
}

/// The targets of `HOST/` as the official SDK reads them: `"<IP or instance>:<port> w<weight>"`.
pub(super) async fn sdk_targets(stack: &Stack, lb_id: &str) -> Vec<String> {
    let read = sdk_read_clb(stack, lb_id, &["--targets"]).await;
    read["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["rules"].as_array().into_iter().flatten())
        .find(|r| r["domain"] == HOST && r["url"] == "/")
        .and_then(|r| serde_json::from_value(r["targets"].clone()).ok())
        .unwrap_or_default()
}

fn count(calls: &[clb_ingress_tests::clb_sim::CallRecord], action: &str) -> usize {
    calls.iter().filter(|c| c.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_access_rollout_always_serves_and_drains_every_old_pod_before_deregistering_it() {
    let stack = Stack::start().await;
    stack.kubectl.apply_sample("00-namespace.yaml").await;
    stack.kubectl.apply_yaml(PODS_SERVICE).await;
    let slice = |eps: &[Ep]| slice_yaml("pods", eps);
    let old = [
        ("10.1.0.1", true, false, "n1"),
        ("10.1.0.2", true, false, "n1"),
    ];
    stack.kubectl.apply_yaml(&slice(&old)).await;
    let lb_id = serve_direct(&stack).await;
    assert_eq!(weights(&stack, &lb_id).len(), 2);
    let before = stack.clb.calls().len();

    // Pods 1 and 2 are replaced by 3 and 4, one at a time, as a Deployment rollout does:
    // the new Pod starts (not ready), becomes ready, the old one terminates, then goes.
    let steps: Vec<Vec<Ep>> = vec![
        vec![old[0], old[1], ("10.1.0.3", false, false, "n1")],
        vec![old[0], old[1], ("10.1.0.3", true, false, "n1")],
        vec![
            ("10.1.0.1", false, true, "n1"),
            old[1],
            ("10.1.0.3", true, false, "n1"),
        ],
        vec![old[1], ("10.1.0.3", true, false, "n1")],
        vec![
            old[1],
            ("10.1.0.3", true, false, "n1"),
            ("10.1.0.4", false, false, "n1"),
        ],
        vec![
            old[1],
            ("10.1.0.3", true, false, "n1"),
            ("10.1.0.4", true, false, "n1"),
        ],
        vec![
            ("10.1.0.2", false, true, "n1"),
            ("10.1.0.3", true, false, "n1"),
            ("10.1.0.4", true, false, "n1"),
        ],
        vec![
            ("10.1.0.3", true, false, "n1"),
            ("10.1.0.4", true, false, "n1"),
        ],
    ];
    let mut drained_then_gone = 0;
    for (i, step) in steps.iter().enumerate() {
        let was = weights(&stack, &lb_id);
        stack.kubectl.apply_yaml(&slice(step)).await;
        stack.quiet(0).await;
        let now = weights(&stack, &lb_id);
        assert!(
            now.values().any(|w| *w > 0),
            "step {i}: no serving target: {now:?}"
        );
        for (ip, ready, _, _) in step {
            if !ready {
                assert_eq!(
                    now.get(*ip).copied().unwrap_or(0),
                    0,
                    "step {i}: {ip} {now:?}"
                );
            }
        }
        for (target, weight) in &was {
            if !now.contains_key(target) {
                assert_eq!(*weight, 0, "step {i}: {target} deregistered at {weight}");
                drained_then_gone += 1;
            }
        }
    }
    assert_eq!(drained_then_gone, 2);
    let calls = stack.clb.calls()[before..].to_vec();
    // Two registrations (3, 4), two drains (1, 2), two deregistrations; nothing else written.
    assert_eq!(count(&calls, "BatchRegisterTargets"), 2, "{calls:?}");
    assert_eq!(count(&calls, "BatchModifyTargetWeight"), 2, "{calls:?}");
    assert_eq!(count(&calls, "BatchDeregisterTargets"), 2, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| is_write(&c.action)).count(), 6);

    assert_eq!(
        sdk_targets(&stack, &lb_id).await,
        ["10.1.0.3:8080 w10", "10.1.0.4:8080 w10"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_node_drains_to_weight_zero_and_is_deregistered_only_when_deleted() {
    let stack = Stack::start().await;
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack.kubectl.apply_yaml(&ingress_yaml("web", "")).await;
    let lb_id = served(&stack).await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0001".into(), 10), ("ins-demo0002".into(), 10)])
    );

    let before = stack.clb.calls().len();
    stack.kubectl.run(&["cordon", "10.0.0.12"]).await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0001".into(), 10), ("ins-demo0002".into(), 0)])
    );
    assert_eq!(
        sdk_targets(&stack, &lb_id).await,
        ["ins-demo0001:30080 w10", "ins-demo0002:30080 w0"]
    );
    // The drained Node stays at 0 across a sweep: no write.
    stack.fire_timer().await;
    stack.quiet(0).await;

    stack.kubectl.run(&["delete", "node", "10.0.0.12"]).await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0001".into(), 10)])
    );
    let calls = stack.clb.calls()[before..].to_vec();
    assert_eq!(count(&calls, "BatchModifyTargetWeight"), 1, "{calls:?}");
    assert_eq!(count(&calls, "BatchDeregisterTargets"), 1, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| is_write(&c.action)).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_traffic_policy_local_registers_only_nodes_that_run_a_ready_endpoint() {
    let stack = Stack::start().await;
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack
        .kubectl
        .apply_yaml(&slice_yaml(
            "web",
            &[("10.1.0.1", true, false, "10.0.0.11")],
        ))
        .await;
    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "patch",
            "service",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
        ])
        .await;
    stack.kubectl.apply_yaml(&ingress_yaml("web", "")).await;
    let lb_id = served(&stack).await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0001".into(), 10)])
    );
    // The Pod moves to the other Node: the new Node registers first, the old one drains while
    // its endpoint terminates, then goes.
    stack
        .kubectl
        .apply_yaml(&slice_yaml(
            "web",
            &[
                ("10.1.0.1", false, true, "10.0.0.11"),
                ("10.1.0.2", true, false, "10.0.0.12"),
            ],
        ))
        .await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0001".into(), 0), ("ins-demo0002".into(), 10)])
    );
    stack
        .kubectl
        .apply_yaml(&slice_yaml(
            "web",
            &[("10.1.0.2", true, false, "10.0.0.12")],
        ))
        .await;
    stack.quiet(0).await;
    assert_eq!(
        weights(&stack, &lb_id),
        BTreeMap::from([("ins-demo0002".into(), 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_set_in_the_console_is_never_written_back() {
    let stack = Stack::start().await;
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack.kubectl.apply_yaml(&ingress_yaml("web", "")).await;
    let lb_id = served(&stack).await;
    stack.quiet(0).await;
    // The user gives one Node weight 37 in the console.
    stack.clb.with_state(|s| {
        for t in s
            .lb_mut(&lb_id)
            .expect("CLB")
            .listeners
            .iter_mut()
            .flat_map(|l| l.rules.iter_mut())
            .flat_map(|r| r.targets.iter_mut())
            .filter(|t| t.instance_id.as_deref() == Some("ins-demo0002"))
        {
            t.weight = 37;
        }
    });
    let writes = stack.cloud_writes().len();
    // A change to the Ingress, then a full sweep: both read the CLB, neither writes.
    stack.kubectl.annotate_ingress(NS, "web", "team=web").await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(
        stack.cloud_writes().len() - writes,
        0,
        "{:?}",
        &stack.cloud_writes()[writes..]
    );
    assert_eq!(
        sdk_targets(&stack, &lb_id).await,
        ["ins-demo0001:30080 w10", "ins-demo0002:30080 w37"]
    );
}
