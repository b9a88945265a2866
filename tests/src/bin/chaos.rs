//! `scripts/chaos`: runs N seeded histories of the chaos harness (tests/src/chaos/) against
//! kube-sim, clb-sim and the real `clb-ingress` binary, shrinks every failing one, prints
//! each failure (seed and shortest history) and writes the figures as Markdown.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use clb_ingress_tests::chaos::{self, model, Figures};
use futures::stream::{self, StreamExt};

#[derive(Parser)]
#[command(about = "Seeded chaos histories against the real function; figures to bench/CHAOS.md")]
struct Args {
    /// Histories to run.
    #[arg(long, default_value_t = 25)]
    histories: usize,
    /// Seed of the first history; history i uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps per history.
    #[arg(long, default_value_t = 14)]
    steps: usize,
    /// Histories run at once (each has its own simulators and function process).
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Also the step kinds pending a §1 fix (chaos::PENDING).
    #[arg(long)]
    all_kinds: bool,
    /// Replays allowed to shrink one failing history.
    #[arg(long, default_value_t = 24)]
    shrink_budget: usize,
    /// Where the figures go.
    #[arg(long, default_value = "bench/CHAOS.md")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let kinds = if args.all_kinds {
        model::ALL_KINDS.to_vec()
    } else {
        chaos::enabled_kinds()
    };
    let command = format!(
        "scripts/chaos --histories {} --seed {} --steps {} --jobs {}{}",
        args.histories,
        args.seed,
        args.steps,
        args.jobs,
        if args.all_kinds { " --all-kinds" } else { "" }
    );
    let started = std::time::Instant::now();
    let mut runs = stream::iter(0..args.histories as u64)
        .map(|i| {
            let seed = args.seed + i;
            let steps = model::generate(seed, args.steps, &kinds);
            async move { (seed, chaos::run(seed, &steps).await) }
        })
        .buffer_unordered(args.jobs.max(1));
    let mut figures = Figures::default();
    let mut failing = Vec::new();
    // The figures are written after every history, so a run stopped early still leaves
    // the real numbers of what it did.
    while let Some((seed, result)) = runs.next().await {
        match result {
            Ok(o) => {
                figures.add(&o);
                if let Some(inv) = o.first() {
                    let what = o.violations[0].1.what.clone();
                    eprintln!("seed {seed}: {inv:?}: {what}\n{}", chaos::render(&o.steps));
                    failing.push((seed, inv, what, o));
                }
            }
            Err(e) => {
                eprintln!("seed {seed}: harness error: {e}");
                figures.harness_errors.push(format!("seed {seed}: {e}"));
            }
        }
        let note = format!(
            "\nIn progress: {} of {} histories done after {:.0} s.\n",
            figures.histories + figures.harness_errors.len(),
            args.histories,
            started.elapsed().as_secs_f64()
        );
        write(
            &args.out,
            &(figures.markdown(&command, &kinds, args.seed) + &note),
        )?;
    }
    failing.sort_by_key(|(seed, ..)| *seed);
    for (seed, inv, what, o) in failing {
        let short = chaos::shrink(seed, &o.steps, inv, args.shrink_budget).await;
        eprintln!(
            "seed {seed}: shrunk to {} steps:\n{}function log (last lines):\n{}\n",
            short.len(),
            chaos::render(&short),
            o.log_tail
        );
        figures.failures.push((seed, inv, what, short));
    }
    let md = figures.markdown(&command, &kinds, args.seed)
        + &format!(
            "\nWall time of the whole run: {:.0} s.\n",
            started.elapsed().as_secs_f64()
        );
    print!("{md}");
    write(&args.out, &md)?;
    if figures.total_violations() > 0 || !figures.harness_errors.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn write(out: &std::path::Path, md: &str) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, md).with_context(|| format!("writing {}", out.display()))
}
