//! clb-sim under stress: per-action rate limits, seeded faults by flag and by admin route,
//! scripted failures, dropped connections, garbage input, and the binary's command line.

use clb_ingress_tests::clb_sim::client::{RawRequest, SimClient};
use clb_ingress_tests::clb_sim::{spawn, Faults, ScriptedFault, SimConfig};
use proptest::prelude::*;
use serde_json::json;

#[tokio::test]
async fn each_action_is_rate_limited_on_its_own() {
    let sim = spawn(SimConfig {
        rate_limit: 3,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = SimClient::new(&sim);
    let mut codes = Vec::new();
    for _ in 0..20 {
        let r = c.clb("DescribeLoadBalancers", json!({})).await;
        codes.push(r.error_code().unwrap_or("Ok").to_string());
    }
    let limited = codes
        .iter()
        .filter(|c| *c == "RequestLimitExceeded")
        .count();
    // However slow the machine, 20 calls cannot all fit in 3-per-second windows quickly
    // enough to escape the limit entirely; and the first 3 always pass.
    assert!(limited >= 1, "{codes:?}");
    assert_eq!(&codes[..3], ["Ok", "Ok", "Ok"]);
    assert!(
        codes
            .iter()
            .all(|c| c == "Ok" || c == "RequestLimitExceeded"),
        "{codes:?}"
    );
    // Another action has its own budget within the same second.
    let r = c.clb("DescribeTaskStatus", json!({"TaskId": "x"})).await;
    assert_ne!(r.error_code(), Some("RequestLimitExceeded"));
}

#[tokio::test]
async fn fault_rate_flag_injects_internal_errors_and_drops_deterministically_by_seed() {
    async fn run(seed: u64) -> Vec<String> {
        let sim = spawn(SimConfig {
            fault_rate: 0.6,
            seed,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        // Latency faults would only slow this test down; keep errors and drops.
        let mut f = sim.faults();
        f.latency_rate = 0.0;
        sim.set_faults(f);
        let c = SimClient::new(&sim);
        for _ in 0..30 {
            let _ = c
                .send(RawRequest::clb(
                    "CreateLoadBalancer",
                    &json!({"LoadBalancerType": "OPEN"}),
                ))
                .await;
        }
        let created = sim.load_balancers().len();
        let codes: Vec<String> = sim.calls().iter().map(|c| c.code.clone()).collect();
        assert_eq!(
            codes.iter().filter(|c| *c == "Ok").count(),
            created,
            "faulted calls change nothing"
        );
        codes
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await, "the same seed gives the same faults");
    assert!(a.iter().any(|c| c == "InternalError"), "{a:?}");
    assert!(a.iter().any(|c| c == "Dropped"), "{a:?}");
    assert!(a.iter().any(|c| c == "Ok"), "{a:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_for_the_client() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let c = SimClient::new(&sim);
    let r = c
        .send(RawRequest::clb("DescribeLoadBalancers", &json!({})))
        .await;
    assert!(
        r.is_err(),
        "expected a transport error, got {:?}",
        r.map(|r| r.body)
    );
    assert_eq!(sim.calls()[0].code, "Dropped");
}

#[tokio::test]
async fn faults_set_over_the_admin_route_apply_to_the_named_actions_only() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = SimClient::new(&sim);
    let (status, _) = c
        .admin_post(
            "faults",
            &json!({"internal_error_rate": 1.0, "actions": ["CreateListener"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(c.admin_get("faults").await["internal_error_rate"], 1.0);
    let r = c
        .clb("CreateLoadBalancer", json!({"LoadBalancerType": "OPEN"}))
        .await;
    assert_eq!(r.error_code(), None);
    let lb = r.response()["LoadBalancerIds"][0].clone();
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("InternalError"));
    assert!(sim.load_balancers()[0].listeners.is_empty());
    let (status, _) = c.admin_post("faults", &json!({})).await;
    assert_eq!(status, 200, "an empty object clears the faults");
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), None);
    let (status, body) = c.admin_post("faults", &json!({"drop_rate": 2.0})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = c.admin_post("faults", &json!({"bogus": 1})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn scripted_faults_fail_exactly_the_next_n_calls_of_an_action() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = SimClient::new(&sim);
    sim.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "DescribeLoadBalancers".into(),
            code: "FailedOperation.ResourceInOperating".into(),
            count: 2,
        }],
        ..Faults::default()
    });
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = c.clb("DescribeLoadBalancers", json!({})).await;
        codes.push(r.error_code().unwrap_or("Ok").to_string());
    }
    assert_eq!(
        codes,
        [
            "FailedOperation.ResourceInOperating",
            "FailedOperation.ResourceInOperating",
            "Ok",
            "Ok"
        ]
    );
}

#[tokio::test]
async fn added_latency_still_answers_correctly() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    sim.set_faults(Faults {
        latency_rate: 1.0,
        latency_ms: 30,
        ..Faults::default()
    });
    let c = SimClient::new(&sim);
    let r = c.clb("DescribeLoadBalancers", json!({})).await;
    assert_eq!(r.error_code(), None);
    assert_eq!(sim.calls()[0].code, "Ok");
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-zA-Z0-9:/*~._-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("LoadBalancerId".to_string()),
                    Just("ListenerId".to_string()),
                    Just("Ports".to_string()),
                    Just("Protocol".to_string()),
                    Just("Rules".to_string()),
                    Just("Targets".to_string()),
                    Just("Domain".to_string()),
                    Just("Url".to_string()),
                    Just("Filters".to_string()),
                    Just("Limit".to_string()),
                    Just("Tags".to_string()),
                    Just("LoadBalancerType".to_string()),
                    Just("LocationIds".to_string()),
                    "[A-Za-z]{1,8}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    #[test]
    fn random_bodies_always_get_a_200_envelope(
        action in prop::sample::select(clb_ingress_tests::clb_sim::CLB_ACTIONS),
        body in any_json(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        use_raw in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let sim = spawn(SimConfig::default()).await.unwrap();
            let c = SimClient::new(&sim);
            // Something to aim at, so that ids in bodies sometimes exist.
            let lb = sim.insert_load_balancer("OPEN", "x", &[]);
            let mut body = body;
            if let Some(m) = body.as_object_mut() {
                if m.contains_key("LoadBalancerId") {
                    m.insert("LoadBalancerId".into(), json!(lb));
                }
            }
            let mut req = RawRequest::clb(action, &body);
            if use_raw {
                req.body = raw.clone();
            }
            let r = c.send(req).await.expect("the server answered");
            prop_assert_eq!(r.status, 200);
            prop_assert_eq!(r.content_type.as_str(), "application/json");
            prop_assert!(r.response()["RequestId"].is_string(), "{}", r.body);
            // The server is still alive and consistent afterwards.
            let after = c.clb("DescribeLoadBalancers", json!({})).await;
            prop_assert_eq!(after.error_code(), None);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn the_binary_prints_its_address_and_serves_the_admin_state() {
    let bin = env!("CARGO_BIN_EXE_clb-sim");
    let mut child = tokio::process::Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--secret-id",
            "AKIDBIN",
            "--secret-key",
            "bin-key",
        ])
        .args([
            "--region",
            "ap-shanghai",
            "--task-ms",
            "5",
            "--rate-limit",
            "0",
            "--fault-rate",
            "0",
            "--seed",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("clb-sim listening on ")
        .expect(&line)
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state: serde_json::Value = reqwest::get(format!("{url}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["LoadBalancers"], json!([]));
    child.kill().await.unwrap();
}

#[tokio::test]
async fn an_injected_task_failure_answers_success_then_reports_status_1_and_undoes_the_change() {
    use clb_ingress_tests::clb_sim::TaskFailure;
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = SimClient::new(&sim);
    let r = c
        .clb("CreateLoadBalancer", json!({"LoadBalancerType": "OPEN"}))
        .await;
    let lb = r.response()["LoadBalancerIds"][0].clone();
    sim.set_faults(Faults {
        task_failures: vec![
            TaskFailure {
                action: "CreateListener".into(),
                count: 1,
            },
            TaskFailure {
                action: "CreateLoadBalancer".into(),
                count: 1,
            },
        ],
        ..Faults::default()
    });
    // A refused call does not use up the failure.
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
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), None, "accepted");
    assert!(r.response()["ListenerIds"][0]
        .as_str()
        .unwrap()
        .starts_with("lbl-"));
    let st = c
        .clb(
            "DescribeTaskStatus",
            json!({"TaskId": r.response()["RequestId"]}),
        )
        .await;
    assert_eq!(st.response()["Status"], 1);
    assert!(
        sim.load_balancers()[0].listeners.is_empty(),
        "the change was undone"
    );
    // The next one succeeds.
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    let st = c
        .clb(
            "DescribeTaskStatus",
            json!({"TaskId": r.response()["RequestId"]}),
        )
        .await;
    assert_eq!(st.response()["Status"], 0);
    assert_eq!(sim.load_balancers()[0].listeners.len(), 1);
    // A failed create leaves no CLB behind and frees its ClientToken.
    let p = json!({"LoadBalancerType": "OPEN", "ClientToken": "t1"});
    let failed = c.clb("CreateLoadBalancer", p.clone()).await;
    let st = c
        .clb(
            "DescribeTaskStatus",
            json!({"TaskId": failed.response()["RequestId"]}),
        )
        .await;
    assert_eq!(st.response()["Status"], 1);
    assert_eq!(sim.load_balancers().len(), 1);
    let again = c.clb("CreateLoadBalancer", p).await;
    assert_ne!(
        again.response()["LoadBalancerIds"],
        failed.response()["LoadBalancerIds"]
    );
    assert_eq!(sim.load_balancers().len(), 2);
}

#[tokio::test]
async fn rate_limit_and_task_length_can_change_mid_test() {
    let sim = spawn(SimConfig::default()).await.unwrap();
    let c = SimClient::new(&sim);
    let r = c
        .clb("CreateLoadBalancer", json!({"LoadBalancerType": "OPEN"}))
        .await;
    let lb = r.response()["LoadBalancerIds"][0].clone();
    sim.set_task_ms(60_000);
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), None);
    let r = c
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb, "Ports": [81], "Protocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("FailedOperation.ResourceInOperating"));
    sim.set_rate_limit(1);
    let codes: Vec<String> = futures::future::join_all(
        (0..3).map(|_| c.clb("DescribeTaskStatus", json!({"TaskId": "x"}))),
    )
    .await
    .iter()
    .map(|r| r.error_code().unwrap_or("Ok").to_string())
    .collect();
    assert!(
        codes
            .iter()
            .filter(|c| *c == "RequestLimitExceeded")
            .count()
            >= 1,
        "{codes:?}"
    );
    sim.set_rate_limit(0);
    let r = c.clb("DescribeLoadBalancers", json!({})).await;
    assert_eq!(r.error_code(), None);
}
