//! `clb-sim`: the CLB + Tag API emulator as a process, for the demo and local runs.

use std::io::Write;

use clap::Parser;
use clb_ingress_tests::clb_sim::{spawn_on, SimConfig};

#[derive(Parser)]
#[command(
    name = "clb-sim",
    about = "In-memory Tencent Cloud CLB 2018-03-17 + Tag 2018-08-13 API emulator"
)]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:9100 (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    #[arg(long)]
    secret_id: String,
    #[arg(long, hide_env_values = true)]
    secret_key: String,
    #[arg(long, default_value = "ap-guangzhou")]
    region: String,
    /// A further region served with a state of its own (repeatable), for `cross-region-id`.
    #[arg(long = "other-region")]
    other_regions: Vec<String>,
    /// How long async tasks run, in milliseconds.
    #[arg(long, default_value_t = 0)]
    task_ms: u64,
    /// Requests per action per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    rate_limit: u32,
    /// Probability that a call is faulted (InternalError, latency or dropped connection).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cfg = SimConfig {
        secret_id: args.secret_id,
        secret_key: args.secret_key,
        region: args.region,
        other_regions: args.other_regions,
        task_ms: args.task_ms,
        rate_limit: args.rate_limit,
        fault_rate: args.fault_rate,
        seed: args.seed,
    };
    let handle = match spawn_on(cfg, &args.listen).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("clb-sim: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "clb-sim listening on {}", handle.url());
    let _ = out.flush();
    let _ = tokio::signal::ctrl_c().await;
}
