//! Starting the shards of a sharded sweep: SCF `Invoke` (async) in production, or a POST to
//! the function's own HTTP endpoint (`/v1/invoke`) when it runs as a local server. Either way
//! only the acceptance is awaited, never the shard's run.
//!
//! Environment (DESIGN §4): `SWEEP_SHARD_SIZE` (Ingresses per shard, default
//! [`DEFAULT_SHARD_SIZE`]); `SWEEP_SHARD_URL` (local mode: base URL of this function's server,
//! with `WEBHOOK_TOKEN` as bearer); else SCF mode with `SWEEP_SHARD_FUNCTION`,
//! `SWEEP_SHARD_NAMESPACE`, `SWEEP_SHARD_QUALIFIER`, defaulting to SCF's own
//! `SCF_FUNCTIONNAME`, `SCF_NAMESPACE` (else `default`), `SCF_FUNCTIONVERSION`. Without a
//! function name and without a URL the sweep does not shard.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::cloud::scf::{InvokeRequest, ScfFunction};
use crate::cloud::{CloudClient, CloudError};
use crate::handler::WebhookToken;
use crate::reconcile::ShardInvoker;
use crate::shard::{ShardSpec, DEFAULT_SHARD_SIZE};

/// Longest a local shard POST may take to be accepted (the server answers at once).
const HTTP_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ShardConfigError {
    #[error("SWEEP_SHARD_SIZE must be a whole number of at least 1, got {0:?}")]
    Size(String),
    #[error("SWEEP_SHARD_URL {0:?} must be an http(s) base URL")]
    Url(String),
    #[error(
        "SWEEP_SHARD_URL needs WEBHOOK_TOKEN: the shard events go through the bearer-checked route"
    )]
    MissingToken,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ShardInvokeError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("POST {url}: {message}")]
    Http { url: String, message: String },
}

/// Where shard events go.
#[derive(Clone)]
enum Target {
    Scf {
        client: CloudClient,
        function: ScfFunction,
    },
    Http {
        client: reqwest::Client,
        /// `<base>/v1/invoke`.
        url: String,
        token: WebhookToken,
    },
}

/// Fans a sweep out to shards once it has more than `size` Ingresses.
#[derive(Clone)]
pub struct ShardDispatcher {
    target: Target,
    size: usize,
}

impl fmt::Debug for ShardDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ShardDispatcher");
        d.field("size", &self.size);
        match &self.target {
            Target::Scf { function, .. } => d.field("scf", function),
            Target::Http { url, .. } => d.field("url", url),
        };
        d.finish()
    }
}

impl ShardDispatcher {
    /// Shards invoked through SCF's async `Invoke`, signed by `client`.
    pub fn scf(client: CloudClient, function: ScfFunction, size: usize) -> Self {
        Self {
            target: Target::Scf { client, function },
            size: size.max(1),
        }
    }

    /// Shards POSTed to `<base_url>/v1/invoke` of this function's own server.
    pub fn http(
        base_url: &str,
        token: WebhookToken,
        size: usize,
    ) -> Result<Self, ShardConfigError> {
        let base = base_url.trim().trim_end_matches('/');
        match reqwest::Url::parse(base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Err(ShardConfigError::Url(base.to_string())),
        }
        let client = reqwest::Client::builder()
            .user_agent(crate::identity::user_agent())
            .timeout(HTTP_ACCEPT_TIMEOUT)
            .build()
            .map_err(|e| ShardConfigError::Client(e.to_string()))?;
        Ok(Self {
            target: Target::Http {
                client,
                url: format!("{base}/v1/invoke"),
                token,
            },
            size: size.max(1),
        })
    }

    /// From the environment (see the module doc); `None` when the sweep cannot shard.
    pub fn from_env(cloud: &CloudClient) -> Result<Option<Self>, ShardConfigError> {
        Self::from_lookup(cloud, |k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        cloud: &CloudClient,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ShardConfigError> {
        let get = |names: &[&str]| {
            names.iter().find_map(|n| {
                lookup(n)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            })
        };
        let size = match get(&["SWEEP_SHARD_SIZE"]) {
            None => DEFAULT_SHARD_SIZE,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(ShardConfigError::Size(v)),
            },
        };
        if let Some(url) = get(&["SWEEP_SHARD_URL"]) {
            let token = get(&["WEBHOOK_TOKEN"])
                .and_then(WebhookToken::new)
                .ok_or(ShardConfigError::MissingToken)?;
            return Self::http(&url, token, size).map(Some);
        }
        let Some(name) = get(&["SWEEP_SHARD_FUNCTION", "SCF_FUNCTIONNAME"]) else {
            return Ok(None);
        };
        let function = ScfFunction {
            name,
            namespace: get(&["SWEEP_SHARD_NAMESPACE", "SCF_NAMESPACE"])
                .unwrap_or_else(|| "default".into()),
            qualifier: get(&["SWEEP_SHARD_QUALIFIER", "SCF_FUNCTIONVERSION"]),
        };
        Ok(Some(Self::scf(cloud.clone(), function, size)))
    }

    /// Ingresses per shard: a sweep with more than this fans out.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Starts one shard; returns the id under which it was accepted.
    pub async fn invoke(&self, spec: &ShardSpec) -> Result<String, ShardInvokeError> {
        let event = spec.event();
        match &self.target {
            Target::Scf { client, function } => {
                let request = InvokeRequest::event(function, &event)?;
                let response = client.invoke(&request).await?;
                Ok(response.result.function_request_id)
            }
            Target::Http { client, url, token } => {
                let fail = |message: String| ShardInvokeError::Http {
                    url: url.clone(),
                    message,
                };
                let mut auth = reqwest::header::HeaderValue::from_str(&token.bearer_header())
                    .map_err(|_| fail("the token is not a valid header value".into()))?;
                auth.set_sensitive(true);
                let response = client
                    .post(url)
                    .header(reqwest::header::AUTHORIZATION, auth)
                    .json(&event)
                    .send()
                    .await
                    .map_err(|e| fail(e.without_url().to_string()))?;
                let status = response.status();
                if status.is_success() {
                    Ok(format!("http-{}", status.as_u16()))
                } else {
                    let body = response.text().await.unwrap_or_default();
                    let body: String = body.chars().take(300).collect();
                    Err(fail(format!("answered {status}: {body}")))
                }
            }
        }
    }
}

impl ShardInvoker for ShardDispatcher {
    fn size(&self) -> usize {
        self.size
    }

    fn invoke<'a>(&'a self, spec: &'a ShardSpec) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            ShardDispatcher::invoke(self, spec)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{CloudConfig, Credentials};

    fn cloud() -> CloudClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        CloudClient::new(
            CloudConfig::builder(Credentials::new("id", "key"), "ap-guangzhou")
                .build()
                .unwrap(),
        )
        .unwrap()
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn without_a_function_name_or_url_the_sweep_does_not_shard() {
        assert!(ShardDispatcher::from_lookup(&cloud(), env(&[]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn scf_mode_takes_the_function_from_scf_variables_unless_overridden() {
        let d = ShardDispatcher::from_lookup(
            &cloud(),
            env(&[
                ("SCF_FUNCTIONNAME", "fn-a"),
                ("SCF_NAMESPACE", "ns-a"),
                ("SWEEP_SHARD_FUNCTION", "fn-b"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.size(), DEFAULT_SHARD_SIZE);
        let Target::Scf { function, .. } = &d.target else {
            panic!("{d:?}")
        };
        assert_eq!(function.name, "fn-b");
        assert_eq!(function.namespace, "ns-a");
        assert_eq!(function.qualifier, None);
    }

    #[test]
    fn local_mode_needs_a_token_and_a_valid_url_and_hides_the_token() {
        assert!(matches!(
            ShardDispatcher::from_lookup(
                &cloud(),
                env(&[("SWEEP_SHARD_URL", "http://127.0.0.1:1")])
            ),
            Err(ShardConfigError::MissingToken)
        ));
        assert!(matches!(
            ShardDispatcher::from_lookup(
                &cloud(),
                env(&[("SWEEP_SHARD_URL", "not a url"), ("WEBHOOK_TOKEN", "t0ken")])
            ),
            Err(ShardConfigError::Url(_))
        ));
        let d = ShardDispatcher::from_lookup(
            &cloud(),
            env(&[
                ("SWEEP_SHARD_URL", "http://127.0.0.1:1/"),
                ("WEBHOOK_TOKEN", "t0ken"),
                ("SWEEP_SHARD_SIZE", "3"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.size(), 3);
        let shown = format!("{d:?}");
        assert!(shown.contains("http://127.0.0.1:1/v1/invoke") && !shown.contains("t0ken"));
    }

    #[test]
    fn a_bad_shard_size_is_a_clear_error() {
        for bad in ["0", "-1", "many"] {
            assert!(matches!(
                ShardDispatcher::from_lookup(&cloud(), env(&[("SWEEP_SHARD_SIZE", bad)])),
                Err(ShardConfigError::Size(_))
            ));
        }
    }
}
