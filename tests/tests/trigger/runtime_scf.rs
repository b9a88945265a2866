//! The SCF custom-runtime loop against a fake runtime API (axum on 127.0.0.1:0).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{fixture_bytes, function_url_event, summary, RecordingEngine};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use clb_ingress::handler::{Engine, WebhookToken};
use clb_ingress::runtime::scf::{run, LoopOptions, RuntimeConfig, RuntimeError};
use serde_json::Value;

#[derive(Default)]
struct FakeApi {
    /// (time limit header, body) per pending invocation.
    events: Mutex<VecDeque<(Option<&'static str>, Vec<u8>)>>,
    ready: Mutex<u32>,
    nexts: Mutex<u32>,
    responses: Mutex<Vec<Value>>,
    errors: Mutex<Vec<Value>>,
    fail_next: bool,
}

async fn ready(State(api): State<Arc<FakeApi>>) -> StatusCode {
    *api.ready.lock().unwrap() += 1;
    StatusCode::OK
}

async fn next(State(api): State<Arc<FakeApi>>) -> axum::response::Response {
    *api.nexts.lock().unwrap() += 1;
    if api.fail_next {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let Some((limit, body)) = api.events.lock().unwrap().pop_front() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut headers = HeaderMap::new();
    let n = *api.nexts.lock().unwrap();
    headers.insert(
        "request_id",
        HeaderValue::from_str(&format!("req-{n}")).unwrap(),
    );
    if let Some(limit) = limit {
        headers.insert("time_limit_in_ms", HeaderValue::from_static(limit));
    }
    (headers, body).into_response()
}

async fn response(State(api): State<Arc<FakeApi>>, body: String) -> StatusCode {
    api.responses
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

async fn error(State(api): State<Arc<FakeApi>>, body: String) -> StatusCode {
    api.errors
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

async fn start(api: Arc<FakeApi>) -> RuntimeConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = Router::new()
        .route("/runtime/init/ready", post(ready))
        .route("/runtime/invocation/next", get(next))
        .route("/runtime/invocation/response", post(response))
        .route("/runtime/invocation/error", post(error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let port = addr.port().to_string();
    RuntimeConfig::from_lookup(|k| match k {
        "SCF_RUNTIME_API" => Some("127.0.0.1".into()),
        "SCF_RUNTIME_API_PORT" => Some(port.clone()),
        _ => None,
    })
    .unwrap()
}

fn opts(max: u64) -> LoopOptions {
    LoopOptions {
        function_timeout: Duration::from_secs(60),
        concurrency: 2,
        token: WebhookToken::new("tok"),
        max_invocations: Some(max),
    }
}

fn engine() -> Arc<RecordingEngine> {
    Arc::new(RecordingEngine::with_cluster(vec![summary(
        "shop",
        "web",
        &["web-svc"],
        &[],
        true,
    )]))
}

#[tokio::test]
async fn loop_posts_ready_once_then_a_response_per_event_and_an_error_per_bad_event() {
    let api = Arc::new(FakeApi::default());
    {
        let mut q = api.events.lock().unwrap();
        q.push_back((None, fixture_bytes("timer.json")));
        q.push_back((None, fixture_bytes("audit-eventlist-mixed.json")));
        q.push_back((None, b"this is not json".to_vec()));
        q.push_back((None, b"{\"unknown\":\"shape\"}".to_vec()));
    }
    let config = start(api.clone()).await;
    let e = engine();
    let dyn_engine: Arc<dyn Engine> = e.clone();
    run(&config, dyn_engine, &opts(4)).await.unwrap();

    assert_eq!(*api.ready.lock().unwrap(), 1);
    assert_eq!(*api.nexts.lock().unwrap(), 4);
    let responses = api.responses.lock().unwrap().clone();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["source"], "timer");
    assert_eq!(responses[1]["source"], "audit");
    let errors = api.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e["errorMessage"].is_string()));
    assert_eq!(e.sweeps(), 1);
    assert_eq!(e.reconciled(), vec!["blog/site", "shop/web"]);
}

#[tokio::test]
async fn function_url_events_through_the_loop_get_an_http_response_body() {
    let api = Arc::new(FakeApi::default());
    let body = String::from_utf8(fixture_bytes("timer.json")).unwrap();
    let good = function_url_event("POST", "/v1/timer", Some("Bearer tok"), &body);
    let bad = function_url_event("POST", "/v1/timer", Some("Bearer nope"), &body);
    {
        let mut q = api.events.lock().unwrap();
        q.push_back((None, bad.to_string().into_bytes()));
        q.push_back((None, good.to_string().into_bytes()));
    }
    let config = start(api.clone()).await;
    let e = engine();
    let dyn_engine: Arc<dyn Engine> = e.clone();
    run(&config, dyn_engine, &opts(2)).await.unwrap();
    let responses = api.responses.lock().unwrap().clone();
    assert_eq!(responses[0]["statusCode"], 401);
    assert_eq!(responses[1]["statusCode"], 200);
    assert_eq!(e.sweeps(), 1);
}

#[tokio::test]
async fn a_panic_in_one_invocation_is_posted_as_its_error_and_the_loop_goes_on() {
    let api = Arc::new(FakeApi::default());
    {
        let mut q = api.events.lock().unwrap();
        q.push_back((None, fixture_bytes("event-core-v1-exporter.json")));
        q.push_back((None, fixture_bytes("event-core-v1-exporter.json")));
    }
    let config = start(api.clone()).await;
    let e = engine();
    e.panics.store(1, std::sync::atomic::Ordering::SeqCst);
    let dyn_engine: Arc<dyn Engine> = e.clone();
    run(&config, dyn_engine, &opts(2)).await.unwrap();

    assert_eq!(*api.nexts.lock().unwrap(), 2);
    let errors = api.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorType"], "Panic");
    let responses = api.responses.lock().unwrap().clone();
    assert_eq!(responses.len(), 1, "the second invocation still ran");
    assert_eq!(responses[0]["results"][0]["status"], "converged");
    assert_eq!(e.reconciled(), vec!["shop/web", "shop/web"]);
}

#[tokio::test]
async fn the_time_limit_header_bounds_the_invocation() {
    let api = Arc::new(FakeApi::default());
    api.events
        .lock()
        .unwrap()
        .push_back((Some("1000"), fixture_bytes("event-core-v1-exporter.json")));
    let config = start(api.clone()).await;
    let e = engine();
    let dyn_engine: Arc<dyn Engine> = e.clone();
    run(&config, dyn_engine, &opts(1)).await.unwrap();
    // 1 s minus the response margin leaves no room to start a reconcile.
    assert!(e.reconciled().is_empty());
    let responses = api.responses.lock().unwrap().clone();
    assert_eq!(responses[0]["not_started"][0], "shop/web");
}

#[tokio::test]
async fn without_a_time_limit_header_the_margin_stays_free_under_the_function_timeout() {
    let api = Arc::new(FakeApi::default());
    api.events
        .lock()
        .unwrap()
        .push_back((None, fixture_bytes("event-core-v1-exporter.json")));
    let config = start(api.clone()).await;
    let e = engine();
    let dyn_engine: Arc<dyn Engine> = e.clone();
    // A 6 s function leaves 4 s after the response margin: under the 5 s a reconcile needs
    // to start, so nothing starts (with the whole 6 s it would have).
    let o = LoopOptions {
        function_timeout: Duration::from_secs(6),
        ..opts(1)
    };
    run(&config, dyn_engine, &o).await.unwrap();
    assert!(e.reconciled().is_empty());
    let responses = api.responses.lock().unwrap().clone();
    assert_eq!(responses[0]["not_started"][0], "shop/web");
}

#[tokio::test]
async fn a_failing_runtime_api_ends_the_loop_with_an_error_not_a_panic() {
    let api = Arc::new(FakeApi {
        fail_next: true,
        ..FakeApi::default()
    });
    let config = start(api.clone()).await;
    let dyn_engine: Arc<dyn Engine> = engine();
    let err = run(&config, dyn_engine, &opts(3)).await.unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::Api {
            step: "invocation/next",
            ..
        }
    ));
    assert_eq!(*api.ready.lock().unwrap(), 1);
    assert!(api.responses.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_runtime_api_is_an_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    drop(listener);
    let config = RuntimeConfig::from_lookup(|k| match k {
        "SCF_RUNTIME_API" => Some("127.0.0.1".into()),
        _ => Some(port.clone()),
    })
    .unwrap();
    let dyn_engine: Arc<dyn Engine> = engine();
    let err = run(&config, dyn_engine, &opts(1)).await.unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::Api {
            step: "init/ready",
            ..
        }
    ));
}
