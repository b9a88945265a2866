//! Shared harness of the end-to-end tests: kube-sim and clb-sim in-process on loopback, a
//! [`Reconciler`] built from the real kube client and the real cloud client pointed at them
//! with millisecond task polls, fixtures for Nodes/Services/Secrets/Ingresses, and readers
//! for what a user (or an auditor) sees: CLB state, the CLB call log, Events, Kubernetes
//! writes.

#![allow(dead_code)]

use std::time::Duration;

use clb_ingress::cloud::apply::ApplyOptions;
use clb_ingress::cloud::{CloudClient, CloudConfig, Credentials, RetryPolicy};
use clb_ingress::cluster::ClusterClient;
use clb_ingress::handler::{IngressKey, IngressOutcome};
use clb_ingress::reconcile::{Reconciler, ReconcilerOptions};
use clb_ingress_tests::clb_sim::{self, CallRecord, LoadBalancer, SimConfig, SimHandle};
use clb_ingress_tests::function_rbac;
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use serde_json::{json, Value};

pub const CLUSTER: &str = "cls-e2e";
pub const NS: &str = "shop";
pub use super::{TAG_CLUSTER, TAG_CREATED_BY, TAG_UID};

pub struct Env {
    pub clb: SimHandle,
    pub kube: KubeSimHandle,
    pub cluster: ClusterClient,
    pub cloud: CloudClient,
}

pub async fn env() -> Env {
    env_with(SimConfig {
        task_ms: 1,
        ..SimConfig::default()
    })
    .await
}

pub async fn env_with(cfg: SimConfig) -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clb = clb_sim::spawn(cfg).await.expect("clb-sim starts");
    let kube = kube_sim::spawn(KubeSimConfig::default())
        .await
        .expect("kube-sim starts");
    let c = clb.config().clone();
    let cloud = CloudClient::new(
        CloudConfig::builder(Credentials::new(c.secret_id, c.secret_key), c.region)
            .endpoint(clb.url())
            .retry(RetryPolicy {
                base: Duration::from_millis(2),
                max: Duration::from_millis(20),
                deadline: Duration::from_secs(10),
            })
            .task_poll_interval(Duration::from_millis(2))
            .task_deadline(Duration::from_secs(10))
            // A CLB deleted behind our back is proven gone within the tests' patience.
            .created_lb_gone_after(Duration::from_secs(1))
            .rate_limit_per_sec(10_000)
            .build()
            .expect("cloud config"),
    )
    .expect("cloud client");
    // The function runs as its service account with rbac.yaml's rights; the test's own
    // fixtures and readers go around the API (or through the admin kubeconfig).
    let kubeconfig = function_rbac::install(&kube).expect("rbac.yaml installed");
    let cluster = ClusterClient::from_kubeconfig_yaml(&kubeconfig)
        .await
        .expect("cluster client");
    let env = Env {
        clb,
        kube,
        cluster,
        cloud,
    };
    env.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    env
}

/// Counts of CLB/Tag API calls by action, from clb-sim's own log.
pub fn count(calls: &[CallRecord], action: &str) -> usize {
    calls.iter().filter(|c| c.action == action).count()
}

/// Calls that change something.
pub fn writes(calls: &[CallRecord]) -> Vec<&CallRecord> {
    calls
        .iter()
        .filter(|c| clb_ingress::cloud::actions::is_write(&c.action))
        .collect()
}

impl Env {
    pub fn engine(&self) -> Reconciler {
        self.engine_with(ApplyOptions::default())
    }

    pub fn engine_with(&self, apply: ApplyOptions) -> Reconciler {
        Reconciler::new(
            self.cluster.clone(),
            self.cloud.clone(),
            CLUSTER,
            ReconcilerOptions {
                lease_seconds: 60,
                concurrency: 2,
                min_start: Duration::from_millis(1),
                apply,
                ..ReconcilerOptions::default()
            },
        )
    }

    pub async fn reconcile(&self, name: &str) -> IngressOutcome {
        self.engine()
            .reconcile_one(&IngressKey::new(NS, name))
            .await
    }

    /// Stores an object directly (a fixture, not audited, not in the request log).
    pub fn put(&self, obj: Value) -> Value {
        self.kube.put_object(obj).expect("fixture stored")
    }

    /// A Ready node backed by CVM instance `instance`.
    pub fn node(&self, name: &str, instance: &str) {
        self.put(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name},
            "spec": {"providerID": format!("qcloud:///100003/{instance}")},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }));
    }

    /// A NodePort Service with one port `port` → `node_port`.
    pub fn service(&self, name: &str, port: i32, node_port: i32) {
        self.put(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "NodePort", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": 8080, "nodePort": node_port, "protocol": "TCP"}]}
        }));
    }

    /// A ClusterIP Service (direct mode) with an EndpointSlice of ready pod IPs on `target`.
    pub fn direct_service(&self, name: &str, port: i32, target: i32, ips: &[&str]) {
        self.put(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "ClusterIP", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": target, "protocol": "TCP"}]}
        }));
        let endpoints: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
        self.put(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-abc"), "namespace": NS,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"port": target, "protocol": "TCP"}],
            "endpoints": endpoints
        }));
    }

    /// An Opaque Secret carrying a Tencent certificate id.
    pub fn cert_secret(&self, name: &str, cert_id: &str) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert_id);
        self.put(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "type": "Opaque",
            "data": {"qcloud_cert_id": b64}
        }));
    }

    /// Stores an Ingress (`spec` and `annotations` as given); returns its UID.
    pub fn ingress(&self, name: &str, annotations: Value, spec: Value) -> String {
        let stored = self.put(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": spec
        }));
        stored["metadata"]["uid"].as_str().expect("uid").to_string()
    }

    /// Changes an Ingress in place (keeps its UID), e.g. its class annotation.
    pub fn edit_ingress(&self, name: &str, f: impl FnOnce(&mut Value)) {
        let mut obj = self.get_ingress(name).expect("ingress exists");
        f(&mut obj);
        self.put(obj);
    }

    pub fn get_ingress(&self, name: &str) -> Option<Value> {
        self.kube
            .get_object("networking.k8s.io/v1", "Ingress", Some(NS), name)
    }

    pub fn delete_ingress(&self, name: &str) {
        assert!(self
            .kube
            .delete_object("networking.k8s.io/v1", "Ingress", Some(NS), name));
    }

    /// Events about the Ingress `name`: (type, reason, note).
    pub fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        self.kube
            .list_objects("events.k8s.io/v1", "Event", Some(NS))
            .iter()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| (s(e, "type"), s(e, "reason"), s(e, "note")))
            .collect()
    }

    pub fn warnings(&self, name: &str) -> Vec<String> {
        self.events(name)
            .into_iter()
            .filter(|(t, _, _)| t == "Warning")
            .map(|(_, r, _)| r)
            .collect()
    }

    /// Requests to the Kubernetes API that write (anything but GET/LIST).
    pub fn kube_writes(&self) -> Vec<String> {
        self.kube
            .request_log()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Requests to the Kubernetes API that RBAC refused (403).
    pub fn kube_forbidden(&self) -> Vec<String> {
        self.kube
            .request_log()
            .into_iter()
            .filter(|r| r.status == 403)
            .map(|r| format!("{} {} ({})", r.method, r.path, r.username))
            .collect()
    }

    /// Creates an HTTP listener named `name` through the API, as a user (or a run of ours
    /// long gone) would in the console, and lets its task finish.
    pub async fn console_listener(&self, lb_id: &str, port: i64, name: &str) {
        let r = clb_ingress_tests::clb_sim::client::SimClient::new(&self.clb)
            .clb(
                "CreateListener",
                json!({"LoadBalancerId": lb_id, "Ports": [port], "Protocol": "HTTP",
                       "ListenerNames": [name]}),
            )
            .await;
        assert_eq!(r.error_code(), None, "{:?}", r.response());
        self.clb.finish_tasks();
    }

    /// A CLB's tags, sorted.
    pub fn sorted_tags(&self, lb_id: &str) -> Vec<(String, String)> {
        let mut t = self.clb.load_balancer(lb_id).expect("CLB exists").tags;
        t.sort();
        t
    }

    /// The CLB carrying our cluster tag and this Ingress UID.
    pub fn lb_of(&self, uid: &str) -> Option<LoadBalancer> {
        let mut found = self.clb.load_balancers().into_iter().filter(|lb| {
            lb.tags.iter().any(|(k, v)| k == TAG_UID && v == uid)
                && lb
                    .tags
                    .iter()
                    .any(|(k, v)| k == TAG_CLUSTER && v == CLUSTER)
        });
        let lb = found.next();
        assert!(found.next().is_none(), "more than one CLB for {uid}");
        lb
    }

    pub fn ingress_ip(&self, name: &str) -> Option<String> {
        self.get_ingress(name)?["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .map(str::to_string)
    }

    pub fn ingress_lb_annotation(&self, name: &str) -> Option<String> {
        self.get_ingress(name)?["metadata"]["annotations"]
            ["kubernetes.io/ingress.qcloud-loadbalance-id"]
            .as_str()
            .map(str::to_string)
    }
}

/// `{"rules": [{"host": h, "http": {"paths": [{path, ImplementationSpecific, svc:port}]}}]}`:
/// one CLB rule per path, URL as written (a `Prefix` path costs two, `model::paths`).
pub fn rules(entries: &[(&str, &str, &str, i32)]) -> Value {
    let rules: Vec<Value> = entries
        .iter()
        .map(|(host, path, svc, port)| {
            let mut rule = json!({"http": {"paths": [{
                "path": path, "pathType": "ImplementationSpecific",
                "backend": {"service": {"name": svc, "port": {"number": port}}}
            }]}});
            if !host.is_empty() {
                rule["host"] = json!(host);
            }
            rule
        })
        .collect();
    json!({ "rules": rules })
}

/// Sorted (domain, url) → sorted targets "backend:port@weight" of our listener `proto:port`.
pub fn listener_rules(
    lb: &LoadBalancer,
    protocol: &str,
    port: i64,
) -> Vec<(String, String, Vec<String>)> {
    let Some(l) = lb
        .listeners
        .iter()
        .find(|l| l.protocol == protocol && l.port == port)
    else {
        return Vec::new();
    };
    let mut out: Vec<(String, String, Vec<String>)> = l
        .rules
        .iter()
        .map(|r| {
            let mut t: Vec<String> = r
                .targets
                .iter()
                .map(|t| format!("{}:{}@{}", t.key().0, t.port, t.weight))
                .collect();
            t.sort();
            (r.domain().to_string(), r.url.clone(), t)
        })
        .collect();
    out.sort();
    out
}
