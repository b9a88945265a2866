//! The SCF custom-runtime loop (tencent-cloud.md §5.1): `POST /runtime/init/ready` once, then
//! `GET /runtime/invocation/next` → handle → `POST /runtime/invocation/response` (a report) or
//! `POST /runtime/invocation/error` (an event that could not be decoded, or a panic while
//! handling it: the loop goes on with the next invocation).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::budget_within;
#[cfg(doc)]
use super::{FUNCTION_TIMEOUT, RESPONSE_MARGIN};
use crate::handler::{self, Engine, HandleOptions, WebhookToken};

/// Header carrying the invocation's time limit in milliseconds. The SCF doc does not name it;
/// the community swift-tencent-scf-runtime reads `time_limit_in_ms` (an assumption,
/// tencent-cloud.md §5.1). Without it the configured function timeout applies; either way
/// [`RESPONSE_MARGIN`] is kept free.
pub const TIME_LIMIT_HEADER: &str = "time_limit_in_ms";

/// Header carrying the request id (doc: `Request_Id`; community runtime: `request_id`).
pub const REQUEST_ID_HEADER: &str = "request_id";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("environment variable {name} is not a valid value: {value:?}")]
    BadEnv { name: &'static str, value: String },
    #[error("runtime API {step}: {message}")]
    Api { step: &'static str, message: String },
}

/// Where the runtime API listens, from `SCF_RUNTIME_API` and `SCF_RUNTIME_API_PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub host: String,
    pub port: u16,
}

impl RuntimeConfig {
    pub fn from_env() -> Result<Self, RuntimeError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, RuntimeError> {
        let host = get("SCF_RUNTIME_API")
            .filter(|h| !h.trim().is_empty())
            .ok_or(RuntimeError::MissingEnv("SCF_RUNTIME_API"))?;
        let port =
            get("SCF_RUNTIME_API_PORT").ok_or(RuntimeError::MissingEnv("SCF_RUNTIME_API_PORT"))?;
        let port = port.trim().parse().map_err(|_| RuntimeError::BadEnv {
            name: "SCF_RUNTIME_API_PORT",
            value: port.clone(),
        })?;
        Ok(Self {
            host: host.trim().to_string(),
            port,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}:{}{}", self.host, self.port, path)
    }
}

/// How invocations are bounded.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// The function's timeout, used when the runtime does not send [`TIME_LIMIT_HEADER`]
    /// (normally [`FUNCTION_TIMEOUT`]).
    pub function_timeout: Duration,
    pub concurrency: usize,
    pub token: Option<WebhookToken>,
    /// Stop after this many invocations (tests, one-shot runs); `None` loops forever.
    pub max_invocations: Option<u64>,
}

/// Runs the loop. Returns only on a runtime-API failure (SCF then restarts the instance) or
/// after `max_invocations`.
pub async fn run(
    config: &RuntimeConfig,
    engine: Arc<dyn Engine>,
    opts: &LoopOptions,
) -> Result<(), RuntimeError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| api_error("client", e))?;
    post(
        &client,
        &config.url("/runtime/init/ready"),
        " ".to_string(),
        "init/ready",
    )
    .await?;
    tracing::info!(host = %config.host, port = config.port, "runtime ready");

    let mut done = 0u64;
    while opts.max_invocations.is_none_or(|max| done < max) {
        let next = client
            .get(config.url("/runtime/invocation/next"))
            .send()
            .await
            .map_err(|e| api_error("invocation/next", e))?;
        if !next.status().is_success() {
            return Err(RuntimeError::Api {
                step: "invocation/next",
                message: format!("status {}", next.status()),
            });
        }
        let request_id = header(&next, REQUEST_ID_HEADER).unwrap_or_default();
        let budget = budget_within(
            header(&next, TIME_LIMIT_HEADER)
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
                .unwrap_or(opts.function_timeout),
        );
        let body = next
            .bytes()
            .await
            .map_err(|e| api_error("invocation/next body", e))?;
        let started = Instant::now();
        let handle_opts = HandleOptions {
            concurrency: opts.concurrency,
            ..HandleOptions::new(started + budget, opts.token.clone())
        };

        let result = match serde_json::from_slice::<Value>(&body) {
            Ok(event) => invoke(Arc::clone(&engine), event, handle_opts).await,
            Err(e) => Err(Refused::BadEvent(format!("event is not JSON: {e}"))),
        };
        match result {
            Ok(report) => {
                tracing::info!(request_id, report = %report, "invocation done");
                post(
                    &client,
                    &config.url("/runtime/invocation/response"),
                    report.to_string(),
                    "invocation/response",
                )
                .await?;
            }
            Err(refused) => {
                let (error_type, message) = match refused {
                    Refused::BadEvent(m) => ("BadEvent", m),
                    Refused::Panic(m) => ("Panic", m),
                };
                tracing::warn!(request_id, error_type, error = %message, "invocation refused");
                let body = json!({"errorType": error_type, "errorMessage": message}).to_string();
                post(
                    &client,
                    &config.url("/runtime/invocation/error"),
                    body,
                    "invocation/error",
                )
                .await?;
            }
        }
        done += 1;
    }
    Ok(())
}

/// Why an invocation has no report.
enum Refused {
    BadEvent(String),
    /// A bug hit while handling it: the invocation fails, the instance keeps serving.
    Panic(String),
}

/// Handles one event in its own task, so that a panic ends this invocation only (the web
/// mode gets the same from its per-request task).
async fn invoke(
    engine: Arc<dyn Engine>,
    event: Value,
    opts: HandleOptions,
) -> Result<Value, Refused> {
    let task = tokio::spawn(async move { handler::handle(engine, &event, &opts).await });
    match task.await {
        Ok(result) => result.map_err(|e| Refused::BadEvent(e.to_string())),
        Err(join) => {
            let message = match join.try_into_panic() {
                Ok(payload) => panic_message(payload.as_ref()),
                Err(join) => join.to_string(),
            };
            tracing::error!(error = %message, "invocation panicked");
            Err(Refused::Panic(message))
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".to_string())
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    step: &'static str,
) -> Result<(), RuntimeError> {
    let resp = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| api_error(step, e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(RuntimeError::Api {
            step,
            message: format!("status {}", resp.status()),
        })
    }
}

fn api_error(step: &'static str, e: reqwest::Error) -> RuntimeError {
    RuntimeError::Api {
        step,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_missing_or_bad_variable() {
        let none = RuntimeConfig::from_lookup(|_| None);
        assert!(matches!(
            none,
            Err(RuntimeError::MissingEnv("SCF_RUNTIME_API"))
        ));
        let bad = RuntimeConfig::from_lookup(|k| {
            Some(
                if k == "SCF_RUNTIME_API" {
                    "127.0.0.1"
                } else {
                    "nine"
                }
                .to_string(),
            )
        });
        assert!(matches!(
            bad,
            Err(RuntimeError::BadEnv {
                name: "SCF_RUNTIME_API_PORT",
                ..
            })
        ));
        let ok = RuntimeConfig::from_lookup(|k| {
            Some(
                if k == "SCF_RUNTIME_API" {
                    "9.0.0.1"
                } else {
                    "9001"
                }
                .to_string(),
            )
        });
        assert_eq!(
            ok.unwrap(),
            RuntimeConfig {
                host: "9.0.0.1".into(),
                port: 9001
            }
        );
    }
}
