//! clb-ingress: gives every Kubernetes Ingress of the `qcloud` class a Tencent Cloud CLB,
//! keeping no state of its own (the CLB's tags are the only record of ownership).
//!
//! Layering (DESIGN §3): `model` and `plan` are pure and import neither `cluster` nor the
//! cloud client; I/O lives in `cluster`, `cloud`, `runtime`; `reconcile` wires them.

pub mod budget;
pub mod cloud;
pub mod cluster;
pub mod handler;
pub mod identity;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod runtime;
pub mod shard;
pub mod trigger;
