//! Target (backend) actions: describe, register, deregister, weights.

use serde_json::{json, Value};

use super::clb::{lb_not_found, task_started, writable, Ctx, Outcome};
use super::limits::*;
use super::listeners::{listener_mut, location_not_found};
use super::model::{api_time_now, backend_json, Listener, SimState, Target};
use super::params::{ApiError, ApiResult, Obj};

/// `DescribeTargetHealth`: up to 30 CLBs, each with every listener (protocol, port), every rule
/// (domain, URL; one rule with null Domain/Url on a layer-4 listener) and every target (IP,
/// port, id, health, weight). Listeners and rules without targets are listed too.
pub(crate) fn describe_target_health(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerIds", "ListenerIds", "LocationIds"])?;
    let lb_ids = p
        .strs("LoadBalancerIds", MAX_TARGET_HEALTH_LB_IDS)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| p.missing("LoadBalancerIds"))?;
    let listener_ids = p.strs("ListenerIds", MAX_DESCRIBE_LISTENER_IDS)?;
    let location_ids = p.strs("LocationIds", MAX_DESCRIBE_LISTENER_IDS)?;
    let target = |t: &Target| {
        json!({
            "IP": t.eni_ip.clone().unwrap_or_default(),
            "Port": t.port,
            "HealthStatus": true,
            "TargetId": t.instance_id.clone().unwrap_or_default(),
            "HealthStatusDetail": "Alive",
            "TargetGroupId": null,
            "Weight": t.weight,
        })
    };
    let mut out = Vec::new();
    for id in &lb_ids {
        let Some(lb) = s.lb(id) else {
            if TARGET_HEALTH_SKIPS_UNKNOWN_LB {
                continue;
            }
            return Err(lb_not_found(id));
        };
        let listeners: Vec<Value> = lb
            .listeners
            .iter()
            .filter(|l| listener_ids.as_ref().is_none_or(|ids| ids.contains(&l.id)))
            .map(|l| {
                let rules: Vec<Value> = if l.is_l7() {
                    l.rules
                        .iter()
                        .filter(|r| location_ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
                        .map(|r| {
                            json!({
                                "LocationId": r.id,
                                "Domain": r.domain(),
                                "Url": r.url,
                                "Targets": r.targets.iter().map(target).collect::<Vec<_>>(),
                            })
                        })
                        .collect()
                } else {
                    vec![json!({
                        "LocationId": null,
                        "Domain": null,
                        "Url": null,
                        "Targets": l.targets.iter().map(target).collect::<Vec<_>>(),
                    })]
                };
                json!({
                    "ListenerId": l.id,
                    "ListenerName": l.name,
                    "Protocol": l.protocol,
                    "Port": l.port,
                    "Rules": rules,
                })
            })
            .collect();
        out.push(json!({
            "LoadBalancerId": lb.id,
            "LoadBalancerName": lb.name,
            "Listeners": listeners,
        }));
    }
    Ok(Outcome::new(json!({"LoadBalancers": out}), lb_ids))
}

pub(crate) fn describe_targets(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerIds",
        "Protocol",
        "Port",
        "Filters",
    ])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let ids = p.strs("ListenerIds", MAX_LISTENER_IDS)?;
    let protocol = p.str("Protocol")?;
    let port = p.int("Port")?;
    let mut locs: Option<Vec<String>> = None;
    let mut ips: Option<Vec<String>> = None;
    for (path, m) in p.objs("Filters", 10)?.unwrap_or_default() {
        let f = Obj::new(m, &path);
        f.only(&["Name", "Values"])?;
        let name = f.req_str("Name")?;
        let values = f.strs("Values", 100)?.ok_or_else(|| f.missing("Values"))?;
        match name.as_str() {
            "location-id" => locs = Some(values),
            "private-ip-address" => ips = Some(values),
            other => {
                return Err(ApiError::new(
                    "InvalidParameterValue.InvalidFilter",
                    format!("the filter `{other}` is not supported"),
                ))
            }
        }
    }
    let lb = s.lb(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
    let keep = |t: &&Target| {
        ips.as_ref()
            .is_none_or(|ips| t.eni_ip.as_ref().is_some_and(|ip| ips.contains(ip)))
    };
    let listeners: Vec<Value> = lb
        .listeners
        .iter()
        .filter(|l| ids.as_ref().is_none_or(|ids| ids.contains(&l.id)))
        .filter(|l| protocol.as_ref().is_none_or(|p| *p == l.protocol))
        .filter(|l| port.is_none_or(|p| p == l.port))
        .map(|l| {
            let rules: Vec<Value> = l
                .rules
                .iter()
                .filter(|r| locs.as_ref().is_none_or(|ls| ls.contains(&r.id)))
                .map(|r| {
                    json!({
                        "LocationId": r.id,
                        "Domain": r.domain(),
                        "Url": r.url,
                        "Targets": r.targets.iter().filter(keep).map(backend_json).collect::<Vec<_>>(),
                        "FunctionTargets": null,
                    })
                })
                .collect();
            json!({
                "ListenerId": l.id,
                "Protocol": l.protocol,
                "Port": l.port,
                "Rules": if l.is_l7() { json!(rules) } else { Value::Null },
                "Targets": if l.is_l7() { Value::Null } else {
                    json!(l.targets.iter().filter(keep).map(backend_json).collect::<Vec<_>>())
                },
                "EndPort": 0,
            })
        })
        .collect();
    Ok(Outcome::new(json!({"Listeners": listeners}), vec![lb_id]))
}

/// One target from a `Target` or `BatchTarget` object.
fn parse_target(t: &Obj) -> ApiResult<Target> {
    let port = t.int("Port")?.ok_or_else(|| t.missing("Port"))?;
    if !(1..=65535).contains(&port) {
        return Err(t.invalid_value("Port", "must be 1-65535"));
    }
    let instance = t.str("InstanceId")?;
    let eni = t.str("EniIp")?;
    if instance.is_some() == eni.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("{}: pass exactly one of InstanceId and EniIp", t.path()),
        ));
    }
    if let Some(i) = &instance {
        if !i.starts_with("ins-") {
            return Err(t.invalid_value("InstanceId", "is not a CVM instance id"));
        }
    }
    if let Some(ip) = &eni {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(t.invalid_value("EniIp", "is not an IP address"));
        }
    }
    let weight = t.int_in("Weight", 0, 100)?.unwrap_or(10);
    let _ = t.str("Tag")?;
    Ok(Target {
        instance_id: instance,
        eni_ip: eni,
        port,
        weight,
        registered_time: String::new(),
    })
}

fn parse_targets(p: &Obj, max: usize) -> ApiResult<Vec<Target>> {
    let items = p
        .objs("Targets", max)?
        .ok_or_else(|| p.missing("Targets"))?;
    if items.is_empty() {
        return Err(p.missing("Targets"));
    }
    let mut out: Vec<Target> = Vec::new();
    for (path, m) in &items {
        let t = Obj::new(m, path);
        t.only(&["Port", "Type", "InstanceId", "Weight", "EniIp", "Tag"])?;
        let target = parse_target(&t)?;
        if out.iter().any(|o| o.key() == target.key()) {
            return Err(ApiError::new(
                "InvalidParameterValue.Duplicate",
                format!("{path}: the target {:?} is given twice", target.key()),
            ));
        }
        out.push(target);
    }
    Ok(out)
}

/// The targets of a rule (by LocationId, or Domain+Url) or of a layer-4 listener.
fn bound_targets<'a>(
    l: &'a mut Listener,
    loc: Option<&str>,
    domain: Option<&str>,
    url: Option<&str>,
    p: &Obj,
) -> ApiResult<&'a mut Vec<Target>> {
    if !l.is_l7() {
        return Ok(&mut l.targets);
    }
    let idx = match (loc, domain, url) {
        (Some(loc), _, _) => l
            .rules
            .iter()
            .position(|r| r.id == loc)
            .ok_or_else(|| location_not_found(loc))?,
        (None, Some(d), Some(u)) => l
            .rules
            .iter()
            .position(|r| r.has_domain(d) && r.url == u)
            .ok_or_else(|| location_not_found(&format!("{d}{u}")))?,
        _ => return Err(p.missing("LocationId")),
    };
    Ok(&mut l.rules[idx].targets)
}

fn add_targets(bound: &mut Vec<Target>, new: Vec<Target>, max: usize) -> ApiResult<()> {
    let fresh: Vec<Target> = new
        .into_iter()
        .filter(|t| !bound.iter().any(|b| b.key() == t.key()))
        .collect();
    if bound.len() + fresh.len() > max {
        return Err(ApiError::new(
            "LimitExceeded",
            format!("at most {max} targets can be bound to one rule or listener"),
        ));
    }
    let now = api_time_now();
    for mut t in fresh {
        t.registered_time = now.clone();
        bound.push(t);
    }
    Ok(())
}

struct Single {
    lb_id: String,
    listener_id: String,
    loc: Option<String>,
    domain: Option<String>,
    url: Option<String>,
    targets: Vec<Target>,
}

fn parse_single(p: &Obj, with_weight: bool) -> ApiResult<Single> {
    let mut known = vec![
        "LoadBalancerId",
        "ListenerId",
        "Targets",
        "LocationId",
        "Domain",
        "Url",
    ];
    if with_weight {
        known.push("Weight");
    }
    p.only(&known)?;
    Ok(Single {
        lb_id: p.req_str("LoadBalancerId")?,
        listener_id: p.req_str("ListenerId")?,
        loc: p.str("LocationId")?,
        domain: p.str("Domain")?,
        url: p.str("Url")?,
        targets: parse_targets(p, MAX_TARGETS_PER_CALL)?,
    })
}

pub(crate) fn register_targets(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let req = parse_single(&p, false)?;
    let max = s.limits.targets_per_rule;
    let lb = writable(s, &req.lb_id, ctx.now)?;
    let l = listener_mut(lb, &req.listener_id)?;
    let bound = bound_targets(
        l,
        req.loc.as_deref(),
        req.domain.as_deref(),
        req.url.as_deref(),
        &p,
    )?;
    add_targets(bound, req.targets, max)?;
    Ok(task_started(s, ctx, req.lb_id))
}

pub(crate) fn deregister_targets(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let req = parse_single(&p, false)?;
    let lb = writable(s, &req.lb_id, ctx.now)?;
    let l = listener_mut(lb, &req.listener_id)?;
    let bound = bound_targets(
        l,
        req.loc.as_deref(),
        req.domain.as_deref(),
        req.url.as_deref(),
        &p,
    )?;
    for t in &req.targets {
        if !bound.iter().any(|b| b.key() == t.key()) {
            return Err(ApiError::new(
                TARGET_NOT_BOUND_CODE,
                format!("the target {:?} is not bound", t.key()),
            ));
        }
    }
    bound.retain(|b| !req.targets.iter().any(|t| t.key() == b.key()));
    Ok(task_started(s, ctx, req.lb_id))
}

pub(crate) fn modify_target_weight(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let req = parse_single(&p, true)?;
    let weight = p.int_in("Weight", 0, 100)?;
    let explicit: Vec<bool> = p
        .objs("Targets", MAX_TARGETS_PER_CALL)?
        .unwrap_or_default()
        .iter()
        .map(|(_, m)| m.get("Weight").is_some_and(|w| !w.is_null()))
        .collect();
    let lb = writable(s, &req.lb_id, ctx.now)?;
    let l = listener_mut(lb, &req.listener_id)?;
    let bound = bound_targets(
        l,
        req.loc.as_deref(),
        req.domain.as_deref(),
        req.url.as_deref(),
        &p,
    )?;
    set_weights(bound, &req.targets, &explicit, weight)?;
    Ok(task_started(s, ctx, req.lb_id))
}

/// A target's own Weight wins over the call's Weight.
fn set_weights(
    bound: &mut [Target],
    targets: &[Target],
    explicit: &[bool],
    weight: Option<i64>,
) -> ApiResult<()> {
    for (i, t) in targets.iter().enumerate() {
        if !bound.iter().any(|b| b.key() == t.key()) {
            return Err(ApiError::new(
                TARGET_NOT_BOUND_CODE,
                format!("the target {:?} is not bound", t.key()),
            ));
        }
        if !explicit.get(i).copied().unwrap_or(false) && weight.is_none() {
            return Err(ApiError::new(
                "MissingParameter",
                "Weight: give it per target or for the call",
            ));
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let w = if explicit.get(i).copied().unwrap_or(false) {
            t.weight
        } else {
            weight.unwrap_or(t.weight)
        };
        for b in bound.iter_mut().filter(|b| b.key() == t.key()) {
            b.weight = w;
        }
    }
    Ok(())
}

struct WeightRule {
    listener_id: String,
    loc: Option<String>,
    domain: Option<String>,
    url: Option<String>,
    weight: Option<i64>,
    targets: Vec<Target>,
    explicit: Vec<bool>,
}

struct BatchItem {
    listener_id: String,
    loc: Option<String>,
    target: Target,
}

fn parse_batch(p: &Obj) -> ApiResult<(String, Vec<BatchItem>)> {
    p.only(&["LoadBalancerId", "Targets"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let items = p
        .objs("Targets", MAX_BATCH_TARGETS)?
        .ok_or_else(|| p.missing("Targets"))?;
    if items.is_empty() {
        return Err(p.missing("Targets"));
    }
    let mut out: Vec<BatchItem> = Vec::new();
    for (path, m) in &items {
        let t = Obj::new(m, path);
        t.only(&[
            "ListenerId",
            "Port",
            "InstanceId",
            "EniIp",
            "Weight",
            "LocationId",
            "Tag",
        ])?;
        let item = BatchItem {
            listener_id: t.req_str("ListenerId")?,
            loc: t.str("LocationId")?,
            target: parse_target(&t)?,
        };
        if out.iter().any(|o| {
            o.listener_id == item.listener_id
                && o.loc == item.loc
                && o.target.key() == item.target.key()
        }) {
            return Err(ApiError::new(
                "InvalidParameterValue.Duplicate",
                format!("{path}: the target is given twice"),
            ));
        }
        out.push(item);
    }
    Ok((lb_id, out))
}

/// Checks every item's listener and rule before anything changes: a batch applies whole or not at all.
fn check_batch(
    s: &mut SimState,
    ctx: &Ctx,
    lb_id: &str,
    items: &[BatchItem],
    p: &Obj,
) -> ApiResult<()> {
    let lb = writable(s, lb_id, ctx.now)?;
    for it in items {
        let l = listener_mut(lb, &it.listener_id)?;
        if l.is_l7() && it.loc.is_none() {
            return Err(ApiError::new(
                "MissingParameter",
                "Targets.LocationId is required for layer-7 listeners",
            ));
        }
        bound_targets(l, it.loc.as_deref(), None, None, p)?;
    }
    Ok(())
}

pub(crate) fn batch_register(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let (lb_id, items) = parse_batch(&p)?;
    check_batch(s, ctx, &lb_id, &items, &p)?;
    let max = s.limits.targets_per_rule;
    // Quotas are checked on a copy so that a refused batch changes nothing.
    let lb = s.lb_mut(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
    let mut listeners = lb.listeners.clone();
    for it in items {
        let l = listeners
            .iter_mut()
            .find(|l| l.id == it.listener_id)
            .ok_or_else(|| super::listeners::listener_not_found(&it.listener_id))?;
        let bound = bound_targets(l, it.loc.as_deref(), None, None, &p)?;
        add_targets(bound, vec![it.target], max)?;
    }
    lb.listeners = listeners;
    Ok(Outcome::new(
        json!({"FailListenerIdSet": [], "Message": ""}),
        vec![lb_id],
    ))
}

pub(crate) fn batch_deregister(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let (lb_id, items) = parse_batch(&p)?;
    check_batch(s, ctx, &lb_id, &items, &p)?;
    let lb = s.lb_mut(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
    for it in items {
        let l = listener_mut(lb, &it.listener_id)?;
        let bound = bound_targets(l, it.loc.as_deref(), None, None, &p)?;
        bound.retain(|b| b.key() != it.target.key());
    }
    Ok(Outcome::new(
        json!({"FailListenerIdSet": [], "Message": ""}),
        vec![lb_id],
    ))
}

pub(crate) fn batch_modify_weight(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "ModifyList"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let list = p
        .objs("ModifyList", MAX_WEIGHT_RULES)?
        .ok_or_else(|| p.missing("ModifyList"))?;
    let mut parsed: Vec<WeightRule> = Vec::new();
    let mut total = 0;
    for (path, m) in &list {
        let r = Obj::new(m, path);
        r.only(&[
            "ListenerId",
            "Targets",
            "LocationId",
            "Domain",
            "Url",
            "Weight",
        ])?;
        let targets = parse_targets(&r, MAX_WEIGHT_TARGETS_PER_RULE)?;
        total += targets.len();
        let explicit = r
            .objs("Targets", MAX_WEIGHT_TARGETS_PER_RULE)?
            .unwrap_or_default()
            .iter()
            .map(|(_, t)| t.get("Weight").is_some_and(|w| !w.is_null()))
            .collect();
        parsed.push(WeightRule {
            listener_id: r.req_str("ListenerId")?,
            loc: r.str("LocationId")?,
            domain: r.str("Domain")?,
            url: r.str("Url")?,
            weight: r.int_in("Weight", 0, 100)?,
            targets,
            explicit,
        });
    }
    if total > MAX_BATCH_TARGETS {
        return Err(ApiError::new(
            "LimitExceeded",
            format!("at most {MAX_BATCH_TARGETS} targets per call"),
        ));
    }
    let lb = writable(s, &lb_id, ctx.now)?;
    let mut listeners = lb.listeners.clone();
    for w in &parsed {
        let l = listeners
            .iter_mut()
            .find(|l| l.id == w.listener_id)
            .ok_or_else(|| super::listeners::listener_not_found(&w.listener_id))?;
        let bound = bound_targets(
            l,
            w.loc.as_deref(),
            w.domain.as_deref(),
            w.url.as_deref(),
            &p,
        )?;
        set_weights(bound, &w.targets, &w.explicit, w.weight)?;
    }
    lb.listeners = listeners;
    Ok(task_started(s, ctx, lb_id))
}
