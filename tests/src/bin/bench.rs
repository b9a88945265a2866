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
use clb_ingress_tests::function;
use clb_ingress_tests::kube_sim::{self, KubeSimConfig, KubeSimHandle};
use serde_json::{json, Value};
use tokio::time::Instant;

const CLUSTER: &str = "cls-bench";
const NS: &str = "bench";

#[derive(Parser)]
#[command(about = "clb-ingress benchmarks against clb-sim and kube-sim on 127.0.0.1")]
struct Args {
    /// Fleet sizes (new Ingresses) swept by each binary.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
    sizes: Vec<usize>,
    /// `--budget-secs` of each `clb-ingress sweep` (the function's timeout, 300 s).
    #[arg(long, default_value_t = 300)]
    sweep_budget_secs: u64,
    /// Sweeps per fleet at most.
    #[arg(long, default_value_t = 4)]
    max_sweeps: usize,
    /// clb-sim requests per action per second (0 = unlimited).
    #[arg(long, default_value_t = 20)]
    rate_limit: u32,
    /// clb-sim task duration, milliseconds.
    #[arg(long, default_value_t = 50)]
    task_ms: u64,
    /// Ingresses in flight in the in-process per-reconcile scenarios.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The `clb-ingress` binary measured (cold start, fleets).
    #[arg(long)]
    bin: PathBuf,
    /// The `clb-ingress` binary of the state before (its fleets run beside `bin`'s).
    #[arg(long)]
    before_bin: Option<PathBuf>,
    /// What `before_bin` was built from, for the report.
    #[arg(long, default_value = "before")]
    before_label: String,
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

use clb_ingress::cloud::actions::is_write;

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

/// One `clb-ingress sweep` run of a binary, as measured from outside.
struct SweepRun {
    wall: Duration,
    outcome: SweepOutcome,
    calls: Vec<CallRecord>,
    /// Requests to the Kubernetes API (reads and writes).
    kube_requests: usize,
    kube_writes: usize,
}

impl SweepRun {
    fn writes(&self) -> usize {
        self.calls.iter().filter(|c| is_write(&c.action)).count() + self.kube_writes
    }
}

/// A fleet of `n` Ingresses swept by one binary until two sweeps in a row write nothing.
struct FleetRuns {
    label: String,
    n: usize,
    runs: Vec<SweepRun>,
    lbs: usize,
}

impl FleetRuns {
    /// The sweeps that wrote (the catch-up of the new fleet).
    fn catch_up(&self) -> &[SweepRun] {
        let end = self
            .runs
            .iter()
            .rposition(|r| r.writes() > 0)
            .map_or(0, |i| i + 1);
        &self.runs[..end]
    }

    /// The last sweep: one that found the fleet converged.
    fn steady(&self) -> Option<&SweepRun> {
        self.runs.last().filter(|r| r.writes() == 0)
    }
}

/// The time the per-action rate limit alone sets for `calls`: the busiest action's calls
/// divided by the limit.
fn floor_secs(calls: &[CallRecord], rate: u32) -> f64 {
    if rate == 0 {
        return 0.0;
    }
    by_action(calls).values().copied().max().unwrap_or(0) as f64 / f64::from(rate)
}

/// `bin sweep` against a fresh pair of simulators holding `n` new Ingresses (CLB quota
/// raised), repeated until two sweeps in a row write nothing (at most `max_sweeps`).
async fn fleet(args: &Args, bin: &std::path::Path, label: &str, n: usize) -> Result<FleetRuns> {
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
        clbs_per_type: n.max(100) + 10,
        ..Limits::default()
    });
    for i in 0..n {
        env.ingress(&format!("ing-{i:04}"))?;
    }
    let kubeconfig = env.kube.kubeconfig_yaml();
    let mut runs: Vec<SweepRun> = Vec::new();
    for sweep in 1..=args.max_sweeps {
        env.clear();
        let start = Instant::now();
        let out = tokio::process::Command::new(bin)
            .args([
                "sweep",
                "--budget-secs",
                &args.sweep_budget_secs.to_string(),
            ])
            .env_clear()
            .envs(function::env(&env.clb, &kubeconfig, CLUSTER))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {} sweep", bin.display()))?;
        let wall = start.elapsed();
        if !out.status.success() {
            bail!("{} sweep exited with {}", bin.display(), out.status);
        }
        let outcome: SweepOutcome = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{} sweep printed no outcome", bin.display()))?;
        let run = SweepRun {
            wall,
            outcome,
            calls: env.clb.calls(),
            kube_requests: env.kube.request_log().len(),
            kube_writes: env.kube_writes().values().sum(),
        };
        eprintln!(
            "{label}, {n} Ingresses, sweep {sweep}: {:.1} s, {} CLB calls, {} Kubernetes requests, {}",
            run.wall.as_secs_f64(),
            run.calls.len(),
            run.kube_requests,
            outcome_summary(&run.outcome)
        );
        let quiet = run.writes() == 0;
        runs.push(run);
        if quiet && runs.len() >= 2 && runs[runs.len() - 2].writes() == 0 {
            break;
        }
    }
    Ok(FleetRuns {
        label: label.to_string(),
        n,
        runs,
        lbs: env.clb.load_balancers().len(),
    })
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
            .envs(function::env(&env.clb, &kubeconfig, CLUSTER))
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

fn report(args: &Args, scenarios: &[Scenario], fleets: &[FleetRuns], cold: &ColdStart) -> String {
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
        "\n## 2. Fleets under clb-sim's {}/s per action (task {} ms): before and after, same run\n",
        args.rate_limit, args.task_ms
    );
    let _ = writeln!(
        s,
        "Each row is one binary running `clb-ingress sweep --budget-secs {}` as a subprocess \
         (its own defaults otherwise) against a fresh clb-sim and kube-sim holding N new \
         Ingresses (2 hosts, 3 paths, 2 nodes each; CLB quota raised above the default 100), \
         swept until a sweep writes nothing. The before and after fleets of one size ran at \
         the same time on the same machine. Floor: the busiest action's calls ÷ {}/s.\n",
        args.sweep_budget_secs, args.rate_limit
    );
    let _ = writeln!(
        s,
        "| N | binary | sweeps to converge | catch-up wall time | catch-up CLB calls | floor of those calls | wall ÷ floor | steady sweep: CLB calls | steady: Kubernetes requests | steady: writes | steady: wall time |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for f in fleets {
        let catch_up = f.catch_up();
        let calls: Vec<CallRecord> = catch_up.iter().flat_map(|r| r.calls.clone()).collect();
        let wall: f64 = catch_up.iter().map(|r| r.wall.as_secs_f64()).sum();
        let floor = floor_secs(&calls, args.rate_limit);
        let ratio = if floor > 0.0 {
            format!("{:.2}", wall / floor)
        } else {
            "—".into()
        };
        let steady = match f.steady() {
            Some(r) => format!(
                "{} = {} | {} | {} | {:.1} s",
                r.calls.len(),
                fmt_map(&by_action(&r.calls)),
                r.kube_requests,
                r.writes(),
                r.wall.as_secs_f64()
            ),
            None => "not reached | — | — | —".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} ({} CLBs) | {wall:.1} s | {} | {floor:.1} s | {ratio} | {steady} |",
            f.n,
            f.label,
            catch_up.len(),
            f.lbs,
            calls.len(),
        );
    }
    let _ = writeln!(s, "\nEvery sweep:\n");
    let _ = writeln!(
        s,
        "| N | binary | sweep | wall time | outcome | CLB calls | Kubernetes requests (writes) | throttled | calls per action |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for f in fleets {
        for (i, r) in f.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} s | {} | {} | {} ({}) | {} | {} |",
                f.n,
                f.label,
                i + 1,
                r.wall.as_secs_f64(),
                outcome_summary(&r.outcome),
                r.calls.len(),
                r.kube_requests,
                r.kube_writes,
                throttled(&r.calls),
                fmt_map(&by_action(&r.calls))
            );
        }
    }
    let _ = writeln!(s);
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
            "| peak RSS (VmHWM) of the bench process after the sweeps (clb-sim + kube-sim holding {} Ingresses, twice) | {:.1} MiB |",
            args.sizes.iter().max().copied().unwrap_or(0),
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
    let after = args.bin.clone();
    let mut fleets = Vec::new();
    for n in args.sizes.clone() {
        eprintln!("fleets of {n} Ingresses…");
        let now = fleet(&args, &after, "after", n);
        match &args.before_bin {
            Some(before) => {
                let then = fleet(&args, before, &args.before_label, n);
                let (then, now) = tokio::join!(then, now);
                fleets.push(then?);
                fleets.push(now?);
            }
            None => fleets.push(now.await?),
        }
    }
    let text = report(&args, &scenarios, &fleets, &cold);
    print!("{text}");
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
