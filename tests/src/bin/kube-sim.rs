//! `kube-sim --listen ADDR [--audit-webhook URL --audit-token T]`: an in-memory Kubernetes
//! API server over plain HTTP (see `clb_ingress_tests::kube_sim`).

use clap::Parser;
use clb_ingress_tests::kube_sim::{spawn_at, KubeSimConfig};
use std::io::Write;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(name = "kube-sim", about = "In-memory Kubernetes API server for tests")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// URL that receives audit.k8s.io/v1 EventList batches.
    #[arg(long)]
    audit_webhook: Option<String>,
    /// Bearer token sent with every audit batch.
    #[arg(long, env = "KUBE_SIM_AUDIT_TOKEN", hide_env_values = true)]
    audit_token: Option<String>,
    /// Events per audit batch.
    #[arg(long, default_value_t = 400)]
    audit_batch_max_size: usize,
    /// Longest a partial audit batch waits, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    audit_batch_max_wait_ms: u64,
    /// First retry delay after a failed audit POST, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    audit_initial_backoff_ms: u64,
    /// Bearer token of the admin user (random if not given).
    #[arg(long, env = "KUBE_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Write an admin kubeconfig for this server to this file.
    #[arg(long)]
    kubeconfig_out: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let cfg = KubeSimConfig {
        audit_webhook: args.audit_webhook,
        audit_token: args.audit_token,
        audit_batch_max_size: args.audit_batch_max_size,
        audit_batch_max_wait_ms: args.audit_batch_max_wait_ms,
        audit_initial_backoff_ms: args.audit_initial_backoff_ms,
        admin_token: args.token,
        ..KubeSimConfig::default()
    };
    let sim = spawn_at(args.listen, cfg).await?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, sim.kubeconfig_yaml())?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "kube-sim listening on {}", sim.url())?;
    out.flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
