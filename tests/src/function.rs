//! The real `clb-ingress` binary, for the tests that run the product as it is deployed: where
//! it is, and the environment that points it at one clb-sim and one kube-sim.

use std::path::PathBuf;

use crate::clb_sim::SimHandle;

/// `CLB_INGRESS_BIN` when set, else `clb-ingress` in the build directory of the running
/// executable (beside a `bin` of this package, one level above a test in `deps/`).
/// `cargo build --workspace --bins` puts it there.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CLB_INGRESS_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("clb-ingress")
}

/// The variables a function run reads (README "Configuration"), for `cluster_id`, the
/// kubeconfig `kubeconfig_yaml` and clb-sim's credentials and URL.
pub fn env(clb: &SimHandle, kubeconfig_yaml: &str, cluster_id: &str) -> Vec<(String, String)> {
    let c = clb.config();
    [
        ("CLUSTER_ID", cluster_id.to_string()),
        ("KUBECONFIG_DATA", kubeconfig_yaml.to_string()),
        ("TENCENTCLOUD_SECRETID", c.secret_id.clone()),
        ("TENCENTCLOUD_SECRETKEY", c.secret_key.clone()),
        ("TENCENTCLOUD_REGION", c.region.clone()),
        ("CLB_ENDPOINT", clb.url()),
        ("TAG_ENDPOINT", clb.url()),
        ("SSL_ENDPOINT", clb.url()),
        ("LOG_FORMAT", "text".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
