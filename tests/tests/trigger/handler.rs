//! handle(): decoded changes resolved to Ingresses through the engine's lookup, reconciled
//! with bounded concurrency inside the deadline, reported; HTTP envelopes checked first.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{cls_event, fixture, function_url_event, summary, RecordingEngine};
use clb_ingress::handler::{handle, Engine, HandleOptions, WebhookToken};
use serde_json::{json, Value};
use tokio::time::Instant;

fn cluster() -> Vec<clb_ingress::handler::IngressSummary> {
    vec![
        summary("shop", "web", &["web-svc"], &["web-tls"], true),
        summary("shop", "api", &["api-svc"], &[], false),
        summary("shop", "admin", &["admin-svc"], &["admin-tls"], false),
        summary("blog", "site", &["site-svc"], &[], true),
        summary("blog", "other", &["api-svc"], &[], false),
    ]
}

fn opts() -> HandleOptions {
    HandleOptions::new(
        Instant::now() + Duration::from_secs(60),
        WebhookToken::new("tok"),
    )
}

async fn run(engine: &Arc<RecordingEngine>, event: &Value, opts: &HandleOptions) -> Value {
    let dyn_engine: Arc<dyn Engine> = engine.clone();
    handle(dyn_engine, event, opts).await.unwrap()
}

fn audit(resource: &str, group: &str, ns: &str, name: &str) -> Value {
    json!({
        "auditID": format!("{resource}-{name}"), "stage": "ResponseComplete", "verb": "update",
        "requestURI": "/x", "userAgent": "kubectl/v1.30",
        "objectRef": {"resource": resource, "apiGroup": group, "namespace": ns, "name": name},
        "responseStatus": {"code": 200}
    })
}

#[tokio::test]
async fn service_change_reconciles_only_ingresses_of_its_namespace_using_it() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let report = run(&engine, &audit("services", "", "shop", "api-svc"), &opts()).await;
    assert_eq!(engine.reconciled(), vec!["shop/api"]);
    assert_eq!(engine.lookups(), vec![Some("shop".to_string())]);
    assert_eq!(report["results"][0]["status"], "converged");
    assert_eq!(report["results"][0]["ingress"], "shop/api");
}

#[tokio::test]
async fn secret_change_reconciles_ingresses_naming_it_in_tls() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    run(&engine, &audit("secrets", "", "shop", "admin-tls"), &opts()).await;
    assert_eq!(engine.reconciled(), vec!["shop/admin"]);
}

#[tokio::test]
async fn endpoint_slice_change_reconciles_via_its_service_name() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let ev = audit(
        "endpointslices",
        "discovery.k8s.io",
        "blog",
        "site-svc-x7k2p",
    );
    run(&engine, &ev, &opts()).await;
    assert_eq!(engine.reconciled(), vec!["blog/site"]);
}

#[tokio::test]
async fn node_changes_coalesce_into_one_cluster_wide_lookup_of_node_port_ingresses() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let batch = json!({"kind": "EventList", "items": [
        audit("nodes", "", "", "10.0.1.7"),
        audit("nodes", "", "", "10.0.1.8"),
        audit("services", "", "shop", "api-svc"),
    ]});
    run(&engine, &batch, &opts()).await;
    assert_eq!(engine.lookups(), vec![None]);
    assert_eq!(
        engine.reconciled(),
        vec!["blog/site", "shop/api", "shop/web"]
    );
}

#[tokio::test]
async fn one_lookup_per_namespace_however_many_changes_it_has() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let batch = json!({"kind": "EventList", "items": [
        audit("services", "", "shop", "web-svc"),
        audit("services", "", "shop", "api-svc"),
        audit("secrets", "", "shop", "admin-tls"),
        audit("services", "", "blog", "api-svc"),
        audit("ingresses", "networking.k8s.io", "shop", "web"),
    ]});
    run(&engine, &batch, &opts()).await;
    assert_eq!(
        engine.lookups(),
        vec![Some("blog".into()), Some("shop".into())]
    );
    assert_eq!(
        engine.reconciled(),
        vec!["blog/other", "shop/admin", "shop/api", "shop/web"]
    );
}

#[tokio::test]
async fn duplicate_audit_items_reconcile_each_ingress_once() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let item = audit("ingresses", "networking.k8s.io", "shop", "web");
    let batch = json!({"kind": "EventList", "items": [item.clone(), item.clone(), item]});
    let report = run(&engine, &batch, &opts()).await;
    assert_eq!(engine.reconciled(), vec!["shop/web"]);
    assert_eq!(report["items"], 3);
    assert_eq!(report["changes"], 1);
}

#[tokio::test]
async fn timer_runs_the_sweep_and_no_single_reconcile() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let report = run(&engine, &fixture("timer.json"), &opts()).await;
    assert_eq!(engine.sweeps(), 1);
    assert!(engine.reconciled().is_empty());
    assert!(engine.lookups().is_empty());
    assert_eq!(report["source"], "timer");
    assert!(report["sweep"].is_object());
}

#[tokio::test]
async fn a_failed_lookup_falls_back_to_the_sweep_instead_of_dropping_the_change() {
    let engine = Arc::new(RecordingEngine {
        lookup_fails: true,
        ..RecordingEngine::with_cluster(cluster())
    });
    let report = run(&engine, &audit("services", "", "shop", "api-svc"), &opts()).await;
    assert_eq!(engine.sweeps(), 1);
    assert!(engine.reconciled().is_empty());
    assert!(report["lookup_error"]
        .as_str()
        .unwrap()
        .contains("unavailable"));
}

#[tokio::test]
async fn nothing_starts_when_the_deadline_is_too_close() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let opts = HandleOptions {
        min_start: Duration::from_secs(5),
        ..HandleOptions::new(Instant::now() + Duration::from_secs(1), None)
    };
    let report = run(
        &engine,
        &audit("ingresses", "networking.k8s.io", "shop", "web"),
        &opts,
    )
    .await;
    assert!(engine.reconciled().is_empty());
    assert_eq!(report["not_started"], json!(["shop/web"]));
}

#[tokio::test]
async fn reconciles_run_with_bounded_concurrency() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let items: Vec<Value> = (0..12)
        .map(|i| {
            audit(
                "ingresses",
                "networking.k8s.io",
                "shop",
                &format!("ing-{i}"),
            )
        })
        .collect();
    let opts = HandleOptions {
        concurrency: 3,
        ..opts()
    };
    let report = run(
        &engine,
        &json!({"kind": "EventList", "items": items}),
        &opts,
    )
    .await;
    assert_eq!(engine.reconciled().len(), 12);
    assert_eq!(report["results"].as_array().unwrap().len(), 12);
    let max = engine.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn cls_trigger_event_reconciles_what_its_records_changed() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let ev = cls_event(&[
        audit("ingresses", "networking.k8s.io", "blog", "site"),
        audit("ingresses", "networking.k8s.io", "blog", "site"),
    ]);
    let report = run(&engine, &ev, &opts()).await;
    assert_eq!(engine.reconciled(), vec!["blog/site"]);
    assert_eq!(report["source"], "cls");
}

#[tokio::test]
async fn function_url_envelope_without_a_valid_token_is_401_and_nothing_runs() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let body = fixture("timer.json").to_string();
    for auth in [None, Some("Bearer wrong"), Some("tok")] {
        let resp = run(
            &engine,
            &function_url_event("POST", "/v1/timer", auth, &body),
            &opts(),
        )
        .await;
        assert_eq!(resp["statusCode"], 401);
    }
    let no_token_configured = HandleOptions::new(Instant::now() + Duration::from_secs(60), None);
    let resp = run(
        &engine,
        &function_url_event("POST", "/v1/timer", Some("Bearer tok"), &body),
        &no_token_configured,
    )
    .await;
    assert_eq!(resp["statusCode"], 401);
    assert!(engine.calls().is_empty());
}

#[tokio::test]
async fn function_url_envelope_too_large_or_malformed_is_refused_and_nothing_runs() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let small = HandleOptions {
        body_limit: 64,
        ..opts()
    };
    let big = json!({"kind": "EventList", "items": [audit("ingresses", "networking.k8s.io", "shop", "web")]});
    let resp = run(
        &engine,
        &function_url_event("POST", "/", Some("Bearer tok"), &big.to_string()),
        &small,
    )
    .await;
    assert_eq!(resp["statusCode"], 413);
    let resp = run(
        &engine,
        &function_url_event("POST", "/", Some("Bearer tok"), "{oops"),
        &opts(),
    )
    .await;
    assert_eq!(resp["statusCode"], 400);
    let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "malformed");
    assert!(engine.calls().is_empty());
}

#[tokio::test]
async fn function_url_envelope_with_the_token_runs_and_returns_the_report_as_body() {
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let body = audit("ingresses", "networking.k8s.io", "shop", "web").to_string();
    let resp = run(
        &engine,
        &function_url_event("POST", "/v1/audit", Some("Bearer tok"), &body),
        &opts(),
    )
    .await;
    assert_eq!(resp["statusCode"], 200);
    let report: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["ingresses"], json!(["shop/web"]));
    assert_eq!(engine.reconciled(), vec!["shop/web"]);
}

#[tokio::test]
async fn function_url_runs_are_capped_to_the_http_answer_budget_while_async_events_are_not() {
    // A start margin larger than the HTTP budget but smaller than the run budget: only the
    // synchronous (envelope) path must refuse to start.
    let opts = HandleOptions {
        min_start: clb_ingress::handler::HTTP_ANSWER_BUDGET + Duration::from_secs(1),
        ..HandleOptions::new(
            Instant::now() + Duration::from_secs(600),
            WebhookToken::new("tok"),
        )
    };
    let item = audit("ingresses", "networking.k8s.io", "shop", "web");
    let engine = Arc::new(RecordingEngine::with_cluster(cluster()));
    let resp = run(
        &engine,
        &function_url_event("POST", "/v1/audit", Some("Bearer tok"), &item.to_string()),
        &opts,
    )
    .await;
    let report: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["not_started"], json!(["shop/web"]));
    assert!(engine.reconciled().is_empty());

    run(&engine, &item, &opts).await;
    assert_eq!(engine.reconciled(), vec!["shop/web"]);
}
