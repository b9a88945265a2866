//! Test support for clb-ingress: the CLB/Tag API emulator (`clb-sim`) and the Kubernetes
//! API fake (`kube-sim`), both real HTTP servers spoken to by real clients; the real
//! function binary's whereabouts; and the chaos harness that drives all three.

pub mod chaos;
pub mod clb_sim;
pub mod function;
pub mod function_rbac;
pub mod fuzz;
pub mod kube_sim;
pub mod kubectl;
