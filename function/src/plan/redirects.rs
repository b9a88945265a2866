//! Redirects as planned resources (tke-annotations.md §2.2): ManualRewrite for each wanted
//! redirect the CLB lacks, once its rules exist (after CreateRule and the targets' register);
//! DeleteRewrite, before anything else is deleted, for each redirect the Ingress no longer
//! wants and for each redirect joining a rule or listener the plan deletes (the API refuses
//! those deletes while a redirect joins them). Which redirects are the Ingress's to remove:
//! see `model::redirects`. A steady state plans nothing.
//!
//! Observed from `RuleOutput.RewriteTarget` of the DescribeListeners the plan already reads
//! (no extra read).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::attributes::Selected;
use super::{Action, CloudLb, CloudListener, ListenerRef, Phases, RuleRef};
use crate::model::lb::{Domain, ListenerKey, RuleKey};
use crate::model::ownership;
use crate::model::redirects::DesiredRedirects;

/// A rule's redirect as DescribeListeners shows it (`RuleOutput.RewriteTarget`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloudRedirect {
    pub target_listener_id: String,
    pub target_location_id: String,
    /// 301, 302 or 307, when the API shows it.
    pub code: Option<u16>,
    pub take_url: bool,
}

/// One `RewriteLocationMap` of ManualRewrite / DeleteRewrite; every pair of one action has
/// the same source and target listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RedirectPair {
    pub source: RuleRef,
    pub target: RuleRef,
    /// Sent with ManualRewrite (with `TakeUrl` and the source's domain); not with DeleteRewrite.
    pub code: Option<u16>,
    pub take_url: bool,
}

/// Most pairs per ManualRewrite / DeleteRewrite. ASSUMPTION: the SDK documents no maximum;
/// 50, as rules per CreateRule.
pub const MAX_REWRITE_PAIRS: usize = 50;

/// One observed redirect, with both ends as rule references by id.
struct Observed {
    source: RuleRef,
    target: RuleRef,
    source_ours: bool,
    code: Option<u16>,
    take_url: bool,
}

fn rule_ref(l: &CloudListener, location_id: &str) -> Option<RuleRef> {
    let r = l.rules.iter().find(|r| r.location_id == location_id)?;
    Some(RuleRef {
        listener: super::listener_ref(l),
        key: RuleKey {
            domain: Domain::Name(r.domain.clone()),
            url: r.url.clone(),
        },
        location_id: Some(r.location_id.clone()),
    })
}

fn observed(lb: &CloudLb) -> Vec<Observed> {
    let mut out = Vec::new();
    for l in &lb.listeners {
        for r in &l.rules {
            let Some(to) = &r.redirect else { continue };
            let target = lb
                .listeners
                .iter()
                .find(|t| t.id == to.target_listener_id)
                .and_then(|t| rule_ref(t, &to.target_location_id));
            let (Some(source), Some(target)) = (rule_ref(l, &r.location_id), target) else {
                continue;
            };
            out.push(Observed {
                source,
                target,
                source_ours: ownership::is_our_listener(&l.name),
                code: to.code,
                take_url: to.take_url,
            });
        }
    }
    out
}

/// The rule `key` of a listener the plan keeps or creates: by id when it exists.
fn wanted_ref(s: &Selected<'_>, key: &RuleKey) -> Option<RuleRef> {
    s.rules.get(key)?;
    let location_id = s
        .cloud
        .and_then(|cl| cl.rule_by_key(key))
        .map(|r| r.location_id.clone());
    Some(RuleRef {
        listener: s.listener.clone(),
        key: key.clone(),
        location_id,
    })
}

/// The redirect actions; call once the rest of the plan is in `ph` (it reads what is
/// deleted).
pub(super) fn plan(
    ph: &mut Phases,
    wanted: &DesiredRedirects,
    lb: Option<&CloudLb>,
    default: Option<&str>,
    selected: &[Selected<'_>],
) {
    let by_key: BTreeMap<ListenerKey, &Selected<'_>> =
        selected.iter().map(|s| (s.listener.key, s)).collect();
    // Wanted pairs whose both rules the plan keeps or creates, by source.
    let mut want: BTreeMap<RuleRef, RedirectPair> = BTreeMap::new();
    for ((sl, sk), to) in &wanted.redirects {
        let resolve = |l: &ListenerKey, k: &RuleKey| {
            let s = by_key.get(l)?;
            wanted_ref(
                s,
                &RuleKey {
                    domain: super::resolve_domain(&k.domain, default),
                    url: k.url.clone(),
                },
            )
        };
        if let (Some(source), Some(target)) = (resolve(sl, sk), resolve(&to.listener, &to.rule)) {
            want.insert(
                source.clone(),
                RedirectPair {
                    source,
                    target,
                    code: Some(to.code),
                    take_url: to.take_url,
                },
            );
        }
    }
    let doomed = deleted(ph);
    let mut deletes = Vec::new();
    for o in lb.map(observed).unwrap_or_default() {
        let joins_deleted = [&o.source, &o.target].iter().any(|r| {
            doomed.contains(r.location_id.as_deref().unwrap_or_default())
                || doomed.contains(r.listener.id.as_deref().unwrap_or_default())
        });
        let matching = want
            .get(&o.source)
            .filter(|w| w.target == o.target && w.code == o.code && w.take_url == o.take_url);
        if !joins_deleted && matching.is_some() {
            want.remove(&o.source);
            continue;
        }
        let ours_to_drop = o.source_ours && (wanted.claims_all || want.contains_key(&o.source));
        if joins_deleted || ours_to_drop {
            deletes.push(RedirectPair {
                source: o.source,
                target: o.target,
                code: None,
                take_url: false,
            });
        }
    }
    ph.delete_rewrites
        .extend(batched(deletes, |pairs| Action::DeleteRewrite { pairs }));
    ph.rewrites
        .extend(batched(want.into_values().collect(), |pairs| {
            Action::ManualRewrite { pairs }
        }));
}

/// Location and listener ids the phases delete.
fn deleted(ph: &Phases) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = ph
        .clear_ports
        .iter()
        .chain(&ph.delete_listeners)
        .filter_map(|l| l.id.clone())
        .collect();
    for a in &ph.delete_rules {
        if let Action::DeleteRules { location_ids, .. } = a {
            out.extend(location_ids.iter().cloned());
        }
    }
    out
}

/// One action per (source listener, target listener), at most [`MAX_REWRITE_PAIRS`] each.
fn batched(pairs: Vec<RedirectPair>, make: impl Fn(Vec<RedirectPair>) -> Action) -> Vec<Action> {
    let mut groups: BTreeMap<(ListenerRef, ListenerRef), Vec<RedirectPair>> = BTreeMap::new();
    for p in pairs {
        groups
            .entry((p.source.listener.clone(), p.target.listener.clone()))
            .or_default()
            .push(p);
    }
    groups
        .into_values()
        .flat_map(|g| {
            g.chunks(MAX_REWRITE_PAIRS)
                .map(|c| make(c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Release of an adopted CLB: every redirect joining one of our listeners goes before the
/// listeners do.
pub(super) fn release(lb: &CloudLb) -> Vec<Action> {
    let ours: BTreeSet<&str> = lb
        .listeners
        .iter()
        .filter(|l| ownership::is_our_listener(&l.name))
        .map(|l| l.id.as_str())
        .collect();
    let joins = |r: &RuleRef| ours.contains(r.listener.id.as_deref().unwrap_or_default());
    let pairs = observed(lb)
        .into_iter()
        .filter(|o| joins(&o.source) || joins(&o.target))
        .map(|o| RedirectPair {
            source: o.source,
            target: o.target,
            code: None,
            take_url: false,
        })
        .collect();
    batched(pairs, |pairs| Action::DeleteRewrite { pairs })
}

/// `ManualRewrite`/`DeleteRewrite` lines of a printed plan.
pub(super) fn write_pairs(f: &mut fmt::Formatter<'_>, pairs: &[RedirectPair]) -> fmt::Result {
    for p in pairs {
        write!(f, "\n      {} -> {}", p.source, p.target)?;
        if let Some(c) = p.code {
            write!(f, " code={c} take_url={}", u8::from(p.take_url))?;
        }
    }
    Ok(())
}
