//! The web-function server, spawned in-process on 127.0.0.1:0: bad input is refused with the
//! contract's status and the engine sees no call; good input gets the report.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{fixture, fixture_bytes, function_url_event, summary, RecordingEngine};
use clb_ingress::handler::{handle, Engine, HandleOptions, WebhookToken, BODY_LIMIT};
use clb_ingress::runtime::web::{serve, ServeOptions};
use serde_json::{json, Value};
use tokio::sync::{oneshot, Semaphore};

const TOKEN: &str = "test-token-0123456789";

struct Server {
    addr: SocketAddr,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(engine: Arc<RecordingEngine>, tweak: impl FnOnce(&mut ServeOptions)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut opts = ServeOptions::new(WebhookToken::new(TOKEN).unwrap());
        tweak(&mut opts);
        let (stop, stopped) = oneshot::channel::<()>();
        let engine: Arc<dyn Engine> = engine;
        tokio::spawn(serve(listener, engine, opts, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            _stop: stop,
        }
    }

    async fn post(&self, path: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("http://{}{}", self.addr, path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
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

fn bearer() -> Option<&'static str> {
    Some("Bearer test-token-0123456789")
}

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let s = Server::start(engine(), |_| {}).await;
    let resp = s
        .client
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_and_the_engine_sees_nothing() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let body = fixture_bytes("audit-eventlist-mixed.json");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer test-token-012345678"),
        Some("Basic dGVzdA=="),
        Some(TOKEN),
    ] {
        for path in ["/v1/audit", "/v1/events", "/v1/timer", "/v1/invoke"] {
            let (status, body) = s.post(path, auth, body.clone()).await;
            assert_eq!(status, 401, "{path} {auth:?}");
            assert_eq!(body["error"], "unauthorized");
        }
    }
    assert!(e.calls().is_empty());
}

#[tokio::test]
async fn a_body_over_the_cap_is_413_and_the_engine_sees_nothing() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let mut big = b"{\"kind\":\"EventList\",\"items\":[".to_vec();
    big.resize(BODY_LIMIT + 1, b' ');
    let (status, body) = s.post("/v1/audit", bearer(), big).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "too-large");
    assert!(e.calls().is_empty());
}

#[tokio::test]
async fn an_oversized_body_without_the_token_is_401_not_413() {
    let e = engine();
    let s = Server::start(e.clone(), |o| o.body_limit = 1024).await;
    let (status, _) = s.post("/v1/audit", None, vec![b' '; 4096]).await;
    assert_eq!(status, 401);
    assert!(e.calls().is_empty());
}

#[tokio::test]
async fn malformed_or_unrecognised_bodies_are_400_with_a_json_error_and_nothing_runs() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    for (path, body) in [
        ("/v1/audit", b"{\"kind\":\"EventList\",".to_vec()),
        ("/v1/audit", b"".to_vec()),
        ("/v1/events", b"[1,2".to_vec()),
        ("/v1/invoke", b"{\"hello\":\"world\"}".to_vec()),
        ("/v1/invoke", b"\"just a string\"".to_vec()),
    ] {
        let (status, err) = s.post(path, bearer(), body).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(err["error"], "malformed", "{path}");
        assert!(err["message"].is_string());
    }
    assert!(e.calls().is_empty());
}

#[tokio::test]
async fn a_payload_on_the_wrong_route_is_400_and_nothing_runs() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let (status, err) = s
        .post("/v1/audit", bearer(), fixture_bytes("timer.json"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "wrong-route");
    let (status, _) = s
        .post("/v1/timer", bearer(), fixture_bytes("event-own.json"))
        .await;
    assert_eq!(status, 400);
    assert!(e.calls().is_empty());
}

#[tokio::test]
async fn audit_batch_with_the_token_is_200_with_the_report() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let (status, report) = s
        .post(
            "/v1/audit",
            bearer(),
            fixture_bytes("audit-eventlist-mixed.json"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["source"], "audit");
    assert_eq!(report["items"], 14);
    // Nodes changed, so one cluster-wide lookup; shop/web is NodePort-mode and named directly.
    assert_eq!(e.lookups(), vec![None]);
    assert_eq!(e.reconciled(), vec!["blog/site", "shop/web"]);
    assert_eq!(report["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn each_route_accepts_its_own_payload() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let (status, _) = s
        .post(
            "/v1/events",
            bearer(),
            fixture_bytes("event-core-v1-exporter.json"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post("/v1/timer", bearer(), fixture_bytes("timer.json"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .post(
            "/v1/invoke",
            bearer(),
            fixture("audit-deletecollection.json")
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(e.reconciled(), vec!["shop/web"]);
    assert_eq!(e.sweeps(), 2);
}

#[tokio::test]
async fn slow_reconciles_are_acknowledged_then_finish_in_the_background() {
    let gate = Arc::new(Semaphore::new(0));
    let e = Arc::new(RecordingEngine {
        gate: Some(gate.clone()),
        ..RecordingEngine::default()
    });
    let s = Server::start(e.clone(), |o| o.ack_within = Duration::from_millis(20)).await;
    let body = json!({
        "auditID": "slow", "stage": "ResponseComplete", "verb": "update", "requestURI": "/x",
        "objectRef": {"resource": "ingresses", "apiGroup": "networking.k8s.io", "namespace": "shop", "name": "web"},
        "responseStatus": {"code": 200}
    });
    let (status, ack) = s
        .post("/v1/audit", bearer(), body.to_string().into_bytes())
        .await;
    assert_eq!(status, 200);
    assert_eq!(ack["accepted"], true);
    assert_eq!(ack["pending"], true);
    assert_eq!(e.finished.load(Ordering::SeqCst), 0);
    gate.add_permits(1);
    while e.finished.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(e.reconciled(), vec!["shop/web"]);
}

#[tokio::test]
async fn runs_past_the_bound_are_answered_503_and_the_engine_sees_only_the_first() {
    let gate = Arc::new(Semaphore::new(0));
    let e = Arc::new(RecordingEngine {
        gate: Some(gate.clone()),
        ..RecordingEngine::default()
    });
    let s = Server::start(e.clone(), |o| {
        o.ack_within = Duration::from_millis(20);
        o.max_runs = 1;
    })
    .await;
    let body = |name: &str| {
        json!({
            "auditID": name, "stage": "ResponseComplete", "verb": "update", "requestURI": "/x",
            "objectRef": {"resource": "ingresses", "apiGroup": "networking.k8s.io", "namespace": "shop", "name": name},
            "responseStatus": {"code": 200}
        })
        .to_string()
        .into_bytes()
    };
    let (status, ack) = s.post("/v1/audit", bearer(), body("a")).await;
    assert_eq!((status, ack["pending"].clone()), (200, json!(true)));
    let (status, busy) = s.post("/v1/audit", bearer(), body("b")).await;
    assert_eq!(status, 503);
    assert_eq!(busy["error"], "busy");
    assert_eq!(e.reconciled(), vec!["shop/a"]);

    gate.add_permits(2);
    while e.finished.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The permit is given back when the background run ends, not when it was acknowledged.
    let mut status = 0;
    for _ in 0..100 {
        (status, _) = s.post("/v1/audit", bearer(), body("b")).await;
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(e.reconciled(), vec!["shop/a", "shop/b"]);
}

/// The same request, sent over HTTP and inside a function-URL event: (status, body).
async fn both_doors(
    s: &Server,
    engine: &Arc<RecordingEngine>,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> ((u16, Value), (u16, Value)) {
    let over_http = {
        let mut req = s
            .client
            .request(
                method.parse().unwrap(),
                format!("http://{}{}", s.addr, path),
            )
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    };
    let opts = HandleOptions::new(
        tokio::time::Instant::now() + Duration::from_secs(60),
        WebhookToken::new(TOKEN),
    );
    let dyn_engine: Arc<dyn Engine> = engine.clone();
    let event = function_url_event(method, path, auth, body);
    let resp = handle(dyn_engine, &event, &opts).await.unwrap();
    let in_envelope = (
        resp["statusCode"].as_u64().unwrap() as u16,
        serde_json::from_str(resp["body"].as_str().unwrap()).unwrap_or(Value::Null),
    );
    (over_http, in_envelope)
}

#[tokio::test]
async fn the_function_url_envelope_and_the_web_server_answer_every_request_alike() {
    let e = engine();
    let s = Server::start(e.clone(), |_| {}).await;
    let timer = String::from_utf8(fixture_bytes("timer.json")).unwrap();
    let audit = String::from_utf8(fixture_bytes("audit-eventlist-mixed.json")).unwrap();
    let big = format!(
        "{{\"kind\":\"EventList\",\"items\":[{}]}}",
        " ".repeat(BODY_LIMIT)
    );
    let cases: Vec<(&str, &str, Option<&str>, &str)> = vec![
        ("POST", "/v1/timer", None, &timer),
        ("POST", "/v1/timer", Some("Bearer wrong"), &timer),
        ("POST", "/v1/audit", bearer(), "{\"kind\":\"EventList\","),
        ("POST", "/v1/audit", bearer(), &timer),
        ("POST", "/v1/timer", bearer(), &timer),
        ("POST", "/v1/audit", bearer(), &audit),
        ("POST", "/v1/invoke", bearer(), "\"just a string\""),
        ("POST", "/v1/audit", bearer(), &big),
        ("GET", "/healthz", None, ""),
    ];
    for (method, path, auth, body) in cases {
        let (http, envelope) = both_doors(&s, &e, method, path, auth, body).await;
        assert_eq!(http.0, envelope.0, "{method} {path} {auth:?}");
        assert_eq!(
            http.1["error"], envelope.1["error"],
            "{method} {path} {auth:?}"
        );
    }
}
