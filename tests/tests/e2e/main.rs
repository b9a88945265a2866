//! End to end: the function against kube-sim and clb-sim, in-process (`support::engine`) or
//! as the whole product behind kube-sim's audit webhook with real `kubectl` (`support::stack`).
//! Some tests run the real binaries: `cargo build --workspace --bins` first.
//!
//! `e2e_secret_logs` is a target of its own: it captures every log line of its process.

mod support;

mod audit;
mod create_epochs;
mod cross_region;
mod faults;
mod graceful;
mod hold;
mod lifecycle;
mod ownership;
mod ownership_paths;
mod quota_swap;
mod quota_takeover;
mod readiness;
mod reconcile;
mod serverless;
mod shard;
mod sweep;
mod tke_config;
mod tke_rules;
