//! The cloud client (`clb_ingress::cloud`) over real HTTP on loopback: against clb-sim for
//! every wrapped action, every error class and the task-wait path; against a tiny scripted
//! responder for what the emulator does not expose (headers as sent, HTTP statuses).
//! Attempt counts are checked twice: the client's CallStats and the server's call log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use clb_ingress::cloud::clb::*;
use clb_ingress::cloud::sign::{self, SignRequest, SignedHeaders};
use clb_ingress::cloud::tag::{clb_resource_name, TagResourcesRequest, UnTagResourcesRequest};
use clb_ingress::cloud::{CloudClient, CloudConfig, CloudError, Credentials, RetryPolicy};
use clb_ingress_tests::clb_sim::{self, Faults, ScriptedFault, SimConfig, SimHandle};

const REGION: &str = "ap-guangzhou";

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Fast knobs: millisecond backoff and polls, so counts (not seconds) decide the tests.
fn fast_config(url: &str, creds: Credentials) -> clb_ingress::cloud::CloudConfigBuilder {
    CloudConfig::builder(creds, REGION)
        .endpoint(url)
        .retry(RetryPolicy {
            base: Duration::from_millis(2),
            max: Duration::from_millis(20),
            deadline: Duration::from_secs(10),
        })
        .task_poll_interval(Duration::from_millis(5))
        .task_deadline(Duration::from_secs(10))
        .rate_limit_per_sec(10_000)
}

async fn sim_with(cfg: SimConfig) -> (SimHandle, CloudClient) {
    init();
    let sim = clb_sim::spawn(cfg).await.unwrap();
    let c = sim.config().clone();
    let client = CloudClient::new(
        fast_config(&sim.url(), Credentials::new(c.secret_id, c.secret_key))
            .build()
            .unwrap(),
    )
    .unwrap();
    (sim, client)
}

async fn sim(task_ms: u64) -> (SimHandle, CloudClient) {
    sim_with(SimConfig {
        task_ms,
        ..SimConfig::default()
    })
    .await
}

fn sim_count(sim: &SimHandle, action: &str, code: &str) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.action == action && c.code == code)
        .count()
}

fn script(sim: &SimHandle, action: &str, code: &str, count: u32) {
    sim.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: action.into(),
            code: code.into(),
            count,
        }],
        ..Faults::default()
    });
}

fn ingress_tags() -> Vec<TagInfo> {
    vec![
        TagInfo::new("tke-createdBy-flag", "yes"),
        TagInfo::new("tke-clusterId", "cls-test"),
        TagInfo::new("tke-lb-ingress-uuid", "uid-1"),
    ]
}

async fn create_lb(client: &CloudClient, token: &str) -> LoadBalancer {
    let lbs = client
        .create_load_balancer(&CreateLoadBalancerRequest {
            load_balancer_type: "OPEN".into(),
            forward: Some(1),
            load_balancer_name: Some("demo".into()),
            tags: ingress_tags(),
            client_token: Some(token.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lbs.len(), 1);
    lbs.into_iter().next().unwrap()
}

async fn create_http_listener(client: &CloudClient, lb: &str, port: i64) -> String {
    let resp = client
        .create_listener(&CreateListenerRequest {
            load_balancer_id: lb.into(),
            ports: vec![port],
            protocol: "HTTP".into(),
            listener_names: vec!["TKE-DEDICATED-LISTENER".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.listener_ids.len(), 1);
    resp.listener_ids[0].clone()
}

/// Every action the client wraps, in the order a reconcile uses them, against the emulator.
#[tokio::test]
async fn every_wrapped_action_round_trips_against_the_emulator() {
    let (sim, client) = sim(20).await;

    let lb = create_lb(&client, "cls-test/uid-1").await;
    assert!(lb.is_ready(), "create returns only a usable CLB: {lb:?}");
    assert_eq!(lb.tag("tke-lb-ingress-uuid"), Some("uid-1"));
    assert!(!lb.load_balancer_vips.is_empty() || !lb.load_balancer_domain.is_empty());
    let id = lb.load_balancer_id.clone();

    let by_tag = client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new("tag:tke-lb-ingress-uuid", ["uid-1"])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_tag.total_count, Some(1));
    assert_eq!(by_tag.load_balancer_set[0].load_balancer_id, id);

    client
        .modify_load_balancer_attributes(&ModifyLoadBalancerAttributesRequest {
            load_balancer_id: id.clone(),
            load_balancer_name: Some("renamed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .set_load_balancer_security_groups(&SetLoadBalancerSecurityGroupsRequest {
            load_balancer_id: id.clone(),
            security_groups: vec!["sg-12345678".into()],
        })
        .await
        .unwrap();

    let l80 = create_http_listener(&client, &id, 80).await;
    let l8080 = create_http_listener(&client, &id, 8080).await;
    client
        .modify_listener(&ModifyListenerRequest {
            load_balancer_id: id.clone(),
            listener_id: l8080.clone(),
            listener_name: Some("other".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    let rules = client
        .create_rule(&CreateRuleRequest {
            load_balancer_id: id.clone(),
            listener_id: l80.clone(),
            rules: vec![
                RuleInput {
                    domain: Some("a.example.com".into()),
                    url: "/".into(),
                    ..Default::default()
                },
                RuleInput {
                    domain: Some("a.example.com".into()),
                    url: "/api".into(),
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(rules.location_ids.len(), 2);
    let (root, api) = (rules.location_ids[0].clone(), rules.location_ids[1].clone());
    client
        .modify_rule(&ModifyRuleRequest {
            load_balancer_id: id.clone(),
            listener_id: l80.clone(),
            location_id: api.clone(),
            scheduler: Some("LEAST_CONN".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .modify_domain_attributes(&ModifyDomainAttributesRequest {
            load_balancer_id: id.clone(),
            listener_id: l80.clone(),
            domain: "a.example.com".into(),
            http2: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();

    let target = |loc: &str, ip: &str| BatchTarget {
        listener_id: l80.clone(),
        location_id: Some(loc.into()),
        eni_ip: Some(ip.into()),
        port: Some(8080),
        weight: Some(10),
        ..Default::default()
    };
    client
        .batch_register_targets(&BatchTargetsRequest {
            load_balancer_id: id.clone(),
            targets: vec![target(&root, "10.0.0.1"), target(&api, "10.0.0.2")],
        })
        .await
        .unwrap();
    client
        .batch_modify_target_weight(&BatchModifyTargetWeightRequest {
            load_balancer_id: id.clone(),
            modify_list: vec![RsWeightRule {
                listener_id: l80.clone(),
                location_id: Some(api.clone()),
                targets: vec![Target {
                    eni_ip: Some("10.0.0.2".into()),
                    port: Some(8080),
                    weight: Some(50),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await
        .unwrap();

    let listeners = client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let http80 = listeners.listeners.iter().find(|l| l.port == 80).unwrap();
    assert_eq!(http80.protocol, "HTTP");
    assert_eq!(http80.rules.len(), 2);
    let api_rule = http80.rules.iter().find(|r| r.location_id == api).unwrap();
    assert_eq!(api_rule.scheduler, "LEAST_CONN");
    assert_eq!(api_rule.url, "/api");
    assert!(listeners
        .listeners
        .iter()
        .any(|l| l.listener_name == "other"));

    let targets = client
        .describe_targets(&DescribeTargetsRequest {
            load_balancer_id: id.clone(),
            listener_ids: vec![l80.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let bound: Vec<(String, i64, Option<i64>)> = targets.listeners[0]
        .rules
        .iter()
        .flat_map(|r| {
            r.targets.iter().map(move |t| {
                (
                    format!("{}:{}", r.location_id, t.private_ip_addresses.join(",")),
                    t.port,
                    t.weight,
                )
            })
        })
        .collect();
    assert!(
        bound.contains(&(format!("{api}:10.0.0.2"), 8080, Some(50))),
        "{bound:?}"
    );
    assert!(
        bound.contains(&(format!("{root}:10.0.0.1"), 8080, Some(10))),
        "{bound:?}"
    );

    client
        .batch_deregister_targets(&BatchTargetsRequest {
            load_balancer_id: id.clone(),
            targets: vec![target(&root, "10.0.0.1")],
        })
        .await
        .unwrap();
    client
        .delete_rule(&DeleteRuleRequest {
            load_balancer_id: id.clone(),
            listener_id: l80.clone(),
            location_ids: vec![api.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    client.delete_listener(&id, &l8080).await.unwrap();

    let resource = clb_resource_name(REGION, &id);
    client
        .untag_resources(&UnTagResourcesRequest {
            resource_list: vec![resource.clone()],
            tag_keys: vec!["tke-lb-ingress-uuid".into()],
        })
        .await
        .unwrap();
    client
        .tag_resources(&TagResourcesRequest {
            resource_list: vec![resource],
            tags: vec![TagInfo::new("tke-lb-ingress-uuid", "uid-2")],
        })
        .await
        .unwrap();
    let after = client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            load_balancer_ids: vec![id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let after = &after.load_balancer_set[0];
    assert_eq!(after.tag("tke-lb-ingress-uuid"), Some("uid-2"));
    assert_eq!(after.load_balancer_name, "renamed");
    assert_eq!(after.secure_groups, vec!["sg-12345678".to_string()]);

    client
        .delete_load_balancer_listeners(&id, std::slice::from_ref(&l80))
        .await
        .unwrap();
    let none = client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.listeners.is_empty());

    client
        .delete_load_balancer(&DeleteLoadBalancerRequest {
            load_balancer_ids: vec![id.clone()],
            force_delete: None,
        })
        .await
        .unwrap();
    assert!(sim.load_balancer(&id).is_none());

    // No faults: every attempt succeeded once, and the client's counts match the server's.
    let stats = client.stats().snapshot();
    assert_eq!(stats.len(), 21, "{stats:?}");
    for (action, counts) in &stats {
        assert_eq!(counts.attempts, counts.successes, "{action}");
        assert_eq!(counts.attempts as usize, sim.call_count(action), "{action}");
    }
    // Every async write waited on its task: at least one DescribeTaskStatus each.
    let async_writes = [
        "CreateLoadBalancer",
        "ModifyLoadBalancerAttributes",
        "CreateListener",
        "ModifyListener",
        "CreateRule",
        "ModifyRule",
        "ModifyDomainAttributes",
        "BatchModifyTargetWeight",
        "DeleteRule",
        "DeleteListener",
        "DeleteLoadBalancerListeners",
        "DeleteLoadBalancer",
    ];
    let writes: u64 = async_writes
        .iter()
        .map(|a| client.stats().attempts(a))
        .sum();
    assert!(client.stats().attempts("DescribeTaskStatus") >= writes);
}

#[tokio::test]
async fn describe_all_pages_through_every_tagged_clb_in_the_fewest_calls() {
    let (sim, client) = sim(0).await;
    for i in 0..250 {
        sim.insert_load_balancer("OPEN", &format!("lb{i}"), &[("tke-clusterId", "cls-paged")]);
    }
    for i in 0..7 {
        sim.insert_load_balancer(
            "OPEN",
            &format!("other{i}"),
            &[("tke-clusterId", "cls-other")],
        );
    }
    let all = client
        .describe_all_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new("tag:tke-clusterId", ["cls-paged"])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let mut ids: Vec<_> = all.iter().map(|l| l.load_balancer_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no CLB listed twice");
    assert!(all
        .iter()
        .all(|l| l.tag("tke-clusterId") == Some("cls-paged")));
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 3);
    assert_eq!(client.stats().attempts("DescribeLoadBalancers"), 3);
}

#[tokio::test]
async fn wrong_secret_key_is_a_terminal_auth_failure_after_one_attempt() {
    init();
    let sim = clb_sim::spawn(SimConfig::default()).await.unwrap();
    let client = CloudClient::new(
        fast_config(
            &sim.url(),
            Credentials::new(sim.config().secret_id.clone(), "not-the-key-XYZZY"),
        )
        .build()
        .unwrap(),
    )
    .unwrap();
    let err = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_auth_failure(), "{err}");
    assert!(!err.is_retryable());
    assert!(!err.request_id().unwrap_or_default().is_empty());
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 1);
    assert_eq!(client.stats().attempts("DescribeLoadBalancers"), 1);
    assert_eq!(client.stats().successes("DescribeLoadBalancers"), 0);
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains("XYZZY"), "secret leaked: {shown}");
    }
}

#[tokio::test]
async fn resource_in_operating_from_a_running_task_is_retried_until_it_succeeds() {
    // Long tasks: the first CreateListener's task keeps the CLB busy while the second is
    // sent (600 ms leaves a wide margin on a loaded machine).
    let (sim, client) = sim(600).await;
    let lb = create_lb(&client, "busy").await.load_balancer_id;
    // Raw call path: sends without waiting for the task.
    client
        .call(
            "clb",
            "2018-03-17",
            "CreateListener",
            &serde_json::json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await
        .unwrap();
    create_http_listener(&client, &lb, 81).await;
    let busy = sim_count(
        &sim,
        "CreateListener",
        "FailedOperation.ResourceInOperating",
    );
    assert!(busy >= 1, "the second create met the busy CLB");
    assert_eq!(sim_count(&sim, "CreateListener", "Ok"), 2);
    assert_eq!(client.stats().attempts("CreateListener") as usize, 2 + busy);
    assert_eq!(client.stats().successes("CreateListener"), 2);
}

#[tokio::test]
async fn scripted_resource_in_operating_costs_exactly_one_retry_each() {
    let (sim, client) = sim(0).await;
    let lb = create_lb(&client, "scripted").await.load_balancer_id;
    script(
        &sim,
        "CreateListener",
        "FailedOperation.ResourceInOperating",
        2,
    );
    create_http_listener(&client, &lb, 80).await;
    assert_eq!(sim.call_count("CreateListener"), 3);
    assert_eq!(client.stats().attempts("CreateListener"), 3);
    assert_eq!(client.stats().successes("CreateListener"), 1);
}

#[tokio::test]
async fn request_limit_exceeded_is_retried() {
    let (sim, client) = sim(0).await;
    script(
        &sim,
        "DescribeLoadBalancers",
        "RequestLimitExceeded.UinLimitExceeded",
        3,
    );
    client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap();
    assert_eq!(
        sim_count(
            &sim,
            "DescribeLoadBalancers",
            "RequestLimitExceeded.UinLimitExceeded"
        ),
        3
    );
    assert_eq!(sim_count(&sim, "DescribeLoadBalancers", "Ok"), 1);
    assert_eq!(client.stats().attempts("DescribeLoadBalancers"), 4);
}

#[tokio::test]
async fn server_rate_limit_is_absorbed_by_retries_when_client_limit_is_off() {
    let (sim, client) = sim_with(SimConfig {
        rate_limit: 5,
        ..SimConfig::default()
    })
    .await;
    let calls = (0..15).map(|_| {
        let c = client.clone();
        async move {
            c.describe_load_balancers(&DescribeLoadBalancersRequest::default())
                .await
                .map(|_| ())
        }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let limited = sim_count(&sim, "DescribeLoadBalancers", "RequestLimitExceeded");
    assert!(
        limited >= 1,
        "15 concurrent calls against 5/s were throttled"
    );
    assert_eq!(sim_count(&sim, "DescribeLoadBalancers", "Ok"), 15);
    assert_eq!(
        client.stats().attempts("DescribeLoadBalancers") as usize,
        15 + limited
    );
}

#[tokio::test]
async fn client_rate_limiter_keeps_a_burst_under_the_server_limit() {
    init();
    let sim = clb_sim::spawn(SimConfig {
        rate_limit: 5,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    // One permit below the server's limit leaves room for arrival jitter across its
    // fixed one-second windows.
    let client = CloudClient::new(
        fast_config(&sim.url(), Credentials::new(c.secret_id, c.secret_key))
            .rate_limit_per_sec(4)
            .build()
            .unwrap(),
    )
    .unwrap();
    let calls = (0..10).map(|_| {
        let c = client.clone();
        async move {
            c.describe_load_balancers(&DescribeLoadBalancersRequest::default())
                .await
                .map(|_| ())
        }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(
        sim_count(&sim, "DescribeLoadBalancers", "RequestLimitExceeded"),
        0
    );
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 10);
}

#[tokio::test]
async fn injected_internal_errors_are_retried() {
    let (sim, client) = sim(0).await;
    let lb = create_lb(&client, "ie").await.load_balancer_id;
    script(&sim, "DescribeListeners", "InternalError", 2);
    client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: lb.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sim_count(&sim, "DescribeListeners", "InternalError"), 2);
    assert_eq!(client.stats().attempts("DescribeListeners"), 3);

    // Random faults (InternalError and cut connections) at a high rate: every call still
    // succeeds, and the client counted exactly what the server saw.
    sim.set_faults(Faults {
        internal_error_rate: 0.3,
        drop_rate: 0.2,
        actions: vec!["DescribeTargets".into()],
        ..Faults::default()
    });
    for _ in 0..20 {
        client
            .describe_targets(&DescribeTargetsRequest {
                load_balancer_id: lb.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let stats = client.stats().get("DescribeTargets");
    assert_eq!(stats.successes, 20);
    assert_eq!(stats.attempts as usize, sim.call_count("DescribeTargets"));
    assert!(stats.attempts > 20, "faults at 50% must have cost retries");
}

#[tokio::test]
async fn terminal_validation_errors_are_not_retried() {
    let (sim, client) = sim(0).await;
    let lb = create_lb(&client, "bad").await.load_balancer_id;
    let err = client
        .create_listener(&CreateListenerRequest {
            load_balancer_id: lb,
            ports: vec![70000],
            protocol: "HTTP".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.code().unwrap().starts_with("InvalidParameter"), "{err}");
    assert_eq!(sim.call_count("CreateListener"), 1);
    assert_eq!(client.stats().attempts("CreateListener"), 1);

    let gone = client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: "lb-doesnotexist".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert_eq!(sim.call_count("DescribeListeners"), 1);
}

#[tokio::test]
async fn endless_throttling_ends_in_deadline_exceeded() {
    init();
    let sim = clb_sim::spawn(SimConfig::default()).await.unwrap();
    let c = sim.config().clone();
    let client = CloudClient::new(
        fast_config(&sim.url(), Credentials::new(c.secret_id, c.secret_key))
            .retry(RetryPolicy {
                base: Duration::from_millis(5),
                max: Duration::from_millis(20),
                deadline: Duration::from_millis(300),
            })
            .build()
            .unwrap(),
    )
    .unwrap();
    script(
        &sim,
        "DescribeLoadBalancers",
        "RequestLimitExceeded",
        10_000,
    );
    let err = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    let CloudError::DeadlineExceeded { attempts, last, .. } = &err else {
        panic!("expected DeadlineExceeded, got {err}");
    };
    assert_eq!(last.code(), Some("RequestLimitExceeded"));
    assert_eq!(*attempts as usize, sim.call_count("DescribeLoadBalancers"));
    assert_eq!(
        *attempts as u64,
        client.stats().attempts("DescribeLoadBalancers")
    );
    assert!(*attempts > 2 && *attempts < 200, "{attempts}");
}

#[tokio::test]
async fn task_wait_polls_until_done_and_times_out_on_a_long_task() {
    let (sim, client) = sim(300).await;
    let lb = create_lb(&client, "wait").await.load_balancer_id;
    sim.clear_calls();
    client.stats().reset();
    let l = create_http_listener(&client, &lb, 80).await;
    // The write returned only after its task finished: the listener is there, and the
    // task was polled while running (5 ms polls over a 300 ms task).
    assert!(sim
        .load_balancer(&lb)
        .unwrap()
        .listeners
        .iter()
        .any(|x| x.id == l));
    assert!(sim_count(&sim, "DescribeTaskStatus", "Ok") >= 2);
    assert_eq!(
        client.stats().attempts("DescribeTaskStatus") as usize,
        sim.call_count("DescribeTaskStatus")
    );

    // A task that outlives the wait deadline.
    let c = sim.config().clone();
    let impatient = CloudClient::new(
        fast_config(&sim.url(), Credentials::new(c.secret_id, c.secret_key))
            .task_deadline(Duration::from_millis(20))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = impatient
        .modify_listener(&ModifyListenerRequest {
            load_balancer_id: lb.clone(),
            listener_id: l.clone(),
            listener_name: Some("slow".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::TaskTimeout { .. }), "{err}");

    // An unknown task id is an error, not an endless wait.
    let unknown = client.wait_task("no-such-task").await.unwrap_err();
    assert!(!unknown.is_retryable(), "{unknown}");
}

// ------------------------------------------------------------ scripted responder

/// Headers and body of each request the responder received.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Responder {
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: Seen,
}

async fn respond(
    State(r): State<Responder>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, HeaderMap, String) {
    r.seen.lock().unwrap().push((headers, body.to_vec()));
    let (status, body) = r
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, r#"{"Response":{"RequestId":"r-default"}}"#.into()));
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::from_u16(status).unwrap(), h, body)
}

async fn responder(answers: Vec<(u16, &str)>) -> (Responder, String) {
    init();
    let r = Responder::default();
    r.answers
        .lock()
        .unwrap()
        .extend(answers.into_iter().map(|(s, b)| (s, b.to_string())));
    let app = Router::new()
        .route("/", post(respond))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (r, url)
}

#[tokio::test]
async fn requests_carry_token_version_region_and_a_signature_the_server_can_recompute() {
    let (r, url) = responder(vec![]).await;
    let client = CloudClient::new(
        fast_config(
            &url,
            Credentials::new("AKIDtest", "the-key").with_token("sess-token"),
        )
        .build()
        .unwrap(),
    )
    .unwrap();
    client
        .call(
            "tag",
            "2018-08-13",
            "TagResources",
            &serde_json::json!({"ResourceList": ["x"]}),
        )
        .await
        .unwrap();
    let seen = r.seen.lock().unwrap();
    let (h, body) = &seen[0];
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get("content-type"), "application/json");
    assert_eq!(get("x-tc-action"), "TagResources");
    assert_eq!(get("x-tc-version"), "2018-08-13");
    assert_eq!(get("x-tc-region"), REGION);
    assert_eq!(get("x-tc-token"), "sess-token");
    assert!(get("user-agent").starts_with("clb-ingress/"));
    let timestamp: i64 = get("x-tc-timestamp").parse().unwrap();
    let expected = sign::authorization(&SignRequest {
        secret_id: "AKIDtest",
        secret_key: "the-key",
        service: "tag",
        host: &get("host"),
        content_type: "application/json",
        action: "TagResources",
        timestamp,
        payload: body,
        signed_headers: SignedHeaders::ContentTypeHost,
    });
    assert_eq!(get("authorization"), expected);
    assert!(
        get("authorization").contains(&format!("/{}/tag/tc3_request", sign::utc_date(timestamp)))
    );
}

#[tokio::test]
async fn gateway_errors_are_retried_and_client_errors_are_not() {
    let (r, url) = responder(vec![
        (503, "unavailable"),
        (502, "bad gateway"),
        (
            200,
            r#"{"Response":{"Error":{"Code":"ServiceUnavailable","Message":"x"},"RequestId":"a"}}"#,
        ),
        (
            200,
            r#"{"Response":{"TotalCount":0,"LoadBalancerSet":null,"RequestId":"b"}}"#,
        ),
        (404, "not here"),
    ])
    .await;
    let client = CloudClient::new(
        fast_config(&url, Credentials::new("AKID", "k"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let resp = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap();
    assert!(resp.load_balancer_set.is_empty());
    assert_eq!(client.stats().attempts("DescribeLoadBalancers"), 4);
    let err = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    assert!(
        seen[0].0.get("x-tc-token").is_none(),
        "no token without a session token"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_retried_timeout_until_the_deadline() {
    init();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let keep = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            keep.lock().unwrap().push(sock);
        }
    });
    let client = CloudClient::new(
        fast_config(&url, Credentials::new("AKID", "k"))
            .request_timeout(Duration::from_millis(50))
            .retry(RetryPolicy {
                base: Duration::from_millis(5),
                max: Duration::from_millis(10),
                deadline: Duration::from_millis(400),
            })
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    let CloudError::DeadlineExceeded { attempts, last, .. } = &err else {
        panic!("expected DeadlineExceeded, got {err}");
    };
    assert!(
        matches!(**last, CloudError::Network { timeout: true, .. }),
        "{last}"
    );
    assert!(*attempts >= 2, "timeouts are retried: {attempts}");
    assert_eq!(
        client.stats().attempts("DescribeLoadBalancers"),
        *attempts as u64
    );
    assert_eq!(client.stats().successes("DescribeLoadBalancers"), 0);
}

#[tokio::test]
async fn a_failed_later_page_fails_the_whole_list_instead_of_returning_part() {
    let lbs: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"LoadBalancerId":"lb-{i}","Status":1}}"#))
        .collect();
    let page1 = format!(
        r#"{{"Response":{{"TotalCount":150,"LoadBalancerSet":[{}],"RequestId":"p1"}}}}"#,
        lbs.join(",")
    );
    let page2 = r#"{"Response":{"Error":{"Code":"UnauthorizedOperation","Message":"no"},"RequestId":"p2"}}"#;
    let (r, url) = responder(vec![(200, page1.as_str()), (200, page2)]).await;
    let client = CloudClient::new(
        fast_config(&url, Credentials::new("AKID", "k"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = client
        .describe_all_load_balancers(&DescribeLoadBalancersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("UnauthorizedOperation"));
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let second: serde_json::Value = serde_json::from_slice(&seen[1].1).unwrap();
    assert_eq!(second["Offset"], 100);
    assert_eq!(second["Limit"], 100);
}

#[tokio::test]
async fn a_quick_task_costs_one_poll_and_a_create_costs_three_calls() {
    // Tasks finish at once; the first poll (one interval after the write) sees them done.
    let (sim, client) = sim(0).await;
    let lb = create_lb(&client, "budget").await.load_balancer_id;
    assert_eq!(sim.call_count("CreateLoadBalancer"), 1);
    assert_eq!(sim.call_count("DescribeTaskStatus"), 1);
    assert_eq!(sim.call_count("DescribeLoadBalancers"), 1);
    create_http_listener(&client, &lb, 80).await;
    assert_eq!(sim.call_count("CreateListener"), 1);
    assert_eq!(sim.call_count("DescribeTaskStatus"), 2);
    assert_eq!(client.stats().total_attempts() as usize, sim.calls().len());
    assert_eq!(client.stats().write_attempts(), 2);
}
