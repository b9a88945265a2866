//! The one call path to Tencent Cloud API 3.0: sign, rate-limit, send, decode the
//! envelope, retry what is transient, and wait on async tasks.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::config::CloudConfig;
use super::error::CloudError;
use super::ratelimit::RateLimiter;
use super::retry::retry;
use super::sign::{self, SignRequest, SignedHeaders};
use super::stats::CallStats;

/// CLB API service name and version.
pub const CLB_SERVICE: &str = "clb";
pub const CLB_VERSION: &str = "2018-03-17";
/// Tag API service name and version.
pub const TAG_SERVICE: &str = "tag";
pub const TAG_VERSION: &str = "2018-08-13";

/// Exactly this, with no charset: the official Python SDK only looks for `Response.Error`
/// when the content type is exactly `application/json`, and we sign what we send.
const CONTENT_TYPE_JSON: &str = "application/json";

/// A Tencent Cloud API client. Clones share the HTTP pool, rate limiter and [`CallStats`].
/// Every call carries one region (`X-TC-Region`, and the TC3 scope): the configured one, or
/// the one [`Self::in_region`] gave a clone (a CLB of `cross-region-id` lives there).
#[derive(Clone)]
pub struct CloudClient {
    inner: Arc<Inner>,
    /// Set on a clone for another region than the configured one.
    region: Option<Arc<str>>,
}

struct Inner {
    http: reqwest::Client,
    config: CloudConfig,
    limiter: RateLimiter,
    stats: CallStats,
}

impl std::fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudClient")
            .field("config", &self.inner.config)
            .field("region", &self.region())
            .finish_non_exhaustive()
    }
}

/// `DescribeTaskStatus` answer. Status 0 done, 1 failed, 2 running.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskStatus {
    pub status: Option<i64>,
    #[serde(deserialize_with = "super::clb::nullable")]
    pub message: String,
    /// Filled for CreateLoadBalancer tasks.
    #[serde(rename = "LoadBalancerIds", deserialize_with = "super::clb::nullable")]
    pub load_balancer_ids: Vec<String>,
    #[serde(deserialize_with = "super::clb::nullable")]
    pub request_id: String,
}

pub const TASK_SUCCEEDED: i64 = 0;
pub const TASK_FAILED: i64 = 1;
pub const TASK_RUNNING: i64 = 2;

impl CloudClient {
    /// Builds the HTTP client. The process must have installed the rustls ring provider.
    pub fn new(config: CloudConfig) -> Result<Self, CloudError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::identity::user_agent())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                limiter: RateLimiter::new(config.rate_limit_per_sec),
                stats: CallStats::new(),
                config,
            }),
            region: None,
        })
    }

    /// A client configured from the environment (DESIGN §4), see [`CloudConfig::from_env`].
    pub fn from_env() -> Result<Self, CloudError> {
        Self::new(CloudConfig::from_env()?)
    }

    pub fn config(&self) -> &CloudConfig {
        &self.inner.config
    }

    /// The region every call of this client is made in.
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(&self.inner.config.region)
    }

    /// The same client (pool, limiter, stats, credentials) calling in `region`; the
    /// configured region when `region` is empty.
    pub fn in_region(&self, region: &str) -> CloudClient {
        CloudClient {
            inner: Arc::clone(&self.inner),
            region: (!region.is_empty() && region != self.inner.config.region)
                .then(|| Arc::from(region)),
        }
    }

    /// What this client (and its clones) has sent so far.
    pub fn stats(&self) -> &CallStats {
        &self.inner.stats
    }

    /// Calls `action` with JSON `params` and returns the `Response` object (without
    /// `Error`, with `RequestId`). Transient failures are retried under the call deadline.
    pub async fn call(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &Value,
    ) -> Result<Value, CloudError> {
        let body = serde_json::to_vec(params)
            .map_err(|e| CloudError::Config(format!("{action}: cannot encode request: {e}")))?;
        let policy = self.inner.config.retry;
        retry(&policy, action, |_| {
            self.attempt(service, version, action, &body)
        })
        .await
    }

    /// [`Self::call`] with a typed request and response.
    pub async fn call_typed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: &str,
        version: &str,
        action: &str,
        request: &Req,
    ) -> Result<Resp, CloudError> {
        let params = serde_json::to_value(request)
            .map_err(|e| CloudError::Config(format!("{action}: cannot encode request: {e}")))?;
        let response = self.call(service, version, action, &params).await?;
        serde_json::from_value(response).map_err(|e| CloudError::Decode {
            action: action.to_string(),
            message: e.to_string(),
        })
    }

    /// One signed HTTP request, no retries.
    async fn attempt(
        &self,
        service: &str,
        version: &str,
        action: &str,
        body: &[u8],
    ) -> Result<Value, CloudError> {
        let cfg = &self.inner.config;
        let endpoint = cfg.endpoint_for(service);
        let url = reqwest::Url::parse(&format!("{endpoint}/"))
            .map_err(|e| CloudError::Config(format!("endpoint {endpoint:?}: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(CloudError::Config(format!(
                    "endpoint {endpoint:?} has no host"
                )))
            }
        };

        self.inner.limiter.acquire(action).await;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let creds = &cfg.credentials;
        let authorization = sign::authorization(&SignRequest {
            secret_id: creds.secret_id(),
            secret_key: creds.secret_key(),
            service,
            host: &host,
            content_type: CONTENT_TYPE_JSON,
            action,
            timestamp,
            payload: body,
            signed_headers: SignedHeaders::ContentTypeHost,
        });

        let mut headers = HeaderMap::new();
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                CloudError::Config(format!("{action}: a header value is not valid ASCII"))
            })
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        headers.insert(HeaderName::from_static("x-tc-action"), value(action)?);
        headers.insert(HeaderName::from_static("x-tc-version"), value(version)?);
        headers.insert(
            HeaderName::from_static("x-tc-timestamp"),
            value(&timestamp.to_string())?,
        );
        headers.insert(
            HeaderName::from_static("x-tc-region"),
            value(self.region())?,
        );
        if let Some(token) = creds.token() {
            let mut v = value(token)?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-tc-token"), v);
        }
        let mut auth = value(&authorization)?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);

        self.inner.stats.record_attempt(action);
        tracing::debug!(service, action, "cloud call");
        let network = |e: reqwest::Error| CloudError::Network {
            action: action.to_string(),
            timeout: e.is_timeout(),
            message: e.without_url().to_string(),
        };
        let response = self
            .inner
            .http
            .post(url)
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(CloudError::HttpStatus {
                action: action.to_string(),
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(network)?;
        let result = decode_envelope(action, &bytes);
        if result.is_ok() {
            self.inner.stats.record_success(action);
        }
        result
    }

    /// Polls `DescribeTaskStatus` until the task is done (Ok), failed, or the task deadline
    /// passes. `task_id` is the RequestId of the async write.
    ///
    /// The first poll comes one poll interval after the write: a real task never finishes
    /// at once, so an immediate poll would only add a call.
    pub async fn wait_task(&self, task_id: &str) -> Result<TaskStatus, CloudError> {
        let cfg = &self.inner.config;
        let deadline = Instant::now() + cfg.task_deadline;
        loop {
            tokio::time::sleep(cfg.task_poll_interval).await;
            let status: TaskStatus = self
                .call_typed(
                    CLB_SERVICE,
                    CLB_VERSION,
                    "DescribeTaskStatus",
                    &serde_json::json!({ "TaskId": task_id }),
                )
                .await?;
            match status.status {
                Some(TASK_SUCCEEDED) => return Ok(status),
                Some(TASK_FAILED) => {
                    return Err(CloudError::TaskFailed {
                        task_id: task_id.to_string(),
                        message: status.message,
                    })
                }
                Some(TASK_RUNNING) => {}
                other => {
                    return Err(CloudError::Unexpected {
                        action: "DescribeTaskStatus".into(),
                        message: format!("task {task_id} has status {other:?}"),
                    })
                }
            }
            if Instant::now() + cfg.task_poll_interval > deadline {
                return Err(CloudError::TaskTimeout {
                    task_id: task_id.to_string(),
                });
            }
        }
    }
}

/// Takes `{"Response": {...}}` apart: `Response.Error` becomes [`CloudError::Api`].
pub(crate) fn decode_envelope(action: &str, bytes: &[u8]) -> Result<Value, CloudError> {
    let decode = |message: String| CloudError::Decode {
        action: action.to_string(),
        message,
    };
    let mut envelope: Value =
        serde_json::from_slice(bytes).map_err(|e| decode(format!("not JSON: {e}")))?;
    let response = match envelope.get_mut("Response").map(Value::take) {
        Some(r @ Value::Object(_)) => r,
        _ => return Err(decode("no Response object".into())),
    };
    let str_field = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(error) = response.get("Error").filter(|e| !e.is_null()) {
        return Err(CloudError::Api {
            action: action.to_string(),
            code: str_field(error.get("Code")),
            message: str_field(error.get("Message")),
            request_id: str_field(response.get("RequestId")),
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_error_becomes_api_error_with_code_message_request_id() {
        let body = br#"{"Response":{"Error":{"Code":"FailedOperation.ResourceInOperating","Message":"busy"},"RequestId":"req-9"}}"#;
        match decode_envelope("CreateRule", body) {
            Err(CloudError::Api {
                action,
                code,
                message,
                request_id,
            }) => {
                assert_eq!(action, "CreateRule");
                assert_eq!(code, "FailedOperation.ResourceInOperating");
                assert_eq!(message, "busy");
                assert_eq!(request_id, "req-9");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn envelope_success_returns_the_response_object() {
        let v = decode_envelope(
            "X",
            br#"{"Response":{"ListenerIds":["lbl-1"],"RequestId":"r"}}"#,
        )
        .unwrap();
        assert_eq!(v["ListenerIds"][0], "lbl-1");
        assert_eq!(v["RequestId"], "r");
    }

    #[test]
    fn malformed_bodies_are_decode_errors_not_panics() {
        for body in [
            &b"<html>"[..],
            b"{}",
            br#"{"Response":null}"#,
            br#"[1]"#,
            b"",
        ] {
            assert!(matches!(
                decode_envelope("X", body),
                Err(CloudError::Decode { .. })
            ));
        }
    }

    #[test]
    fn task_status_parses_nulls_leniently() {
        let t: TaskStatus = serde_json::from_value(serde_json::json!({
            "Status": 0, "Message": null, "LoadBalancerIds": null, "RequestId": "r"
        }))
        .unwrap();
        assert_eq!(t.status, Some(0));
        assert!(t.load_balancer_ids.is_empty());
    }
}
