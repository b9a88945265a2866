//! `clb-ingress`: the SCF custom runtime, the web-function server, and one-shot commands.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use clb_ingress::handler::{Engine, IngressKey, WebhookToken};
use clb_ingress::reconcile;
use clb_ingress::runtime::shards::ShardDispatcher;
use clb_ingress::runtime::{self, scf, web};
use tokio::time::Instant;

#[derive(Parser)]
#[command(
    name = "clb-ingress",
    version,
    about = "Gives every qcloud-class Ingress a Tencent Cloud CLB"
)]
struct Cli {
    /// The function's timeout in seconds, for invocations whose platform does not say (runs
    /// keep a margin under it).
    #[arg(long, global = true, default_value_t = runtime::FUNCTION_TIMEOUT.as_secs())]
    budget_secs: u64,
    /// Reconciles in flight at once.
    #[arg(long, global = true, default_value_t = 4)]
    concurrency: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SCF custom runtime (event function): serve invocations from SCF_RUNTIME_API.
    Runtime,
    /// Web function: HTTP routes /v1/audit, /v1/events, /v1/timer, /v1/invoke, /healthz.
    Serve {
        #[arg(long, default_value = "0.0.0.0:9000")]
        listen: SocketAddr,
        /// Longest a request waits for its reconciles before answering "accepted"
        /// (below the audit webhook's 30 s timeout).
        #[arg(long, default_value_t = 20)]
        ack_secs: u64,
    },
    /// Reconcile one Ingress now.
    Reconcile { ingress: IngressKey },
    /// Sweep: reconcile every Ingress and release orphaned CLBs.
    Sweep {
        /// Lift the mass-release guard for this run: release every orphan even when they
        /// are more than max(RELEASE_GUARD_MIN, RELEASE_GUARD_PERCENT %) of the cluster's CLBs.
        #[arg(long)]
        allow_mass_release: bool,
    },
    /// Show the plan for one Ingress without applying it.
    Plan {
        ingress: IngressKey,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    // The process-level rustls provider must exist before kube or reqwest builds a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // One-shot commands print their result on stdout, so their logs go to stderr; the
    // runtime and the server log to stdout, which SCF ships to CLS.
    let one_shot = matches!(
        cli.command,
        Command::Reconcile { .. } | Command::Sweep { .. } | Command::Plan { .. }
    );
    init_logging(one_shot);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let budget = Duration::from_secs(cli.budget_secs);
    match cli.command {
        Command::Runtime => {
            let config = scf::RuntimeConfig::from_env()?;
            let engine = build_engine().await?;
            let opts = scf::LoopOptions {
                function_timeout: budget,
                concurrency: cli.concurrency,
                token: webhook_token_from_env(),
                max_invocations: None,
            };
            scf::run(&config, engine, &opts).await?;
        }
        Command::Serve { listen, ack_secs } => {
            let Some(token) = webhook_token_from_env() else {
                bail!("WEBHOOK_TOKEN must be set (and non-empty) to serve HTTP triggers");
            };
            let engine = build_engine().await?;
            let opts = web::ServeOptions {
                budget: runtime::budget_within(budget),
                ack_within: Duration::from_secs(ack_secs),
                concurrency: cli.concurrency,
                ..web::ServeOptions::new(token)
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            web::serve(listener, engine, opts, shutdown_signal()).await?;
        }
        Command::Reconcile { ingress } => {
            let engine = build_engine().await?;
            let outcome = engine.reconcile(ingress, Instant::now() + budget).await;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        Command::Sweep { allow_mass_release } => {
            let mut engine = reconciler().await?;
            if allow_mass_release {
                engine = engine.allow_mass_release();
            }
            let outcome = engine.sweep_now(Instant::now() + budget).await;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        Command::Plan { ingress, output } => {
            let engine = reconcile::engine_from_env().await?;
            let dry = engine.dry_run(&ingress).await?;
            match output {
                Output::Text => print!("{dry}"),
                Output::Json => println!("{}", serde_json::to_string_pretty(&dry)?),
            }
        }
    }
    Ok(())
}

/// The reconcile engine from the environment (DESIGN §4).
async fn build_engine() -> anyhow::Result<Arc<dyn Engine>> {
    Ok(Arc::new(reconciler().await?))
}

async fn reconciler() -> anyhow::Result<reconcile::Reconciler> {
    let engine = reconcile::engine_from_env()
        .await
        .context("configuring the engine")?;
    Ok(
        match ShardDispatcher::from_env(engine.cloud()).context("configuring the sweep's shards")? {
            Some(dispatcher) => engine.with_shards(dispatcher),
            None => engine,
        },
    )
}

fn webhook_token_from_env() -> Option<WebhookToken> {
    std::env::var("WEBHOOK_TOKEN")
        .ok()
        .and_then(WebhookToken::new)
}

/// `LOG_FORMAT=json|text`; JSON by default when the log stream (stdout, or stderr for
/// one-shot commands) is not a terminal (SCF ships stdout to CLS). `RUST_LOG` filters,
/// default `info`.
fn init_logging(to_stderr: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let json = match std::env::var("LOG_FORMAT").ok().as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => !terminal,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (json, to_stderr) {
        (true, true) => builder.json().with_writer(std::io::stderr).init(),
        (true, false) => builder.json().init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
        (false, false) => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
