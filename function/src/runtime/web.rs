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
use tokio::time::Instant;

use crate::handler::{self, error_body, Engine, HandleOptions, WebhookToken, BODY_LIMIT};
use crate::trigger::{self, Payload, Source};

/// Bounds of the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub token: WebhookToken,
    /// Time each batch's reconciles may take in total.
    pub budget: Duration,
    /// Longest the request waits for its reconciles before answering "accepted".
    pub ack_within: Duration,
    pub concurrency: usize,
    pub body_limit: usize,
}

impl ServeOptions {
    pub fn new(token: WebhookToken) -> Self {
        Self {
            token,
            budget: Duration::from_secs(300),
            ack_within: Duration::from_secs(20),
            concurrency: 4,
            body_limit: BODY_LIMIT,
        }
    }
}

#[derive(Clone)]
struct AppState {
    engine: Arc<dyn Engine>,
    opts: Arc<ServeOptions>,
}

pub fn router(engine: Arc<dyn Engine>, opts: ServeOptions) -> Router {
    let state = AppState {
        engine,
        opts: Arc::new(opts),
    };
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/audit", post(audit))
        .route("/v1/events", post(events))
        .route("/v1/timer", post(timer))
        .route("/v1/invoke", post(invoke))
        .with_state(state)
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
    if !s.opts.token.verify(authorization) {
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
    let opts = HandleOptions {
        concurrency: s.opts.concurrency,
        body_limit: s.opts.body_limit,
        ..HandleOptions::new(Instant::now() + s.opts.budget, Some(s.opts.token.clone()))
    };
    let engine = Arc::clone(&s.engine);
    // The coordinating sweep only needs to know its shard was taken (it must not wait for
    // one shard before invoking the next), so a shard is answered 202 at once.
    let ack_within = if decoded.source == Source::Shard {
        Duration::ZERO
    } else {
        s.opts.ack_within
    };
    let mut task = tokio::spawn(async move { handler::run(engine, decoded, &opts).await });
    let waited = if ack_within.is_zero() {
        Err(())
    } else {
        tokio::time::timeout(ack_within, &mut task)
            .await
            .map_err(|_| ())
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
            let status = if ack_within.is_zero() {
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
