//! Ingress → the CLB it should have: `desire(view, cluster_id)`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::IngressBackend;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::annotations::{self, Annotations};
use super::backends::service_targets;
use super::class::{self, ClassVerdict};
use super::graceful::{Graceful, TargetWeight};
use super::lb::{Certificate, Domain, LbType, ListenerKey, Protocol, RuleKey, TargetKey};
use super::lifecycle::{self, Lifecycle};
use super::ownership;
use super::paths::{clb_domain, clb_urls};
use super::problem::{codes, Problem, Severity};
use super::redirects::{self, DesiredRedirects};
use super::service_config::{self, ServiceConfig};
use super::tls::{self, TlsCerts};
use super::view::ClusterView;

/// What to do with one Ingress.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Ours: keep this CLB in step.
    Manage(Box<Desired>),
    /// Not of our class (any more): release whatever CLB carries its UID.
    Release,
    /// Refused or held as a whole (e.g. bad extensiveParameters, or an IngressClass that
    /// does not exist): change nothing.
    Invalid(Vec<Problem>),
    /// Ours, in `mode: skip`: no write for this Ingress beyond marking its CLB (if it has
    /// one) so that a release keeps it ([`super::lifecycle::TAG_SKIP`]).
    Skip {
        ingress_uid: String,
        exist_lb_id: Option<String>,
    },
}

/// The CLB one Ingress should have, keyed by natural keys only.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub cluster_id: String,
    pub ingress_uid: String,
    /// `namespace/name`, for messages and CLB naming.
    pub ingress: String,
    pub load_balancer: LbSource,
    pub listeners: BTreeMap<ListenerKey, DesiredListener>,
    /// Lifecycle and safety annotations: CLB attributes and lifecycle tags.
    pub lifecycle: Lifecycle,
    /// Per-rule warnings: each skipped rule, backend or certificate.
    pub problems: Vec<Problem>,
    /// Listener and rule attributes from the named TkeServiceConfig.
    pub service_config: Option<ServiceConfig>,
    /// The quota `listeners` were fitted to (the plan keeps target swaps within it).
    pub quota: super::limits::Quota,
    /// Redirects between its rules (auto-rewrite, rewrite entries).
    pub redirects: DesiredRedirects,
    /// Rules the Ingress still names whose Service or TLS Secret is missing: the CLB keeps
    /// what it has for them (rule, targets, certificate); only a change of the Ingress itself
    /// removes a rule (issue 10 §1).
    pub held: BTreeMap<ListenerKey, BTreeSet<RuleKey>>,
}

/// Where the CLB comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LbSource {
    /// Create one (found again later by its UID tag).
    Create(LbSpec),
    /// Adopt `kubernetes.io/ingress.existLbId`.
    Adopt { lb_id: String },
}

/// Everything CreateLoadBalancer needs. Creation-only: later changes of these
/// annotations do not modify an existing CLB (as in TKE).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LbSpec {
    pub lb_type: LbType,
    pub name: String,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub internet_charge_type: Option<String>,
    pub internet_max_bandwidth_out: Option<u32>,
    /// `kubernetes.io/ingress.extensiveParameters`, merged into the request.
    pub extensive_parameters: Map<String, Value>,
    /// All three ownership tags, sent in the create call itself.
    pub tags: BTreeMap<String, String>,
    /// Derived from (cluster, Ingress UID) so a retried or concurrent create makes one CLB.
    pub client_token: String,
}

/// Request fields extensiveParameters may not override: ownership and idempotency.
const PROTECTED_CREATE_FIELDS: [&str; 3] = ["Tags", "ClientToken", "Forward"];

impl LbSpec {
    /// The CreateLoadBalancer request body (without the common `Region`): our fields, then
    /// extensiveParameters merged over them (as TKE does), except that ownership tags,
    /// ClientToken and `Forward=1` (application CLB) always stay ours; extra user tags are
    /// kept alongside ours.
    pub fn create_request(&self) -> Value {
        let mut req = Map::new();
        req.insert("LoadBalancerType".into(), self.lb_type.as_api().into());
        req.insert("Forward".into(), 1.into());
        req.insert("LoadBalancerName".into(), self.name.clone().into());
        if let Some(vpc) = &self.vpc_id {
            req.insert("VpcId".into(), vpc.clone().into());
        }
        if let Some(subnet) = &self.subnet_id {
            req.insert("SubnetId".into(), subnet.clone().into());
        }
        let mut internet = Map::new();
        if let Some(ct) = &self.internet_charge_type {
            internet.insert("InternetChargeType".into(), ct.clone().into());
        }
        if let Some(bw) = self.internet_max_bandwidth_out {
            internet.insert("InternetMaxBandwidthOut".into(), bw.into());
        }
        if !internet.is_empty() {
            req.insert("InternetAccessible".into(), Value::Object(internet));
        }
        for (k, v) in &self.extensive_parameters {
            if !PROTECTED_CREATE_FIELDS.contains(&k.as_str()) {
                req.insert(k.clone(), v.clone());
            }
        }
        let mut tags: Vec<Value> = self
            .tags
            .iter()
            .map(|(k, v)| serde_json::json!({"TagKey": k, "TagValue": v}))
            .collect();
        if let Some(Value::Array(extra)) = self.extensive_parameters.get("Tags") {
            for t in extra {
                let key = t.get("TagKey").and_then(Value::as_str);
                if key.is_some_and(|k| !self.tags.contains_key(k)) {
                    tags.push(t.clone());
                }
            }
        }
        req.insert("Tags".into(), Value::Array(tags));
        req.insert("ClientToken".into(), self.client_token.clone().into());
        Value::Object(req)
    }
}

/// One listener we want.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DesiredListener {
    /// Listener-level certificate (HTTPS without SNI: the default certificate).
    pub certificate: Option<Certificate>,
    /// SNI on: certificates per domain (on the rules). Never switched off again.
    pub sni: bool,
    pub rules: BTreeMap<RuleKey, DesiredRule>,
    /// The domain that must be the listener's default server (requests for hosts no rule
    /// names go there): the default domain when the Ingress has a `spec.defaultBackend`.
    pub default_server: Option<Domain>,
}

/// One domain+URL rule and its targets (target → what its weight should be).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DesiredRule {
    /// The certificate of this rule's domain, on SNI listeners.
    pub certificate: Option<Certificate>,
    pub targets: BTreeMap<TargetKey, TargetWeight>,
}

/// Longest `LoadBalancerName` [SDK: 1-80 characters].
pub const MAX_LB_NAME_LEN: usize = 80;

/// Name of a CLB we create. ASSUMPTION: the name TKE gives its CLBs is undocumented
/// (tencent-cloud.md §7); we use `<cluster>_<namespace>_<name>`, cut to 80 characters.
/// Names carry no meaning: ownership is the tags.
pub fn lb_name(cluster_id: &str, namespace: &str, name: &str) -> String {
    format!("{cluster_id}_{namespace}_{name}")
        .chars()
        .take(MAX_LB_NAME_LEN)
        .collect()
}

/// The CreateLoadBalancer `ClientToken`: hex SHA-256 of (cluster, Ingress UID), 64 ASCII
/// characters (the API's limit), the same for every retry and every concurrent run.
pub fn client_token(cluster_id: &str, ingress_uid: &str) -> String {
    let digest = Sha256::digest(format!("clb-ingress/{cluster_id}/{ingress_uid}").as_bytes());
    hex::encode(digest)
}

/// The token to create with when `token` answered `dead_lb`, a CLB deleted since: every
/// run that finds the same dead CLB derives the same next token, so concurrent runs still
/// make one CLB. Stays 64 hex characters.
pub fn next_client_token(token: &str, dead_lb: &str) -> String {
    let digest = Sha256::digest(format!("{token}/after/{dead_lb}").as_bytes());
    hex::encode(digest)
}

fn lb_spec(ann: &Annotations, cluster_id: &str, uid: &str, ns: &str, name: &str) -> LbSpec {
    LbSpec {
        lb_type: ann.lb_type(),
        name: lb_name(cluster_id, ns, name),
        vpc_id: ann.vpc_id.clone(),
        subnet_id: ann.subnet_id.clone(),
        internet_charge_type: ann.internet_charge_type.clone(),
        internet_max_bandwidth_out: ann.internet_max_bandwidth_out,
        extensive_parameters: ann.extensive_parameters.clone(),
        tags: ownership::tags_for_new_lb(cluster_id, uid),
        client_token: client_token(cluster_id, uid),
    }
}

/// The listeners one Ingress rule (host, path, backend) goes to.
///
/// ASSUMPTION (tencent-cloud.md §1.4 and §7, unverified): without `spec.tls` every rule is on
/// HTTP:80; with it and without `rule-mix`, every rule is on HTTPS:443 and there is no
/// HTTP:80. With `rule-mix: "true"` (and TLS) a rule goes to HTTP:80 when an `http-rules`
/// entry names it, to HTTPS:443 when an `https-rules` entry does, to both when both do, and
/// to HTTPS:443 when neither does [DOC 45693]. Without TLS, rule-mix has no effect.
/// `rule-mix-both: "true"` (with TLS) puts every rule on both (tke-annotations.md §3, U).
pub fn rule_listeners(
    tls_enabled: bool,
    ann: &Annotations,
    host: Option<&str>,
    path: Option<&str>,
    backend: &IngressBackend,
) -> Vec<ListenerKey> {
    if !tls_enabled {
        return vec![ListenerKey::HTTP_80];
    }
    if ann.redirects.rule_mix_both {
        return vec![ListenerKey::HTTP_80, ListenerKey::HTTPS_443];
    }
    if !ann.rule_mix {
        return vec![ListenerKey::HTTPS_443];
    }
    let (service, port) = match &backend.service {
        Some(s) => {
            let port = s.port.as_ref().map(|p| match (&p.number, &p.name) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => String::new(),
            });
            (s.name.as_str(), port.unwrap_or_default())
        }
        None => ("", String::new()),
    };
    let named = |entries: &[annotations::MixEntry]| {
        entries
            .iter()
            .any(|e| e.matches(host, path, service, &port))
    };
    let in_http = named(&ann.http_rules);
    let in_https = named(&ann.https_rules);
    let mut out = Vec::new();
    if in_http {
        out.push(ListenerKey::HTTP_80);
    }
    if in_https || !in_http {
        out.push(ListenerKey::HTTPS_443);
    }
    out
}

/// Where `spec.defaultBackend` goes. ASSUMPTION (tke-annotations.md §5: TKE's mapping is
/// undocumented): the catch-all rule `/` of the default domain (the VIP), unless a host-less
/// rule for `/` already exists, and that domain is made the listener's DefaultServer, so a
/// request whose Host no rule names reaches it (Kubernetes: unmatched requests go to the
/// default backend; host-less rules match every host, as on the default domain).
pub fn default_backend_rule() -> RuleKey {
    RuleKey {
        domain: Domain::Default,
        url: "/".to_string(),
    }
}

struct RuleBuilder<'a> {
    view: &'a ClusterView,
    tls: &'a TlsCerts,
    direct: bool,
    graceful: Graceful,
    rules: BTreeMap<ListenerKey, BTreeMap<RuleKey, DesiredRule>>,
    held: BTreeMap<ListenerKey, BTreeSet<RuleKey>>,
    problems: Vec<Problem>,
}

impl RuleBuilder<'_> {
    fn add(
        &mut self,
        listener: ListenerKey,
        key: RuleKey,
        backend: &IngressBackend,
        label: &str,
        warn_duplicate: bool,
    ) {
        let rules = self.rules.entry(listener).or_default();
        if rules.contains_key(&key) {
            if warn_duplicate {
                self.problems.push(
                    Problem::warning(
                        codes::DUPLICATE_RULE,
                        format!(
                            "CLB rule {key} on {listener} is already defined by an earlier path; skipped"
                        ),
                    )
                    .for_rule(label),
                );
            }
            return;
        }
        if listener.protocol == Protocol::Https && self.tls.held(&key.domain) {
            self.held.entry(listener).or_default().insert(key);
            return;
        }
        let certificate = if listener.protocol == Protocol::Https {
            match self.tls.for_domain(&key.domain) {
                Some(c) => Some(c.clone()),
                None => {
                    self.problems.push(
                        Problem::warning(
                            codes::CERT_NOT_FOUND_FOR_HOST,
                            format!("no certificate for {}; rule skipped", key.domain),
                        )
                        .for_rule(label),
                    );
                    return;
                }
            }
        } else {
            None
        };
        let Some(service) = backend.service.as_ref() else {
            self.problems.push(
                Problem::warning(
                    codes::UNSUPPORTED_BACKEND,
                    "only Service backends are supported; rule skipped",
                )
                .for_rule(label),
            );
            return;
        };
        match service_targets(self.view, service, self.direct, self.graceful) {
            Ok(targets) => {
                if !targets.values().any(|w| w.serves()) {
                    self.problems.push(
                        Problem::warning(
                            codes::NO_TARGETS,
                            format!("Service {} has no ready targets", service.name),
                        )
                        .for_rule(label),
                    );
                }
                rules.insert(
                    key,
                    DesiredRule {
                        certificate,
                        targets,
                    },
                );
            }
            Err(p) => {
                if p.code == codes::SERVICE_NOT_FOUND {
                    self.held.entry(listener).or_default().insert(key);
                }
                self.problems.push(p.for_rule(label));
            }
        }
    }
}

/// Ingress (with everything it references) → what to do with its CLB, within the default
/// quota. Pure.
pub fn desire(view: &ClusterView, cluster_id: &str) -> Decision {
    desire_within(view, cluster_id, &super::limits::Quota::DEFAULT)
}

/// [`desire`] within the account's `quota` (what does not fit is left out and reported).
pub fn desire_within(
    view: &ClusterView,
    cluster_id: &str,
    quota: &super::limits::Quota,
) -> Decision {
    let ing = &view.ingress;
    match class::verdict(ing, view.ingress_class.as_ref()) {
        ClassVerdict::Ours => {}
        ClassVerdict::Theirs => return Decision::Release,
        ClassVerdict::ClassNotFound { class } => {
            return Decision::Invalid(vec![Problem::error(
                codes::INGRESS_CLASS_NOT_FOUND,
                format!(
                    "IngressClass {class:?} (spec.ingressClassName) does not exist; the CLB is \
                     held as it is (no create, no change, no release) until it does"
                ),
            )])
        }
    }
    let Some(uid) = ing.metadata.uid.as_deref().filter(|u| !u.is_empty()) else {
        return Decision::Invalid(vec![Problem::error(
            codes::MISSING_UID,
            "the Ingress has no metadata.uid",
        )]);
    };
    let namespace = ing.metadata.namespace.as_deref().unwrap_or("default");
    let name = ing.metadata.name.as_deref().unwrap_or_default();
    let no_annotations = BTreeMap::new();
    let (ann, ann_problems) =
        annotations::parse(ing.metadata.annotations.as_ref().unwrap_or(&no_annotations));
    let (mut errors, mut problems): (Vec<Problem>, Vec<Problem>) = ann_problems
        .into_iter()
        .partition(|p| p.severity == Severity::Error);
    if ann.lifecycle.skip {
        // Hands off wins over everything else the annotations say, even malformed parts.
        return Decision::Skip {
            ingress_uid: uid.to_string(),
            exist_lb_id: ann.exist_lb_id.clone(),
        };
    }
    if ann.certificates.is_some()
        && ing
            .spec
            .as_ref()
            .and_then(|s| s.tls.as_ref())
            .is_some_and(|t| !t.is_empty())
    {
        errors.push(super::cert_annotation::combined_with_spec_tls());
    }
    if !errors.is_empty() {
        return Decision::Invalid(errors);
    }
    let load_balancer = match &ann.exist_lb_id {
        Some(id) => LbSource::Adopt { lb_id: id.clone() },
        None => {
            let mut spec = lb_spec(&ann, cluster_id, uid, namespace, name);
            spec.tags.extend(lifecycle::create_tags(&ann.lifecycle));
            if ann.cross_region.is_some() {
                // Sent with the create like extensiveParameters; a value the user put there
                // wins.
                for (k, v) in super::cross_region::CREATE_FIELDS {
                    spec.extensive_parameters.entry(k).or_insert(v.into());
                }
            }
            LbSource::Create(spec)
        }
    };

    let tls = tls::certificates(view, ann.certificates.as_deref(), &mut problems);
    let (service_config, config_problems) = service_config::from_view(view);
    problems.extend(config_problems);
    let mut b = RuleBuilder {
        view,
        tls: &tls,
        direct: ann.direct_access,
        graceful: ann.graceful,
        rules: BTreeMap::new(),
        held: BTreeMap::new(),
        problems,
    };
    let spec = ing.spec.as_ref();
    for rule in spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]) {
        let host = rule.host.as_deref().filter(|h| !h.is_empty());
        let host_label = host.unwrap_or("*");
        let domain = match clb_domain(host) {
            Ok(d) => d,
            Err(p) => {
                b.problems.push(p.for_rule(host_label));
                continue;
            }
        };
        let paths = rule
            .http
            .as_ref()
            .map(|h| h.paths.as_slice())
            .unwrap_or(&[]);
        if paths.is_empty() {
            b.problems.push(
                Problem::warning(codes::EMPTY_HTTP_RULE, "rule has no http paths")
                    .for_rule(host_label),
            );
            continue;
        }
        for path in paths {
            let label = format!("{host_label}{}", path.path.as_deref().unwrap_or("/"));
            let urls = match clb_urls(path.path.as_deref(), &path.path_type) {
                Ok(urls) => urls,
                Err(p) => {
                    b.problems.push(p.for_rule(label));
                    continue;
                }
            };
            let placed =
                rule_listeners(tls.enabled, &ann, host, path.path.as_deref(), &path.backend);
            for listener in ann.listen_ports.place(placed, &label, &mut b.problems) {
                for url in &urls {
                    let key = RuleKey {
                        domain: domain.clone(),
                        url: url.clone(),
                    };
                    b.add(listener, key, &path.backend, &label, true);
                }
            }
        }
    }
    let mut default_servers = Vec::new();
    if let Some(backend) = spec.and_then(|s| s.default_backend.as_ref()) {
        let placed = rule_listeners(tls.enabled, &ann, None, None, backend);
        for listener in ann
            .listen_ports
            .place(placed, "defaultBackend", &mut b.problems)
        {
            default_servers.push(listener);
            b.add(
                listener,
                default_backend_rule(),
                backend,
                "defaultBackend",
                false,
            );
        }
    }

    let redirects = redirects::desire(
        &ann.redirects,
        &ann.listen_ports,
        &mut b.rules,
        &mut b.problems,
    );
    let mut listeners: BTreeMap<ListenerKey, DesiredListener> = b
        .rules
        .into_iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|(key, rules)| {
            let https = key.protocol == Protocol::Https;
            let listener = DesiredListener {
                certificate: if https { tls.default.clone() } else { None },
                sni: https && tls.sni(),
                default_server: default_servers.contains(&key).then_some(Domain::Default),
                rules,
            };
            (key, listener)
        })
        .collect();
    if ann.cross_region.is_some() && !ann.direct_access {
        super::cross_region::node_ips_for_instances(&mut listeners, &view.nodes, &mut b.problems);
    }
    b.problems.extend(super::limits::fit(&mut listeners, quota));
    // One rule placed on several listeners (or as several CLB rules) fails the same way on
    // each: say it once.
    let mut seen = Vec::new();
    b.problems.retain(|p| {
        let new = !seen.contains(p);
        if new {
            seen.push(p.clone());
        }
        new
    });
    Decision::Manage(Box::new(Desired {
        cluster_id: cluster_id.to_string(),
        ingress_uid: uid.to_string(),
        ingress: format!("{namespace}/{name}"),
        load_balancer,
        listeners,
        lifecycle: ann.lifecycle.clone(),
        problems: b.problems,
        service_config,
        quota: *quota,
        redirects,
        held: b.held,
    }))
}

#[cfg(test)]
pub(crate) mod tests;
