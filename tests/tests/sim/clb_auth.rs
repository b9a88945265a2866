//! clb-sim's front door: TC3 signatures, timestamps, credentials, versions, actions, bodies,
//! and the exact envelope the SDK relies on.

use clb_ingress_tests::clb_sim::client::{RawRequest, SimClient};
use clb_ingress_tests::clb_sim::{spawn, SimConfig, SimHandle};
use serde_json::json;

async fn sim() -> (SimHandle, SimClient) {
    let sim = spawn(SimConfig::default()).await.expect("spawn");
    let client = SimClient::new(&sim);
    (sim, client)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_correctly_signed_call_gets_200_exact_json_content_type_and_a_request_id() {
    let (_sim, c) = sim().await;
    let r = c.clb("DescribeLoadBalancers", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.error_code(), None, "{}", r.body);
    assert_eq!(r.response()["TotalCount"], 0);
    assert!(r.response()["RequestId"]
        .as_str()
        .is_some_and(|s| s.len() == 36));
}

#[tokio::test]
async fn signing_x_tc_action_too_is_accepted() {
    let (_sim, c) = sim().await;
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.sign_action = true;
    let r = c.send(req).await.unwrap();
    assert_eq!(r.error_code(), None, "{}", r.body);
}

#[tokio::test]
async fn a_wrong_key_gets_signature_failure_and_changes_nothing() {
    let (sim, c) = sim().await;
    let mut req = RawRequest::clb("CreateLoadBalancer", &json!({"LoadBalancerType": "OPEN"}));
    req.secret_key = Some("not-the-key".into());
    let r = c.send(req).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.error_code(), Some("AuthFailure.SignatureFailure"));
    assert!(sim.load_balancers().is_empty());
    assert_eq!(sim.calls()[0].code, "AuthFailure.SignatureFailure");
}

#[tokio::test]
async fn a_tampered_body_or_date_gets_signature_failure() {
    let (sim, c) = sim().await;
    // Signed over one body, sent with another: the sim must hash what it received.
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.tamper_body = Some(br#"{"Limit": 5}"#.to_vec());
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("AuthFailure.SignatureFailure")
    );
    let mut req = RawRequest::clb("CreateLoadBalancer", &json!({"LoadBalancerType": "OPEN"}));
    req.tamper_body = Some(br#"{"LoadBalancerType": "INTERNAL"}"#.to_vec());
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("AuthFailure.SignatureFailure")
    );
    assert!(sim.load_balancers().is_empty());
}

#[tokio::test]
async fn a_timestamp_more_than_five_minutes_off_gets_signature_expire() {
    let (_sim, c) = sim().await;
    for skew in [-301, 301, -3600] {
        let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
        req.timestamp = Some(now() + skew);
        let r = c.send(req).await.unwrap();
        assert_eq!(
            r.error_code(),
            Some("AuthFailure.SignatureExpire"),
            "skew {skew}"
        );
    }
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.timestamp = Some(now() - 240);
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        None,
        "4 minutes is within the window"
    );
}

#[tokio::test]
async fn an_unknown_secret_id_gets_secret_id_not_found() {
    let (_sim, c) = sim().await;
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.secret_id = Some("AKIDSOMEONEELSE".into());
    let r = c.send(req).await.unwrap();
    assert_eq!(r.error_code(), Some("AuthFailure.SecretIdNotFound"));
}

#[tokio::test]
async fn a_wrong_version_gets_no_such_version() {
    let (_sim, c) = sim().await;
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.version = "2017-01-01".into();
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("NoSuchVersion")
    );
    // The Tag version on the CLB service is wrong too.
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.version = "2018-08-13".into();
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("NoSuchVersion")
    );
}

#[tokio::test]
async fn an_unknown_action_gets_invalid_action_per_service() {
    let (_sim, c) = sim().await;
    let r = c.clb("DescribeUnicorns", json!({})).await;
    assert_eq!(r.error_code(), Some("InvalidAction"));
    // A Tag action sent to the CLB service is unknown there, and vice versa.
    assert_eq!(
        c.clb("TagResources", json!({})).await.error_code(),
        Some("InvalidAction")
    );
    assert_eq!(
        c.tag("DescribeLoadBalancers", json!({})).await.error_code(),
        Some("InvalidAction")
    );
}

#[tokio::test]
async fn malformed_or_non_object_bodies_get_invalid_parameter() {
    let (sim, c) = sim().await;
    for body in [&b"{not json"[..], b"[1,2]", b"\"x\"", b"", b"\xff\xfe"] {
        let mut req = RawRequest::clb("CreateLoadBalancer", &json!({}));
        req.body = body.to_vec();
        let r = c.send(req).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.error_code(), Some("InvalidParameter"), "body {body:?}");
    }
    assert!(sim.load_balancers().is_empty());
}

#[tokio::test]
async fn a_missing_or_foreign_region_is_refused_for_clb() {
    let (_sim, c) = sim().await;
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.region = Some(String::new());
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("MissingParameter")
    );
    let mut req = RawRequest::clb("DescribeLoadBalancers", &json!({}));
    req.region = Some("ap-beijing".into());
    assert_eq!(
        c.send(req).await.unwrap().error_code(),
        Some("UnsupportedRegion")
    );
}

#[tokio::test]
async fn requests_without_authorization_or_with_get_get_envelope_errors_not_5xx() {
    let (sim, _c) = sim().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/", sim.url()))
        .header("X-TC-Action", "DescribeLoadBalancers")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["Response"]["Error"]["Code"],
        "AuthFailure.InvalidAuthorization"
    );
    let r = http.get(format!("{}/", sim.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["Response"]["Error"]["Code"], "UnsupportedProtocol");
    let r = http
        .post(format!("{}/", sim.url()))
        .header("Authorization", "TC3-HMAC-SHA256 Credential=garbage")
        .body("{}")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["Response"]["Error"]["Code"],
        "AuthFailure.InvalidAuthorization"
    );
}

#[tokio::test]
async fn unknown_parameters_get_unknown_parameter() {
    let (sim, c) = sim().await;
    let r = c
        .clb(
            "CreateLoadBalancer",
            json!({"LoadBalancerType": "OPEN", "Colour": "blue"}),
        )
        .await;
    assert_eq!(r.error_code(), Some("UnknownParameter"));
    assert!(r.response()["Error"]["Message"]
        .as_str()
        .unwrap()
        .contains("Colour"));
    let r = c
        .clb(
            "DescribeLoadBalancers",
            json!({"Filters": [{"Name": "tag-key", "Values": ["a"], "Extra": 1}]}),
        )
        .await;
    assert_eq!(r.error_code(), Some("UnknownParameter"));
    assert!(sim.load_balancers().is_empty());
}

#[tokio::test]
async fn every_call_is_logged_with_action_service_and_code() {
    let (sim, c) = sim().await;
    c.clb("DescribeLoadBalancers", json!({})).await;
    c.clb("DescribeListeners", json!({"LoadBalancerId": "lb-nope"}))
        .await;
    c.tag("GetResources", json!({})).await;
    let calls = sim.calls();
    let got: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|c| (c.action.as_str(), c.service.as_str(), c.code.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("DescribeLoadBalancers", "clb", "Ok"),
            ("DescribeListeners", "clb", "InvalidParameter.LBIdNotFound"),
            ("GetResources", "tag", "Ok"),
        ]
    );
    assert_eq!(calls[1].lb_ids, vec!["lb-nope".to_string()]);
    let over_http = c.admin_get("calls").await;
    assert_eq!(over_http.as_array().unwrap().len(), 3);
    assert_eq!(over_http[1]["code"], "InvalidParameter.LBIdNotFound");
}
