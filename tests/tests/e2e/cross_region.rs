//! `cross-region-id` end to end: real `kubectl` against kube-sim, whose audit webhook drives
//! the function, which drives a clb-sim serving two regions (each with its own CLBs). A CLB
//! of another region is created (or adopted) there, every call for it carries that region,
//! it reaches the Nodes by private IP, and it is released there; a malformed region is a
//! Warning (E4024) and changes nothing.

use crate::support::stack::*;
use clb_ingress::reconcile::ReconcilerOptions;
use clb_ingress_tests::clb_sim::{CallRecord, Faults, LoadBalancer, ScriptedFault, SimConfig};

const NS: &str = "shop";
const OTHER: &str = "ap-shanghai";

/// A stack whose clb-sim also serves [`OTHER`], and whose engine is told to look there
/// (`CLB_EXTRA_REGIONS`, legacy: the Tag API finds it anyway).
async fn two_regions() -> Stack {
    two_regions_with(vec![OTHER.into()]).await
}

/// A stack whose clb-sim also serves [`OTHER`], with no `CLB_EXTRA_REGIONS`: only the Tag
/// API can say a CLB of ours lives there.
async fn two_regions_no_extra() -> Stack {
    two_regions_with(Vec::new()).await
}

async fn two_regions_with(extra_regions: Vec<String>) -> Stack {
    Stack::start_with(
        SimConfig {
            other_regions: vec![OTHER.into()],
            ..SimConfig::default()
        },
        ReconcilerOptions {
            extra_regions,
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
    served_in(stack, OTHER, uid).await
}

/// The CLB of `uid` in `region` once its rule has targets.
async fn served_in(stack: &Stack, region: &str, uid: &str) -> LoadBalancer {
    eventually("the CLB in the other region serves", || {
        let lb = stack
            .clb
            .load_balancers_in(region)
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

/// Points Ingress `name` at `region` with a VPC there to create in, both in one edit: the
/// region alone (no VPC to create in) would be refused.
async fn move_to(stack: &Stack, name: &str, region: &str, vpc: &str) {
    let region = format!("ingress.cloud.tencent.com/cross-region-id={region}");
    let vpc = format!("ingress.cloud.tencent.com/cross-vpc-id={vpc}");
    stack
        .kubectl
        .annotate_ingress_at_once(NS, name, &[&region, &vpc])
        .await;
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

    move_to(&stack, "web", OTHER, "vpc-sh000001").await;
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
    // No CLB_EXTRA_REGIONS: the global Tag API (GetResources) says where the deleted
    // Ingress's CLB lives, and `keep` still names ap-shanghai too.
    let stack = two_regions_no_extra().await;
    apply_ingress(&stack, "gone", IN_OTHER).await;
    apply_ingress(&stack, "keep", IN_OTHER).await;
    let gone = served_in_other(&stack, &stack.ingress_uid(NS, "gone")).await;
    let keep = served_in_other(&stack, &stack.ingress_uid(NS, "keep")).await;
    stack.quiet(0).await;

    delete_and_sweep(&stack, NS, "gone").await;
    let left = ids_in_other(&stack);
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

const IN_OTHER: &str = "    ingress.cloud.tencent.com/cross-region-id: ap-shanghai\n    \
                        ingress.cloud.tencent.com/cross-vpc-id: vpc-sh000001";

/// Ingress `home` with its CLB in the cluster's region (its UID), and `other` with its CLB
/// in [`OTHER`], both serving.
async fn home_and_other(stack: &Stack, home: &str, other: &str) -> (String, LoadBalancer) {
    apply_ingress(stack, home, "").await;
    let home_uid = stack.ingress_uid(NS, home);
    eventually("the home region's CLB serves", || {
        stack.lb_of(&home_uid).ok_or_else(|| "none yet".to_string())
    })
    .await;
    apply_ingress(stack, other, IN_OTHER).await;
    let lb = served_in_other(stack, &stack.ingress_uid(NS, other)).await;
    (home_uid, lb)
}

/// The ids of the CLBs in [`OTHER`].
fn ids_in_other(stack: &Stack) -> Vec<String> {
    stack
        .clb
        .load_balancers_in(OTHER)
        .into_iter()
        .map(|lb| lb.id)
        .collect()
}

/// Calls of `action` after the first `from` calls.
fn count_since(stack: &Stack, from: usize, action: &str) -> usize {
    stack.clb.calls()[from..]
        .iter()
        .filter(|c| c.action == action)
        .count()
}

/// Fires one sweep, which reads one GetResources page; its cloud writes as (action, ids).
async fn sweep_writes(stack: &Stack) -> Vec<(String, Vec<String>)> {
    let before = stack.clb.calls().len();
    stack.fire_timer().await;
    assert_eq!(count_since(stack, before, "GetResources"), 1);
    stack.clb.calls()[before..]
        .iter()
        .filter(|c| is_write(&c.action))
        .map(|c| (c.action.clone(), c.lb_ids.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_ingress_clb_in_a_region_nothing_names_is_found_by_the_tag_api_and_deleted() {
    let stack = two_regions_no_extra().await;
    let (keep_uid, gone) = home_and_other(&stack, "keep", "gone").await;
    // A CLB of ours in ap-shanghai tagged for the live `keep` (which names no region): not
    // an orphan, never deleted; but `keep` does not name it, so the sweep releases it as an
    // adopted CLB no longer named (our tags off, the CLB stays).
    let kept = stack.clb.insert_load_balancer_in(
        OTHER,
        "OPEN",
        "keep-elsewhere",
        &[(TAG_CLUSTER, CLUSTER_ID), (TAG_UID, keep_uid.as_str())],
    );
    stack.quiet(0).await;
    let before = stack.clb.calls().len();

    // The delete itself: its annotation is gone, no Ingress names ap-shanghai, it is not in
    // CLB_EXTRA_REGIONS; one GetResources by our cluster and UID tags finds it there.
    stack
        .kubectl
        .run(&["-n", NS, "delete", "ingress", "gone"])
        .await;
    stack.quiet(0).await;
    let left = ids_in_other(&stack);
    assert_eq!(left, vec![kept.clone()], "deleted by the delete trigger");
    assert_eq!(count_since(&stack, before, "GetResources"), 1);
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        (deletes[0].lb_ids.clone(), deletes[0].region.as_str()),
        (vec![gone.id.clone()], OTHER)
    );

    // The sweep: one GetResources page for the whole cluster; its only write takes our
    // tags off `kept`, which stays; the next sweep writes nothing.
    let written = sweep_writes(&stack).await;
    assert!(
        !written.is_empty()
            && written
                .iter()
                .all(|(a, ids)| a == "UnTagResources" && ids == &vec![kept.clone()]),
        "{written:?}"
    );
    let after = stack.clb.load_balancers_in(OTHER);
    assert_eq!(after.len(), 1);
    assert_eq!(
        (tag_of(&after[0], TAG_UID), tag_of(&after[0], TAG_CLUSTER)),
        (None, None)
    );
    let written = sweep_writes(&stack).await;
    assert!(
        written.is_empty(),
        "the next sweep writes nothing: {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_tag_api_fails_only_the_regions_read_are_released_and_the_sweep_reports_it() {
    let stack = two_regions_no_extra().await;
    let (_, far) = home_and_other(&stack, "home", "far").await;
    stack.quiet(0).await;

    stack.clb.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "GetResources".into(),
            code: "ResourceUnavailable".into(),
            count: 1000,
        }],
        ..Faults::default()
    });
    for name in ["home", "far"] {
        stack
            .kubectl
            .run(&["-n", NS, "delete", "ingress", name])
            .await;
    }
    stack.quiet(0).await;
    let swept = stack.fire_timer().await;
    assert!(
        lbs(&stack.clb.state()).is_empty(),
        "the home region was read: its orphan is released"
    );
    assert_eq!(
        stack.clb.load_balancers_in(OTHER).len(),
        1,
        "ap-shanghai was not read: nothing released there"
    );
    assert!(
        swept.to_string().contains("GetResources"),
        "the sweep does not end clean: {swept}"
    );

    stack.clb.set_faults(Faults::default());
    stack.fire_timer().await;
    assert!(stack.clb.load_balancers_in(OTHER).is_empty());
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 2);
    assert!(deletes
        .iter()
        .any(|d| d.lb_ids == vec![far.id.clone()] && d.region == OTHER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_live_ingress_between_two_unlisted_regions_lets_the_sweep_delete_the_old_clb() {
    // Neither region is the cluster's nor in CLB_EXTRA_REGIONS: the run the edit triggers
    // searches only ap-beijing and the fixed regions, so only the sweep's fleet listing
    // (GetResources) shows the CLB left in ap-shanghai.
    const THIRD: &str = "ap-beijing";
    let stack = Stack::start_with(
        SimConfig {
            other_regions: vec![OTHER.into(), THIRD.into()],
            ..SimConfig::default()
        },
        ReconcilerOptions::default(),
    )
    .await;
    apply_ingress(&stack, "web", IN_OTHER).await;
    let uid = stack.ingress_uid(NS, "web");
    let old = served_in_other(&stack, &uid).await;
    stack.quiet(0).await;

    move_to(&stack, "web", THIRD, "vpc-bj000001").await;
    let moved = served_in(&stack, THIRD, &uid).await;
    stack.quiet(0).await;
    stack.fire_timer().await;

    assert!(
        lbs(&stack.clb.state()).is_empty(),
        "the home region has nothing"
    );
    let tagged: Vec<(String, String)> = [OTHER, THIRD]
        .into_iter()
        .flat_map(|r| {
            stack
                .clb
                .load_balancers_in(r)
                .into_iter()
                .filter(|lb| tag_of(lb, TAG_UID).as_deref() == Some(uid.as_str()))
                .map(move |lb| (lb.id, r.to_string()))
        })
        .collect();
    assert_eq!(tagged, vec![(moved.id.clone(), THIRD.to_string())]);
    let deletes = deletes(&stack);
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        (deletes[0].lb_ids.clone(), deletes[0].region.as_str()),
        (vec![old.id], OTHER)
    );

    let written = sweep_writes(&stack).await;
    assert!(
        written.is_empty(),
        "a second sweep writes nothing: {written:?}"
    );
}
