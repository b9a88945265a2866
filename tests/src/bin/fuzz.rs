//! `fuzz`: drives every fuzz target of `clb_ingress_tests::fuzz` in process and writes the
//! counts (inputs, panics, hangs, peak memory) as Markdown (`scripts/fuzz` → `bench/FUZZ.md`).
//! Exits non-zero when any input panicked or hung.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use clb_ingress_tests::fuzz::{quiet_panics, run_target, targets, Findings};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Hostile input for every decoder; counts per target")]
struct Args {
    /// Inputs in total, split among the targets by their shares.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// Seeds the generators, so a run can be replayed.
    #[arg(long, default_value_t = 10)]
    seed: u64,
    /// An input taking longer than this counts as a hang.
    #[arg(long, default_value_t = 2000)]
    hang_ms: u64,
    /// Where the Markdown report goes (stdout when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only targets whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Targets run at once, each in its own process (so its peak memory is its own).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Internal: run this one target in this process and print its findings as JSON.
    #[arg(long, hide = true)]
    worker: Option<usize>,
}

/// A row of the report: the findings and the peak resident memory of the target's process.
struct Row {
    found: Findings,
    peak_rss_kib: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(index) = args.worker {
        return worker(&args, index);
    }
    let started = Instant::now();
    let all: Vec<(usize, &'static str, u32)> = targets()
        .iter()
        .enumerate()
        .map(|(i, t)| (i, t.name, t.share))
        .filter(|(_, name, _)| args.only.as_deref().is_none_or(|o| name.contains(o)))
        .collect();
    let queue = Mutex::new(all.iter());
    let rows = Mutex::new(Vec::new());
    let exe = std::env::current_exe().context("finding this executable")?;
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| loop {
                let Some(&(index, name, share)) = queue.lock().ok().and_then(|mut q| q.next())
                else {
                    return;
                };
                let inputs = args.inputs * u64::from(share) / 1000;
                let row = run_worker(&exe, &args, index, inputs).unwrap_or_else(|e| Row {
                    // A worker that died (a stack overflow aborts the process) is a panic.
                    found: Findings {
                        name,
                        panics: 1,
                        first_panic: Some(format!("worker died: {e:#}")),
                        ..Findings::default()
                    },
                    peak_rss_kib: None,
                });
                eprintln!(
                    "{:<60} {:>8} inputs {:>4} panics {:>3} hangs {:>7.1}s",
                    row.found.name,
                    row.found.inputs,
                    row.found.panics,
                    row.found.hangs,
                    row.found.elapsed.as_secs_f64()
                );
                if let Ok(mut rows) = rows.lock() {
                    rows.push((index, row));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_default();
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let report = markdown(&args, &rows, started.elapsed());
    match &args.out {
        Some(path) => {
            std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{report}"),
    }
    let panics: u64 = rows.iter().map(|r| r.found.panics).sum();
    let hangs: u64 = rows.iter().map(|r| r.found.hangs).sum();
    if panics + hangs > 0 {
        anyhow::bail!("{panics} panic(s), {hangs} hang(s)");
    }
    Ok(())
}

/// Runs one target in a child process and reads its findings.
fn run_worker(exe: &PathBuf, args: &Args, index: usize, inputs: u64) -> anyhow::Result<Row> {
    let out = Command::new(exe)
        .args([
            "--worker",
            &index.to_string(),
            "--inputs",
            &inputs.to_string(),
            "--seed",
            &args.seed.to_string(),
            "--hang-ms",
            &args.hang_ms.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("starting a worker")?;
    if !out.status.success() {
        anyhow::bail!("worker exited with {}", out.status);
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("reading a worker's findings")?;
    let name = targets()
        .get(index)
        .map(|t| t.name)
        .unwrap_or("unknown target");
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(Row {
        found: Findings {
            name,
            inputs: n("inputs"),
            panics: n("panics"),
            hangs: n("hangs"),
            slowest: Duration::from_micros(n("slowest_us")),
            elapsed: Duration::from_millis(n("elapsed_ms")),
            first_panic: v["first_panic"].as_str().map(str::to_string),
        },
        peak_rss_kib: v["peak_rss_kib"].as_u64(),
    })
}

/// The child side: one target, `--inputs` of them, findings as JSON on stdout.
fn worker(args: &Args, index: usize) -> anyhow::Result<()> {
    quiet_panics();
    let mut all = targets();
    let target = all
        .get_mut(index)
        .with_context(|| format!("no target {index}"))?;
    let found = run_target(
        target,
        args.inputs,
        args.seed + index as u64,
        Duration::from_millis(args.hang_ms),
    );
    let report = json!({
        "inputs": found.inputs,
        "panics": found.panics,
        "hangs": found.hangs,
        "slowest_us": found.slowest.as_micros() as u64,
        "elapsed_ms": found.elapsed.as_millis() as u64,
        "first_panic": found.first_panic,
        "peak_rss_kib": peak_rss_kib(),
    });
    println!("{report}");
    Ok(())
}

fn markdown(args: &Args, rows: &[Row], elapsed: Duration) -> String {
    let total: u64 = rows.iter().map(|r| r.found.inputs).sum();
    let panics: u64 = rows.iter().map(|r| r.found.panics).sum();
    let hangs: u64 = rows.iter().map(|r| r.found.hangs).sum();
    let mut out = String::new();
    out.push_str("# Fuzzing: hostile and broken input\n\n");
    out.push_str(&format!(
        "Generated by `scripts/fuzz` (`cargo run -p clb-ingress-tests --bin fuzz -- --inputs {} --seed {}`, \
         {} profile) on this machine (2 shared cores). Each target runs in its own process ({} at once); a panic is \
         caught and counted (a process that dies counts as one), an input taking over {} ms counts as a \
         hang, and peak memory is the resident high-water mark (VmHWM) of the target's process.\n\n",
        args.inputs,
        args.seed,
        if cfg!(debug_assertions) { "dev" } else { "release" },
        args.jobs,
        args.hang_ms,
    ));
    out.push_str(&format!(
        "**Total: {total} inputs, {panics} panics, {hangs} hangs, in {:.0} s.**\n\n",
        elapsed.as_secs_f64()
    ));
    out.push_str("| target | inputs | panics | hangs | slowest input | peak memory | time |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let f = &r.found;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} ms | {} | {:.1} s |\n",
            f.name,
            f.inputs,
            f.panics,
            f.hangs,
            f.slowest.as_secs_f64() * 1000.0,
            r.peak_rss_kib
                .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "n/a".into()),
            f.elapsed.as_secs_f64(),
        ));
    }
    let firsts: Vec<_> = rows
        .iter()
        .filter_map(|r| r.found.first_panic.as_ref().map(|m| (r.found.name, m)))
        .collect();
    if !firsts.is_empty() {
        out.push_str("\nFirst panic per target:\n\n");
        for (name, msg) in firsts {
            out.push_str(&format!("- {name}: `{msg}`\n"));
        }
    }
    out.push_str(
        "\nWhat the inputs are: near-valid payloads whose every field may be absent or any other \
         JSON type; arbitrary unicode and strings up to 2 MB; JSON truncated at a random byte, \
         fixtures with a byte changed, inserted or removed, nesting up to 200,000 levels, random \
         bytes; CLS batches with dotted keys, stringified fields, `objectRef.` chains up to \
         50,000 deep, broken base64 and gzip; function-URL envelopes (any method, path, token, \
         body, base64 flag) through the handler; annotation maps with every supported and \
         unsupported key; clb-sim calls signed correctly with random actions and parameters \
         (reusing ids it handed out) and raw requests with any headers; kube-sim requests over \
         its API paths with random selectors, patch types, objects and protobuf frames.\n",
    );
    out
}

/// `VmHWM` of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
