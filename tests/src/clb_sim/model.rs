//! The emulated account: CLBs with their listeners, rules and targets, tasks, and the
//! idempotency records; plus how each thing reads back in the API's own field names.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

/// One CLB. Fields are public so tests can change the world behind the API's back.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub id: String,
    pub name: String,
    /// `OPEN` or `INTERNAL`.
    pub lb_type: String,
    pub vip: String,
    pub domain: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub project_id: i64,
    pub tags: Vec<(String, String)>,
    pub security_groups: Vec<String>,
    pub create_time: String,
    pub pass_to_target: bool,
    pub delete_protect: bool,
    pub internet_charge_type: String,
    pub bandwidth_out: i64,
    pub listeners: Vec<Listener>,
    /// Redirects between its rules (ManualRewrite / AutoRewrite).
    pub rewrites: Vec<super::rewrite::Rewrite>,
    /// CreateLoadBalancer parameters accepted but not modelled (zones, ISP, SLA, ...), kept
    /// verbatim so tests can see what reached the API; a few are echoed in describes.
    pub create_params: Map<String, Value>,
    /// Until then the CLB reads as Status 0 (creating).
    pub creating_until: Option<Instant>,
    /// Until then a task runs on this CLB and other writes are refused.
    pub busy_until: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    pub ssl_mode: String,
    pub cert_id: String,
    pub cert_ca_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub id: String,
    pub protocol: String,
    pub port: i64,
    pub name: String,
    pub certificate: Option<Certificate>,
    pub sni: bool,
    /// Layer-4 listeners only; layer-7 health checks live on rules.
    pub health_check: Option<Map<String, Value>>,
    pub scheduler: String,
    pub session_expire: i64,
    pub keepalive: i64,
    pub rules: Vec<Rule>,
    /// Targets bound to a layer-4 listener directly.
    pub targets: Vec<Target>,
    pub create_time: String,
    /// Parameters accepted but not modelled (connection limits, rescheduling, ...), kept
    /// verbatim and shown in `/_sim/state`.
    pub extra_params: Map<String, Value>,
}

impl Listener {
    pub fn is_l7(&self) -> bool {
        self.protocol == "HTTP" || self.protocol == "HTTPS"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    /// Usually one; several for a multi-domain rule. The first is `Domain`.
    pub domains: Vec<String>,
    pub url: String,
    pub health_check: Map<String, Value>,
    pub scheduler: String,
    pub session_expire: i64,
    pub forward_type: String,
    pub default_server: bool,
    pub http2: bool,
    /// The SNI certificate of this rule's domain.
    pub certificate: Option<Certificate>,
    pub targets: Vec<Target>,
    pub create_time: String,
    /// Creation order, which decides the promoted default domain.
    pub seq: u64,
}

impl Rule {
    pub fn domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }
    pub fn has_domain(&self, d: &str) -> bool {
        self.domains.iter().any(|x| x == d)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub instance_id: Option<String>,
    pub eni_ip: Option<String>,
    pub port: i64,
    pub weight: i64,
    pub registered_time: String,
}

impl Target {
    /// The natural key: (instance or ENI IP, port).
    pub fn key(&self) -> (String, i64) {
        (
            self.instance_id
                .clone()
                .or_else(|| self.eni_ip.clone())
                .unwrap_or_default(),
            self.port,
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub done_at: Instant,
    pub lb_ids: Vec<String>,
    /// Set when an injected fault made the task fail; its change was undone.
    pub failed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CreateRecord {
    pub lb_ids: Vec<String>,
    pub deal_name: String,
}

/// Quotas the emulator enforces; defaults from the reference's "use limits" (tencent-cloud-more §1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub clbs_per_type: usize,
    pub listeners_per_clb: usize,
    pub rules_per_listener: usize,
    pub targets_per_rule: usize,
    pub tags_per_resource: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            clbs_per_type: 100,
            listeners_per_clb: 50,
            rules_per_listener: 50,
            targets_per_rule: 100,
            tags_per_resource: 50,
        }
    }
}

/// Everything the emulator remembers.
#[derive(Debug)]
pub struct SimState {
    pub load_balancers: Vec<LoadBalancer>,
    pub limits: Limits,
    pub(crate) tasks: HashMap<String, Task>,
    pub(crate) deals: HashMap<String, String>,
    pub(crate) client_tokens: HashMap<String, CreateRecord>,
    pub(crate) rng: StdRng,
    pub(crate) seq: u64,
    /// SSL certificates uploaded through UploadCertificate (no private keys).
    pub certificates: Vec<super::ssl::SslCert>,
}

const ID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

impl SimState {
    pub fn new(seed: u64) -> Self {
        SimState {
            load_balancers: Vec::new(),
            limits: Limits::default(),
            tasks: HashMap::new(),
            deals: HashMap::new(),
            client_tokens: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            certificates: Vec::new(),
        }
    }

    /// A fresh id such as `lb-1a2b3c4d`.
    pub fn new_id(&mut self, prefix: &str) -> String {
        let tail: String = (0..8)
            .map(|_| ID_ALPHABET[self.rng.random_range(0..ID_ALPHABET.len())] as char)
            .collect();
        format!("{prefix}-{tail}")
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A RequestId in the API's UUID shape.
    pub fn request_id(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn lb(&self, id: &str) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|l| l.id == id)
    }

    pub fn lb_mut(&mut self, id: &str) -> Option<&mut LoadBalancer> {
        self.load_balancers.iter_mut().find(|l| l.id == id)
    }

    /// Records a task on `lb_ids` lasting `dur`; its id is the request's RequestId.
    pub(crate) fn start_task(
        &mut self,
        task_id: &str,
        lb_ids: &[String],
        now: Instant,
        dur: Duration,
    ) {
        let done_at = now + dur;
        for id in lb_ids {
            if let Some(lb) = self.lb_mut(id) {
                lb.busy_until = Some(done_at);
            }
        }
        self.tasks.insert(
            task_id.to_string(),
            Task {
                done_at,
                lb_ids: lb_ids.to_vec(),
                failed: false,
            },
        );
    }
}

/// Wall-clock time as the API writes it: Beijing time, `YYYY-MM-DD HH:mm:ss`.
pub fn api_time_now() -> String {
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
    jiff::Timestamp::now()
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
            .collect(),
    )
}

pub fn cert_json(c: &Option<Certificate>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "SSLMode": c.ssl_mode,
            "SSLVerifyClient": null,
            "CertId": c.cert_id,
            "CertCaId": c.cert_ca_id,
            "ExtCertIds": null,
        }),
    }
}

/// `LoadBalancer` as DescribeLoadBalancers returns it.
pub fn lb_json(lb: &LoadBalancer, now: Instant) -> Value {
    let creating = lb.creating_until.is_some_and(|t| t > now);
    let targets: usize = lb
        .listeners
        .iter()
        .map(|l| l.targets.len() + l.rules.iter().map(|r| r.targets.len()).sum::<usize>())
        .sum();
    let mut flags = Vec::new();
    if lb.delete_protect {
        flags.push("DeleteProtect");
    }
    json!({
        "LoadBalancerId": lb.id,
        "LoadBalancerName": lb.name,
        "LoadBalancerType": lb.lb_type,
        "Forward": 1,
        "Domain": lb.domain,
        "LoadBalancerDomain": lb.domain,
        "LoadBalancerVips": [lb.vip],
        "Status": if creating { 0 } else { 1 },
        "CreateTime": lb.create_time,
        "StatusTime": lb.create_time,
        "ProjectId": lb.project_id,
        "VpcId": lb.vpc_id,
        "SubnetId": lb.subnet_id,
        "OpenBgp": 0,
        "Snat": false,
        "Isolation": 0,
        "Tags": tags_json(&lb.tags),
        "SecureGroups": lb.security_groups,
        "AddressIPVersion": "ipv4",
        "ChargeType": "POSTPAID_BY_HOUR",
        "NetworkAttributes": {
            "InternetChargeType": lb.internet_charge_type,
            "InternetMaxBandwidthOut": lb.bandwidth_out,
        },
        "LoadBalancerPassToTarget": lb.pass_to_target,
        "SlaType": lb.create_params.get("SlaType").cloned().unwrap_or(json!("shared")),
        "VipIsp": lb.create_params.get("VipIsp").cloned().unwrap_or(json!("BGP")),
        "MasterZone": lb
            .create_params
            .get("MasterZoneId")
            .or_else(|| lb.create_params.get("ZoneId"))
            .map(|z| json!({"Zone": z}))
            .unwrap_or(Value::Null),
        "AttributeFlags": flags,
        "TargetCount": targets,
    })
}

pub fn backend_json(t: &Target) -> Value {
    let (kind, private) = match (&t.instance_id, &t.eni_ip) {
        (_, Some(ip)) => ("ENI", vec![ip.clone()]),
        _ => ("CVM", Vec::new()),
    };
    json!({
        "Type": kind,
        "InstanceId": t.instance_id,
        "Port": t.port,
        "Weight": t.weight,
        "PublicIpAddresses": [],
        "PrivateIpAddresses": private,
        "InstanceName": "",
        "RegisteredTime": t.registered_time,
        "EniId": null,
        "Tag": "",
        "Zone": null,
    })
}

/// `RuleOutput` as DescribeListeners returns it.
pub fn rule_json(listener_id: &str, r: &Rule) -> Value {
    json!({
        "LocationId": r.id,
        "Domain": r.domain(),
        "Domains": r.domains,
        "Url": r.url,
        "SessionExpireTime": r.session_expire,
        "HealthCheck": r.health_check,
        "Certificate": cert_json(&r.certificate),
        "Scheduler": r.scheduler,
        "ListenerId": listener_id,
        "RewriteTarget": {"TargetListenerId": null, "TargetLocationId": null},
        "HttpGzip": true,
        "BeAutoCreated": false,
        "DefaultServer": r.default_server,
        "Http2": r.http2,
        "ForwardType": r.forward_type,
        "CreateTime": r.create_time,
        "TargetType": "NODE",
        "QuicStatus": "QUIC_INACTIVE",
    })
}

/// `Listener` as DescribeListeners returns it.
pub fn listener_json(l: &Listener) -> Value {
    let rules: Vec<Value> = l.rules.iter().map(|r| rule_json(&l.id, r)).collect();
    json!({
        "ListenerId": l.id,
        "Protocol": l.protocol,
        "Port": l.port,
        "Certificate": cert_json(&l.certificate),
        "HealthCheck": l.health_check,
        "Scheduler": if l.is_l7() { Value::Null } else { json!(l.scheduler) },
        "SessionExpireTime": if l.is_l7() { Value::Null } else { json!(l.session_expire) },
        "SniSwitch": i64::from(l.sni),
        "Rules": if l.is_l7() { json!(rules) } else { Value::Null },
        "ListenerName": l.name,
        "CreateTime": l.create_time,
        "EndPort": 0,
        "TargetType": "NODE",
        "KeepaliveEnable": l.keepalive,
        "AttrFlags": [],
    })
}

/// The whole state, for `GET /_sim/state`: each CLB as DescribeLoadBalancers shows it, with
/// `Listeners` (as DescribeListeners) whose rules and layer-4 listeners carry `Targets`.
pub fn state_json(s: &SimState, now: Instant) -> Value {
    let lbs: Vec<Value> = s
        .load_balancers
        .iter()
        .map(|lb| {
            let mut v = lb_json(lb, now);
            let listeners: Vec<Value> = lb
                .listeners
                .iter()
                .map(|l| {
                    let mut lv = listener_json(l);
                    if let Some(rules) = lv.get_mut("Rules").and_then(Value::as_array_mut) {
                        for (rv, r) in rules.iter_mut().zip(&l.rules) {
                            rv["Targets"] =
                                Value::Array(r.targets.iter().map(backend_json).collect());
                        }
                    }
                    lv["Targets"] = Value::Array(l.targets.iter().map(backend_json).collect());
                    lv["ExtraParams"] = Value::Object(l.extra_params.clone());
                    lv
                })
                .collect();
            v["Listeners"] = Value::Array(listeners);
            v["Busy"] = json!(lb.busy_until.is_some_and(|t| t > now));
            v["CreateParams"] = Value::Object(lb.create_params.clone());
            v
        })
        .collect();
    let certs: Vec<Value> = s
        .certificates
        .iter()
        .map(super::ssl::SslCert::json)
        .collect();
    json!({ "LoadBalancers": lbs, "Certificates": certs })
}
