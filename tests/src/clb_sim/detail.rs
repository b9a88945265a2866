//! DescribeLoadBalancersDetail: one flat row per CLB × listener × rule × target.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::clb::{Ctx, Outcome};
use super::limits::{DEFAULT_LIMIT, MAX_LIMIT};
use super::model::{tags_json, LoadBalancer, SimState, Target};
use super::params::{ApiError, ApiResult, Obj};

/// Fields that need `TargetType` (tencent-cloud-more §2).
const NEEDS_TARGET_TYPE: &[&str] = &[
    "TargetId",
    "TargetAddress",
    "TargetPort",
    "TargetWeight",
    "ListenerId",
    "Protocol",
    "Port",
    "LocationId",
    "Domain",
    "Url",
];

const ALL_FIELDS: &[&str] = &[
    "LoadBalancerId",
    "LoadBalancerName",
    "LoadBalancerType",
    "Status",
    "Address",
    "AddressIPv6",
    "AddressIPVersion",
    "IPv6Mode",
    "Zone",
    "AddressIsp",
    "VpcId",
    "ProjectId",
    "CreateTime",
    "ChargeType",
    "NetworkAttributes",
    "PrepaidAttributes",
    "ExtraInfo",
    "ConfigId",
    "Tags",
    "ListenerId",
    "Protocol",
    "Port",
    "LocationId",
    "Domain",
    "Url",
    "TargetId",
    "TargetAddress",
    "TargetPort",
    "TargetWeight",
    "Isolation",
    "SecurityGroup",
    "LoadBalancerPassToTarget",
    "TargetHealth",
    "Domains",
    "SlaveZone",
    "Zones",
    "SniSwitch",
    "LoadBalancerDomain",
    "Egress",
    "AttributeFlags",
    "SlaType",
    "Exclusive",
    "AvailableZoneAffinityInfo",
];

fn base_row(lb: &LoadBalancer, now: Instant) -> Map<String, Value> {
    let creating = lb.creating_until.is_some_and(|t| t > now);
    let v = json!({
        "LoadBalancerId": lb.id,
        "LoadBalancerName": lb.name,
        // This action names the network type Public/Private, not OPEN/INTERNAL.
        "LoadBalancerType": if lb.lb_type == "OPEN" { "Public" } else { "Private" },
        "Status": if creating { 0 } else { 1 },
        "Address": lb.vip,
        "AddressIPVersion": "ipv4",
        "VpcId": lb.vpc_id,
        "ProjectId": lb.project_id,
        "CreateTime": lb.create_time,
        "ChargeType": "POSTPAID_BY_HOUR",
        "NetworkAttributes": {"InternetChargeType": lb.internet_charge_type, "InternetMaxBandwidthOut": lb.bandwidth_out},
        "Tags": tags_json(&lb.tags),
        "Isolation": 0,
        "SecurityGroup": lb.security_groups,
        "LoadBalancerPassToTarget": u8::from(lb.pass_to_target),
        "LoadBalancerDomain": lb.domain,
        "AttributeFlags": if lb.delete_protect { json!(["DeleteProtect"]) } else { json!([]) },
        "SlaType": "shared",
        "Exclusive": 0,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Assumption: a CVM target's address is not known to the emulator, so `TargetAddress` is
/// the ENI IP for ENI targets and null for CVM ones; `TargetId` is the instance id or null.
fn target_cols(row: &mut Map<String, Value>, t: &Target) {
    row.insert("TargetId".into(), json!(t.instance_id));
    row.insert("TargetAddress".into(), json!(t.eni_ip));
    row.insert("TargetPort".into(), json!(t.port));
    row.insert("TargetWeight".into(), json!(t.weight));
}

/// Assumption (tencent-cloud-more §2, unverified): rows are one per CLB × listener × rule ×
/// target; a CLB without listeners, a listener without rules (or L4 targets) and a rule
/// without targets each still give one row with the deeper columns null; paging counts rows.
fn rows(lb: &LoadBalancer, now: Instant) -> Vec<Map<String, Value>> {
    let base = base_row(lb, now);
    if lb.listeners.is_empty() {
        return vec![base];
    }
    let mut out = Vec::new();
    for l in &lb.listeners {
        let mut lrow = base.clone();
        lrow.insert("ListenerId".into(), json!(l.id));
        lrow.insert("Protocol".into(), json!(l.protocol));
        lrow.insert("Port".into(), json!(l.port));
        lrow.insert("SniSwitch".into(), json!(i64::from(l.sni)));
        if !l.is_l7() {
            if l.targets.is_empty() {
                out.push(lrow.clone());
            }
            for t in &l.targets {
                let mut row = lrow.clone();
                target_cols(&mut row, t);
                out.push(row);
            }
            continue;
        }
        if l.rules.is_empty() {
            out.push(lrow.clone());
        }
        for r in &l.rules {
            let mut rrow = lrow.clone();
            rrow.insert("LocationId".into(), json!(r.id));
            rrow.insert("Domain".into(), json!(r.domain()));
            rrow.insert("Domains".into(), json!(r.domains.join(",")));
            rrow.insert("Url".into(), json!(r.url));
            if r.targets.is_empty() {
                out.push(rrow.clone());
            }
            for t in &r.targets {
                let mut row = rrow.clone();
                target_cols(&mut row, t);
                out.push(row);
            }
        }
    }
    out
}

pub(crate) fn describe_detail(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["Limit", "Offset", "Fields", "TargetType", "Filters"])?;
    let limit = p.int_in("Limit", 0, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize;
    let offset = p.int("Offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(p.invalid_value("Offset", "must not be negative"));
    }
    let fields = p.strs("Fields", 100)?.unwrap_or_default();
    for f in &fields {
        if !ALL_FIELDS.contains(&f.as_str()) {
            return Err(p.invalid_value(
                "Fields",
                &format!("`{f}` is not a LoadBalancerDetail field"),
            ));
        }
    }
    let target_type = p.str("TargetType")?;
    if let Some(t) = &target_type {
        if t != "NODE" && t != "GROUP" {
            return Err(p.invalid_value("TargetType", "must be NODE or GROUP"));
        }
    }
    if target_type.is_none()
        && fields
            .iter()
            .any(|f| NEEDS_TARGET_TYPE.contains(&f.as_str()))
    {
        return Err(p.missing("TargetType"));
    }
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for (path, m) in p.objs("Filters", 10)?.unwrap_or_default() {
        let f = Obj::new(m, &path);
        f.only(&["Name", "Values"])?;
        let n = f.req_str("Name")?;
        let v = f.strs("Values", 100)?.ok_or_else(|| f.missing("Values"))?;
        let known = [
            "loadbalancer-id",
            "project-id",
            "network",
            "vip",
            "vpcid",
            "target-ip",
            "tag-key",
            "fuzzy-search",
        ];
        let is_tag = n.starts_with("tag:") && n.len() > 4;
        if !(known.contains(&n.as_str()) || is_tag) {
            return Err(ApiError::new(
                "InvalidParameter.InvalidFilter",
                format!("the filter `{n}` is not supported by this emulator"),
            ));
        }
        filters.push((n, v));
    }
    let matches = |lb: &LoadBalancer| {
        filters.iter().all(|(n, vals)| match n.as_str() {
            "loadbalancer-id" => vals.contains(&lb.id),
            "project-id" => vals.contains(&lb.project_id.to_string()),
            "network" => vals
                .iter()
                .any(|v| (v == "Public") == (lb.lb_type == "OPEN")),
            "vip" => vals.contains(&lb.vip),
            "vpcid" => vals.contains(&lb.vpc_id),
            "target-ip" => lb.listeners.iter().any(|l| {
                l.targets
                    .iter()
                    .chain(l.rules.iter().flat_map(|r| r.targets.iter()))
                    .any(|t| t.eni_ip.as_ref().is_some_and(|ip| vals.contains(ip)))
            }),
            "tag-key" => lb.tags.iter().any(|(k, _)| vals.contains(k)),
            "fuzzy-search" => vals
                .iter()
                .any(|v| lb.vip.contains(v.as_str()) || lb.name.contains(v.as_str())),
            tag => {
                let key = &tag[4..];
                lb.tags.iter().any(|(k, v)| k == key && vals.contains(v))
            }
        })
    };
    let all: Vec<Map<String, Value>> = s
        .load_balancers
        .iter()
        .filter(|lb| matches(lb))
        .flat_map(|lb| rows(lb, ctx.now))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(limit)
        .map(|row| {
            let mut out = Map::new();
            for f in ALL_FIELDS {
                let keep = *f == "LoadBalancerId"
                    || *f == "LoadBalancerName"
                    || fields.iter().any(|x| x == f);
                let v = if keep {
                    row.get(*f).cloned().unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                out.insert((*f).to_string(), v);
            }
            Value::Object(out)
        })
        .collect();
    Ok(Outcome::new(
        json!({"TotalCount": all.len(), "LoadBalancerDetailSet": page}),
        Vec::new(),
    ))
}
