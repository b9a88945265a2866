//! An in-memory CLB that applies a Plan to a CloudView the way the API would, strict enough
//! to fail on plans the real API would reject (port clash, duplicate rule, SNI off, a
//! dangling reference). Drives the idempotence proptest and the golden tests.

use std::cell::Cell;

use super::*;

thread_local! {
    // Per thread (each test runs on its own), so ids in golden output are deterministic.
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

fn fresh(prefix: &str) -> String {
    let n = NEXT_ID.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    format!("{prefix}-sim{n}")
}

/// The VIP the simulated CreateLoadBalancer hands out.
pub const SIM_VIP: &str = "10.0.0.100";

fn listener_mut<'a>(lb: &'a mut CloudLb, r: &ListenerRef) -> Result<&'a mut CloudListener, String> {
    lb.listeners
        .iter_mut()
        .find(|l| r.names(l))
        .ok_or_else(|| format!("listener {r} not found"))
}

fn rule_mut<'a>(lb: &'a mut CloudLb, r: &RuleRef) -> Result<&'a mut CloudRule, String> {
    let default = default_domain(lb).map(str::to_string);
    if resolve_domain(&r.key.domain, default.as_deref()) == Domain::Default {
        return Err("default domain unresolved".into());
    }
    let listener = listener_mut(lb, &r.listener)?;
    listener
        .rules
        .iter_mut()
        .find(|cr| r.names(cr, default.as_deref()))
        .ok_or_else(|| format!("rule {r} not found"))
}

/// The API refuses to delete what a redirect joins: `joins(source listener id, redirect)`.
fn redirect_guard(
    lb: &CloudLb,
    joins: impl Fn(&str, &CloudRedirect) -> bool,
) -> Result<(), String> {
    for l in &lb.listeners {
        for r in &l.rules {
            if let Some(to) = r.redirect.as_ref().filter(|to| joins(&l.id, to)) {
                return Err(format!(
                    "{} is part of a redirect to {}; DeleteRewrite first",
                    r.location_id, to.target_location_id
                ));
            }
        }
    }
    Ok(())
}

/// ManualRewrite / DeleteRewrite of `pairs` as the API checks them: rules exist, one
/// source and target listener per call, no chains, no self-redirect; a delete must find
/// the pair.
fn rewrite(lb: &mut CloudLb, pairs: &[RedirectPair], add: bool) -> Result<(), String> {
    if pairs.is_empty() || pairs.len() > redirects::MAX_REWRITE_PAIRS {
        return Err(format!("{} redirect pairs in one call", pairs.len()));
    }
    for p in pairs {
        if p.source.listener != pairs[0].source.listener
            || p.target.listener != pairs[0].target.listener
        {
            return Err("redirect pairs of several listeners in one call".into());
        }
        let target_listener = listener_mut(lb, &p.target.listener)?.id.clone();
        let target = rule_mut(lb, &p.target)?;
        if add && target.redirect.is_some() {
            return Err(format!(
                "RewriteAlreadyExist: target {} redirects",
                p.target
            ));
        }
        let target_location = target.location_id.clone();
        let source = rule_mut(lb, &p.source)?;
        if add {
            if source.redirect.is_some() || source.location_id == target_location {
                return Err(format!("RewriteAlreadyExist: {}", p.source));
            }
            source.redirect = Some(CloudRedirect {
                target_listener_id: target_listener,
                target_location_id: target_location,
                code: p.code,
                take_url: p.take_url,
            });
        } else {
            match &source.redirect {
                Some(to) if to.target_location_id == target_location => source.redirect = None,
                _ => return Err(format!("SomeRewriteNotFound: {}", p.source)),
            }
        }
    }
    if add {
        // B cannot redirect on once A→B: no source may be another pair's target.
        redirect_guard(lb, |_, to| {
            lb.listeners.iter().any(|l| {
                l.rules
                    .iter()
                    .any(|r| r.location_id == to.target_location_id && r.redirect.is_some())
            })
        })?;
    }
    Ok(())
}

pub fn apply_to_view(plan: &Plan, view: &mut CloudView) -> Result<(), String> {
    for action in &plan.actions {
        if let Action::CreateLoadBalancer { spec } = action {
            if view.load_balancer.is_some() {
                return Err("CreateLoadBalancer with a CLB present".into());
            }
            view.load_balancer = Some(CloudLb {
                id: fresh("lb"),
                name: spec.name.clone(),
                lb_type: spec.lb_type,
                vips: vec![SIM_VIP.to_string()],
                domain: None,
                status: 1,
                tags: spec.tags.clone(),
                listeners: Vec::new(),
                attributes: Default::default(),
            });
            continue;
        }
        if let Action::DeleteLoadBalancer { lb_id } = action {
            match &view.load_balancer {
                Some(lb) if &lb.id == lb_id => view.load_balancer = None,
                _ => return Err(format!("DeleteLoadBalancer {lb_id}: not found")),
            }
            continue;
        }
        let lb = view
            .load_balancer
            .as_mut()
            .ok_or_else(|| format!("{action}: no CLB"))?;
        match action {
            Action::CreateLoadBalancer { .. } | Action::DeleteLoadBalancer { .. } => {}
            Action::TagResources { tags } => {
                lb.tags.extend(tags.clone());
            }
            Action::ModifyLoadBalancerAttributes {
                delete_protect,
                pass_to_target,
            } => {
                if delete_protect.is_none() && pass_to_target.is_none() {
                    return Err("ModifyLoadBalancerAttributes that changes nothing".into());
                }
                if let Some(v) = delete_protect {
                    lb.attributes.delete_protect = *v;
                }
                if let Some(v) = pass_to_target {
                    lb.attributes.pass_to_target = *v;
                }
            }
            Action::SetSecurityGroups { security_groups } => {
                lb.attributes.security_groups = security_groups.clone();
            }
            Action::UnTagResources { keys } => {
                for k in keys {
                    lb.tags.remove(k);
                }
            }
            Action::DeleteListeners { listeners } => {
                if listeners.len() > MAX_DELETE_LISTENERS {
                    return Err("too many listeners in one delete".into());
                }
                for r in listeners {
                    let id = r.id.clone().ok_or("DeleteListeners without id")?;
                    redirect_guard(lb, |l, to| l == id || to.target_listener_id == id)?;
                    let before = lb.listeners.len();
                    lb.listeners.retain(|l| l.id != id);
                    if lb.listeners.len() == before {
                        return Err(format!("DeleteListeners {id}: not found"));
                    }
                }
            }
            Action::CreateListeners {
                protocol,
                ports,
                names,
                certificate,
                sni,
            } => {
                if ports.len() != names.len() {
                    return Err("ports and names differ in length".into());
                }
                if *protocol == Protocol::Https && !*sni && certificate.is_none() {
                    return Err("non-SNI HTTPS listener without certificate".into());
                }
                for (port, name) in ports.iter().zip(names) {
                    if lb.listeners.iter().any(|l| l.port == *port) {
                        return Err(format!("PortCheckFailed: {port}"));
                    }
                    lb.listeners.push(CloudListener {
                        id: fresh("lbl"),
                        protocol: *protocol,
                        port: *port,
                        name: name.clone(),
                        certificate: certificate.clone(),
                        sni: *sni,
                        keepalive: None,
                        rules: Vec::new(),
                    });
                }
            }
            Action::ModifyListener {
                listener,
                certificate,
                sni_on,
            } => {
                let l = listener_mut(lb, listener)?;
                if let Some(c) = certificate {
                    l.certificate = Some(c.clone());
                }
                if *sni_on {
                    l.sni = true;
                }
            }
            Action::CreateRules { listener, rules } => {
                let default = default_domain(lb).map(str::to_string);
                let l = listener_mut(lb, listener)?;
                for r in rules {
                    let domain = match resolve_domain(&r.key.domain, default.as_deref()) {
                        Domain::Name(n) => n,
                        Domain::Default => return Err("default domain unresolved".into()),
                    };
                    if l.rules
                        .iter()
                        .any(|x| x.domain == domain && x.url == r.key.url)
                    {
                        return Err(format!("duplicate rule {domain}{}", r.key.url));
                    }
                    if r.certificate.is_some() && !l.sni {
                        return Err("rule certificate on a non-SNI listener".into());
                    }
                    // The flag belongs to the domain: a new rule of the default domain is default.
                    let default_server = l.rules.is_empty()
                        || r.default_server
                        || l.rules
                            .iter()
                            .any(|x| x.domain == domain && x.default_server);
                    if r.default_server {
                        for x in &mut l.rules {
                            x.default_server = false;
                        }
                    }
                    l.rules.push(CloudRule {
                        location_id: fresh("loc"),
                        domain,
                        url: r.key.url.clone(),
                        certificate: r.certificate.clone(),
                        default_server,
                        attributes: Default::default(),
                        targets: Vec::new(),
                        redirect: None,
                    });
                }
            }
            Action::ModifyDomainAttributes {
                listener,
                domain,
                certificate,
            } => {
                let default = default_domain(lb).map(str::to_string);
                let Domain::Name(domain) = resolve_domain(domain, default.as_deref()) else {
                    return Err("default domain unresolved".into());
                };
                let l = listener_mut(lb, listener)?;
                if !l.sni {
                    return Err("domain certificate on a non-SNI listener".into());
                }
                let mut hit = false;
                for r in l.rules.iter_mut().filter(|r| r.domain == domain) {
                    r.certificate = Some(certificate.clone());
                    hit = true;
                }
                if !hit {
                    return Err(format!("domain {domain} not found"));
                }
            }
            Action::ModifyRule { rule, attributes } => {
                let https = listener_mut(lb, &rule.listener)?.protocol == Protocol::Https;
                if attributes.forward_type.is_some() && !https {
                    return Err("ForwardType on a non-HTTPS listener".into());
                }
                let r = rule_mut(lb, rule)?;
                let (have, want) = (&mut r.attributes, attributes);
                fn set<T: Clone>(have: &mut Option<T>, want: &Option<T>) {
                    if want.is_some() {
                        have.clone_from(want);
                    }
                }
                set(&mut have.scheduler, &want.scheduler);
                set(&mut have.session_expire_time, &want.session_expire_time);
                set(&mut have.forward_type, &want.forward_type);
                let (h, w) = (&mut have.health_check, &want.health_check);
                set(&mut h.enable, &w.enable);
                set(&mut h.interval_time, &w.interval_time);
                set(&mut h.timeout, &w.timeout);
                set(&mut h.health_num, &w.health_num);
                set(&mut h.unhealth_num, &w.unhealth_num);
                set(&mut h.http_code, &w.http_code);
                set(&mut h.http_check_path, &w.http_check_path);
                set(&mut h.http_check_domain, &w.http_check_domain);
                set(&mut h.http_check_method, &w.http_check_method);
                set(&mut h.source_ip_type, &w.source_ip_type);
                if let (Some(i), Some(t)) = (h.interval_time, h.timeout) {
                    if i <= t {
                        return Err("TimeOut must be less than IntervalTime".into());
                    }
                }
            }
            Action::SetKeepalive { listener, enable } => {
                listener_mut(lb, listener)?.keepalive = Some(*enable);
            }
            Action::ManualRewrite { pairs } => rewrite(lb, pairs, true)?,
            Action::DeleteRewrite { pairs } => rewrite(lb, pairs, false)?,
            Action::SetDefaultServer { listener, domain } => {
                let default = default_domain(lb).map(str::to_string);
                let Domain::Name(domain) = resolve_domain(domain, default.as_deref()) else {
                    return Err("default domain unresolved".into());
                };
                let l = listener_mut(lb, listener)?;
                if !l.rules.iter().any(|r| r.domain == domain) {
                    return Err(format!("domain {domain} not found"));
                }
                for r in &mut l.rules {
                    r.default_server = r.domain == domain;
                }
            }
            Action::RegisterTargets { targets } => {
                if targets.len() > MAX_BATCH_TARGETS {
                    return Err("register batch over 500".into());
                }
                for t in targets {
                    let r = rule_mut(lb, &t.rule)?;
                    if r.targets.iter().any(|x| x.key == t.target) {
                        return Err(format!("target {} already bound", t.target));
                    }
                    r.targets.push(CloudTarget {
                        key: t.target.clone(),
                        weight: t.weight,
                    });
                }
            }
            Action::ModifyTargetWeight { targets } => {
                for t in targets {
                    let r = rule_mut(lb, &t.rule)?;
                    let bound = r
                        .targets
                        .iter_mut()
                        .find(|x| x.key == t.target)
                        .ok_or_else(|| format!("target {} not bound", t.target))?;
                    bound.weight = t.weight;
                }
            }
            Action::DeregisterTargets { targets } => {
                if targets.len() > MAX_BATCH_TARGETS {
                    return Err("deregister batch over 500".into());
                }
                for t in targets {
                    let r = rule_mut(lb, &t.rule)?;
                    let before = r.targets.len();
                    r.targets.retain(|x| x.key != t.target);
                    if r.targets.len() == before {
                        return Err(format!("target {} not bound", t.target));
                    }
                }
            }
            Action::DeleteRules {
                listener,
                location_ids,
                ..
            } => {
                for id in location_ids {
                    redirect_guard(lb, |_, to| to.target_location_id == *id)?;
                }
                let l = listener_mut(lb, listener)?;
                for id in location_ids {
                    if l.rules
                        .iter()
                        .any(|r| &r.location_id == id && r.redirect.is_some())
                    {
                        return Err(format!(
                            "DeleteRule {id}: it redirects; DeleteRewrite first"
                        ));
                    }
                    let before = l.rules.len();
                    l.rules.retain(|r| &r.location_id != id);
                    if l.rules.len() == before {
                        return Err(format!("rule {id} not found"));
                    }
                }
                // The API promotes the earliest remaining domain when the default one left
                // (tencent-cloud-more.md §1.2); rules here are in creation order.
                if !l.rules.iter().any(|r| r.default_server) {
                    if let Some(first) = l.rules.first().map(|r| r.domain.clone()) {
                        for r in l.rules.iter_mut().filter(|r| r.domain == first) {
                            r.default_server = true;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Applies `plan` one action at a time as [`apply_to_view`] does, refusing (`LimitExceeded`)
/// an action after which the CLB would exceed `quota`, as the API does. The CLB after each
/// action, so a test can check what holds at every step.
pub fn apply_within(
    plan: &Plan,
    view: &mut CloudView,
    quota: &crate::model::limits::Quota,
) -> Result<Vec<CloudView>, String> {
    let mut steps = Vec::new();
    for action in &plan.actions {
        let mut next = view.clone();
        let one = Plan {
            actions: vec![action.clone()],
            ..plan.clone()
        };
        apply_to_view(&one, &mut next)?;
        if let Some(lb) = &next.load_balancer {
            let rules = lb.listeners.iter().flat_map(|l| &l.rules);
            if lb.listeners.len() > quota.listeners_per_lb
                || lb
                    .listeners
                    .iter()
                    .any(|l| l.rules.len() > quota.rules_per_listener)
                || rules
                    .into_iter()
                    .any(|r| r.targets.len() > quota.targets_per_rule)
            {
                return Err(format!("LimitExceeded: {action}"));
            }
        }
        *view = next.clone();
        steps.push(next);
    }
    Ok(steps)
}
