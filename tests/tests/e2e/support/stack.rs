//! The whole product in one process, for the end-to-end tests: clb-sim, kube-sim with its
//! audit webhook pointed at the function's web server (`runtime::web`, the routes of
//! `clb-ingress serve`), and a real `Reconciler` driving both. The user side is the real
//! `kubectl` against kube-sim.
//!
//! Two probes sit around the function without changing it: [`CountingEngine`] records every
//! reconcile and sweep the web server asks of the engine, and a middleware in front of the
//! routes keeps each `/v1/audit` report and can play "webhook down" (answer 503).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clb_ingress::cloud::config::{CloudConfig, Credentials};
use clb_ingress::cloud::CloudClient;
use clb_ingress::cluster::ClusterClient;
use clb_ingress::handler::{
    Engine, IngressKey, IngressLookup, IngressOutcome, IngressSummary, LookupError, SweepOutcome,
    WebhookToken,
};
use clb_ingress::reconcile::{Reconciler, ReconcilerOptions};
use clb_ingress::runtime::web::{router, ServeOptions};
use clb_ingress_tests::clb_sim::{self, CallRecord, SimConfig, SimHandle};
use clb_ingress_tests::function_rbac;
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::time::Instant;

pub const CLUSTER_ID: &str = "cls-e2e00001";
pub const OTHER_CLUSTER_ID: &str = "cls-other001";
pub use super::{TAG_CLUSTER, TAG_CREATED_BY, TAG_UID};
/// The function's own kube identity (infra/kubernetes/rbac.yaml).
pub const FUNCTION_USER: &str = "system:serviceaccount:kube-system:clb-ingress";
pub const WEBHOOK_TOKEN: &str = "e2e-webhook-token-0123456789";

/// Upper bound of polls for one condition; each poll waits [`POLL_PAUSE`].
pub const POLL_TRIES: u32 = 1500;
pub const POLL_PAUSE: Duration = Duration::from_millis(20);

/// The repository's `samples/` directory.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("samples")
}

/// Polls `probe` until it yields a value, at most [`POLL_TRIES`] times; panics with `what`
/// and the last observation otherwise.
pub async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..POLL_TRIES {
        match probe() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    panic!("never happened: {what}; last seen: {last}");
}

/// One reconcile the engine was asked for, and how it ended.
#[derive(Clone, Debug)]
pub struct Reconciled {
    pub key: String,
    pub outcome: IngressOutcome,
}

/// Delegates to the real engine and records what it was asked and answered.
pub struct CountingEngine {
    inner: Reconciler,
    reconciled: Mutex<Vec<Reconciled>>,
    sweeps: Mutex<Vec<SweepOutcome>>,
    in_flight: AtomicUsize,
}

impl CountingEngine {
    pub fn reconciled(&self) -> Vec<Reconciled> {
        self.reconciled.lock().unwrap().clone()
    }

    pub fn reconcile_count(&self) -> usize {
        self.reconciled.lock().unwrap().len()
    }

    pub fn sweeps(&self) -> Vec<SweepOutcome> {
        self.sweeps.lock().unwrap().clone()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn inner(&self) -> &Reconciler {
        &self.inner
    }
}

impl IngressLookup for CountingEngine {
    fn ingresses(
        &self,
        namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
        self.inner.ingresses(namespace)
    }
}

impl Engine for CountingEngine {
    fn reconcile(&self, key: IngressKey, deadline: Instant) -> BoxFuture<'_, IngressOutcome> {
        Box::pin(async move {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let outcome = self.inner.reconcile(key.clone(), deadline).await;
            self.reconciled.lock().unwrap().push(Reconciled {
                key: key.to_string(),
                outcome: outcome.clone(),
            });
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }

    fn sweep(&self, deadline: Instant) -> BoxFuture<'_, SweepOutcome> {
        Box::pin(async move {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let outcome = self.inner.sweep(deadline).await;
            self.sweeps.lock().unwrap().push(outcome.clone());
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }
}

/// What the probe in front of the routes saw and does.
#[derive(Default)]
pub struct Tap {
    /// Answer 503 to every request (the function is down or failing).
    pub down: AtomicBool,
    /// Requests refused while down.
    pub refused: AtomicUsize,
    /// The JSON body of every 200 answer to `/v1/audit`, in answer order.
    pub audit_reports: Mutex<Vec<Value>>,
    /// The next this-many `/v1/audit` requests that reconcile an Ingress run in full, then
    /// answer 503 (a function that acted but timed out before answering): kube-sim re-sends
    /// the same batch.
    pub fail_after_run: AtomicUsize,
    /// Answers replaced by 503 that way.
    pub failed_after_run: AtomicUsize,
}

async fn tap_layer(tap: Arc<Tap>, req: Request, next: Next) -> Response {
    if tap.down.load(Ordering::SeqCst) {
        tap.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let audit = req.uri().path() == "/v1/audit";
    let resp = next.run(req).await;
    if !audit || resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let report = serde_json::from_slice::<Value>(&bytes).ok();
    // Only a batch the function acted on (its report names an Ingress) is failed: a batch of
    // unrelated writes arriving first must not use up the injected failure.
    let acted = report
        .as_ref()
        .and_then(|r| r["ingresses"].as_array())
        .is_some_and(|i| !i.is_empty());
    let fail = acted
        && tap
            .fail_after_run
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if fail {
        tap.failed_after_run.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "timed out").into_response();
    }
    if let Some(v) = report {
        tap.audit_reports.lock().unwrap().push(v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Real kubectl bound to this test's kube-sim, with the samples at hand.
pub struct Kubectl(clb_ingress_tests::kubectl::Kubectl);

impl Kubectl {
    fn new(kube: &KubeSimHandle) -> Self {
        Kubectl(clb_ingress_tests::kubectl::Kubectl::new(kube))
    }

    /// Runs kubectl; panics with its stderr when it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        self.0.ok(args).await
    }

    /// `kubectl apply -f samples/<file>`.
    pub async fn apply_sample(&self, file: &str) -> String {
        let path = samples_dir().join(file);
        self.run(&["apply", "-f", &path.to_string_lossy()]).await
    }

    /// `kubectl -n NS annotate --overwrite ingress NAME KEY=VALUE` (or `KEY-` to remove).
    pub async fn annotate_ingress(&self, ns: &str, name: &str, change: &str) -> String {
        self.annotate_ingress_at_once(ns, name, &[change]).await
    }

    /// [`Self::annotate_ingress`] with several changes in one edit.
    pub async fn annotate_ingress_at_once(&self, ns: &str, name: &str, changes: &[&str]) -> String {
        let mut args = vec!["-n", ns, "annotate", "--overwrite", "ingress", name];
        args.extend_from_slice(changes);
        self.run(&args).await
    }

    /// `kubectl -n NS patch KIND NAME --type=TYPE -p PATCH` plus `extra` flags (such as
    /// `--subresource=status`).
    pub async fn patch(
        &self,
        ns: &str,
        object: [&str; 2],
        patch_type: &str,
        patch: &str,
        extra: &[&str],
    ) -> String {
        let kind_of = format!("--type={patch_type}");
        let mut args = vec![
            "-n", ns, "patch", object[0], object[1], &kind_of, "-p", patch,
        ];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// `kubectl apply -f` of YAML text (written to a file first).
    pub async fn apply_yaml(&self, yaml: &str) -> String {
        self.0.apply_yaml(yaml).await
    }
}

/// Applies the namespace, Nodes, Services and the two-host Ingress `web` from `samples/`.
pub async fn apply_web(stack: &Stack) {
    for file in [
        "00-namespace.yaml",
        "01-nodes.yaml",
        "02-services.yaml",
        "03-ingress-web.yaml",
    ] {
        stack.kubectl.apply_sample(file).await;
    }
}

/// Everything running for one test.
pub struct Stack {
    pub clb: SimHandle,
    pub kube: KubeSimHandle,
    pub engine: Arc<CountingEngine>,
    pub tap: Arc<Tap>,
    pub web: SocketAddr,
    pub kubectl: Kubectl,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Stack {
    /// Starts clb-sim, the function's web server (bound first, so kube-sim can be told
    /// where to send audit batches) and kube-sim, and builds a real Reconciler on them.
    pub async fn start() -> Stack {
        Self::start_with_audit_token(WEBHOOK_TOKEN).await
    }

    /// As [`Stack::start`], with kube-sim presenting `audit_token` to the function.
    pub async fn start_with_audit_token(audit_token: &str) -> Stack {
        Self::start_configured(
            audit_token,
            SimConfig::default(),
            ReconcilerOptions::default(),
        )
        .await
    }

    /// As [`Stack::start`], with clb-sim and the engine configured by the test.
    pub async fn start_with(sim: SimConfig, opts: ReconcilerOptions) -> Stack {
        Self::start_configured(WEBHOOK_TOKEN, sim, opts).await
    }

    async fn start_configured(
        audit_token: &str,
        sim_config: SimConfig,
        opts: ReconcilerOptions,
    ) -> Stack {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clb = clb_sim::spawn(sim_config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = listener.local_addr().unwrap();
        let kube = kube_sim::spawn(KubeSimConfig {
            audit_webhook: Some(format!("http://{web}/v1/audit")),
            audit_token: Some(audit_token.into()),
            ..KubeSimConfig::default()
        })
        .await
        .unwrap();

        let kubeconfig = function_rbac::install(&kube).expect("rbac.yaml installed");
        let cluster = ClusterClient::from_kubeconfig_yaml(&kubeconfig)
            .await
            .unwrap();
        let sim = clb.config();
        let cloud_config = CloudConfig::builder(
            Credentials::new(sim.secret_id.clone(), sim.secret_key.clone()),
            sim.region.clone(),
        )
        .endpoint(clb.url())
        .task_poll_interval(Duration::from_millis(10))
        // A CLB deleted behind our back is proven gone within the tests' patience.
        .created_lb_gone_after(Duration::from_secs(1))
        .build()
        .unwrap();
        let cloud = CloudClient::new(cloud_config).unwrap();
        let reconciler = Reconciler::new(cluster, cloud, CLUSTER_ID, opts);
        let engine = Arc::new(CountingEngine {
            inner: reconciler,
            reconciled: Mutex::new(Vec::new()),
            sweeps: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        });

        let tap = Arc::new(Tap::default());
        let token = WebhookToken::new(WEBHOOK_TOKEN).unwrap();
        let opts = ServeOptions {
            // Every report is answered, never handed to the background: the tests read them.
            ack_within: Duration::from_secs(120),
            ..ServeOptions::new(token)
        };
        let engine_dyn: Arc<dyn Engine> = engine.clone();
        let layer_tap = tap.clone();
        let app = router(engine_dyn, opts).layer(axum::middleware::from_fn(
            move |req: Request, next: Next| tap_layer(layer_tap.clone(), req, next),
        ));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let kubectl = Kubectl::new(&kube);
        Stack {
            clb,
            kube,
            engine,
            tap,
            web,
            kubectl,
            http: reqwest::Client::new(),
            server,
        }
    }

    /// `POST /v1/timer` with an SCF timer event, as the sweep trigger sends it; the report.
    pub async fn fire_timer(&self) -> Value {
        let event = json!({
            "Type": "Timer",
            "TriggerName": "sweep",
            "Time": "2026-01-01T00:00:00Z",
            "Message": "",
        });
        let resp = self
            .http
            .post(format!("http://{}/v1/timer", self.web))
            .bearer_auth(WEBHOOK_TOKEN)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    }

    /// The audit reports the function answered so far.
    pub fn audit_reports(&self) -> Vec<Value> {
        self.tap.audit_reports.lock().unwrap().clone()
    }

    /// Audit items the function answered for (sum of the reports' `items`).
    pub fn audit_items_answered(&self) -> u64 {
        self.audit_reports()
            .iter()
            .filter_map(|r| r["items"].as_u64())
            .sum()
    }

    /// Waits until every audit event kube-sim produced has been answered by the function
    /// (minus `dropped` events the webhook never took) and no reconcile is running.
    pub async fn quiet(&self, dropped: u64) {
        eventually(
            "the audit stream is drained and no run is in flight",
            || {
                let events = self.kube.audit_stats().events;
                let answered = self.audit_items_answered();
                let in_flight = self.engine.in_flight();
                if answered + dropped == events && in_flight == 0 {
                    Ok(())
                } else {
                    Err(format!(
                    "events {events}, answered {answered}, dropped {dropped}, in flight {in_flight}"
                ))
                }
            },
        )
        .await;
    }

    /// The Ingress as stored.
    pub fn ingress(&self, ns: &str, name: &str) -> Option<Value> {
        self.kube
            .get_object("networking.k8s.io/v1", "Ingress", Some(ns), name)
    }

    /// The Ingress's UID.
    pub fn ingress_uid(&self, ns: &str, name: &str) -> String {
        self.ingress(ns, name).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The CLB tagged with this Ingress UID, from clb-sim's state.
    pub fn lb_of(&self, uid: &str) -> Option<Value> {
        lbs(&self.clb.state())
            .into_iter()
            .find(|lb| tag(lb, TAG_UID).as_deref() == Some(uid))
    }

    /// Write calls (anything but Describe*/Get*) made to the cloud so far.
    pub fn cloud_writes(&self) -> Vec<CallRecord> {
        self.clb
            .calls()
            .into_iter()
            .filter(|c| is_write(&c.action))
            .collect()
    }
}

pub use clb_ingress::cloud::actions::is_write;

/// The CLBs in a `/_sim/state` document.
pub fn lbs(state: &Value) -> Vec<Value> {
    state["LoadBalancers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A tag's value on a CLB of `/_sim/state`.
pub fn tag(lb: &Value, key: &str) -> Option<String> {
    lb["Tags"].as_array()?.iter().find_map(|t| {
        (t["TagKey"].as_str() == Some(key)).then(|| t["TagValue"].as_str().unwrap_or("").into())
    })
}

/// `(protocol, port)` of every listener of a CLB of `/_sim/state`, sorted.
pub fn listeners(lb: &Value) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = lb["Listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["Protocol"].as_str().unwrap_or("").to_string(),
                l["Port"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// A forwarding rule by its natural key: `(protocol, port, domain, url)`.
pub type RuleKey = (String, i64, String, String);
/// A rule and its sorted `"instance:port"` targets.
pub type RuleTargets = (RuleKey, Vec<String>);

/// Every rule of a CLB of `/_sim/state`, sorted.
pub fn rules(lb: &Value) -> Vec<RuleTargets> {
    let mut out = Vec::new();
    for l in lb["Listeners"].as_array().into_iter().flatten() {
        let proto = l["Protocol"].as_str().unwrap_or("").to_string();
        let port = l["Port"].as_i64().unwrap_or(0);
        for r in l["Rules"].as_array().into_iter().flatten() {
            let mut targets: Vec<String> = r["Targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["InstanceId"].as_str().unwrap_or(""),
                        t["Port"].as_i64().unwrap_or(0)
                    )
                })
                .collect();
            targets.sort();
            out.push((
                (
                    proto.clone(),
                    port,
                    r["Domain"].as_str().unwrap_or("").to_string(),
                    r["Url"].as_str().unwrap_or("").to_string(),
                ),
                targets,
            ));
        }
    }
    out.sort();
    out
}

/// The first address in an Ingress's status (`ip` or `hostname`).
pub fn ingress_address(ing: &Value) -> Option<String> {
    let first = &ing["status"]["loadBalancer"]["ingress"][0];
    first["ip"]
        .as_str()
        .or_else(|| first["hostname"].as_str())
        .map(str::to_string)
}

/// An Ingress `name` in `ns` (host `shop.example.com`, path `/` on Service `web`, class
/// `qcloud`) with `annotations` (YAML lines, already indented; may be empty).
pub fn shop_ingress_yaml(ns: &str, name: &str, annotations: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    kubernetes.io/ingress.class: qcloud
{annotations}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"#
    )
}

/// The sample's Nodes and Services, then [`shop_ingress_yaml`].
pub async fn apply_shop_ingress(stack: &Stack, ns: &str, name: &str, annotations: &str) {
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack
        .kubectl
        .apply_yaml(&shop_ingress_yaml(ns, name, annotations))
        .await;
}

/// `kubectl delete ingress NAME`, then the audit stream drained and one timer sweep.
pub async fn delete_and_sweep(stack: &Stack, ns: &str, name: &str) {
    stack
        .kubectl
        .run(&["-n", ns, "delete", "ingress", name])
        .await;
    stack.quiet(0).await;
    stack.fire_timer().await;
}

/// The CLB `lb_id` as the official Python SDK describes it (tests/py/read_clb.py, with
/// `flags` such as `--rewrites` or `--targets`); needs `scripts/setup`'s venv.
pub async fn sdk_read_clb(stack: &Stack, lb_id: &str, flags: &[&str]) -> Value {
    let region = stack.clb.config().region.clone();
    sdk_read_clb_in(stack, &region, lb_id, flags).await
}

/// [`sdk_read_clb`] with the SDK's client made for `region`.
pub async fn sdk_read_clb_in(stack: &Stack, region: &str, lb_id: &str, flags: &[&str]) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup",
        python.display()
    );
    let cfg = stack.clb.config();
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/py/read_clb.py"))
        .args(["--endpoint", &stack.clb.addr().to_string()])
        .args(["--secret-id", &cfg.secret_id])
        .args(["--secret-key", &cfg.secret_key])
        .args(["--region", region])
        .args(["--lb", lb_id])
        .args(flags)
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .await
        .expect("run read_clb.py");
    assert!(
        out.status.success(),
        "read_clb.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read_clb.py prints JSON")
}
