//! CLB use limits (tke-annotations.md §5, CLBLIM): what does not fit is left out in a stable
//! order and reported, so one Ingress over a limit still gets a working CLB for the rest.
//!
//! The limits are the account's quota ([`Quota`]): the defaults below until the live quota
//! (`DescribeQuota`) is known. The reconciler reads it only for an Ingress whose CLB comes
//! near a default limit ([`approaches`]); the reference says to treat the live quota as truth.

use std::collections::BTreeMap;

use super::desired::DesiredListener;
use super::lb::ListenerKey;
use super::problem::{codes, Problem};

/// Listeners per CLB (`TOTAL_LISTENER_QUOTA` default, CLBLIM).
pub const LISTENERS_PER_LB: usize = 50;
/// Domain+URL rules per HTTP/HTTPS listener (`TOTAL_LISTENER_RULE_QUOTA` default, CLBLIM).
pub const RULES_PER_LISTENER: usize = 50;
/// Targets per rule (`TOTAL_TARGET_BIND_QUOTA` default, CLBLIM).
pub const TARGETS_PER_RULE: usize = 100;

/// `DescribeQuota` ids of the three per-CLB limits (tke-annotations.md §5, SDK `Quota`).
pub const QUOTA_LISTENERS: &str = "TOTAL_LISTENER_QUOTA";
pub const QUOTA_RULES: &str = "TOTAL_LISTENER_RULE_QUOTA";
pub const QUOTA_TARGETS: &str = "TOTAL_TARGET_BIND_QUOTA";

/// Share of a default limit (in percent) at which an Ingress's CLB is near enough to it
/// that the live quota is worth a read: an account's quota may be raised (the rest fits)
/// or, in principle, lower (what the default lets through would be refused).
pub const APPROACH_PERCENT: usize = 80;

/// The per-CLB limits one plan is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub listeners_per_lb: usize,
    pub rules_per_listener: usize,
    pub targets_per_rule: usize,
}

impl Quota {
    /// The defaults (CLBLIM), used until the live quota is read.
    pub const DEFAULT: Quota = Quota {
        listeners_per_lb: LISTENERS_PER_LB,
        rules_per_listener: RULES_PER_LISTENER,
        targets_per_rule: TARGETS_PER_RULE,
    };

    /// The quota from `DescribeQuota`'s `(QuotaId, QuotaLimit)` pairs; an id the answer
    /// lacks (or a limit of 0, which no account has) keeps its default.
    pub fn from_quota_set<'a>(set: impl IntoIterator<Item = (&'a str, u64)>) -> Quota {
        let mut q = Quota::DEFAULT;
        for (id, limit) in set {
            let Ok(limit) = usize::try_from(limit) else {
                continue;
            };
            if limit == 0 {
                continue;
            }
            match id {
                QUOTA_LISTENERS => q.listeners_per_lb = limit,
                QUOTA_RULES => q.rules_per_listener = limit,
                QUOTA_TARGETS => q.targets_per_rule = limit,
                _ => {}
            }
        }
        q
    }
}

impl Default for Quota {
    fn default() -> Self {
        Quota::DEFAULT
    }
}

/// Whether these listeners come near one of `quota`'s limits (at least
/// [`APPROACH_PERCENT`] of it): then the live quota decides what fits.
pub fn approaches(listeners: &BTreeMap<ListenerKey, DesiredListener>, quota: &Quota) -> bool {
    let near = |count: usize, limit: usize| count * 100 >= limit * APPROACH_PERCENT;
    near(listeners.len(), quota.listeners_per_lb)
        || listeners.values().any(|l| {
            near(l.rules.len(), quota.rules_per_listener)
                || l.rules
                    .values()
                    .any(|r| near(r.targets.len(), quota.targets_per_rule))
        })
}

/// Keeps the first listeners and rules that fit `quota` (in key order, so every run keeps
/// the same ones while nothing changes) and reports what was left out; a rule with more
/// targets than fit is reported here and held to the limit by the planner.
pub fn fit(listeners: &mut BTreeMap<ListenerKey, DesiredListener>, quota: &Quota) -> Vec<Problem> {
    let Quota {
        listeners_per_lb,
        rules_per_listener,
        targets_per_rule,
    } = *quota;
    let mut problems = Vec::new();
    if listeners.len() > listeners_per_lb {
        let dropped: Vec<ListenerKey> = listeners.keys().skip(listeners_per_lb).copied().collect();
        for key in &dropped {
            listeners.remove(key);
        }
        problems.push(Problem::warning(
            codes::LISTENER_LIMIT,
            format!(
                "more than {listeners_per_lb} listeners; left out: {}",
                dropped
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for (key, listener) in listeners.iter_mut() {
        if listener.rules.len() > rules_per_listener {
            let dropped: Vec<_> = listener
                .rules
                .keys()
                .skip(rules_per_listener)
                .cloned()
                .collect();
            for rule in &dropped {
                listener.rules.remove(rule);
            }
            problems.push(Problem::warning(
                codes::RULE_LIMIT,
                format!(
                    "{key}: more than {rules_per_listener} rules; {} left out, the first: {}",
                    dropped.len(),
                    dropped[0]
                ),
            ));
        }
        // Which targets of a rule over the limit are registered is the planner's choice
        // (plan/targets.rs): it knows which are bound, and keeps them.
        for (rule_key, rule) in listener.rules.iter() {
            if rule.targets.len() > targets_per_rule {
                let total = rule.targets.len();
                problems.push(
                    Problem::warning(
                        codes::TARGET_LIMIT,
                        format!(
                            "{key} {rule_key}: {total} targets, {targets_per_rule} registered \
                             (a stable subset: those bound first, then in order; the rest \
                             are not)"
                        ),
                    )
                    .for_rule(rule_key.to_string()),
                );
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::desired::DesiredRule;
    use crate::model::graceful::TargetWeight;
    use crate::model::lb::{Backend, Domain, Protocol, RuleKey, TargetKey};

    fn targets(n: usize) -> BTreeMap<TargetKey, TargetWeight> {
        (0..n)
            .map(|i| {
                (
                    TargetKey {
                        backend: Backend::Instance(format!("ins-{i:05}")),
                        port: 30080,
                    },
                    TargetWeight::Serve,
                )
            })
            .collect()
    }

    fn listener(rules: usize, per_rule: usize) -> DesiredListener {
        DesiredListener {
            rules: (0..rules)
                .map(|i| {
                    (
                        RuleKey {
                            domain: Domain::Name(format!("h{i:03}.example.com")),
                            url: "/".into(),
                        },
                        DesiredRule {
                            targets: targets(per_rule),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_260_node_rule_is_reported_and_left_whole_for_the_planner_to_hold_to_100() {
        let mut ls = BTreeMap::from([(ListenerKey::HTTP_80, listener(1, 260))]);
        let before = ls.clone();
        let problems = fit(&mut ls, &Quota::DEFAULT);
        assert_eq!(ls, before, "the planner picks, knowing which are bound");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, codes::TARGET_LIMIT);
        assert!(problems[0].message.contains("260 targets, 100 registered"));
    }

    #[test]
    fn rules_and_listeners_over_the_limit_are_left_out_with_tke_codes() {
        let mut ls: BTreeMap<ListenerKey, DesiredListener> = (0..52u16)
            .map(|p| {
                (
                    ListenerKey {
                        protocol: Protocol::Http,
                        port: 8000 + p,
                    },
                    listener(1, 1),
                )
            })
            .collect();
        ls.insert(ListenerKey::HTTP_80, listener(55, 1));
        let problems = fit(&mut ls, &Quota::DEFAULT);
        assert_eq!(ls.len(), LISTENERS_PER_LB);
        assert_eq!(ls[&ListenerKey::HTTP_80].rules.len(), RULES_PER_LISTENER);
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, vec!["E4004", "E4005"]);
    }

    #[test]
    fn within_the_limits_nothing_changes() {
        let mut ls = BTreeMap::from([(ListenerKey::HTTP_80, listener(50, 100))]);
        let before = ls.clone();
        assert!(fit(&mut ls, &Quota::DEFAULT).is_empty());
        assert_eq!(ls, before);
    }

    #[test]
    fn the_live_quota_replaces_only_the_limits_it_names() {
        let raised = Quota::from_quota_set([(QUOTA_TARGETS, 150), ("TOTAL_OPEN_CLB_QUOTA", 9)]);
        assert_eq!(raised.targets_per_rule, 150);
        assert_eq!(
            raised.rules_per_listener, RULES_PER_LISTENER,
            "absent: default"
        );
        let mut ls = BTreeMap::from([(ListenerKey::HTTP_80, listener(1, 160))]);
        assert_eq!(fit(&mut ls, &raised)[0].code, codes::TARGET_LIMIT);
        let lowered = Quota::from_quota_set([(QUOTA_TARGETS, 90), (QUOTA_RULES, 0)]);
        assert_eq!(lowered.targets_per_rule, 90);
        assert_eq!(
            lowered.rules_per_listener, RULES_PER_LISTENER,
            "0 is no quota"
        );
    }

    #[test]
    fn only_a_clb_near_a_default_limit_asks_for_the_live_quota() {
        let near = |rules, per_rule| {
            approaches(
                &BTreeMap::from([(ListenerKey::HTTP_80, listener(rules, per_rule))]),
                &Quota::DEFAULT,
            )
        };
        assert!(!near(3, 79));
        assert!(near(3, 80));
        assert!(near(40, 1));
        assert!(!near(39, 1));
        let many: BTreeMap<ListenerKey, DesiredListener> = (0..40u16)
            .map(|p| {
                (
                    ListenerKey {
                        protocol: Protocol::Http,
                        port: 8000 + p,
                    },
                    listener(1, 1),
                )
            })
            .collect();
        assert!(approaches(&many, &Quota::DEFAULT));
    }
}
