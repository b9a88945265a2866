//! In-memory Kubernetes API server over plain HTTP, for tests, the demo and local runs.
//!
//! It serves the resources this project touches with the semantics the real apiserver has
//! where clients can tell the difference: server-owned metadata, one monotonic
//! resourceVersion, optimistic concurrency, the status subresource split, finalizers,
//! the four patch types, label/field selectors, `Status` error bodies, discovery, Tables
//! for `kubectl get`, and an audit webhook backend in batch mode.
//!
//! ```no_run
//! # async fn demo() {
//! use clb_ingress_tests::kube_sim::{spawn, KubeSimConfig};
//! let sim = spawn(KubeSimConfig {
//!     audit_webhook: Some("http://127.0.0.1:9000/v1/audit".into()),
//!     audit_token: Some("t".into()),
//!     ..KubeSimConfig::default()
//! })
//! .await
//! .unwrap();
//! let client = sim.client().await; // kube::Client as `kubernetes-admin`
//! let reconciler = sim.client_as("system:serviceaccount:clb-system:clb-reconciler").await;
//! std::fs::write("/tmp/kc", sim.kubeconfig_yaml()).unwrap(); // for kubectl / KUBECONFIG
//! sim.fail_next("GET", "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web", 1, 500);
//! let log = sim.request_log(); // method, path, query, status, user agent, content type, user
//! # }
//! ```
//!
//! Authentication: a bearer token from `kubeconfig_yaml()`/`add_token()` names the user;
//! an unknown token is 401; a request without credentials is `kubernetes-admin`, because
//! kubectl (client-go) never sends a token over plain HTTP. kube-rs does send it.
//! kubectl does send `--as` (impersonation), so `kubectl --as=system:serviceaccount:NS:SA`
//! and `kubectl auth can-i --as=...` act as a service account.
//!
//! Authorization (`rbac`): requests of service accounts (`system:serviceaccount:NS:NAME`,
//! e.g. tokens from `service_account_token()` or `kubectl create token`) are judged by the
//! stored Roles, ClusterRoles and bindings and refused with the apiserver's 403; everyone
//! else is unrestricted.
//!
//! Note for callers: kube 5's default client retries 429/503/504 itself (honouring
//! `Retry-After`), so an injected 429 is only seen in `request_log()`, not by the caller.
//!
//! Not modelled: watches, field ownership of server-side apply (it is create-or-merge),
//! admission, garbage collection, namespace termination (a namespace delete removes its
//! contents at once), OpenAPI schemas (see `openapi`).

pub mod audit;
pub mod discovery;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod resources;
pub mod selector;
mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod validate;

pub use audit::AuditStats;
pub use server::{Fault, RequestRecord};
pub use status::ApiError;

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use server::Shared;
use store::Store;

/// The username of the kubeconfig's default token.
pub const ADMIN_USER: &str = "kubernetes-admin";

/// How a kube-sim runs.
#[derive(Clone)]
pub struct KubeSimConfig {
    /// Where audit EventList batches are POSTed; no audit without it.
    pub audit_webhook: Option<String>,
    /// Sent as `Authorization: Bearer ...` with every batch.
    pub audit_token: Option<String>,
    /// Events per batch (`--audit-webhook-batch-max-size`).
    pub audit_batch_max_size: usize,
    /// Longest a partial batch waits (`--audit-webhook-batch-max-wait`).
    pub audit_batch_max_wait_ms: u64,
    /// First retry delay after a failed POST (`--audit-webhook-initial-backoff`).
    pub audit_initial_backoff_ms: u64,
    /// POST attempts per batch before it is dropped (upstream: 5).
    pub audit_max_attempts: u32,
    /// The admin bearer token (random when None).
    pub admin_token: Option<String>,
}

impl Default for KubeSimConfig {
    /// Upstream defaults are 400 events / 30 s wait / 10 s initial backoff; the defaults
    /// here are scaled down so that tests see batches and retries in milliseconds.
    fn default() -> Self {
        KubeSimConfig {
            audit_webhook: None,
            audit_token: None,
            audit_batch_max_size: 100,
            audit_batch_max_wait_ms: 100,
            audit_initial_backoff_ms: 50,
            audit_max_attempts: 5,
            admin_token: None,
        }
    }
}

impl std::fmt::Debug for KubeSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSimConfig")
            .field("audit_webhook", &self.audit_webhook)
            .field(
                "audit_token",
                &self.audit_token.as_ref().map(|_| "<redacted>"),
            )
            .field("audit_batch_max_size", &self.audit_batch_max_size)
            .field("audit_batch_max_wait_ms", &self.audit_batch_max_wait_ms)
            .field("audit_initial_backoff_ms", &self.audit_initial_backoff_ms)
            .field("audit_max_attempts", &self.audit_max_attempts)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A running kube-sim. Dropping it stops the server.
pub struct KubeSimHandle {
    addr: SocketAddr,
    admin_token: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KubeSimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeSimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random_token() -> String {
    let b: [u8; 24] = rand::random();
    hex::encode(b)
}

/// Starts a kube-sim on 127.0.0.1 with an ephemeral port.
pub async fn spawn(cfg: KubeSimConfig) -> std::io::Result<KubeSimHandle> {
    spawn_at(SocketAddr::from(([127, 0, 0, 1], 0)), cfg).await
}

/// Starts a kube-sim on the given address.
pub async fn spawn_at(listen: SocketAddr, cfg: KubeSimConfig) -> std::io::Result<KubeSimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (shared, admin_token) = shared_state(&cfg, addr);
    let app = axum::Router::new()
        .fallback(server::handle)
        .with_state(shared.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "kube-sim server stopped");
        }
    });
    Ok(KubeSimHandle {
        addr,
        admin_token,
        shared,
        task,
    })
}

/// The server's routes without a socket, and the admin token (for a driver calling it in
/// process, the fuzzer). Requests must carry `axum::extract::ConnectInfo<SocketAddr>` as an
/// extension, which a served connection adds by itself.
pub fn router_in_process(cfg: &KubeSimConfig, addr: SocketAddr) -> (axum::Router, String) {
    let (shared, admin_token) = shared_state(cfg, addr);
    let router = axum::Router::new()
        .fallback(server::handle)
        .with_state(shared);
    (router, admin_token)
}

fn shared_state(cfg: &KubeSimConfig, addr: SocketAddr) -> (Arc<Shared>, String) {
    let admin_token = cfg.admin_token.clone().unwrap_or_else(random_token);
    let audit = cfg.audit_webhook.as_ref().map(|url| {
        audit::AuditBackend::start(audit::WebhookConfig {
            url: url.clone(),
            token: cfg.audit_token.clone(),
            max_batch_size: cfg.audit_batch_max_size,
            max_batch_wait: Duration::from_millis(cfg.audit_batch_max_wait_ms),
            initial_backoff: Duration::from_millis(cfg.audit_initial_backoff_ms),
            max_attempts: cfg.audit_max_attempts,
        })
    });
    let mut tokens = HashMap::new();
    tokens.insert(admin_token.clone(), ADMIN_USER.to_string());
    let shared = Arc::new(Shared {
        store: Mutex::new(Store::new()),
        log: Mutex::new(Vec::new()),
        faults: Mutex::new(Vec::new()),
        tokens: Mutex::new(tokens),
        audit,
        server_address: addr.to_string(),
    });
    (shared, admin_token)
}

fn kubeconfig(server: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-sim
  cluster:
    server: {server}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: kube-sim
  context:
    cluster: kube-sim
    user: {user}
    namespace: default
current-context: kube-sim
preferences: {{}}
"
    )
}

impl KubeSimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin bearer token (user `kubernetes-admin`).
    pub fn admin_token(&self) -> String {
        self.admin_token.clone()
    }

    /// A kubeconfig for the admin user that kube-rs and kubectl accept.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig(&self.url(), ADMIN_USER, &self.admin_token)
    }

    /// A kubeconfig for a new token authenticating as `username` (e.g. the reconciler's
    /// service account), so audit events carry that user.
    pub fn kubeconfig_yaml_for(&self, username: &str) -> String {
        let token = self.add_token(username);
        kubeconfig(&self.url(), username, &token)
    }

    /// Registers a fresh bearer token for `username` and returns it.
    pub fn add_token(&self, username: &str) -> String {
        server::register_token(&self.shared, username)
    }

    /// A token of the ServiceAccount `namespace/name` (which must exist), as the
    /// TokenRequest subresource (`kubectl create token`) mints it: RBAC governs its requests.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, ApiError> {
        let store = self
            .shared
            .store
            .lock()
            .map_err(|_| ApiError::for_code(500, "store lock poisoned"))?;
        let answer = rbac::token_request(&store, namespace, name, None, |username| {
            Ok(self.add_token(&username))
        })?;
        answer["status"]["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::for_code(500, "TokenRequest answered no token"))
    }

    /// A kubeconfig for the ServiceAccount `namespace/name` with a fresh token of it.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, ApiError> {
        let token = self.service_account_token(namespace, name)?;
        Ok(kubeconfig(
            &self.url(),
            &rbac::service_account_user(namespace, name),
            &token,
        ))
    }

    /// Every bearer token kube-sim accepts (the admin's and every minted one): what must
    /// never show up in a log.
    pub fn bearer_tokens(&self) -> Vec<String> {
        self.shared
            .tokens
            .lock()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A kube client for the admin user over real HTTP.
    pub async fn client(&self) -> kube::Client {
        client_from_yaml(&self.kubeconfig_yaml()).await
    }

    /// A kube client authenticating as `username`.
    pub async fn client_as(&self, username: &str) -> kube::Client {
        client_from_yaml(&self.kubeconfig_yaml_for(username)).await
    }

    /// Every request served so far, in order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub fn clear_request_log(&self) {
        if let Ok(mut l) = self.shared.log.lock() {
            l.clear();
        }
    }

    /// The next `times` requests with this method and path (exact, or a prefix when it
    /// ends in `*`) fail with `code` and a Status body of the matching reason.
    pub fn fail_next(&self, method: &str, path: &str, times: u32, code: u16) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.push(Fault {
                method: method.to_string(),
                path: path.to_string(),
                remaining: times,
                code,
            });
        }
    }

    /// An object in stored form (with apiVersion and kind), by apiVersion and kind.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let t = resources::by_kind(api_version, kind)?;
        self.shared
            .store
            .lock()
            .ok()?
            .raw_get(t, namespace, name)
            .map(|o| store::to_view(t, &o))
    }

    /// Objects of a kind, in one namespace or all.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Some(t) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        self.shared
            .store
            .lock()
            .map(|s| s.list(t, namespace))
            .unwrap_or_default()
    }

    /// Stores an object as given, bypassing validation and audit (a concurrent writer or a
    /// fixture): the server fills uid/creationTimestamp if missing and bumps the
    /// resourceVersion. The object's apiVersion and kind pick the type.
    pub fn put_object(&self, obj: Value) -> Result<Value, ApiError> {
        let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let t = resources::by_kind(av, kind)
            .ok_or_else(|| ApiError::bad_request(format!("kube-sim does not serve {av} {kind}")))?;
        let mut s = self
            .shared
            .store
            .lock()
            .map_err(|_| ApiError::for_code(500, "store lock poisoned"))?;
        s.raw_put(t, obj)
    }

    /// Removes an object outright (ignoring finalizers). True when it existed.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let Some(t) = resources::by_kind(api_version, kind) else {
            return false;
        };
        self.shared
            .store
            .lock()
            .map(|mut s| s.raw_delete(t, namespace, name))
            .unwrap_or(false)
    }

    /// The current (last written) resourceVersion.
    pub fn resource_version(&self) -> String {
        self.shared
            .store
            .lock()
            .map(|s| s.resource_version())
            .unwrap_or_default()
    }

    /// Counters of the audit backend (all zero without a webhook).
    pub fn audit_stats(&self) -> AuditStats {
        self.shared
            .audit
            .as_ref()
            .map(|a| a.stats())
            .unwrap_or_default()
    }
}

/// A kube client from kubeconfig YAML (installs the ring crypto provider first).
pub async fn client_from_yaml(yaml: &str) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::from_yaml(yaml).expect("kube-sim kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kube-sim kubeconfig loads");
    kube::Client::try_from(cfg).expect("kube client builds")
}
