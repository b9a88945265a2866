//! The four invariants of issue 8, judged from clb-sim's call log and state, kube-sim's
//! Ingresses and the harness's truth — never from what the function says about itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{variant_rules, Expect, Kept, Mark, Truth, ADOPTABLE, SLOTS};
use super::world::{
    has_tag, is_write, tag, World, CLUSTER_ID, OUR_LISTENER, TAG_CLUSTER, TAG_CREATED_BY, TAG_UID,
};
use crate::clb_sim::LoadBalancer;

/// The invariant a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// No write names a CLB not ours or a listener we did not create; every create is tagged.
    I1,
    /// A CLB of a live Ingress that stays ours is never deleted, untagged or emptied.
    I2,
    /// After quiet, the cloud matches the Ingresses.
    I3,
    /// After quiet, no cloud write.
    I4,
}

pub const INVARIANTS: [Invariant; 4] = [Invariant::I1, Invariant::I2, Invariant::I3, Invariant::I4];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub what: String,
}

fn v(invariant: Invariant, what: String) -> Violation {
    Violation { invariant, what }
}

/// CLB ids a call names: the ones clb-sim saw it touch, and any `lb-…` in its parameters
/// (Tag API resource names included).
fn named_lbs(params: &Value, out: &mut BTreeSet<String>) {
    match params {
        Value::String(s) => {
            if s.starts_with("lb-") {
                out.insert(s.clone());
            } else if let Some(i) = s.find("clb/lb-") {
                out.insert(s[i + 4..].to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| named_lbs(x, out)),
        Value::Object(o) => o.values().for_each(|x| named_lbs(x, out)),
        _ => {}
    }
}

fn strings(params: &Value, out: &mut BTreeSet<String>) {
    match params {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The `TagKey → TagValue` pairs of a `Tags` parameter.
fn tags_param(params: &Value) -> BTreeMap<String, String> {
    params["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["TagKey"].as_str()?.to_string(),
                t["TagValue"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

/// I1 over the function's calls from index `from` on.
pub fn i1(w: &World, from: usize) -> Vec<Violation> {
    let mut out = Vec::new();
    for (idx, c) in w.function_calls(from) {
        if !is_write(&c.action) {
            continue;
        }
        // A create names no CLB: what clb-sim lists for it is the CLB it answered with (a
        // replayed ClientToken answers the same CLB again without changing it).
        let mut lbs: BTreeSet<String> = if c.action == "CreateLoadBalancer" {
            BTreeSet::new()
        } else {
            c.lb_ids.iter().cloned().collect()
        };
        named_lbs(&c.params, &mut lbs);
        for lb in &lbs {
            if w.truth.untouchable.contains(lb) {
                out.push(v(
                    Invariant::I1,
                    format!(
                        "call #{idx} {} ({}) names {lb}, a CLB that is not ours",
                        c.action, c.code
                    ),
                ));
            }
            if let Some(at) = w.truth.disowned.get(lb) {
                if idx >= *at {
                    out.push(v(
                        Invariant::I1,
                        format!(
                            "call #{idx} {} ({}) names {lb} after the user removed our cluster tag from it",
                            c.action, c.code
                        ),
                    ));
                }
            }
        }
        let mut s = BTreeSet::new();
        strings(&c.params, &mut s);
        for l in s
            .iter()
            .filter(|x| w.truth.foreign_listeners.contains_key(*x))
        {
            out.push(v(
                Invariant::I1,
                format!(
                    "call #{idx} {} ({}) names listener {l}, which we did not create",
                    c.action, c.code
                ),
            ));
        }
        if c.action == "CreateLoadBalancer" {
            let tags = tags_param(&c.params);
            let ok = tags.get(TAG_CREATED_BY).map(String::as_str) == Some("yes")
                && tags.get(TAG_CLUSTER).map(String::as_str) == Some(CLUSTER_ID)
                && tags.get(TAG_UID).is_some_and(|u| !u.is_empty());
            if !ok {
                out.push(v(
                    Invariant::I1,
                    format!("call #{idx} CreateLoadBalancer without our three tags: {tags:?}"),
                ));
            }
        }
    }
    out
}

/// A CLB of ours serving a live Ingress, before a step: `(slot, uid, had our listener,
/// created by us)`.
pub type Protected = BTreeMap<String, (usize, String, bool, bool)>;

/// Whether the truth makes `lb` (tagged for the Ingress in `slot`, `created` by us or not)
/// that Ingress's CLB, which nothing may take from it. A managed Ingress owns only the CLB
/// it names (`existLbId`, or without it the one we created): one it no longer names is
/// released once the named one serves (DESIGN §1, issue 8 §1 #4). A held or blocked Ingress
/// (missing class, refused `existLbId`) changes nothing, so every CLB tagged for it stays.
fn owns(truth: &super::model::Truth, slot: usize, id: &str, created: bool) -> bool {
    let Some(ing) = &truth.slots[slot] else {
        return false;
    };
    match truth.expect(slot) {
        None | Some(Expect::NotOurs) => false,
        Some(Expect::Held | Expect::Blocked | Expect::Skipped) => true,
        Some(Expect::Managed) => match ing.exist_lb {
            Some(i) => truth.user_lbs[i] == id,
            None => created,
        },
    }
}

/// The CLBs I2 protects across the next step.
pub fn protected(w: &World) -> Protected {
    let mut out = Protected::new();
    for lb in w.clb.load_balancers() {
        if !has_tag(&lb, TAG_CLUSTER, CLUSTER_ID) || w.truth.disowned.contains_key(&lb.id) {
            continue;
        }
        let Some(uid) = tag(&lb, TAG_UID) else {
            continue;
        };
        let created = has_tag(&lb, TAG_CREATED_BY, "yes");
        for slot in 0..SLOTS {
            let Some(ing) = &w.truth.slots[slot] else {
                continue;
            };
            if ing.uid == uid && owns(&w.truth, slot, &lb.id, created) {
                let listener = lb.listeners.iter().any(|l| l.name == OUR_LISTENER);
                out.insert(lb.id.clone(), (slot, uid.to_string(), listener, created));
            }
        }
    }
    out
}

/// I2 across one step: `before` from [`protected`] and the truth before the step, the
/// function's calls from `from` on. A CLB stays protected only when the step left its
/// Ingress alone (same UID, same `existLbId`), the truth after the step still makes it that
/// Ingress's CLB ([`owns`]), and the step did not disown it.
pub fn i2(
    w: &World,
    before: &Protected,
    truth_before: &super::model::Truth,
    from: usize,
    console_deleted_listener: Option<&str>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let still: Vec<_> = before
        .iter()
        .filter(|(id, (slot, uid, _, created))| {
            let (Some(a), Some(b)) = (&truth_before.slots[*slot], &w.truth.slots[*slot]) else {
                return false;
            };
            a.uid == *uid
                && b.uid == *uid
                && a.exist_lb == b.exist_lb
                && owns(&w.truth, *slot, id, *created)
                && !w.truth.disowned.contains_key(*id)
        })
        .collect();
    let calls = w.function_calls(from);
    let lbs = lbs_by_id(w);
    for (id, (slot, uid, had_listener, _)) in still {
        for (idx, c) in &calls {
            let names = c.lb_ids.contains(id)
                || c.params.to_string().contains(&format!("\"{id}\""))
                || c.params.to_string().contains(&format!("clb/{id}\""));
            if !names || !c.ok() {
                continue;
            }
            if c.action == "DeleteLoadBalancer" {
                out.push(v(
                    Invariant::I2,
                    format!("call #{idx} deleted {id}, the CLB of live ing-{slot} ({uid})"),
                ));
            }
            // Taking off a tag of ours that is not ownership (the skip mark once `mode: skip`
            // is gone) leaves the CLB its Ingress's.
            let ownership = [TAG_CLUSTER, TAG_UID];
            let untags_ownership = c.params["TagKeys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .any(|k| ownership.contains(&k.as_str().unwrap_or("")))
                })
                .unwrap_or(true);
            if (c.action == "UnTagResources" && untags_ownership) || c.action == "DeleteResourceTag"
            {
                out.push(v(
                    Invariant::I2,
                    format!(
                        "call #{idx} {} untagged {id}, the CLB of live ing-{slot} ({uid})",
                        c.action
                    ),
                ));
            }
        }
        match lbs.get(id) {
            None => out.push(v(
                Invariant::I2,
                format!("{id}, the CLB of live ing-{slot} ({uid}), is gone"),
            )),
            Some(lb) => {
                if !(has_tag(lb, TAG_CLUSTER, CLUSTER_ID) && has_tag(lb, TAG_UID, uid)) {
                    out.push(v(
                        Invariant::I2,
                        format!(
                            "{id}, the CLB of live ing-{slot} ({uid}), lost our tags: {:?}",
                            lb.tags
                        ),
                    ));
                }
                let has_listener = lb.listeners.iter().any(|l| l.name == OUR_LISTENER);
                // Emptied by the history itself when no rule of the Ingress has a Service.
                if *had_listener
                    && !has_listener
                    && console_deleted_listener != Some(id.as_str())
                    && w.truth.has_backend(*slot)
                {
                    out.push(v(
                        Invariant::I2,
                        format!("{id}, the CLB of live ing-{slot} ({uid}), was emptied of our listeners"),
                    ));
                }
            }
        }
    }
    out
}

/// clb-sim's CLBs now, by id.
fn lbs_by_id(w: &World) -> BTreeMap<String, LoadBalancer> {
    w.clb
        .load_balancers()
        .into_iter()
        .map(|lb| (lb.id.clone(), lb))
        .collect()
}

/// `(domain, url) → (instance, port)` targets, as served or as wanted.
type Served = BTreeMap<(String, String), BTreeSet<(String, i64)>>;

/// What our HTTP:80 listener serves.
fn served(lb: &LoadBalancer) -> Option<Served> {
    let l = lb
        .listeners
        .iter()
        .find(|l| l.name == OUR_LISTENER && l.protocol == "HTTP" && l.port == 80)?;
    Some(
        l.rules
            .iter()
            .map(|r| {
                (
                    (r.domain().to_string(), r.url.clone()),
                    // A target at weight 0 (a drained Node) is bound but serves nothing.
                    r.targets
                        .iter()
                        .filter(|t| t.weight > 0)
                        .map(|t| t.key())
                        .collect(),
                )
            })
            .collect(),
    )
}

/// The CLB rule URLs of a Kubernetes `Prefix` path: `/` matches everything; `/a` matches
/// `/a` itself and everything under `/a/`, which on a CLB is an exact rule and a prefix rule.
fn prefix_urls(path: &str) -> Vec<String> {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        vec!["/".to_string()]
    } else {
        vec![format!("={p}"), format!("{p}/")]
    }
}

/// Whether `lb` serves the Ingress of `slot` as its rules, Services and Nodes say; the
/// difference otherwise. Rules whose Service is gone are not judged (the function reports
/// them; whether it keeps their rule without targets is its choice).
fn serves(w: &World, slot: usize, lb: &LoadBalancer) -> Result<(), String> {
    let Some(ing) = &w.truth.slots[slot] else {
        return Ok(());
    };
    let Some(got) = served(lb) else {
        if w.truth.has_backend(slot) {
            return Err(format!("{} has no HTTP:80 listener of ours", lb.id));
        }
        return Ok(());
    };
    let mut judged = BTreeSet::new();
    for (host, path, svc) in variant_rules(ing.variant) {
        for url in prefix_urls(path) {
            let key = (host.to_string(), url.clone());
            judged.insert(key.clone());
            let Some(want) = w.truth.targets(svc) else {
                continue;
            };
            match got.get(&key) {
                None => return Err(format!("{} lacks rule {host}{url}", lb.id)),
                Some(t) if *t != want => {
                    return Err(format!(
                        "{} rule {host}{url} has targets {t:?}, want {want:?}",
                        lb.id
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let extra: Vec<_> = got.keys().filter(|k| !judged.contains(*k)).collect();
    if !extra.is_empty() {
        return Err(format!(
            "{} has rules the Ingress does not ask for: {extra:?}",
            lb.id
        ));
    }
    Ok(())
}

/// Our CLBs by id, with the Ingress UID each carries ([`Truth::expectations`]).
fn tagged(lbs: &[LoadBalancer]) -> BTreeMap<String, String> {
    lbs.iter()
        .filter(|lb| has_tag(lb, TAG_CLUSTER, CLUSTER_ID))
        .filter_map(|lb| Some((lb.id.clone(), tag(lb, TAG_UID)?.to_string())))
        .collect()
}

/// I3, after quiet.
pub fn i3(w: &World) -> Vec<Violation> {
    let mut out = Vec::new();
    let lbs = w.clb.load_balancers();
    let ours = |uid: &str| -> Vec<&LoadBalancer> {
        lbs.iter()
            .filter(|lb| has_tag(lb, TAG_CLUSTER, CLUSTER_ID) && has_tag(lb, TAG_UID, uid))
            .collect()
    };
    let tagged = tagged(&lbs);
    let expected = w.truth.expectations(&tagged);
    let held_over = |lb: &LoadBalancer| w.truth.held_over(&expected, &tagged, &lb.id);
    let mut live_uids = BTreeSet::new();
    for (slot, expect) in expected.iter().enumerate() {
        let (Some(ing), Some(expect)) = (&w.truth.slots[slot], *expect) else {
            continue;
        };
        if expect != Expect::NotOurs {
            live_uids.insert(ing.uid.clone());
        }
        let mine = ours(&ing.uid);
        match expect {
            Expect::NotOurs if !mine.is_empty() => out.push(v(
                Invariant::I3,
                format!(
                    "ing-{slot} is not ours, yet {} carries our tags for it",
                    mine[0].id
                ),
            )),
            Expect::Blocked | Expect::Held | Expect::Skipped if mine.len() > 1 => out.push(v(
                Invariant::I3,
                format!("ing-{slot} has {} CLBs of ours", mine.len()),
            )),
            Expect::Managed => {
                if mine.len() != 1 {
                    let ids: Vec<&str> = mine.iter().map(|l| l.id.as_str()).collect();
                    out.push(v(
                        Invariant::I3,
                        format!(
                            "ing-{slot} ({}) has {} CLBs of ours, want 1: {ids:?}",
                            ing.uid,
                            mine.len()
                        ),
                    ));
                    continue;
                }
                let lb = mine[0];
                match ing.exist_lb {
                    Some(i) if lb.id != w.truth.user_lbs[i] => out.push(v(
                        Invariant::I3,
                        format!(
                            "ing-{slot} names {} but is served by {}",
                            w.truth.user_lbs[i], lb.id
                        ),
                    )),
                    None if !has_tag(lb, TAG_CREATED_BY, "yes") => out.push(v(
                        Invariant::I3,
                        format!(
                            "ing-{slot} names no CLB but is served by {} we did not create",
                            lb.id
                        ),
                    )),
                    _ => {}
                }
                if let Err(e) = serves(w, slot, lb) {
                    out.push(v(Invariant::I3, format!("ing-{slot}: {e}")));
                }
                let status = w.ingress(slot).and_then(|i| {
                    i["status"]["loadBalancer"]["ingress"][0]["ip"]
                        .as_str()
                        .map(str::to_string)
                });
                if status.as_deref() != Some(lb.vip.as_str()) {
                    out.push(v(
                        Invariant::I3,
                        format!(
                            "ing-{slot} status address {status:?}, VIP of {} is {}",
                            lb.id, lb.vip
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    for lb in &lbs {
        if !has_tag(lb, TAG_CLUSTER, CLUSTER_ID) {
            continue;
        }
        let uid = tag(lb, TAG_UID).unwrap_or("");
        if !live_uids.contains(uid) {
            out.push(v(
                Invariant::I3,
                format!(
                    "{} carries our cluster tag for {uid:?}, an Ingress that is gone or not ours",
                    lb.id
                ),
            ));
        }
    }
    // Users' CLBs: ours only while a live Ingress of ours names them.
    for i in 0..ADOPTABLE {
        let id = &w.truth.user_lbs[i];
        let Some(lb) = lbs.iter().find(|l| &l.id == id) else {
            out.push(v(Invariant::I3, format!("the user's CLB {id} is gone")));
            continue;
        };
        let claimants = w.truth.claimants(i);
        if held_over(lb) || w.truth.kept.get(id).is_some_and(Kept::skip) {
            continue;
        }
        if claimants.is_empty() {
            let keeps_listener = lb.listeners.iter().any(|l| l.name == OUR_LISTENER);
            if tag(lb, TAG_CLUSTER).is_some() || tag(lb, TAG_UID).is_some() || keeps_listener {
                out.push(v(
                    Invariant::I3,
                    format!("the user's CLB {id} is named by no Ingress but keeps our tags or listeners: {:?}", lb.tags),
                ));
            }
        } else if claimants.len() > 1 {
            // Adopted by at most one of them, and then serving exactly that one.
            let holder = claimants.iter().find(|s| {
                w.truth.slots[**s]
                    .as_ref()
                    .is_some_and(|ing| has_tag(lb, TAG_UID, &ing.uid))
            });
            if let Some(s) = holder {
                let ours_for_sure = w.truth.slots[*s]
                    .as_ref()
                    .is_some_and(|ing| w.truth.ours(ing.class) == Some(true));
                if ours_for_sure {
                    if let Err(e) = serves(w, *s, lb) {
                        out.push(v(Invariant::I3, format!("ing-{s} (contended {id}): {e}")));
                    }
                }
            } else if tag(lb, TAG_UID).is_some() {
                out.push(v(
                    Invariant::I3,
                    format!(
                        "the user's CLB {id} is tagged for none of the Ingresses naming it: {:?}",
                        lb.tags
                    ),
                ));
            }
        }
    }
    for (id, tags, listeners) in &w.untouchable_at_start {
        match lbs.iter().find(|l| &l.id == id) {
            None => out.push(v(Invariant::I3, format!("{id}, not ours, is gone"))),
            Some(lb) => {
                let now: Vec<String> = lb.listeners.iter().map(|l| l.id.clone()).collect();
                if &lb.tags != tags || &now != listeners {
                    out.push(v(Invariant::I3, format!("{id}, not ours, was changed")));
                }
            }
        }
    }
    // Listeners we did not create stay while their CLB does.
    for (l, id) in &w.truth.foreign_listeners {
        if let Some(lb) = lbs.iter().find(|x| &x.id == id) {
            if !lb.listeners.iter().any(|x| &x.id == l) {
                out.push(v(
                    Invariant::I3,
                    format!("listener {l} of {id}, not ours, is gone while its CLB stays"),
                ));
            }
        }
    }
    out
}

/// I4: the function's writes from `from` on, after quiet.
pub fn i4(w: &World, from: usize) -> Vec<Violation> {
    let writes: Vec<String> = w
        .function_calls(from)
        .into_iter()
        .filter(|(_, c)| is_write(&c.action))
        .map(|(i, c)| format!("#{i} {} {:?}", c.action, c.lb_ids))
        .collect();
    if writes.is_empty() {
        Vec::new()
    } else {
        vec![v(
            Invariant::I4,
            format!("{} cloud writes after quiet: {writes:?}", writes.len()),
        )]
    }
}

/// The tag our `mode: skip` mark and `loadbalance-retain` leave on a CLB (README, annotations).
const TAG_SKIP: (&str, &str) = ("tke-ingress-mode", "skip");
const TAG_OWNER_USER: (&str, &str) = ("tke-lifecycle-owner", "user");

/// The lifecycle annotations of the Ingress in `slot` whose effect `lb` shows while the
/// annotation is on.
fn marks_seen(truth: &Truth, slot: usize, lb: &LoadBalancer) -> Vec<Mark> {
    let Some(ing) = &truth.slots[slot] else {
        return Vec::new();
    };
    [
        (Mark::Skip, has_tag(lb, TAG_SKIP.0, TAG_SKIP.1)),
        (
            Mark::Retain,
            has_tag(lb, TAG_OWNER_USER.0, TAG_OWNER_USER.1),
        ),
        (Mark::Protect, lb.delete_protect),
    ]
    .into_iter()
    .filter(|(m, seen)| *seen && ing.has(*m))
    .map(|(m, _)| m)
    .collect()
}

/// The slot of the live Ingress (ours, or not yet known not to be) that `lb`'s cluster and
/// UID tags name.
fn tagged_for_live(truth: &Truth, lb: &LoadBalancer) -> Option<usize> {
    let uid = tag(lb, TAG_UID)?;
    if !has_tag(lb, TAG_CLUSTER, CLUSTER_ID) {
        return None;
    }
    (0..SLOTS).find(|s| {
        truth.slots[*s]
            .as_ref()
            .is_some_and(|i| i.uid == uid && truth.ours(i.class) != Some(false))
    })
}

/// Updates `truth.kept` before a step: a CLB tagged for a live Ingress of ours that shows
/// the effect of a lifecycle annotation still on is kept from now on. One that has not been
/// released yet (still tagged for a live Ingress of ours) drops out again once none of its
/// annotations is on any more: then a later release may delete it.
pub fn observe_kept(w: &mut World) {
    let lbs = w.clb.load_balancers();
    for lb in &lbs {
        let Some(slot) = tagged_for_live(&w.truth, lb) else {
            continue;
        };
        let marks = marks_seen(&w.truth, slot, lb);
        let uid = tag(lb, TAG_UID).unwrap_or("").to_string();
        if marks.is_empty() {
            w.truth.kept.remove(&lb.id);
        } else {
            w.truth
                .kept
                .insert(lb.id.clone(), Kept { slot, uid, marks });
        }
    }
}

/// Across a step (the function's calls from `from` on): a kept CLB is never deleted (I2); a
/// CLB kept by `mode: skip` takes no write but our tags while its Ingress stays in skip or is
/// released, until an Ingress naming it through `existLbId` adopts it (I1).
pub fn kept(w: &World, from: usize) -> Vec<Violation> {
    let mut out = Vec::new();
    let lbs = lbs_by_id(w);
    let calls = w.function_calls(from);
    for (id, k) in &w.truth.kept {
        if !lbs.contains_key(id) {
            out.push(v(
                Invariant::I2,
                format!(
                    "{id}, kept by {:?} of ing-{} ({}), is gone",
                    k.marks, k.slot, k.uid
                ),
            ));
        }
        let live = w.truth.slots[k.slot]
            .as_ref()
            .filter(|i| i.uid == k.uid && w.truth.ours(i.class) != Some(false));
        let still_skip = match live {
            Some(i) => i.skip,
            None => true,
        };
        // Released, the CLB is the user's: an Ingress naming it through `existLbId` with
        // skip off may adopt it like any user CLB (seed 60145). Its writes count from the
        // call that tags the CLB for it on.
        let adopted_at = live
            .is_none()
            .then(|| {
                calls
                    .iter()
                    .find(|(_, c)| adopts(w, c, id))
                    .map(|(i, _)| *i)
            })
            .flatten();
        for (idx, c) in &calls {
            if adopted_at.is_some_and(|at| *idx > at) {
                continue;
            }
            // A create names no CLB (a replayed token answers one without writing it).
            if !c.ok() || !is_write(&c.action) || c.action == "CreateLoadBalancer" {
                continue;
            }
            let mut named = c.lb_ids.iter().cloned().collect::<BTreeSet<_>>();
            named_lbs(&c.params, &mut named);
            if !named.contains(id) {
                continue;
            }
            if c.action == "DeleteLoadBalancer" {
                out.push(v(
                    Invariant::I2,
                    format!(
                        "call #{idx} deleted {id}, kept by {:?} of ing-{}",
                        k.marks, k.slot
                    ),
                ));
            } else if k.skip()
                && still_skip
                && !matches!(c.action.as_str(), "TagResources" | "UnTagResources")
            {
                out.push(v(
                    Invariant::I1,
                    format!(
                        "call #{idx} {} wrote to {id}, the CLB of ing-{} in mode: skip",
                        c.action, k.slot
                    ),
                ));
            }
        }
    }
    out
}

/// Whether call `c` tags CLB `id` for a live Ingress of ours that names it through
/// `existLbId` and is not in `mode: skip` (the first write of an adoption).
fn adopts(w: &World, c: &crate::clb_sim::CallRecord, id: &str) -> bool {
    if !c.ok() || c.action != "TagResources" {
        return false;
    }
    let mut named = BTreeSet::new();
    named_lbs(&c.params, &mut named);
    let tags = tags_param(&c.params);
    let (Some(uid), true) = (tags.get(TAG_UID), named.contains(id)) else {
        return false;
    };
    w.truth.slots.iter().flatten().any(|ing| {
        ing.uid == *uid
            && !ing.skip
            && w.truth.ours(ing.class) == Some(true)
            && ing
                .exist_lb
                .and_then(|i| w.truth.user_lbs.get(i))
                .map(String::as_str)
                == Some(id)
    })
}

/// After quiet: a CLB kept by `loadbalance-retain` or deletion protection whose Ingress was
/// released has none of our listeners left (I3), unless an Ingress of ours that names it
/// through `existLbId` (a re-created one too) has adopted it since: then it is that
/// Ingress's CLB, and [`i3`] holds it to that Ingress (seed 100338).
pub fn kept_released(w: &World) -> Vec<Violation> {
    let mut out = Vec::new();
    for lb in w.clb.load_balancers() {
        let Some(k) = w.truth.kept.get(&lb.id) else {
            continue;
        };
        let released =
            tag(&lb, TAG_UID) != Some(k.uid.as_str()) && tagged_for_live(&w.truth, &lb).is_none();
        if released && !k.skip() && lb.listeners.iter().any(|l| l.name == OUR_LISTENER) {
            out.push(v(
                Invariant::I3,
                format!(
                    "{}, kept by {:?} when ing-{} was released, keeps our listeners",
                    lb.id, k.marks, k.slot
                ),
            ));
        }
    }
    out
}
