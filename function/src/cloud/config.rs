//! Credentials, endpoints and the client's tuning knobs, read from the environment
//! (DESIGN §4) or built explicitly by tests.

use std::time::Duration;

use super::error::CloudError;
use super::retry::RetryPolicy;

/// Real endpoint of the CLB API.
pub const DEFAULT_CLB_ENDPOINT: &str = "https://clb.tencentcloudapi.com";
/// Real endpoint of the Tag API.
pub const DEFAULT_TAG_ENDPOINT: &str = "https://tag.tencentcloudapi.com";
/// Real endpoint of the SCF API (the sharded sweep invokes its shards through it).
/// SSL Certificates API (uploads of `kubernetes.io/tls` Secrets).
pub const DEFAULT_SSL_ENDPOINT: &str = "https://ssl.tencentcloudapi.com";
pub const DEFAULT_SCF_ENDPOINT: &str = "https://scf.tencentcloudapi.com";

/// Documented per-action CLB limit is 20 requests/second (tencent-cloud.md §2.1); we stay
/// at it by default and let a busy deployment lower it.
pub const DEFAULT_RATE_LIMIT_PER_SEC: u32 = 20;

/// API credentials. The secret key and token never appear in Debug output.
#[derive(Clone)]
pub struct Credentials {
    secret_id: String,
    secret_key: String,
    token: Option<String>,
}

impl Credentials {
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            token: None,
        }
    }

    /// Temporary (role) credentials carry a session token, sent as `X-TC-Token`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    pub(crate) fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Everything a [`super::CloudClient`] needs. Knobs default to production values; tests
/// shrink the backoff and poll intervals through the builder.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub credentials: Credentials,
    pub region: String,
    /// Base URL of the CLB API (scheme, host, optional port; requests go to `/`).
    pub clb_endpoint: String,
    /// Base URL of the Tag API.
    pub tag_endpoint: String,
    /// Base URL of the SCF API.
    pub scf_endpoint: String,
    /// Base URL of the SSL Certificates API.
    pub ssl_endpoint: String,
    /// Client-side permits per action per second.
    pub rate_limit_per_sec: u32,
    pub retry: RetryPolicy,
    /// Pause between DescribeTaskStatus (or DescribeLoadBalancers) polls.
    pub task_poll_interval: Duration,
    /// How long to wait for one async task (or a new CLB) before giving up.
    pub task_deadline: Duration,
    /// Timeout of one HTTP attempt.
    pub request_timeout: Duration,
    /// How long a CLB that CreateLoadBalancer named must stay unreadable by id before it is
    /// taken to be gone (default [`super::clb::CREATED_LB_GONE_AFTER`]).
    pub created_lb_gone_after: Duration,
    /// Pause between tagging a CLB for adoption and reading its tags back (default
    /// [`super::apply::ADOPTION_SETTLE`]).
    pub adoption_settle: Duration,
}

impl CloudConfig {
    /// Reads DESIGN §4's variables from the process environment.
    pub fn from_env() -> Result<Self, CloudError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Self::from_env`], over any lookup (tests pass a map instead of mutating the
    /// process environment, which is shared by parallel tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CloudError> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()))
        };
        // SCF injects the names without the inner underscore; the SDKs read the others.
        let secret_id =
            get(&["TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRET_ID"]).ok_or_else(|| {
                CloudError::Config(
                    "TENCENTCLOUD_SECRETID (or TENCENTCLOUD_SECRET_ID) is not set".into(),
                )
            })?;
        let secret_key =
            get(&["TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SECRET_KEY"]).ok_or_else(|| {
                CloudError::Config(
                    "TENCENTCLOUD_SECRETKEY (or TENCENTCLOUD_SECRET_KEY) is not set".into(),
                )
            })?;
        let region = get(&["TENCENTCLOUD_REGION"])
            .ok_or_else(|| CloudError::Config("TENCENTCLOUD_REGION is not set".into()))?;
        let mut credentials = Credentials::new(secret_id.trim(), secret_key.trim());
        if let Some(token) = get(&["TENCENTCLOUD_SESSIONTOKEN", "TENCENTCLOUD_SESSION_TOKEN"]) {
            credentials = credentials.with_token(token.trim());
        }
        let mut builder = CloudConfig::builder(credentials, region.trim());
        if let Some(ep) = get(&["CLB_ENDPOINT"]) {
            builder = builder.clb_endpoint(ep.trim());
        }
        if let Some(ep) = get(&["TAG_ENDPOINT"]) {
            builder = builder.tag_endpoint(ep.trim());
        }
        if let Some(ep) = get(&["SSL_ENDPOINT"]) {
            builder = builder.ssl_endpoint(ep.trim());
        }
        // Local runs only: SCF reserves the `SCF_` prefix for its own variables.
        if let Some(ep) = get(&["SCF_ENDPOINT"]) {
            builder = builder.scf_endpoint(ep.trim());
        }
        // Local runs against clb-sim only (its tasks end in milliseconds): a production
        // deployment leaves it unset and polls at the default interval.
        let millis = |name: &str| get(&[name]).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(ms) = millis("CLB_TASK_POLL_MS") {
            builder = builder.task_poll_interval(Duration::from_millis(ms.max(1)));
        }
        // Local runs against clb-sim only, whose reads never lag a create or a tag: the
        // defaults cover the real API's lag; a short run budget (the chaos harness's) needs
        // the proof of "gone" to fit inside it.
        if let Some(ms) = millis("CLB_CREATED_LB_GONE_AFTER_MS") {
            builder = builder.created_lb_gone_after(Duration::from_millis(ms));
        }
        if let Some(ms) = millis("CLB_ADOPTION_SETTLE_MS") {
            builder = builder.adoption_settle(Duration::from_millis(ms));
        }
        builder.build()
    }

    pub fn builder(credentials: Credentials, region: impl Into<String>) -> CloudConfigBuilder {
        CloudConfigBuilder {
            config: CloudConfig {
                credentials,
                region: region.into(),
                clb_endpoint: DEFAULT_CLB_ENDPOINT.into(),
                tag_endpoint: DEFAULT_TAG_ENDPOINT.into(),
                scf_endpoint: DEFAULT_SCF_ENDPOINT.into(),
                ssl_endpoint: DEFAULT_SSL_ENDPOINT.into(),
                rate_limit_per_sec: DEFAULT_RATE_LIMIT_PER_SEC,
                retry: RetryPolicy::default(),
                task_poll_interval: Duration::from_millis(500),
                task_deadline: Duration::from_secs(120),
                request_timeout: Duration::from_secs(15),
                created_lb_gone_after: super::clb::CREATED_LB_GONE_AFTER,
                adoption_settle: super::apply::ADOPTION_SETTLE,
            },
        }
    }

    /// The base URL for a service: our two configured ones, else Tencent's public host.
    pub fn endpoint_for(&self, service: &str) -> String {
        match service {
            "clb" => self.clb_endpoint.clone(),
            "tag" => self.tag_endpoint.clone(),
            "scf" => self.scf_endpoint.clone(),
            "ssl" => self.ssl_endpoint.clone(),
            other => format!("https://{other}.tencentcloudapi.com"),
        }
    }
}

/// Builder for [`CloudConfig`]; `build` validates.
#[derive(Debug)]
pub struct CloudConfigBuilder {
    config: CloudConfig,
}

impl CloudConfigBuilder {
    pub fn clb_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.clb_endpoint = url.into();
        self
    }
    pub fn tag_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.tag_endpoint = url.into();
        self
    }
    pub fn scf_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.scf_endpoint = url.into();
        self
    }
    pub fn ssl_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.ssl_endpoint = url.into();
        self
    }
    /// Points every API at one server (the emulator serves them all).
    pub fn endpoint(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.clb_endpoint(url.clone())
            .tag_endpoint(url.clone())
            .ssl_endpoint(url.clone())
            .scf_endpoint(url)
    }
    pub fn rate_limit_per_sec(mut self, n: u32) -> Self {
        self.config.rate_limit_per_sec = n;
        self
    }
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }
    pub fn task_poll_interval(mut self, d: Duration) -> Self {
        self.config.task_poll_interval = d;
        self
    }
    pub fn task_deadline(mut self, d: Duration) -> Self {
        self.config.task_deadline = d;
        self
    }
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }
    pub fn created_lb_gone_after(mut self, d: Duration) -> Self {
        self.config.created_lb_gone_after = d;
        self
    }
    pub fn adoption_settle(mut self, d: Duration) -> Self {
        self.config.adoption_settle = d;
        self
    }

    pub fn build(mut self) -> Result<CloudConfig, CloudError> {
        let c = &mut self.config;
        if c.credentials.secret_id.is_empty() || c.credentials.secret_key.is_empty() {
            return Err(CloudError::Config(
                "secret id and secret key must not be empty".into(),
            ));
        }
        if c.region.is_empty() {
            return Err(CloudError::Config("region must not be empty".into()));
        }
        if c.rate_limit_per_sec == 0 {
            return Err(CloudError::Config(
                "rate limit must be at least 1 per second".into(),
            ));
        }
        for ep in [
            &mut c.clb_endpoint,
            &mut c.tag_endpoint,
            &mut c.scf_endpoint,
            &mut c.ssl_endpoint,
        ] {
            let trimmed = ep.trim_end_matches('/').to_string();
            let parsed = reqwest::Url::parse(&trimmed).map_err(|e| {
                CloudError::Config(format!("endpoint {trimmed:?} is not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(CloudError::Config(format!(
                    "endpoint {trimmed:?} must be an http(s) URL with a host"
                )));
            }
            if parsed.path() != "/" {
                return Err(CloudError::Config(format!(
                    "endpoint {trimmed:?} must not have a path: the API is served at /"
                )));
            }
            *ep = trimmed;
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn from_env_reads_scf_names_token_and_endpoint_overrides() {
        let cfg = CloudConfig::from_lookup(env(&[
            ("TENCENTCLOUD_SECRETID", "AKIDscf"),
            ("TENCENTCLOUD_SECRETKEY", "key-scf"),
            ("TENCENTCLOUD_SESSIONTOKEN", "tok"),
            ("TENCENTCLOUD_REGION", "ap-guangzhou"),
            ("CLB_ENDPOINT", "http://127.0.0.1:9100/"),
            ("TAG_ENDPOINT", "http://127.0.0.1:9101"),
        ]))
        .unwrap();
        assert_eq!(cfg.credentials.secret_id(), "AKIDscf");
        assert_eq!(cfg.credentials.token(), Some("tok"));
        assert_eq!(cfg.region, "ap-guangzhou");
        assert_eq!(cfg.clb_endpoint, "http://127.0.0.1:9100");
        assert_eq!(cfg.tag_endpoint, "http://127.0.0.1:9101");
    }

    #[test]
    fn from_env_accepts_sdk_names_and_defaults_to_real_endpoints() {
        let cfg = CloudConfig::from_lookup(env(&[
            ("TENCENTCLOUD_SECRET_ID", "AKIDsdk"),
            ("TENCENTCLOUD_SECRET_KEY", "key-sdk"),
            ("TENCENTCLOUD_REGION", "ap-beijing"),
        ]))
        .unwrap();
        assert_eq!(cfg.credentials.secret_id(), "AKIDsdk");
        assert_eq!(cfg.credentials.token(), None);
        assert_eq!(cfg.clb_endpoint, DEFAULT_CLB_ENDPOINT);
        assert_eq!(cfg.tag_endpoint, DEFAULT_TAG_ENDPOINT);
        assert_eq!(cfg.rate_limit_per_sec, DEFAULT_RATE_LIMIT_PER_SEC);
    }

    #[test]
    fn from_env_rejects_missing_credentials_region_and_bad_endpoints() {
        let missing_key = CloudConfig::from_lookup(env(&[
            ("TENCENTCLOUD_SECRETID", "AKID"),
            ("TENCENTCLOUD_REGION", "ap-guangzhou"),
        ]));
        assert!(matches!(missing_key, Err(CloudError::Config(m)) if m.contains("SECRETKEY")));
        let missing_region = CloudConfig::from_lookup(env(&[
            ("TENCENTCLOUD_SECRETID", "AKID"),
            ("TENCENTCLOUD_SECRETKEY", "k"),
        ]));
        assert!(matches!(missing_region, Err(CloudError::Config(m)) if m.contains("REGION")));
        for bad in ["127.0.0.1:9100", "ftp://x", "http://127.0.0.1:9100/api"] {
            let r = CloudConfig::from_lookup(env(&[
                ("TENCENTCLOUD_SECRETID", "AKID"),
                ("TENCENTCLOUD_SECRETKEY", "k"),
                ("TENCENTCLOUD_REGION", "ap-guangzhou"),
                ("CLB_ENDPOINT", bad),
            ]));
            assert!(matches!(r, Err(CloudError::Config(_))), "{bad} accepted");
        }
    }

    #[test]
    fn debug_output_never_shows_secret_key_or_token() {
        let creds =
            Credentials::new("AKIDvisible", "the-secret-key").with_token("the-session-token");
        let cfg = CloudConfig::builder(creds, "ap-guangzhou").build().unwrap();
        for shown in [
            format!("{cfg:?}"),
            format!("{:?}", cfg.credentials),
            format!("{cfg:#?}"),
        ] {
            assert!(!shown.contains("the-secret-key"), "{shown}");
            assert!(!shown.contains("the-session-token"), "{shown}");
            assert!(shown.contains("AKIDvisible"));
        }
    }
}
