//! Executes a [`Plan`] through the typed client, in order, resolving the natural keys of
//! things an earlier action of the same plan created.
//!
//! No re-reads: CreateLoadBalancer hands back the CLB (with its VIP, which resolves
//! `Domain::Default`), CreateListener returns `ListenerIds` in the order of `Ports`, and
//! CreateRule returns `LocationIds` in the order of `Rules`. Async writes wait on their task
//! and transient errors are retried inside the client. A failing action does not stop the
//! plan: the actions that depend on it ([`crate::plan::depends`]) are skipped, the others
//! still run, and the next run reads the cloud again and retries what failed (DESIGN §2). Only
//! a failure that is not the call's own ([`CloudError::stops_the_plan`]) stops it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::clb::{
    BatchModifyTargetWeightRequest, BatchTarget as ApiBatchTarget, BatchTargetsRequest,
    CertificateInput, CreateListenerRequest, CreateRuleRequest, DeleteLoadBalancerRequest,
    DeleteRuleRequest, DescribeListenersRequest, DescribeLoadBalancersRequest, Filter,
    ModifyDomainAttributesRequest, ModifyListenerRequest, ModifyLoadBalancerAttributesRequest,
    RsWeightRule, RuleInput, SetLoadBalancerSecurityGroupsRequest, TagInfo, Target,
};
use super::client::CloudClient;
use super::error::CloudError;
use super::observe::{cloud_lb, read_load_balancer};
use super::rewrite::{RewriteLocationMap, RewriteRequest, REWRITE_NOT_FOUND};
use super::tag::{clb_resource_name, TagResourcesRequest, UnTagResourcesRequest};
use crate::model::lb::{Backend, Certificate, Domain, LbType, ListenerKey};
use crate::model::ownership::TAG_INGRESS_UID;
use crate::model::problem::codes;
use crate::model::LbSpec;
use crate::plan::depends::Progress;
use crate::plan::{
    default_domain, Action, BatchTarget, CloudView, ListenerRef, Plan, RedirectPair, RuleRef,
};

/// How long an adopting run lets concurrent adopters' tags land before it reads the tags
/// back (see [`confirm_tags`]). It must outlast the time between another run's look at the
/// CLB and its TagResources call (a DescribeListeners and a plan, normally milliseconds).
pub const ADOPTION_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// What apply may add to a plan, and a test hook.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// Where the next ClientToken comes from when one answers a CLB no longer ours: the run's
    /// create epoch under the Lease ([`super::create_token`]).
    pub token_advance: Option<std::sync::Arc<dyn super::create_token::TokenAdvance>>,
    /// VPC for CLBs whose spec names none. The pure core cannot know the cluster's VPC (it
    /// is not in the Ingress, and reading it from the subnet needs the VPC API, which this
    /// function does not call): INTERNAL CLBs need one, so it comes from configuration
    /// (`CLB_VPC_ID`) unless the Ingress's `cross-vpc-id` annotation names one.
    pub vpc_id: Option<String>,
    /// Tests only: stop (successfully) after this many actions, as a run killed mid-plan.
    pub stop_after: Option<usize>,
}

/// The CLB as it is after the plan: what the Ingress status is written from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbAddress {
    pub id: String,
    pub vips: Vec<String>,
    pub domain: Option<String>,
}

impl LbAddress {
    pub fn of(lb: &crate::plan::CloudLb) -> Self {
        Self {
            id: lb.id.clone(),
            vips: lb.vips.clone(),
            domain: lb.domain.clone(),
        }
    }
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Actions completed.
    pub actions: usize,
    /// Write requests sent (not counting the client's retries and task polls).
    pub writes: u32,
    /// The CLB created by the plan, if it created one.
    pub created: Option<LbAddress>,
    /// True when `stop_after` cut the plan short.
    pub stopped: bool,
    /// CLBs that CreateLoadBalancer answered without our tags (a user took them out of the
    /// cluster): left alone; the CLB in `created` was made under the next ClientToken.
    pub disowned: Vec<String>,
    /// Actions not run because one they depend on failed (or a failure stopped the plan).
    pub skipped: usize,
}

/// An apply in which action `index` (0-based), the first to fail, and the actions in `more`
/// failed; `applied.actions` succeeded.
#[derive(Debug, thiserror::Error)]
#[error("action {} of {total} ({action}) failed: {error}{}", index + 1, others(more, applied.skipped))]
pub struct ApplyError {
    pub index: usize,
    pub total: usize,
    /// The failing action, as the plan prints it (first line).
    pub action: String,
    pub applied: Applied,
    #[source]
    pub error: CloudError,
    /// Later actions that failed too (independent of the first).
    pub more: Vec<ActionFailure>,
}

/// One failed action of a plan.
#[derive(Debug, thiserror::Error)]
#[error("action {} ({action}) failed: {error}", index + 1)]
pub struct ActionFailure {
    pub index: usize,
    pub action: String,
    #[source]
    pub error: CloudError,
}

impl ApplyError {
    /// Every failed action, the first one first.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &CloudError)> {
        std::iter::once((self.action.as_str(), &self.error))
            .chain(self.more.iter().map(|f| (f.action.as_str(), &f.error)))
    }
}

fn others(more: &[ActionFailure], skipped: usize) -> String {
    let mut out = String::new();
    if !more.is_empty() {
        out.push_str(&format!("; {} more failed", more.len()));
    }
    if skipped > 0 {
        out.push_str(&format!(
            "; {skipped} skipped (they depend on a failed one)"
        ));
    }
    out
}

/// Ids known so far: from the observed CLB, then from what the plan creates.
struct Resolver {
    lb_id: Option<String>,
    /// The CLB's tags as the plan saw them: the values a release proved.
    tags: BTreeMap<String, String>,
    /// Set once the plan has deleted listeners of ours.
    listeners_deleted: bool,
    default_domain: Option<String>,
    listeners: BTreeMap<ListenerKey, String>,
    rules: BTreeMap<(ListenerKey, String, String), String>,
    /// Location ids of the rules that carry their listener's default domain.
    default_servers: Vec<String>,
}

impl Resolver {
    fn new(plan: &Plan, cloud: &CloudView) -> Self {
        let mut r = Resolver {
            lb_id: plan.load_balancer_id.clone(),
            tags: BTreeMap::new(),
            listeners_deleted: false,
            default_domain: None,
            listeners: BTreeMap::new(),
            rules: BTreeMap::new(),
            default_servers: Vec::new(),
        };
        if let Some(lb) = &cloud.load_balancer {
            r.default_domain = default_domain(lb).map(str::to_string);
            r.tags = lb.tags.clone();
            if r.lb_id.is_none() {
                r.lb_id = Some(lb.id.clone());
            }
            for l in lb
                .listeners
                .iter()
                .filter(|l| crate::model::ownership::is_our_listener(&l.name))
            {
                r.listeners.insert(l.key(), l.id.clone());
                for rule in &l.rules {
                    if rule.default_server {
                        r.default_servers.push(rule.location_id.clone());
                    }
                    r.rules.insert(
                        (l.key(), rule.domain.clone(), rule.url.clone()),
                        rule.location_id.clone(),
                    );
                }
            }
        }
        r
    }

    fn lb(&self) -> Result<&str, CloudError> {
        self.lb_id
            .as_deref()
            .ok_or_else(|| unresolved("the plan has no CLB to work on"))
    }

    fn listener(&self, r: &ListenerRef) -> Result<String, CloudError> {
        match &r.id {
            Some(id) => Ok(id.clone()),
            None => self
                .listeners
                .get(&r.key)
                .cloned()
                .ok_or_else(|| unresolved(&format!("listener {} was not created", r.key))),
        }
    }

    fn domain(&self, d: &Domain) -> Result<String, CloudError> {
        match d {
            Domain::Name(n) => Ok(n.clone()),
            Domain::Default => self
                .default_domain
                .clone()
                .ok_or_else(|| unresolved("the CLB has no VIP or domain for host-less rules")),
        }
    }

    /// `NewDefaultServerDomain` for deleting `doomed` rules of `listener`: a listener must
    /// keep a default domain, so when the rules going away carry it and no remaining rule
    /// has that domain, another remaining domain takes over.
    fn new_default_domain(&self, listener: ListenerKey, doomed: &[String]) -> Option<String> {
        let mut remaining = self
            .rules
            .iter()
            .filter(|((k, _, _), loc)| *k == listener && !doomed.contains(loc))
            .map(|((_, domain, _), _)| domain);
        let default_domain = self
            .rules
            .iter()
            .find(|((k, _, _), loc)| {
                *k == listener && doomed.contains(loc) && self.default_servers.contains(loc)
            })
            .map(|((_, domain, _), _)| domain)?;
        let first = remaining.clone().next()?;
        if remaining.any(|d| d == default_domain) {
            return None;
        }
        Some(first.clone())
    }

    /// After `domain` became the default domain of `listener`: a later DeleteRule must not
    /// hand the default to another domain when it deletes the old default's rules.
    fn default_domain_moved(&mut self, listener: ListenerKey, domain: &str) {
        let on_listener: Vec<(&String, &String)> = self
            .rules
            .iter()
            .filter(|((k, _, _), _)| *k == listener)
            .map(|((_, d, _), loc)| (d, loc))
            .collect();
        self.default_servers
            .retain(|loc| !on_listener.iter().any(|(_, l)| *l == loc));
        self.default_servers.extend(
            on_listener
                .iter()
                .filter(|(d, _)| d.as_str() == domain)
                .map(|(_, loc)| (*loc).clone()),
        );
    }

    fn rule(&self, r: &RuleRef) -> Result<(String, String), CloudError> {
        let listener = self.listener(&r.listener)?;
        if let Some(loc) = &r.location_id {
            return Ok((listener, loc.clone()));
        }
        let domain = self.domain(&r.key.domain)?;
        let loc = self
            .rules
            .get(&(r.listener.key, domain, r.key.url.clone()))
            .cloned()
            .ok_or_else(|| unresolved(&format!("rule {} was not created", r.key)))?;
        Ok((listener, loc))
    }
}

fn unresolved(message: &str) -> CloudError {
    CloudError::Unexpected {
        action: "apply".into(),
        message: message.to_string(),
    }
}

fn cert_input(c: &Certificate) -> CertificateInput {
    CertificateInput {
        ssl_mode: Some(c.ssl_mode.as_api().to_string()),
        cert_id: Some(c.cert_id.clone()),
        cert_ca_id: c.ca_cert_id.clone(),
        ..Default::default()
    }
}

/// Executes `plan` (computed against `cloud`) in order.
pub async fn apply(
    client: &CloudClient,
    plan: &Plan,
    cloud: &CloudView,
    opts: &ApplyOptions,
) -> Result<Applied, ApplyError> {
    let mut res = Resolver::new(plan, cloud);
    let mut applied = Applied::default();
    let total = plan.actions.len();
    let mut progress = Progress::new(&plan.actions);
    let mut failures: Vec<ActionFailure> = Vec::new();
    for (index, action) in plan.actions.iter().enumerate() {
        if opts.stop_after.is_some_and(|k| index >= k) {
            applied.stopped = true;
            break;
        }
        let stopped = failures.last().is_some_and(|f| f.error.stops_the_plan());
        if stopped || !progress.may_run(index) {
            applied.skipped += 1;
            continue;
        }
        let result = run_action(client, action, &mut res, opts, &mut applied).await;
        progress.record(index, result.is_ok());
        match result {
            Ok(()) => applied.actions += 1,
            Err(error) => {
                let shown = action.to_string();
                let action = shown.lines().next().unwrap_or_default().to_string();
                tracing::warn!(action = %action, error = %error, "plan action failed");
                failures.push(ActionFailure {
                    index,
                    action,
                    error,
                });
            }
        }
    }
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok(applied),
        Some(first) => Err(ApplyError {
            index: first.index,
            total,
            action: first.action,
            applied,
            error: first.error,
            more: failures.collect(),
        }),
    }
}

async fn run_action(
    client: &CloudClient,
    action: &Action,
    res: &mut Resolver,
    opts: &ApplyOptions,
    applied: &mut Applied,
) -> Result<(), CloudError> {
    let region = client.region().to_string();
    match action {
        Action::CreateLoadBalancer { spec } => {
            let created = create_load_balancer(client, spec, opts).await?;
            applied.writes += created.writes;
            applied.disowned.extend(created.disowned);
            let lb = created.lb;
            res.lb_id = Some(lb.id.clone());
            res.default_domain = default_domain(&lb).map(str::to_string);
            applied.created = Some(LbAddress::of(&lb));
        }
        Action::TagResources { tags } => {
            applied.writes += 1;
            client
                .tag_resources(&TagResourcesRequest {
                    resource_list: vec![clb_resource_name(&region, res.lb()?)],
                    tags: tags.iter().map(|(k, v)| TagInfo::new(k, v)).collect(),
                })
                .await?;
            confirm_tags(client, res.lb()?, tags).await?;
        }
        Action::UnTagResources { keys } => {
            still_proven(client, res.lb()?, keys, &res.tags, res.listeners_deleted).await?;
            applied.writes += 1;
            client
                .untag_resources(&UnTagResourcesRequest {
                    resource_list: vec![clb_resource_name(&region, res.lb()?)],
                    tag_keys: keys.clone(),
                })
                .await?;
        }
        Action::DeleteListeners { listeners } => {
            let ids = listeners
                .iter()
                .map(|l| res.listener(l))
                .collect::<Result<Vec<_>, _>>()?;
            applied.writes += 1;
            match client.delete_load_balancer_listeners(res.lb()?, &ids).await {
                // Already gone (a killed run deleted it): the goal is reached.
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
            res.listeners.retain(|_, id| !ids.contains(id));
            res.listeners_deleted = true;
        }
        Action::CreateListeners {
            protocol,
            ports,
            names,
            certificate,
            sni,
        } => {
            applied.writes += 1;
            let lb_id = res.lb()?.to_string();
            let https = *protocol == crate::model::lb::Protocol::Https;
            let created = client
                .create_listener(&CreateListenerRequest {
                    load_balancer_id: lb_id,
                    ports: ports.iter().map(|p| i64::from(*p)).collect(),
                    protocol: protocol.as_api().to_string(),
                    listener_names: names.clone(),
                    certificate: certificate.as_ref().map(cert_input),
                    sni_switch: https.then_some(i64::from(*sni)),
                    ..Default::default()
                })
                .await?;
            if created.listener_ids.len() != ports.len() {
                return Err(CloudError::Unexpected {
                    action: "CreateListener".into(),
                    message: format!(
                        "{} ListenerIds for {} Ports (RequestId {})",
                        created.listener_ids.len(),
                        ports.len(),
                        created.request_id
                    ),
                });
            }
            for (port, id) in ports.iter().zip(created.listener_ids) {
                res.listeners.insert(
                    ListenerKey {
                        protocol: *protocol,
                        port: *port,
                    },
                    id,
                );
            }
        }
        Action::ModifyListener {
            listener,
            certificate,
            sni_on,
        } => {
            applied.writes += 1;
            client
                .modify_listener(&ModifyListenerRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id: res.listener(listener)?,
                    certificate: certificate.as_ref().map(cert_input),
                    sni_switch: sni_on.then_some(1),
                    ..Default::default()
                })
                .await?;
        }
        Action::CreateRules { listener, rules } => {
            let listener_id = res.listener(listener)?;
            let mut inputs = Vec::with_capacity(rules.len());
            let mut keys = Vec::with_capacity(rules.len());
            for r in rules {
                let domain = res.domain(&r.key.domain)?;
                inputs.push(RuleInput {
                    url: r.key.url.clone(),
                    domain: Some(domain.clone()),
                    certificate: r.certificate.as_ref().map(cert_input),
                    default_server: r.default_server.then_some(true),
                    ..Default::default()
                });
                keys.push((domain, r.key.url.clone()));
            }
            applied.writes += 1;
            let created = client
                .create_rule(&CreateRuleRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id,
                    rules: inputs,
                })
                .await?;
            if created.location_ids.len() != keys.len() {
                return Err(CloudError::Unexpected {
                    action: "CreateRule".into(),
                    message: format!(
                        "{} LocationIds for {} Rules (RequestId {})",
                        created.location_ids.len(),
                        keys.len(),
                        created.request_id
                    ),
                });
            }
            for ((domain, url), loc) in keys.into_iter().zip(created.location_ids) {
                res.rules.insert((listener.key, domain, url), loc);
            }
            if let Some(r) = rules.iter().find(|r| r.default_server) {
                let domain = res.domain(&r.key.domain)?;
                res.default_domain_moved(listener.key, &domain);
            }
        }
        Action::ModifyDomainAttributes {
            listener,
            domain,
            certificate,
        } => {
            applied.writes += 1;
            client
                .modify_domain_attributes(&ModifyDomainAttributesRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id: res.listener(listener)?,
                    domain: res.domain(domain)?,
                    certificate: Some(cert_input(certificate)),
                    ..Default::default()
                })
                .await?;
        }
        Action::ModifyRule { rule, attributes } => {
            let (listener_id, loc) = res.rule(rule)?;
            applied.writes += 1;
            client
                .modify_rule(&super::attributes::modify_rule_request(
                    res.lb()?.to_string(),
                    listener_id,
                    loc,
                    attributes,
                ))
                .await?;
        }
        Action::SetKeepalive { listener, enable } => {
            applied.writes += 1;
            client
                .modify_listener(&ModifyListenerRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id: res.listener(listener)?,
                    keepalive_enable: Some(i64::from(*enable)),
                    ..Default::default()
                })
                .await?;
        }
        Action::SetDefaultServer { listener, domain } => {
            let domain = res.domain(domain)?;
            applied.writes += 1;
            client
                .modify_domain_attributes(&ModifyDomainAttributesRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id: res.listener(listener)?,
                    domain: domain.clone(),
                    default_server: Some(true),
                    ..Default::default()
                })
                .await?;
            res.default_domain_moved(listener.key, &domain);
        }
        Action::RegisterTargets { targets } => {
            let req = batch_request(res, targets)?;
            applied.writes += 1;
            client.batch_register_targets(&req).await?;
        }
        Action::DeregisterTargets { targets } => {
            let req = batch_request(res, targets)?;
            applied.writes += 1;
            client.batch_deregister_targets(&req).await?;
        }
        Action::ModifyTargetWeight { targets } => {
            // The plan groups weight changes per rule; one RsWeightRule per rule.
            let mut per_rule: BTreeMap<(String, String), Vec<Target>> = BTreeMap::new();
            for t in targets {
                let (listener_id, loc) = res.rule(&t.rule)?;
                let (instance_id, eni_ip) = backend_fields(&t.target.backend);
                per_rule
                    .entry((listener_id, loc))
                    .or_default()
                    .push(Target {
                        port: Some(i64::from(t.target.port)),
                        instance_id,
                        eni_ip,
                        weight: Some(i64::from(t.weight)),
                    });
            }
            let modify_list = per_rule
                .into_iter()
                .map(|((listener_id, loc), targets)| RsWeightRule {
                    listener_id,
                    targets,
                    location_id: Some(loc),
                    ..Default::default()
                })
                .collect();
            applied.writes += 1;
            client
                .batch_modify_target_weight(&BatchModifyTargetWeightRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    modify_list,
                })
                .await?;
        }
        Action::DeleteRules {
            listener,
            location_ids,
            ..
        } => {
            applied.writes += 1;
            let listener_id = res.listener(listener)?;
            match client
                .delete_rule(&DeleteRuleRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    listener_id,
                    location_ids: location_ids.clone(),
                    new_default_server_domain: res.new_default_domain(listener.key, location_ids),
                    ..Default::default()
                })
                .await
            {
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
            res.rules.retain(|_, loc| !location_ids.contains(loc));
        }
        Action::ModifyLoadBalancerAttributes {
            delete_protect,
            pass_to_target,
        } => {
            applied.writes += 1;
            client
                .modify_load_balancer_attributes(&ModifyLoadBalancerAttributesRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    delete_protect: *delete_protect,
                    load_balancer_pass_to_target: *pass_to_target,
                    ..Default::default()
                })
                .await?;
        }
        Action::SetSecurityGroups { security_groups } => {
            applied.writes += 1;
            client
                .set_load_balancer_security_groups(&SetLoadBalancerSecurityGroupsRequest {
                    load_balancer_id: res.lb()?.to_string(),
                    security_groups: security_groups.clone(),
                })
                .await?;
        }
        Action::ManualRewrite { pairs } => {
            let req = rewrite_request(res, pairs)?;
            applied.writes += 1;
            client.manual_rewrite(&req).await?;
        }
        Action::DeleteRewrite { pairs } => {
            let req = rewrite_request(res, pairs)?;
            applied.writes += 1;
            match client.delete_rewrite(&req).await {
                // Gone already (a run stopped after the call, or a concurrent one).
                Err(e) if e.is_not_found() || e.code() == Some(REWRITE_NOT_FOUND) => {}
                other => {
                    other?;
                }
            }
        }
        Action::DeleteLoadBalancer { lb_id } => {
            applied.writes += 1;
            match client
                .delete_load_balancer(&DeleteLoadBalancerRequest {
                    load_balancer_ids: vec![lb_id.clone()],
                    // The plan only deletes a CLB whose ownership a fresh read proved; without
                    // ForceDelete the API refuses any CLB with 20 or more bound targets
                    // (FailedOperation.TargetNumCheckRisk) and the release would never finish.
                    force_delete: Some(true),
                })
                .await
            {
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// ManualRewrite / DeleteRewrite of `pairs` (one source and one target listener): a code
/// goes with `TakeUrl` and the source rule's domain, as the API requires.
fn rewrite_request(res: &Resolver, pairs: &[RedirectPair]) -> Result<RewriteRequest, CloudError> {
    let first = pairs
        .first()
        .ok_or_else(|| unresolved("a redirect action without pairs"))?;
    let mut infos = Vec::new();
    for p in pairs {
        let (_, source) = res.rule(&p.source)?;
        let (_, target) = res.rule(&p.target)?;
        let coded = p.code.is_some();
        infos.push(RewriteLocationMap {
            source_location_id: source,
            target_location_id: target,
            rewrite_code: p.code.map(i64::from),
            take_url: coded.then_some(p.take_url),
            source_domain: if coded {
                Some(res.domain(&p.source.key.domain)?)
            } else {
                None
            },
        });
    }
    Ok(RewriteRequest {
        load_balancer_id: res.lb()?.to_string(),
        source_listener_id: res.listener(&first.source.listener)?,
        target_listener_id: res.listener(&first.target.listener)?,
        rewrite_infos: infos,
    })
}

/// Whatever CreateLoadBalancer answers is written to only if it carries all three of our
/// tags: a replayed ClientToken answers the CLB it made first, whatever became of its tags
/// since (a user who took it out of the cluster removed one).
fn carries_our_tags(spec: &LbSpec, lb: &crate::plan::CloudLb) -> Result<(), CloudError> {
    let missing: Vec<&str> = spec
        .tags
        .iter()
        .filter(|(k, v)| lb.tags.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(CloudError::NotOurs {
        lb_id: lb.id.clone(),
        code: codes::TAGS_TAMPERED,
        message: format!(
            "CreateLoadBalancer answered it without our tag(s) {}; nothing is written to it",
            missing.join(", ")
        ),
    })
}

/// Our tags come off a CLB only while nothing of ours is left on it and they still carry
/// the values the release proved: after the plan deleted our listeners, a fresh
/// DescribeListeners must show none of ours (a batch delete answered "not found" may have
/// deleted none of the others; a `mode: skip` release keeps them on purpose and deletes
/// none), then a fresh read of the tags, and the untag right after it. The Tag API has no conditional delete,
/// so the window left is that one round trip: a release by another run AND an adoption
/// by another Ingress would both have to land inside it.
async fn still_proven(
    client: &CloudClient,
    lb_id: &str,
    keys: &[String],
    proven: &BTreeMap<String, String>,
    listeners_deleted: bool,
) -> Result<(), CloudError> {
    if listeners_deleted {
        let ours_left = client
            .describe_listeners(&DescribeListenersRequest {
                load_balancer_id: lb_id.to_string(),
                ..Default::default()
            })
            .await?
            .listeners
            .iter()
            .filter(|l| crate::model::ownership::is_our_listener(&l.listener_name))
            .count();
        if ours_left > 0 {
            return Err(unresolved(&format!(
                "{ours_left} listener(s) of ours remain on {lb_id}; its tags stay so that the \
                 next run finds it and finishes the release"
            )));
        }
    }
    let lb = read_load_balancer(client, lb_id)
        .await?
        .ok_or_else(|| unresolved(&format!("CLB {lb_id} is not readable before untagging")))?;
    let changed: Vec<String> = keys
        .iter()
        .filter(|k| proven.get(*k).map(String::as_str) != lb.tag(k))
        .map(|k| format!("{k}={}", lb.tag(k).unwrap_or("(none)")))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(CloudError::NotOurs {
        lb_id: lb_id.to_string(),
        code: codes::NO_RELEASE_PROOF,
        message: format!(
            "its tags changed since the release was proven ({}); they are left alone",
            changed.join(", ")
        ),
    })
}

/// Adoption is compare-and-set over an API that has no conditional write: tag, let
/// concurrent adopters' tags land ([`crate::cloud::CloudConfig::adoption_settle`]), read the
/// tags back. A run that reads back another run's values lost (the later tag wins the key)
/// and backs off with E4020 before creating anything; it removes nothing, since the tags
/// are the winner's now. Window left: a rival that looked before our tag landed and tags
/// more than the settle period after us; its own read-back then wins and ours has passed,
/// so both go on (the next run of the earlier one is refused with E4020 at plan time).
async fn confirm_tags(
    client: &CloudClient,
    lb_id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), CloudError> {
    tokio::time::sleep(client.config().adoption_settle).await;
    let lb = read_load_balancer(client, lb_id)
        .await?
        .ok_or_else(|| unresolved(&format!("CLB {lb_id} is not readable after tagging")))?;
    let lost: Vec<String> = tags
        .iter()
        .filter(|(k, v)| lb.tag(k) != Some(v.as_str()))
        .map(|(k, _)| format!("{k}={}", lb.tag(k).unwrap_or("(none)")))
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    Err(CloudError::NotOurs {
        lb_id: lb_id.to_string(),
        code: codes::EXIST_LB_USED,
        message: format!(
            "another run tagged it meanwhile ({}); this Ingress backs off",
            lost.join(", ")
        ),
    })
}

/// The CLB carrying every tag of `spec` (found by our UID tag), once ready: the second proof
/// that the CLB a ClientToken answered is gone, or the CLB a concurrent run made meanwhile.
async fn find_by_our_tags(
    client: &CloudClient,
    spec: &LbSpec,
) -> Result<Option<crate::plan::CloudLb>, CloudError> {
    let Some(uid) = spec.tags.get(TAG_INGRESS_UID) else {
        return Ok(None);
    };
    let found = client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new(format!("tag:{TAG_INGRESS_UID}"), [uid])],
            limit: Some(super::clb::DESCRIBE_PAGE_LIMIT),
            ..Default::default()
        })
        .await?;
    let Some(lb) = found
        .load_balancer_set
        .iter()
        .find(|lb| spec.tags.iter().all(|(k, v)| lb.tag(k) == Some(v.as_str())))
    else {
        return Ok(None);
    };
    let id = lb.load_balancer_id.clone();
    let ready = client
        .wait_load_balancers_ready(std::slice::from_ref(&id))
        .await?;
    match ready.iter().find(|lb| lb.load_balancer_id == id) {
        Some(lb) => cloud_lb(lb).map(Some),
        None => Ok(None),
    }
}

fn backend_fields(b: &Backend) -> (Option<String>, Option<String>) {
    match b {
        Backend::Instance(id) => (Some(id.clone()), None),
        Backend::EniIp(ip) => (None, Some(ip.clone())),
    }
}

fn batch_request(
    res: &Resolver,
    targets: &[BatchTarget],
) -> Result<BatchTargetsRequest, CloudError> {
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let (listener_id, loc) = res.rule(&t.rule)?;
        let (instance_id, eni_ip) = backend_fields(&t.target.backend);
        out.push(ApiBatchTarget {
            listener_id,
            port: Some(i64::from(t.target.port)),
            instance_id,
            eni_ip,
            weight: Some(i64::from(t.weight)),
            location_id: Some(loc),
            tag: None,
        });
    }
    Ok(BatchTargetsRequest {
        load_balancer_id: res.lb()?.to_string(),
        targets: out,
    })
}

/// What [`create_load_balancer`] made, and what it left alone on the way.
struct Created {
    lb: crate::plan::CloudLb,
    writes: u32,
    disowned: Vec<String>,
}

/// CreateLoadBalancer from the spec's own request body (extensiveParameters may carry any
/// API field, so it is sent as JSON, not through the typed request) through
/// [`CloudClient::create_load_balancer`], which waits for the task, then the CLB.
///
/// A token can answer a CLB that is no longer ours to build on: deleted since (proved gone),
/// or stripped of one of our tags by a user who took it out of the cluster. Either way the
/// next token is derived from the old one and that CLB's id, so every run (concurrent or
/// after a kill) that meets the same CLB derives the same token and still makes one CLB;
/// the disowned CLB itself is never written to.
async fn create_load_balancer(
    client: &CloudClient,
    spec: &LbSpec,
    opts: &ApplyOptions,
) -> Result<Created, CloudError> {
    let mut token = spec.client_token.clone();
    let mut writes = 0;
    let mut disowned = Vec::new();
    loop {
        writes += 1;
        let more = writes < MAX_CREATE_GENERATIONS;
        match create_load_balancer_once(client, spec, &token, opts).await {
            Err(CloudError::CreatedLoadBalancerGone { id }) if more => {
                // Unreadable by id for the whole period; the search by our tags is the
                // second proof (and finds the CLB a concurrent run made with the next token).
                if let Some(lb) = find_by_our_tags(client, spec).await? {
                    return Ok(Created {
                        lb,
                        writes,
                        disowned,
                    });
                }
                tracing::warn!(
                    dead = %id,
                    "ClientToken replayed a deleted CLB; creating again with the next token"
                );
                token = super::create_token::next_token(opts, &token, &id).await?;
            }
            Ok(lb) => match carries_our_tags(spec, &lb) {
                Ok(()) => {
                    return Ok(Created {
                        lb,
                        writes,
                        disowned,
                    })
                }
                Err(e) if more => {
                    tracing::warn!(
                        disowned = %lb.id,
                        error = %e,
                        "ClientToken replayed a CLB taken out of the cluster; creating again with the next token"
                    );
                    disowned.push(lb.id.clone());
                    token = super::create_token::next_token(opts, &token, &lb.id).await?;
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// How many CreateLoadBalancer calls one apply may make when tokens keep answering CLBs
/// deleted since or taken out of the cluster (each costs one generation).
const MAX_CREATE_GENERATIONS: u32 = 4;

/// One CreateLoadBalancer with `token`, waiting until the CLB it names is ready.
async fn create_load_balancer_once(
    client: &CloudClient,
    spec: &LbSpec,
    token: &str,
    opts: &ApplyOptions,
) -> Result<crate::plan::CloudLb, CloudError> {
    const ACTION: &str = "CreateLoadBalancer";
    let mut req = spec.create_request();
    if let Value::Object(map) = &mut req {
        map.insert("ClientToken".into(), token.into());
    }
    if let Value::Object(map) = &mut req {
        if !map.contains_key("VpcId") {
            if let Some(vpc) = &opts.vpc_id {
                map.insert("VpcId".into(), vpc.clone().into());
            }
        }
        if spec.lb_type == LbType::Internal && !map.contains_key("VpcId") {
            return Err(CloudError::Config(format!(
                "{ACTION}: an INTERNAL CLB needs a VPC; set CLB_VPC_ID or the \
                 ingress.cloud.tencent.com/cross-vpc-id annotation"
            )));
        }
    }
    let ready = client.create_load_balancer(&req).await?;
    let lb = ready.first().ok_or_else(|| CloudError::Unexpected {
        action: ACTION.into(),
        message: "the created CLB is not readable".into(),
    })?;
    cloud_lb(lb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lb::Protocol;
    use crate::plan::{CloudLb, CloudListener, CloudRule};

    fn rule(loc: &str, domain: &str, url: &str, default_server: bool) -> CloudRule {
        CloudRule {
            location_id: loc.into(),
            domain: domain.into(),
            url: url.into(),
            certificate: None,
            default_server,
            attributes: Default::default(),
            targets: Vec::new(),
            redirect: None,
        }
    }

    fn resolver(rules: Vec<CloudRule>) -> Resolver {
        let cloud = CloudView {
            load_balancer: Some(CloudLb {
                id: "lb-1".into(),
                name: "n".into(),
                lb_type: LbType::Open,
                vips: vec!["1.1.1.1".into()],
                domain: None,
                status: 1,
                tags: BTreeMap::new(),
                listeners: vec![CloudListener {
                    id: "lbl-1".into(),
                    protocol: Protocol::Http,
                    port: 80,
                    name: crate::model::ownership::OUR_LISTENER_NAME.into(),
                    certificate: None,
                    sni: false,
                    keepalive: None,
                    rules,
                }],
                attributes: Default::default(),
            }),
        };
        Resolver::new(&Plan::default(), &cloud)
    }

    #[test]
    fn deleting_the_default_domain_hands_it_to_a_remaining_domain() {
        let res = resolver(vec![
            rule("loc-a", "a.com", "/", true),
            rule("loc-b", "b.com", "/", false),
        ]);
        let http = ListenerKey::HTTP_80;
        assert_eq!(
            res.new_default_domain(http, &["loc-a".into()]),
            Some("b.com".into())
        );
        // Not the default, or nothing left, or the domain stays by another URL: no change.
        assert_eq!(res.new_default_domain(http, &["loc-b".into()]), None);
        assert_eq!(
            res.new_default_domain(http, &["loc-a".into(), "loc-b".into()]),
            None
        );
        let res = resolver(vec![
            rule("loc-a", "a.com", "/", true),
            rule("loc-a2", "a.com", "/x", false),
        ]);
        assert_eq!(res.new_default_domain(http, &["loc-a".into()]), None);
    }

    #[test]
    fn rules_are_resolved_by_location_id_or_by_natural_key() {
        let res = resolver(vec![rule("loc-a", "1.1.1.1", "/", true)]);
        let listener = ListenerRef {
            key: ListenerKey::HTTP_80,
            id: None,
        };
        let by_key = RuleRef {
            listener: listener.clone(),
            key: crate::model::lb::RuleKey {
                domain: Domain::Default,
                url: "/".into(),
            },
            location_id: None,
        };
        assert_eq!(
            res.rule(&by_key).unwrap(),
            ("lbl-1".to_string(), "loc-a".to_string())
        );
        let missing = RuleRef {
            key: crate::model::lb::RuleKey {
                domain: Domain::Name("x.com".into()),
                url: "/".into(),
            },
            ..by_key
        };
        assert!(res.rule(&missing).is_err());
    }
}
