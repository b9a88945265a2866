//! Redirects between layer-7 rules (tke-annotations.md §2.2, SDK): AutoRewrite,
//! ManualRewrite, DeleteRewrite, DescribeRewrite, and the guard that a rule or listener a
//! redirect joins cannot be deleted until the redirect is.

use serde_json::{json, Value};

use super::clb::{lb_not_found, task_started, writable, Ctx, Outcome};
use super::listeners::{listener_not_found, location_not_found};
use super::model::{rule_json, LoadBalancer, Rule, SimState};
use super::params::{ApiError, ApiResult, Obj};

/// One redirect: every request the source rule matches is answered with `code` pointing at
/// the target rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub source_listener: String,
    pub source_location: String,
    pub target_listener: String,
    pub target_location: String,
    pub code: i64,
    pub take_url: bool,
    /// `Manual` or `Auto`.
    pub kind: &'static str,
}

/// Redirect status codes the API takes [SDK].
const CODES: [i64; 3] = [301, 302, 307];
/// Default code of AutoRewrite when none is given. ASSUMPTION: the SDK does not say; TKE's
/// auto-rewrite defaults to 302 per a third-party page (tke-annotations.md §2.1), the API's
/// own default is taken to be 301 (the console's).
const AUTO_DEFAULT_CODE: i64 = 301;
/// Most redirect pairs per ManualRewrite / DeleteRewrite. ASSUMPTION: the SDK documents no
/// maximum; one CreateRule takes 50 rules, so 50 redirects per call.
const MAX_REWRITE_INFOS: usize = 50;

/// The API's answer to deleting something a redirect joins. ASSUMPTION
/// (tencent-cloud-more.md §5 (e), UNVERIFIED): `FailedOperation`.
pub(crate) fn rewrite_blocks(what: &str) -> ApiError {
    ApiError::new(
        "FailedOperation",
        format!("{what} is part of a redirect; DeleteRewrite first"),
    )
}

/// The first redirect `joins` says takes part in what is being deleted, as the refusal.
fn guard(lb: &LoadBalancer, what: &str, joins: impl Fn(&Rewrite) -> bool) -> ApiResult<()> {
    match lb.rewrites.iter().find(|r| joins(r)) {
        Some(r) => Err(rewrite_blocks(&format!(
            "{what} ({}/{} -> {}/{})",
            r.source_listener, r.source_location, r.target_listener, r.target_location
        ))),
        None => Ok(()),
    }
}

/// Refuses deleting the rules `locations` (of any listener) while a redirect joins one.
pub(crate) fn guard_rules(lb: &LoadBalancer, locations: &[String]) -> ApiResult<()> {
    guard(lb, "Location", |r| {
        locations.contains(&r.source_location) || locations.contains(&r.target_location)
    })
}

/// Refuses deleting the listeners `ids` while a redirect starts or ends on one (TKE E4006).
pub(crate) fn guard_listeners(lb: &LoadBalancer, ids: &[String]) -> ApiResult<()> {
    guard(lb, "Listener", |r| {
        ids.contains(&r.source_listener) || ids.contains(&r.target_listener)
    })
}

fn rule<'a>(lb: &'a LoadBalancer, listener: &str, location: &str) -> ApiResult<&'a Rule> {
    let l = lb
        .listeners
        .iter()
        .find(|l| l.id == listener)
        .ok_or_else(|| listener_not_found(listener))?;
    l.rules
        .iter()
        .find(|r| r.id == location)
        .ok_or_else(|| location_not_found(location))
}

fn check_code(p: &Obj, name: &str, code: i64) -> ApiResult<()> {
    if CODES.contains(&code) {
        Ok(())
    } else {
        Err(p.invalid_value(name, "must be 301, 302 or 307"))
    }
}

/// One `RewriteInfos` entry of ManualRewrite / DeleteRewrite.
struct Pair {
    source: String,
    target: String,
    code: Option<i64>,
    take_url: Option<bool>,
    source_domain: Option<String>,
}

/// The `RewriteInfos` pairs of ManualRewrite / DeleteRewrite.
fn pairs(p: &Obj) -> ApiResult<Vec<Pair>> {
    let mut out = Vec::new();
    for (path, m) in p
        .objs("RewriteInfos", MAX_REWRITE_INFOS)?
        .ok_or_else(|| p.missing("RewriteInfos"))?
    {
        let i = Obj::new(m, &path);
        i.only(&[
            "SourceLocationId",
            "TargetLocationId",
            "RewriteCode",
            "TakeUrl",
            "SourceDomain",
        ])?;
        let code = i.int("RewriteCode")?;
        if let Some(c) = code {
            check_code(&i, "RewriteCode", c)?;
        }
        out.push(Pair {
            source: i.req_str("SourceLocationId")?,
            target: i.req_str("TargetLocationId")?,
            code,
            take_url: i.bool("TakeUrl")?,
            source_domain: i.str("SourceDomain")?,
        });
    }
    if out.is_empty() {
        return Err(p.missing("RewriteInfos"));
    }
    Ok(out)
}

/// The request of ManualRewrite and DeleteRewrite: CLB, source and target listener, pairs.
fn request(p: &Obj) -> ApiResult<(String, String, String, Vec<Pair>)> {
    p.only(&[
        "LoadBalancerId",
        "SourceListenerId",
        "TargetListenerId",
        "RewriteInfos",
    ])?;
    Ok((
        p.req_str("LoadBalancerId")?,
        p.req_str("SourceListenerId")?,
        p.req_str("TargetListenerId")?,
        pairs(p)?,
    ))
}

pub(crate) fn manual_rewrite(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let (lb_id, source, target, infos) = request(&p)?;
    let lb = writable(s, &lb_id, ctx.now)?;
    let mut new = Vec::new();
    for Pair {
        source: src,
        target: tgt,
        code,
        take_url,
        source_domain,
    } in infos
    {
        let src_rule = rule(lb, &source, &src)?;
        rule(lb, &target, &tgt)?;
        if code.is_some() && (take_url.is_none() || source_domain.is_none()) {
            return Err(p.missing("RewriteInfos.TakeUrl/SourceDomain (required with RewriteCode)"));
        }
        if let Some(d) = &source_domain {
            if !src_rule.has_domain(d) {
                return Err(p.invalid_value("SourceDomain", "is not the source rule's domain"));
            }
        }
        if src == tgt {
            return Err(ApiError::new(
                "InvalidParameter",
                "a rule cannot redirect to itself",
            ));
        }
        // A→B exists: A cannot also go elsewhere; B cannot redirect on (tke-annotations §2.1).
        let chained = lb.rewrites.iter().chain(new.iter()).any(|r: &Rewrite| {
            r.source_location == src || r.source_location == tgt || r.target_location == src
        });
        if chained {
            return Err(ApiError::new(
                "InvalidParameter.RewriteAlreadyExist",
                format!("Location ({src}) already takes part in a redirect"),
            ));
        }
        new.push(Rewrite {
            source_listener: source.clone(),
            source_location: src,
            target_listener: target.clone(),
            target_location: tgt,
            code: code.unwrap_or(AUTO_DEFAULT_CODE),
            take_url: take_url.unwrap_or(false),
            kind: "Manual",
        });
    }
    lb.rewrites.extend(new);
    Ok(task_started(s, ctx, lb_id))
}

pub(crate) fn delete_rewrite(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    let (lb_id, source, target, infos) = request(&p)?;
    let lb = writable(s, &lb_id, ctx.now)?;
    for pair in &infos {
        let found = lb.rewrites.iter().any(|r| {
            r.source_listener == source
                && r.target_listener == target
                && r.source_location == pair.source
                && r.target_location == pair.target
        });
        if !found {
            return Err(ApiError::new(
                "InvalidParameter.SomeRewriteNotFound",
                format!("redirect {} -> {} not found", pair.source, pair.target),
            ));
        }
    }
    lb.rewrites.retain(|r| {
        !infos
            .iter()
            .any(|p| r.source_location == p.source && r.target_location == p.target)
    });
    Ok(task_started(s, ctx, lb_id))
}

/// `TakeUrls`: an array of booleans (Obj has no typed accessor for those).
fn bools(p: &Obj, name: &str) -> ApiResult<Vec<bool>> {
    let Some((_, v)) = p.entries().find(|(k, _)| *k == name) else {
        return Ok(Vec::new());
    };
    v.as_array()
        .map(|a| a.iter().map(Value::as_bool).collect::<Option<Vec<bool>>>())
        .and_then(|b| b)
        .ok_or_else(|| p.invalid_value(name, "must be an array of booleans"))
}

/// AutoRewrite: every rule (of `Domains`, or all) of the HTTPS:443 listener gets a rule with
/// the same domain and URL on HTTP:80 (created with the listener when missing) redirecting
/// to it; `RewriteCodes[i]` / `TakeUrls[i]` go with `Domains[i]`.
pub(crate) fn auto_rewrite(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerId",
        "Domains",
        "RewriteCodes",
        "TakeUrls",
    ])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let domains = p.strs("Domains", 1000)?.unwrap_or_default();
    let codes = p.ints("RewriteCodes", 1000)?.unwrap_or_default();
    let take_urls = bools(&p, "TakeUrls")?;
    for c in &codes {
        check_code(&p, "RewriteCodes", *c)?;
    }
    // Ids for whatever may be created, drawn before the CLB is borrowed.
    let wanted = s
        .lb(&lb_id)
        .map_or(0, |lb| lb.listeners.iter().map(|l| l.rules.len()).sum());
    let mut ids: Vec<(String, u64)> = (0..wanted)
        .map(|_| (s.new_id("loc"), s.next_seq()))
        .collect();
    let new_listener_id = s.new_id("lbl");
    let lb = writable(s, &lb_id, ctx.now)?;
    let https = lb
        .listeners
        .iter()
        .find(|l| l.id == listener_id)
        .ok_or_else(|| listener_not_found(&listener_id))?;
    if https.protocol != "HTTPS" {
        return Err(ApiError::new(
            "InvalidParameter.ProtocolCheckFailed",
            "AutoRewrite needs an HTTPS listener",
        ));
    }
    if https.port != 443 {
        return Err(ApiError::new(
            "InvalidParameter.PortCheckFailed",
            "AutoRewrite needs the HTTPS:443 listener",
        ));
    }
    let sources: Vec<Rule> = https
        .rules
        .iter()
        .filter(|r| domains.is_empty() || domains.iter().any(|d| r.has_domain(d)))
        .cloned()
        .collect();
    if sources.is_empty() {
        return Err(location_not_found("no rule of the given domains"));
    }
    if let Some(src) = sources.iter().find(|src| {
        lb.rewrites
            .iter()
            .any(|r| r.target_location == src.id || r.source_location == src.id)
    }) {
        return Err(ApiError::new(
            "InvalidParameter.RewriteAlreadyExist",
            format!("Location ({}) already takes part in a redirect", src.id),
        ));
    }
    let index = |r: &Rule| domains.iter().position(|d| r.has_domain(d));
    let template = https.clone();
    let http = match lb.listeners.iter().position(|l| l.port == 80) {
        Some(i) if lb.listeners[i].protocol != "HTTP" => {
            return Err(ApiError::new(
                "InvalidParameter.PortCheckFailed",
                "port 80 holds a listener that is not HTTP",
            ))
        }
        Some(i) => i,
        None => {
            let mut l = template;
            l.id = new_listener_id;
            l.protocol = "HTTP".into();
            l.port = 80;
            l.name = String::new();
            l.certificate = None;
            l.sni = false;
            l.rules.clear();
            l.targets.clear();
            lb.listeners.push(l);
            lb.listeners.len() - 1
        }
    };
    let http_id = lb.listeners[http].id.clone();
    let mut redirects = Vec::new();
    for src in &sources {
        let rules = &mut lb.listeners[http].rules;
        let existing = rules
            .iter()
            .find(|r| r.domain() == src.domain() && r.url == src.url)
            .map(|r| r.id.clone());
        let mirror = match existing {
            Some(id) => id,
            None => {
                let (id, seq) = ids.pop().ok_or_else(|| location_not_found(&src.id))?;
                let mut r = src.clone();
                r.id = id.clone();
                r.seq = seq;
                r.targets.clear();
                r.certificate = None;
                r.default_server = rules.is_empty();
                rules.push(r);
                id
            }
        };
        let i = index(src);
        redirects.push(Rewrite {
            source_listener: http_id.clone(),
            source_location: mirror,
            target_listener: listener_id.clone(),
            target_location: src.id.clone(),
            code: i
                .and_then(|i| codes.get(i).copied())
                .unwrap_or(AUTO_DEFAULT_CODE),
            take_url: i.and_then(|i| take_urls.get(i).copied()).unwrap_or(false),
            kind: "Auto",
        });
    }
    lb.rewrites.extend(redirects);
    Ok(task_started(s, ctx, lb_id))
}

/// `RewriteTarget` of a redirect's source rule, as DescribeRewrite and DescribeListeners
/// show it [SDK `RuleOutput.RewriteTarget`].
fn rewrite_target(w: &Rewrite) -> Value {
    json!({
        "TargetListenerId": w.target_listener,
        "TargetLocationId": w.target_location,
        "RewriteCode": w.code,
        "TakeUrl": w.take_url,
        "RewriteType": w.kind,
    })
}

/// A listener as DescribeListeners shows it, with each redirecting rule's `RewriteTarget`.
pub(crate) fn with_rewrite_targets(lb: &LoadBalancer, mut listener: Value) -> Value {
    let id = listener["ListenerId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(rules) = listener["Rules"].as_array_mut() {
        for rule in rules {
            let loc = rule["LocationId"].as_str().unwrap_or_default();
            if let Some(w) = lb
                .rewrites
                .iter()
                .find(|w| w.source_listener == id && w.source_location == loc)
            {
                rule["RewriteTarget"] = rewrite_target(w);
            }
        }
    }
    listener
}

pub(crate) fn describe_rewrite(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "SourceListenerIds", "SourceLocationIds"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listeners = p.strs("SourceListenerIds", 1000)?.unwrap_or_default();
    let locations = p.strs("SourceLocationIds", 1000)?.unwrap_or_default();
    let lb = s.lb(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
    let mut set: Vec<Value> = Vec::new();
    for w in &lb.rewrites {
        if !listeners.is_empty() && !listeners.contains(&w.source_listener) {
            continue;
        }
        if !locations.is_empty() && !locations.contains(&w.source_location) {
            continue;
        }
        let Ok(r) = rule(lb, &w.source_listener, &w.source_location) else {
            continue;
        };
        let mut out = rule_json(&w.source_listener, r);
        out["RewriteTarget"] = rewrite_target(w);
        set.push(out);
    }
    Ok(Outcome::new(json!({"RewriteSet": set}), vec![lb_id]))
}
