//! The engine's configuration: its environment (DESIGN §4) and its tuning.

use std::time::Duration;

use super::Reconciler;
use crate::cloud::apply::ApplyOptions;
use crate::cloud::{CloudClient, CloudError};
use crate::cluster::{ClusterClient, ClusterError};
use crate::model::release_guard::ReleaseGuard;

/// Environment variable naming the cluster (DESIGN §4).
pub const ENV_CLUSTER_ID: &str = "CLUSTER_ID";
/// Environment variable naming the VPC for INTERNAL CLBs (see [`ApplyOptions::vpc_id`]).
pub const ENV_CLB_VPC_ID: &str = "CLB_VPC_ID";

/// Lease duration: longer than the longest SCF run (900 s), so a run killed mid-plan is never
/// overlapped by another before its Lease expires.
pub const DEFAULT_LEASE_SECONDS: i32 = 960;

/// Time kept before a run's deadline to give the Lease back.
pub const RELEASE_MARGIN: Duration = Duration::from_secs(2);

/// Tuning of a [`Reconciler`].
#[derive(Clone, Debug)]
pub struct ReconcilerOptions {
    pub lease_seconds: i32,
    /// Ingresses reconciled at once by the sweep.
    pub concurrency: usize,
    /// The sweep starts no reconcile with less than this left before its deadline.
    pub min_start: Duration,
    pub apply: ApplyOptions,
}

impl Default for ReconcilerOptions {
    fn default() -> Self {
        Self {
            lease_seconds: DEFAULT_LEASE_SECONDS,
            concurrency: 4,
            min_start: Duration::from_secs(5),
            apply: ApplyOptions::default(),
        }
    }
}

/// `CLUSTER_ID`, the cluster from `KUBECONFIG`/`KUBECONFIG_DATA`/in-cluster, the cloud from
/// `TENCENTCLOUD_*` and the endpoint overrides, `CLB_VPC_ID` for INTERNAL CLBs. The sweep's
/// shard dispatcher is the runtime's to attach ([`Reconciler::with_shards`]).
pub async fn engine_from_env() -> Result<Reconciler, EnvError> {
    let cluster_id = non_empty_var(ENV_CLUSTER_ID).ok_or(EnvError::MissingClusterId)?;
    let cluster = ClusterClient::from_env().await?;
    let cloud = CloudClient::from_env()?;
    let opts = ReconcilerOptions {
        apply: ApplyOptions {
            vpc_id: non_empty_var(ENV_CLB_VPC_ID),
            stop_after: None,
        },
        ..ReconcilerOptions::default()
    };
    let guard = ReleaseGuard::from_lookup(|name| std::env::var(name).ok())
        .map_err(EnvError::ReleaseGuard)?;
    Ok(Reconciler::new(cluster, cloud, cluster_id, opts).with_release_guard(guard))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Configuration errors of [`engine_from_env`].
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{ENV_CLUSTER_ID} must be set (the TKE cluster id, e.g. cls-xxxxxxxx)")]
    MissingClusterId,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("mass-release guard: {0}")]
    ReleaseGuard(String),
}
