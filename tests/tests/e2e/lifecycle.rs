//! Lifecycle and safety annotations end to end: real `kubectl` against kube-sim, whose audit
//! webhook drives the function, which drives clb-sim. `mode: skip` makes no write and keeps
//! the CLB on delete; `loadbalance-retain` and deletion protection keep the CLB (our
//! listeners and tags go); security groups and pass-to-target are set once and kept; a
//! malformed value is a Warning and changes nothing else.

use crate::support::stack::*;
use serde_json::Value;

const NS: &str = "shop";

async fn apply_ingress(stack: &Stack, name: &str, annotations: &str) {
    apply_shop_ingress(stack, NS, name, annotations).await;
}

/// Waits until the Ingress has a CLB with one rule that has targets; returns its id.
async fn served(stack: &Stack, name: &str) -> String {
    eventually(&format!("{NS}/{name} is served"), || {
        let uid = stack
            .ingress(NS, name)
            .and_then(|i| i["metadata"]["uid"].as_str().map(str::to_string))
            .ok_or("no Ingress")?;
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        let r = rules(&lb);
        match r.first() {
            Some((_, targets)) if !targets.is_empty() => {
                Ok(lb["LoadBalancerId"].as_str().unwrap_or("").to_string())
            }
            _ => Err(format!("rules {r:?}")),
        }
    })
    .await
}

/// `kubectl annotate ingress NAME KEY=VALUE`.
async fn annotate(stack: &Stack, name: &str, key_value: &str) {
    stack
        .kubectl
        .run(&["-n", NS, "annotate", "ingress", name, key_value])
        .await;
}

async fn delete_and_sweep(stack: &Stack, name: &str) {
    crate::support::stack::delete_and_sweep(stack, NS, name).await;
}

fn sim_tag(lb: &clb_ingress_tests::clb_sim::LoadBalancer, key: &str) -> Option<String> {
    lb.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn bound_targets(lb: &clb_ingress_tests::clb_sim::LoadBalancer) -> usize {
    lb.listeners
        .iter()
        .flat_map(|l| &l.rules)
        .map(|r| r.targets.len())
        .sum()
}

/// Warning Events on the Ingress, as `kubectl get events` shows them: (reason, message).
async fn warnings(stack: &Stack, name: &str) -> Vec<(String, String)> {
    let out = stack
        .kubectl
        .run(&["-n", NS, "get", "events", "-o", "json"])
        .await;
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"].as_str() == Some(name))
        .filter(|e| e["type"].as_str() == Some("Warning"))
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_skip_makes_no_write_and_a_delete_keeps_the_clb_listeners_and_targets() {
    let stack = Stack::start().await;
    apply_ingress(&stack, "web", "").await;
    let lb_id = served(&stack, "web").await;
    stack.quiet(0).await;

    annotate(&stack, "web", "ingress.cloud.tencent.com/mode=skip").await;
    eventually("the CLB carries the skip mark", || {
        let lb = stack.clb.load_balancer(&lb_id).ok_or("CLB gone")?;
        match sim_tag(&lb, "tke-ingress-mode").as_deref() {
            Some("skip") => Ok(()),
            other => Err(format!("mark {other:?}")),
        }
    })
    .await;
    stack.quiet(0).await;
    let marked = stack.cloud_writes().len();

    // A change to the Ingress and to its backends: nothing reaches the CLB.
    annotate(&stack, "web", "team=web").await;
    stack.kubectl.run(&["delete", "node", "10.0.0.12"]).await;
    stack.quiet(0).await;
    let report = stack.fire_timer().await;
    assert_eq!(
        stack.cloud_writes().len(),
        marked,
        "no write while in mode: skip (sweep report {report})"
    );
    let before = stack.clb.load_balancer(&lb_id).unwrap();

    delete_and_sweep(&stack, "web").await;
    let after = stack
        .clb
        .load_balancer(&lb_id)
        .expect("the CLB of a skip Ingress survives its delete");
    assert_eq!(after.listeners.len(), before.listeners.len());
    assert_eq!(bound_targets(&after), bound_targets(&before));
    assert!(bound_targets(&after) > 0);
    assert_eq!(sim_tag(&after, TAG_CLUSTER), None, "our claim is gone");
    assert_eq!(sim_tag(&after, TAG_UID), None);
    assert_eq!(stack.clb.call_count("DeleteLoadBalancer"), 0);
    assert_eq!(stack.clb.call_count("DeleteLoadBalancerListeners"), 0);
    assert_eq!(stack.clb.call_count("BatchDeregisterTargets"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ingress_in_mode_skip_gets_no_clb_at_all() {
    let stack = Stack::start().await;
    apply_ingress(&stack, "web", "    ingress.cloud.tencent.com/mode: skip").await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    assert!(lbs(&stack.clb.state()).is_empty());
    assert!(stack.cloud_writes().is_empty());
    let ing = stack.ingress(NS, "web").unwrap();
    assert_eq!(ingress_address(&ing), None, "no status written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_protection_security_groups_and_pass_to_target_are_set_once_and_kept_on_delete() {
    let stack = Stack::start().await;
    apply_ingress(
        &stack,
        "web",
        "    ingress.cloud.tencent.com/loadbalance-retain: \"true\"\n    \
         ingress.cloud.tencent.com/deletion-protection: \"true\"\n    \
         ingress.cloud.tencent.com/security-groups: \"sg-web00001,sg-web00002\"\n    \
         ingress.cloud.tencent.com/pass-to-target: \"true\"",
    )
    .await;
    let lb_id = served(&stack, "web").await;
    eventually("attributes are set", || {
        let lb = stack.clb.load_balancer(&lb_id).ok_or("CLB gone")?;
        if lb.delete_protect
            && lb.pass_to_target
            && lb.security_groups == ["sg-web00001", "sg-web00002"]
        {
            Ok(())
        } else {
            Err(format!(
                "protect {} pass {} groups {:?}",
                lb.delete_protect, lb.pass_to_target, lb.security_groups
            ))
        }
    })
    .await;
    stack.quiet(0).await;
    let lb = stack.clb.load_balancer(&lb_id).unwrap();
    assert_eq!(sim_tag(&lb, "tke-lifecycle-owner").as_deref(), Some("user"));
    assert_eq!(stack.clb.call_count("ModifyLoadBalancerAttributes"), 1);
    assert_eq!(stack.clb.call_count("SetLoadBalancerSecurityGroups"), 1);
    assert_eq!(
        stack.clb.call_count("TagResources"),
        0,
        "owner tag came with the create"
    );

    // Steady state with every feature on: the sweep writes nothing.
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    assert_eq!(stack.cloud_writes().len(), writes);

    delete_and_sweep(&stack, "web").await;
    let kept = stack
        .clb
        .load_balancer(&lb_id)
        .expect("a retained, protected CLB is kept");
    assert!(kept.listeners.is_empty(), "our listeners are deleted");
    assert_eq!(sim_tag(&kept, TAG_CLUSTER), None);
    assert_eq!(sim_tag(&kept, TAG_UID), None);
    assert!(kept.delete_protect);
    assert_eq!(stack.clb.call_count("DeleteLoadBalancer"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_protection_alone_keeps_a_created_clb_and_a_malformed_value_only_warns() {
    let stack = Stack::start().await;
    apply_ingress(
        &stack,
        "web",
        "    ingress.cloud.tencent.com/deletion-protection: \"true\"\n    \
         ingress.cloud.tencent.com/security-groups: \"not-a-group\"",
    )
    .await;
    let lb_id = served(&stack, "web").await;
    stack.quiet(0).await;
    let lb = stack.clb.load_balancer(&lb_id).unwrap();
    assert!(lb.delete_protect);
    assert!(
        lb.security_groups.is_empty(),
        "the malformed value changed nothing"
    );
    assert_eq!(stack.clb.call_count("SetLoadBalancerSecurityGroups"), 0);
    let warned = warnings(&stack, "web").await;
    assert!(
        warned
            .iter()
            .any(|(reason, message)| reason == "InvalidAnnotationValue"
                && message.contains("security-groups")),
        "{warned:?}"
    );

    delete_and_sweep(&stack, "web").await;
    assert!(
        stack.clb.load_balancer(&lb_id).is_some(),
        "a deletion-protected CLB is never deleted"
    );
    assert_eq!(stack.clb.call_count("DeleteLoadBalancer"), 0);
}
