//! Plans for graceful backends: a rollout in steps (new Pod ready, old one terminating, old one
//! gone) never leaves the rule without a serving target and drains before it deregisters;
//! a weight the user set in the console is left alone.

use super::*;

fn eni(ip: &str) -> TargetKey {
    TargetKey {
        backend: Backend::EniIp(ip.into()),
        port: 8080,
    }
}

/// One rule, a.com/, with these targets.
fn with_targets(targets: &[(&str, TargetWeight)]) -> Desired {
    desired(
        LbSource::Create(spec()),
        vec![(
            ListenerKey::HTTP_80,
            http(vec![(
                key(Some("a.com"), "/"),
                DesiredRule {
                    certificate: None,
                    targets: targets.iter().map(|(ip, w)| (eni(ip), *w)).collect(),
                },
            )]),
        )],
    )
}

fn bound(view: &CloudView) -> BTreeMap<TargetKey, u16> {
    view.load_balancer.as_ref().unwrap().listeners[0].rules[0]
        .targets
        .iter()
        .map(|t| (t.key.clone(), t.weight))
        .collect()
}

fn position(p: &Plan, pred: impl Fn(&Action) -> bool) -> Option<usize> {
    p.actions.iter().position(pred)
}

#[test]
fn a_rollout_step_by_step_always_serves_and_drains_before_it_deregisters() {
    use TargetWeight::{Drain, Serve};
    let mut view = CloudView::default();
    converge(
        &with_targets(&[("10.0.0.1", Serve), ("10.0.0.2", Serve)]),
        &mut view,
    );
    // Pod 1 is replaced by pod 3, then pod 2 by pod 4: new ready, old terminating, old gone.
    let steps: Vec<Vec<(&str, TargetWeight)>> = vec![
        vec![
            ("10.0.0.1", Serve),
            ("10.0.0.2", Serve),
            ("10.0.0.3", Serve),
        ],
        vec![
            ("10.0.0.1", Drain),
            ("10.0.0.2", Serve),
            ("10.0.0.3", Serve),
        ],
        vec![("10.0.0.2", Serve), ("10.0.0.3", Serve)],
        vec![
            ("10.0.0.2", Serve),
            ("10.0.0.3", Serve),
            ("10.0.0.4", Drain),
        ],
        vec![
            ("10.0.0.2", Serve),
            ("10.0.0.3", Serve),
            ("10.0.0.4", Serve),
        ],
        vec![
            ("10.0.0.2", Drain),
            ("10.0.0.3", Serve),
            ("10.0.0.4", Serve),
        ],
        vec![("10.0.0.3", Serve), ("10.0.0.4", Serve)],
    ];
    let mut drained_before_gone = 0;
    for step in &steps {
        let before = bound(&view);
        converge(&with_targets(step), &mut view);
        let after = bound(&view);
        assert!(
            after.values().any(|w| *w > 0),
            "no serving target: {after:?}"
        );
        for (target, weight) in &before {
            if !after.contains_key(target) {
                assert_eq!(*weight, 0, "{target} deregistered at weight {weight}");
                drained_before_gone += 1;
            }
        }
        for (ip, w) in step {
            if *w == Drain {
                assert_eq!(after.get(&eni(ip)).copied().unwrap_or(0), 0, "{ip}");
            }
        }
        assert!(plan(&with_targets(step), &view).unwrap().is_empty());
    }
    assert_eq!(drained_before_gone, 2);
    // The not-ready new pod 4 was never registered at weight 0 first: it came in serving.
    assert_eq!(
        bound(&view),
        BTreeMap::from([(eni("10.0.0.3"), 10), (eni("10.0.0.4"), 10)])
    );
}

#[test]
fn within_one_plan_new_targets_register_before_old_ones_drain_or_go() {
    use TargetWeight::{Drain, Serve};
    let mut view = CloudView::default();
    converge(
        &with_targets(&[("10.0.0.1", Serve), ("10.0.0.2", Serve)]),
        &mut view,
    );
    // A stale read can see pod 1 gone, pod 2 terminating and pod 3 new in one go.
    let p = plan(
        &with_targets(&[("10.0.0.2", Drain), ("10.0.0.3", Serve)]),
        &view,
    )
    .unwrap();
    let register = position(&p, |a| matches!(a, Action::RegisterTargets { .. })).unwrap();
    let weight = position(&p, |a| matches!(a, Action::ModifyTargetWeight { .. })).unwrap();
    let deregister = position(&p, |a| matches!(a, Action::DeregisterTargets { .. })).unwrap();
    assert!(register < weight && weight < deregister, "{p}");
    let Action::ModifyTargetWeight { targets } = &p.actions[weight] else {
        unreachable!()
    };
    assert_eq!(targets.len(), 1);
    assert_eq!(
        (targets[0].target.clone(), targets[0].weight),
        (eni("10.0.0.2"), 0)
    );
}

#[test]
fn a_console_weight_on_a_serving_target_is_left_alone() {
    let d = with_targets(&[("10.0.0.1", TargetWeight::Serve)]);
    let mut view = CloudView::default();
    converge(&d, &mut view);
    view.load_balancer.as_mut().unwrap().listeners[0].rules[0].targets[0].weight = 37;
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn a_target_left_at_zero_by_a_drain_serves_again_at_the_default_weight() {
    let mut view = CloudView::default();
    // Pod 1 served, failed its readiness probe (weight 0, still bound), and is ready again.
    converge(
        &with_targets(&[("10.0.0.1", TargetWeight::Serve)]),
        &mut view,
    );
    converge(
        &with_targets(&[("10.0.0.1", TargetWeight::Drain)]),
        &mut view,
    );
    assert_eq!(bound(&view), BTreeMap::from([(eni("10.0.0.1"), 0)]));
    let p = converge(
        &with_targets(&[("10.0.0.1", TargetWeight::Serve)]),
        &mut view,
    );
    assert_eq!(p.actions.len(), 1, "{p}");
    assert_eq!(
        bound(&view),
        BTreeMap::from([(eni("10.0.0.1"), DEFAULT_WEIGHT)])
    );
}

#[test]
fn a_draining_target_that_is_not_bound_is_not_registered() {
    let mut view = CloudView::default();
    let p = converge(
        &with_targets(&[
            ("10.0.0.1", TargetWeight::Drain),
            ("10.0.0.2", TargetWeight::Serve),
        ]),
        &mut view,
    );
    assert_eq!(
        bound(&view),
        BTreeMap::from([(eni("10.0.0.2"), DEFAULT_WEIGHT)])
    );
    assert!(!p.to_string().contains("10.0.0.1"), "{p}");
}
