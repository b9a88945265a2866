//! The chaos harness of issue 8 §2: seeded, replayable histories of user, console, fault and
//! crash events against kube-sim, clb-sim and the real `clb-ingress` binary, with the four
//! ownership invariants checked after every step and after quiet, and greedy shrinking of a
//! failing history to the shortest one that still fails.
//!
//! A history is a pure function of its seed ([`model::generate`]); replaying it starts fresh
//! simulators seeded the same way. Timing between the function and the simulators is real,
//! so a replay can take another interleaving: shrinking keeps a cut only when the shorter
//! history still fails.

pub mod check;
pub mod model;
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use check::{Invariant, Violation, INVARIANTS};
use model::{Kind, Step, ALL_KINDS};
use world::World;

/// Step kinds left out of the bounded set of the test command, each with the §1 path of
/// issue 8 whose fix it waits for. `scripts/chaos --all-kinds` runs them anyway.
pub const PENDING: &[(Kind, &str)] = &[];

/// The step kinds of the bounded set: every kind not [`PENDING`].
pub fn enabled_kinds() -> Vec<Kind> {
    ALL_KINDS
        .iter()
        .copied()
        .filter(|k| !PENDING.iter().any(|(p, _)| p == k))
        .collect()
}

/// What one history did and found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub steps: Vec<Step>,
    /// Violations with the step after which they were seen (`None`: after quiet).
    pub violations: Vec<(Option<usize>, Violation)>,
    pub counters: world::Counters,
    /// Calls clb-sim answered with an error or a cut connection of the injected kinds.
    pub faulted_calls: usize,
    /// CLBs a lifecycle annotation kept (the harness's `truth.kept` at the end).
    pub kept: usize,
    pub log_tail: String,
}

impl Outcome {
    pub fn first(&self) -> Option<Invariant> {
        self.violations.first().map(|(_, v)| v.invariant)
    }
}

/// Runs one history from scratch: fresh simulators and function, `steps` in order with the
/// per-step checks (I1, I2), then quiet (faults off, the function up, the Leases of killed
/// runs expired, two timer sweeps) and
/// the final checks (I1–I3), then one more sweep that must write nothing (I4). Stops at the
/// first step that breaks an invariant.
pub async fn run(seed: u64, steps: &[Step]) -> Result<Outcome, String> {
    let t = Instant::now();
    let mut w = World::start(seed).await?;
    w.counters.took("start", t);
    let mut violations = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        check::observe_kept(&mut w);
        let truth_before = w.truth.clone();
        let protected = check::protected(&w);
        let from = w.clb.calls().len();
        let console_deleted = match step {
            Step::ConsoleDeleteListener { slot } => w.lb_of_slot(*slot).map(|l| l.id),
            _ => None,
        };
        let t = Instant::now();
        w.apply(step)
            .await
            .map_err(|e| format!("step {i} {step:?}: {e}"))?;
        w.counters.took(format!("{:?}", step.kind()), t);
        let t = Instant::now();
        w.settle().await;
        w.counters.took("settle", t);
        let mut found = check::i1(&w, from);
        found.extend(check::i2(
            &w,
            &protected,
            &truth_before,
            from,
            console_deleted.as_deref(),
        ));
        found.extend(check::kept(&w, from));
        if !found.is_empty() {
            violations.extend(found.into_iter().map(|v| (Some(i), v)));
            return Ok(finish(w, seed, steps, violations));
        }
    }
    let t = Instant::now();
    w.calm().await?;
    w.settle().await;
    w.counters.took("settle", t);
    let t = Instant::now();
    if !w.leases_expired().await {
        w.counters.unsettled += 1;
    }
    w.counters.took("leases", t);
    let t = Instant::now();
    check::observe_kept(&mut w);
    let truth_before = w.truth.clone();
    let protected = check::protected(&w);
    let from = w.clb.calls().len();
    for _ in 0..2 {
        w.timer().await?;
        w.settle().await;
    }
    let mut found = check::i1(&w, from);
    found.extend(check::i2(&w, &protected, &truth_before, from, None));
    found.extend(check::kept(&w, from));
    found.extend(check::i3(&w));
    found.extend(check::kept_released(&w));
    if found.is_empty() {
        let mark = w.clb.calls().len();
        w.timer().await?;
        w.settle().await;
        found.extend(check::i4(&w, mark));
    }
    w.counters.took("quiet", t);
    violations.extend(found.into_iter().map(|v| (None, v)));
    Ok(finish(w, seed, steps, violations))
}

fn finish(
    w: World,
    seed: u64,
    steps: &[Step],
    violations: Vec<(Option<usize>, Violation)>,
) -> Outcome {
    const INJECTED: [&str; 4] = [
        "InternalError",
        "Dropped",
        "RequestLimitExceeded",
        "FailedOperation.ResourceInOperating",
    ];
    let faulted_calls = w
        .clb
        .calls()
        .iter()
        .filter(|c| INJECTED.contains(&c.code.as_str()))
        .count();
    let log_tail = if violations.is_empty() {
        String::new()
    } else {
        w.function_log_tail(40)
    };
    Outcome {
        seed,
        steps: steps.to_vec(),
        violations,
        counters: w.counters.clone(),
        faulted_calls,
        kept: w.truth.kept.len(),
        log_tail,
    }
}

/// The shortest history (by greedy cuts: halves, then quarters, … then single steps) that
/// still breaks `target` when replayed from scratch with `seed`, within `budget` replays.
pub async fn shrink(seed: u64, steps: &[Step], target: Invariant, budget: usize) -> Vec<Step> {
    let mut cur = steps.to_vec();
    let mut replays = 0;
    let mut chunk = cur.len().div_ceil(2).max(1);
    while chunk >= 1 && replays < budget {
        let mut i = 0;
        let mut cut_any = false;
        while i < cur.len() && replays < budget {
            let mut candidate = cur.clone();
            let end = (i + chunk).min(candidate.len());
            candidate.drain(i..end);
            replays += 1;
            let fails = matches!(run(seed, &candidate).await, Ok(o)
                if o.violations.iter().any(|(_, v)| v.invariant == target));
            if fails {
                cur = candidate;
                cut_any = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !cut_any {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    cur
}

/// A history as numbered lines, for a failure report.
pub fn render(steps: &[Step]) -> String {
    let mut s = String::new();
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(s, "  {i:>2}. {step:?}");
    }
    s
}

/// Totals over a set of histories (the figures of bench/CHAOS.md).
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub histories: usize,
    pub steps_generated: usize,
    pub steps_applied: usize,
    pub fault_steps: usize,
    pub faulted_calls: usize,
    pub kills: usize,
    pub one_shot_runs: usize,
    pub unsettled: usize,
    pub lifecycle_steps: usize,
    pub kept: usize,
    /// Wall time summed over histories, by phase (see [`world::Counters::time`]).
    pub time: BTreeMap<String, Duration>,
    /// Histories breaking each invariant (a history counts once per invariant).
    pub violations: BTreeMap<Invariant, usize>,
    pub harness_errors: Vec<String>,
    /// Failing seeds with the invariant and the shrunk history.
    pub failures: Vec<(u64, Invariant, String, Vec<Step>)>,
}

impl Figures {
    pub fn add(&mut self, o: &Outcome) {
        self.histories += 1;
        self.steps_generated += o.steps.len();
        self.steps_applied += o.counters.steps;
        self.fault_steps += o.counters.fault_steps;
        self.faulted_calls += o.faulted_calls;
        self.kills += o.counters.kills;
        self.one_shot_runs += o.counters.one_shot_runs;
        self.unsettled += o.counters.unsettled;
        self.lifecycle_steps += o.counters.lifecycle_steps;
        self.kept += o.kept;
        for (k, d) in &o.counters.time {
            *self.time.entry(k.clone()).or_default() += *d;
        }
        let mut seen = Vec::new();
        for (_, v) in &o.violations {
            if !seen.contains(&v.invariant) {
                seen.push(v.invariant);
                *self.violations.entry(v.invariant).or_default() += 1;
            }
        }
    }

    pub fn total_violations(&self) -> usize {
        self.violations.values().sum()
    }

    /// The figures as Markdown.
    pub fn markdown(&self, command: &str, kinds: &[Kind], first_seed: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Chaos histories\n");
        let _ = writeln!(
            s,
            "`{command}` — seeds {first_seed}..{}, each history a fresh kube-sim and clb-sim \
             (task 2 ms) and the real `clb-ingress serve` (plus one-shot `reconcile`/`sweep` \
             runs), checked after every step and after quiet (tests/src/chaos/).\n",
            first_seed + self.histories as u64
        );
        let _ = writeln!(s, "| figure | value |\n|---|---|");
        for (k, val) in [
            ("histories", self.histories),
            ("steps generated", self.steps_generated),
            (
                "steps applied (the rest did not apply to the state reached)",
                self.steps_applied,
            ),
            ("fault steps (faults switched on)", self.fault_steps),
            (
                "calls answered with an injected-kind fault",
                self.faulted_calls,
            ),
            ("kill -9 of the function mid-work", self.kills),
            ("one-shot runs beside the server", self.one_shot_runs),
            (
                "lifecycle steps (mode: skip, loadbalance-retain, deletion-protection)",
                self.lifecycle_steps,
            ),
            (
                "CLBs kept by a lifecycle annotation (never deleted from then on)",
                self.kept,
            ),
            ("steps that did not settle in 90 s", self.unsettled),
            ("harness errors", self.harness_errors.len()),
        ] {
            let _ = writeln!(s, "| {k} | {val} |");
        }
        let _ = writeln!(s, "\nHistories violating each invariant:\n");
        let _ = writeln!(s, "| invariant | histories |\n|---|---|");
        for inv in INVARIANTS {
            let _ = writeln!(
                s,
                "| {inv:?} | {} |",
                self.violations.get(&inv).copied().unwrap_or(0)
            );
        }
        let total: Duration = self.time.values().sum();
        let _ = writeln!(
            s,
            "\nWall time by phase, summed over histories ({:.0} s in all, {:.1} s a history; \
             steps are timed without their settle):\n",
            total.as_secs_f64(),
            total.as_secs_f64() / self.histories.max(1) as f64
        );
        let _ = writeln!(s, "| phase | seconds |\n|---|---|");
        let mut phases: Vec<_> = self.time.iter().collect();
        phases.sort_by(|a, b| b.1.cmp(a.1));
        for (k, d) in phases {
            let _ = writeln!(s, "| {k} | {:.1} |", d.as_secs_f64());
        }
        let names: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
        let _ = writeln!(s, "\nStep kinds: {}.", names.join(", "));
        let left: Vec<String> = PENDING
            .iter()
            .filter(|(k, _)| !kinds.contains(k))
            .map(|(k, why)| format!("{k:?} (pending §1 {why})"))
            .collect();
        if !left.is_empty() {
            let _ = writeln!(s, "\nLeft out: {}.", left.join("; "));
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n## Failing seeds (shrunk)\n");
            for (seed, inv, what, steps) in &self.failures {
                let _ = writeln!(
                    s,
                    "- seed {seed}, {inv:?}: {what}\n\n```\n{}```\n",
                    render(steps)
                );
            }
        }
        for e in &self.harness_errors {
            let _ = writeln!(s, "- harness error: {e}");
        }
        s
    }
}
