//! The function's own CLB/Tag client (`clb_ingress::cloud`) against clb-sim: typed requests
//! and responses agree with the emulator, and the client's retries meet the emulator's
//! throttling, busy CLBs and wrong keys the way the real API would make them meet.

use std::time::Duration;

use clb_ingress::cloud::clb::{
    BatchTarget, BatchTargetsRequest, CreateListenerRequest, CreateLoadBalancerRequest,
    CreateRuleRequest, DescribeListenersRequest, DescribeLoadBalancersRequest,
    DescribeTargetsRequest, Filter, RuleInput, TagInfo,
};
use clb_ingress::cloud::tag::{clb_resource_name, TagResourcesRequest, UnTagResourcesRequest};
use clb_ingress::cloud::{CloudClient, CloudConfig, Credentials, RetryPolicy};
use clb_ingress_tests::clb_sim::{spawn, Faults, ScriptedFault, SimConfig, SimHandle};

fn client(sim: &SimHandle, key: &str) -> CloudClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = sim.config();
    let config = CloudConfig::builder(
        Credentials::new(cfg.secret_id.clone(), key),
        cfg.region.clone(),
    )
    .endpoint(sim.url())
    .retry(RetryPolicy {
        base: Duration::from_millis(2),
        max: Duration::from_millis(10),
        deadline: Duration::from_secs(10),
    })
    .task_poll_interval(Duration::from_millis(2))
    .task_deadline(Duration::from_secs(10))
    .build()
    .expect("config");
    CloudClient::new(config).expect("client")
}

#[tokio::test]
async fn the_function_client_builds_a_clb_end_to_end_on_the_sim() {
    let sim = spawn(SimConfig {
        task_ms: 10,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = client(&sim, &sim.config().secret_key.clone());
    let lbs = c
        .create_load_balancer(&CreateLoadBalancerRequest {
            load_balancer_type: "OPEN".into(),
            tags: vec![
                TagInfo::new("tke-clusterId", "cls-1"),
                TagInfo::new("tke-lb-ingress-uuid", "uid-1"),
            ],
            client_token: Some("cls-1/uid-1".into()),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(lbs.len(), 1);
    let lb = lbs[0].load_balancer_id.clone();
    assert!(lbs[0].is_ready());
    assert_eq!(lbs[0].tag("tke-lb-ingress-uuid"), Some("uid-1"));
    assert_eq!(lbs[0].load_balancer_vips.len(), 1);

    let found = c
        .describe_all_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new(
                "tag:tke-lb-ingress-uuid",
                vec!["uid-1".to_string()],
            )],
            ..Default::default()
        })
        .await
        .expect("describe");
    assert_eq!(
        found
            .iter()
            .map(|l| l.load_balancer_id.clone())
            .collect::<Vec<_>>(),
        vec![lb.clone()]
    );

    let l = c
        .create_listener(&CreateListenerRequest {
            load_balancer_id: lb.clone(),
            ports: vec![80],
            protocol: "HTTP".into(),
            listener_names: vec!["TKE-DEDICATED-LISTENER".into()],
            ..Default::default()
        })
        .await
        .expect("listener");
    c.wait_task(&l.request_id).await.expect("listener task");
    let listener = l.listener_ids[0].clone();
    let r = c
        .create_rule(&CreateRuleRequest {
            load_balancer_id: lb.clone(),
            listener_id: listener.clone(),
            rules: vec![RuleInput {
                url: "/".into(),
                domain: Some("a.example.com".into()),
                ..Default::default()
            }],
        })
        .await
        .expect("rule");
    c.wait_task(&r.request_id).await.expect("rule task");
    let loc = r.location_ids[0].clone();
    let b = c
        .batch_register_targets(&BatchTargetsRequest {
            load_balancer_id: lb.clone(),
            targets: vec![BatchTarget {
                listener_id: listener.clone(),
                port: Some(30080),
                instance_id: Some("ins-abc12345".into()),
                weight: Some(10),
                location_id: Some(loc.clone()),
                ..Default::default()
            }],
        })
        .await
        .expect("register");
    assert!(b.fail_listener_id_set.is_empty());

    let ls = c
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: lb.clone(),
            ..Default::default()
        })
        .await
        .expect("listeners");
    assert_eq!(ls.listeners.len(), 1);
    assert_eq!(ls.listeners[0].listener_name, "TKE-DEDICATED-LISTENER");
    assert_eq!(ls.listeners[0].rules[0].location_id, loc);
    let ts = c
        .describe_targets(&DescribeTargetsRequest {
            load_balancer_id: lb.clone(),
            ..Default::default()
        })
        .await
        .expect("targets");
    let t = &ts.listeners[0].rules[0].targets;
    assert_eq!(t.len(), 1);
    assert_eq!(
        (
            t[0].kind.as_str(),
            t[0].instance_id.as_str(),
            t[0].port,
            t[0].weight
        ),
        ("CVM", "ins-abc12345", 30080, Some(10))
    );

    let res = clb_resource_name(&sim.config().region, &lb);
    c.tag_resources(&TagResourcesRequest {
        resource_list: vec![res.clone()],
        tags: vec![TagInfo::new("extra", "1")],
    })
    .await
    .expect("tag");
    c.untag_resources(&UnTagResourcesRequest {
        resource_list: vec![res],
        tag_keys: vec!["tke-clusterId".into()],
    })
    .await
    .expect("untag");
    let tags = sim.load_balancer(&lb).unwrap().tags;
    assert_eq!(
        tags,
        vec![
            ("tke-lb-ingress-uuid".to_string(), "uid-1".to_string()),
            ("extra".to_string(), "1".to_string())
        ]
    );
    assert!(
        sim.calls().iter().all(|call| call.ok()),
        "{:?}",
        sim.calls()
    );
}

#[tokio::test]
async fn throttling_and_busy_answers_are_retried_and_counted_on_both_sides() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = client(&sim, &sim.config().secret_key.clone());
    sim.set_faults(Faults {
        scripted: vec![
            ScriptedFault {
                action: "DescribeLoadBalancers".into(),
                code: "RequestLimitExceeded".into(),
                count: 2,
            },
            ScriptedFault {
                action: "DescribeLoadBalancers".into(),
                code: "FailedOperation.ResourceInOperating".into(),
                count: 1,
            },
        ],
        ..Faults::default()
    });
    let r = c
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .expect("retried");
    assert_eq!(r.total_count, Some(0));
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 4);
    assert_eq!(c.stats().attempts("DescribeLoadBalancers"), 4);
    assert_eq!(c.stats().successes("DescribeLoadBalancers"), 1);
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure_and_not_retried() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = client(&sim, "wrong-key");
    let e = c
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AuthFailure.SignatureFailure"));
    assert!(e.is_auth_failure());
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 1);
}
