//! Harnesses of the end-to-end tests, one per way of driving the function: `engine` calls a
//! real `Reconciler` in-process against both simulators; `stack` runs the whole product (the
//! function's web server on kube-sim's audit webhook, real `kubectl` as the user).
#![allow(dead_code, unused_imports)]

pub mod engine;
pub mod stack;

/// The tag keys TKE's controller writes, spelled here rather than taken from the function
/// so that the tests check the names the function uses.
pub const TAG_CREATED_BY: &str = "tke-createdBy-flag";
pub const TAG_CLUSTER: &str = "tke-clusterId";
pub const TAG_UID: &str = "tke-lb-ingress-uuid";
