//! clb-sim state behaviour: tasks and ResourceInOperating, ClientToken, tag filters, paging,
//! rules and default domains, targets, admin state, out-of-band changes.

use clb_ingress_tests::clb_sim::client::SimClient;
use clb_ingress_tests::clb_sim::{spawn, SimConfig, SimHandle};
use serde_json::{json, Value};

async fn sim_with(task_ms: u64) -> (SimHandle, SimClient) {
    let sim = spawn(SimConfig {
        task_ms,
        ..SimConfig::default()
    })
    .await
    .expect("spawn");
    let c = SimClient::new(&sim);
    (sim, c)
}

async fn ok(c: &SimClient, action: &str, params: Value) -> Value {
    let r = c.clb(action, params).await;
    assert_eq!(r.error_code(), None, "{action}: {}", r.body);
    r.response().clone()
}

async fn create_lb(c: &SimClient, params: Value) -> String {
    let r = ok(c, "CreateLoadBalancer", params).await;
    r["LoadBalancerIds"][0].as_str().unwrap().to_string()
}

async fn http_listener(c: &SimClient, lb: &str, port: i64) -> String {
    let r = ok(
        c,
        "CreateListener",
        json!({"LoadBalancerId": lb, "Ports": [port], "Protocol": "HTTP"}),
    )
    .await;
    r["ListenerIds"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_running_task_refuses_other_writes_until_it_finishes() {
    // Tasks run a minute: only finish_tasks() ends them, so nothing here depends on timing.
    let (sim, c) = sim_with(60_000).await;
    let create = ok(
        &c,
        "CreateLoadBalancer",
        json!({"LoadBalancerType": "OPEN"}),
    )
    .await;
    let lb = create["LoadBalancerIds"][0].as_str().unwrap().to_string();
    let task = create["RequestId"].as_str().unwrap().to_string();

    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"LoadBalancerIds": [lb]}),
    )
    .await;
    assert_eq!(d["LoadBalancerSet"][0]["Status"], 0, "creating");
    let st = ok(&c, "DescribeTaskStatus", json!({"TaskId": task})).await;
    assert_eq!(st["Status"], 2, "running");
    assert_eq!(st["LoadBalancerIds"], json!([lb]));
    let deal = create["DealName"].as_str().unwrap();
    let st = ok(&c, "DescribeTaskStatus", json!({"DealName": deal})).await;
    assert_eq!(st["Status"], 2, "the DealName names the same task");

    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("FailedOperation.ResourceInOperating"));
    assert!(sim.load_balancer(&lb).unwrap().listeners.is_empty());
    // Reads still work while a task runs.
    ok(&c, "DescribeListeners", json!({"LoadBalancerId": lb})).await;

    sim.finish_tasks();
    let st = ok(&c, "DescribeTaskStatus", json!({"TaskId": task})).await;
    assert_eq!(st["Status"], 0, "done");
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"LoadBalancerIds": [lb]}),
    )
    .await;
    assert_eq!(d["LoadBalancerSet"][0]["Status"], 1, "normal");
    let l = ok(
        &c,
        "CreateListener",
        json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
    )
    .await;
    let st = ok(&c, "DescribeTaskStatus", json!({"TaskId": l["RequestId"]})).await;
    assert_eq!(st["Status"], 2, "the listener task runs");
    let r = c
        .clb("CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l["ListenerIds"][0], "Rules": [{"Domain": "a.com", "Url": "/"}]}))
        .await;
    assert_eq!(r.error_code(), Some("FailedOperation.ResourceInOperating"));
}

#[tokio::test]
async fn short_tasks_finish_on_their_own() {
    let (_sim, c) = sim_with(30).await;
    let create = ok(
        &c,
        "CreateLoadBalancer",
        json!({"LoadBalancerType": "OPEN"}),
    )
    .await;
    let task = create["RequestId"].clone();
    let mut polls = 0;
    loop {
        polls += 1;
        let st = ok(&c, "DescribeTaskStatus", json!({"TaskId": task})).await;
        if st["Status"] == 0 {
            break;
        }
        assert!(polls < 500, "task never finished");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let r = c
        .clb("DescribeTaskStatus", json!({"TaskId": "no-such-task"}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter"));
    let r = c.clb("DescribeTaskStatus", json!({})).await;
    assert_eq!(r.error_code(), Some("MissingParameter"));
}

#[tokio::test]
async fn the_same_client_token_never_makes_a_second_clb() {
    let (sim, c) = sim_with(0).await;
    let p = json!({"LoadBalancerType": "OPEN", "ClientToken": "cls-1/uid-1"});
    let a = create_lb(&c, p.clone()).await;
    let b = create_lb(&c, p).await;
    assert_eq!(a, b);
    let other = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "ClientToken": "cls-1/uid-2"}),
    )
    .await;
    assert_ne!(a, other);
    assert_eq!(sim.load_balancers().len(), 2);
    let r = c
        .clb(
            "CreateLoadBalancer",
            json!({"LoadBalancerType": "OPEN", "ClientToken": "x".repeat(65)}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.Length"));
}

#[tokio::test]
async fn tags_given_at_create_are_filterable_at_once() {
    let (sim, c) = sim_with(60_000).await;
    let mine = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "Tags": [
            {"TagKey": "tke-clusterId", "TagValue": "cls-a"},
            {"TagKey": "tke-lb-ingress-uuid", "TagValue": "uid-1"}]}),
    )
    .await;
    let theirs = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "Tags": [{"TagKey": "tke-clusterId", "TagValue": "cls-b"}]}),
    )
    .await;
    sim.insert_load_balancer("OPEN", "foreign", &[]);
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"Filters": [{"Name": "tag:tke-lb-ingress-uuid", "Values": ["uid-1"]}]}),
    )
    .await;
    assert_eq!(d["TotalCount"], 1);
    assert_eq!(d["LoadBalancerSet"][0]["LoadBalancerId"], mine.as_str());
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"Filters": [{"Name": "tag-key", "Values": ["tke-clusterId"]}]}),
    )
    .await;
    assert_eq!(d["TotalCount"], 2);
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"Filters": [
        {"Name": "tag-key", "Values": ["tke-clusterId"]},
        {"Name": "tag:tke-clusterId", "Values": ["cls-b", "cls-z"]}]}),
    )
    .await;
    assert_eq!(
        d["TotalCount"], 1,
        "filters intersect, values within one filter unite"
    );
    assert_eq!(d["LoadBalancerSet"][0]["LoadBalancerId"], theirs.as_str());
    let r = c
        .clb(
            "DescribeLoadBalancers",
            json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.InvalidFilter"));
}

#[tokio::test]
async fn describe_pages_with_offset_and_limit_and_caps_ids_and_limit() {
    let (sim, c) = sim_with(0).await;
    for i in 0..25 {
        sim.insert_load_balancer("OPEN", &format!("lb{i}"), &[("k", "v")]);
    }
    let d = ok(&c, "DescribeLoadBalancers", json!({})).await;
    assert_eq!(d["TotalCount"], 25);
    assert_eq!(
        d["LoadBalancerSet"].as_array().unwrap().len(),
        20,
        "default limit 20"
    );
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"Offset": 20, "Limit": 100}),
    )
    .await;
    assert_eq!(d["TotalCount"], 25, "TotalCount ignores paging");
    assert_eq!(d["LoadBalancerSet"].as_array().unwrap().len(), 5);
    let mut seen = std::collections::BTreeSet::new();
    for off in (0..25).step_by(7) {
        let d = ok(
            &c,
            "DescribeLoadBalancers",
            json!({"Offset": off, "Limit": 7}),
        )
        .await;
        for lb in d["LoadBalancerSet"].as_array().unwrap() {
            seen.insert(lb["LoadBalancerId"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.len(), 25, "pages cover every CLB once");
    let r = c.clb("DescribeLoadBalancers", json!({"Limit": 101})).await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.Range"));
    let ids: Vec<String> = (0..21).map(|i| format!("lb-{i:08}")).collect();
    let r = c
        .clb("DescribeLoadBalancers", json!({"LoadBalancerIds": ids}))
        .await;
    assert_eq!(r.error_code(), Some("LimitExceeded"));
}

#[tokio::test]
async fn rules_keep_one_default_domain_and_refuse_duplicates() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let l = http_listener(&c, &lb, 80).await;
    let r = ok(&c, "CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [
        {"Domain": "a.com", "Url": "/"}, {"Domain": "b.com", "Url": "/"}, {"Domain": "b.com", "Url": "/x"}]})).await;
    let locs: Vec<String> = r["LocationIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let defaults = |sim: &SimHandle| -> Vec<String> {
        let lbv = sim.load_balancer(&lb).unwrap();
        let mut d: Vec<String> = lbv.listeners[0]
            .rules
            .iter()
            .filter(|r| r.default_server)
            .map(|r| r.domain().to_string())
            .collect();
        d.dedup();
        d
    };
    assert_eq!(
        defaults(&sim),
        vec!["a.com"],
        "the first domain is made default"
    );
    let dup = c
        .clb("CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/"}]}))
        .await;
    assert_eq!(dup.error_code(), Some("InvalidParameter"));
    ok(
        &c,
        "ModifyDomainAttributes",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Domain": "b.com", "DefaultServer": true}),
    )
    .await;
    assert_eq!(
        defaults(&sim),
        vec!["b.com"],
        "promoting a domain demotes the old one"
    );
    // Deleting the default domain's rules promotes the oldest remaining domain.
    ok(
        &c,
        "DeleteRule",
        json!({"LoadBalancerId": lb, "ListenerId": l, "LocationIds": [locs[1], locs[2]]}),
    )
    .await;
    assert_eq!(defaults(&sim), vec!["a.com"]);
    let r = c
        .clb(
            "DeleteRule",
            json!({"LoadBalancerId": lb, "ListenerId": l, "LocationIds": ["loc-missing0"]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.LocationNotFound"));
    let r = c
        .clb("ModifyDomainAttributes", json!({"LoadBalancerId": lb, "ListenerId": l, "Domain": "a.com", "DefaultServer": false}))
        .await;
    assert_eq!(
        r.error_code(),
        Some("MissingParameter"),
        "turning the default off needs NewDefaultServerDomain"
    );
}

#[tokio::test]
async fn sni_cannot_be_switched_off_and_new_sni_domains_need_a_certificate() {
    let (_sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [443], "Protocol": "HTTPS"}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("MissingParameter"),
        "non-SNI HTTPS needs a certificate"
    );
    let l = ok(
        &c,
        "CreateListener",
        json!({"LoadBalancerId": lb, "Ports": [443], "Protocol": "HTTPS", "SniSwitch": 1}),
    )
    .await;
    let l = l["ListenerIds"][0].as_str().unwrap().to_string();
    let r = c
        .clb("CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/"}]}))
        .await;
    assert_eq!(r.error_code(), Some("MissingParameter"));
    ok(
        &c,
        "CreateRule",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [
        {"Domain": "a.com", "Url": "/", "Certificate": {"CertId": "cert-a"}}]}),
    )
    .await;
    ok(
        &c,
        "CreateRule",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/b"}]}),
    )
    .await;
    ok(&c, "ModifyDomainAttributes", json!({"LoadBalancerId": lb, "ListenerId": l, "Domain": "a.com", "Certificate": {"CertId": "cert-a2"}})).await;
    let d = ok(&c, "DescribeListeners", json!({"LoadBalancerId": lb})).await;
    let rules = d["Listeners"][0]["Rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .all(|r| r["Certificate"]["CertId"] == "cert-a2"),
        "the certificate is per domain"
    );
    let r = c
        .clb(
            "ModifyListener",
            json!({"LoadBalancerId": lb, "ListenerId": l, "SniSwitch": 0}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter"));
}

#[tokio::test]
async fn targets_register_idempotently_and_refuse_duplicates_and_strangers() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let l = http_listener(&c, &lb, 80).await;
    let r = ok(
        &c,
        "CreateRule",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/"}]}),
    )
    .await;
    let loc = r["LocationIds"][0].as_str().unwrap().to_string();
    let t = json!({"InstanceId": "ins-1", "Port": 30000});
    let reg = json!({"LoadBalancerId": lb, "ListenerId": l, "LocationId": loc, "Targets": [t]});
    ok(&c, "RegisterTargets", reg.clone()).await;
    ok(&c, "RegisterTargets", reg).await;
    assert_eq!(
        sim.load_balancer(&lb).unwrap().listeners[0].rules[0]
            .targets
            .len(),
        1
    );
    let r = c
        .clb(
            "RegisterTargets",
            json!({"LoadBalancerId": lb, "ListenerId": l, "LocationId": loc, "Targets": [t, t]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.Duplicate"));
    let r = c
        .clb(
            "RegisterTargets",
            json!({"LoadBalancerId": lb, "ListenerId": l, "Domain": "a.com", "Url": "/",
            "Targets": [{"InstanceId": "ins-2", "Port": 1, "EniIp": "10.0.0.1"}]}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("InvalidParameter"),
        "InstanceId and EniIp together"
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"EniIp": format!("10.0.0.{i}"), "Port": 80}))
        .collect();
    let r = c
        .clb(
            "RegisterTargets",
            json!({"LoadBalancerId": lb, "ListenerId": l, "LocationId": loc, "Targets": many}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("LimitExceeded"),
        "21 targets in one RegisterTargets"
    );
    let r = c
        .clb(
            "DeregisterTargets",
            json!({"LoadBalancerId": lb, "ListenerId": l, "LocationId": loc,
            "Targets": [{"InstanceId": "ins-9", "Port": 1}]}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("InvalidParameter"),
        "deregistering an unbound target"
    );
    let r = c
        .clb("RegisterTargets", json!({"LoadBalancerId": lb, "ListenerId": "lbl-missing0", "LocationId": loc, "Targets": [t]}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.ListenerIdNotFound"));
    let r = c
        .clb(
            "BatchRegisterTargets",
            json!({"LoadBalancerId": lb, "Targets": [
            {"ListenerId": l, "LocationId": loc, "EniIp": "10.1.1.1", "Port": 80},
            {"ListenerId": l, "LocationId": "loc-missing0", "EniIp": "10.1.1.2", "Port": 80}]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.LocationNotFound"));
    assert_eq!(
        sim.load_balancer(&lb).unwrap().listeners[0].rules[0]
            .targets
            .len(),
        1,
        "a refused batch changes nothing"
    );
    let big: Vec<Value> = (0..501)
        .map(|i| json!({"ListenerId": l, "LocationId": loc, "EniIp": "10.2.0.1", "Port": i + 1}))
        .collect();
    let r = c
        .clb(
            "BatchRegisterTargets",
            json!({"LoadBalancerId": lb, "Targets": big}),
        )
        .await;
    assert_eq!(r.error_code(), Some("LimitExceeded"));
}

#[tokio::test]
async fn listener_ports_and_quotas_are_enforced() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    http_listener(&c, &lb, 80).await;
    let r = c
        .clb("CreateListener", json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTPS", "Certificate": {"CertId": "c"}}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.PortCheckFailed"));
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [81, 81], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.PortCheckFailed"));
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [70000], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.Range"));
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("MissingParameter"));
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": "lb-missing0", "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.LBIdNotFound"));
    sim.set_limits(clb_ingress_tests::clb_sim::Limits {
        listeners_per_clb: 2,
        ..Default::default()
    });
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [82, 83], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("LimitExceeded"));
    assert_eq!(sim.load_balancer(&lb).unwrap().listeners.len(), 1);
}

#[tokio::test]
async fn deleting_listeners_cascades_and_missing_ones_are_reported() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let a = http_listener(&c, &lb, 80).await;
    let b = http_listener(&c, &lb, 8080).await;
    let r = c
        .clb(
            "DeleteListener",
            json!({"LoadBalancerId": lb, "ListenerId": "lbl-missing0"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.ListenerIdNotFound"));
    ok(
        &c,
        "DeleteLoadBalancerListeners",
        json!({"LoadBalancerId": lb, "ListenerIds": [a]}),
    )
    .await;
    assert_eq!(sim.load_balancer(&lb).unwrap().listeners.len(), 1);
    assert_eq!(sim.load_balancer(&lb).unwrap().listeners[0].id, b);
    ok(
        &c,
        "DeleteLoadBalancerListeners",
        json!({"LoadBalancerId": lb}),
    )
    .await;
    assert!(
        sim.load_balancer(&lb).unwrap().listeners.is_empty(),
        "no ListenerIds deletes all"
    );
    ok(&c, "DeleteLoadBalancer", json!({"LoadBalancerIds": [lb]})).await;
    let r = c
        .clb("DescribeTargets", json!({"LoadBalancerId": lb}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.LBIdNotFound"));
    let r = c
        .clb("DeleteLoadBalancer", json!({"LoadBalancerIds": [lb]}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameter.LBIdNotFound"));
}

#[tokio::test]
async fn out_of_band_changes_show_through_the_api_and_admin_state() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
    )
    .await;
    let l = http_listener(&c, &lb, 80).await;
    assert!(
        sim.remove_listener(&lb, &l),
        "someone deleted the listener in the console"
    );
    let d = ok(&c, "DescribeListeners", json!({"LoadBalancerId": lb})).await;
    assert_eq!(d["TotalCount"], 0);
    let foreign = sim.insert_load_balancer("INTERNAL", "theirs", &[("owner", "someone")]);
    assert!(sim.set_tags(&lb, &[("k", "changed")]));
    let state = c.admin_get("state").await;
    let lbs = state["LoadBalancers"].as_array().unwrap();
    assert_eq!(lbs.len(), 2);
    assert_eq!(
        lbs[0]["Tags"],
        json!([{"TagKey": "k", "TagValue": "changed"}])
    );
    assert_eq!(lbs[1]["LoadBalancerId"], foreign.as_str());
    assert_eq!(lbs[1]["LoadBalancerType"], "INTERNAL");
    assert_eq!(
        state,
        sim.state(),
        "the admin route and the in-process accessor agree"
    );
}

#[tokio::test]
async fn tag_api_tags_and_untags_by_six_segment_name() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let res = format!("qcs::clb:ap-guangzhou:uin/100000000001:clb/{lb}");
    let r = c
        .tag(
            "TagResources",
            json!({"ResourceList": [res, "qcs::clb:ap-guangzhou:uin/:clb/lb-missing0"],
            "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]}),
        )
        .await;
    assert_eq!(r.error_code(), None, "{}", r.body);
    assert_eq!(r.response()["FailedResources"].as_array().unwrap().len(), 1);
    assert_eq!(sim.load_balancer(&lb).unwrap().tags.len(), 2);
    c.tag(
        "TagResources",
        json!({"ResourceList": [res], "Tags": [{"TagKey": "a", "TagValue": "9"}]}),
    )
    .await;
    assert_eq!(
        sim.load_balancer(&lb).unwrap().tags[0],
        ("a".to_string(), "9".to_string()),
        "an existing key is overwritten"
    );
    let r = c
        .tag(
            "UnTagResources",
            json!({"ResourceList": [res], "TagKeys": ["a"]}),
        )
        .await;
    assert_eq!(r.error_code(), None);
    assert_eq!(
        sim.load_balancer(&lb).unwrap().tags,
        vec![("b".to_string(), "2".to_string())]
    );
    let r = c
        .tag(
            "TagResources",
            json!({"ResourceList": [res], "Tags": [{"TagKey": "qcloud:x", "TagValue": "1"}]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.ReservedTagKey"));
    let eleven: Vec<String> = (0..11).map(|_| res.clone()).collect();
    let r = c
        .tag(
            "UnTagResources",
            json!({"ResourceList": eleven, "TagKeys": ["b"]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("LimitExceeded.ResourceNumPerRequest"));
}

#[tokio::test]
async fn detail_rows_flatten_listeners_rules_and_targets_and_page_by_row() {
    let (sim, c) = sim_with(0).await;
    let empty = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "Tags": [{"TagKey": "t", "TagValue": "1"}]}),
    )
    .await;
    let lb = create_lb(
        &c,
        json!({"LoadBalancerType": "INTERNAL", "VpcId": "vpc-1", "SubnetId": "subnet-1",
        "Tags": [{"TagKey": "t", "TagValue": "1"}]}),
    )
    .await;
    sim.insert_load_balancer("OPEN", "untagged", &[]);
    let bare = http_listener(&c, &lb, 8080).await;
    let l = http_listener(&c, &lb, 80).await;
    let r = ok(
        &c,
        "CreateRule",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/"}]}),
    )
    .await;
    let loc = r["LocationIds"][0].clone();
    ok(
        &c,
        "RegisterTargets",
        json!({"LoadBalancerId": lb, "ListenerId": l, "LocationId": loc,
        "Targets": [{"EniIp": "10.0.0.1", "Port": 80}, {"EniIp": "10.0.0.2", "Port": 80}]}),
    )
    .await;
    let fields = json!([
        "ListenerId",
        "Port",
        "LocationId",
        "TargetAddress",
        "LoadBalancerType"
    ]);
    let r = c
        .clb(
            "DescribeLoadBalancersDetail",
            json!({"Fields": fields, "Filters": [{"Name": "tag:t", "Values": ["1"]}]}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("MissingParameter"),
        "listener fields need TargetType"
    );
    let d = ok(
        &c,
        "DescribeLoadBalancersDetail",
        json!({"Fields": fields, "TargetType": "NODE",
        "Filters": [{"Name": "tag:t", "Values": ["1"]}]}),
    )
    .await;
    let rows: Vec<(String, Value, Value, Value)> = d["LoadBalancerDetailSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["LoadBalancerId"].as_str().unwrap().to_string(),
                r["ListenerId"].clone(),
                r["LocationId"].clone(),
                r["TargetAddress"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (empty.clone(), Value::Null, Value::Null, Value::Null),
            (lb.clone(), json!(bare), Value::Null, Value::Null),
            (lb.clone(), json!(l), loc.clone(), json!("10.0.0.1")),
            (lb.clone(), json!(l), loc.clone(), json!("10.0.0.2")),
        ]
    );
    assert_eq!(d["LoadBalancerDetailSet"][1]["LoadBalancerType"], "Private");
    assert_eq!(
        d["LoadBalancerDetailSet"][1]["VpcId"],
        Value::Null,
        "not asked for"
    );
    let d = ok(
        &c,
        "DescribeLoadBalancersDetail",
        json!({"Limit": 3, "Offset": 3, "Filters": [{"Name": "tag-key", "Values": ["t"]}]}),
    )
    .await;
    assert_eq!(d["TotalCount"], 4, "rows, not CLBs, are counted");
    assert_eq!(d["LoadBalancerDetailSet"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn inline_certificates_mint_a_new_id_on_every_call() {
    let (_sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let cert = json!({"CertName": "tls-secret", "CertContent": pem, "CertKey": key});
    ok(&c, "CreateListener", json!({"LoadBalancerId": lb, "Ports": [443, 8443], "Protocol": "HTTPS", "Certificate": cert})).await;
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [9443], "Protocol": "HTTPS",
            "Certificate": {"CertContent": pem}}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("MissingParameter"),
        "content without key"
    );
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [9443], "Protocol": "HTTPS",
            "Certificate": {"CertContent": "nope", "CertKey": key}}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue"));
    let d = ok(&c, "DescribeListeners", json!({"LoadBalancerId": lb})).await;
    let ids: Vec<&str> = d["Listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Certificate"]["CertId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "one call uploads one certificate");
    let l = d["Listeners"][0]["ListenerId"].clone();
    ok(
        &c,
        "ModifyListener",
        json!({"LoadBalancerId": lb, "ListenerId": l, "Certificate": cert}),
    )
    .await;
    let d = ok(
        &c,
        "DescribeListeners",
        json!({"LoadBalancerId": lb, "ListenerIds": [l]}),
    )
    .await;
    assert_ne!(
        d["Listeners"][0]["Certificate"]["CertId"].as_str().unwrap(),
        ids[0],
        "a new upload is a new certificate"
    );
}

#[tokio::test]
async fn concurrent_creates_with_one_client_token_make_one_clb() {
    let (sim, c) = sim_with(0).await;
    let c = std::sync::Arc::new(c);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.clb(
                "CreateLoadBalancer",
                json!({"LoadBalancerType": "OPEN", "ClientToken": "race"}),
            )
            .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.error_code(), None);
        ids.insert(
            r.response()["LoadBalancerIds"][0]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(sim.load_balancers().len(), 1);
    assert_eq!(sim.call_count("CreateLoadBalancer"), 8);
}

#[tokio::test]
async fn extensive_create_parameters_are_kept_and_echoed() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(
        &c,
        json!({"LoadBalancerType": "OPEN", "Vip": "203.0.113.7",
        "ZoneId": "ap-guangzhou-3", "SlaType": "clb.c2.medium", "VipIsp": "CTCC"}),
    )
    .await;
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"LoadBalancerIds": [lb]}),
    )
    .await;
    let m = &d["LoadBalancerSet"][0];
    assert_eq!(m["LoadBalancerVips"], json!(["203.0.113.7"]));
    assert_eq!(m["SlaType"], "clb.c2.medium");
    assert_eq!(m["VipIsp"], "CTCC");
    assert_eq!(m["MasterZone"]["Zone"], "ap-guangzhou-3");
    assert_eq!(
        sim.state()["LoadBalancers"][0]["CreateParams"]["ZoneId"],
        "ap-guangzhou-3"
    );
    let r = c
        .clb(
            "CreateLoadBalancer",
            json!({"LoadBalancerType": "OPEN", "Vip": "203.0.113.7"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue.Duplicate"));
    let r = c
        .clb(
            "CreateLoadBalancer",
            json!({"LoadBalancerType": "INTERNAL", "VpcId": "vpc-1"}),
        )
        .await;
    assert_eq!(
        r.error_code(),
        Some("MissingParameter"),
        "INTERNAL needs SubnetId"
    );
    let r = c
        .clb("CreateLoadBalancer", json!({"LoadBalancerType": "PRIVATE"}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue"));
    let r = c.clb("CreateLoadBalancer", json!({})).await;
    assert_eq!(r.error_code(), Some("MissingParameter"));
}

#[tokio::test]
async fn unmodelled_parameters_pass_at_their_default_and_are_refused_otherwise() {
    let (sim, c) = sim_with(0).await;
    let lb = create_lb(&c, json!({"LoadBalancerType": "OPEN"})).await;
    ok(
        &c,
        "CreateListener",
        json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP",
        "TargetType": "NODE", "MaxConn": 1000}),
    )
    .await;
    assert_eq!(
        sim.state()["LoadBalancers"][0]["Listeners"][0]["ExtraParams"]["MaxConn"],
        1000,
        "kept verbatim"
    );
    let r = c
        .clb("CreateListener", json!({"LoadBalancerId": lb, "Ports": [81], "Protocol": "HTTP", "TargetType": "TARGETGROUP"}))
        .await;
    assert_eq!(r.error_code(), Some("UnsupportedOperation"));
    let l = sim.load_balancer(&lb).unwrap().listeners[0].id.clone();
    let r = c
        .clb("CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/", "Quic": true}]}))
        .await;
    assert_eq!(r.error_code(), Some("UnsupportedOperation"));
    ok(&c, "CreateRule", json!({"LoadBalancerId": lb, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/", "Quic": false}]})).await;
}

#[tokio::test]
async fn describe_orders_searches_and_filters_by_backends() {
    let (sim, c) = sim_with(0).await;
    let b = sim.insert_load_balancer("OPEN", "bravo", &[]);
    let a = sim.insert_load_balancer("OPEN", "alpha", &[]);
    let names = |d: &Value| -> Vec<String> {
        d["LoadBalancerSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["LoadBalancerName"].as_str().unwrap().to_string())
            .collect()
    };
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"OrderBy": "LoadBalancerName"}),
    )
    .await;
    assert_eq!(names(&d), ["alpha", "bravo"]);
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"OrderBy": "LoadBalancerName", "OrderType": 1}),
    )
    .await;
    assert_eq!(names(&d), ["bravo", "alpha"]);
    let d = ok(&c, "DescribeLoadBalancers", json!({"SearchKey": &a[3..]})).await;
    assert_eq!(names(&d), ["alpha"]);
    let l = http_listener(&c, &b, 80).await;
    let r = ok(
        &c,
        "CreateRule",
        json!({"LoadBalancerId": b, "ListenerId": l, "Rules": [{"Domain": "a.com", "Url": "/"}]}),
    )
    .await;
    ok(
        &c,
        "RegisterTargets",
        json!({"LoadBalancerId": b, "ListenerId": l, "LocationId": r["LocationIds"][0],
        "Targets": [{"EniIp": "10.9.9.9", "Port": 80}]}),
    )
    .await;
    let d = ok(&c, "DescribeLoadBalancers", json!({"WithRs": 1})).await;
    assert_eq!(names(&d), ["bravo"]);
    let d = ok(&c, "DescribeLoadBalancers", json!({"WithRs": 0})).await;
    assert_eq!(names(&d), ["alpha"]);
    let d = ok(
        &c,
        "DescribeLoadBalancers",
        json!({"BackendPrivateIps": ["10.9.9.9"]}),
    )
    .await;
    assert_eq!(names(&d), ["bravo"]);
    let r = c
        .clb("DescribeLoadBalancers", json!({"OrderBy": "Colour"}))
        .await;
    assert_eq!(r.error_code(), Some("InvalidParameterValue"));
}
