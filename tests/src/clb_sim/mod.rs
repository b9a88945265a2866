//! In-memory CLB 2018-03-17 and Tag 2018-08-13 API emulator, plus SCF 2018-04-16 `Invoke`
//! (asynchronous; recorded, not run: [`SimHandle::invocations`]).
//!
//! A real HTTP server on loopback that the official SDK cannot tell from the real API: TC3
//! signatures are verified, errors come in the API's envelope with its codes, writes the real
//! API runs as tasks run as tasks (`task_ms`), and a CLB with a running task refuses other
//! writes with `FailedOperation.ResourceInOperating`. Tests use [`spawn`] and the
//! [`SimHandle`] accessors; the `clb-sim` binary serves the same code.
//!
//! Admin routes (plain HTTP, unsigned, not in the call log):
//! - `GET /_sim/state`: every CLB as DescribeLoadBalancers shows it, plus `Listeners`
//!   (as DescribeListeners, with `Targets` on rules and L4 listeners), `Busy`, `CreateParams`.
//! - `GET /_sim/calls`: [`CallRecord`]s as JSON (`action`, `service`, `code`, `lb_ids`,
//!   `request_id`, `at_unix_ms`).
//! - `GET /_sim/invocations`: accepted SCF `Invoke` calls ([`scf::Invocation`]: `function_name`,
//!   `namespace`, `qualifier`, `client_context`, `function_request_id`).
//! - `GET|POST /_sim/faults`: [`Faults`] as JSON, e.g.
//!   `{"internal_error_rate":0.1,"drop_rate":0.05,"latency_rate":0.2,"latency_ms":300,
//!   "actions":["CreateRule"],"scripted":[{"action":"CreateListener","code":"RequestLimitExceeded","count":2}],
//!   "task_failures":[{"action":"CreateRule","count":1}],"lagging_id_reads":3}`; `{}` clears them.
//!
//! Call log convention: [`CallRecord::code`] is `"Ok"` for a success, `"Dropped"` for a
//! connection cut by an injected fault, else the error code answered.
mod clb;
pub mod client;
mod detail;
mod faults;
pub mod limits;
mod listeners;
mod model;
mod params;
mod quota;
mod rewrite;
pub mod scf;
mod server;
pub mod sign;
pub mod ssl;
mod tag;
mod targets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use clb::CLB_ACTIONS;
pub use faults::{Faults, ScriptedFault, TaskFailure};
pub use model::{Certificate, Limits, Listener, LoadBalancer, Rule, SimState, Target};
pub use params::ApiError;
pub use server::CallRecord;

use server::{lock, Sim};

/// How the emulator behaves. `Debug` is written by hand so the secret key never shows.
#[derive(Clone)]
pub struct SimConfig {
    pub secret_id: String,
    pub secret_key: String,
    pub region: String,
    /// Further regions served, each with a state of its own (`cross-region-id`).
    pub other_regions: Vec<String>,
    /// How long a task runs, in milliseconds (0: tasks finish at once).
    pub task_ms: u64,
    /// Requests per action per second; 0 = unlimited.
    pub rate_limit: u32,
    /// Probability that a call is faulted (see [`Faults::from_rate`]).
    pub fault_rate: f64,
    /// Seeds ids, RequestIds and faults, so a run can be replayed.
    pub seed: u64,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .field("other_regions", &self.other_regions)
            .field("task_ms", &self.task_ms)
            .field("rate_limit", &self.rate_limit)
            .field("fault_rate", &self.fault_rate)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            secret_id: "AKIDTEST".into(),
            secret_key: "test-secret-key".into(),
            region: "ap-guangzhou".into(),
            other_regions: Vec::new(),
            task_ms: 0,
            rate_limit: 0,
            fault_rate: 0.0,
            seed: 1,
        }
    }
}

/// A running emulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The emulator's routes without a socket (for a driver calling it in process, the fuzzer).
pub fn router_in_process(cfg: SimConfig) -> axum::Router {
    server::router(Arc::new(Sim::new(cfg)))
}

/// Starts the emulator on `127.0.0.1:0` in a tokio task.
pub async fn spawn(cfg: SimConfig) -> std::io::Result<SimHandle> {
    spawn_on(cfg, "127.0.0.1:0").await
}

/// Starts the emulator on `listen` (`HOST:PORT`; port 0 picks a free one).
pub async fn spawn_on(cfg: SimConfig, listen: &str) -> std::io::Result<SimHandle> {
    if !(0.0..=1.0).contains(&cfg.fault_rate) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "fault_rate must be within 0..=1",
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(cfg));
    let app = server::router(sim.clone());
    // Without TCP_NODELAY a multi-segment response waits on the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "clb-sim server stopped");
        }
    });
    Ok(SimHandle { addr, sim, server })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, usable as `CLB_ENDPOINT` and `TAG_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &SimConfig {
        &self.sim.cfg
    }

    /// Every API call so far, in arrival order (admin routes are not logged).
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.sim.calls).clone()
    }

    /// How many calls of `action` were made (any outcome).
    pub fn call_count(&self, action: &str) -> usize {
        lock(&self.sim.calls)
            .iter()
            .filter(|c| c.action == action)
            .count()
    }

    /// Accepted SCF `Invoke` calls, in arrival order.
    pub fn invocations(&self) -> Vec<scf::Invocation> {
        lock(&self.sim.invocations).clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.sim.calls).clear();
    }

    /// The same JSON as `GET /_sim/state`.
    pub fn state(&self) -> serde_json::Value {
        model::state_json(&lock(&self.sim.state), Instant::now())
    }

    pub fn set_faults(&self, f: Faults) {
        lock(&self.sim.faults).faults = f;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.sim.faults).faults.clone()
    }

    /// Changes how long new tasks run (running ones keep their end).
    pub fn set_task_ms(&self, ms: u64) {
        self.sim
            .task_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Changes the per-action, per-second rate limit (0 = off).
    pub fn set_rate_limit(&self, per_sec: u32) {
        self.sim
            .rate_limit
            .store(per_sec, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_limits(&self, limits: Limits) {
        lock(&self.sim.state).limits = limits;
    }

    pub fn load_balancers(&self) -> Vec<LoadBalancer> {
        lock(&self.sim.state).load_balancers.clone()
    }

    pub fn load_balancer(&self, id: &str) -> Option<LoadBalancer> {
        lock(&self.sim.state).lb(id).cloned()
    }

    /// Changes the world behind the API's back ("someone edited it in the console").
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut lock(&self.sim.state))
    }

    /// The CLBs of `region` (one of `other_regions`, or the home region).
    pub fn load_balancers_in(&self, region: &str) -> Vec<LoadBalancer> {
        self.sim.in_region(region, |s| s.load_balancers.clone())
    }

    /// Adds a ready CLB directly, as if made elsewhere; returns its id.
    pub fn insert_load_balancer(&self, lb_type: &str, name: &str, tags: &[(&str, &str)]) -> String {
        let region = self.sim.cfg.region.clone();
        self.insert_load_balancer_in(&region, lb_type, name, tags)
    }

    /// [`Self::insert_load_balancer`] in `region` (one of `other_regions`).
    pub fn insert_load_balancer_in(
        &self,
        region: &str,
        lb_type: &str,
        name: &str,
        tags: &[(&str, &str)],
    ) -> String {
        self.sim.in_region(region, |s| {
            let id = s.new_id("lb");
            let n = s.next_seq();
            s.load_balancers.push(LoadBalancer {
                domain: limits::lb_domain(&id, region),
                id: id.clone(),
                name: name.to_string(),
                lb_type: lb_type.to_string(),
                vip: format!("172.16.{}.{}", (n >> 8) & 0xff, (n & 0xff).max(1)),
                vpc_id: limits::DEFAULT_VPC.to_string(),
                subnet_id: if lb_type == "INTERNAL" {
                    "subnet-default0".into()
                } else {
                    String::new()
                },
                project_id: 0,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                security_groups: Vec::new(),
                create_time: model::api_time_now(),
                pass_to_target: false,
                delete_protect: false,
                internet_charge_type: "TRAFFIC_POSTPAID_BY_HOUR".into(),
                bandwidth_out: 10,
                listeners: Vec::new(),
                rewrites: Vec::new(),
                create_params: serde_json::Map::new(),
                creating_until: None,
                busy_until: None,
            });
            id
        })
    }

    /// Deletes a listener behind the API's back; false if there was none.
    pub fn remove_listener(&self, lb_id: &str, listener_id: &str) -> bool {
        self.with_state(|s| match s.lb_mut(lb_id) {
            Some(lb) => {
                let before = lb.listeners.len();
                lb.listeners.retain(|l| l.id != listener_id);
                lb.listeners.len() != before
            }
            None => false,
        })
    }

    /// Deletes a CLB behind the API's back; false if there was none.
    pub fn remove_load_balancer(&self, lb_id: &str) -> bool {
        self.with_state(|s| {
            let before = s.load_balancers.len();
            s.load_balancers.retain(|l| l.id != lb_id);
            s.load_balancers.len() != before
        })
    }

    /// Replaces a CLB's tags behind the API's back; false if there is no such CLB.
    pub fn set_tags(&self, lb_id: &str, tags: &[(&str, &str)]) -> bool {
        self.with_state(|s| match s.lb_mut(lb_id) {
            Some(lb) => {
                lb.tags = tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                true
            }
            None => false,
        })
    }

    /// Tasks still running: a run waiting on one stays there until [`Self::finish_tasks`].
    pub fn running_tasks(&self) -> usize {
        let now = Instant::now();
        self.with_state(|s| s.tasks.values().filter(|t| t.done_at > now).count())
    }

    /// Ends every running task now (creating CLBs become normal, busy CLBs writable).
    pub fn finish_tasks(&self) {
        let now = Instant::now();
        self.with_state(|s| {
            for lb in &mut s.load_balancers {
                lb.busy_until = None;
                lb.creating_until = None;
            }
            for t in s.tasks.values_mut() {
                t.done_at = now;
            }
        });
    }
}
