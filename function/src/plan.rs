//! The pure planner: Desired × CloudView → an ordered, batched Plan. No I/O, no clock.
//!
//! Everything is matched by natural key — listener (protocol, port), rule (domain, url),
//! target (instance or ENI IP, port) — never by position. Actions come out in
//! availability-first order (DESIGN §2): create LB → tag → listeners → rules → register
//! → modify → deregister → delete rules → delete listeners.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::lb::{Certificate, Domain, LbType, ListenerKey, Protocol, RuleKey, TargetKey};
use crate::model::{LbSpec, Problem};

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
    /// 0 creating, 1 normal.
    pub status: u64,
    pub tags: BTreeMap<String, String>,
    /// Every listener, ours or not (ownership is decided here, by name).
    pub listeners: Vec<CloudListener>,
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
    pub rules: Vec<CloudRule>,
}

impl CloudListener {
    pub fn key(&self) -> ListenerKey {
        ListenerKey {
            protocol: self.protocol,
            port: self.port,
        }
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
    pub targets: Vec<CloudTarget>,
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

/// A rule to create (`RuleInput`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewRule {
    pub key: RuleKey,
    /// The domain's certificate (SNI listeners only).
    pub certificate: Option<Certificate>,
}

/// One entry of BatchRegisterTargets / BatchDeregisterTargets / ModifyTargetWeight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchTarget {
    pub rule: RuleRef,
    pub target: TargetKey,
    pub weight: u16,
}

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
