//! One entry point: an event JSON in, a report JSON out, whatever woke the function.
//!
//! The seam to the reconcile engine is the [`Engine`] trait (with [`IngressLookup`] for the
//! Service/Secret/Node → Ingress mapping); this module depends on nothing else of it.
//! Flow: decode (pure, `trigger`) → resolve symbolic changes to Ingress keys (one Ingress
//! listing per namespace, or one cluster-wide when Nodes changed) → reconcile with bounded
//! concurrency inside the time budget → report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::budget::{self, Ran};
use crate::runtime::web::{self, ServeOptions};
pub use crate::shard::ShardSpec;
use crate::trigger::{
    self, Change, DecodeError, Decoded, HttpEnvelope, Payload, SkipReason, Source,
};
pub use crate::trigger::{IngressKey, Work};

/// How one Ingress's reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeStatus {
    /// Cloud and status match the Ingress (including "nothing to change").
    Converged,
    /// The Ingress left our class or is gone; its CLB was released.
    Released,
    /// Not ours (another class) and nothing of ours to release.
    Ignored,
    /// Another run holds the Ingress's Lease; it was marked dirty for that run.
    SkippedBusy,
    /// `mode: skip`: left alone (its CLB at most marked so that a delete keeps it).
    Skipped,
    /// The Ingress is invalid (a Warning Event says why); nothing was changed.
    Invalid,
    /// A read or write failed, or the deadline ran out; the next trigger or sweep retries.
    Failed,
}

/// Cloud and cluster calls one run made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCounts {
    /// Plan actions applied (writes to the CLB or Tag API).
    pub applied: u32,
    /// Read calls to the cloud APIs.
    pub cloud_reads: u32,
    /// Write calls to the cloud APIs (an action may batch several targets into one call).
    pub cloud_writes: u32,
}

/// Summary of one Ingress's reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressOutcome {
    pub status: OutcomeStatus,
    /// Stable reason code (the Event reason, e.g. `E4018`/`LoadBalancerNotFound`) when not converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub actions: ActionCounts,
}

impl IngressOutcome {
    pub fn new(status: OutcomeStatus) -> Self {
        Self {
            status,
            code: None,
            message: None,
            actions: ActionCounts::default(),
        }
    }

    pub fn failed(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: Some(code.to_string()),
            message: Some(message.into()),
            ..Self::new(OutcomeStatus::Failed)
        }
    }
}

/// Summary of the sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOutcome {
    /// Ingresses reconciled by the sweep, by outcome.
    pub ingresses: BTreeMap<OutcomeStatus, u32>,
    /// CLBs released because the Ingress UID in their tags no longer exists.
    pub orphans_released: u32,
    /// Ingresses the sweep did not reach before the deadline.
    pub not_reached: u32,
    /// Set when the mass-release guard held every orphan release, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_held: Option<String>,
    /// Set when the sweep could not list (no release happens on a failed list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub actions: ActionCounts,
    /// Set when the cluster was too big for one invocation and the sweep fanned out to
    /// shards (it then reconciled none itself and only released orphans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsOutcome>,
}

/// How the fan-out of a sharded sweep went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardsOutcome {
    /// Shards the Ingresses were split into.
    pub count: u32,
    /// Id of this sweep, carried by every shard event.
    pub generation: String,
    /// Ingresses split among the shards.
    pub ingresses: u32,
    /// Shards whose invocation was accepted.
    pub invoked: u32,
    /// Shards whose invocation failed: left to the next tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ShardFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFailure {
    pub index: u32,
    pub error: String,
}

/// What the mapping needs to know of one Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressSummary {
    pub key: IngressKey,
    /// Service names of `defaultBackend` and every rule path.
    pub services: BTreeSet<String>,
    /// `tls[].secretName` values.
    pub tls_secrets: BTreeSet<String>,
    /// Backends are NodePorts (not direct-to-pod), so Node changes move its targets.
    pub node_port: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("listing ingresses: {0}")]
pub struct LookupError(pub String);

/// The cluster's Ingresses, for mapping Service/Secret/Node changes (filled by the engine).
pub trait IngressLookup: Send + Sync {
    /// Ingresses in `namespace`, or cluster-wide for `None`. A cached (`resourceVersion=0`)
    /// list is fine: a missed Ingress is caught by its own trigger or the sweep. Returning
    /// Ingresses that turn out not to be ours only costs a no-op reconcile.
    fn ingresses(
        &self,
        namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>>;

    /// The Ingresses one shard of a sharded sweep reconciles. By default every Ingress of
    /// the cluster in the shard's bucket; an engine that can tell which Ingresses its sweep
    /// would skip narrows this to the same selection.
    fn shard_members<'a>(
        &'a self,
        spec: &'a ShardSpec,
    ) -> BoxFuture<'a, Result<Vec<IngressKey>, LookupError>> {
        Box::pin(async move {
            Ok(self
                .ingresses(None)
                .await?
                .into_iter()
                .map(|s| s.key)
                .filter(|k| spec.contains(k))
                .collect())
        })
    }
}

/// The reconcile engine (implemented by `reconcile/`).
pub trait Engine: IngressLookup + Send + Sync + 'static {
    fn reconcile(&self, key: IngressKey, deadline: Instant) -> BoxFuture<'_, IngressOutcome>;
    /// `key`, which a record says was deleted while it had `uid`: its CLBs are found by that
    /// UID rather than by a scan of the cluster.
    fn reconcile_deleted(
        &self,
        key: IngressKey,
        uid: String,
        deadline: Instant,
    ) -> BoxFuture<'_, IngressOutcome> {
        let _ = uid;
        self.reconcile(key, deadline)
    }
    fn sweep(&self, deadline: Instant) -> BoxFuture<'_, SweepOutcome>;
}

/// The bearer token HTTP triggers must carry. Never printed.
#[derive(Clone)]
pub struct WebhookToken(Arc<str>);

impl WebhookToken {
    /// An empty token would let an empty `Bearer ` header through, so it is refused.
    pub fn new(token: impl AsRef<str>) -> Option<Self> {
        let token = token.as_ref().trim();
        (!token.is_empty()).then(|| Self(Arc::from(token)))
    }

    /// The `Authorization` value carrying this token, for our own calls to our own routes
    /// (the sharded sweep's local mode).
    pub fn bearer_header(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Checks an `Authorization` header value in time independent of where it differs:
    /// both sides are hashed first, so neither length nor prefix leaks through timing.
    pub fn verify(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let presented = match value.trim().split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return false,
        };
        let a = Sha256::digest(presented.as_bytes());
        let b = Sha256::digest(self.0.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookToken(<redacted>)")
    }
}

/// Largest request body accepted. The apiserver is configured (infra/kubernetes) to split
/// audit batches at 4 MiB (`--audit-webhook-truncate-max-batch-size`), and inside a function-URL
/// event the body is a JSON string whose escaping grows it, which must still fit SCF's 6 MB
/// synchronous event limit. Anything larger is a misconfiguration, answered 413.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Longest an HTTP envelope (function URL, i.e. a synchronous invocation) runs before it
/// answers. The audit webhook gives up after 30 s and re-sends the whole batch; an event
/// function is frozen once it answers, so there is no background to hand work to. Ingresses
/// not started within this budget are listed in `not_started` and left to the sweep (and to
/// their next trigger); the web-function mode (`runtime::web`) instead keeps working after it
/// answers.
pub const HTTP_ANSWER_BUDGET: Duration = Duration::from_secs(25);

/// Bounds of one run.
#[derive(Clone, Debug)]
pub struct HandleOptions {
    /// Reconciles still running at the deadline are cut off (they are resumable).
    pub deadline: Instant,
    /// Reconciles in flight at once (CLB actions are limited to 20 req/s each).
    pub concurrency: usize,
    /// A reconcile is not started with less than this left before the deadline.
    pub min_start: Duration,
    /// Required of HTTP envelopes; `None` refuses every envelope.
    pub token: Option<WebhookToken>,
    pub body_limit: usize,
}

impl HandleOptions {
    pub fn new(deadline: Instant, token: Option<WebhookToken>) -> Self {
        Self {
            deadline,
            concurrency: 4,
            min_start: Duration::from_secs(5),
            token,
            body_limit: BODY_LIMIT,
        }
    }
}

/// Work resolved from changes, with the reason it may be wider than asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub work: Work,
    /// The Ingress listing failed, so the sweep stands in for the unresolved changes.
    pub lookup_error: Option<String>,
}

/// Maps changes to Ingresses. The sweep covers every Ingress, so with a sweep no single
/// Ingress is listed. A failed listing falls back to the sweep rather than losing the change,
/// except for a shard: N shards each falling back to the whole sweep would multiply it, and
/// the next tick re-sends the shard anyway.
pub async fn resolve(lookup: &dyn IngressLookup, changes: &BTreeSet<Change>) -> Resolved {
    let mut work = Work::default();
    let mut namespaces = BTreeSet::new();
    let mut nodes = false;
    for change in changes {
        match change {
            Change::Sweep => work.sweep = true,
            Change::SweepShard(spec) => work.shard = Some(spec.clone()),
            Change::Ingress(key) => {
                work.ingresses.insert(key.clone());
            }
            Change::IngressDeleted { key, uid } => {
                work.ingresses.insert(key.clone());
                work.deleted.insert(key.clone(), uid.clone());
            }
            Change::Service { namespace, .. }
            | Change::Secret { namespace, .. }
            | Change::Namespace { namespace } => {
                namespaces.insert(namespace.clone());
            }
            Change::Nodes => nodes = true,
        }
    }
    if work.sweep {
        work.ingresses.clear();
        work.deleted.clear();
        work.shard = None;
        return Resolved {
            work,
            lookup_error: None,
        };
    }
    if let Some(spec) = &work.shard {
        match lookup.shard_members(spec).await {
            Ok(keys) => work.ingresses.extend(keys),
            Err(e) => {
                return Resolved {
                    work,
                    lookup_error: Some(e.to_string()),
                }
            }
        }
    }
    let scopes: Vec<Option<String>> = if nodes {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    for scope in scopes {
        match lookup.ingresses(scope).await {
            Ok(summaries) => work.ingresses.extend(
                summaries
                    .into_iter()
                    .filter(|s| affected(s, changes))
                    .map(|s| s.key),
            ),
            Err(e) => {
                return Resolved {
                    work: Work {
                        sweep: true,
                        ..Work::default()
                    },
                    lookup_error: Some(e.to_string()),
                }
            }
        }
    }
    Resolved {
        work,
        lookup_error: None,
    }
}

fn affected(s: &IngressSummary, changes: &BTreeSet<Change>) -> bool {
    let ns = s.key.namespace.as_str();
    changes.iter().any(|c| match c {
        Change::Nodes => s.node_port,
        Change::Namespace { namespace } => namespace == ns,
        Change::Service { namespace, name } => namespace == ns && s.services.contains(name),
        Change::Secret { namespace, name } => namespace == ns && s.tls_secrets.contains(name),
        Change::Ingress(_)
        | Change::IngressDeleted { .. }
        | Change::Sweep
        | Change::SweepShard(_) => false,
    })
}

/// One Ingress's line in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressResult {
    pub ingress: String,
    #[serde(flatten)]
    pub outcome: IngressOutcome,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub source: Source,
    pub items: usize,
    pub skipped: BTreeMap<SkipReason, usize>,
    pub changes: usize,
    pub ingresses: Vec<String>,
    pub sweep_requested: bool,
    /// The shard this run reconciled (its Ingresses are `ingresses`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_error: Option<String>,
    pub results: Vec<IngressResult>,
    /// Ingresses not started before the deadline: the next trigger or the sweep takes them.
    pub not_started: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepOutcome>,
}

/// Decoded changes → resolved work → reconciles → report.
pub async fn run(engine: Arc<dyn Engine>, decoded: Decoded, opts: &HandleOptions) -> Report {
    let resolved = resolve(engine.as_ref(), &decoded.changes).await;
    let work = resolved.work;
    let deadline = opts.deadline;
    let min_start = opts.min_start;

    let keys: Vec<(IngressKey, Option<String>)> = work
        .ingresses
        .iter()
        .map(|k| (k.clone(), work.deleted.get(k).cloned()))
        .collect();
    let runs = budget::run_within(
        keys,
        opts.concurrency,
        min_start,
        deadline,
        |(key, deleted_uid)| {
            let engine = Arc::clone(&engine);
            async move {
                match deleted_uid {
                    Some(uid) => engine.reconcile_deleted(key, uid, deadline).await,
                    None => engine.reconcile(key, deadline).await,
                }
            }
        },
    )
    .await;

    let mut results = Vec::new();
    let mut not_started = Vec::new();
    for ((key, _), ran) in runs {
        let outcome = match ran {
            Ran::Done(outcome) => outcome,
            Ran::CutOff => IngressOutcome::failed(
                "DeadlineExceeded",
                "cut off at the function deadline; the next run resumes",
            ),
            Ran::NotStarted => {
                not_started.push(key.to_string());
                continue;
            }
        };
        results.push(IngressResult {
            ingress: key.to_string(),
            outcome,
        });
    }
    results.sort_by(|a, b| a.ingress.cmp(&b.ingress));
    not_started.sort();

    let sweep = if work.sweep {
        if Instant::now() + min_start > deadline {
            Some(SweepOutcome {
                error: Some("not started: too close to the deadline".into()),
                ..SweepOutcome::default()
            })
        } else {
            Some(
                tokio::time::timeout_at(deadline, engine.sweep(deadline))
                    .await
                    .unwrap_or_else(|_| SweepOutcome {
                        error: Some("cut off at the function deadline".into()),
                        ..SweepOutcome::default()
                    }),
            )
        }
    } else {
        None
    };

    Report {
        source: decoded.source,
        items: decoded.items,
        skipped: decoded.skipped,
        changes: decoded.changes.len(),
        ingresses: work.ingresses.iter().map(ToString::to_string).collect(),
        sweep_requested: work.sweep,
        shard: work.shard.clone(),
        lookup_error: resolved.lookup_error,
        results,
        not_started,
        sweep,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Any SCF event → report JSON. An HTTP envelope gets an HTTP response (status, headers,
/// body) in the function-URL format, with its token and size checked before anything runs.
pub async fn handle(
    engine: Arc<dyn Engine>,
    event: &Value,
    opts: &HandleOptions,
) -> Result<Value, HandleError> {
    match trigger::decode(event)? {
        Payload::Decoded(decoded) => Ok(report_json(&run(engine, decoded, opts).await)),
        Payload::Http(envelope) => Ok(handle_envelope(engine, envelope, opts).await),
    }
}

/// The HTTP request inside a function-URL event goes through the web server's router (one
/// front door: token, size, route, decoding), waits for its run (an event function is frozen
/// once it answers) and is cut at [`HTTP_ANSWER_BUDGET`].
async fn handle_envelope(
    engine: Arc<dyn Engine>,
    req: HttpEnvelope,
    opts: &HandleOptions,
) -> Value {
    let now = Instant::now();
    let serve = ServeOptions {
        token: opts.token.clone(),
        budget: opts
            .deadline
            .min(now + HTTP_ANSWER_BUDGET)
            .saturating_duration_since(now),
        ack_within: Duration::ZERO,
        wait_for_run: true,
        concurrency: opts.concurrency,
        min_start: opts.min_start,
        body_limit: opts.body_limit,
        // One invocation carries one request.
        max_runs: 1,
    };
    let (status, body) = web::answer_envelope(engine, req, serve).await;
    http_response(status.as_u16(), &body)
}

pub fn report_json(report: &Report) -> Value {
    serde_json::to_value(report).unwrap_or_else(|e| error_body("report", &e.to_string()))
}

pub fn error_body(error: &str, message: &str) -> Value {
    json!({"error": error, "message": message})
}

fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "isBase64Encoded": false,
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster of `keys`, or a failing listing for `None`.
    struct Listing(Option<Vec<IngressKey>>);

    impl IngressLookup for Listing {
        fn ingresses(
            &self,
            _namespace: Option<String>,
        ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
            let listed = self.0.clone().ok_or(LookupError("apiserver down".into()));
            Box::pin(async move {
                Ok(listed?
                    .into_iter()
                    .map(|key| IngressSummary {
                        key,
                        services: BTreeSet::new(),
                        tls_secrets: BTreeSet::new(),
                        node_port: true,
                    })
                    .collect())
            })
        }
    }

    fn shard_change(index: u32, count: u32) -> BTreeSet<Change> {
        let spec = ShardSpec::new(index, count, "g").unwrap();
        BTreeSet::from([Change::SweepShard(spec)])
    }

    #[tokio::test]
    async fn a_shard_resolves_to_exactly_the_ingresses_of_its_bucket() {
        let keys: Vec<IngressKey> = (0..40)
            .map(|i| IngressKey::new("ns", format!("i{i}")))
            .collect();
        let lookup = Listing(Some(keys.clone()));
        let mut all = BTreeSet::new();
        for index in 0..3 {
            let r = resolve(&lookup, &shard_change(index, 3)).await;
            assert!(!r.work.sweep && r.lookup_error.is_none());
            assert_eq!(r.work.shard.as_ref().map(|s| s.index), Some(index));
            for k in &r.work.ingresses {
                assert!(all.insert(k.clone()), "{k} in two shards");
            }
        }
        assert_eq!(all, keys.into_iter().collect());
    }

    #[tokio::test]
    async fn a_shard_whose_listing_fails_does_nothing_instead_of_sweeping() {
        let r = resolve(&Listing(None), &shard_change(0, 2)).await;
        assert!(!r.work.sweep, "a shard never turns into the whole sweep");
        assert!(r.work.ingresses.is_empty());
        assert!(r.lookup_error.is_some_and(|e| e.contains("apiserver down")));
    }

    #[test]
    fn token_accepts_only_the_exact_bearer_value() {
        let t = WebhookToken::new("s3cret").unwrap();
        assert!(t.verify(Some("Bearer s3cret")));
        assert!(t.verify(Some("bearer  s3cret ")));
        assert!(!t.verify(Some("Bearer s3cre")));
        assert!(!t.verify(Some("Bearer s3cret2")));
        assert!(!t.verify(Some("Basic s3cret")));
        assert!(!t.verify(Some("s3cret")));
        assert!(!t.verify(None));
    }

    #[test]
    fn an_empty_token_is_refused_at_configuration() {
        assert!(WebhookToken::new("  ").is_none());
    }

    #[test]
    fn token_debug_output_hides_the_secret() {
        let t = WebhookToken::new("s3cret").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
