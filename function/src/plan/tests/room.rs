//! Swaps at the quota (issue 12 §3): on a CLB, listener or rule already holding its quota,
//! what the Ingress no longer wants goes first, just enough of it, so the swap converges in
//! one run under a CLB that refuses anything over the quota; nothing still wanted is deleted.

use super::*;
use crate::model::limits::{Quota, LISTENERS_PER_LB};
use crate::plan::depends::dependencies;
use crate::plan::sim::apply_within;

/// `web()`'s rules on HTTP listeners at `ports`.
fn web_on(ports: &[u16]) -> Desired {
    let mut d = web();
    let l = d.listeners.remove(&ListenerKey::HTTP_80).unwrap();
    for port in ports {
        let key = ListenerKey {
            protocol: Protocol::Http,
            port: *port,
        };
        d.listeners.insert(key, l.clone());
    }
    d
}

/// `d` converged on a new CLB, then the user's own TCP listeners added until the CLB holds
/// `total` listeners.
fn converged_then_filled(d: &Desired, total: usize) -> CloudView {
    let mut view = CloudView::default();
    converge(d, &mut view);
    let lb = view.load_balancer.as_mut().unwrap();
    for i in 0..total - lb.listeners.len() {
        lb.listeners.push(CloudListener {
            id: format!("lbl-user{i}"),
            protocol: Protocol::Tcp,
            port: 10000 + i as u16,
            name: format!("user-{i}"),
            certificate: None,
            sni: false,
            keepalive: None,
            rules: vec![],
        });
    }
    view
}

/// Plans `d` and runs it on a CLB that refuses what exceeds the default quota; the plan.
fn run_within_quota(d: &Desired, view: &mut CloudView) -> Plan {
    let p = plan(d, view).unwrap();
    apply_within(&p, view, &Quota::DEFAULT).unwrap_or_else(|e| panic!("{e}\n{p}"));
    p
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions.iter().map(summary).collect()
}

#[test]
fn golden_a_port_moved_on_a_clb_at_its_listener_quota_deletes_the_old_listener_first() {
    let mut view = converged_then_filled(&web_on(&[8080]), LISTENERS_PER_LB);
    let moved = web_on(&[8081]);
    let p = run_within_quota(&moved, &mut view);
    check_golden("listener_swap_at_quota", &p.to_string());
    let k = kinds(&p);
    assert!(k[0].starts_with("DeleteListeners HTTP:8080"), "{p}");
    assert!(k[1].starts_with("CreateListeners HTTP ports=[8081]"), "{p}");
    assert_eq!(
        k.iter()
            .filter(|a| a.starts_with("DeleteListeners"))
            .count(),
        1
    );
    // The new listener needs the room: if the delete fails, the create is not sent.
    assert_eq!(dependencies(&p.actions)[1], vec![0]);
    assert!(
        plan(&moved, &view).unwrap().is_empty(),
        "converged in one run"
    );
}

#[test]
fn tls_turned_on_while_http_goes_at_the_listener_quota_converges_in_one_run() {
    let mut view = converged_then_filled(&web(), LISTENERS_PER_LB);
    let d = tls_web();
    let p = run_within_quota(&d, &mut view);
    let k = kinds(&p);
    assert!(k[0].starts_with("DeleteListeners HTTP:80"), "{p}");
    assert!(k[1].starts_with("CreateListeners HTTPS ports=[443]"), "{p}");
    assert!(plan(&d, &view).unwrap().is_empty(), "converged in one run");
}

#[test]
fn only_as_many_old_listeners_as_the_new_ones_need_go_first_in_key_order() {
    // 47 of the user's + 80, 8080, 8090 of ours; the Ingress now wants 8081 alone.
    let mut view = converged_then_filled(&web_on(&[80, 8080, 8090]), LISTENERS_PER_LB);
    let d = web_on(&[8081]);
    let p = run_within_quota(&d, &mut view);
    let k = kinds(&p);
    assert!(k[0].starts_with("DeleteListeners HTTP:80("), "{p}");
    assert!(k[1].starts_with("CreateListeners HTTP ports=[8081]"), "{p}");
    let last = k.last().unwrap();
    assert!(
        last.starts_with("DeleteListeners HTTP:8080(") && last.contains("HTTP:8090("),
        "the rest after the new listener serves: {p}"
    );
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn below_the_listener_quota_a_port_move_stays_make_before_break() {
    let mut view = converged_then_filled(&web_on(&[8080]), LISTENERS_PER_LB - 1);
    let p = run_within_quota(&web_on(&[8081]), &mut view);
    let k = kinds(&p);
    assert!(k[0].starts_with("CreateListeners"), "{p}");
    assert!(
        k.last().unwrap().starts_with("DeleteListeners HTTP:8080"),
        "{p}"
    );
}

#[test]
fn a_wanted_listener_is_never_deleted_to_make_room_for_another() {
    // 49 of the user's + ours on 80; the Ingress wants 80 and 8080: there is no room, and
    // none is made by deleting 80. The API's refusal is what reports it (E4004).
    let mut view = converged_then_filled(&web(), LISTENERS_PER_LB);
    let d = web_on(&[80, 8080]);
    let p = plan(&d, &view).unwrap();
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::DeleteListeners { .. })),
        "{p}"
    );
    let refused = apply_within(&p, &mut view, &Quota::DEFAULT).unwrap_err();
    assert!(
        refused.starts_with("LimitExceeded: CreateListeners"),
        "{refused}"
    );
}

#[test]
fn a_rule_swap_on_a_full_listener_converges_in_one_run_under_the_quota() {
    let quota = Quota {
        rules_per_listener: 3,
        ..Default::default()
    };
    let with = |hosts: &[&str]| {
        http_80_within(
            quota,
            hosts
                .iter()
                .map(|h| (key(Some(h), "/"), rule(&[(ins("ins-1", 30080), 10)])))
                .collect(),
        )
    };
    let mut view = CloudView::default();
    converge(&with(&["a.com", "b.com", "c.com"]), &mut view);
    // Two of three swapped: both old rules go before the two new ones are made; a.com stays.
    let d = with(&["a.com", "d.com", "e.com"]);
    let p = plan(&d, &view).unwrap();
    apply_within(&p, &mut view, &quota).unwrap_or_else(|e| panic!("{e}\n{p}"));
    let k = kinds(&p);
    assert_eq!(k[0], "DeleteRules HTTP:80(lbl-sim2)", "{p}");
    assert_eq!(
        p.actions[0].to_string().lines().count(),
        3,
        "b.com and c.com: {p}"
    );
    assert!(k[1].starts_with("CreateRules"), "{p}");
    assert_eq!(
        dependencies(&p.actions)[1],
        vec![0],
        "the rules wait for their room"
    );
    assert!(plan(&d, &view).unwrap().is_empty(), "converged in one run");
}

/// One rule, a.com/ on HTTP:80, held to 4 targets, with these graceful weights.
fn rollout_step(targets: &[(&str, TargetWeight)]) -> Desired {
    let quota = Quota {
        targets_per_rule: 4,
        ..Default::default()
    };
    let mut d = http_80_within(quota, vec![(key(Some("a.com"), "/"), rule(&[]))]);
    let r = d.listeners.get_mut(&ListenerKey::HTTP_80).unwrap();
    r.rules.values_mut().next().unwrap().targets =
        targets.iter().map(|(id, w)| (ins(id, 30080), *w)).collect();
    d
}

/// `(instance, weight)` bound to the one rule.
fn bound(view: &CloudView) -> Vec<(String, u16)> {
    let lb = view.load_balancer.as_ref().unwrap();
    let mut out: Vec<(String, u16)> = lb.listeners[0].rules[0]
        .targets
        .iter()
        .map(|t| (t.key.to_string(), t.weight))
        .collect();
    out.sort();
    out
}

/// Runs each step under the quota and checks that after every single call the rule keeps a
/// target with weight > 0, and that each step converges in one run. The writes per step,
/// and the targets cut: those that left while still wanted and above weight 0.
fn roll(steps: &[Vec<(&str, TargetWeight)>]) -> (Vec<Vec<String>>, Vec<String>) {
    let mut view = CloudView::default();
    let first = rollout_step(&steps[0]);
    converge(&first, &mut view);
    let mut writes = Vec::new();
    let mut cut = Vec::new();
    for step in &steps[1..] {
        let d = rollout_step(step);
        let p = plan(&d, &view).unwrap();
        let mut before = bound(&view);
        for after in apply_within(&p, &mut view, &d.quota).unwrap_or_else(|e| panic!("{e}\n{p}")) {
            let now = bound(&after);
            assert!(now.iter().any(|(_, w)| *w > 0), "no serving target: {p}");
            for (gone, weight) in before.iter().filter(|t| !now.iter().any(|n| n.0 == t.0)) {
                let wanted = step
                    .iter()
                    .any(|(id, _)| gone.starts_with(&format!("{id}:")));
                if *weight > 0 && wanted {
                    cut.push(gone.clone());
                }
            }
            before = now;
        }
        assert!(plan(&d, &view).unwrap().is_empty(), "one run: {step:?}");
        writes.push(kinds(&p));
    }
    (writes, cut)
}

use TargetWeight::{Drain, Serve};

#[test]
fn a_rollout_on_a_rule_at_its_target_limit_keeps_what_is_bound_and_never_cuts_a_drain() {
    // Old Pods ins-5..8 fill the rule; new ones (ins-1, ins-2) sort before them, so a cut in
    // key order would drop a serving or draining old one to let them in.
    let old = |drain: &[&'static str], gone: &[&str]| -> Vec<(&'static str, TargetWeight)> {
        ["ins-5", "ins-6", "ins-7", "ins-8"]
            .into_iter()
            .filter(|p| !gone.contains(p))
            .map(|p| (p, if drain.contains(&p) { Drain } else { Serve }))
            .collect()
    };
    let with = |mut v: Vec<(&'static str, TargetWeight)>, new: &[&'static str]| {
        v.extend(new.iter().map(|p| (*p, Serve)));
        v
    };
    let (writes, cut) = roll(&[
        old(&[], &[]),
        with(old(&[], &[]), &["ins-1"]),
        with(old(&["ins-5"], &[]), &["ins-1"]),
        with(old(&[], &["ins-5"]), &["ins-1"]),
        with(old(&[], &["ins-5"]), &["ins-1", "ins-2"]),
        with(old(&["ins-6"], &["ins-5"]), &["ins-1", "ins-2"]),
        with(old(&[], &["ins-5", "ins-6"]), &["ins-1", "ins-2"]),
    ]);
    assert_eq!(
        writes,
        vec![
            vec![],
            vec!["ModifyTargetWeight (1)".to_string()],
            vec!["DeregisterTargets (1)".into(), "RegisterTargets (1)".into()],
            vec![],
            vec!["ModifyTargetWeight (1)".into()],
            vec!["DeregisterTargets (1)".into(), "RegisterTargets (1)".into()],
        ],
        "a new Pod waits while the rule is full, and takes the place of a drained one"
    );
    assert!(cut.is_empty(), "{cut:?}");
}

#[test]
fn every_old_target_draining_at_once_at_the_limit_still_leaves_one_serving() {
    let old = ["ins-5", "ins-6", "ins-7", "ins-8"];
    let drained: Vec<(&str, TargetWeight)> = old.iter().map(|p| (*p, Drain)).collect();
    let mut both = drained.clone();
    both.extend(["ins-1", "ins-2", "ins-3", "ins-4"].map(|p| (p, Serve)));
    let (writes, cut) = roll(&[
        old.iter().map(|p| (*p, Serve)).collect(),
        both.clone(),
        both,
    ]);
    // Draining all four would leave the rule nothing that serves for the whole grace
    // period, so one old target (the last in order) makes room for one new one before the
    // rest drain: the one cut of a drain, and the least harm. Then the rule stays as it is
    // until the drained Pods are gone.
    assert_eq!(
        writes,
        vec![
            vec![
                "DeregisterTargets (1)".to_string(),
                "RegisterTargets (1)".into(),
                "ModifyTargetWeight (3)".into()
            ],
            vec![],
        ]
    );
    assert_eq!(cut, vec!["ins-8:30080".to_string()]);
}
