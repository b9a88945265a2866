//! One history's world: clb-sim and kube-sim in this process, the real `clb-ingress serve`
//! as a child process woken by kube-sim's audit webhook, one-shot `reconcile`/`sweep` runs
//! beside it; and how each [`Step`] is done to it (user writes through the Kubernetes API,
//! console edits through the CLB and Tag APIs).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::model::{
    instance, variant_rules, Class, Fault, IngressTruth, Mark, NodeTruth, Step, Truth, ADOPTABLE,
    NODES, SERVICES, SLOTS,
};
use crate::clb_sim::client::SimClient;
use crate::clb_sim::{self, CallRecord, Faults, LoadBalancer, ScriptedFault, SimConfig, SimHandle};
use crate::kube_sim::{self, KubeSimConfig, KubeSimHandle};

pub const CLUSTER_ID: &str = "cls-chaos001";
pub const OTHER_CLUSTER_ID: &str = "cls-other001";
pub const NS: &str = "chaos";
pub const TAG_CREATED_BY: &str = "tke-createdBy-flag";
pub const TAG_CLUSTER: &str = "tke-clusterId";
pub const TAG_UID: &str = "tke-lb-ingress-uuid";
pub const OUR_LISTENER: &str = "TKE-DEDICATED-LISTENER";
/// The IngressClass of our controller that steps delete and create.
pub const OUR_CLASS: &str = "chaos-qcloud";
const CONTROLLER: &str = "cloud.tencent.com/clb-ingress";
const WEBHOOK_TOKEN: &str = "chaos-webhook-token-0123456789";
/// How long one settle may take before the step is reported as not settled.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(20);
/// Each run's budget (`--budget-secs`): a run's Lease lasts its budget plus ten seconds, so a
/// `kill -9`ed run blocks its Ingress that long; short budgets keep the wait at quiet short.
const BUDGET_SECS: &str = "8";
/// How long a kill step waits for the function's first cloud write before it kills anyway
/// (a change that needs no write never shows one).
const KILL_WAIT: Duration = Duration::from_secs(2);
/// The function's timing knobs for local runs against clb-sim (README, configuration), all
/// here: clb-sim's tasks end in milliseconds and its reads never lag, so the waits meant for
/// the real API's lag only cost time. The proof that a created CLB is gone must fit well
/// inside [`BUDGET_SECS`], or a run that meets a CLB deleted since (the class flipped away
/// and back) is cut off before it can create again, every time.
const TUNABLES: [(&str, &str); 3] = [
    ("CLB_TASK_POLL_MS", "5"),
    ("CLB_CREATED_LB_GONE_AFTER_MS", "2000"),
    ("CLB_ADOPTION_SETTLE_MS", "1000"),
];
/// The function's margin for clock skew before a Lease counts as expired (cluster/lease.rs
/// CLOCK_SKEW_MARGIN), plus a second.
const LEASE_MARGIN_SECS: i64 = 6;

/// Counters a history adds to the figures.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub steps: usize,
    pub fault_steps: usize,
    pub kills: usize,
    pub one_shot_runs: usize,
    pub unsettled: usize,
    /// Lifecycle annotation steps applied (skip, retain, protection).
    pub lifecycle_steps: usize,
    /// Wall time by phase (`start`, each step kind, `settle`, `leases`, `quiet`), for
    /// finding where a history's time goes.
    pub time: std::collections::BTreeMap<String, Duration>,
}

impl Counters {
    pub fn took(&mut self, phase: impl Into<String>, since: std::time::Instant) {
        *self.time.entry(phase.into()).or_default() += since.elapsed();
    }
}

/// A CLB not ours as it was set up: id, tags, listener ids.
pub type Untouchable = (String, Vec<(String, String)>, Vec<String>);

/// The serving function: a child process on a fixed port.
struct Function {
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Function {
    async fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("function log {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let bin = crate::function::binary();
        let child = Command::new(&bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--ack-secs",
                "25",
                "--budget-secs",
                BUDGET_SECS,
            ])
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} (cargo build --workspace --bins): {e}",
                    bin.display()
                )
            })?;
        self.child = Some(child);
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!("the function never answered {url}"))
    }

    /// `kill -9`: no chance to finish or clean up.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

/// Everything one history runs on, and the truth it keeps.
pub struct World {
    pub clb: SimHandle,
    pub kube: KubeSimHandle,
    client: kube::Client,
    console: SimClient,
    function: Function,
    http: reqwest::Client,
    dir: PathBuf,
    pub truth: Truth,
    pub counters: Counters,
    /// RequestIds of the console's own calls: not the function's writes.
    pub console_calls: BTreeSet<String>,
    /// The faults in force (off while the console edits, so its edits land).
    faults: Faults,
    /// Untouchable CLBs as they were set up: (id, tags, listener ids).
    pub untouchable_at_start: Vec<Untouchable>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn resource<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

impl World {
    /// Fresh simulators seeded with `seed`, the fixtures every history starts from, and the
    /// serving function.
    pub async fn start(seed: u64) -> Result<World, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clb = clb_sim::spawn(SimConfig {
            task_ms: 2,
            seed,
            ..SimConfig::default()
        })
        .await
        .map_err(|e| format!("clb-sim: {e}"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let kube = kube_sim::spawn(KubeSimConfig {
            audit_webhook: Some(format!("http://127.0.0.1:{port}/v1/audit")),
            audit_token: Some(WEBHOOK_TOKEN.into()),
            audit_batch_max_wait_ms: 20,
            audit_initial_backoff_ms: 100,
            audit_max_attempts: 8,
            ..KubeSimConfig::default()
        })
        .await
        .map_err(|e| format!("kube-sim: {e}"))?;
        let client = kube.client().await;
        let dir = std::env::temp_dir().join(format!(
            "clb-ingress-chaos-{}-{seed}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // The function runs as its service account with exactly the rights of
        // infra/kubernetes/rbac.yaml; its own writes come back through the audit log under
        // that name and are recognised as its own.
        let kubeconfig =
            crate::function_rbac::install(&kube).map_err(|e| format!("rbac.yaml: {e:?}"))?;
        let mut env = crate::function::env(&clb, &kubeconfig, CLUSTER_ID);
        env.push(("WEBHOOK_TOKEN".into(), WEBHOOK_TOKEN.into()));
        env.extend(TUNABLES.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env.push(("RUST_LOG".into(), "info".into()));
        env.push(("NO_COLOR".into(), "1".into()));
        let function = Function {
            child: None,
            port,
            env,
            log: dir.join("function.log"),
        };
        let console = SimClient::new(&clb);
        let mut world = World {
            clb,
            kube,
            client,
            console,
            function,
            http: reqwest::Client::new(),
            dir,
            truth: Truth::default(),
            counters: Counters::default(),
            console_calls: BTreeSet::new(),
            faults: Faults::default(),
            untouchable_at_start: Vec::new(),
        };
        world.fixtures().await?;
        world.function.start().await?;
        Ok(world)
    }

    /// The last lines the serving function logged (for a failure report).
    pub fn function_log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.function.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn fixtures(&mut self) -> Result<(), String> {
        self.upsert::<Namespace>(
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .await?;
        self.upsert::<IngressClass>(None, ingress_class("nginx", "k8s.io/ingress-nginx"))
            .await?;
        self.upsert::<IngressClass>(None, ingress_class(OUR_CLASS, CONTROLLER))
            .await?;
        self.truth.class_exists = true;
        for node in 0..2 {
            self.set_node(node, true).await?;
        }
        for (svc, port) in [(0, 30080), (1, 30081)] {
            self.set_service(svc, port).await?;
        }
        for i in 0..ADOPTABLE {
            let id = self
                .clb
                .insert_load_balancer("OPEN", &format!("user-lb-{i}"), &[]);
            self.truth.user_lbs.push(id);
        }
        // A user's CLB serving its own listener: existLbId naming it is refused (E4021).
        let busy = self
            .clb
            .insert_load_balancer("OPEN", "user-busy", &[("team", "payments")]);
        self.add_listener(&busy, 9000, "user-own").await?;
        self.truth.user_lbs.push(busy.clone());
        self.truth.untouchable.insert(busy);
        // Another cluster's CLB, with all three tags of that cluster.
        let other = self.clb.insert_load_balancer(
            "OPEN",
            "other-cluster",
            &[
                (TAG_CREATED_BY, "yes"),
                (TAG_CLUSTER, OTHER_CLUSTER_ID),
                (TAG_UID, "0b5e7e1c-0000-4000-8000-000000000001"),
            ],
        );
        self.add_listener(&other, 80, OUR_LISTENER).await?;
        self.truth.untouchable.insert(other);
        self.untouchable_at_start = self
            .truth
            .untouchable
            .iter()
            .filter_map(|id| self.clb.load_balancer(id))
            .map(|lb| {
                let listeners = lb.listeners.iter().map(|l| l.id.clone()).collect();
                (lb.id, lb.tags, listeners)
            })
            .collect();
        Ok(())
    }

    // ---- the Kubernetes side -------------------------------------------------------------

    fn api<K: kube::Resource<DynamicType = ()>>(&self, ns: Option<&str>) -> Api<DynamicObject> {
        let ar = resource::<K>();
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Creates the object, or replaces it keeping its status; returns what was stored.
    async fn upsert<K: kube::Resource<DynamicType = ()>>(
        &self,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<DynamicObject, String> {
        let api = self.api::<K>(ns);
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| format!("get {name}: {e}"))?;
        match current {
            None => {
                let o: DynamicObject = serde_json::from_value(obj).map_err(|e| e.to_string())?;
                api.create(&PostParams::default(), &o)
                    .await
                    .map_err(|e| format!("create {name}: {e}"))
            }
            Some(cur) => {
                obj["metadata"]["resourceVersion"] = json!(cur.metadata.resource_version);
                if let Some(status) = cur.data.get("status") {
                    obj["status"] = status.clone();
                }
                let o: DynamicObject = serde_json::from_value(obj).map_err(|e| e.to_string())?;
                api.replace(&name, &PostParams::default(), &o)
                    .await
                    .map_err(|e| format!("replace {name}: {e}"))
            }
        }
    }

    async fn delete<K: kube::Resource<DynamicType = ()>>(
        &self,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), String> {
        match self
            .api::<K>(ns)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(format!("delete {name}: {e}")),
        }
    }

    async fn write_ingress(&mut self, slot: usize, ing: IngressTruth) -> Result<(), String> {
        let mut annotations = serde_json::Map::new();
        match ing.class {
            Class::AnnotationQcloud => {
                annotations.insert("kubernetes.io/ingress.class".into(), json!("qcloud"));
            }
            Class::AnnotationOther => {
                annotations.insert("kubernetes.io/ingress.class".into(), json!("nginx"));
            }
            _ => {}
        }
        if ing.skip {
            annotations.insert("ingress.cloud.tencent.com/mode".into(), json!("skip"));
        }
        for (key, value) in [
            ("ingress.cloud.tencent.com/loadbalance-retain", ing.retain),
            ("ingress.cloud.tencent.com/deletion-protection", ing.protect),
        ] {
            if let Some(v) = value {
                annotations.insert(key.into(), json!(v.to_string()));
            }
        }
        if let Some(lb) = ing.exist_lb {
            annotations.insert(
                "kubernetes.io/ingress.existLbId".into(),
                json!(self.truth.user_lbs[lb]),
            );
        }
        let rules: Vec<Value> = variant_rules(ing.variant)
            .into_iter()
            .map(|(host, path, svc)| {
                json!({"host": host, "http": {"paths": [{
                    "path": path, "pathType": "Prefix",
                    "backend": {"service": {"name": SERVICES[svc], "port": {"number": 80}}}
                }]}})
            })
            .collect();
        let mut spec = json!({ "rules": rules });
        match ing.class {
            Class::NameOurs => spec["ingressClassName"] = json!(OUR_CLASS),
            Class::NameOther => spec["ingressClassName"] = json!("nginx"),
            _ => {}
        }
        let obj = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": slot_name(slot), "namespace": NS, "annotations": annotations},
            "spec": spec,
        });
        let stored = self.upsert::<Ingress>(Some(NS), obj).await?;
        let uid = stored.metadata.uid.unwrap_or_default();
        self.truth.slots[slot] = Some(IngressTruth { uid, ..ing });
        Ok(())
    }

    async fn set_node(&mut self, node: usize, ready: bool) -> Result<(), String> {
        let status = json!({"conditions": [{"type": "Ready",
            "status": if ready { "True" } else { "False" }}]});
        let obj = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": format!("node-{node}")},
            "spec": {"providerID": format!("qcloud:///100003/{}", instance(node))},
            "status": status,
        });
        let name = format!("node-{node}");
        let exists = self.truth.nodes[node].is_some_and(|n| n.present);
        if !exists {
            self.upsert::<Node>(None, obj).await?;
        }
        // Readiness lives in the status subresource.
        self.api::<Node>(None)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map_err(|e| format!("node status: {e}"))?;
        self.truth.nodes[node] = Some(NodeTruth {
            present: true,
            ready,
        });
        Ok(())
    }

    async fn set_service(&mut self, svc: usize, port: i32) -> Result<(), String> {
        let obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICES[svc], "namespace": NS},
            "spec": {"type": "NodePort", "selector": {"app": SERVICES[svc]},
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": port, "protocol": "TCP"}]}
        });
        self.upsert::<Service>(Some(NS), obj).await?;
        self.truth.services[svc] = Some(port);
        Ok(())
    }

    // ---- the console (the CLB and Tag APIs, as a user) -----------------------------------

    /// One console call with the faults lifted (a console edit is meant to land); its
    /// RequestId is remembered so the checks never take it for the function's.
    async fn console(
        &mut self,
        service: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.clb.set_faults(Faults::default());
        let mut last = String::new();
        let mut out = Err(String::new());
        for _ in 0..50 {
            let resp = if service == "tag" {
                self.console.tag(action, params.clone()).await
            } else {
                self.console.clb(action, params.clone()).await
            };
            if let Some(id) = resp.response()["RequestId"].as_str() {
                self.console_calls.insert(id.to_string());
            }
            match resp.error_code() {
                None => {
                    out = Ok(resp.response().clone());
                    break;
                }
                // The CLB is busy with the function's task: the user clicks again.
                Some("FailedOperation.ResourceInOperating") => {
                    last = "ResourceInOperating".into();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(code) => {
                    out = Err(format!("{action}: {code}"));
                    break;
                }
            }
        }
        self.clb.set_faults(self.faults.clone());
        match out {
            Err(e) if e.is_empty() => Err(format!("{action}: {last}")),
            other => other,
        }
    }

    async fn add_listener(&mut self, lb: &str, port: i64, name: &str) -> Result<(), String> {
        let resp = self
            .console(
                "clb",
                "CreateListener",
                json!({"LoadBalancerId": lb, "Ports": [port], "Protocol": "HTTP",
                       "ListenerNames": [name]}),
            )
            .await?;
        for id in resp["ListenerIds"].as_array().into_iter().flatten() {
            if let Some(id) = id.as_str() {
                self.truth
                    .foreign_listeners
                    .insert(id.to_string(), lb.to_string());
            }
        }
        self.wait_not_busy(lb).await;
        Ok(())
    }

    async fn wait_not_busy(&self, lb: &str) {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let busy = self.clb.state()["LoadBalancers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|l| l["LoadBalancerId"] == lb && l["Busy"].as_bool() == Some(true));
            if !busy {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The CLB carrying our cluster tag and the UID of the Ingress in `slot`.
    pub fn lb_of_slot(&self, slot: usize) -> Option<LoadBalancer> {
        let uid = &self.truth.slots[slot].as_ref()?.uid;
        self.clb
            .load_balancers()
            .into_iter()
            .find(|lb| has_tag(lb, TAG_CLUSTER, CLUSTER_ID) && has_tag(lb, TAG_UID, uid))
    }

    // ---- steps ---------------------------------------------------------------------------

    /// Does `step` to the world and updates the truth. Returns whether it applied.
    pub async fn apply(&mut self, step: &Step) -> Result<bool, String> {
        let live = |w: &World, slot: usize| w.truth.slots[slot].clone();
        match step.clone() {
            Step::CreateIngress {
                slot,
                variant,
                class,
                exist_lb,
            } => {
                if live(self, slot).is_some() {
                    return Ok(false);
                }
                self.write_ingress(slot, IngressTruth::new(variant, class, exist_lb))
                    .await?;
            }
            Step::ChangeIngress { slot, variant } | Step::KillDuringWork { slot, variant } => {
                let Some(ing) = live(self, slot) else {
                    return Ok(false);
                };
                let from = self.clb.calls().len();
                self.write_ingress(slot, IngressTruth { variant, ..ing })
                    .await?;
                if matches!(step, Step::KillDuringWork { .. }) {
                    self.kill_after_first_write(from).await?;
                }
            }
            Step::DeleteIngress { slot } => {
                if live(self, slot).is_none() {
                    return Ok(false);
                }
                self.delete::<Ingress>(Some(NS), &slot_name(slot)).await?;
                self.truth.slots[slot] = None;
            }
            Step::RecreateIngress { slot } => {
                let Some(ing) = live(self, slot) else {
                    return Ok(false);
                };
                self.delete::<Ingress>(Some(NS), &slot_name(slot)).await?;
                self.truth.slots[slot] = None;
                self.write_ingress(slot, ing).await?;
            }
            Step::SetClass { slot, class } => {
                let Some(ing) = live(self, slot) else {
                    return Ok(false);
                };
                self.write_ingress(slot, IngressTruth { class, ..ing })
                    .await?;
            }
            Step::CreateIngressClass => {
                if self.truth.class_exists {
                    return Ok(false);
                }
                self.upsert::<IngressClass>(None, ingress_class(OUR_CLASS, CONTROLLER))
                    .await?;
                self.truth.class_exists = true;
            }
            Step::DeleteIngressClass => {
                if !self.truth.class_exists {
                    return Ok(false);
                }
                self.delete::<IngressClass>(None, OUR_CLASS).await?;
                self.truth.class_exists = false;
            }
            Step::SetExistLb { slot, lb } => {
                let Some(ing) = live(self, slot) else {
                    return Ok(false);
                };
                if ing.exist_lb == lb {
                    return Ok(false);
                }
                self.write_ingress(
                    slot,
                    IngressTruth {
                        exist_lb: lb,
                        ..ing
                    },
                )
                .await?;
            }
            Step::AddNode { node } => {
                if self.truth.nodes[node].is_some_and(|n| n.present) {
                    return Ok(false);
                }
                self.set_node(node, true).await?;
            }
            Step::RemoveNode { node } => {
                if !self.truth.nodes[node].is_some_and(|n| n.present) {
                    return Ok(false);
                }
                self.delete::<Node>(None, &format!("node-{node}")).await?;
                self.truth.nodes[node] = None;
            }
            Step::SetNodeReady { node, ready } => {
                match self.truth.nodes[node] {
                    Some(n) if n.present && n.ready != ready => {}
                    _ => return Ok(false),
                }
                self.set_node(node, ready).await?;
            }
            Step::SetNodePort { svc, port } => {
                match self.truth.services[svc] {
                    Some(p) if p != port => {}
                    _ => return Ok(false),
                }
                self.set_service(svc, port).await?;
            }
            Step::DeleteService { svc } => {
                if self.truth.services[svc].is_none() {
                    return Ok(false);
                }
                self.delete::<Service>(Some(NS), SERVICES[svc]).await?;
                self.truth.services[svc] = None;
            }
            Step::CreateService { svc } => {
                if self.truth.services[svc].is_some() {
                    return Ok(false);
                }
                self.set_service(svc, 30080 + svc as i32).await?;
            }
            Step::ConsoleDeleteListener { slot } => {
                let Some(lb) = self.lb_of_slot(slot) else {
                    return Ok(false);
                };
                let Some(l) = lb.listeners.iter().find(|l| l.name == OUR_LISTENER) else {
                    return Ok(false);
                };
                let params = json!({"LoadBalancerId": lb.id, "ListenerId": l.id});
                self.console("clb", "DeleteListener", params).await?;
            }
            Step::ConsoleAddForeignListener { slot } => {
                // Only on a CLB we created: a listener left on a user's CLB would make it
                // unadoptable later, which the truth does not follow.
                let Some(lb) = self.lb_of_slot(slot) else {
                    return Ok(false);
                };
                if !has_tag(&lb, TAG_CREATED_BY, "yes") {
                    return Ok(false);
                }
                // A port no listener holds (one the console deleted may have left a gap).
                let Some(port) = (8000..8100).find(|p| !lb.listeners.iter().any(|l| l.port == *p))
                else {
                    return Ok(false);
                };
                self.add_listener(&lb.id, port, "console-added").await?;
            }
            Step::ConsoleDeregisterTarget { slot } => {
                let Some(lb) = self.lb_of_slot(slot) else {
                    return Ok(false);
                };
                let found = lb.listeners.iter().find_map(|l| {
                    l.rules.iter().find_map(|r| {
                        r.targets
                            .first()
                            .map(|t| (l.id.clone(), r.id.clone(), t.key().0, t.port))
                    })
                });
                let Some((listener, rule, ins, port)) = found else {
                    return Ok(false);
                };
                let params = json!({"LoadBalancerId": lb.id, "ListenerId": listener,
                    "LocationId": rule, "Targets": [{"InstanceId": ins, "Port": port}]});
                self.console("clb", "DeregisterTargets", params).await?;
            }
            Step::ConsoleRemoveClusterTag { slot } => {
                let Some(lb) = self.lb_of_slot(slot) else {
                    return Ok(false);
                };
                if !has_tag(&lb, TAG_CREATED_BY, "yes") {
                    return Ok(false);
                }
                let params = json!({
                    "ResourceList": [format!("qcs::clb:{}:uin/:clb/{}", self.clb.config().region, lb.id)],
                    "TagKeys": [TAG_CLUSTER],
                });
                self.console("tag", "UnTagResources", params).await?;
                let at = self.clb.calls().len();
                // However many CLBs of one Ingress are taken out, it still gets a new one
                // (model::create_epoch): the expectation stays Managed.
                self.truth.disowned.insert(lb.id.clone(), at);
            }
            Step::SetLifecycle { slot, mark, on } => {
                let Some(mut ing) = live(self, slot) else {
                    return Ok(false);
                };
                if ing.has(mark) == on {
                    return Ok(false);
                }
                match mark {
                    Mark::Skip => ing.skip = on,
                    Mark::Retain => ing.retain = Some(on),
                    Mark::Protect => ing.protect = Some(on),
                }
                self.write_ingress(slot, ing).await?;
                self.counters.lifecycle_steps += 1;
            }
            Step::FaultsOn(f) => {
                self.faults = faults(f);
                self.clb.set_faults(self.faults.clone());
                self.counters.fault_steps += 1;
            }
            Step::FaultsOff => {
                if self.faults == Faults::default() {
                    return Ok(false);
                }
                self.faults = Faults::default();
                self.clb.set_faults(Faults::default());
            }
            Step::DuplicateRuns { slot } => {
                if live(self, slot).is_none() {
                    return Ok(false);
                }
                let key = format!("{NS}/{}", slot_name(slot));
                let runs = [
                    vec!["reconcile", key.as_str()],
                    vec!["reconcile", key.as_str()],
                    vec!["sweep"],
                ];
                let mut children = Vec::new();
                for args in runs {
                    children.push(self.one_shot(&args)?);
                }
                for c in children {
                    let _ = c.wait_with_output().await;
                    self.counters.one_shot_runs += 1;
                }
            }
            Step::TimerSweep => self.timer().await?,
        }
        self.counters.steps += 1;
        Ok(true)
    }

    fn one_shot(&self, args: &[&str]) -> Result<Child, String> {
        let mut env = self.function.env.clone();
        env.retain(|(k, _)| k != "WEBHOOK_TOKEN");
        Command::new(crate::function::binary())
            .args(["--budget-secs", BUDGET_SECS])
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("one-shot {args:?}: {e}"))
    }

    /// Waits (bounded) for the function's first cloud write after call `from`, then kills it
    /// with SIGKILL and starts it again on the same port; kube-sim re-sends the batch.
    async fn kill_after_first_write(&mut self, from: usize) -> Result<(), String> {
        let until = Instant::now() + KILL_WAIT;
        while Instant::now() < until {
            let seen = self
                .clb
                .calls()
                .iter()
                .skip(from)
                .any(|c| is_write(&c.action));
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.function.kill().await;
        self.counters.kills += 1;
        self.function.start().await
    }

    /// `POST /v1/timer` with an SCF timer event (the sweep trigger).
    pub async fn timer(&self) -> Result<(), String> {
        let event = json!({"Type": "Timer", "TriggerName": "sweep",
            "Time": "2026-01-01T00:00:00Z", "Message": ""});
        let resp = self
            .http
            .post(format!("http://127.0.0.1:{}/v1/timer", self.function.port))
            .bearer_auth(WEBHOOK_TOKEN)
            .json(&event)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| format!("timer: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("timer: HTTP {}", resp.status()));
        }
        Ok(())
    }

    /// Lifts the faults and restarts the function if it is not running.
    pub async fn calm(&mut self) -> Result<(), String> {
        self.faults = Faults::default();
        self.clb.set_faults(Faults::default());
        let alive = match self.function.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        };
        if !alive {
            self.function.kill().await;
            self.function.start().await?;
        }
        Ok(())
    }

    /// Waits (bounded) until no Lease of the function is held: a run killed with `kill -9`
    /// keeps its Ingress locked until its Lease expires, by design.
    pub async fn leases_expired(&self) -> bool {
        let until = Instant::now() + Duration::from_secs(90);
        while Instant::now() < until {
            let now = jiff::Timestamp::now();
            let held = self
                .kube
                .list_objects("coordination.k8s.io/v1", "Lease", Some(NS))
                .iter()
                .any(|l| {
                    let spec = &l["spec"];
                    let holder = spec["holderIdentity"].as_str().unwrap_or("");
                    let renew = spec["renewTime"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                    let secs = spec["leaseDurationSeconds"].as_i64().unwrap_or(0);
                    match renew {
                        _ if holder.is_empty() => false,
                        None => true,
                        Some(r) => {
                            r + jiff::SignedDuration::from_secs(secs + LEASE_MARGIN_SECS) > now
                        }
                    }
                });
            if !held {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Waits until kube-sim has delivered (or given up) every audit event and the cloud has
    /// seen no call for a moment. False when that did not happen within [`SETTLE_LIMIT`].
    pub async fn settle(&mut self) -> bool {
        let until = Instant::now() + SETTLE_LIMIT;
        let mut calls = usize::MAX;
        let mut quiet_since = Instant::now();
        while Instant::now() < until {
            let a = self.kube.audit_stats();
            let drained = a.events == a.events_delivered + a.events_dropped;
            let n = self.clb.calls().len();
            if n != calls {
                calls = n;
                quiet_since = Instant::now();
            }
            if drained && quiet_since.elapsed() >= Duration::from_millis(150) {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        self.counters.unsettled += 1;
        false
    }

    /// The function's calls from index `from` on (the console's left out), with their index.
    pub fn function_calls(&self, from: usize) -> Vec<(usize, CallRecord)> {
        self.clb
            .calls()
            .into_iter()
            .enumerate()
            .skip(from)
            .filter(|(_, c)| !self.console_calls.contains(&c.request_id))
            .collect()
    }

    /// The Ingress of `slot` as stored.
    pub fn ingress(&self, slot: usize) -> Option<Value> {
        self.kube.get_object(
            "networking.k8s.io/v1",
            "Ingress",
            Some(NS),
            &slot_name(slot),
        )
    }
}

pub fn slot_name(slot: usize) -> String {
    debug_assert!(slot < SLOTS && NODES > 0);
    format!("ing-{slot}")
}

pub fn has_tag(lb: &LoadBalancer, key: &str, value: &str) -> bool {
    lb.tags.iter().any(|(k, v)| k == key && v == value)
}

pub fn tag<'a>(lb: &'a LoadBalancer, key: &str) -> Option<&'a str> {
    lb.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub use clb_ingress::cloud::actions::is_write;

fn ingress_class(name: &str, controller: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
           "metadata": {"name": name}, "spec": {"controller": controller}})
}

/// What clb-sim injects for each [`Fault`].
fn faults(f: Fault) -> Faults {
    let scripted = |code: &str, actions: &[&str], count: u32| {
        actions
            .iter()
            .map(|a| ScriptedFault {
                action: a.to_string(),
                code: code.to_string(),
                count,
            })
            .collect()
    };
    const WRITES: [&str; 6] = [
        "CreateLoadBalancer",
        "CreateListener",
        "CreateRule",
        "BatchRegisterTargets",
        "DeleteLoadBalancer",
        "TagResources",
    ];
    match f {
        Fault::Throttling => Faults {
            scripted: scripted("RequestLimitExceeded", &WRITES, 2),
            ..Faults::default()
        },
        Fault::InternalError => Faults {
            internal_error_rate: 0.2,
            ..Faults::default()
        },
        Fault::InOperating => Faults {
            scripted: scripted("FailedOperation.ResourceInOperating", &WRITES, 2),
            ..Faults::default()
        },
        Fault::DroppedConnections => Faults {
            drop_rate: 0.15,
            ..Faults::default()
        },
    }
}
