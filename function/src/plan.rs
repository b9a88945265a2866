//! The pure planner: Desired × CloudView → an ordered, batched Plan. No I/O, no clock.
//!
//! Everything is matched by natural key — listener (protocol, port), rule (domain, url),
//! target (instance or ENI IP, port) — never by position. Actions come out in
//! availability-first order (DESIGN §2): create LB → tag → listeners → rules → register
//! → modify → deregister → delete rules → delete listeners.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::model::desired::{DesiredListener, DesiredRule};
use crate::model::lb::{Certificate, Domain, LbType, ListenerKey, Protocol, RuleKey, TargetKey};
use crate::model::lifecycle::LbAttributes;
use crate::model::lifecycle::{self as lifecycle_model, Releasing};
use crate::model::ownership::{self, Adoption, IngressFact};
use crate::model::problem::codes;
use crate::model::service_config::RuleAttributes;
use crate::model::{Desired, LbSource, LbSpec, Problem};

mod assume;
mod attributes;
mod default_server;
pub mod depends;
mod hold;
mod lifecycle;
pub mod readiness;
mod redirects;
mod room;
mod targets;
pub use attributes::auto_config_spec;
pub use lifecycle::plan_skip;
pub use redirects::{CloudRedirect, RedirectPair};

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tke;

/// What the observer read from the cloud for one Ingress: its CLB (found by the UID tag
/// or by existLbId), or `None` when there is none.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CloudView {
    pub load_balancer: Option<CloudLb>,
}

/// One CLB as DescribeLoadBalancers + DescribeListeners + DescribeTargets show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudLb {
    pub id: String,
    pub name: String,
    pub lb_type: LbType,
    /// `LoadBalancerVips`.
    pub vips: Vec<String>,
    /// `LoadBalancerDomain` (domain-name CLBs).
    pub domain: Option<String>,
    /// 0 creating ([`LB_STATUS_CREATING`]), 1 normal.
    pub status: u64,
    pub tags: BTreeMap<String, String>,
    /// Every listener, ours or not (ownership is decided here, by name).
    pub listeners: Vec<CloudListener>,
    /// Deletion protection, pass-to-target, security groups.
    pub attributes: LbAttributes,
}

impl CloudLb {
    /// The listener a plan refers to: by id when it has one, else by natural key (a listener
    /// an earlier action created; call after a fresh read).
    pub fn listener(&self, r: &ListenerRef) -> Option<&CloudListener> {
        self.listeners.iter().find(|l| r.names(l))
    }

    /// The rule a plan refers to: by location id when it has one, else by (domain, url) with
    /// `Domain::Default` resolved through [`default_domain`].
    pub fn rule(&self, r: &RuleRef) -> Option<(&CloudListener, &CloudRule)> {
        let listener = self.listener(&r.listener)?;
        let default = default_domain(self);
        let rule = listener.rules.iter().find(|cr| r.names(cr, default))?;
        Some((listener, rule))
    }
}

/// One listener with its rules (DescribeListeners) and their targets (DescribeTargets).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudListener {
    pub id: String,
    pub protocol: Protocol,
    pub port: u16,
    pub name: String,
    pub certificate: Option<Certificate>,
    pub sni: bool,
    /// `KeepaliveEnable`, when the API shows it.
    pub keepalive: Option<bool>,
    pub rules: Vec<CloudRule>,
}

impl CloudListener {
    pub fn key(&self) -> ListenerKey {
        ListenerKey {
            protocol: self.protocol,
            port: self.port,
        }
    }

    /// The first rule with `key` (its domain already resolved; `Domain::Default` matches none).
    pub fn rule_by_key(&self, key: &RuleKey) -> Option<&CloudRule> {
        let Domain::Name(domain) = &key.domain else {
            return None;
        };
        self.rules
            .iter()
            .find(|r| &r.domain == domain && r.url == key.url)
    }
}

/// One rule (`RuleOutput`) with its targets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudRule {
    pub location_id: String,
    pub domain: String,
    pub url: String,
    /// The rule's (its domain's) certificate on SNI listeners.
    pub certificate: Option<Certificate>,
    pub default_server: bool,
    /// Scheduler, session, forward type and health check (what a TkeServiceConfig sets).
    pub attributes: RuleAttributes,
    pub targets: Vec<CloudTarget>,
    /// Where this rule redirects to (`RewriteTarget`), if it does.
    pub redirect: Option<CloudRedirect>,
}

/// One bound target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloudTarget {
    pub key: TargetKey,
    pub weight: u16,
}

/// A listener an action works on: by id when it exists, by natural key when an earlier
/// action of the same plan creates it (apply resolves the key after a fresh read).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ListenerRef {
    pub key: ListenerKey,
    pub id: Option<String>,
}

/// A rule an action works on, by location id when it exists, else by natural key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleRef {
    pub listener: ListenerRef,
    pub key: RuleKey,
    pub location_id: Option<String>,
}

impl ListenerRef {
    /// Whether `l` is the listener this refers to: by id when it has one, else by key.
    pub fn names(&self, l: &CloudListener) -> bool {
        match &self.id {
            Some(id) => &l.id == id,
            None => l.key() == self.key,
        }
    }
}

impl RuleRef {
    /// Whether `cr` (a rule of the referred listener) is the rule this refers to: by
    /// location id when it has one, else by (domain, url), `Domain::Default` standing for
    /// `default` (the CLB's [`default_domain`]); an unresolved default names no rule.
    pub fn names(&self, cr: &CloudRule, default: Option<&str>) -> bool {
        match &self.location_id {
            Some(id) => &cr.location_id == id,
            None => {
                matches!(resolve_domain(&self.key.domain, default), Domain::Name(d) if d == cr.domain)
                    && cr.url == self.key.url
            }
        }
    }
}

/// A rule to create (`RuleInput`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewRule {
    pub key: RuleKey,
    /// The domain's certificate (SNI listeners only).
    pub certificate: Option<Certificate>,
    /// `DefaultServer=true`: this rule's domain becomes the listener's default domain.
    pub default_server: bool,
}

/// One entry of BatchRegisterTargets / BatchDeregisterTargets / ModifyTargetWeight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchTarget {
    pub rule: RuleRef,
    pub target: TargetKey,
    pub weight: u16,
}

/// `Status` of a CLB that is still being created [SDK].
pub const LB_STATUS_CREATING: u64 = 0;

/// Most targets one BatchRegisterTargets / BatchDeregisterTargets call takes [SDK].
pub const MAX_BATCH_TARGETS: usize = 500;
/// Most targets per ModifyTargetWeight call. ASSUMPTION: the SDK documents no maximum for
/// ModifyTargetWeight; we use RegisterTargets' 20 (tencent-cloud.md §2.3).
pub const MAX_WEIGHT_TARGETS: usize = 20;
/// Most listener ids per DeleteLoadBalancerListeners call [SDK].
pub const MAX_DELETE_LISTENERS: usize = 20;

/// One CLB or Tag API call. The LB is the plan's (`Plan::load_balancer_id`, or the one the
/// plan's CreateLoadBalancer makes).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action")]
pub enum Action {
    /// CreateLoadBalancer with all ownership tags and the ClientToken.
    CreateLoadBalancer { spec: LbSpec },
    /// TagResources on the CLB (existLbId adoption).
    TagResources { tags: BTreeMap<String, String> },
    /// UnTagResources on the CLB (release of an adopted CLB).
    UnTagResources { keys: Vec<String> },
    /// DeleteLoadBalancerListeners (≤ 20 ids), only ever our listeners.
    DeleteListeners { listeners: Vec<ListenerRef> },
    /// CreateListener: one call per protocol, `Ports[]` with parallel `ListenerNames[]`.
    CreateListeners {
        protocol: Protocol,
        ports: Vec<u16>,
        names: Vec<String>,
        certificate: Option<Certificate>,
        sni: bool,
    },
    /// ModifyListener: a new listener certificate and/or SNI on (never off).
    ModifyListener {
        listener: ListenerRef,
        certificate: Option<Certificate>,
        sni_on: bool,
    },
    /// CreateRule: one call per listener, `Rules[]`.
    CreateRules {
        listener: ListenerRef,
        rules: Vec<NewRule>,
    },
    /// ModifyDomainAttributes: the certificate of one domain of an SNI listener.
    ModifyDomainAttributes {
        listener: ListenerRef,
        domain: Domain,
        certificate: Certificate,
    },
    /// ModifyRule: the TkeServiceConfig attributes of one rule that differ.
    ModifyRule {
        rule: RuleRef,
        attributes: RuleAttributes,
    },
    /// ModifyListener `KeepaliveEnable` (TkeServiceConfig `keepaliveEnable`).
    SetKeepalive { listener: ListenerRef, enable: bool },
    /// ModifyDomainAttributes `DefaultServer: true` (TkeServiceConfig `defaultServer`).
    SetDefaultServer {
        listener: ListenerRef,
        domain: Domain,
    },
    /// BatchRegisterTargets (≤ 500, across listeners and rules).
    RegisterTargets { targets: Vec<BatchTarget> },
    /// ModifyTargetWeight on one rule.
    ModifyTargetWeight { targets: Vec<BatchTarget> },
    /// BatchDeregisterTargets (≤ 500).
    DeregisterTargets { targets: Vec<BatchTarget> },
    /// DeleteRule on one listener by location ids.
    DeleteRules {
        listener: ListenerRef,
        location_ids: Vec<String>,
        keys: Vec<RuleKey>,
    },
    /// DeleteLoadBalancer.
    DeleteLoadBalancer { lb_id: String },
    /// ModifyLoadBalancerAttributes: `DeleteProtect` / `LoadBalancerPassToTarget` (omitted
    /// = unchanged).
    ModifyLoadBalancerAttributes {
        delete_protect: Option<bool>,
        pass_to_target: Option<bool>,
    },
    /// SetLoadBalancerSecurityGroups: the full ordered set; empty unbinds all.
    SetSecurityGroups { security_groups: Vec<String> },
    /// ManualRewrite: redirects from rules of one listener to rules of another.
    ManualRewrite { pairs: Vec<RedirectPair> },
    /// DeleteRewrite: those redirects removed (before the rules they join are deleted).
    DeleteRewrite { pairs: Vec<RedirectPair> },
}

/// An ordered list of calls, plus what the planner refused to do.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The CLB the actions work on; `None` when the first action creates it.
    pub load_balancer_id: Option<String>,
    pub actions: Vec<Action>,
    /// Skipped parts (e.g. a listener port held by a foreign listener).
    pub problems: Vec<Problem>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// The domain a CLB uses for Ingress rules without a host: its first VIP, or its
/// `LoadBalancerDomain` when it has no VIP (domain-name CLBs).
/// ASSUMPTION (tencent-cloud.md §1.4: "Host defaults to the CLB VIP"; the domain-name
/// fallback is our inference, §1.7 notes domain-name CLBs hide the VIP). Apply uses the same
/// function to resolve `Domain::Default` once the CLB exists.
pub fn default_domain(lb: &CloudLb) -> Option<&str> {
    front(&lb.vips, lb.domain.as_deref()).map(Front::as_str)
}

/// Where clients reach a CLB: its first VIP, else its domain (a domain-only CLB); empty
/// strings count as absent. The rules' default domain and the Ingress status both come from
/// here, so they can never name different addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front<'a> {
    Ip(&'a str),
    Hostname(&'a str),
}

impl<'a> Front<'a> {
    pub fn as_str(self) -> &'a str {
        match self {
            Front::Ip(a) | Front::Hostname(a) => a,
        }
    }
}

pub fn front<'a>(vips: &'a [String], domain: Option<&'a str>) -> Option<Front<'a>> {
    match vips.iter().map(String::as_str).find(|v| !v.is_empty()) {
        Some(ip) => Some(Front::Ip(ip)),
        None => domain.filter(|d| !d.is_empty()).map(Front::Hostname),
    }
}

/// `Domain::Default` → the CLB's default domain when it is known.
pub fn resolve_domain(domain: &Domain, default: Option<&str>) -> Domain {
    match (domain, default) {
        (Domain::Default, Some(d)) => Domain::Name(d.to_string()),
        _ => domain.clone(),
    }
}

/// Actions sorted into the availability-first phases, concatenated at the end.
#[derive(Default)]
struct Phases {
    head: Vec<Action>,
    /// DeleteRewrite, before any delete (the API refuses to delete a redirected rule).
    delete_rewrites: Vec<Action>,
    /// Our listeners whose port a desired listener of another protocol needs, or that make
    /// room for new ones on a CLB at its listener quota ([`room`]).
    clear_ports: Vec<ListenerRef>,
    new_listeners: Vec<(ListenerKey, Option<Certificate>, bool)>,
    sni_on: Vec<Action>,
    /// Rule deletions that must precede the creations (a listener at its quota).
    make_rule_room: Vec<Action>,
    create_rules: Vec<Action>,
    /// Deregistrations that must precede the registrations (a rule at its quota).
    make_room: Vec<BatchTarget>,
    register: Vec<BatchTarget>,
    /// ManualRewrite, once the rules and their targets are there.
    rewrites: Vec<Action>,
    modify: Vec<Action>,
    weights: BTreeMap<RuleRef, Vec<BatchTarget>>,
    deregister: Vec<BatchTarget>,
    /// The quota's targets per rule: what [`targets::diff`] keeps a rule within.
    targets_per_rule: usize,
    delete_rules: Vec<Action>,
    delete_listeners: Vec<ListenerRef>,
}

impl Phases {
    fn into_actions(self) -> Vec<Action> {
        let mut out = self.head;
        out.extend(self.delete_rewrites);
        for chunk in self.clear_ports.chunks(MAX_DELETE_LISTENERS) {
            out.push(Action::DeleteListeners {
                listeners: chunk.to_vec(),
            });
        }
        // One CreateListener per protocol (and certificate setting): Ports[] in one call.
        let mut groups: BTreeMap<(Protocol, Option<Certificate>, bool), Vec<u16>> = BTreeMap::new();
        for (key, cert, sni) in self.new_listeners {
            groups
                .entry((key.protocol, cert, sni))
                .or_default()
                .push(key.port);
        }
        for ((protocol, certificate, sni), ports) in groups {
            out.push(Action::CreateListeners {
                protocol,
                names: vec![ownership::OUR_LISTENER_NAME.to_string(); ports.len()],
                ports,
                certificate,
                sni,
            });
        }
        out.extend(self.sni_on);
        out.extend(self.make_rule_room);
        out.extend(self.create_rules);
        for chunk in self.make_room.chunks(MAX_BATCH_TARGETS) {
            out.push(Action::DeregisterTargets {
                targets: chunk.to_vec(),
            });
        }
        for group in depends::register_groups(self.register) {
            for chunk in group.chunks(MAX_BATCH_TARGETS) {
                out.push(Action::RegisterTargets {
                    targets: chunk.to_vec(),
                });
            }
        }
        out.extend(self.rewrites);
        out.extend(self.modify);
        for targets in self.weights.into_values() {
            for chunk in targets.chunks(MAX_WEIGHT_TARGETS) {
                out.push(Action::ModifyTargetWeight {
                    targets: chunk.to_vec(),
                });
            }
        }
        for chunk in self.deregister.chunks(MAX_BATCH_TARGETS) {
            out.push(Action::DeregisterTargets {
                targets: chunk.to_vec(),
            });
        }
        out.extend(self.delete_rules);
        for chunk in self.delete_listeners.chunks(MAX_DELETE_LISTENERS) {
            out.push(Action::DeleteListeners {
                listeners: chunk.to_vec(),
            });
        }
        out
    }
}

fn listener_ref(l: &CloudListener) -> ListenerRef {
    ListenerRef {
        key: l.key(),
        id: Some(l.id.clone()),
    }
}

/// The certificate a rule's domain should carry: only on SNI listeners, where a host
/// without its own certificate falls back to the listener's default one.
fn rule_certificate(
    key: ListenerKey,
    listener: &DesiredListener,
    rule: &DesiredRule,
    sni: bool,
) -> Option<Certificate> {
    if key.protocol == Protocol::Https && sni {
        rule.certificate
            .clone()
            .or_else(|| listener.certificate.clone())
    } else {
        None
    }
}

/// The desired rules with `Domain::Default` resolved; if the default domain equals a
/// named host, the first (the host-less rule) wins.
fn resolved_rules<'a>(
    listener: &'a DesiredListener,
    default: Option<&str>,
) -> BTreeMap<RuleKey, &'a DesiredRule> {
    let mut out = BTreeMap::new();
    for (key, rule) in &listener.rules {
        let key = RuleKey {
            domain: resolve_domain(&key.domain, default),
            url: key.url.clone(),
        };
        out.entry(key).or_insert(rule);
    }
    out
}

/// Desired × CloudView → the calls that make the cloud match, in availability-first order.
/// Errors (nothing may be done) when the CLB is not ours: tags of another Ingress/cluster,
/// or an existLbId that fails the adoption checks.
pub fn plan(desired: &Desired, cloud: &CloudView) -> Result<Plan, Problem> {
    let mut ph = Phases {
        targets_per_rule: desired.quota.targets_per_rule,
        ..Phases::default()
    };
    let mut problems = Vec::new();
    let lb = match &desired.load_balancer {
        LbSource::Create(spec) => match &cloud.load_balancer {
            None => {
                ph.head
                    .push(Action::CreateLoadBalancer { spec: spec.clone() });
                None
            }
            Some(lb) => {
                if !ownership::is_ours(&lb.tags, &desired.cluster_id, &desired.ingress_uid) {
                    return Err(Problem::error(
                        codes::TAGS_TAMPERED,
                        format!(
                            "CLB {} does not carry the tags of cluster {} and Ingress {}",
                            lb.id, desired.cluster_id, desired.ingress_uid
                        ),
                    ));
                }
                Some(lb)
            }
        },
        LbSource::Adopt { lb_id } => {
            let found = cloud.load_balancer.as_ref().filter(|lb| &lb.id == lb_id);
            let names: Vec<&str> = found
                .map(|lb| lb.listeners.iter().map(|l| l.name.as_str()).collect())
                .unwrap_or_default();
            let adoption = ownership::check_adoption(
                lb_id,
                found.map(|lb| (&lb.tags, names.as_slice())),
                &desired.cluster_id,
                &desired.ingress_uid,
            )?;
            if adoption == Adoption::Tag {
                ph.head.push(Action::TagResources {
                    tags: ownership::adoption_tags(&desired.cluster_id, &desired.ingress_uid),
                });
            }
            found
        }
    };

    if let Some(lb) = lb.filter(|lb| lb.status == LB_STATUS_CREATING) {
        // Writes on a CLB that is still being created fail; the next run picks it up.
        problems.push(Problem::warning(
            codes::LB_CREATING,
            format!(
                "CLB {} is still being created; nothing else planned yet",
                lb.id
            ),
        ));
        return Ok(Plan {
            load_balancer_id: Some(lb.id.clone()),
            actions: ph.into_actions(),
            problems,
        });
    }
    let default = lb.and_then(default_domain);
    let cloud_listeners: &[CloudListener] = lb.map(|l| l.listeners.as_slice()).unwrap_or(&[]);
    let ours: BTreeMap<ListenerKey, &CloudListener> = cloud_listeners
        .iter()
        .filter(|l| ownership::is_our_listener(&l.name))
        .map(|l| (l.key(), l))
        .collect();
    let foreign_ports: BTreeMap<u16, &CloudListener> = cloud_listeners
        .iter()
        .filter(|l| !ownership::is_our_listener(&l.name))
        .map(|l| (l.port, l))
        .collect();

    let mut handled: BTreeSet<ListenerKey> = BTreeSet::new();
    let mut selected = Vec::new();
    let held = hold::resolved(desired, default);
    let listeners = hold::with_held_listeners(desired, &ours);
    for (key, dl) in listeners.iter() {
        if let Some(f) = foreign_ports.get(&key.port) {
            problems.push(Problem::warning(
                codes::LISTENER_PORT_CONFLICT,
                format!(
                    "port {} is held by listener {} ({} \"{}\") that this Ingress does not own; {} skipped",
                    key.port, f.id, f.protocol, f.name, key
                ),
            ));
            continue;
        }
        let mut rules = resolved_rules(dl, default);
        if lb.is_some() && default.is_none() {
            // An existing CLB without VIP or domain (e.g. IPv6-only): host-less rules have
            // nowhere to go (TKE: E4034, host required).
            rules.retain(|k, _| {
                let keep = k.domain != Domain::Default;
                if !keep {
                    problems.push(
                        Problem::warning(
                            codes::HOST_REQUIRED,
                            format!("CLB has no default domain; rule {k} on {key} skipped"),
                        )
                        .for_rule(k.to_string()),
                    );
                }
                keep
            });
        }
        // A TkeServiceConfig `defaultServer` for this listener is the user's explicit word:
        // it wins over the defaultBackend's domain (else each would undo the other).
        let configured = desired
            .service_config
            .as_ref()
            .and_then(|c| c.listeners.get(key))
            .is_some_and(|s| s.default_server.is_some());
        let default_server = dl
            .default_server
            .as_ref()
            .filter(|_| !configured)
            .map(|d| resolve_domain(d, default));
        if let Some(cl) = ours.get(key) {
            handled.insert(*key);
            let held = held.get(key);
            diff_listener(&mut ph, *key, dl, &rules, cl, default_server.as_ref(), held);
            selected.push(attributes::Selected {
                listener: listener_ref(cl),
                cloud: Some(*cl),
                rules,
            });
            continue;
        }
        for (k, cl) in &ours {
            if k.port == key.port && handled.insert(*k) {
                ph.clear_ports.push(listener_ref(cl));
            }
        }
        new_listener(&mut ph, *key, dl, &rules, default_server.as_ref());
        selected.push(attributes::Selected {
            listener: ListenerRef {
                key: *key,
                id: None,
            },
            cloud: None,
            rules,
        });
    }
    if let Some(config) = &desired.service_config {
        let actions = attributes::plan(config, default, &selected, &mut problems);
        ph.modify.extend(actions);
    }
    for (k, cl) in &ours {
        if !handled.contains(k) {
            ph.delete_listeners.push(listener_ref(cl));
        }
    }
    redirects::plan(&mut ph, &desired.redirects, lb, default, &selected);
    lifecycle::lb_actions(&mut ph, desired, lb);
    room::make_room(&mut ph, cloud_listeners, desired.quota.targets_per_rule);
    room::make_rule_room(&mut ph, cloud_listeners, desired.quota.rules_per_listener);
    room::make_listener_room(
        &mut ph,
        cloud_listeners.len(),
        desired.quota.listeners_per_lb,
    );
    Ok(Plan {
        load_balancer_id: lb.map(|l| l.id.clone()),
        actions: ph.into_actions(),
        problems,
    })
}

fn new_listener(
    ph: &mut Phases,
    key: ListenerKey,
    dl: &DesiredListener,
    rules: &BTreeMap<RuleKey, &DesiredRule>,
    default_server: Option<&Domain>,
) {
    let sni = key.protocol == Protocol::Https && dl.sni;
    let certificate = if key.protocol == Protocol::Https && !sni {
        dl.certificate.clone()
    } else {
        None
    };
    ph.new_listeners.push((key, certificate, sni));
    let listener = ListenerRef { key, id: None };
    add_new_rules(
        ph,
        &listener,
        dl,
        rules.iter().collect(),
        sni,
        default_server.cloned(),
    );
}

fn add_new_rules(
    ph: &mut Phases,
    listener: &ListenerRef,
    dl: &DesiredListener,
    rules: Vec<(&RuleKey, &&DesiredRule)>,
    sni: bool,
    new_default: Option<Domain>,
) {
    if rules.is_empty() {
        return;
    }
    let default = default_server::new_rule_index(&rules, new_default.as_ref());
    let new_rules = rules
        .iter()
        .enumerate()
        .map(|(i, (k, r))| NewRule {
            key: (*k).clone(),
            certificate: rule_certificate(listener.key, dl, r, sni),
            default_server: default == Some(i),
        })
        .collect();
    ph.create_rules.push(Action::CreateRules {
        listener: listener.clone(),
        rules: new_rules,
    });
    for (k, r) in rules {
        let rule = RuleRef {
            listener: listener.clone(),
            key: k.clone(),
            location_id: None,
        };
        targets::diff(ph, &rule, &r.targets, &[]);
    }
}

fn diff_listener(
    ph: &mut Phases,
    key: ListenerKey,
    dl: &DesiredListener,
    rules: &BTreeMap<RuleKey, &DesiredRule>,
    cl: &CloudListener,
    default_server: Option<&Domain>,
    held: Option<&BTreeSet<RuleKey>>,
) {
    let https = key.protocol == Protocol::Https;
    // SNI cannot be switched off again: once on, it stays on and certificates stay per domain.
    let sni = https && (dl.sni || cl.sni);
    let listener = listener_ref(cl);
    if https && dl.sni && !cl.sni {
        ph.sni_on.push(Action::ModifyListener {
            listener: listener.clone(),
            certificate: None,
            sni_on: true,
        });
    } else if https && !sni {
        if let Some(cert) = dl.certificate.as_ref() {
            if cl.certificate.as_ref() != Some(cert) {
                ph.modify.push(Action::ModifyListener {
                    listener: listener.clone(),
                    certificate: Some(cert.clone()),
                    sni_on: false,
                });
            }
        }
    }

    let mut existing: BTreeMap<RuleKey, &CloudRule> = BTreeMap::new();
    for r in &cl.rules {
        existing
            .entry(RuleKey {
                domain: Domain::Name(r.domain.clone()),
                url: r.url.clone(),
            })
            .or_insert(r);
    }

    let mut to_create = Vec::new();
    let mut domain_certs: BTreeMap<Domain, Certificate> = BTreeMap::new();
    for (rk, dr) in rules {
        let Some(cr) = existing.get(rk) else {
            to_create.push((rk, dr));
            continue;
        };
        if let Some(cert) = rule_certificate(key, dl, dr, sni) {
            if cr.certificate.as_ref() != Some(&cert) {
                domain_certs.entry(rk.domain.clone()).or_insert(cert);
            }
        }
        let rule = RuleRef {
            listener: listener.clone(),
            key: rk.clone(),
            location_id: Some(cr.location_id.clone()),
        };
        targets::diff(ph, &rule, &dr.targets, &cr.targets);
    }
    let new_default = default_server::diff(&mut ph.modify, &listener, default_server, cl);
    add_new_rules(ph, &listener, dl, to_create, sni, new_default);
    for (domain, certificate) in domain_certs {
        ph.modify.push(Action::ModifyDomainAttributes {
            listener: listener.clone(),
            domain,
            certificate,
        });
    }

    // Stale rules: not desired, or a duplicate of a desired key (the first one is kept).
    let mut stale_ids = Vec::new();
    let mut stale_keys = Vec::new();
    for r in &cl.rules {
        let rk = RuleKey {
            domain: Domain::Name(r.domain.clone()),
            url: r.url.clone(),
        };
        let kept = (rules.contains_key(&rk)
            && existing.get(&rk).map(|k| &k.location_id) == Some(&r.location_id))
            || held.is_some_and(|h| h.contains(&rk));
        if !kept {
            stale_ids.push(r.location_id.clone());
            stale_keys.push(rk);
        }
    }
    if !stale_ids.is_empty() {
        ph.delete_rules.push(Action::DeleteRules {
            listener,
            location_ids: stale_ids,
            keys: stale_keys,
        });
    }
}

/// The calls that release the CLB of an Ingress that is gone, has another UID or left our
/// class: DeleteLoadBalancer when we created it, else delete our listeners and untag.
/// Refuses (no actions) without positive proof or when the tags do not match.
pub fn plan_release(
    cloud: &CloudView,
    fact: IngressFact,
    cluster_id: &str,
    ingress_uid: &str,
) -> Result<Plan, Problem> {
    let Some(lb) = &cloud.load_balancer else {
        return Ok(Plan::default());
    };
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    match lifecycle_model::release_action(fact, &lb.tags, &lb.attributes, cluster_id, ingress_uid)?
    {
        Releasing::Delete => actions.push(Action::DeleteLoadBalancer {
            lb_id: lb.id.clone(),
        }),
        Releasing::Untag { untag, kept } => {
            problems.push(kept);
            actions.push(Action::UnTagResources { keys: untag });
        }
        Releasing::CleanUp { untag, kept } => {
            problems.extend(kept);
            actions.extend(redirects::release(lb));
            let ours: Vec<ListenerRef> = lb
                .listeners
                .iter()
                .filter(|l| ownership::is_our_listener(&l.name))
                .map(listener_ref)
                .collect();
            for chunk in ours.chunks(MAX_DELETE_LISTENERS) {
                actions.push(Action::DeleteListeners {
                    listeners: chunk.to_vec(),
                });
            }
            // Untag last: if we are stopped before, the tags still lead the next run here.
            actions.push(Action::UnTagResources { keys: untag });
        }
    }
    Ok(Plan {
        load_balancer_id: Some(lb.id.clone()),
        actions,
        problems,
    })
}

impl fmt::Display for ListenerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}({})", self.key, id),
            None => write!(f, "{}(new)", self.key),
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.listener, self.key)?;
        if let Some(loc) = &self.location_id {
            write!(f, "({loc})")?;
        }
        Ok(())
    }
}

fn write_targets(f: &mut fmt::Formatter<'_>, targets: &[BatchTarget]) -> fmt::Result {
    for t in targets {
        write!(f, "\n      {} -> {} weight={}", t.rule, t.target, t.weight)?;
    }
    Ok(())
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateLoadBalancer { spec } => {
                write!(
                    f,
                    "CreateLoadBalancer type={} name={}",
                    spec.lb_type.as_api(),
                    spec.name
                )?;
                if let Some(v) = &spec.vpc_id {
                    write!(f, " vpc={v}")?;
                }
                if let Some(s) = &spec.subnet_id {
                    write!(f, " subnet={s}")?;
                }
                if let Some(c) = &spec.internet_charge_type {
                    write!(f, " charge={c}")?;
                }
                if let Some(b) = spec.internet_max_bandwidth_out {
                    write!(f, " bandwidth={b}")?;
                }
                if !spec.extensive_parameters.is_empty() {
                    let ext = serde_json::Value::Object(spec.extensive_parameters.clone());
                    write!(f, " extensive={ext}")?;
                }
                let tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(
                    f,
                    " tags=[{}] client_token={}",
                    tags.join(","),
                    spec.client_token
                )
            }
            Action::TagResources { tags } => {
                let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "TagResources {}", tags.join(" "))
            }
            Action::UnTagResources { keys } => write!(f, "UnTagResources {}", keys.join(" ")),
            Action::DeleteListeners { listeners } => {
                let l: Vec<String> = listeners.iter().map(ToString::to_string).collect();
                write!(f, "DeleteListeners {}", l.join(" "))
            }
            Action::CreateListeners {
                protocol,
                ports,
                names,
                certificate,
                sni,
            } => {
                write!(f, "CreateListeners {protocol} ports={ports:?}")?;
                if let Some(n) = names.first() {
                    write!(f, " name={n}")?;
                }
                if let Some(c) = certificate {
                    write!(f, " cert=[{c}]")?;
                }
                if *sni {
                    write!(f, " sni=on")?;
                }
                Ok(())
            }
            Action::ModifyListener {
                listener,
                certificate,
                sni_on,
            } => {
                write!(f, "ModifyListener {listener}")?;
                if let Some(c) = certificate {
                    write!(f, " cert=[{c}]")?;
                }
                if *sni_on {
                    write!(f, " sni=on")?;
                }
                Ok(())
            }
            Action::CreateRules { listener, rules } => {
                write!(f, "CreateRules {listener}")?;
                for r in rules {
                    write!(f, "\n      {}", r.key)?;
                    if let Some(c) = &r.certificate {
                        write!(f, " cert=[{c}]")?;
                    }
                    if r.default_server {
                        write!(f, " default-server")?;
                    }
                }
                Ok(())
            }
            Action::ModifyDomainAttributes {
                listener,
                domain,
                certificate,
            } => write!(
                f,
                "ModifyDomainAttributes {listener} {domain} cert=[{certificate}]"
            ),
            Action::ModifyRule { rule, attributes } => {
                write!(f, "ModifyRule {rule} {attributes}")
            }
            Action::SetKeepalive { listener, enable } => {
                write!(
                    f,
                    "ModifyListener {listener} keepalive={}",
                    u8::from(*enable)
                )
            }
            Action::SetDefaultServer { listener, domain } => {
                write!(
                    f,
                    "ModifyDomainAttributes {listener} {domain} default_server=on"
                )
            }
            Action::RegisterTargets { targets } => {
                write!(f, "RegisterTargets ({})", targets.len())?;
                write_targets(f, targets)
            }
            Action::ModifyTargetWeight { targets } => {
                write!(f, "ModifyTargetWeight ({})", targets.len())?;
                write_targets(f, targets)
            }
            Action::DeregisterTargets { targets } => {
                write!(f, "DeregisterTargets ({})", targets.len())?;
                write_targets(f, targets)
            }
            Action::DeleteRules {
                listener,
                location_ids,
                keys,
            } => {
                write!(f, "DeleteRules {listener}")?;
                for (id, k) in location_ids.iter().zip(keys) {
                    write!(f, "\n      {k}({id})")?;
                }
                Ok(())
            }
            Action::DeleteLoadBalancer { lb_id } => write!(f, "DeleteLoadBalancer {lb_id}"),
            Action::ModifyLoadBalancerAttributes {
                delete_protect,
                pass_to_target,
            } => {
                write!(f, "ModifyLoadBalancerAttributes")?;
                if let Some(v) = delete_protect {
                    write!(f, " DeleteProtect={v}")?;
                }
                if let Some(v) = pass_to_target {
                    write!(f, " LoadBalancerPassToTarget={v}")?;
                }
                Ok(())
            }
            Action::SetSecurityGroups { security_groups } => {
                write!(
                    f,
                    "SetLoadBalancerSecurityGroups [{}]",
                    security_groups.join(",")
                )
            }
            Action::ManualRewrite { pairs } => {
                write!(f, "ManualRewrite ({})", pairs.len())?;
                redirects::write_pairs(f, pairs)
            }
            Action::DeleteRewrite { pairs } => {
                write!(f, "DeleteRewrite ({})", pairs.len())?;
                redirects::write_pairs(f, pairs)
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lb = self.load_balancer_id.as_deref().unwrap_or("(new CLB)");
        if self.actions.is_empty() {
            writeln!(f, "CLB {lb}: nothing would change")?;
        } else {
            writeln!(f, "CLB {lb}: {} call(s)", self.actions.len())?;
            for (i, a) in self.actions.iter().enumerate() {
                writeln!(f, "  {:>2}. {a}", i + 1)?;
            }
        }
        for p in &self.problems {
            writeln!(f, "  ! {p}")?;
        }
        Ok(())
    }
}
