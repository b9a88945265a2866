//! Benchmarks of DESIGN §5: API calls per reconcile against the minimum, a sweep of many
//! Ingresses under clb-sim's per-action rate limit, cold start of `clb-ingress serve`, and
//! peak memory. Everything runs against clb-sim and kube-sim in-process on 127.0.0.1 with
//! the real clients; the result is a Markdown report on stdout (and in `--out` if given).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use clb_ingress::cloud::{CloudClient, CloudConfig, Credentials};
use clb_ingress::cluster::ClusterClient;
use clb_ingress::handler::{IngressKey, IngressOutcome, SweepOutcome};
use clb_ingress::reconcile::{Reconciler, ReconcilerOptions};
use clb_ingress_tests::clb_sim::{self, CallRecord, Limits, SimConfig, SimHandle};
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use serde_json::{json, Value};
use tokio::time::Instant;

const CLUSTER: &str = "cls-bench";
const NS: &str = "bench";

#[derive(Parser)]
#[command(about = "clb-ingress benchmarks against clb-sim and kube-sim on 127.0.0.1")]
struct Args {
    /// Ingresses in the sweep benchmark.
    #[arg(long, default_value_t = 1000)]
    ingresses: usize,
    /// Deadline given to each sweep, in seconds.
    #[arg(long, default_value_t = 120)]
    sweep_deadline_secs: u64,
    /// clb-sim requests per action per second (0 = unlimited).
    #[arg(long, default_value_t = 20)]
    rate_limit: u32,
    /// clb-sim task duration, milliseconds.
    #[arg(long, default_value_t = 50)]
    task_ms: u64,
    /// Ingresses the sweep reconciles at once (the binary's default is 16).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The `clb-ingress` binary whose cold start is measured.
    #[arg(long)]
    bin: PathBuf,
    /// Cold starts to measure.
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Env {
    clb: SimHandle,
    kube: KubeSimHandle,
    engine: Reconciler,
}

async fn env(sim: SimConfig, concurrency: usize) -> Result<Env> {
    let clb = clb_sim::spawn(sim).await.context("clb-sim")?;
    let kube = kube_sim::spawn(KubeSimConfig::default())
        .await
        .context("kube-sim")?;
    let c = clb.config().clone();
    // The client's production defaults (20/s limiter, 500 ms task polls, retry policy);
    // only the endpoint points at the simulator.
    let cloud = CloudClient::new(
        CloudConfig::builder(Credentials::new(c.secret_id, c.secret_key), c.region)
            .endpoint(clb.url())
            .build()?,
    )?;
    let cluster = ClusterClient::from_kubeconfig_yaml(&kube.kubeconfig_yaml()).await?;
    let engine = Reconciler::new(
        cluster,
        cloud,
        CLUSTER,
        ReconcilerOptions {
            concurrency,
            ..ReconcilerOptions::default()
        },
    );
    let env = Env { clb, kube, engine };
    env.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))?;
    env.node("node-1", "ins-bench1")?;
    env.node("node-2", "ins-bench2")?;
    env.service("web", 80, 30080)?;
    env.service("api", 8080, 30081)?;
    Ok(env)
}

impl Env {
    fn put(&self, obj: Value) -> Result<Value> {
        self.kube
            .put_object(obj)
            .map_err(|e| anyhow::anyhow!("kube-sim refused a fixture: {e:?}"))
    }

    fn node(&self, name: &str, instance: &str) -> Result<()> {
        self.put(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name},
            "spec": {"providerID": format!("qcloud:///100003/{instance}")},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))?;
        Ok(())
    }

    fn service(&self, name: &str, port: i32, node_port: i32) -> Result<()> {
        self.put(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "NodePort", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": 8080, "nodePort": node_port, "protocol": "TCP"}]}
        }))?;
        Ok(())
    }

    /// 2 hosts, 3 paths, HTTP: `a.<name>/`, `a.<name>/api`, `b.<name>/`.
    fn ingress(&self, name: &str) -> Result<()> {
        let path = |p: &str, svc: &str, port: i32| {
            json!({"path": p, "pathType": "Prefix",
                   "backend": {"service": {"name": svc, "port": {"number": port}}}})
        };
        self.put(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"kubernetes.io/ingress.class": "qcloud"}},
            "spec": {"rules": [
                {"host": format!("a.{name}.example.com"),
                 "http": {"paths": [path("/", "web", 80), path("/api", "api", 8080)]}},
                {"host": format!("b.{name}.example.com"),
                 "http": {"paths": [path("/", "web", 80)]}}
            ]}
        }))?;
        Ok(())
    }

    fn clear(&self) {
        self.clb.clear_calls();
        self.kube.clear_request_log();
    }

    /// Kubernetes writes since the last clear, by `METHOD resource`.
    fn kube_writes(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.kube.request_log() {
            if r.method == "GET" {
                continue;
            }
            *out.entry(format!("{} {}", r.method, resource_of(&r.path)))
                .or_default() += 1;
        }
        out
    }

    async fn reconcile(&self, name: &str) -> IngressOutcome {
        self.engine.reconcile_one(&IngressKey::new(NS, name)).await
    }
}

/// `/apis/coordination.k8s.io/v1/namespaces/bench/leases/x` → `leases`, keeping `/status`.
fn resource_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() > i + 2 => {
            let mut r = parts[i + 2].to_string();
            if parts.get(i + 4) == Some(&"status") {
                r.push_str("/status");
            }
            r
        }
        _ => parts.last().copied().unwrap_or_default().to_string(),
    }
}

fn by_action(calls: &[CallRecord]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.action.clone()).or_default() += 1;
    }
    out
}

fn throttled(calls: &[CallRecord]) -> usize {
    calls
        .iter()
        .filter(|c| c.code == "RequestLimitExceeded")
        .count()
}

fn is_write(action: &str) -> bool {
    !action.starts_with("Describe")
}

fn fmt_map(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "—".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Scenario {
    name: &'static str,
    minimum: &'static str,
    status: String,
    calls: Vec<CallRecord>,
    kube_writes: BTreeMap<String, usize>,
}

async fn per_reconcile(task_ms: u64) -> Result<Vec<Scenario>> {
    let env = env(
        SimConfig {
            task_ms,
            ..SimConfig::default()
        },
        4,
    )
    .await?;
    let mut out = Vec::new();
    let mut step = |name, minimum, o: IngressOutcome, env: &Env| {
        out.push(Scenario {
            name,
            minimum,
            status: format!("{:?}", o.status),
            calls: env.clb.calls(),
            kube_writes: env.kube_writes(),
        });
        env.clear();
    };

    env.ingress("shop")?;
    env.clear();
    let o = env.reconcile("shop").await;
    step(
        "new Ingress (2 hosts, 3 paths, 2 nodes, HTTP)",
        "writes 4 (CreateLoadBalancer, CreateListener, CreateRule with 3 rules, \
         BatchRegisterTargets of 6 targets); task polls 3 (the client waits on the first \
         three, not on BatchRegisterTargets); reads 2 (find by tag, one read for the VIP)",
        o,
        &env,
    );
    let o = env.reconcile("shop").await;
    step(
        "steady state (nothing changed)",
        "reads 3 (DescribeLoadBalancers, DescribeListeners, DescribeTargets), writes 0",
        o,
        &env,
    );
    env.node("node-3", "ins-bench3")?;
    env.clear();
    let o = env.reconcile("shop").await;
    step(
        "one target change (a third Node joins)",
        "reads 3, writes 1 (BatchRegisterTargets of 3 targets), task polls 0",
        o,
        &env,
    );
    if !env
        .kube
        .delete_object("networking.k8s.io/v1", "Ingress", Some(NS), "shop")
    {
        bail!("the bench Ingress vanished before its release");
    }
    env.clear();
    let o = env.reconcile("shop").await;
    step(
        "release (Ingress deleted)",
        "reads 1 (find by tag), writes 1 (DeleteLoadBalancer) + its task poll",
        o,
        &env,
    );
    Ok(out)
}

struct SweepRun {
    label: String,
    wall: Duration,
    outcome: SweepOutcome,
    calls: Vec<CallRecord>,
    /// Requests to the Kubernetes API (reads and writes).
    kube_requests: usize,
    kube_writes: usize,
}

fn outcome_summary(o: &SweepOutcome) -> String {
    let mut s: Vec<String> = o
        .ingresses
        .iter()
        .map(|(k, v)| format!("{k:?} {v}"))
        .collect();
    s.push(format!("not_reached {}", o.not_reached));
    if let Some(e) = &o.error {
        s.push(format!("error: {e}"));
    }
    s.join(", ")
}

async fn sweeps(args: &Args) -> Result<(Vec<SweepRun>, usize)> {
    let env = env(
        SimConfig {
            task_ms: args.task_ms,
            rate_limit: args.rate_limit,
            ..SimConfig::default()
        },
        args.concurrency,
    )
    .await?;
    // Tencent's default quota (and clb-sim's) is 100 CLBs per type per region; one CLB per
    // Ingress needs a raised quota, so the bench raises it to measure the sweep itself.
    env.clb.set_limits(Limits {
        clbs_per_type: args.ingresses.max(100) + 10,
        ..Limits::default()
    });
    for i in 0..args.ingresses {
        env.ingress(&format!("ing-{i:04}"))?;
    }
    let mut runs = Vec::new();
    // Sweeps until one finds nothing to write (at most 6), so both the catch-up and the
    // steady state are measured.
    for n in 1..=7 {
        env.clear();
        let start = Instant::now();
        let outcome = env
            .engine
            .sweep_now(start + Duration::from_secs(args.sweep_deadline_secs))
            .await;
        let wall = start.elapsed();
        let calls = env.clb.calls();
        let kube_requests = env.kube.request_log().len();
        let kube_writes = env.kube_writes().values().sum();
        let steady = calls.iter().all(|c| !is_write(&c.action));
        eprintln!(
            "sweep {n}: {:.1} s, {} calls, {}",
            wall.as_secs_f64(),
            calls.len(),
            outcome_summary(&outcome)
        );
        runs.push(SweepRun {
            label: format!("sweep {n}"),
            wall,
            outcome,
            calls,
            kube_requests,
            kube_writes,
        });
        // The steady sweep is measured once more after the first one that wrote nothing:
        // its own count, not the tail of the catch-up.
        if steady
            && runs.len() >= 2
            && runs[runs.len() - 2]
                .calls
                .iter()
                .all(|c| !is_write(&c.action))
        {
            break;
        }
    }
    Ok((runs, env.clb.load_balancers().len()))
}

fn vm_hwm_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct ColdStart {
    times: Vec<Duration>,
    child_hwm_kib: Option<u64>,
}

async fn cold_starts(args: &Args) -> Result<ColdStart> {
    let env = env(SimConfig::default(), 4).await?;
    let kubeconfig = env.kube.kubeconfig_yaml();
    let c = env.clb.config().clone();
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    let mut child_hwm_kib = None;
    for _ in 0..args.starts {
        // A free port: bound and released; the child binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&args.bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("CLUSTER_ID", CLUSTER)
            .env("KUBECONFIG_DATA", &kubeconfig)
            .env("TENCENTCLOUD_SECRET_ID", &c.secret_id)
            .env("TENCENTCLOUD_SECRET_KEY", &c.secret_key)
            .env("TENCENTCLOUD_REGION", &c.region)
            .env("CLB_ENDPOINT", env.clb.url())
            .env("TAG_ENDPOINT", env.clb.url())
            .env("WEBHOOK_TOKEN", "bench-token")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", args.bin.display()))?;
        let url = format!("http://127.0.0.1:{port}/healthz");
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!("clb-ingress serve exited before /healthz answered: {status}");
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("/healthz did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(start.elapsed());
        if let Some(pid) = child.id() {
            child_hwm_kib = vm_hwm_kib(&pid.to_string()).or(child_hwm_kib);
        }
        child.kill().await?;
    }
    Ok(ColdStart {
        times,
        child_hwm_kib,
    })
}

fn report(
    args: &Args,
    scenarios: &[Scenario],
    runs: &[SweepRun],
    lbs: usize,
    cold: &ColdStart,
) -> String {
    let mut s = String::new();
    let profile = if cfg!(debug_assertions) {
        "dev (debug)"
    } else {
        "release"
    };
    let _ = writeln!(s, "# clb-ingress benchmarks\n");
    let _ = writeln!(
        s,
        "Measured by `scripts/bench` ({profile} build) against clb-sim and kube-sim \
         in-process on 127.0.0.1 with the real clients, on a 2-core machine shared with \
         other builds. The cloud client uses its production defaults (20 requests/s per \
         action limiter, 500 ms task polls); only its endpoint is the simulator.\n"
    );
    let _ = writeln!(
        s,
        "## 1. API calls per reconcile (clb-sim task {} ms, no rate limit)\n",
        args.task_ms
    );
    let _ = writeln!(
        s,
        "| scenario | outcome | cloud writes | task polls | other reads | Kubernetes writes | minimum |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for sc in scenarios {
        let all = by_action(&sc.calls);
        let writes: BTreeMap<String, usize> = all
            .iter()
            .filter(|(a, _)| is_write(a))
            .map(|(a, n)| (a.clone(), *n))
            .collect();
        let polls = all.get("DescribeTaskStatus").copied().unwrap_or(0);
        let reads: BTreeMap<String, usize> = all
            .iter()
            .filter(|(a, _)| !is_write(a) && a.as_str() != "DescribeTaskStatus")
            .map(|(a, n)| (a.clone(), *n))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} = {} | {} | {} = {} | {} | {} |",
            sc.name,
            sc.status,
            writes.values().sum::<usize>(),
            fmt_map(&writes),
            polls,
            reads.values().sum::<usize>(),
            fmt_map(&reads),
            fmt_map(&sc.kube_writes),
            sc.minimum
        );
    }
    let _ = writeln!(
        s,
        "\n## 2. Sweep of {} Ingresses (each 2 hosts, 3 paths, 2 nodes), clb-sim rate limit \
         {}/s per action, task {} ms, sweep concurrency {}, deadline {} s per sweep, \
         CLB quota raised above the default 100\n",
        args.ingresses, args.rate_limit, args.task_ms, args.concurrency, args.sweep_deadline_secs
    );
    let _ = writeln!(
        s,
        "| sweep | wall time | outcome | cloud calls | Kubernetes requests (writes) | throttled (RequestLimitExceeded) | calls per action |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {:.1} s | {} | {} | {} ({}) | {} | {} |",
            r.label,
            r.wall.as_secs_f64(),
            outcome_summary(&r.outcome),
            r.calls.len(),
            r.kube_requests,
            r.kube_writes,
            throttled(&r.calls),
            fmt_map(&by_action(&r.calls))
        );
    }
    let _ = writeln!(s, "\nCLBs in clb-sim after the sweeps: {lbs}.\n");
    let _ = writeln!(s, "## 3. Cold start and memory\n");
    let mut t: Vec<f64> = cold
        .times
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    t.sort_by(f64::total_cmp);
    let _ = writeln!(s, "| measure | value |");
    let _ = writeln!(s, "|---|---|");
    if let (Some(min), Some(max)) = (t.first(), t.last()) {
        let _ = writeln!(
            s,
            "| spawn `{}` serve → `/healthz` 200 ({} starts) | min {min:.1} ms, median {:.1} ms, max {max:.1} ms |",
            args.bin.display(),
            t.len(),
            t[t.len() / 2]
        );
    }
    if let Some(kib) = cold.child_hwm_kib {
        let _ = writeln!(
            s,
            "| peak RSS (VmHWM) of `clb-ingress serve`, idle just after `/healthz` answered | {:.1} MiB |",
            kib as f64 / 1024.0
        );
    }
    if let Some(kib) = vm_hwm_kib("self") {
        let _ = writeln!(
            s,
            "| peak RSS (VmHWM) of the bench process after the sweeps (engine + clb-sim + kube-sim holding {} Ingresses) | {:.1} MiB |",
            args.ingresses,
            kib as f64 / 1024.0
        );
    }
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    // Failed reconciles say why on stderr; the report itself only counts outcomes.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    eprintln!("per-reconcile call counts…");
    let scenarios = per_reconcile(args.task_ms).await?;
    eprintln!("cold starts…");
    let cold = cold_starts(&args).await?;
    eprintln!("sweep of {} Ingresses…", args.ingresses);
    let (runs, lbs) = sweeps(&args).await?;
    let text = report(&args, &scenarios, &runs, lbs, &cold);
    print!("{text}");
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
