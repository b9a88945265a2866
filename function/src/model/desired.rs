//! Ingress → the CLB it should have: `desire(view, cluster_id)`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::lb::{Certificate, LbType, ListenerKey, RuleKey, TargetKey};
use super::problem::Problem;

/// What to do with one Ingress.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Ours: keep this CLB in step.
    Manage(Box<Desired>),
    /// Not of our class (any more): release whatever CLB carries its UID.
    Release,
    /// Ours, but refused as a whole (e.g. bad extensiveParameters): change nothing.
    Invalid(Vec<Problem>),
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
    /// Per-rule warnings: each skipped rule, backend or certificate.
    pub problems: Vec<Problem>,
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
}

/// One domain+URL rule and its targets (target → weight).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DesiredRule {
    /// The certificate of this rule's domain, on SNI listeners.
    pub certificate: Option<Certificate>,
    pub targets: BTreeMap<TargetKey, u16>,
}
