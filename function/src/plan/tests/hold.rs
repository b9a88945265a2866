//! Held rules (their Service or TLS Secret is missing) keep what the CLB has; an explicit
//! change of the Ingress still removes a rule.

use super::*;

/// `k` of `listener` is held: out of the desired rules, into `held` (as `desire` does).
fn hold(d: &mut Desired, listener: ListenerKey, k: RuleKey) {
    if let Some(l) = d.listeners.get_mut(&listener) {
        l.rules.remove(&k);
        if l.rules.is_empty() {
            d.listeners.remove(&listener);
        }
    }
    d.held.entry(listener).or_default().insert(k);
}

fn deletes(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::DeleteRules { .. }
                    | Action::DeleteListeners { .. }
                    | Action::DeregisterTargets { .. }
            )
        })
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_rule_whose_service_is_missing_keeps_its_rule_and_targets_while_the_others_move() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    hold(&mut d, ListenerKey::HTTP_80, key(Some("a.com"), "/api"));
    d.listeners
        .get_mut(&ListenerKey::HTTP_80)
        .unwrap()
        .rules
        .get_mut(&key(None, "/"))
        .unwrap()
        .targets = [(ins("ins-5", 30081), TargetWeight::Fixed(10))]
        .into_iter()
        .collect();
    let p = converge(&d, &mut view);
    assert!(deletes(&p).iter().all(|a| !a.contains("a.com")), "{p}");
    let lb = view.load_balancer.as_ref().unwrap();
    let api = lb.listeners[0].rules.iter().find(|r| r.domain == "a.com");
    assert_eq!(api.map(|r| r.targets.len()), Some(2), "{p}");
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn a_listener_left_with_held_rules_only_is_kept_as_it_is() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    hold(&mut d, ListenerKey::HTTP_80, key(Some("a.com"), "/api"));
    hold(&mut d, ListenerKey::HTTP_80, key(None, "/"));
    assert!(d.listeners.is_empty());
    let p = plan(&d, &view).unwrap();
    assert!(p.is_empty(), "{p}");
}

#[test]
fn an_https_listener_whose_secrets_are_missing_keeps_its_certificate_and_rules() {
    let mut view = CloudView::default();
    converge(&tls_web(), &mut view);
    let mut d = tls_web();
    // The default certificate's Secret and a.com's are gone; nothing else changed.
    hold(&mut d, ListenerKey::HTTPS_443, key(Some("a.com"), "/api"));
    hold(&mut d, ListenerKey::HTTPS_443, key(None, "/"));
    let p = plan(&d, &view).unwrap();
    assert!(p.is_empty(), "{p}");
    // Only a.com is held: the default domain's rule keeps being managed.
    let mut d = tls_web();
    hold(&mut d, ListenerKey::HTTPS_443, key(Some("a.com"), "/api"));
    d.listeners
        .get_mut(&ListenerKey::HTTPS_443)
        .unwrap()
        .certificate = None;
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn a_path_removed_from_the_ingress_goes_even_while_another_is_held() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    hold(&mut d, ListenerKey::HTTP_80, key(Some("a.com"), "/api"));
    d.listeners
        .get_mut(&ListenerKey::HTTP_80)
        .unwrap()
        .rules
        .remove(&key(None, "/"));
    let p = plan(&d, &view).unwrap();
    let gone = deletes(&p);
    assert_eq!(gone.len(), 1, "{p}");
    assert!(
        gone[0].starts_with("DeleteRules") && gone[0].contains(SIM_VIP),
        "{p}"
    );
}

#[test]
fn a_held_rule_the_clb_does_not_have_is_not_created() {
    let mut d = web();
    hold(&mut d, ListenerKey::HTTP_80, key(Some("a.com"), "/api"));
    let mut view = CloudView::default();
    let p = converge(&d, &mut view);
    assert!(!p.to_string().contains("a.com"), "{p}");
    // Once the Service is back, the rule is created.
    let p = converge(&web(), &mut view);
    assert!(p.to_string().contains("a.com"), "{p}");
}
