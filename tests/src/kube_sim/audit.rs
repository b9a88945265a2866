//! The audit webhook backend in batch mode, as kube-apiserver runs it
//! (`plugin/pkg/audit/{buffered,webhook}`): one `ResponseComplete` event per write, batched
//! by size and wait into `audit.k8s.io/v1 EventList` POSTs sent concurrently, each retried
//! with backoff on any error or non-2xx answer and dropped after the last attempt.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use super::resources::ResourceType;

/// The audit level of a write. An assumption standing in for the cluster's audit policy
/// (issue 3 §1, the policy of kubernetes-triggers.md §1.7 simplified): Ingresses and
/// IngressClasses (main resource only — `ingresses` does not match `ingresses/status`) at
/// RequestResponse, everything else at Metadata. Secrets are never above Metadata.
pub fn level(t: &ResourceType, subresource: Option<&str>) -> &'static str {
    let full = t.group == "networking.k8s.io"
        && (t.plural == "ingresses" || t.plural == "ingressclasses")
        && subresource.is_none();
    if full && t.plural != "secrets" {
        "RequestResponse"
    } else {
        "Metadata"
    }
}

/// The user a request was authenticated as.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// Everything one audit event is made from.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub audit_id: String,
    pub request_uri: String,
    pub verb: &'static str,
    pub user: UserInfo,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub resource: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The request body as JSON (a patch document for PATCH, DeleteOptions for DELETE).
    pub request_object: Option<Value>,
    pub response_code: u16,
    /// The response body: the object, or the Status of a failure.
    pub response_object: Value,
    pub received: String,
    pub completed: String,
}

/// One `audit.k8s.io/v1` Event as the webhook sends it (no per-item kind/apiVersion).
pub fn event(r: &AuditRecord) -> Value {
    let level = level(r.resource, r.subresource.as_deref());
    let mut object_ref = json!({
        "resource": r.resource.plural,
        "apiVersion": r.resource.version,
    });
    if !r.resource.group.is_empty() {
        object_ref["apiGroup"] = json!(r.resource.group);
    }
    if let Some(ns) = &r.namespace {
        object_ref["namespace"] = json!(ns);
    }
    // Upstream LogRequestObject fills name, uid and resourceVersion from the request object
    // when the URL did not give them.
    let body_meta = r
        .request_object
        .as_ref()
        .filter(|_| r.verb == "create" || r.verb == "update")
        .and_then(|b| b.get("metadata"));
    let name = r.name.clone().or_else(|| {
        body_meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        object_ref["name"] = json!(n);
    }
    for (field, key) in [("uid", "uid"), ("resourceVersion", "resourceVersion")] {
        if let Some(v) = body_meta
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            object_ref[field] = json!(v);
        }
    }
    if let Some(s) = &r.subresource {
        object_ref["subresource"] = json!(s);
    }
    let response_status = if r.response_code < 400 {
        json!({"metadata": {}, "code": r.response_code})
    } else {
        let mut s = json!({
            "metadata": {},
            "status": "Failure",
            "code": r.response_code,
        });
        for f in ["message", "reason", "details"] {
            if let Some(v) = r.response_object.get(f) {
                s[f] = v.clone();
            }
        }
        s
    };
    let mut e = json!({
        "level": level,
        "auditID": r.audit_id,
        "stage": "ResponseComplete",
        "requestURI": r.request_uri,
        "verb": r.verb,
        "user": {"username": r.user.username, "groups": r.user.groups},
        "sourceIPs": [r.source_ip],
        "objectRef": object_ref,
        "responseStatus": response_status,
        "requestReceivedTimestamp": r.received,
        "stageTimestamp": r.completed,
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "",
        },
    });
    if let Some(ua) = &r.user_agent {
        e["userAgent"] = json!(ua);
    }
    if level == "RequestResponse" {
        if let Some(req) = &r.request_object {
            e["requestObject"] = req.clone();
        }
        e["responseObject"] = r.response_object.clone();
    }
    e
}

/// Where and how batches go.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub token: Option<String>,
    pub max_batch_size: usize,
    pub max_batch_wait: Duration,
    pub initial_backoff: Duration,
    pub max_attempts: u32,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_batch_size", &self.max_batch_size)
            .field("max_batch_wait", &self.max_batch_wait)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// Counters of the backend, for tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditStats {
    /// Events handed to the backend.
    pub events: u64,
    /// POST attempts made (including retries).
    pub attempts: u64,
    /// Batches acknowledged with a 2xx.
    pub batches_delivered: u64,
    /// Batches given up after the last attempt.
    pub batches_dropped: u64,
    /// Events in acknowledged batches, and in dropped ones: when both add up to `events`,
    /// nothing is queued or in flight.
    pub events_delivered: u64,
    pub events_dropped: u64,
}

/// The running backend: events go in, batches go out from a background task.
#[derive(Debug)]
pub struct AuditBackend {
    tx: mpsc::UnboundedSender<Value>,
    stats: Arc<Mutex<AuditStats>>,
}

fn bump(stats: &Mutex<AuditStats>, f: impl FnOnce(&mut AuditStats)) {
    if let Ok(mut s) = stats.lock() {
        f(&mut s);
    }
}

impl AuditBackend {
    pub fn start(cfg: WebhookConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(AuditStats::default()));
        tokio::spawn(batcher(cfg, rx, stats.clone()));
        AuditBackend { tx, stats }
    }

    pub fn enqueue(&self, event: Value) {
        bump(&self.stats, |s| s.events += 1);
        let _ = self.tx.send(event);
    }

    pub fn stats(&self) -> AuditStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn batcher(
    cfg: WebhookConfig,
    mut rx: mpsc::UnboundedReceiver<Value>,
    stats: Arc<Mutex<AuditStats>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build();
    let Ok(client) = client else {
        tracing::error!("kube-sim audit: cannot build the HTTP client; audit disabled");
        return;
    };
    let max = cfg.max_batch_size.max(1);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.max_batch_wait;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(e)) => batch.push(e),
                Ok(None) | Err(_) => break,
            }
        }
        // Batch mode sends each batch from its own task, so POSTs may overlap.
        tokio::spawn(deliver(client.clone(), cfg.clone(), batch, stats.clone()));
    }
}

async fn deliver(
    client: reqwest::Client,
    cfg: WebhookConfig,
    items: Vec<Value>,
    stats: Arc<Mutex<AuditStats>>,
) {
    let body = json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": items,
    });
    let mut delay = cfg.initial_backoff;
    for attempt in 1..=cfg.max_attempts.max(1) {
        bump(&stats, |s| s.attempts += 1);
        let mut req = client.post(&cfg.url).json(&body);
        if let Some(t) = &cfg.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                bump(&stats, |s| {
                    s.batches_delivered += 1;
                    s.events_delivered += items_len(&body) as u64;
                });
                return;
            }
            Ok(resp) => tracing::warn!(
                status = resp.status().as_u16(),
                attempt,
                "kube-sim audit: webhook refused a batch"
            ),
            Err(e) => tracing::warn!(error = %e, attempt, "kube-sim audit: webhook unreachable"),
        }
        if attempt < cfg.max_attempts {
            // Upstream backoff: factor 1.5, jitter 0.2.
            let jitter = 1.0 + rand::random::<f64>() * 0.2;
            tokio::time::sleep(delay.mul_f64(jitter)).await;
            delay = delay.mul_f64(1.5);
        }
    }
    bump(&stats, |s| {
        s.batches_dropped += 1;
        s.events_dropped += items_len(&body) as u64;
    });
    tracing::error!(
        events = items_len(&body),
        "kube-sim audit: batch dropped after the last attempt"
    );
}

fn items_len(body: &Value) -> usize {
    body.get("items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}
