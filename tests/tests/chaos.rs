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

/// Replays `steps` from `seed` and fails with whatever the invariants found.
async fn replays_clean(seed: u64, steps: &[model::Step]) {
    let o = chaos::run(seed, steps)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: harness error: {e}"));
    assert!(
        o.violations.is_empty(),
        "seed {seed}: {:?}\nfunction log:\n{}",
        o.violations,
        o.log_tail
    );
}

/// Seed 60145 shrunk: an Ingress in `mode: skip` is re-created (new UID) with skip still on,
/// so the old UID's release keeps the CLB as the user's; once skip is off, the new Ingress
/// names that CLB through `existLbId` and adopts it like any user CLB (then it writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clb_kept_by_a_released_skip_ingress_may_be_adopted_by_the_next_ingress_naming_it() {
    use model::{Mark, Step};
    let steps = [
        Step::CreateIngress {
            slot: 2,
            variant: 1,
            class: model::Class::Default,
            exist_lb: Some(0),
        },
        Step::SetLifecycle {
            slot: 2,
            mark: Mark::Skip,
            on: true,
        },
        Step::ConsoleDeleteListener { slot: 2 },
        Step::RecreateIngress { slot: 2 },
        Step::SetLifecycle {
            slot: 2,
            mark: Mark::Skip,
            on: false,
        },
    ];
    replays_clean(60145, &steps).await;
}

/// Seed 60272 shrunk: ing-2 switches to the user CLB that carries its own listener (refused,
/// so it keeps CLB 0); ing-0 had switched to CLB 0 (refused while ing-2 holds it, so it keeps
/// CLB 1). Both old CLBs stay tagged: a refused switch never takes an Ingress offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_whose_new_clb_is_held_by_a_blocked_ingress_keeps_its_old_clb() {
    use model::{Class, Step};
    let steps = [
        Step::CreateIngress {
            slot: 2,
            variant: 2,
            class: Class::NameOurs,
            exist_lb: Some(0),
        },
        Step::CreateIngress {
            slot: 0,
            variant: 0,
            class: Class::Default,
            exist_lb: Some(1),
        },
        Step::SetExistLb {
            slot: 0,
            lb: Some(0),
        },
        Step::SetExistLb {
            slot: 2,
            lb: Some(2),
        },
    ];
    replays_clean(60272, &steps).await;
}

/// Seed 100338 shrunk: ing-2 adopts user CLB 0 and protects it; a run is killed mid-work and
/// holds the Lease while ing-2 is re-created. The old UID's release keeps the protected CLB
/// and removes our listeners and tags; once the Lease expires, the new ing-2, still naming
/// CLB 0 through `existLbId`, adopts it again and its listener is the new Ingress's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_clb_released_by_a_recreated_ingress_is_adopted_again_by_it() {
    use model::{Class, Mark, Step};
    let steps = [
        Step::CreateIngress {
            slot: 2,
            variant: 2,
            class: Class::Default,
            exist_lb: Some(0),
        },
        Step::SetLifecycle {
            slot: 2,
            mark: Mark::Protect,
            on: true,
        },
        Step::KillDuringWork {
            slot: 2,
            variant: 1,
        },
        Step::RecreateIngress { slot: 2 },
    ];
    replays_clean(100338, &steps).await;
}
