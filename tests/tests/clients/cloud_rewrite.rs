//! The typed redirect calls (`clb_ingress::cloud::rewrite`) against clb-sim over real HTTP:
//! ManualRewrite, DescribeRewrite, DeleteRewrite, AutoRewrite, and the API's refusal to
//! delete a rule or listener a redirect joins.

use std::time::Duration;

use clb_ingress::cloud::clb::*;
use clb_ingress::cloud::rewrite::*;
use clb_ingress::cloud::{CloudClient, CloudConfig, CloudError, Credentials};
use clb_ingress_tests::clb_sim::{self, SimConfig};

async fn client() -> (clb_sim::SimHandle, CloudClient) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = clb_sim::spawn(SimConfig {
        task_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    let client = CloudClient::new(
        CloudConfig::builder(Credentials::new(c.secret_id, c.secret_key), c.region)
            .endpoint(sim.url())
            .task_poll_interval(Duration::from_millis(2))
            .rate_limit_per_sec(10_000)
            .build()
            .unwrap(),
    )
    .unwrap();
    (sim, client)
}

fn api_code(e: &CloudError) -> String {
    match e {
        CloudError::Api { code, .. } => code.clone(),
        other => format!("{other}"),
    }
}

#[tokio::test]
async fn manual_redirects_are_described_guard_their_rules_and_are_deleted() {
    let (_sim, c) = client().await;
    let lb = c
        .create_load_balancer(&CreateLoadBalancerRequest {
            load_balancer_type: "OPEN".into(),
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .load_balancer_id
        .clone();
    let listener = |protocol: &str, port: i64| CreateListenerRequest {
        load_balancer_id: lb.clone(),
        ports: vec![port],
        protocol: protocol.into(),
        certificate: (protocol == "HTTPS").then(|| CertificateInput {
            cert_id: Some("cert-1".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let http = c
        .create_listener(&listener("HTTP", 80))
        .await
        .unwrap()
        .listener_ids[0]
        .clone();
    let https = c
        .create_listener(&listener("HTTPS", 443))
        .await
        .unwrap()
        .listener_ids[0]
        .clone();
    let rule = |l: &str| CreateRuleRequest {
        load_balancer_id: lb.clone(),
        listener_id: l.to_string(),
        rules: vec![RuleInput {
            domain: Some("a.example.com".into()),
            url: "/".into(),
            ..Default::default()
        }],
    };
    let src = c.create_rule(&rule(&http)).await.unwrap().location_ids[0].clone();
    let dst = c.create_rule(&rule(&https)).await.unwrap().location_ids[0].clone();

    let pair = RewriteRequest {
        load_balancer_id: lb.clone(),
        source_listener_id: http.clone(),
        target_listener_id: https.clone(),
        rewrite_infos: vec![RewriteLocationMap {
            source_location_id: src.clone(),
            target_location_id: dst.clone(),
            rewrite_code: Some(307),
            take_url: Some(true),
            source_domain: Some("a.example.com".into()),
        }],
    };
    c.manual_rewrite(&pair).await.unwrap();
    let described = c
        .describe_rewrite(&DescribeRewriteRequest {
            load_balancer_id: lb.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(described.rewrite_set.len(), 1);
    let w = &described.rewrite_set[0];
    assert_eq!(
        (w.location_id.as_str(), w.listener_id.as_str()),
        (src.as_str(), http.as_str())
    );
    let target = w.rewrite_target.as_ref().unwrap();
    assert_eq!(target.target_location_id, dst);
    assert_eq!(target.rewrite_code, Some(307));
    assert_eq!(target.rewrite_type, "Manual");

    let delete_rule = DeleteRuleRequest {
        load_balancer_id: lb.clone(),
        listener_id: https.clone(),
        location_ids: vec![dst.clone()],
        ..Default::default()
    };
    let refused = c.delete_rule(&delete_rule).await.unwrap_err();
    assert_eq!(api_code(&refused), "FailedOperation");
    let refused = c
        .delete_load_balancer_listeners(&lb, std::slice::from_ref(&http))
        .await
        .unwrap_err();
    assert_eq!(api_code(&refused), "FailedOperation");

    c.delete_rewrite(&pair).await.unwrap();
    let again = c.delete_rewrite(&pair).await.unwrap_err();
    assert_eq!(api_code(&again), "InvalidParameter.SomeRewriteNotFound");
    c.delete_rule(&delete_rule).await.unwrap();

    // AutoRewrite mirrors the HTTPS rules onto HTTP:80 and redirects them.
    let dst = c.create_rule(&rule(&https)).await.unwrap().location_ids[0].clone();
    c.delete_rule(&DeleteRuleRequest {
        load_balancer_id: lb.clone(),
        listener_id: http.clone(),
        location_ids: vec![src],
        ..Default::default()
    })
    .await
    .unwrap();
    c.auto_rewrite(&AutoRewriteRequest {
        load_balancer_id: lb.clone(),
        listener_id: https.clone(),
        domains: vec!["a.example.com".into()],
        rewrite_codes: vec![302],
        take_urls: vec![false],
    })
    .await
    .unwrap();
    let auto = c
        .describe_rewrite(&DescribeRewriteRequest {
            load_balancer_id: lb.clone(),
            source_listener_ids: vec![http.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(auto.rewrite_set.len(), 1);
    let target = auto.rewrite_set[0].rewrite_target.as_ref().unwrap();
    assert_eq!(
        (
            target.rewrite_type.as_str(),
            target.rewrite_code,
            target.target_location_id.as_str()
        ),
        ("Auto", Some(302), dst.as_str())
    );
    assert_eq!(auto.rewrite_set[0].url, "/");
}
