//! Shared by the trigger_* and runtime_* tests: a recording fake Engine, fixtures, payload builders.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use clb_ingress::handler::{
    ActionCounts, Engine, IngressKey, IngressLookup, IngressOutcome, IngressSummary, LookupError,
    OutcomeStatus, SweepOutcome,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Lookup(Option<String>),
    Reconcile(IngressKey),
    Sweep,
}

/// Records every call; answers lookups from a fixed list of Ingresses.
#[derive(Default)]
pub struct RecordingEngine {
    pub calls: Mutex<Vec<Call>>,
    pub cluster: Vec<IngressSummary>,
    pub lookup_fails: bool,
    /// When set, each reconcile waits for a permit (lets a test hold reconciles open).
    pub gate: Option<Arc<Semaphore>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub finished: AtomicUsize,
    /// This many reconciles panic before any other work (a bug in one invocation).
    pub panics: AtomicUsize,
}

impl RecordingEngine {
    pub fn with_cluster(cluster: Vec<IngressSummary>) -> Self {
        Self {
            cluster,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn reconciled(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Reconcile(k) => Some(k.to_string()),
                _ => None,
            })
            .collect();
        keys.sort();
        keys
    }

    pub fn sweeps(&self) -> usize {
        self.calls().iter().filter(|c| **c == Call::Sweep).count()
    }

    pub fn lookups(&self) -> Vec<Option<String>> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Lookup(ns) => Some(ns),
                _ => None,
            })
            .collect()
    }
}

impl IngressLookup for RecordingEngine {
    fn ingresses(
        &self,
        namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Lookup(namespace.clone()));
        let result = if self.lookup_fails {
            Err(LookupError("apiserver unavailable".into()))
        } else {
            Ok(self
                .cluster
                .iter()
                .filter(|s| namespace.as_ref().is_none_or(|ns| *ns == s.key.namespace))
                .cloned()
                .collect())
        };
        Box::pin(async move { result })
    }
}

impl Engine for RecordingEngine {
    fn reconcile(&self, key: IngressKey, _deadline: Instant) -> BoxFuture<'_, IngressOutcome> {
        self.calls.lock().unwrap().push(Call::Reconcile(key));
        let panic = self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move {
            assert!(!panic, "engine bug: reconcile panicked");
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _permit = gate.acquire().await;
            }
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.finished.fetch_add(1, Ordering::SeqCst);
            IngressOutcome {
                actions: ActionCounts {
                    applied: 0,
                    cloud_reads: 3,
                    cloud_writes: 0,
                },
                ..IngressOutcome::new(OutcomeStatus::Converged)
            }
        })
    }

    fn sweep(&self, _deadline: Instant) -> BoxFuture<'_, SweepOutcome> {
        self.calls.lock().unwrap().push(Call::Sweep);
        Box::pin(async { SweepOutcome::default() })
    }
}

pub fn summary(
    ns: &str,
    name: &str,
    services: &[&str],
    secrets: &[&str],
    node_port: bool,
) -> IngressSummary {
    IngressSummary {
        key: IngressKey::new(ns, name),
        services: services.iter().map(|s| s.to_string()).collect(),
        tls_secrets: secrets.iter().map(|s| s.to_string()).collect(),
        node_port,
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/triggers")
        .join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

pub fn fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).unwrap()
}

/// The SCF CLS trigger event for these record contents: `{"clslogs":{"data": base64(gzip(…))}}`.
pub fn cls_event(contents: &[Value]) -> Value {
    let records: Vec<Value> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let content = match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"timestamp": format!("16055780900000{i:02}"), "content": content})
        })
        .collect();
    let logs = json!({"topic_id": "a1b2c3", "topic_name": "tke-audit", "records": records});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(logs.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    json!({"clslogs": {"data": data}})
}

/// A function-URL event wrapping `body`.
pub fn function_url_event(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "content-length": body.len().to_string(),
        "x-scf-remote-addr": "203.0.113.7"
    });
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    json!({"body": body, "headers": headers, "httpMethod": method, "path": path, "queryString": {}})
}
