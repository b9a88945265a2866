use std::collections::BTreeMap;

use proptest::prelude::*;

use super::sim::{apply_to_view, SIM_VIP};
use super::*;
use crate::model::graceful::TargetWeight;
use crate::model::lb::{Backend, LbType, DEFAULT_WEIGHT};
use crate::model::ownership::{
    adoption_tags, tags_for_new_lb, IngressFact, OUR_LISTENER_NAME, TAG_CREATED_BY,
};

mod depends;
mod graceful;
mod hold;
mod lifecycle;
mod redirects;
mod room;

const CLUSTER: &str = "cls-test";
const UID: &str = "uid-1";

fn spec() -> LbSpec {
    LbSpec {
        lb_type: LbType::Open,
        name: "cls-test_default_web".into(),
        vpc_id: None,
        subnet_id: None,
        internet_charge_type: None,
        internet_max_bandwidth_out: None,
        extensive_parameters: Default::default(),
        tags: tags_for_new_lb(CLUSTER, UID),
        client_token: "token-1".into(),
    }
}

fn desired(source: LbSource, listeners: Vec<(ListenerKey, DesiredListener)>) -> Desired {
    Desired {
        cluster_id: CLUSTER.into(),
        ingress_uid: UID.into(),
        ingress: "default/web".into(),
        load_balancer: source,
        listeners: listeners.into_iter().collect(),
        lifecycle: Default::default(),
        problems: Vec::new(),
        service_config: None,
        quota: Default::default(),
        redirects: Default::default(),
        held: Default::default(),
    }
}

fn ins(id: &str, port: u16) -> TargetKey {
    TargetKey {
        backend: Backend::Instance(id.into()),
        port,
    }
}

/// A rule whose targets' weights the Ingress asks for (asserted on every run).
fn rule(targets: &[(TargetKey, u16)]) -> DesiredRule {
    DesiredRule {
        certificate: None,
        targets: targets
            .iter()
            .map(|(k, w)| (k.clone(), TargetWeight::Fixed(*w)))
            .collect(),
    }
}

fn key(domain: Option<&str>, url: &str) -> RuleKey {
    RuleKey {
        domain: domain.map_or(Domain::Default, |d| Domain::Name(d.into())),
        url: url.into(),
    }
}

fn http(rules: Vec<(RuleKey, DesiredRule)>) -> DesiredListener {
    DesiredListener {
        certificate: None,
        sni: false,
        default_server: None,
        rules: rules.into_iter().collect(),
    }
}

fn cert(id: &str) -> Certificate {
    Certificate::new(id.into(), None)
}

/// The Ingress of most golden cases: a.com/api on two nodes, the default domain on one.
fn web() -> Desired {
    desired(
        LbSource::Create(spec()),
        vec![(
            ListenerKey::HTTP_80,
            http(vec![
                (
                    key(Some("a.com"), "/api"),
                    rule(&[(ins("ins-1", 30080), 10), (ins("ins-2", 30080), 10)]),
                ),
                (key(None, "/"), rule(&[(ins("ins-1", 30081), 10)])),
            ]),
        )],
    )
}

pub(super) fn converge(d: &Desired, view: &mut CloudView) -> Plan {
    let p = plan(d, view).expect("plan");
    apply_to_view(&p, view).expect("apply");
    p
}

pub(super) fn check_golden(name: &str, actual: &str) {
    let path = format!("{}/src/plan/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual, expected,
        "golden {name} differs (UPDATE_GOLDEN=1 rewrites)"
    );
}

#[test]
fn golden_new_ingress_from_nothing_creates_everything_in_order() {
    let mut view = CloudView::default();
    let p = converge(&web(), &mut view);
    check_golden("new_ingress", &p.to_string());
    assert!(plan(&web(), &view).unwrap().is_empty());
}

#[test]
fn golden_steady_state_is_empty_and_says_so() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let p = plan(&web(), &view).unwrap();
    assert!(p.is_empty());
    check_golden("steady_state", &p.to_string());
}

#[test]
fn golden_host_added_creates_one_rule_and_registers_its_targets() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    d.listeners
        .get_mut(&ListenerKey::HTTP_80)
        .unwrap()
        .rules
        .insert(key(Some("b.com"), "/"), rule(&[(ins("ins-3", 30082), 10)]));
    let p = converge(&d, &mut view);
    check_golden("host_added", &p.to_string());
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn golden_backend_moved_registers_before_deregistering() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let mut d = web();
    let r = d
        .listeners
        .get_mut(&ListenerKey::HTTP_80)
        .unwrap()
        .rules
        .get_mut(&key(Some("a.com"), "/api"))
        .unwrap();
    r.targets = [
        (ins("ins-2", 30080), TargetWeight::Fixed(50)),
        (ins("ins-3", 30080), TargetWeight::Fixed(10)),
    ]
    .into_iter()
    .collect();
    let p = converge(&d, &mut view);
    check_golden("backend_moved", &p.to_string());
    assert!(plan(&d, &view).unwrap().is_empty());
}

fn tls_web() -> Desired {
    let mut d = web();
    let mut l = d.listeners.remove(&ListenerKey::HTTP_80).unwrap();
    l.certificate = Some(cert("cert-default"));
    l.sni = true;
    for (k, r) in l.rules.iter_mut() {
        r.certificate = Some(if k.domain == Domain::Name("a.com".into()) {
            Certificate::new("cert-a".into(), Some("ca-1".into()))
        } else {
            cert("cert-default")
        });
    }
    d.listeners.insert(ListenerKey::HTTPS_443, l);
    d
}

#[test]
fn golden_tls_turned_on_moves_rules_to_443_before_dropping_80() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let d = tls_web();
    let p = converge(&d, &mut view);
    check_golden("tls_turned_on", &p.to_string());
    assert!(plan(&d, &view).unwrap().is_empty());
}

fn adopted_view(created_by: bool) -> CloudView {
    let mut tags = adoption_tags(CLUSTER, UID);
    if created_by {
        tags.insert(TAG_CREATED_BY.into(), "yes".into());
    }
    CloudView {
        load_balancer: Some(CloudLb {
            id: "lb-1".into(),
            name: "web".into(),
            lb_type: LbType::Open,
            vips: vec!["1.2.3.4".into()],
            domain: None,
            status: 1,
            tags,
            listeners: vec![
                CloudListener {
                    id: "lbl-ours".into(),
                    protocol: Protocol::Http,
                    port: 80,
                    name: OUR_LISTENER_NAME.into(),
                    certificate: None,
                    sni: false,
                    keepalive: None,
                    rules: vec![],
                },
                CloudListener {
                    id: "lbl-foreign".into(),
                    protocol: Protocol::Tcp,
                    port: 9000,
                    name: "user-tcp".into(),
                    certificate: None,
                    sni: false,
                    keepalive: None,
                    rules: vec![],
                },
            ],
            attributes: Default::default(),
        }),
    }
}

#[test]
fn golden_release_with_created_by_flag_deletes_the_clb() {
    let p = plan_release(&adopted_view(true), IngressFact::Gone, CLUSTER, UID).unwrap();
    check_golden("release_created", &p.to_string());
}

#[test]
fn golden_release_without_created_by_flag_deletes_our_listeners_then_untags() {
    let mut view = adopted_view(false);
    let p = plan_release(&view, IngressFact::OutOfClass, CLUSTER, UID).unwrap();
    check_golden("release_adopted", &p.to_string());
    apply_to_view(&p, &mut view).unwrap();
    let lb = view.load_balancer.unwrap();
    assert_eq!(lb.listeners.len(), 1);
    assert_eq!(lb.listeners[0].id, "lbl-foreign");
    assert!(lb.tags.is_empty());
}

#[test]
fn release_without_proof_or_with_foreign_tags_plans_nothing() {
    let view = adopted_view(true);
    assert!(plan_release(&view, IngressFact::Present, CLUSTER, UID).is_err());
    assert!(plan_release(&view, IngressFact::Unknown, CLUSTER, UID).is_err());
    assert!(plan_release(&view, IngressFact::Gone, "cls-other", UID).is_err());
    assert!(plan_release(&view, IngressFact::Gone, CLUSTER, "uid-other").is_err());
    assert!(
        plan_release(&CloudView::default(), IngressFact::Gone, CLUSTER, UID)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn adoption_of_free_clb_tags_it_first_and_leaves_foreign_listeners_alone_later() {
    let mut view = CloudView {
        load_balancer: Some(CloudLb {
            id: "lb-1".into(),
            name: "x".into(),
            lb_type: LbType::Internal,
            vips: vec!["10.0.0.5".into()],
            domain: None,
            status: 1,
            tags: [("team".to_string(), "web".to_string())].into(),
            listeners: vec![],
            attributes: Default::default(),
        }),
    };
    let mut d = web();
    d.load_balancer = LbSource::Adopt {
        lb_id: "lb-1".into(),
    };
    let p = converge(&d, &mut view);
    assert!(matches!(p.actions[0], Action::TagResources { .. }));
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateLoadBalancer { .. })));
    // The user adds a listener of their own; we keep ignoring it.
    let foreign = CloudListener {
        id: "lbl-user".into(),
        protocol: Protocol::Http,
        port: 8080,
        name: "user".into(),
        certificate: None,
        sni: false,
        keepalive: None,
        rules: vec![],
    };
    view.load_balancer.as_mut().unwrap().listeners.push(foreign);
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn adoption_refusals_plan_nothing_with_tke_codes() {
    let mut d = web();
    d.load_balancer = LbSource::Adopt {
        lb_id: "lb-1".into(),
    };
    assert_eq!(plan(&d, &CloudView::default()).unwrap_err().code, "E4018");
    let mut v = adopted_view(true);
    assert_eq!(plan(&d, &v).unwrap_err().code, "E4019");
    let lb = v.load_balancer.as_mut().unwrap();
    lb.tags = [("tke-lb-ingress-uuid".to_string(), "other".to_string())].into();
    assert_eq!(plan(&d, &v).unwrap_err().code, "E4020");
    let lb = v.load_balancer.as_mut().unwrap();
    lb.tags.clear();
    assert_eq!(plan(&d, &v).unwrap_err().code, "E4021");
}

#[test]
fn clb_found_by_uid_but_tagged_for_another_cluster_is_refused() {
    let mut v = adopted_view(true);
    v.load_balancer
        .as_mut()
        .unwrap()
        .tags
        .insert("tke-clusterId".into(), "cls-other".into());
    assert_eq!(plan(&web(), &v).unwrap_err().code, "E4017");
}

#[test]
fn foreign_listener_on_a_desired_port_is_skipped_with_a_problem() {
    let mut v = adopted_view(false);
    let lb = v.load_balancer.as_mut().unwrap();
    lb.listeners[0].name = "user-http".into();
    let mut d = web();
    d.load_balancer = LbSource::Adopt {
        lb_id: "lb-1".into(),
    };
    let p = plan(&d, &v).unwrap();
    assert!(p.is_empty());
    assert_eq!(p.problems[0].code, "ListenerPortConflict");
}

#[test]
fn sni_stays_on_when_desired_drops_per_host_certificates() {
    let mut view = CloudView::default();
    converge(&tls_web(), &mut view);
    let mut d = tls_web();
    let l = d.listeners.get_mut(&ListenerKey::HTTPS_443).unwrap();
    l.sni = false;
    for r in l.rules.values_mut() {
        r.certificate = None;
    }
    let p = converge(&d, &mut view);
    // a.com falls back to the default certificate on its domain; the listener keeps SNI.
    assert_eq!(p.actions.len(), 1, "{p}");
    assert!(matches!(
        &p.actions[0],
        Action::ModifyDomainAttributes { certificate, .. } if certificate.cert_id == "cert-default"
    ));
    let lb = view.load_balancer.as_ref().unwrap();
    assert!(lb.listeners[0].sni);
    assert!(plan(&d, &view).unwrap().is_empty());
}

#[test]
fn thousand_targets_register_in_batches_of_at_most_500() {
    let targets: Vec<(TargetKey, u16)> = (0..1200)
        .map(|i| (ins(&format!("ins-{i}"), 30080), DEFAULT_WEIGHT))
        .collect();
    // A raised quota lets 1,200 onto one rule; batching is what is under test.
    let d = http_80_within(
        crate::model::limits::Quota {
            targets_per_rule: 1200,
            ..Default::default()
        },
        vec![(key(Some("a.com"), "/"), rule(&targets))],
    );
    let mut view = CloudView::default();
    let p = converge(&d, &mut view);
    let sizes: Vec<usize> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RegisterTargets { targets } => Some(targets.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![500, 500, 200]);
    let empty = desired(
        LbSource::Create(spec()),
        vec![(
            ListenerKey::HTTP_80,
            http(vec![(key(Some("a.com"), "/"), rule(&[]))]),
        )],
    );
    let p = converge(&empty, &mut view);
    let sizes: Vec<usize> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeregisterTargets { targets } => Some(targets.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![500, 500, 200]);
}

#[test]
fn our_listener_on_a_port_needed_by_another_protocol_is_replaced() {
    let mut view = adopted_view(true);
    let lb = view.load_balancer.as_mut().unwrap();
    lb.listeners[0].port = 443;
    let p = converge(&tls_web(), &mut view);
    assert!(
        matches!(&p.actions[0], Action::DeleteListeners { listeners } if listeners[0].id.as_deref() == Some("lbl-ours"))
    );
    assert!(matches!(
        &p.actions[1],
        Action::CreateListeners {
            protocol: Protocol::Https,
            ..
        }
    ));
    assert!(plan(&tls_web(), &view).unwrap().is_empty());
}

#[test]
fn plan_serialises_to_json_with_action_tags() {
    let p = plan(&web(), &CloudView::default()).unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["actions"][0]["action"], "CreateLoadBalancer");
    assert_eq!(json["actions"][1]["action"], "CreateListeners");
    assert_eq!(json["actions"][1]["protocol"], "HTTP");
}

// ---------------------------------------------------------------- proptest

const DOMAINS: [&str; 4] = ["a.com", "*.b.com", "c.com", SIM_VIP];
const URLS: [&str; 3] = ["/", "/api", "=/x"];
const CERTS: [&str; 3] = ["cert-a", "cert-b", "cert-c"];

fn arb_domain() -> impl Strategy<Value = Domain> {
    prop_oneof![
        Just(Domain::Default),
        (0..3usize).prop_map(|i| Domain::Name(DOMAINS[i].into())),
    ]
}

fn arb_target() -> impl Strategy<Value = TargetKey> {
    prop_oneof![
        (1..5u8)
            .prop_map(|i| format!("ins-{i}"))
            .prop_map(Backend::Instance),
        (1..4u8)
            .prop_map(|i| format!("10.1.0.{i}"))
            .prop_map(Backend::EniIp),
    ]
    .prop_flat_map(|backend| (Just(backend), 30000..30003u16))
    .prop_map(|(backend, port)| TargetKey { backend, port })
}

fn arb_weight() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(10u16), Just(50u16)]
}

fn arb_cert() -> impl Strategy<Value = Certificate> {
    ((0..3usize), proptest::option::of(Just("ca-1".to_string())))
        .prop_map(|(i, ca)| Certificate::new(CERTS[i].into(), ca))
}

fn arb_target_weight() -> impl Strategy<Value = TargetWeight> {
    prop_oneof![
        Just(TargetWeight::Serve),
        Just(TargetWeight::Drain),
        arb_weight().prop_map(TargetWeight::Fixed),
    ]
}

fn arb_targets() -> impl Strategy<Value = BTreeMap<TargetKey, TargetWeight>> {
    proptest::collection::btree_map(arb_target(), arb_target_weight(), 0..5)
}

fn arb_desired_listener(https: bool) -> impl Strategy<Value = DesiredListener> {
    let rules = proptest::collection::btree_map(
        (arb_domain(), (0..3usize)).prop_map(|(domain, u)| RuleKey {
            domain,
            url: URLS[u].into(),
        }),
        arb_targets(),
        0..5,
    );
    let domain_certs = proptest::collection::btree_map(
        (0..3usize).prop_map(|i| DOMAINS[i].to_string()),
        arb_cert(),
        0..3,
    );
    (
        rules,
        domain_certs,
        arb_cert(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(rules, domain_certs, default_cert, sni, default_backend)| DesiredListener {
                certificate: https.then_some(default_cert),
                sni: https && sni,
                default_server: default_backend.then_some(Domain::Default),
                rules: rules
                    .into_iter()
                    .map(|(k, targets)| {
                        let certificate = match &k.domain {
                            Domain::Name(n) if https => domain_certs.get(n).cloned(),
                            _ => None,
                        };
                        (
                            k,
                            DesiredRule {
                                certificate,
                                targets,
                            },
                        )
                    })
                    .collect(),
            },
        )
}

fn arb_desired() -> impl Strategy<Value = Desired> {
    let listeners = (
        proptest::option::of(arb_desired_listener(false)),
        proptest::option::of(arb_desired_listener(true)),
        proptest::option::of(arb_desired_listener(false)),
    );
    (any::<bool>(), listeners, lifecycle::arb_lifecycle()).prop_map(
        |(adopt, (h80, h443, h8080), lc)| {
            let source = if adopt {
                LbSource::Adopt {
                    lb_id: "lb-1".into(),
                }
            } else {
                LbSource::Create(spec())
            };
            let mut listeners = Vec::new();
            if let Some(l) = h80 {
                listeners.push((ListenerKey::HTTP_80, l));
            }
            if let Some(l) = h443 {
                listeners.push((ListenerKey::HTTPS_443, l));
            }
            if let Some(l) = h8080 {
                listeners.push((
                    ListenerKey {
                        protocol: Protocol::Http,
                        port: 8080,
                    },
                    l,
                ));
            }
            let mut d = desired(source, listeners);
            if let LbSource::Create(spec) = &mut d.load_balancer {
                spec.tags.extend(crate::model::lifecycle::create_tags(&lc));
            }
            d.lifecycle = lc;
            d
        },
    )
}

fn arb_cloud_rule() -> impl Strategy<Value = (String, String, Option<Certificate>, Vec<CloudTarget>)>
{
    (
        (0..4usize).prop_map(|i| DOMAINS[i].to_string()),
        (0..3usize).prop_map(|i| URLS[i].to_string()),
        proptest::option::of(arb_cert()),
        proptest::collection::btree_map(arb_target(), arb_weight(), 0..5).prop_map(|m| {
            m.into_iter()
                .map(|(key, weight)| CloudTarget { key, weight })
                .collect()
        }),
    )
}

fn arb_cloud_listener() -> impl Strategy<Value = CloudListener> {
    (
        prop_oneof![
            Just(Protocol::Http),
            Just(Protocol::Https),
            Just(Protocol::Tcp)
        ],
        prop_oneof![Just(80u16), Just(443u16), Just(8080u16), Just(9000u16)],
        any::<bool>(),
        proptest::option::of(arb_cert()),
        any::<bool>(),
        proptest::collection::vec(arb_cloud_rule(), 0..5),
    )
        .prop_map(|(protocol, port, ours, certificate, sni, rules)| {
            let l7 = matches!(protocol, Protocol::Http | Protocol::Https);
            let mut seen = std::collections::BTreeSet::new();
            let rules = if l7 {
                rules
                    .into_iter()
                    .filter(|(d, u, _, _)| seen.insert((d.clone(), u.clone())))
                    .enumerate()
                    .map(|(i, (domain, url, certificate, targets))| CloudRule {
                        location_id: format!("loc-{port}-{i}"),
                        domain,
                        url,
                        certificate,
                        default_server: i == 0,
                        attributes: Default::default(),
                        targets,
                        redirect: None,
                    })
                    .collect()
            } else {
                vec![]
            };
            CloudListener {
                id: format!("lbl-{port}"),
                protocol,
                port,
                name: if ours && l7 {
                    OUR_LISTENER_NAME.into()
                } else {
                    "foreign".into()
                },
                certificate: certificate.filter(|_| protocol == Protocol::Https),
                sni: sni && protocol == Protocol::Https,
                keepalive: None,
                rules,
            }
        })
}

fn arb_cloud(d: &Desired) -> impl Strategy<Value = CloudView> {
    let adopt = matches!(d.load_balancer, LbSource::Adopt { .. });
    (
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(arb_cloud_listener(), 0..5),
        0..3u8,
    )
        .prop_map(move |(present, tagged, listeners, address)| {
            if !present && !adopt {
                return CloudView::default();
            }
            let mut tags = if adopt {
                if tagged {
                    adoption_tags(CLUSTER, UID)
                } else {
                    BTreeMap::new()
                }
            } else {
                tags_for_new_lb(CLUSTER, UID)
            };
            tags.insert("team".into(), "web".into());
            let mut seen = std::collections::BTreeSet::new();
            let listeners: Vec<CloudListener> = if adopt && !tagged {
                vec![]
            } else {
                listeners
                    .into_iter()
                    .filter(|l| seen.insert(l.port))
                    .collect()
            };
            CloudView {
                load_balancer: Some(CloudLb {
                    id: "lb-1".into(),
                    name: "web".into(),
                    lb_type: LbType::Open,
                    // 0: a VIP; 1: only a domain name; 2: neither (IPv6-only style).
                    vips: if address == 0 {
                        vec![SIM_VIP.into()]
                    } else {
                        vec![]
                    },
                    domain: (address == 1).then(|| "lb-1.clb.example.com".to_string()),
                    status: 1,
                    tags,
                    listeners,
                    attributes: Default::default(),
                }),
            }
        })
}

fn arb_case() -> impl Strategy<Value = (Desired, CloudView)> {
    arb_desired().prop_flat_map(|d| {
        let cloud = arb_cloud(&d);
        (Just(d), cloud)
    })
}

/// The cloud, after apply, is what `d` asks for: our listeners, their rules (with the
/// default domain resolved), targets with weights, and certificates where they belong.
fn conforms(d: &Desired, view: &CloudView) -> Result<(), String> {
    let lb = view.load_balancer.as_ref().ok_or("no CLB")?;
    if !crate::model::ownership::is_ours(&lb.tags, CLUSTER, UID) {
        return Err("CLB not tagged for us".into());
    }
    let default = default_domain(lb);
    let foreign: Vec<u16> = lb
        .listeners
        .iter()
        .filter(|l| l.name != OUR_LISTENER_NAME)
        .map(|l| l.port)
        .collect();
    let ours: BTreeMap<ListenerKey, &CloudListener> = lb
        .listeners
        .iter()
        .filter(|l| l.name == OUR_LISTENER_NAME)
        .map(|l| (l.key(), l))
        .collect();
    let wanted: Vec<ListenerKey> = d
        .listeners
        .keys()
        .filter(|k| !foreign.contains(&k.port))
        .copied()
        .collect();
    if ours.keys().copied().collect::<Vec<_>>() != wanted {
        return Err(format!("listeners {:?} != {:?}", ours.keys(), wanted));
    }
    for k in wanted {
        let dl = &d.listeners[&k];
        let cl = ours[&k];
        let mut rules = resolved_rules(dl, default);
        if default.is_none() {
            rules.retain(|k, _| k.domain != Domain::Default);
        }
        let got: BTreeMap<RuleKey, &CloudRule> = cl
            .rules
            .iter()
            .map(|r| {
                (
                    RuleKey {
                        domain: Domain::Name(r.domain.clone()),
                        url: r.url.clone(),
                    },
                    r,
                )
            })
            .collect();
        if got.len() != cl.rules.len() || !got.keys().eq(rules.keys()) {
            return Err(format!("{k}: rules {:?} != {:?}", got.keys(), rules.keys()));
        }
        let sni = k.protocol == Protocol::Https && (dl.sni || cl.sni);
        if k.protocol == Protocol::Https && !sni && cl.certificate != dl.certificate {
            return Err(format!("{k}: listener certificate"));
        }
        for (rk, dr) in rules {
            let cr = got[&rk];
            let targets: BTreeMap<TargetKey, u16> = cr
                .targets
                .iter()
                .map(|t| (t.key.clone(), t.weight))
                .collect();
            let settled = targets.len() == cr.targets.len()
                && targets.iter().all(|(t, w)| {
                    dr.targets
                        .get(t)
                        .is_some_and(|want| want.weight_change(*w).is_none())
                })
                && dr
                    .targets
                    .iter()
                    .all(|(t, want)| targets.contains_key(t) || want.register_weight().is_none());
            if !settled {
                return Err(format!("{k} {rk}: targets {targets:?} != {:?}", dr.targets));
            }
            if sni && cr.certificate != rule_certificate(k, dl, dr, true) {
                return Err(format!("{k} {rk}: domain certificate"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn plan_then_apply_then_plan_is_empty_and_foreign_listeners_untouched((d, start) in arb_case()) {
        let p = plan(&d, &start).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let mut create_listeners = BTreeMap::new();
        let mut create_rules = BTreeMap::new();
        for a in &p.actions {
            match a {
                Action::CreateListeners { protocol, .. } => {
                    *create_listeners.entry(*protocol).or_insert(0) += 1;
                }
                Action::CreateRules { listener, .. } => {
                    *create_rules.entry(listener.key).or_insert(0) += 1;
                }
                Action::RegisterTargets { targets } | Action::DeregisterTargets { targets } => {
                    prop_assert!(targets.len() <= MAX_BATCH_TARGETS);
                }
                _ => {}
            }
        }
        prop_assert!(create_listeners.values().all(|n| *n == 1), "{p}");
        prop_assert!(create_rules.values().all(|n| *n == 1), "{p}");

        let mut view = start.clone();
        apply_to_view(&p, &mut view).map_err(|e| TestCaseError::fail(format!("{e}\n{p}")))?;
        if let Err(e) = conforms(&d, &view) {
            return Err(TestCaseError::fail(format!("{e}\n{p}")));
        }
        let again = plan(&d, &view).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(again.is_empty(), "first:\n{p}\nsecond:\n{again}");
        prop_assert_eq!(&again.problems, &p.problems);

        // Foreign listeners: byte-for-byte the same; SNI never switched off.
        if let (Some(before), Some(after)) = (&start.load_balancer, &view.load_balancer) {
            for l in &before.listeners {
                let now = after.listeners.iter().find(|x| x.id == l.id);
                if l.name != OUR_LISTENER_NAME {
                    prop_assert_eq!(now, Some(l));
                } else if let Some(now) = now {
                    prop_assert!(!l.sni || now.sni);
                }
            }
        }
    }
}

#[test]
fn host_less_rules_on_a_clb_without_default_domain_are_skipped_with_e4034() {
    let mut view = adopted_view(true);
    let lb = view.load_balancer.as_mut().unwrap();
    lb.vips.clear();
    let p = plan(&web(), &view).unwrap();
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].code, "E4034");
    let mut view2 = view.clone();
    apply_to_view(&p, &mut view2).unwrap();
    let rules = &view2.load_balancer.unwrap().listeners[0].rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].domain, "a.com");
}

#[test]
fn refs_resolve_by_id_or_by_natural_key_with_default_domain() {
    let mut view = CloudView::default();
    converge(&web(), &mut view);
    let lb = view.load_balancer.as_ref().unwrap();
    let by_key = ListenerRef {
        key: ListenerKey::HTTP_80,
        id: None,
    };
    let l = lb.listener(&by_key).unwrap();
    let by_id = ListenerRef {
        key: ListenerKey::HTTPS_443,
        id: Some(l.id.clone()),
    };
    assert_eq!(lb.listener(&by_id).unwrap().id, l.id);
    let rule = RuleRef {
        listener: by_key,
        key: key(None, "/"),
        location_id: None,
    };
    let (_, r) = lb.rule(&rule).unwrap();
    assert_eq!(r.domain, SIM_VIP);
    let missing = RuleRef {
        key: key(Some("zzz.com"), "/"),
        ..rule
    };
    assert!(lb.rule(&missing).is_none());
}

#[test]
fn clb_still_creating_gets_no_writes_yet() {
    let mut view = adopted_view(true);
    view.load_balancer.as_mut().unwrap().status = 0;
    let p = plan(&web(), &view).unwrap();
    assert!(p.is_empty());
    assert_eq!(p.problems[0].code, "LoadBalancerCreating");
}

/// A new CLB with these rules on HTTP:80, held to `quota`.
pub(super) fn http_80_within(
    quota: crate::model::limits::Quota,
    rules: Vec<(RuleKey, DesiredRule)>,
) -> Desired {
    let mut d = desired(
        LbSource::Create(spec()),
        vec![(ListenerKey::HTTP_80, http(rules))],
    );
    d.quota = quota;
    d
}

/// An action's first line (its kind and count).
pub(super) fn summary(a: &Action) -> String {
    a.to_string().lines().next().unwrap_or_default().to_string()
}

#[test]
fn a_swap_on_a_rule_at_its_quota_makes_just_enough_room_first() {
    let quota = crate::model::limits::Quota {
        targets_per_rule: 4,
        ..Default::default()
    };
    let with = |ids: &[&str]| {
        http_80_within(
            quota,
            vec![(
                key(Some("a.com"), "/"),
                rule(&ids.iter().map(|i| (ins(i, 30080), 10)).collect::<Vec<_>>()),
            )],
        )
    };
    let mut view = CloudView::default();
    converge(&with(&["ins-1", "ins-2", "ins-3"]), &mut view);
    // Two old targets swapped for two new ones: 3 bound + 2 new exceed 4 by one, so one
    // old target goes before the registration and the other after it.
    let p = converge(&with(&["ins-1", "ins-4", "ins-5"]), &mut view);
    let kinds: Vec<String> = p.actions.iter().map(summary).collect();
    assert_eq!(
        kinds,
        vec![
            "DeregisterTargets (1)",
            "RegisterTargets (2)",
            "DeregisterTargets (1)"
        ],
        "{p}"
    );
    // Within the quota (3 bound + 1 new) the order stays availability-first.
    let p = converge(&with(&["ins-1", "ins-6"]), &mut view);
    let kinds: Vec<String> = p.actions.iter().map(summary).collect();
    assert_eq!(kinds, vec!["RegisterTargets (1)", "DeregisterTargets (2)"]);
}

#[test]
fn the_front_of_a_clb_is_its_first_vip_else_its_domain_and_empty_strings_are_absent() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        front(&s(&["1.2.3.4", "5.6.7.8"]), Some("lb.example.com")),
        Some(Front::Ip("1.2.3.4"))
    );
    assert_eq!(
        front(&s(&[]), Some("lb.example.com")),
        Some(Front::Hostname("lb.example.com"))
    );
    assert_eq!(
        front(&s(&[""]), Some("lb.example.com")),
        Some(Front::Hostname("lb.example.com"))
    );
    assert_eq!(front(&s(&[""]), Some("")), None);
    assert_eq!(front(&s(&[]), None), None);
}
