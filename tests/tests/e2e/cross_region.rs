//! `cross-region-id` end to end: real `kubectl` against kube-sim, whose audit webhook drives
//! the function, which drives a clb-sim serving two regions (each with its own CLBs). A CLB
//! of another region is created (or adopted) there, every call for it carries that region,
//! it reaches the Nodes by private IP, and it is released there; a malformed region is a
//! Warning (E4024) and changes nothing.

use crate::support::stack::*;
use clb_ingress::reconcile::ReconcilerOptions;
use clb_ingress_tests::clb_sim::{CallRecord, LoadBalancer, SimConfig};

const NS: &str = "shop";
const OTHER: &str = "ap-shanghai";

/// A stack whose clb-sim also serves [`OTHER`], and whose engine is told to look there
/// (`CLB_EXTRA_REGIONS`) so a deleted Ingress's CLB is found by the delete itself.
async fn two_regions() -> Stack {
    Stack::start_with(
        SimConfig {
            other_regions: vec![OTHER.into()],
            ..SimConfig::default()
        },
        ReconcilerOptions {
            extra_regions: vec![OTHER.into()],
            ..ReconcilerOptions::default()
        },
    )
    .await
}

async fn apply_ingress(stack: &Stack, name: &str, annotations: &str) {
    apply_shop_ingress(stack, NS, name, annotations).await;
}

fn tag_of(lb: &LoadBalancer, key: &str) -> Option<String> {
    lb.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// The CLB of `uid` in [`OTHER`] once its rule has targets.
async fn served_in_other(stack: &Stack, uid: &str) -> LoadBalancer {
    eventually("the CLB in the other region serves", || {
        let lb = stack
            .clb
            .load_balancers_in(OTHER)
            .into_iter()
            .find(|lb| tag_of(lb, TAG_UID).as_deref() == Some(uid))
            .ok_or("no CLB in the other region")?;
        let bound: usize = lb
            .listeners
            .iter()
            .flat_map(|l| &l.rules)
            .map(|r| r.targets.len())
            .sum();
        if bound > 0 {
            Ok(lb)
        } else {
            Err("no targets yet".into())
        }
    })
    .await
}

/// Targets of a CLB as (instance id, ENI IP).
fn targets(lb: &LoadBalancer) -> Vec<(Option<String>, Option<String>)> {
    let mut t: Vec<_> = lb
        .listeners
        .iter()
        .flat_map(|l| &l.rules)
        .flat_map(|r| &r.targets)
        .map(|t| (t.instance_id.clone(), t.eni_ip.clone()))
        .collect();
    t.sort();
    t
}

/// Every call naming `lb_id` was made in [`OTHER`]; returns how many there were.
fn calls_in_other(stack: &Stack, lb_id: &str) -> usize {
    let calls: Vec<_> = stack
        .clb
        .calls()
        .into_iter()
        .filter(|c| c.lb_ids.iter().any(|id| id == lb_id))
        .collect();
    for c in &calls {
        assert_eq!(c.region, OTHER, "{} for {lb_id} in {}", c.action, c.region);
    }
    calls.len()
}

/// The successful DeleteLoadBalancer calls so far.
fn deletes(stack: &Stack) -> Vec<CallRecord> {
    stack
        .clb
        .calls()
        .into_iter()
        .filter(|c| c.action == "DeleteLoadBalancer" && c.code == "Ok")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_with_cross_region_id_gets_its_clb_in_that_region_reaching_nodes_by_ip_and_loses_it_on_delete(
) {
    let stack = two_regions().await;
    apply_ingress(
        &stack,
        "web",
        "    ingress.cloud.tencent.com/cross-region-id: ap-shanghai\n    \
         ingress.cloud.tencent.com/cross-vpc-id: vpc-sh000001",
    )
    .await;
    let uid = stack.ingress_uid(NS, "web");
    let lb = served_in_other(&stack, &uid).await;
    stack.quiet(0).await;

    assert!(
        lbs(&stack.clb.state()).is_empty(),
        "the home region has nothing"
    );
    let creates: Vec<_> = stack
        .clb
        .calls()
        .into_iter()
        .filter(|c| c.action == "CreateLoadBalancer")
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].region, OTHER);
    assert_eq!(creates[0].params["VpcId"], "vpc-sh000001");
    assert_eq!(
        creates[0].params["SnatPro"], true,
        "cross-region binding 2.0"
    );
    assert_eq!(lb.vpc_id, "vpc-sh000001");
    // NodePort mode, but a CVM instance id means nothing in another region: the Nodes'
    // private IPs with the nodePort.
    let t = targets(&lb);
    assert_eq!(
        t,
        vec![
            (None, Some("10.0.0.11".to_string())),
            (None, Some("10.0.0.12".to_string()))
        ]
    );
    let calls = calls_in_other(&stack, &lb.id);
    assert!(
        calls >= 3,
        "create, listener, rule and targets: {calls} calls"
    );

    // The official SDK, asked in that region, reads the same CLB.
    let read = sdk_read_clb_in(&stack, OTHER, &lb.id, &["--targets"]).await;
    let text = read.to_string();
    assert!(
        text.contains("10.0.0.11") && text.contains("shop.example.com"),
        "{text}"
    );

    // Steady: another sweep writes nothing.
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    assert_eq!(
        stack.cloud_writes().len(),
        writes,
        "a steady sweep writes nothing"
    );

    delete_and_sweep(&stack, NS, "web").await;
    assert!(
        stack.clb.load_balancers_in(OTHER).is_empty(),
        "the CLB is deleted"
    );
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].region, OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_clb_of_another_region_is_adopted_and_released_with_our_tags_removed() {
    let stack = two_regions().await;
    let user_lb = stack
        .clb
        .insert_load_balancer_in(OTHER, "OPEN", "user-lb", &[("team", "shop")]);
    apply_ingress(
        &stack,
        "web",
        &format!(
            "    ingress.cloud.tencent.com/cross-region-id: ap-shanghai\n    \
             kubernetes.io/ingress.existLbId: {user_lb}"
        ),
    )
    .await;
    let uid = stack.ingress_uid(NS, "web");
    let lb = served_in_other(&stack, &uid).await;
    assert_eq!(lb.id, user_lb);
    assert_eq!(tag_of(&lb, TAG_CLUSTER).as_deref(), Some(CLUSTER_ID));
    assert!(targets(&lb)
        .iter()
        .all(|(i, ip)| i.is_none() && ip.is_some()));
    stack.quiet(0).await;
    assert!(
        lbs(&stack.clb.state()).is_empty(),
        "the home region has nothing"
    );
    assert_eq!(stack.clb.call_count("CreateLoadBalancer"), 0);

    delete_and_sweep(&stack, NS, "web").await;
    let after = stack
        .clb
        .load_balancers_in(OTHER)
        .into_iter()
        .find(|l| l.id == user_lb)
        .expect("an adopted CLB is never deleted");
    assert_eq!(
        tag_of(&after, TAG_CLUSTER),
        None,
        "our cluster tag is removed"
    );
    assert_eq!(tag_of(&after, TAG_UID), None, "our UID tag is removed");
    assert_eq!(
        tag_of(&after, "team").as_deref(),
        Some("shop"),
        "the user's tag stays"
    );
    assert!(after.listeners.is_empty(), "our listeners are deleted");
    assert_eq!(stack.clb.call_count("DeleteLoadBalancer"), 0);
    calls_in_other(&stack, &user_lb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_incomplete_cross_region_id_is_an_e4024_warning_and_changes_nothing() {
    let stack = two_regions().await;
    apply_ingress(
        &stack,
        "bad-region",
        "    ingress.cloud.tencent.com/cross-region-id: Shanghai\n    \
         ingress.cloud.tencent.com/cross-vpc-id: vpc-sh000001",
    )
    .await;
    apply_ingress(
        &stack,
        "no-vpc",
        "    ingress.cloud.tencent.com/cross-region-id: ap-shanghai",
    )
    .await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    assert!(lbs(&stack.clb.state()).is_empty());
    assert!(stack.clb.load_balancers_in(OTHER).is_empty());
    assert!(stack.cloud_writes().is_empty(), "no cloud write at all");
    for (name, says) in [
        ("bad-region", "is not a region"),
        ("no-vpc", "cross-vpc-id"),
    ] {
        let out = stack
            .kubectl
            .run(&["-n", NS, "get", "events", "-o", "json"])
            .await;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let warned = v["items"].as_array().into_iter().flatten().any(|e| {
            e["involvedObject"]["name"].as_str() == Some(name)
                && e["type"].as_str() == Some("Warning")
                && e["reason"].as_str() == Some("E4024")
                && e["message"].as_str().is_some_and(|m| m.contains(says))
        });
        assert!(warned, "{name}: no E4024 Warning saying {says:?} in {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_ingress_to_another_region_creates_its_clb_there_then_deletes_the_old_one() {
    let stack = two_regions().await;
    apply_ingress(&stack, "web", "").await;
    let uid = stack.ingress_uid(NS, "web");
    let home_lb = eventually("the CLB in the home region serves", || {
        stack
            .lb_of(&uid)
            .ok_or_else(|| "no CLB in the home region".to_string())
    })
    .await;
    let home_id = home_lb["LoadBalancerId"].as_str().unwrap().to_string();
    stack.quiet(0).await;

    // Both in one edit: the region alone (no VPC to create in) would be refused.
    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "annotate",
            "ingress",
            "web",
            "ingress.cloud.tencent.com/cross-region-id=ap-shanghai",
            "ingress.cloud.tencent.com/cross-vpc-id=vpc-sh000001",
        ])
        .await;
    let moved = served_in_other(&stack, &uid).await;
    eventually("the home region's CLB is deleted", || {
        match lbs(&stack.clb.state()).is_empty() {
            true => Ok(()),
            false => Err("still there".to_string()),
        }
    })
    .await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    assert_eq!(stack.clb.load_balancers_in(OTHER).len(), 1);
    assert!(lbs(&stack.clb.state()).is_empty());
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].lb_ids, vec![home_id]);
    assert_ne!(deletes[0].region, OTHER);
    calls_in_other(&stack, &moved.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_extra_regions_the_sweep_finds_an_orphan_in_a_region_a_live_ingress_names() {
    // No CLB_EXTRA_REGIONS: the delete itself searches only the cluster's region, so the
    // orphan in ap-shanghai is the sweep's to find, through the region `keep` still names.
    let stack = Stack::start_with(
        SimConfig {
            other_regions: vec![OTHER.into()],
            ..SimConfig::default()
        },
        ReconcilerOptions::default(),
    )
    .await;
    let annotations = "    ingress.cloud.tencent.com/cross-region-id: ap-shanghai\n    \
                       ingress.cloud.tencent.com/cross-vpc-id: vpc-sh000001";
    apply_ingress(&stack, "gone", annotations).await;
    apply_ingress(&stack, "keep", annotations).await;
    let gone = served_in_other(&stack, &stack.ingress_uid(NS, "gone")).await;
    let keep = served_in_other(&stack, &stack.ingress_uid(NS, "keep")).await;
    stack.quiet(0).await;

    delete_and_sweep(&stack, NS, "gone").await;
    let left: Vec<String> = stack
        .clb
        .load_balancers_in(OTHER)
        .into_iter()
        .map(|lb| lb.id)
        .collect();
    assert_eq!(
        left,
        vec![keep.id.clone()],
        "the orphan is released, the live one kept"
    );
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        (deletes[0].lb_ids.clone(), deletes[0].region.as_str()),
        (vec![gone.id], OTHER)
    );
}
