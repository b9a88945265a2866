//! CLB actions on load balancers and tasks, and the dispatch of every CLB action.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::limits::*;
use super::listeners;
use super::model::{api_time_now, lb_json, LoadBalancer, SimState};
use super::params::{ApiError, ApiResult, Obj};
use super::targets;

/// What an action needs to know about its request.
pub(crate) struct Ctx {
    pub request_id: String,
    pub now: Instant,
    pub task: Duration,
    pub region: String,
}

/// The answer of a write the real API runs as a task: the CLB is locked by a task named
/// after the request (DescribeTaskStatus takes the RequestId) and the response is empty.
pub(crate) fn task_started(s: &mut SimState, ctx: &Ctx, lb_id: String) -> Outcome {
    s.start_task(
        &ctx.request_id,
        std::slice::from_ref(&lb_id),
        ctx.now,
        ctx.task,
    );
    Outcome::new(json!({}), vec![lb_id])
}

/// The fields of a successful response and the CLBs it touched.
#[derive(Default)]
pub(crate) struct Outcome {
    pub fields: Map<String, Value>,
    pub lb_ids: Vec<String>,
}

impl Outcome {
    pub fn new(fields: Value, lb_ids: Vec<String>) -> Self {
        let fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Outcome { fields, lb_ids }
    }
}

/// Whether an action is one this emulator serves for the CLB service.
pub fn is_clb_action(action: &str) -> bool {
    CLB_ACTIONS.contains(&action)
}

/// Every CLB action this emulator serves.
pub const CLB_ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DescribeLoadBalancers",
    "DeleteLoadBalancer",
    "ModifyLoadBalancerAttributes",
    "SetLoadBalancerSecurityGroups",
    "CreateListener",
    "DescribeListeners",
    "ModifyListener",
    "DeleteListener",
    "DeleteLoadBalancerListeners",
    "CreateRule",
    "ModifyRule",
    "DeleteRule",
    "ModifyDomainAttributes",
    "DescribeTargets",
    "DescribeTargetHealth",
    "RegisterTargets",
    "DeregisterTargets",
    "BatchRegisterTargets",
    "BatchDeregisterTargets",
    "ModifyTargetWeight",
    "BatchModifyTargetWeight",
    "DescribeTaskStatus",
    "DescribeLoadBalancersDetail",
    "AutoRewrite",
    "ManualRewrite",
    "DeleteRewrite",
    "DescribeRewrite",
    "DescribeQuota",
    "DescribeLoadBalancerListByCertId",
];

pub(crate) fn dispatch(s: &mut SimState, ctx: &Ctx, action: &str, p: Obj) -> ApiResult<Outcome> {
    match action {
        "CreateLoadBalancer" => create_load_balancer(s, ctx, p),
        "DescribeLoadBalancers" => describe_load_balancers(s, ctx, p),
        "DeleteLoadBalancer" => delete_load_balancer(s, ctx, p),
        "ModifyLoadBalancerAttributes" => modify_lb_attributes(s, ctx, p),
        "SetLoadBalancerSecurityGroups" => set_security_groups(s, ctx, p),
        "DescribeTaskStatus" => describe_task_status(s, ctx, p),
        "DescribeLoadBalancersDetail" => super::detail::describe_detail(s, ctx, p),
        "DescribeQuota" => super::quota::describe_quota(s, p),
        "DescribeLoadBalancerListByCertId" => super::ssl::list_by_cert_id(s, ctx, p),
        "CreateListener" => listeners::create_listener(s, ctx, p),
        "DescribeListeners" => listeners::describe_listeners(s, p),
        "ModifyListener" => listeners::modify_listener(s, ctx, p),
        "DeleteListener" => listeners::delete_listener(s, ctx, p),
        "DeleteLoadBalancerListeners" => listeners::delete_lb_listeners(s, ctx, p),
        "CreateRule" => listeners::create_rule(s, ctx, p),
        "ModifyRule" => listeners::modify_rule(s, ctx, p),
        "DeleteRule" => listeners::delete_rule(s, ctx, p),
        "ModifyDomainAttributes" => listeners::modify_domain_attributes(s, ctx, p),
        "AutoRewrite" => super::rewrite::auto_rewrite(s, ctx, p),
        "ManualRewrite" => super::rewrite::manual_rewrite(s, ctx, p),
        "DeleteRewrite" => super::rewrite::delete_rewrite(s, ctx, p),
        "DescribeRewrite" => super::rewrite::describe_rewrite(s, p),
        "DescribeTargets" => targets::describe_targets(s, p),
        "DescribeTargetHealth" => targets::describe_target_health(s, p),
        "RegisterTargets" => targets::register_targets(s, ctx, p),
        "DeregisterTargets" => targets::deregister_targets(s, ctx, p),
        "BatchRegisterTargets" => targets::batch_register(s, ctx, p),
        "BatchDeregisterTargets" => targets::batch_deregister(s, ctx, p),
        "ModifyTargetWeight" => targets::modify_target_weight(s, ctx, p),
        "BatchModifyTargetWeight" => targets::batch_modify_weight(s, ctx, p),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action `{other}` does not exist"),
        )),
    }
}

pub(crate) fn lb_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidParameter.LBIdNotFound",
        format!("LoadBalancer ({id}) not found"),
    )
}

/// The CLB a write goes to: it must exist and have no task running.
pub(crate) fn writable<'a>(
    s: &'a mut SimState,
    id: &str,
    now: Instant,
) -> ApiResult<&'a mut LoadBalancer> {
    let lb = s.lb_mut(id).ok_or_else(|| lb_not_found(id))?;
    let busy = lb.busy_until.is_some_and(|t| t > now) || lb.creating_until.is_some_and(|t| t > now);
    if busy {
        return Err(ApiError::new(
            "FailedOperation.ResourceInOperating",
            format!("LoadBalancer ({id}) is being operated on, retry later"),
        ));
    }
    Ok(lb)
}

fn parse_tags(p: &Obj, name: &str, max: usize) -> ApiResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (path, m) in p.objs(name, max)?.unwrap_or_default() {
        let t = Obj::new(m, &path);
        t.only(&["TagKey", "TagValue"])?;
        let k = t.req_str("TagKey")?;
        let v = t.str("TagValue")?.unwrap_or_default();
        super::tag::check_tag(&k, &v)?;
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            Some(e) => e.1 = v,
            None => out.push((k, v)),
        }
    }
    Ok(out)
}

fn create_load_balancer(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerType",
        "Forward",
        "LoadBalancerName",
        "VpcId",
        "SubnetId",
        "ProjectId",
        "AddressIPVersion",
        "Number",
        "MasterZoneId",
        "ZoneId",
        "InternetAccessible",
        "VipIsp",
        "Tags",
        "Vip",
        "BandwidthPackageId",
        "ExclusiveCluster",
        "SlaType",
        "ClusterIds",
        "ClientToken",
        "SnatPro",
        "SnatIps",
        "ClusterTag",
        "SlaveZoneId",
        "EipAddressId",
        "LoadBalancerPassToTarget",
        "DynamicVip",
        "Egress",
        "LBChargePrepaid",
        "LBChargeType",
        "AccessLogTopicId",
        "AdvancedRoute",
        "AvailableZoneAffinityInfo",
    ])?;
    let lb_type = p.req_str("LoadBalancerType")?;
    if lb_type != "OPEN" && lb_type != "INTERNAL" {
        return Err(p.invalid_value("LoadBalancerType", "must be OPEN or INTERNAL"));
    }
    if let Some(f) = p.int("Forward")? {
        if f != 1 {
            return Err(p.invalid_value("Forward", "only 1 (application CLB) is accepted"));
        }
    }
    let name = p.str("LoadBalancerName")?;
    if let Some(n) = &name {
        if n.is_empty() || n.chars().count() > 80 {
            return Err(ApiError::new(
                "InvalidParameterValue.Length",
                "LoadBalancerName must be 1-80 characters",
            ));
        }
    }
    let vpc = p.str("VpcId")?;
    let subnet = p.str("SubnetId")?;
    if lb_type == "INTERNAL" && subnet.is_none() {
        return Err(p.missing("SubnetId"));
    }
    if lb_type == "OPEN" && subnet.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            "SubnetId is not allowed for a public IPv4 CLB",
        ));
    }
    if let Some(v) = p.str("AddressIPVersion")? {
        if !v.eq_ignore_ascii_case("IPV4") {
            return Err(ApiError::new(
                "UnsupportedOperation",
                format!("AddressIPVersion {v} is not emulated"),
            ));
        }
    }
    let number = p.int_in("Number", 1, 20)?.unwrap_or(1) as usize;
    let project_id = p.int("ProjectId")?.unwrap_or(0);
    let tags = parse_tags(&p, "Tags", MAX_CREATE_TAGS)?;
    let pass = p.bool("LoadBalancerPassToTarget")?.unwrap_or(false);
    let (mut charge, mut bw) = ("TRAFFIC_POSTPAID_BY_HOUR".to_string(), 10);
    if let Some(ia) = p.obj("InternetAccessible")? {
        let ia = Obj::new(ia, "InternetAccessible");
        ia.only(&[
            "InternetChargeType",
            "InternetMaxBandwidthOut",
            "BandwidthpkgSubType",
        ])?;
        if let Some(c) = ia.str("InternetChargeType")? {
            charge = c;
        }
        if let Some(b) = ia.int_in("InternetMaxBandwidthOut", 1, 2048)? {
            bw = b;
        }
    }
    let vip_wanted = p.str("Vip")?;
    if let Some(v) = &vip_wanted {
        if v.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(p.invalid_value("Vip", "is not an IPv4 address"));
        }
        if number != 1 {
            return Err(ApiError::new("InvalidParameter", "Vip needs Number 1"));
        }
    }
    let modelled = [
        "LoadBalancerType",
        "Forward",
        "LoadBalancerName",
        "VpcId",
        "SubnetId",
        "ProjectId",
        "AddressIPVersion",
        "Number",
        "InternetAccessible",
        "Tags",
        "Vip",
        "ClientToken",
        "LoadBalancerPassToTarget",
    ];
    let create_params: Map<String, Value> = p
        .entries()
        .filter(|(k, _)| !modelled.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let token = p.str("ClientToken")?;
    if let Some(t) = &token {
        if t.is_empty() || t.len() > MAX_CLIENT_TOKEN || !t.is_ascii() {
            return Err(ApiError::new(
                "InvalidParameterValue.Length",
                "ClientToken must be 1-64 ASCII characters",
            ));
        }
        if let Some(rec) = s.client_tokens.get(t) {
            return Ok(Outcome::new(
                json!({"LoadBalancerIds": rec.lb_ids, "DealName": rec.deal_name}),
                rec.lb_ids.clone(),
            ));
        }
    }
    if let Some(v) = &vip_wanted {
        if s.load_balancers.iter().any(|l| l.vip == *v) {
            return Err(ApiError::new(
                "InvalidParameterValue.Duplicate",
                format!("Vip {v} is in use"),
            ));
        }
    }
    let existing = s
        .load_balancers
        .iter()
        .filter(|l| l.lb_type == lb_type)
        .count();
    if existing + number > s.limits.clbs_per_type {
        return Err(ApiError::new(
            "LimitExceeded",
            format!(
                "the quota of {} {lb_type} CLBs is reached",
                s.limits.clbs_per_type
            ),
        ));
    }
    let deal_name = format!("2026{:012}", s.next_seq());
    let now_str = api_time_now();
    let mut ids = Vec::new();
    for i in 0..number {
        let id = s.new_id("lb");
        let n = s.next_seq();
        let vip = if let Some(v) = &vip_wanted {
            v.clone()
        } else if lb_type == "INTERNAL" {
            format!(
                "10.{}.{}.{}",
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                (n & 0xff).max(1)
            )
        } else {
            format!(
                "198.{}.{}.{}",
                18 + ((n >> 16) & 1),
                (n >> 8) & 0xff,
                (n & 0xff).max(1)
            )
        };
        let lb_name = match &name {
            Some(n) if number == 1 => n.clone(),
            Some(n) => format!("{n}-{}", i + 1),
            None => format!("clb-{}", &id[3..]),
        };
        s.load_balancers.push(LoadBalancer {
            domain: lb_domain(&id, &ctx.region),
            id: id.clone(),
            name: lb_name,
            lb_type: lb_type.clone(),
            vip,
            vpc_id: vpc.clone().unwrap_or_else(|| DEFAULT_VPC.to_string()),
            subnet_id: subnet.clone().unwrap_or_default(),
            project_id,
            tags: tags.clone(),
            security_groups: Vec::new(),
            create_time: now_str.clone(),
            pass_to_target: pass,
            delete_protect: false,
            internet_charge_type: charge.clone(),
            bandwidth_out: bw,
            listeners: Vec::new(),
            rewrites: Vec::new(),
            create_params: create_params.clone(),
            creating_until: Some(ctx.now + ctx.task),
            busy_until: None,
        });
        ids.push(id);
    }
    s.start_task(&ctx.request_id, &ids, ctx.now, ctx.task);
    s.deals.insert(deal_name.clone(), ctx.request_id.clone());
    if let Some(t) = token {
        s.client_tokens.insert(
            t,
            super::model::CreateRecord {
                lb_ids: ids.clone(),
                deal_name: deal_name.clone(),
            },
        );
    }
    Ok(Outcome::new(
        json!({"LoadBalancerIds": ids, "DealName": deal_name}),
        ids,
    ))
}

fn has_targets(lb: &LoadBalancer) -> bool {
    lb.listeners
        .iter()
        .any(|l| !l.targets.is_empty() || l.rules.iter().any(|r| !r.targets.is_empty()))
}

fn describe_load_balancers(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerIds",
        "LoadBalancerType",
        "Forward",
        "LoadBalancerName",
        "Domain",
        "LoadBalancerVips",
        "BackendPublicIps",
        "BackendPrivateIps",
        "Offset",
        "Limit",
        "OrderBy",
        "OrderType",
        "SearchKey",
        "ProjectId",
        "WithRs",
        "VpcId",
        "SecurityGroup",
        "MasterZone",
        "Filters",
        "AdditionalFields",
    ])?;
    p.refuse_unmodelled(&[("MasterZone", None)])?;
    // An empty list filters nothing, like an absent one.
    let ids = p
        .strs("LoadBalancerIds", MAX_LB_IDS)?
        .filter(|v| !v.is_empty());
    let lb_type = p.str("LoadBalancerType")?;
    let forward = p.int("Forward")?;
    let name = p.str("LoadBalancerName")?;
    let domain = p.str("Domain")?;
    let vips = p.strs("LoadBalancerVips", 100)?;
    let private_ips = p.strs("BackendPrivateIps", 100)?;
    let project = p.int("ProjectId")?;
    let vpc = p.str("VpcId")?;
    let sg = p.str("SecurityGroup")?;
    let offset = p.int("Offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(p.invalid_value("Offset", "must not be negative"));
    }
    let limit = p.int_in("Limit", 0, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let order_by = p.str("OrderBy")?;
    if let Some(o) = &order_by {
        if ![
            "LoadBalancerName",
            "CreateTime",
            "Domain",
            "LoadBalancerType",
        ]
        .contains(&o.as_str())
        {
            return Err(p.invalid_value(
                "OrderBy",
                "must be LoadBalancerName, CreateTime, Domain or LoadBalancerType",
            ));
        }
    }
    let descending = p.int_in("OrderType", 0, 1)?.unwrap_or(0) == 1;
    let search = p.str("SearchKey")?;
    let with_rs = p.int_in("WithRs", -1, 1)?.unwrap_or(-1);
    // No backend has a public IP here, so asking for any matches nothing.
    let public_ips = p.strs("BackendPublicIps", 100)?.filter(|v| !v.is_empty());
    let _ = p.strs("AdditionalFields", 100)?;
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for (path, m) in p.objs("Filters", 10)?.unwrap_or_default() {
        let f = Obj::new(m, &path);
        f.only(&["Name", "Values"])?;
        let n = f.req_str("Name")?;
        let v = f.strs("Values", 100)?.ok_or_else(|| f.missing("Values"))?;
        if !(n.starts_with("tag:") && n.len() > 4) && n != "tag-key" {
            return Err(ApiError::new(
                "InvalidParameter.InvalidFilter",
                format!("the filter `{n}` is not supported by this emulator (only tag:<key> and tag-key)"),
            ));
        }
        filters.push((n, v));
    }
    let matches = |lb: &LoadBalancer| -> bool {
        ids.as_ref().is_none_or(|ids| ids.contains(&lb.id))
            && lb_type.as_ref().is_none_or(|t| *t == lb.lb_type)
            && forward.is_none_or(|f| f == 1 || f == -1)
            && name.as_ref().is_none_or(|n| lb.name.contains(n.as_str()))
            && domain
                .as_ref()
                .is_none_or(|d| lb.domain.contains(d.as_str()))
            && vips.as_ref().is_none_or(|v| v.contains(&lb.vip))
            && project.is_none_or(|pr| pr == -1 || pr == lb.project_id)
            && vpc.as_ref().is_none_or(|v| *v == lb.vpc_id)
            && sg.as_ref().is_none_or(|g| lb.security_groups.contains(g))
            && public_ips.is_none()
            && search.as_ref().is_none_or(|k| {
                [&lb.id, &lb.name, &lb.domain, &lb.vip]
                    .iter()
                    .any(|f| f.contains(k.as_str()))
            })
            && (with_rs == -1 || (with_rs == 1) == has_targets(lb))
            && private_ips.as_ref().is_none_or(|ips| {
                lb.listeners.iter().any(|l| {
                    l.targets
                        .iter()
                        .chain(l.rules.iter().flat_map(|r| r.targets.iter()))
                        .any(|t| t.eni_ip.as_ref().is_some_and(|ip| ips.contains(ip)))
                })
            })
            && filters.iter().all(|(n, vals)| {
                if n == "tag-key" {
                    lb.tags.iter().any(|(k, _)| vals.contains(k))
                } else {
                    let key = &n[4..];
                    lb.tags.iter().any(|(k, v)| k == key && vals.contains(v))
                }
            })
    };
    let mut all: Vec<&LoadBalancer> = s.load_balancers.iter().filter(|lb| matches(lb)).collect();
    // Without OrderBy the creation order stands (a stable order makes paging sound).
    if let Some(o) = &order_by {
        all.sort_by(|a, b| {
            let key = |lb: &LoadBalancer| match o.as_str() {
                "LoadBalancerName" => lb.name.clone(),
                "Domain" => lb.domain.clone(),
                "LoadBalancerType" => lb.lb_type.clone(),
                _ => lb.create_time.clone(),
            };
            key(a).cmp(&key(b))
        });
    }
    if descending {
        all.reverse();
    }
    let page: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|lb| lb_json(lb, ctx.now))
        .collect();
    Ok(Outcome::new(
        json!({"TotalCount": all.len(), "LoadBalancerSet": page}),
        Vec::new(),
    ))
}

fn delete_load_balancer(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerIds", "ForceDelete"])?;
    let ids = p
        .strs("LoadBalancerIds", MAX_LB_IDS)?
        .ok_or_else(|| p.missing("LoadBalancerIds"))?;
    if ids.is_empty() {
        return Err(p.missing("LoadBalancerIds"));
    }
    let force = p.bool("ForceDelete")?.unwrap_or(false);
    for id in &ids {
        let lb = writable(s, id, ctx.now)?;
        if lb.delete_protect {
            return Err(ApiError::new(
                "FailedOperation",
                format!("LoadBalancer ({id}) has deletion protection"),
            ));
        }
        let bound: usize = lb
            .listeners
            .iter()
            .map(|l| l.targets.len() + l.rules.iter().map(|r| r.targets.len()).sum::<usize>())
            .sum();
        if !force && bound >= DELETE_RISK_TARGETS {
            return Err(ApiError::new(
                "FailedOperation.TargetNumCheckRisk",
                format!("LoadBalancer ({id}) has {bound} targets bound; use ForceDelete"),
            ));
        }
    }
    s.load_balancers.retain(|lb| !ids.contains(&lb.id));
    s.start_task(&ctx.request_id, &ids, ctx.now, ctx.task);
    Ok(Outcome::new(json!({}), ids))
}

fn modify_lb_attributes(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "LoadBalancerName",
        "TargetRegionInfo",
        "InternetChargeInfo",
        "LoadBalancerPassToTarget",
        "SwitchFlag",
        "SnatPro",
        "DeleteProtect",
        "ModifyClassicDomain",
        "AssociateEndpoint",
    ])?;
    p.refuse_unmodelled(&[
        ("TargetRegionInfo", None),
        ("SwitchFlag", None),
        ("SnatPro", Some(json!(false))),
        ("ModifyClassicDomain", Some(json!(false))),
        ("AssociateEndpoint", None),
    ])?;
    let id = p.req_str("LoadBalancerId")?;
    let name = p.str("LoadBalancerName")?;
    if let Some(n) = &name {
        if n.is_empty() || n.chars().count() > 80 {
            return Err(ApiError::new(
                "InvalidParameterValue.Length",
                "LoadBalancerName must be 1-80 characters",
            ));
        }
    }
    let pass = p.bool("LoadBalancerPassToTarget")?;
    let protect = p.bool("DeleteProtect")?;
    let mut charge = None;
    if let Some(ic) = p.obj("InternetChargeInfo")? {
        let ic = Obj::new(ic, "InternetChargeInfo");
        ic.only(&[
            "InternetChargeType",
            "InternetMaxBandwidthOut",
            "BandwidthpkgSubType",
        ])?;
        charge = Some((
            ic.str("InternetChargeType")?,
            ic.int_in("InternetMaxBandwidthOut", 1, 2048)?,
        ));
    }
    let lb = writable(s, &id, ctx.now)?;
    if let Some(n) = name {
        lb.name = n;
    }
    if let Some(v) = pass {
        lb.pass_to_target = v;
    }
    if let Some(v) = protect {
        lb.delete_protect = v;
    }
    if let Some((c, b)) = charge {
        if let Some(c) = c {
            lb.internet_charge_type = c;
        }
        if let Some(b) = b {
            lb.bandwidth_out = b;
        }
    }
    let deal = format!("2026{:012}", s.next_seq());
    s.deals.insert(deal.clone(), ctx.request_id.clone());
    s.start_task(
        &ctx.request_id,
        std::slice::from_ref(&id),
        ctx.now,
        ctx.task,
    );
    Ok(Outcome::new(json!({"DealName": deal}), vec![id]))
}

fn set_security_groups(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "SecurityGroups"])?;
    let id = p.req_str("LoadBalancerId")?;
    let groups = p.strs("SecurityGroups", 50)?.unwrap_or_default();
    let mut uniq: Vec<String> = Vec::new();
    for g in groups {
        if !g.starts_with("sg-") {
            return Err(p.invalid_value(
                "SecurityGroups",
                &format!("`{g}` is not a security group id"),
            ));
        }
        if !uniq.contains(&g) {
            uniq.push(g);
        }
    }
    let lb = writable(s, &id, ctx.now)?;
    lb.security_groups = uniq;
    Ok(Outcome::new(json!({}), vec![id]))
}

fn describe_task_status(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["TaskId", "DealName"])?;
    let task_id =
        match (p.str("TaskId")?, p.str("DealName")?) {
            (Some(t), _) => t,
            (None, Some(d)) => s.deals.get(&d).cloned().ok_or_else(|| {
                ApiError::new(UNKNOWN_TASK_CODE, format!("DealName {d} not found"))
            })?,
            (None, None) => return Err(p.missing("TaskId")),
        };
    let task = s
        .tasks
        .get(&task_id)
        .ok_or_else(|| ApiError::new(UNKNOWN_TASK_CODE, format!("TaskId {task_id} not found")))?;
    let (status, message) = match (task.done_at > ctx.now, task.failed) {
        (true, _) => (2, ""),
        (false, true) => (1, "the task failed (injected fault); nothing was changed"),
        (false, false) => (0, ""),
    };
    Ok(Outcome::new(
        json!({"Status": status, "LoadBalancerIds": task.lb_ids, "Message": message}),
        task.lb_ids.clone(),
    ))
}
