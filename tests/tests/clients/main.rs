//! The function's two clients against the simulators over loopback HTTP: the cloud client
//! (`clb_ingress::cloud`) against clb-sim and a scripted responder, the cluster client
//! (`clb_ingress::cluster`) against kube-sim.

mod cloud_client;
mod cloud_on_clb_sim;
mod cloud_rewrite;
mod cluster_access;
