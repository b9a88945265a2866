//! CLB use limits (tke-annotations.md §5, CLBLIM): what does not fit is left out in a stable
//! order and reported, so one Ingress over a limit still gets a working CLB for the rest.
//!
//! ASSUMPTION: the account has the default quotas (50 listeners per CLB, 50 rules per
//! listener, 100 targets per rule). The live quota (`DescribeQuota`) is not read yet; an
//! account with a raised quota is held to the defaults here.

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

/// Keeps the first listeners, rules and targets that fit (in key order, so every run keeps
/// the same ones while nothing changes) and reports what was left out.
pub fn fit(listeners: &mut BTreeMap<ListenerKey, DesiredListener>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if listeners.len() > LISTENERS_PER_LB {
        let dropped: Vec<ListenerKey> = listeners.keys().skip(LISTENERS_PER_LB).copied().collect();
        for key in &dropped {
            listeners.remove(key);
        }
        problems.push(Problem::warning(
            codes::LISTENER_LIMIT,
            format!(
                "more than {LISTENERS_PER_LB} listeners; left out: {}",
                dropped
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for (key, listener) in listeners.iter_mut() {
        if listener.rules.len() > RULES_PER_LISTENER {
            let dropped: Vec<_> = listener
                .rules
                .keys()
                .skip(RULES_PER_LISTENER)
                .cloned()
                .collect();
            for rule in &dropped {
                listener.rules.remove(rule);
            }
            problems.push(Problem::warning(
                codes::RULE_LIMIT,
                format!(
                    "{key}: more than {RULES_PER_LISTENER} rules; {} left out, the first: {}",
                    dropped.len(),
                    dropped[0]
                ),
            ));
        }
        for (rule_key, rule) in listener.rules.iter_mut() {
            if rule.targets.len() > TARGETS_PER_RULE {
                let total = rule.targets.len();
                let keep: BTreeMap<_, _> = std::mem::take(&mut rule.targets)
                    .into_iter()
                    .take(TARGETS_PER_RULE)
                    .collect();
                rule.targets = keep;
                problems.push(
                    Problem::warning(
                        codes::TARGET_LIMIT,
                        format!(
                            "{key} {rule_key}: {total} targets, {TARGETS_PER_RULE} registered \
                             (a stable subset; the rest are not)"
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
    use crate::model::lb::{Backend, Domain, Protocol, RuleKey, TargetKey, DEFAULT_WEIGHT};

    fn targets(n: usize) -> BTreeMap<TargetKey, u16> {
        (0..n)
            .map(|i| {
                (
                    TargetKey {
                        backend: Backend::Instance(format!("ins-{i:05}")),
                        port: 30080,
                    },
                    DEFAULT_WEIGHT,
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
    fn a_260_node_rule_registers_a_stable_100_and_warns() {
        let mut ls = BTreeMap::from([(ListenerKey::HTTP_80, listener(1, 260))]);
        let problems = fit(&mut ls);
        let rule = ls[&ListenerKey::HTTP_80].rules.values().next().unwrap();
        assert_eq!(rule.targets.len(), TARGETS_PER_RULE);
        assert_eq!(
            rule.targets.keys().next().unwrap().backend,
            Backend::Instance("ins-00000".into())
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, codes::TARGET_LIMIT);
        let mut again = BTreeMap::from([(ListenerKey::HTTP_80, listener(1, 260))]);
        fit(&mut again);
        assert_eq!(again, ls, "every run keeps the same subset");
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
        let problems = fit(&mut ls);
        assert_eq!(ls.len(), LISTENERS_PER_LB);
        assert_eq!(ls[&ListenerKey::HTTP_80].rules.len(), RULES_PER_LISTENER);
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, vec!["E4004", "E4005"]);
    }

    #[test]
    fn within_the_limits_nothing_changes() {
        let mut ls = BTreeMap::from([(ListenerKey::HTTP_80, listener(50, 100))]);
        let before = ls.clone();
        assert!(fit(&mut ls).is_empty());
        assert_eq!(ls, before);
    }
}
