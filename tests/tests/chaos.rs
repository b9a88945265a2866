//! The bounded chaos set of the test command (issue 8 §2): seeded histories of Ingress,
//! class, existLbId, Node and Service changes, console edits, cloud faults, `kill -9` of the
//! function mid-work, duplicate runs and timer sweeps, against kube-sim, clb-sim and the real
//! `clb-ingress` binary; after every step and after quiet, I1–I4 hold. A failure names the
//! seed and the shrunk history (replay: `scripts/chaos --histories 1 --seed S`).
//!
//! Needs the binaries: `cargo build --workspace --bins` (scripts/test does it first).

use clb_ingress_tests::chaos::{self, model, Figures};
use futures::stream::{self, StreamExt};

/// Histories in the test command's set, and their length.
const HISTORIES: u64 = 25;
const STEPS: usize = 12;
const FIRST_SEED: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_invariants_hold_over_seeded_histories_of_user_console_fault_and_crash_events() {
    let kinds = chaos::enabled_kinds();
    let outcomes = stream::iter(FIRST_SEED..FIRST_SEED + HISTORIES)
        .map(|seed| {
            let steps = model::generate(seed, STEPS, &kinds);
            async move { (seed, chaos::run(seed, &steps).await) }
        })
        .buffer_unordered(3)
        .collect::<Vec<_>>()
        .await;
    let mut figures = Figures::default();
    let mut report = String::new();
    for (seed, result) in outcomes {
        let o = result.unwrap_or_else(|e| panic!("seed {seed}: harness error: {e}"));
        figures.add(&o);
        if let Some(inv) = o.first() {
            let short = chaos::shrink(seed, &o.steps, inv, 12).await;
            report.push_str(&format!(
                "seed {seed}: {:?}\nshrunk history:\n{}function log:\n{}\n\n",
                o.violations,
                chaos::render(&short),
                o.log_tail
            ));
        }
    }
    assert!(report.is_empty(), "{report}");
    assert_eq!(figures.histories as u64, HISTORIES);
    // The set must exercise what it claims to: faults, kills and one-shot runs happened.
    assert!(
        figures.fault_steps > 0 && figures.kills > 0 && figures.one_shot_runs > 0,
        "{figures:?}"
    );
    assert!(
        figures.steps_applied > figures.steps_generated / 2,
        "{figures:?}"
    );
}
