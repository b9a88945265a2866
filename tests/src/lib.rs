//! Test support for clb-ingress: the CLB/Tag API emulator (`clb-sim`) and the Kubernetes
//! API fake (`kube-sim`), both real HTTP servers spoken to by real clients.

pub mod clb_sim;
pub mod function_rbac;
pub mod fuzz;
pub mod kube_sim;
pub mod kubectl;
