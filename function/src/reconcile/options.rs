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

/// Environment variable: every CLB's listener attributes (certificates, SNI) are read in full
/// at least every this many sweeps (default [`DEFAULT_FULL_READ_EVERY`]).
pub const ENV_SWEEP_FULL_READ_EVERY: &str = "SWEEP_FULL_READ_EVERY";
/// Environment variable: seconds between two timer sweeps (the timer's period, default
/// [`DEFAULT_SWEEP_INTERVAL`]); the rotation of full reads steps once per interval.
pub const ENV_SWEEP_INTERVAL_SECONDS: &str = "SWEEP_INTERVAL_SECONDS";
pub const DEFAULT_FULL_READ_EVERY: u32 = 10;
/// The Terraform timer's default period (`sweep_cron`, every 5 minutes).
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// How the sweep spreads its full CLB reads (issue 9 §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepOptions {
    /// k: each CLB is read with DescribeListeners at least every k sweeps.
    pub full_read_every: u32,
    /// The timer's period.
    pub interval: Duration,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            full_read_every: DEFAULT_FULL_READ_EVERY,
            interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

impl SweepOptions {
    /// From a variable lookup; a value that is not a whole number of at least 1 is an error.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let number = |name: &'static str| -> Result<Option<u32>, EnvError> {
            match var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            {
                None => Ok(None),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(EnvError::NotANumber { name, value: v }),
                },
            }
        };
        let mut opts = Self::default();
        if let Some(k) = number(ENV_SWEEP_FULL_READ_EVERY)? {
            opts.full_read_every = k;
        }
        if let Some(s) = number(ENV_SWEEP_INTERVAL_SECONDS)? {
            opts.interval = Duration::from_secs(u64::from(s));
        }
        Ok(opts)
    }
}

/// Tuning of a [`Reconciler`].
#[derive(Clone, Debug)]
pub struct ReconcilerOptions {
    pub lease_seconds: i32,
    /// Ingresses reconciled at once by the sweep.
    pub concurrency: usize,
    /// The sweep starts no reconcile with less than this left before its deadline.
    pub min_start: Duration,
    pub apply: ApplyOptions,
    /// `CLB_EXTRA_REGIONS` ([`super::regions`]).
    pub extra_regions: Vec<String>,
}

impl Default for ReconcilerOptions {
    fn default() -> Self {
        Self {
            lease_seconds: DEFAULT_LEASE_SECONDS,
            // Enough reconciles in flight to keep each action's rate limiter busy while others
            // wait on tasks (issue 9 §2); the limiter, not this, bounds the call rate. A new
            // Ingress waits on three tasks (500 ms polls) and its Kubernetes writes, ~2.5 s;
            // DescribeTaskStatus at 20/s (3 per Ingress) then needs ~17 in flight.
            concurrency: 32,
            min_start: Duration::from_secs(5),
            apply: ApplyOptions::default(),
            extra_regions: Vec::new(),
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
            ..ApplyOptions::default()
        },
        extra_regions: super::regions::extra_regions(
            std::env::var(super::regions::ENV_CLB_EXTRA_REGIONS)
                .ok()
                .as_deref(),
        )
        .map_err(|value| EnvError::NotARegion {
            name: super::regions::ENV_CLB_EXTRA_REGIONS,
            value,
        })?,
        ..ReconcilerOptions::default()
    };
    let guard = ReleaseGuard::from_lookup(|name| std::env::var(name).ok())
        .map_err(EnvError::ReleaseGuard)?;
    let sweep = SweepOptions::from_lookup(|k| std::env::var(k).ok())?;
    Ok(Reconciler::new(cluster, cloud, cluster_id, opts)
        .with_release_guard(guard)
        .with_sweep(sweep))
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
    #[error("{name} must be a whole number of at least 1, got {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("{name} must be a comma-separated list of regions (e.g. ap-shanghai), got {value:?}")]
    NotARegion { name: &'static str, value: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("mass-release guard: {0}")]
    ReleaseGuard(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_options_default_to_every_tenth_sweep_and_refuse_nonsense() {
        assert_eq!(
            SweepOptions::from_lookup(|_| None).unwrap(),
            SweepOptions::default()
        );
        let set = SweepOptions::from_lookup(|k| match k {
            ENV_SWEEP_FULL_READ_EVERY => Some("3".into()),
            ENV_SWEEP_INTERVAL_SECONDS => Some("60".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((set.full_read_every, set.interval.as_secs()), (3, 60));
        for bad in ["0", "-1", "ten"] {
            assert!(matches!(
                SweepOptions::from_lookup(|k| (k == ENV_SWEEP_FULL_READ_EVERY).then(|| bad.into())),
                Err(EnvError::NotANumber { .. })
            ));
        }
    }
}
