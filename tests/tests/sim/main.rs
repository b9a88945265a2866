//! The simulators on their own: clb-sim against signed requests, faults and the official
//! Python SDK; kube-sim against kube-rs, real `kubectl`, its audit webhook and RBAC.

mod clb_auth;
mod clb_behaviour;
mod clb_faults;
mod kube_audit;
mod kube_client;
mod kube_kubectl;
mod kube_rbac;
mod sdk_conformance;
