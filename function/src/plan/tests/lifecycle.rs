//! Plans under the lifecycle annotations: attributes set on create and kept, zero writes in
//! the steady state with every one on, the skip mark, and releases that keep the CLB.

use super::*;
use crate::model::lifecycle::{
    create_tags, LbAttributes, Lifecycle, WantedAttributes, OWNER_USER, TAG_SKIP, TAG_SKIP_VALUE,
};
use crate::model::ownership::TAG_LIFECYCLE_OWNER;

pub(super) fn arb_lifecycle() -> impl Strategy<Value = Lifecycle> {
    let groups = proptest::option::of(proptest::sample::subsequence(
        vec!["sg-1".to_string(), "sg-2".to_string(), "sg-3".to_string()],
        0..3,
    ));
    (
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        groups,
    )
        .prop_map(
            |(retain, delete_protect, pass_to_target, security_groups)| Lifecycle {
                skip: false,
                retain,
                attributes: WantedAttributes {
                    delete_protect,
                    pass_to_target,
                    security_groups,
                },
            },
        )
}

fn everything_on() -> Desired {
    let mut d = web();
    d.lifecycle = Lifecycle {
        skip: false,
        retain: Some(true),
        attributes: WantedAttributes {
            delete_protect: Some(true),
            pass_to_target: Some(true),
            security_groups: Some(vec!["sg-1".into(), "sg-2".into()]),
        },
    };
    // As desire() does: the lifecycle owner rides in the create call.
    if let LbSource::Create(spec) = &mut d.load_balancer {
        spec.tags.extend(create_tags(&d.lifecycle));
    }
    d
}

fn attributes(view: &CloudView) -> &LbAttributes {
    &view.load_balancer.as_ref().expect("CLB").attributes
}

#[test]
fn golden_new_ingress_with_every_lifecycle_annotation_sets_them_once_then_nothing() {
    let d = everything_on();
    let mut view = CloudView::default();
    let p = converge(&d, &mut view);
    check_golden("lifecycle_new", &p.to_string());
    assert_eq!(
        attributes(&view),
        &LbAttributes {
            delete_protect: true,
            pass_to_target: true,
            security_groups: vec!["sg-1".into(), "sg-2".into()],
        }
    );
    let tags = &view.load_balancer.as_ref().unwrap().tags;
    assert_eq!(tags[TAG_LIFECYCLE_OWNER], OWNER_USER);
    let again = plan(&d, &view).unwrap();
    assert!(again.is_empty(), "{again}");
}

#[test]
fn protection_asked_later_is_one_modify_call_and_a_console_change_is_put_back() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    d.lifecycle.attributes.delete_protect = Some(true);
    let p = converge(&d, &mut view);
    assert_eq!(
        p.actions,
        vec![Action::ModifyLoadBalancerAttributes {
            delete_protect: Some(true),
            pass_to_target: None,
        }]
    );
    view.load_balancer
        .as_mut()
        .unwrap()
        .attributes
        .delete_protect = false;
    assert_eq!(plan(&d, &view).unwrap().actions, p.actions);
}

#[test]
fn attributes_the_ingress_does_not_name_are_left_as_the_console_set_them() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let lb = view.load_balancer.as_mut().unwrap();
    lb.attributes = LbAttributes {
        delete_protect: true,
        pass_to_target: true,
        security_groups: vec!["sg-console".into()],
    };
    lb.tags
        .insert(TAG_LIFECYCLE_OWNER.into(), OWNER_USER.into());
    assert!(plan(&web(), &view).unwrap().is_empty());
}

#[test]
fn empty_security_groups_unbind_and_retain_false_hands_the_clb_back() {
    let mut view = CloudView::default();
    converge(&everything_on(), &mut view);
    let mut d = web();
    d.lifecycle.retain = Some(false);
    d.lifecycle.attributes.security_groups = Some(vec![]);
    let p = converge(&d, &mut view);
    assert_eq!(
        p.actions,
        vec![
            Action::TagResources {
                tags: [(TAG_LIFECYCLE_OWNER.to_string(), "tke".to_string())].into()
            },
            Action::SetSecurityGroups {
                security_groups: vec![]
            },
        ]
    );
    assert!(attributes(&view).security_groups.is_empty());
}

#[test]
fn golden_skip_marks_its_clb_once_and_then_plans_nothing() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let p = plan_skip(&view, CLUSTER, UID);
    check_golden("skip_marks", &p.to_string());
    apply_to_view(&p, &mut view).unwrap();
    assert!(plan_skip(&view, CLUSTER, UID).is_empty());
    // Leaving skip mode takes the mark off again, and nothing else.
    let back = plan(&web(), &view).unwrap();
    assert_eq!(
        back.actions,
        vec![Action::UnTagResources {
            keys: vec![TAG_SKIP.to_string()]
        }]
    );
}

#[test]
fn skip_never_writes_a_clb_not_tagged_for_this_ingress() {
    assert!(plan_skip(&CloudView::default(), CLUSTER, UID).is_empty());
    let mut view = adopted_view(false);
    view.load_balancer.as_mut().unwrap().tags.clear();
    assert!(plan_skip(&view, CLUSTER, UID).is_empty());
    assert!(plan_skip(&adopted_view(true), "cls-other", UID).is_empty());
}

#[test]
fn golden_release_of_a_skip_marked_clb_keeps_listeners_and_targets() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let lb = view.load_balancer.as_mut().unwrap();
    lb.tags.insert(TAG_SKIP.into(), TAG_SKIP_VALUE.into());
    let before = lb.listeners.clone();
    let p = plan_release(&view, IngressFact::Gone, CLUSTER, UID).unwrap();
    check_golden("release_skip", &p.to_string());
    assert_eq!(p.problems[0].code, codes::LB_KEPT);
    apply_to_view(&p, &mut view).unwrap();
    let lb = view.load_balancer.unwrap();
    assert_eq!(lb.listeners, before);
    assert!(!ownership::is_ours(&lb.tags, CLUSTER, UID));
}

#[test]
fn golden_release_of_a_protected_clb_never_deletes_it_and_says_so() {
    let mut view = adopted_view(true);
    view.load_balancer
        .as_mut()
        .unwrap()
        .attributes
        .delete_protect = true;
    let p = plan_release(&view, IngressFact::Gone, CLUSTER, UID).unwrap();
    check_golden("release_protected", &p.to_string());
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteLoadBalancer { .. })));
    assert_eq!(p.problems[0].code, codes::LB_KEPT);
}

#[test]
fn release_of_a_retained_clb_keeps_it_like_a_user_owned_one() {
    let mut view = CloudView::default();
    converge(&everything_on(), &mut view);
    view.load_balancer
        .as_mut()
        .unwrap()
        .attributes
        .delete_protect = false;
    let p = plan_release(&view, IngressFact::Gone, CLUSTER, UID).unwrap();
    assert!(matches!(
        p.actions.last(),
        Some(Action::UnTagResources { .. })
    ));
    assert!(p.problems.is_empty());
    apply_to_view(&p, &mut view).unwrap();
    assert!(view.load_balancer.is_some());
}
