//! Web-function mode (`clb-ingress serve`): the HTTP routes of DESIGN §4.
//!
//! Answering in time: the audit webhook waits at most 30 s and re-sends any batch without a
//! 2xx (up to 5 times). So once a body is authenticated and decoded, its reconciles run in a
//! task of this process, and the request waits for them at most `ack_within` (20 s by
//! default). If they finish, the answer is the full report; if not, the answer is 200
//! `{"accepted":true,…}` and the task keeps running in the background, up to the run budget,
//! logging its report when done. Work the process cannot finish (the instance is frozen or
//! recycled, or the budget runs out) is not lost: reconciles are idempotent and resumable, and
//! the timer sweep reconciles every Ingress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::handler::{self, error_body, Engine, HandleOptions, WebhookToken, BODY_LIMIT};
use crate::trigger::{self, HttpEnvelope, Payload, Source};

/// Bounds of the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Required of every route but `/healthz`; `None` refuses every request.
    pub token: Option<WebhookToken>,
    /// Time each batch's reconciles may take in total.
    pub budget: Duration,
    /// Longest the request waits for its reconciles before answering "accepted".
    pub ack_within: Duration,
    /// Always wait for the run and answer its report, never leave it in the background: an
    /// event function (the function-URL envelope) is frozen once it answers.
    pub wait_for_run: bool,
    pub concurrency: usize,
    /// A reconcile is not started with less than this left of the budget.
    pub min_start: Duration,
    pub body_limit: usize,
    /// Runs (answered or in the background) this process holds at once; a batch past it is
    /// answered 503 and re-sent by its sender (the audit webhook retries any non-2xx), so
    /// background work stays bounded however fast batches arrive.
    pub max_runs: usize,
}

impl ServeOptions {
    pub fn new(token: WebhookToken) -> Self {
        let run = HandleOptions::new(Instant::now(), Some(token.clone()));
        Self {
            token: Some(token),
            budget: super::budget_within(super::FUNCTION_TIMEOUT),
            ack_within: Duration::from_secs(20),
            wait_for_run: false,
            concurrency: run.concurrency,
            min_start: run.min_start,
            body_limit: BODY_LIMIT,
            max_runs: 16,
        }
    }
}

#[derive(Clone)]
struct AppState {
    engine: Arc<dyn Engine>,
    opts: Arc<ServeOptions>,
    runs: Arc<Semaphore>,
}

pub fn router(engine: Arc<dyn Engine>, opts: ServeOptions) -> Router {
    let state = AppState {
        engine,
        runs: Arc::new(Semaphore::new(opts.max_runs.max(1))),
        opts: Arc::new(opts),
    };
    Router::new()
        .route(HEALTHZ, get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/audit", post(audit))
        .route("/v1/events", post(events))
        .route("/v1/timer", post(timer))
        .route(INVOKE, post(invoke))
        .fallback(|| async {
            reply(
                StatusCode::NOT_FOUND,
                error_body("not-found", "no such route"),
            )
        })
        .method_not_allowed_fallback(|| async {
            reply(
                StatusCode::METHOD_NOT_ALLOWED,
                error_body("method-not-allowed", "use POST (GET for /healthz)"),
            )
        })
        .with_state(state)
}

const HEALTHZ: &str = "/healthz";
const INVOKE: &str = "/v1/invoke";
const ROUTES: &[&str] = &[HEALTHZ, "/v1/audit", "/v1/events", "/v1/timer", INVOKE];

/// The route an HTTP envelope's path means: a path ending in one of ours is that route (an
/// API gateway may put a prefix before it); any other path (the function URL's root) is
/// `/v1/invoke`, which takes every payload by its shape.
pub fn envelope_route(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
    ROUTES
        .iter()
        .find(|r| path.ends_with(*r))
        .copied()
        .unwrap_or(INVOKE)
}

/// An HTTP request carried in an SCF event, answered by the same router as the web server:
/// the one place authentication, size limits and decoding happen.
pub async fn answer_envelope(
    engine: Arc<dyn Engine>,
    envelope: HttpEnvelope,
    opts: ServeOptions,
) -> (StatusCode, Value) {
    let mut request = http::Request::builder()
        .method(envelope.method.as_str())
        .uri(envelope_route(&envelope.path));
    for (name, value) in &envelope.headers {
        // The body's real length replaces whatever length the envelope declares.
        if name != "content-length" {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let request = request
        .header(header::CONTENT_LENGTH, envelope.body.len())
        .body(Body::from(envelope.body));
    let response = match request {
        Ok(request) => match router(engine, opts).oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                error_body("malformed", &format!("not an HTTP request: {e}")),
            )
        }
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<dyn Engine>,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "serving");
    axum::serve(listener, router(engine, opts))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn audit(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    accept(s, headers, body, &[Source::Audit]).await
}

async fn events(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    accept(s, headers, body, &[Source::Event]).await
}

async fn timer(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    accept(s, headers, body, &[Source::Timer]).await
}

async fn invoke(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    accept(
        s,
        headers,
        body,
        &[
            Source::Audit,
            Source::Cls,
            Source::Event,
            Source::Timer,
            Source::Shard,
        ],
    )
    .await
}

/// Token, size, shape — in that order, so that nothing about a body is read or acted on for
/// an unauthenticated caller — then the run.
async fn accept(s: AppState, headers: HeaderMap, body: Body, allowed: &[Source]) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !s
        .opts
        .token
        .as_ref()
        .is_some_and(|t| t.verify(authorization))
    {
        tracing::warn!(
            has_header = authorization.is_some(),
            "refused: bad or missing token"
        );
        return reply(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "a valid bearer token is required"),
        );
    }
    let limit = s.opts.body_limit;
    let too_large = || {
        reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_body("too-large", &format!("body over {limit} bytes")),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // The only error reading a body under a limit is that limit (or a vanished client).
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    let decoded = match trigger::decode_bytes(&bytes) {
        Ok(Payload::Decoded(d)) if allowed.contains(&d.source) => d,
        Ok(Payload::Decoded(d)) => {
            let msg = format!("a {:?} payload does not belong on this route", d.source);
            return reply(StatusCode::BAD_REQUEST, error_body("wrong-route", &msg));
        }
        Ok(Payload::Http(_)) => {
            return reply(
                StatusCode::BAD_REQUEST,
                error_body("malformed", "an HTTP envelope is not accepted over HTTP"),
            )
        }
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                error_body("malformed", &e.to_string()),
            )
        }
    };

    tracing::info!(
        source = ?decoded.source,
        items = decoded.items,
        changes = decoded.changes.len(),
        "batch accepted"
    );
    let summary = json!({
        "accepted": true,
        "source": decoded.source,
        "items": decoded.items,
        "changes": decoded.changes.len(),
    });
    let Ok(permit) = Arc::clone(&s.runs).try_acquire_owned() else {
        tracing::warn!(source = ?decoded.source, "refused: too many runs in this process");
        let mut busy = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            error_body("busy", "too many runs in progress; send the batch again"),
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return busy;
    };
    let opts = HandleOptions {
        concurrency: s.opts.concurrency,
        body_limit: s.opts.body_limit,
        min_start: s.opts.min_start,
        ..HandleOptions::new(Instant::now() + s.opts.budget, s.opts.token.clone())
    };
    let engine = Arc::clone(&s.engine);
    // The coordinating sweep only needs to know its shard was taken (it must not wait for
    // one shard before invoking the next), so a shard is answered 202 at once.
    let ack_within = if s.opts.wait_for_run {
        None
    } else if decoded.source == Source::Shard {
        Some(Duration::ZERO)
    } else {
        Some(s.opts.ack_within)
    };
    let mut task = tokio::spawn(async move {
        let report = handler::run(engine, decoded, &opts).await;
        drop(permit);
        report
    });
    let waited = match ack_within {
        None => Ok((&mut task).await),
        Some(d) if d.is_zero() => Err(()),
        Some(d) => tokio::time::timeout(d, &mut task).await.map_err(|_| ()),
    };
    match waited {
        Ok(Ok(report)) => reply(StatusCode::OK, handler::report_json(&report)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "reconcile task failed");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body("internal", "the run failed; the batch may be re-sent"),
            )
        }
        Err(_) => {
            tokio::spawn(async move {
                match task.await {
                    Ok(report) => {
                        tracing::info!(report = %handler::report_json(&report), "background run done")
                    }
                    Err(e) => tracing::error!(error = %e, "background run failed"),
                }
            });
            let status = if ack_within.is_some_and(|d| d.is_zero()) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            reply(status, with_pending(summary))
        }
    }
}

fn with_pending(mut summary: Value) -> Value {
    summary["pending"] = Value::Bool(true);
    summary
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}
