//! Kubernetes access: the view one Ingress needs, status and Event writes, the per-Ingress Lease.
//!
//! Every request goes through [`headers::IdentityHeadersLayer`] (User-Agent and a unique
//! `Audit-ID`) when the client is built here ([`ClusterClient::from_env`],
//! [`ClusterClient::from_config`], [`ClusterClient::from_kubeconfig_yaml`]). A client handed to
//! [`ClusterClient::new`] is used as it is.

mod events;
pub mod headers;
mod lease;
mod pods;
mod read;
mod service_config;
mod snapshot;
mod tls_pair;
mod write;

pub use tls_pair::TlsKeyPair;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Config;

use crate::identity;

pub use events::{
    event_name, truncate_note, EventOutcome, EventRecord, EventType, Reported, EVENT_REPEAT_AFTER,
    EVENT_UID_LABEL, NOTE_MAX_BYTES,
};
pub use lease::{
    lease_name, lease_state, Acquire, LeaseGuard, LeaseState, Released, CLOCK_SKEW_MARGIN,
    DIRTY_ANNOTATION,
};
pub use snapshot::Snapshot;
pub use write::{current_status, WriteOutcome, LB_ID_ANNOTATION};

/// Environment variable naming a kubeconfig file (DESIGN §4).
pub const ENV_KUBECONFIG: &str = "KUBECONFIG";
/// Environment variable carrying a whole kubeconfig inline (DESIGN §4).
pub const ENV_KUBECONFIG_DATA: &str = "KUBECONFIG_DATA";

/// `limit` of each LIST page: large enough that a normal cluster needs one page, small enough
/// to bound one response.
const DEFAULT_PAGE_SIZE: u32 = 500;

/// Longest wait for one response: every call is a short GET/LIST/write (no watches).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest `reportingInstance` the events.k8s.io/v1 validation accepts.
const REPORTING_INSTANCE_MAX: usize = 128;

/// Where the client's configuration comes from (DESIGN §4).
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A kubeconfig file (`KUBECONFIG`).
    File(PathBuf),
    /// Kubeconfig YAML given inline (`KUBECONFIG_DATA`); holds credentials, never printed.
    Inline(String),
    /// The service account mounted into a pod.
    InCluster,
}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => f.debug_tuple("File").field(path).finish(),
            ConfigSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            ConfigSource::InCluster => f.write_str("InCluster"),
        }
    }
}

impl ConfigSource {
    /// The source the environment names, given a variable lookup: a non-blank `KUBECONFIG`
    /// first, then a non-blank `KUBECONFIG_DATA`, else in-cluster.
    pub fn choose(var: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |key: &str| var(key).filter(|v| !v.trim().is_empty());
        if let Some(path) = non_empty(ENV_KUBECONFIG) {
            ConfigSource::File(PathBuf::from(path))
        } else if let Some(yaml) = non_empty(ENV_KUBECONFIG_DATA) {
            ConfigSource::Inline(yaml)
        } else {
            ConfigSource::InCluster
        }
    }
}

/// Everything that can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The client could not be configured. The message never quotes kubeconfig content.
    #[error("kubernetes client configuration: {0}")]
    Config(String),
    /// A write carrying a resourceVersion lost to a newer one (409 Conflict): re-read and retry.
    #[error("{kind} {namespace}/{name} changed since it was read (409 Conflict)")]
    Conflict {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// An object we were given lacks something a safe write needs (name, resourceVersion, uid).
    #[error("{kind} {namespace}/{name} lacks {missing}, refusing to write")]
    Incomplete {
        kind: &'static str,
        namespace: String,
        name: String,
        missing: &'static str,
    },
    /// The Lease is no longer ours (taken over after expiry, or deleted).
    #[error("lease {namespace}/{name} is no longer held by {holder}")]
    LeaseLost {
        namespace: String,
        name: String,
        holder: String,
    },
    /// Every attempt to settle the Lease lost a race; someone else is busy with it.
    #[error("lease {namespace}/{name} kept changing under {attempts} attempts")]
    LeaseContended {
        namespace: String,
        name: String,
        attempts: usize,
    },
    /// The create epoch on the Lease is not the one this run decided on.
    #[error(transparent)]
    EpochMoved(#[from] crate::model::create_epoch::EpochMoved),
    /// Any other API failure.
    #[error("{op} {target}: {source}")]
    Api {
        op: &'static str,
        target: String,
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// Whether the caller should re-read and try again (a lost optimistic-concurrency race).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClusterError::Conflict { .. })
    }

    fn api(op: &'static str, target: impl Into<String>, source: kube::Error) -> Self {
        ClusterError::Api {
            op,
            target: target.into(),
            source,
        }
    }
}

/// The HTTP status of an API error, if the server answered with one.
fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Cheap-to-clone handle on the cluster, carrying our Event `reportingInstance`.
#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
    instance: Arc<str>,
    page_size: u32,
}

impl fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterClient")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Wraps an existing client as it is (tests; no identity headers are added).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            instance: default_instance().into(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// `KUBECONFIG` (a path), else `KUBECONFIG_DATA` (inline YAML), else the in-cluster
    /// service account.
    pub async fn from_env() -> Result<Self, ClusterError> {
        Self::from_source(ConfigSource::choose(|key| std::env::var(key).ok())).await
    }

    /// From an explicit configuration source.
    pub async fn from_source(source: ConfigSource) -> Result<Self, ClusterError> {
        match source {
            ConfigSource::File(path) => {
                let kubeconfig = Kubeconfig::read_from(&path).map_err(|_| {
                    ClusterError::Config(format!(
                        "{} could not be read as a kubeconfig",
                        path.display()
                    ))
                })?;
                Self::from_kubeconfig(kubeconfig).await
            }
            ConfigSource::Inline(yaml) => Self::from_kubeconfig_yaml(&yaml).await,
            ConfigSource::InCluster => {
                let config = Config::incluster().map_err(|_| {
                    ClusterError::Config(format!(
                        "neither {ENV_KUBECONFIG} nor {ENV_KUBECONFIG_DATA} is set and the \
                         in-cluster service account is not available"
                    ))
                })?;
                Self::from_config(config)
            }
        }
    }

    /// From kubeconfig YAML (its current context).
    pub async fn from_kubeconfig_yaml(yaml: &str) -> Result<Self, ClusterError> {
        // Parse errors can quote the offending input, which may be a token: say only what failed.
        let kubeconfig = Kubeconfig::from_yaml(yaml)
            .map_err(|_| ClusterError::Config("kubeconfig YAML does not parse".into()))?;
        Self::from_kubeconfig(kubeconfig).await
    }

    async fn from_kubeconfig(kubeconfig: Kubeconfig) -> Result<Self, ClusterError> {
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|_| {
                ClusterError::Config(
                    "kubeconfig has no usable current context, cluster and user".into(),
                )
            })?;
        Self::from_config(config)
    }

    /// From a kube `Config`, with our identity headers on every request and a bounded read
    /// timeout.
    pub fn from_config(mut config: Config) -> Result<Self, ClusterError> {
        // kube's defaults suit long-lived watchers: 295 s reads, and 429/503/504 retried up to
        // 15 times with backoff growing towards 1000 s. A function with a time budget that never
        // watches needs both bounded; its callers retry at their level (the next trigger or
        // timer run reads everything afresh), so transport-level retries are off.
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
        config.default_retry = false;
        let builder = kube::client::ClientBuilder::try_from(config).map_err(|_| {
            ClusterError::Config(
                "kubernetes client could not be built from the configuration".into(),
            )
        })?;
        let client = builder
            .with_layer(&headers::IdentityHeadersLayer::new())
            .build();
        Ok(Self::new(client))
    }

    /// Sets the `reportingInstance` of our Events (truncated to the API's 128 characters).
    pub fn with_reporting_instance(mut self, instance: &str) -> Self {
        self.instance = truncate_chars(instance, REPORTING_INSTANCE_MAX).into();
        self
    }

    /// Sets the `limit` of every paged LIST (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The `reportingInstance` of our Events.
    pub fn reporting_instance(&self) -> &str {
        &self.instance
    }

    /// The underlying kube client.
    pub fn kube_client(&self) -> &kube::Client {
        &self.client
    }

    /// A holder identity for the per-Ingress Lease, unique per call: this instance plus
    /// random bits, so two runs (or two tasks of one run) never mistake each other's hold.
    pub fn new_holder_identity(&self) -> String {
        format!("{}-{:016x}", self.instance, rand::random::<u64>())
    }
}

/// `clb-ingress-<host>` where a host name is known (SCF sets none we rely on), else
/// `clb-ingress-<random>`.
fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("{:08x}", rand::random::<u32>()));
    truncate_chars(
        &format!("{}-{host}", identity::FIELD_MANAGER),
        REPORTING_INSTANCE_MAX,
    )
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn kubeconfig_path_wins_then_inline_data_then_in_cluster() {
        let both = env(&[
            ("KUBECONFIG", "/etc/kube"),
            ("KUBECONFIG_DATA", "apiVersion: v1"),
        ]);
        assert_eq!(
            ConfigSource::choose(both),
            ConfigSource::File("/etc/kube".into())
        );
        let blank_path = env(&[("KUBECONFIG", "  "), ("KUBECONFIG_DATA", "apiVersion: v1")]);
        assert_eq!(
            ConfigSource::choose(blank_path),
            ConfigSource::Inline("apiVersion: v1".into())
        );
        assert_eq!(ConfigSource::choose(env(&[])), ConfigSource::InCluster);
    }

    #[test]
    fn inline_kubeconfig_is_redacted_in_debug() {
        let source = ConfigSource::Inline("users: [{user: {token: s3cr3t-token}}]".into());
        assert_eq!(format!("{source:?}"), "Inline(<redacted>)");
    }

    #[tokio::test]
    async fn a_bad_inline_kubeconfig_error_does_not_quote_it() {
        let yaml = "users:\n- name: u\n  user: {token: s3cr3t-token\n";
        let error = ClusterClient::from_kubeconfig_yaml(yaml).await.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(matches!(error, ClusterError::Config(_)));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let no_context =
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: s3cr3t-token}\n";
        let error = ClusterClient::from_kubeconfig_yaml(no_context)
            .await
            .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
