//! The dependency rule apply follows when an action fails: what still runs, what is skipped,
//! and (property) that nothing skipped was needed and nothing run lacked its ground.

use super::*;
use crate::plan::depends::{dependencies, Progress};

/// Runs `p` on the simulated CLB with action `failing` failing: each other action runs only
/// when [`Progress`] allows. Which ran (`Some(true)`), failed, or were skipped (`None`).
fn run_failing(
    p: &Plan,
    view: &mut CloudView,
    failing: &[usize],
) -> Result<Vec<Option<bool>>, String> {
    let mut progress = Progress::new(&p.actions);
    let mut out = Vec::new();
    for (j, a) in p.actions.iter().enumerate() {
        if !progress.may_run(j) {
            out.push(None);
            continue;
        }
        let ok = !failing.contains(&j);
        if ok {
            let one = Plan {
                actions: vec![a.clone()],
                ..p.clone()
            };
            apply_to_view(&one, view).map_err(|e| format!("action {}: {e}\n{p}", j + 1))?;
        }
        progress.record(j, ok);
        out.push(Some(ok));
    }
    Ok(out)
}

/// The actions `ran` says were skipped, as the plan prints them.
fn skipped(p: &Plan, ran: &[Option<bool>]) -> Vec<String> {
    p.actions
        .iter()
        .zip(ran)
        .filter(|(_, r)| r.is_none())
        .map(|(a, _)| a.to_string())
        .collect()
}

/// The targets bound to a.com/api on the first listener.
fn a_com_targets(view: &CloudView) -> Vec<TargetKey> {
    let lb = view.load_balancer.as_ref().unwrap();
    let api = lb.listeners[0].rules.iter().find(|r| r.domain == "a.com");
    api.unwrap().targets.iter().map(|t| t.key.clone()).collect()
}

fn index_of(p: &Plan, f: impl Fn(&Action) -> bool) -> usize {
    p.actions.iter().position(f).expect("action in plan")
}

/// The web Ingress converged, then: a.com/api moves from ins-1/ins-2 to ins-2/ins-3 and a
/// new host b.com comes, whose CreateRule fails (a quota).
fn rollout_with_a_new_host() -> (Desired, CloudView, Plan) {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    let l = d.listeners.get_mut(&ListenerKey::HTTP_80).unwrap();
    l.rules
        .get_mut(&key(Some("a.com"), "/api"))
        .unwrap()
        .targets = [
        (ins("ins-2", 30080), TargetWeight::Fixed(10)),
        (ins("ins-3", 30080), TargetWeight::Fixed(10)),
    ]
    .into_iter()
    .collect();
    l.rules
        .insert(key(Some("b.com"), "/"), rule(&[(ins("ins-9", 30090), 10)]));
    let p = plan(&d, &view).unwrap();
    (d, view, p)
}

#[test]
fn a_failed_create_rule_skips_only_its_own_targets_and_healthy_rules_still_move() {
    let (d, mut view, p) = rollout_with_a_new_host();
    let create = index_of(&p, |a| matches!(a, Action::CreateRules { .. }));
    let ran = run_failing(&p, &mut view, &[create]).unwrap();
    let skipped = skipped(&p, &ran);
    // Only b.com's registration waits; a.com's register and deregister both ran.
    assert_eq!(skipped.len(), 1, "{p}");
    assert!(skipped[0].contains("b.com") && skipped[0].starts_with("RegisterTargets"));
    assert_eq!(
        a_com_targets(&view),
        [ins("ins-2", 30080), ins("ins-3", 30080)]
    );
    // The next run retries what failed and converges.
    converge(&d, &mut view);
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn targets_of_existing_and_of_new_rules_never_share_a_batch() {
    let (_, _, p) = rollout_with_a_new_host();
    let registers: Vec<&Vec<BatchTarget>> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RegisterTargets { targets } => Some(targets),
            _ => None,
        })
        .collect();
    assert_eq!(registers.len(), 2, "{p}");
    for batch in registers {
        let existing = batch
            .iter()
            .filter(|t| t.rule.location_id.is_some())
            .count();
        assert!(existing == 0 || existing == batch.len(), "{p}");
    }
}

/// Seed 60145: a CLB kept by a released `mode: skip` Ingress still carries the skip mark when
/// the next Ingress adopts it. Listeners made while the mark stays (its removal failed) would
/// be kept on the user's CLB for good by this Ingress's release.
#[test]
fn nothing_is_written_to_an_adopted_clb_while_an_earlier_skip_mark_stays_on_it() {
    use crate::model::lifecycle::{skip_marked, TAG_SKIP, TAG_SKIP_VALUE};
    let mut view = CloudView {
        load_balancer: Some(CloudLb {
            id: "lb-1".into(),
            name: "kept".into(),
            lb_type: LbType::Open,
            vips: vec!["1.2.3.4".into()],
            domain: None,
            status: 1,
            tags: [(TAG_SKIP.to_string(), TAG_SKIP_VALUE.to_string())].into(),
            listeners: vec![],
            attributes: Default::default(),
        }),
    };
    let mut d = web();
    d.load_balancer = LbSource::Adopt {
        lb_id: "lb-1".into(),
    };
    let p = plan(&d, &view).unwrap();
    let unmark = index_of(&p, |a| matches!(a, Action::UnTagResources { .. }));
    let ran = run_failing(&p, &mut view, &[unmark]).unwrap();
    assert!(matches!(p.actions[0], Action::TagResources { .. }), "{p}");
    assert_eq!(ran[0], Some(true));
    assert!(ran[unmark + 1..].iter().all(Option::is_none), "{p}");
    let lb = view.load_balancer.as_ref().unwrap();
    assert!(skip_marked(&lb.tags) && lb.listeners.is_empty());
    // The next run takes the mark off first, then builds.
    converge(&d, &mut view);
    assert!(plan(&d, &view).unwrap().is_empty());
    assert!(!skip_marked(&view.load_balancer.unwrap().tags));
}

#[test]
fn a_failed_create_load_balancer_skips_everything() {
    let p = plan(&web(), &CloudView::default()).unwrap();
    let mut view = CloudView::default();
    let ran = run_failing(&p, &mut view, &[0]).unwrap();
    assert_eq!(ran[0], Some(false));
    assert!(ran[1..].iter().all(Option::is_none));
    assert!(view.load_balancer.is_none());
}

#[test]
fn a_failed_listener_skips_its_rules_and_targets_but_not_the_other_listener() {
    let (mut d, mut view, _) = rollout_with_a_new_host();
    let l = d.listeners.get_mut(&ListenerKey::HTTP_80).unwrap();
    l.rules.remove(&key(Some("b.com"), "/"));
    let mut https = tls_web().listeners.remove(&ListenerKey::HTTPS_443).unwrap();
    https.rules.remove(&key(None, "/"));
    d.listeners.insert(ListenerKey::HTTPS_443, https);
    let p = plan(&d, &view).unwrap();
    let create = index_of(&p, |a| {
        matches!(
            a,
            Action::CreateListeners {
                protocol: Protocol::Https,
                ..
            }
        )
    });
    let ran = run_failing(&p, &mut view, &[create]).unwrap();
    let skipped = skipped(&p, &ran);
    assert_eq!(skipped.len(), 2, "{p}");
    assert!(skipped[0].starts_with("CreateRules HTTPS:443(new)"), "{p}");
    assert!(skipped[1].starts_with("RegisterTargets") && skipped[1].contains("HTTPS:443(new)"));
    // HTTP:80's a.com/api moved all the same.
    assert_eq!(view.load_balancer.as_ref().unwrap().listeners.len(), 1);
    assert_eq!(
        a_com_targets(&view),
        [ins("ins-2", 30080), ins("ins-3", 30080)]
    );
    converge(&d, &mut view);
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn a_listener_is_deleted_only_after_the_deletes_of_its_rules() {
    let listener = ListenerRef {
        key: ListenerKey::HTTP_80,
        id: Some("lbl-1".into()),
    };
    let other = ListenerRef {
        key: ListenerKey::HTTPS_443,
        id: Some("lbl-2".into()),
    };
    let delete_rules = |l: &ListenerRef| Action::DeleteRules {
        listener: l.clone(),
        location_ids: vec!["loc-1".into()],
        keys: vec![key(Some("a.com"), "/")],
    };
    let actions = vec![
        delete_rules(&listener),
        delete_rules(&other),
        Action::DeleteListeners {
            listeners: vec![listener.clone()],
        },
    ];
    assert_eq!(dependencies(&actions), vec![vec![], vec![], vec![0]]);
}

#[test]
fn a_release_untags_only_after_our_listeners_are_deleted() {
    let p = plan_release(&adopted_view(false), IngressFact::OutOfClass, CLUSTER, UID).unwrap();
    let deps = dependencies(&p.actions);
    let untag = index_of(&p, |a| matches!(a, Action::UnTagResources { .. }));
    let delete = index_of(&p, |a| matches!(a, Action::DeleteListeners { .. }));
    assert_eq!(deps[untag], vec![delete]);
}

#[test]
fn a_new_listener_waits_for_the_port_it_replaces() {
    let mut view = adopted_view(true);
    view.load_balancer.as_mut().unwrap().listeners[0].port = 443;
    let p = plan(&tls_web(), &view).unwrap();
    let ran = run_failing(&p, &mut view, &[0]).unwrap();
    assert!(matches!(p.actions[0], Action::DeleteListeners { .. }));
    assert!(ran[1..].iter().all(Option::is_none), "{p}");
}

#[test]
fn targets_leave_a_rule_only_after_its_new_targets_are_in() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    d.listeners
        .get_mut(&ListenerKey::HTTP_80)
        .unwrap()
        .rules
        .get_mut(&key(Some("a.com"), "/api"))
        .unwrap()
        .targets = [(ins("ins-3", 30080), TargetWeight::Fixed(10))]
        .into_iter()
        .collect();
    let p = plan(&d, &view).unwrap();
    let register = index_of(&p, |a| matches!(a, Action::RegisterTargets { .. }));
    let ran = run_failing(&p, &mut view, &[register]).unwrap();
    let deregister = index_of(&p, |a| matches!(a, Action::DeregisterTargets { .. }));
    assert_eq!(ran[deregister], None, "{p}");
    let api = &view.load_balancer.as_ref().unwrap().listeners[0].rules;
    assert!(api.iter().all(|r| !r.targets.is_empty()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any plan, any one action failing: every action apply still runs finds its ground
    /// (the simulated CLB accepts it), and the next run's plan converges.
    #[test]
    fn any_one_failure_leaves_a_plan_that_runs_and_a_next_run_that_converges(
        (d, start) in arb_case(),
        pick in any::<prop::sample::Index>(),
    ) {
        let p = plan(&d, &start).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assume!(!p.actions.is_empty());
        let failing = pick.index(p.actions.len());
        let mut view = start.clone();
        let ran = run_failing(&p, &mut view, &[failing]).map_err(TestCaseError::fail)?;
        // An action is skipped only through a chain back to the failed one.
        let deps = dependencies(&p.actions);
        for (j, r) in ran.iter().enumerate() {
            if r.is_none() {
                prop_assert!(deps[j].iter().any(|i| ran[*i] != Some(true)), "{}\n{}", j, p);
            }
        }
        let next = plan(&d, &view).map_err(|e| TestCaseError::fail(e.to_string()))?;
        apply_to_view(&next, &mut view).map_err(|e| TestCaseError::fail(format!("{e}\n{next}")))?;
        prop_assert!(plan(&d, &view).unwrap().is_empty());
    }
}

#[test]
fn a_redirect_waits_for_both_its_rules_and_a_rule_is_deleted_after_its_redirect() {
    let listener = ListenerRef {
        key: ListenerKey::HTTP_80,
        id: Some("lbl-1".into()),
    };
    let rule = |k: RuleKey, loc: Option<&str>| RuleRef {
        listener: listener.clone(),
        key: k,
        location_id: loc.map(str::to_string),
    };
    let new_rule = |k: RuleKey| NewRule {
        key: k,
        certificate: None,
        default_server: false,
    };
    let pair = |source: RuleRef, target: RuleRef| crate::plan::RedirectPair {
        source,
        target,
        code: Some(301),
        take_url: false,
    };
    let actions = vec![
        Action::DeleteRewrite {
            pairs: vec![pair(
                rule(key(Some("old.com"), "/"), Some("loc-old")),
                rule(key(Some("x.com"), "/"), Some("loc-x")),
            )],
        },
        Action::CreateRules {
            listener: listener.clone(),
            rules: vec![new_rule(key(Some("a.com"), "/"))],
        },
        Action::ManualRewrite {
            pairs: vec![pair(
                rule(key(Some("a.com"), "/"), None),
                rule(key(Some("x.com"), "/"), Some("loc-x")),
            )],
        },
        Action::DeleteRules {
            listener: listener.clone(),
            location_ids: vec!["loc-old".into()],
            keys: vec![key(Some("old.com"), "/")],
        },
    ];
    assert_eq!(
        dependencies(&actions),
        vec![vec![], vec![], vec![1], vec![0]]
    );
}
